"""The MQTT -> Kafka bridge: sensors speak MQTT, the analytics side reads Kafka.

For each message on ``telemetry/+`` the bridge:

1. checks the payload against the raw schema (:func:`labkit.schema.validate_payload`), and its
   event time against the bridge's clock (:func:`labkit.schema.check_event_time`: a sensor
   whose clock runs ahead would otherwise drag Spark's watermark, and every room, with it);
2. sends a valid reading to ``telemetry.<room_id>``, keyed by the room id, or an invalid one to
   ``telemetry.dlq`` with the original bytes and the reason in its headers;
3. acknowledges the MQTT message only once Kafka has confirmed the write.

Step 3 is what makes the bridge lose nothing. MQTT QoS 1 means "the broker keeps a message
until the receiver acknowledges it"; paho normally acknowledges as soon as the message arrives,
so a bridge killed between arrival and the Kafka write would lose it. With ``manual_ack`` the
PUBACK waits for Kafka's delivery report, and the bridge's *persistent session* (a fixed client
id and ``clean_session=False``) makes the broker keep, and resend after a restart, everything
not yet acknowledged. The price is the usual one of at-least-once delivery: a message written to
Kafka just before a crash, but not yet acknowledged, is written again after the restart.

Dead letters are also *counted*, per reason and per minute of arrival (:class:`DeadLetterRate`):
a reason that reaches ``dead_letter_alert_per_minute`` in a minute raises a data-quality alert on
``telemetry.alerts`` (key ``bridge``), cleared by the first minute that stays below it. A sensor
sending one broken payload now and then is noise; fifty a minute is a firmware bug.

Kafka side: an idempotent producer with ``acks=all`` (no duplicates from the producer's own
retries, no write acknowledged before the broker stored it), one partition per room topic (so
each room's readings stay in the order the sensor sent them).
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from datetime import datetime, timezone

from confluent_kafka import Producer

from labkit import mqtt, names, progress, schema, topics
from labkit import settings as settings_module
from labkit.errors import LabkitError

DEFAULT_CLIENT_ID = "labkit-bridge"
#: Dead letters of one reason in one minute that raise a data-quality alert.
DEAD_LETTER_ALERT_PER_MINUTE = 20
#: The key (``room_id``) of the bridge's data-quality alerts.
ALERT_KEY = "bridge"


class DeadLetterRate:
    """Dead letters per reason per minute of arrival, and the alerts they raise and clear.

    :meth:`count` is called for every message the bridge handles (``reason`` None for a valid
    one: the clock moves on even when nothing is rejected) and returns the alerts to send:
    ``raised`` when a reason reaches ``limit`` in the current minute (once per episode),
    ``cleared`` when a minute ends below the limit for a reason that was raised.
    """

    def __init__(self, limit: int = DEAD_LETTER_ALERT_PER_MINUTE):
        self.limit = limit
        self.minute: datetime | None = None
        self.per_reason: collections.Counter[str] = collections.Counter()
        self.raised: set[str] = set()

    def count(self, reason: str | None, at: datetime) -> list[dict]:
        alerts = []
        minute = at.replace(second=0, microsecond=0)
        if self.minute is not None and minute != self.minute:
            for quiet in sorted(r for r in self.raised if self.per_reason[r] < self.limit):
                self.raised.discard(quiet)
                alerts.append(self._alert(quiet, "cleared", self.minute, self.per_reason[quiet]))
            self.per_reason.clear()
        self.minute = minute
        if reason is not None:
            self.per_reason[reason] += 1
            if self.per_reason[reason] >= self.limit and reason not in self.raised:
                self.raised.add(reason)
                alerts.append(self._alert(reason, "raised", minute, self.per_reason[reason]))
        return alerts

    def _alert(self, reason: str, state: str, minute: datetime, count: int) -> dict:
        return {
            "room_id": ALERT_KEY,
            "alert": names.DATA_QUALITY_ALERT,
            "state": state,
            "event_time": minute,
            "value": float(count),
            "limit": float(self.limit),
            "detail": f"dead letters {reason}: {count} in the minute from {minute:%H:%M} UTC",
        }


class Bridge:
    """One bridge process: an MQTT subscriber, a Kafka producer, and the counters between them."""

    def __init__(
        self,
        s: settings_module.Settings | None = None,
        room_count: int = names.DEFAULT_ROOM_COUNT,
        client_id: str = DEFAULT_CLIENT_ID,
        dead_letter_alert_per_minute: int = DEAD_LETTER_ALERT_PER_MINUTE,
    ):
        self.settings = s or settings_module.get()
        self.dead_letter_rate = DeadLetterRate(dead_letter_alert_per_minute)
        self.alerts_sent = 0
        self.known_rooms = set(names.room_ids(room_count))
        self.client_id = client_id
        self.received = 0
        self.produced = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.failed = 0  # Kafka refused the write: not acknowledged, so MQTT will resend it
        self.last_message_at = time.monotonic()
        self.ready = threading.Event()  # set once the broker confirmed the subscription
        self._stopping = threading.Event()
        self._accepting = True
        self._mqtt = None
        self._producer: Producer | None = None

    # ------------------------------------------------------------ setup

    def _connect_kafka(self) -> Producer:
        # the alert topic too: the bridge sends its data-quality alerts there
        topics.ensure_topics(topics.lab_topics(sorted(self.known_rooms)) + [names.ALERTS_TOPIC], s=self.settings)
        return Producer(
            topics.client_config(
                self.settings,
                **{
                    "enable.idempotence": True,  # implies acks=all and ordered retries
                    "acks": "all",
                    "linger.ms": 5,  # a few ms of batching: many times the throughput, little latency
                    "client.id": self.client_id,
                },
            )
        )

    def _connect_mqtt(self):
        return mqtt.connect(
            self.client_id,
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            clean_session=False,  # a persistent session: the broker queues while we are away
            manual_ack=True,  # acknowledge after Kafka confirms, not on arrival
            # subscribe on every (re)connect; QoS 1 so the broker queues for us
            on_connect=lambda client: client.subscribe(names.MQTT_TOPIC_FILTER, qos=1),
            on_subscribe=lambda *args: self.ready.set(),
            on_message=self._on_message,
        )

    # ------------------------------------------------------------ per message

    def _on_message(self, client, userdata, message) -> None:
        """Runs in paho's network thread for every message received."""
        if not self._accepting:
            return  # shutting down: not acknowledged, so the broker resends it next time
        self.received += 1
        self.last_message_at = time.monotonic()
        payload = bytes(message.payload)
        received_at = datetime.now(timezone.utc)
        if message.retain:
            # A retained message is the broker's copy of an old reading, sent again at every
            # subscribe: the bridge subscribes at every (re)connect, so it would ingest it again
            # after each restart. A live reading never arrives with this flag.
            result = schema.ValidationResult(reason="retained", message=f"retained message on {message.topic}")
        else:
            result = schema.validate_payload(payload, self.known_rooms)
        if result.ok:
            result = schema.check_event_time(result.record, received_at, self.settings.max_event_ahead_s)
        topic_room = message.topic.split("/", 1)[-1]
        if result.ok and result.record["room_id"] != topic_room:
            result = schema.ValidationResult(
                reason="topic_mismatch",
                message=(f"room_id {result.record['room_id']!r} arrived on MQTT topic {message.topic!r}"),
            )
        if result.ok:
            room = result.record["room_id"]
            target, headers = topics.raw_topic(room), None
        else:
            target = topics.DLQ_TOPIC
            headers = {
                "reason": result.reason,
                "error": result.message,
                "mqtt_topic": message.topic,
                "received_at": schema.format_timestamp(received_at),
            }
            room = topic_room
        self._produce(target, room, payload, headers, message.mid, result.reason)
        for alert in self.dead_letter_rate.count(result.reason, received_at):
            self._send_alert(alert)

    def _send_alert(self, alert: dict) -> None:
        """A data-quality alert to ``telemetry.alerts`` (at least once, like every alert)."""
        print(f"bridge: data-quality alert {alert['state']}: {alert['detail']}", flush=True)
        self._producer.produce(names.ALERTS_TOPIC, key=ALERT_KEY, value=schema.alert_json(alert))
        self.alerts_sent += 1

    def _produce(self, topic: str, key: str, payload: bytes, headers, mid: int, reason: str | None) -> None:
        def on_delivery(error, kafka_message) -> None:
            if error is not None:
                self.failed += 1
                return
            if reason is None:
                self.produced += 1
            else:
                self.rejected[reason] += 1
            self._mqtt.ack(mid, 1)

        while True:
            try:
                self._producer.produce(topic, key=key, value=payload, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:  # the producer's queue is full: let deliveries drain it
                self._producer.poll(0.05)

    # ------------------------------------------------------------ run and stop

    def stop(self) -> None:
        """Ask :meth:`run` to finish: flush Kafka, acknowledge, disconnect. Safe from any thread."""
        self._stopping.set()

    def counters(self) -> str:
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items()))
        return (
            f"received {self.received:,}, produced {self.produced:,}, rejected {rejected:,}"
            + (f" ({reasons})" if reasons else "")
            + (f", failed {self.failed:,}" if self.failed else "")
        )

    def run(self, idle_exit: float | None = None, progress_every: float | None = 5.0) -> None:
        """Bridge until :meth:`stop` is called (or, with ``idle_exit``, after that many idle seconds)."""
        self._producer = self._connect_kafka()
        self._mqtt = self._connect_mqtt()
        ticker = progress.Ticker("bridge:", every=progress_every or 5.0)
        if progress_every:
            ticker.update(
                f"{self.settings.mqtt_host}:{self.settings.mqtt_port} {names.MQTT_TOPIC_FILTER} "
                f"-> Kafka {self.settings.kafka_bootstrap}",
                force=True,
            )
        started = time.monotonic()
        last_count, last_time = 0, started
        try:
            while not self._stopping.is_set():
                self._producer.poll(0.1)  # serves delivery reports, which acknowledge to MQTT
                if progress_every and ticker.due():
                    now = time.monotonic()
                    rate = (self.received - last_count) / (now - last_time)
                    last_count, last_time = self.received, now
                    ticker.update(f"{self.counters()}, {rate:,.0f} msg/s")
                if idle_exit is not None and time.monotonic() - self.last_message_at > idle_exit:
                    break
        finally:
            self._shutdown()
            elapsed = time.monotonic() - started
            if progress_every:
                ticker.done(f"stopped after {elapsed:.0f} s: {self.counters()}")

    def _shutdown(self) -> None:
        self._accepting = False
        if self._producer is not None:
            remaining = self._producer.flush(30)  # delivery reports acknowledge to MQTT
            if remaining:
                print(f"bridge: {remaining} messages not confirmed by Kafka; MQTT will resend them")
            self._producer = None  # releases librdkafka's connections
        if self._mqtt is not None:
            time.sleep(0.2)  # let the network thread send the last acknowledgements
            self._mqtt.disconnect()
            self._mqtt.loop_stop()


def run_until_signal(
    s: settings_module.Settings | None = None,
    room_count: int = names.DEFAULT_ROOM_COUNT,
    idle_exit: float | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
) -> Bridge:
    """Run a bridge in the foreground until Ctrl-C or SIGTERM (``labkit bridge``)."""
    bridge = Bridge(s, room_count, client_id)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: bridge.stop())
    bridge.run(idle_exit=idle_exit)
    return bridge


def start_in_background(
    s: settings_module.Settings | None = None,
    room_count: int = names.DEFAULT_ROOM_COUNT,
    client_id: str = DEFAULT_CLIENT_ID,
    timeout: float = 60,
) -> tuple[Bridge, threading.Thread]:
    """Run a bridge in a thread of this process (for notebooks); call ``bridge.stop()`` to end it.

    Returns once the broker has confirmed the subscription: a reading published before that
    moment would have no subscriber to be queued for (on a broker that never saw this client id).
    """
    bridge = Bridge(s, room_count, client_id)
    thread = threading.Thread(target=bridge.run, kwargs={"progress_every": None}, name="bridge", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not bridge.ready.wait(0.2):
        if not thread.is_alive() or time.monotonic() > deadline:
            bridge.stop()
            raise LabkitError(
                "the bridge did not subscribe to MQTT in time",
                "check `labkit status`; the error above (if any) says why",
            )
    return bridge, thread
