"""Health probes: does a service answer, not merely run?

A process can be alive and still useless (a broker still loading its logs, a port held by some
other program). Each probe does what a client would do: open the port, shake hands, ask for
metadata. ``labkit status``, ``labkit up`` and the compose healthchecks all use these.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from labkit import mqtt, topics


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mqtt_healthy(host: str, port: int) -> bool:
    """A real MQTT handshake: connect and wait for the broker's CONNACK."""
    return port_open(host, port) and mqtt.answers(host, port)


def kafka_healthy(bootstrap: str) -> bool:
    """The broker answers a metadata request (it lists its topics)."""
    return topics.answers(bootstrap)


def spark_master_state(host: str, ui_port: int) -> dict | None:
    """The master's own status page as JSON (status, alive workers...), or None."""
    try:
        with urllib.request.urlopen(f"http://{host}:{ui_port}/json/", timeout=2) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def s3_healthy(endpoint: str) -> bool:
    """The S3 endpoint answers HTTP (any status: without credentials S3 says 403, still alive)."""
    try:
        with urllib.request.urlopen(endpoint, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
