"""The sensors of the building: generate their messages, then publish them over MQTT.

The two jobs are kept apart on purpose:

* :func:`generate` decides *what* is sent and in which order: one reading per room every
  ``interval`` seconds of event time, plus the faults a lesson asks for (late, out-of-order,
  duplicated and malformed messages). It needs no broker, so tests and batch comparisons can
  rebuild exactly the messages a stream received.
* :func:`generate` can also inject *anomalies* (:class:`Anomaly`): a room whose readings go
  wrong on purpose for a while (a temperature spike, a slow drift, a stuck sensor, a room that
  goes silent, CO2 above its limit in an empty room). Each anomaly is also a *label* (kind, room,
  event-time start and end, :func:`anomaly_labels`), so an alert job can be scored against what
  was injected.
* :func:`publish` decides *when* and *how* they are sent: on a real-time clock (a reading per
  room every half second, like the building's sensors) or accelerated (as fast as the broker
  acknowledges), always at QoS 1.

Typical use in a notebook::

    from datetime import datetime, timezone
    from labkit import simulator
    start = datetime(2026, 1, 30, 9, 0, tzinfo=timezone.utc)
    messages = simulator.generate(start=start, duration=600, late_fraction=0.01)
    simulator.publish(messages)          # ten minutes of sensor time in a few seconds

Everything is deterministic for a given ``seed`` and ``start``: the readings come from
``labkit.rooms.reading``, the faults from a random generator seeded with the same seed.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from labkit import mqtt, names, progress
from labkit.errors import LabkitError
from labkit.rooms import DEFAULT_SEED, reading
from labkit.schema import LATEST_VERSION, RAW_FIELD_NAMES, format_timestamp, to_json

#: Seconds between two readings of one room (the building's sensors: 2 per second per room).
PUBLISH_INTERVAL = 0.5

#: What a message can be. "ok" is a reading sent on time; the others are injected faults.
KINDS = ("ok", "out_of_order", "late", "duplicate", "malformed")

#: The kinds of broken payload the simulator sends; each is named after the reason code that
#: ``labkit.schema.validate_payload`` gives it, so a lesson can check the dead-letter topic.
MALFORMED_CLASSES = (
    "bad_json",
    "wrong_type",
    "missing_field",
    "not_finite",
    "out_of_range",
    "unknown_room",
)

#: A room id that no building has (room ids start at room_1): the "rogue sensor" of the faults.
UNKNOWN_ROOM_ID = "room_0"


class Message(NamedTuple):
    """One MQTT message, as a sensor would send it."""

    topic: str  # telemetry/<room_id>
    payload: bytes  # the bytes on the wire
    record: dict[str, Any] | None  # the reading the payload carries; None when malformed
    kind: str  # one of KINDS
    due: float  # seconds after ``start`` at which a real sensor would send it


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise LabkitError(f"{name}={value} is not a fraction", f"give {name} between 0 and 1")


def _step_count(count: int | None, duration: float | None, interval: float) -> int | None:
    """How many readings per room: ``count``, or ``duration`` / ``interval``, or None (endless)."""
    if count is not None and duration is not None:
        raise LabkitError("both count and duration were given", "give one of them, not both")
    if interval <= 0:
        raise LabkitError(f"interval={interval} must be positive", "e.g. interval=0.5")
    if duration is not None:
        return round(duration / interval)
    return count


def default_start(
    realtime: bool, count: int | None = None, duration: float | None = None, interval: float = PUBLISH_INTERVAL
) -> datetime:
    """When ``labkit simulate`` starts its sensor time if not told: now, or now minus the run's length.

    In real time a reading is stamped when it is sent: start now. On the accelerated clock ten
    minutes of sensor time take seconds, so a run started now would stamp most readings minutes
    ahead of every clock that receives them, and the bridge sends readings from the future to
    the dead-letter topic (:func:`labkit.schema.check_event_time`). An accelerated run therefore
    replays the *last* ``duration`` seconds: its final reading is stamped about now. An endless
    accelerated run would run ever further ahead, so it is refused.
    """
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if realtime:
        return now
    steps = _step_count(count, duration, interval)
    if steps is None:
        raise LabkitError(
            "an accelerated run needs an end: its readings would be stamped ever further ahead",
            "add --duration SECONDS (or --count N), or publish on the wall clock with --realtime",
        )
    return now - timedelta(seconds=steps * interval)


# --------------------------------------------------------------------------------------------
# Anomalies: readings that go wrong on purpose, with labels to score detection against
# --------------------------------------------------------------------------------------------

#: What an anomaly can be (see :class:`Anomaly` for what each does to the readings).
ANOMALY_KINDS = ("spike", "drift", "stuck", "dropout", "co2_empty")

#: How far a spike lifts the temperature: far outside any room's own variation (a few tenths to
#: two degrees in ten minutes), as when a heater next to the sensor is switched on.
SPIKE_C = 8.0
#: How far a drift has lifted the temperature by its end: a failing cooling unit, degree by degree.
DRIFT_C = 6.0
#: The CO2 of the ``co2_empty`` anomaly: above every room type's limit (1000 to 1300 ppm), with nobody in.
CO2_EMPTY_PPM = 1600

#: The fields a stuck sensor keeps repeating: every measured value (the clock still ticks).
STUCK_FIELDS = tuple(name for name in RAW_FIELD_NAMES if name not in ("room_id", "timestamp"))


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One room's readings go wrong from ``start_s`` for ``duration_s`` seconds of event time.

    The seconds count from the ``start`` given to :func:`generate`. What each ``kind`` does:

    * ``spike``: the temperature reads ``SPIKE_C`` degrees higher (best kept short: seconds).
    * ``drift``: the temperature creeps up, linearly, to ``DRIFT_C`` degrees higher at the end.
    * ``stuck``: the sensor repeats the values it read at ``start_s``, only the timestamp moves.
    * ``dropout``: the room sends nothing at all (a dead sensor, a cut network cable).
    * ``co2_empty``: nobody is counted in the room, yet the CO2 reads ``CO2_EMPTY_PPM``
      (a ventilation failure, or a CO2 sensor to recalibrate).
    """

    kind: str
    room_id: str
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise LabkitError(f"unknown anomaly kind {self.kind!r}", f"use one of {', '.join(ANOMALY_KINDS)}")
        if self.start_s < 0 or self.duration_s <= 0:
            raise LabkitError(
                f"anomaly {self.kind} in {self.room_id}: start_s={self.start_s}, duration_s={self.duration_s}",
                "start_s counts seconds from the run's start (>= 0); duration_s must be positive",
            )

    @classmethod
    def parse(cls, text: str) -> "Anomaly":
        """``KIND:ROOM:START_S:DURATION_S``, e.g. ``spike:room_4:60:10`` (``labkit simulate --anomaly``)."""
        parts = text.split(":")
        try:
            kind, room_id, start_s, duration_s = parts
            return cls(kind, room_id, float(start_s), float(duration_s))
        except ValueError:
            raise LabkitError(
                f"cannot read the anomaly {text!r}", "write KIND:ROOM:START_S:DURATION_S, e.g. spike:room_4:60:10"
            ) from None

    def active(self, due: float) -> bool:
        """Whether the reading due ``due`` seconds after the start is hit."""
        return self.start_s <= due < self.start_s + self.duration_s

    def label(self, start: datetime) -> dict[str, str]:
        """The ground truth of this anomaly: kind, room and its event-time span [start, end)."""
        return {
            "kind": self.kind,
            "room_id": self.room_id,
            "start": format_timestamp(start + timedelta(seconds=self.start_s)),
            "end": format_timestamp(start + timedelta(seconds=self.start_s + self.duration_s)),
        }


def anomaly_labels(anomalies: Sequence[Anomaly], start: datetime) -> list[dict[str, str]]:
    """The labels of ``anomalies`` injected into a run that started at ``start``, in their order."""
    return [anomaly.label(start) for anomaly in anomalies]


def write_labels(path, labels: Sequence[dict[str, str]]) -> None:
    """Write labels (:func:`anomaly_labels`) as a JSON ground-truth file: a list of objects."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(list(labels), handle, indent=1)
        handle.write("\n")


def read_labels(path) -> list[dict[str, str]]:
    """The labels of a ground-truth file written by :func:`write_labels` (or ``simulate --labels``)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _apply_anomalies(
    record: dict[str, Any], due: float, anomalies: Sequence[Anomaly], start: datetime, seed: int
) -> dict[str, Any] | None:
    """``record`` as the anomalies active at ``due`` change it; None when the room is silent."""
    for anomaly in anomalies:
        if anomaly.room_id != record["room_id"] or not anomaly.active(due):
            continue
        if anomaly.kind == "dropout":
            return None
        record = dict(record)
        if anomaly.kind == "spike":
            record["temperature"] = round(record["temperature"] + SPIKE_C, 2)
        elif anomaly.kind == "drift":
            fraction_done = (due - anomaly.start_s) / anomaly.duration_s
            record["temperature"] = round(record["temperature"] + DRIFT_C * fraction_done, 2)
        elif anomaly.kind == "stuck":
            # What the sensor read when it got stuck: a pure function of the time (labkit.rooms).
            frozen = reading(anomaly.room_id, start + timedelta(seconds=anomaly.start_s), seed)
            record.update({field: frozen[field] for field in STUCK_FIELDS})
        elif anomaly.kind == "co2_empty":
            record.update(co2_ppm=CO2_EMPTY_PPM, occupancy_count=0, motion_detected=False)
    return record


def _malformed(record: dict[str, Any], rng: random.Random) -> tuple[str, bytes]:
    """A broken version of ``record``: (topic, payload), of a class drawn from MALFORMED_CLASSES."""
    topic = names.mqtt_topic(record["room_id"])
    broken = dict(record)
    klass = rng.choice(MALFORMED_CLASSES)
    if klass == "bad_json":
        # a message cut short, as after a lost TCP segment: never valid JSON without its "}"
        whole = to_json(record)
        return topic, whole[: rng.randint(1, len(whole) - 1)]
    if klass == "wrong_type":
        field = rng.choice(["temperature", "co2_ppm", "occupancy_count", "motion_detected"])
        broken[field] = str(record[field])  # a number sent as text: "19.2"
    elif klass == "missing_field":
        del broken[rng.choice(RAW_FIELD_NAMES)]
    elif klass == "not_finite":
        broken[rng.choice(["temperature", "humidity", "energy_kwh"])] = rng.choice([float("nan"), float("inf")])
    elif klass == "out_of_range":
        field, impossible = rng.choice(
            [("humidity", 117.5), ("co2_ppm", -40), ("temperature", -273.5), ("air_quality_index", 900)]
        )
        broken[field] = impossible
    elif klass == "unknown_room":
        broken["room_id"] = UNKNOWN_ROOM_ID
        topic = names.mqtt_topic(UNKNOWN_ROOM_ID)
    # json.dumps writes NaN and Infinity unless told not to: exactly the broken sender we want.
    return topic, json.dumps(broken, separators=(",", ":")).encode("utf-8")


def _draw_fault(rng: random.Random, malformed: float, late: float, out_of_order: float) -> str | None:
    """Which fault hits one reading, if any: one roll of the dice, cut into bands."""
    roll = rng.random()
    if roll < malformed:
        return "malformed"
    if roll < malformed + late:
        return "late"
    if roll < malformed + late + out_of_order:
        return "out_of_order"
    return None


def generate(
    rooms: Sequence[str] | None = None,
    start: datetime | None = None,
    count: int | None = None,
    duration: float | None = None,
    interval: float = PUBLISH_INTERVAL,
    seed: int = DEFAULT_SEED,
    *,
    late_fraction: float = 0.0,
    late_delay: float = 60.0,
    out_of_order_fraction: float = 0.0,
    out_of_order_delay: float = 3.0,
    duplicate_fraction: float = 0.0,
    malformed_fraction: float = 0.0,
    anomalies: Sequence[Anomaly] = (),
    schema_version: int = 1,
) -> Iterator[Message]:
    """Yield the messages of ``rooms`` from ``start`` on, in the order a broker would see them.

    * ``rooms``: room ids (default: the building's eight, ``labkit.names.room_ids()``).
    * ``start``: event time of the first reading (default: now, to the second; pass a fixed
      datetime to get the same messages every time).
    * ``count`` readings per room, or ``duration`` seconds of event time, or neither for an
      endless stream (for a real-time demo that runs until interrupted).
    * ``interval``: seconds of event time between two readings of a room.

    Without faults the messages come in event-time order, one per room per tick, all ``ok``.
    Faults (each a fraction of the readings, drawn independently per reading):

    * ``malformed_fraction``: the reading is replaced by a broken payload (see MALFORMED_CLASSES).
    * ``late_fraction``: the reading is held back ``late_delay`` seconds: pick more than the
      stream's watermark, and the window it belongs to will already be closed. Readings of the
      last ``late_delay`` seconds are never made late (too little would come after them), and
      the readings of the last tick are never out of order.
    * ``out_of_order_fraction``: held back between one ``interval`` and ``out_of_order_delay``
      seconds, so it arrives after newer readings (normally of its own room too) but within a
      watermark of a few seconds.
    * ``duplicate_fraction``: the message (on time, late or out of order) is sent a second
      time within a second, byte for byte, as after a QoS-1 redelivery.

    ``schema_version`` 2 simulates a newer firmware (:func:`with_firmware`): its readings carry
    ``schema_version`` and ``noise_db`` (``labkit.schema.NEWER_FIELDS``).

    ``anomalies`` (:class:`Anomaly`, or text ``KIND:ROOM:START_S:DURATION_S``) change the
    readings of a room for a while; :func:`anomaly_labels` gives their labels. A silent room's
    readings are not sent at all; the other anomalies change the values, and the faults above
    still apply on top.
    """
    room_list = list(names.room_ids() if rooms is None else rooms)
    if start is None:
        start = datetime.now(timezone.utc).replace(microsecond=0)
    if start.tzinfo is None:
        raise ValueError(f"start={start!r} has no time zone; use e.g. datetime(2026, 1, 30, 9, 0, tzinfo=timezone.utc)")
    steps = _step_count(count, duration, interval)
    for name, value in [
        ("late_fraction", late_fraction),
        ("out_of_order_fraction", out_of_order_fraction),
        ("duplicate_fraction", duplicate_fraction),
        ("malformed_fraction", malformed_fraction),
    ]:
        _check_fraction(name, value)
    if malformed_fraction + late_fraction + out_of_order_fraction > 1.0:
        raise LabkitError(
            "malformed, late and out-of-order fractions add up to more than 1",
            "a reading can suffer only one of them: lower the fractions",
        )
    if late_delay <= 0 or out_of_order_delay <= interval:
        raise LabkitError(
            f"late_delay={late_delay}, out_of_order_delay={out_of_order_delay}: too small",
            f"late_delay must be positive and out_of_order_delay larger than interval={interval}",
        )
    if schema_version not in range(1, LATEST_VERSION + 1):
        raise LabkitError(
            f"schema_version={schema_version!r}: the simulator knows versions 1 to {LATEST_VERSION}",
            "use 1 (today's sensors) or 2 (the newer firmware, with noise_db)",
        )
    anomalies = [Anomaly.parse(a) if isinstance(a, str) else a for a in anomalies]
    strangers = sorted({a.room_id for a in anomalies} - set(room_list))
    if strangers:
        raise LabkitError(
            f"anomalies name rooms this run does not simulate: {', '.join(strangers)}",
            f"use rooms of this run: {room_list[0]} .. {room_list[-1]}",
        )
    # Checking first and generating in a second function makes a wrong argument fail here, at
    # the call, rather than later at the first next() on the generator.
    return _messages(
        room_list,
        start,
        steps,
        interval,
        seed,
        late_fraction,
        late_delay,
        out_of_order_fraction,
        out_of_order_delay,
        duplicate_fraction,
        malformed_fraction,
        anomalies,
        schema_version,
    )


def with_firmware(record: dict[str, Any], version: int) -> dict[str, Any]:
    """A reading as a sensor with firmware ``version`` sends it.

    Version 2 adds its version and the sound level, made from what the room is doing: a quiet
    room's 30 dB(A), four more per person (up to 20) and five more while someone moves.
    """
    if version < 2:
        return record
    noise = 30.0 + 4.0 * min(record["occupancy_count"], 20) + (5.0 if record["motion_detected"] else 0.0)
    return {**record, "schema_version": version, "noise_db": noise}


def _messages(
    room_list: list[str],
    start: datetime,
    steps: int | None,
    interval: float,
    seed: int,
    late_fraction: float,
    late_delay: float,
    out_of_order_fraction: float,
    out_of_order_delay: float,
    duplicate_fraction: float,
    malformed_fraction: float,
    anomalies: Sequence[Anomaly] = (),
    schema_version: int = 1,
) -> Iterator[Message]:
    """The generator behind :func:`generate`, which has checked every argument."""
    last_due = None if steps is None else (steps - 1) * interval

    # The faults get their own generator, so asking for faults never changes the readings.
    rng = random.Random(f"{seed}:faults")
    # Held-back messages wait in a heap ordered by (due, arrival number).
    held: list[tuple[float, int, Message]] = []
    arrival = itertools.count()

    def hold(message: Message) -> None:
        heapq.heappush(held, (message.due, next(arrival), message))

    ticks = itertools.count() if steps is None else range(steps)
    for step in ticks:
        due = step * interval
        # A held message goes out just before the first tick later than its due time.
        while held and held[0][0] < due:
            yield heapq.heappop(held)[2]
        at = start + timedelta(seconds=due)
        for room_id in room_list:
            record = with_firmware(reading(room_id, at, seed), schema_version)
            fault = _draw_fault(rng, malformed_fraction, late_fraction, out_of_order_fraction)
            if anomalies:
                record = _apply_anomalies(record, due, anomalies, start, seed)
                if record is None:  # a dropout: this room sends nothing now
                    continue
            payload = to_json(record)
            topic = names.mqtt_topic(room_id)
            if fault == "malformed":
                bad_topic, bad_payload = _malformed(record, rng)
                yield Message(bad_topic, bad_payload, None, "malformed", due)
                continue
            # Near the end of a finite stream nothing newer would overtake a held reading: it
            # could not arrive late or out of order, so it is sent on time instead.
            if fault == "late" and (last_due is None or due + late_delay <= last_due):
                message = Message(topic, payload, record, "late", due + late_delay)
                hold(message)
            elif fault == "out_of_order" and (last_due is None or due < last_due):
                delay = rng.uniform(interval, out_of_order_delay)
                message = Message(topic, payload, record, "out_of_order", due + delay)
                hold(message)
            else:
                message = Message(topic, payload, record, "ok", due)
                yield message
            if rng.random() < duplicate_fraction:
                copy = Message(topic, payload, dict(record), "duplicate", message.due + rng.uniform(0.0, 1.0))
                hold(copy)
    while held:
        yield heapq.heappop(held)[2]


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PublishSummary:
    """What :func:`publish` sent: messages per kind, and how long it took."""

    counts: dict[str, int]
    seconds: float
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Messages per second of wall time."""
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in self.counts.items() if n)
        status = " (interrupted)" if self.interrupted else ""
        return (
            f"published {self.total:,} messages in {self.seconds:.1f} s "
            f"({self.rate:,.0f} msg/s): {kinds or 'none'}{status}"
        )


def _queued(info):
    """A QoS-1 publish that found the broker away is queued, not failed: keep waiting for it.

    paho keeps such a message and sends it once it has reconnected (``loop_start`` reconnects by
    itself), as a real sensor buffers its readings while its broker restarts. Only the return
    code says "not connected", and paho would raise on it when asked whether the message was
    acknowledged. Cleared here, the wait below is the same as for any other message: for the
    acknowledgement, which comes after the reconnect.
    """
    import paho.mqtt.client as paho

    if info.rc == paho.MQTT_ERR_NO_CONN:
        info.rc = paho.MQTT_ERR_SUCCESS
    return info


def _wait_for_ack(info, timeout: float) -> None:
    """Block until the broker acknowledged one QoS-1 message, or fail with a next step."""
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError) as error:
        raise LabkitError(
            f"publishing failed: {error}", "check that the MQTT broker is still running (`labkit status`)"
        ) from None
    if not info.is_published():
        raise LabkitError(
            f"the MQTT broker sent no acknowledgement within {timeout:.0f} s",
            "check that the MQTT broker is still running (`labkit status`)",
        )


def publish(
    messages: Iterable[Message],
    *,
    realtime: bool = False,
    host: str | None = None,
    port: int | None = None,
    client_id: str | None = None,
    window: int = 1000,
    ack_timeout: float = 30.0,
    progress_every: float | None = 5.0,
) -> PublishSummary:
    """Send ``messages`` (from :func:`generate`) to the MQTT broker at QoS 1.

    * ``realtime=True``: each message waits until its ``due`` time after the start, so every
      room sends a reading every half second, as the building's sensors do.
    * ``realtime=False`` (accelerated): as fast as the broker acknowledges. At most ``window``
      messages wait for their acknowledgement at once; then the oldest is waited for. That keeps
      memory bounded and makes the run finish only when the broker has every message.

    Shows progress (``labkit.progress``): a line every ``progress_every`` seconds in a notebook
    or log, a line updated in place on a terminal; None keeps quiet. Interrupting (Ctrl-C,
    or the notebook's stop button) stops cleanly after the messages already sent are
    acknowledged. Returns a :class:`PublishSummary`.
    """
    client = mqtt.connect(client_id or f"labkit-simulator-{os.getpid()}", host, port, max_inflight=window)
    counts = collections.Counter({kind: 0 for kind in KINDS})
    pending: collections.deque = collections.deque()
    ticker = progress.Ticker("simulator:", every=progress_every) if progress_every else None
    if ticker:
        ticker.update("connected, publishing at QoS 1...", force=True)
    began = time.monotonic()
    interrupted = False
    try:
        try:
            for message in messages:
                if realtime:
                    wait = began + message.due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                pending.append(_queued(client.publish(message.topic, message.payload, qos=1)))
                counts[message.kind] += 1
                while pending and pending[0].is_published():
                    pending.popleft()
                if len(pending) >= window:
                    _wait_for_ack(pending.popleft(), ack_timeout)
                if ticker:
                    ticker.update(str(PublishSummary(dict(counts), time.monotonic() - began)))
        except KeyboardInterrupt:
            interrupted = True
        # Done only when the broker holds every message: wait for the last acknowledgements.
        for info in pending:
            _wait_for_ack(info, ack_timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    summary = PublishSummary(dict(counts), time.monotonic() - began, interrupted)
    if ticker:
        ticker.done(str(summary))
    return summary
