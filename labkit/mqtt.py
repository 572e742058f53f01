"""The one way labkit connects to the MQTT broker: the simulator, the bridge and the health probe.

Connecting is more than ``client.connect``: paho returns as soon as the TCP connection is open,
and only the broker's CONNACK says whether it accepted the client. :func:`connect` waits for
that answer (in paho's network thread, started here) and turns every way it can go wrong into a
:class:`~labkit.errors.LabkitError` that says what to do next.

What differs between the three callers is passed in, not written again:

* the simulator publishes at QoS 1 with many messages in flight (``max_inflight``);
* the bridge keeps a *persistent session* (a fixed ``client_id``, ``clean_session=False``),
  acknowledges by hand (``manual_ack``) and subscribes in ``on_connect`` (called on every
  reconnect, so a broker restart does not leave it deaf);
* the health probe only wants to know whether the handshake succeeds (:func:`answers`).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable

from labkit import settings as settings_module
from labkit.errors import LabkitError

NEXT_STEP = (
    "start it with `labkit up` (embedded) or `docker compose up -d mosquitto` "
    "(compose), or point LABKIT_MQTT_HOST / LABKIT_MQTT_PORT at it"
)


def connect(
    client_id: str,
    host: str | None = None,
    port: int | None = None,
    *,
    clean_session: bool = True,
    manual_ack: bool = False,
    max_inflight: int = 1000,
    timeout: float = 10.0,
    keepalive: int = 30,
    on_connect: Callable[[Any], None] | None = None,
    on_message: Callable | None = None,
    on_subscribe: Callable | None = None,
):
    """A paho-mqtt client, connected and accepted by the broker, its network loop running.

    ``host`` and ``port`` default to ``settings.get().mqtt_host`` / ``mqtt_port``.
    ``max_inflight`` QoS-1 messages may await their PUBACK at once (paho's default of 20 would
    make an accelerated run wait on the network round trip after every 20 messages).
    ``on_connect(client)`` runs after every successful (re)connect; ``on_message`` and
    ``on_subscribe`` are paho's callbacks, set *before* connecting: a persistent session's queued
    messages arrive right after the CONNACK. Stop the client with ``client.disconnect()`` then
    ``client.loop_stop()``.
    """
    import paho.mqtt.client as mqtt

    config = settings_module.get()
    host = host or config.mqtt_host
    port = port or config.mqtt_port
    # paho refuses clean_session with MQTT 5; the lab speaks MQTT 3.1.1, paho's default
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, manual_ack=manual_ack
    )
    client.max_inflight_messages_set(max_inflight)

    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connack(client, userdata, flags, reason_code, properties):
        outcome["reason"] = reason_code
        if not reason_code.is_failure and on_connect is not None:
            on_connect(client)
        answered.set()

    client.on_connect = on_connack
    if on_message is not None:
        client.on_message = on_message
    if on_subscribe is not None:
        client.on_subscribe = on_subscribe
    try:
        client.connect(host, port, keepalive=keepalive)
    except OSError as error:
        raise LabkitError(f"cannot reach the MQTT broker at {host}:{port}: {error}", NEXT_STEP) from None
    client.loop_start()
    if not answered.wait(timeout) or outcome["reason"].is_failure:
        client.disconnect()
        client.loop_stop()
        reason = outcome.get("reason", f"no answer within {timeout:.0f} s")
        raise LabkitError(f"the MQTT broker at {host}:{port} refused the connection: {reason}", NEXT_STEP)
    return client


def answers(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether the broker at host:port completes an MQTT handshake (the health probe)."""
    try:
        client = connect(f"labkit-probe-{uuid.uuid4().hex[:8]}", host, port, timeout=timeout, keepalive=10)
    except LabkitError:
        return False
    client.disconnect()
    client.loop_stop()
    return True
