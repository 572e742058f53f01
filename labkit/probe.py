"""Is the MQTT broker there? Is Kafka? One quick answer before anything waits on them.

A Kafka client that cannot reach its broker retries in silence and fails half a minute later
with "Failed while waiting for controller"; Spark fails later still, with a page of Java. So
every entry point that needs a broker (the bridge, the simulator, ``labkit topics``, ``labkit
stream``, a lesson's first cell) calls :func:`require` first: a short TCP connect and a protocol
handshake (the health checks of :mod:`labkit.stack`), then an error that names the service that
is not reachable and how to start it.
"""

from __future__ import annotations

from typing import Iterable

from labkit import settings as settings_module
from labkit import stack
from labkit.errors import LabkitError


NAMES = {"mqtt": "the MQTT broker", "kafka": "Kafka"}


def endpoint(s: settings_module.Settings, service: str) -> str:
    """``host:port`` of ``service`` ("mqtt" or "kafka") in these settings."""
    return f"{s.mqtt_host}:{s.mqtt_port}" if service == "mqtt" else s.kafka_bootstrap


def reachable(s: settings_module.Settings, service: str) -> bool:
    """Whether ``service`` ("mqtt" or "kafka") answers at its endpoint: a TCP connect, then a handshake."""
    if service == "mqtt":
        return stack.mqtt_healthy(s.mqtt_host, s.mqtt_port)
    return stack.kafka_healthy(s.kafka_bootstrap)


def require(s: settings_module.Settings | None = None, services: Iterable[str] = ("mqtt", "kafka")) -> None:
    """Raise a LabkitError naming each of ``services`` ("mqtt", "kafka") that does not answer."""
    s = s or settings_module.get()
    missing = [name for name in services if not reachable(s, name)]
    if not missing:
        return
    what = " and ".join(f"{NAMES[name]} at {endpoint(s, name)}" for name in missing)
    variables = ", ".join(f"LABKIT_{name.upper()}_HOST/_PORT" for name in missing)
    if s.embedded:
        start = "start the stack with `labkit up` (then `labkit status`)"
    else:
        start = "start the Docker stack with `docker compose up -d` (then `docker compose ps`)"
    raise LabkitError(f"{what} {'is' if len(missing) == 1 else 'are'} not reachable", f"{start}, or point {variables} at a running one")
