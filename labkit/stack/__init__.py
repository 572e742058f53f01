"""Start, check and stop the lab's services: ``up``, ``down``, ``status``.

In the **embedded** profile labkit runs the services itself, as ordinary background processes
(:mod:`~labkit.stack.services` says what runs, :mod:`~labkit.stack.processes` starts and stops
it, :mod:`~labkit.stack.probes` checks that it answers; :mod:`~labkit.stack.java` and
:mod:`~labkit.stack.jars` find Java and the Maven jars the JVM services need). ``down`` stops
exactly the processes ``up`` started, and nothing else.

In the **compose** profile Docker runs the services; ``up`` and ``status`` only check that
each endpoint answers.
"""

from __future__ import annotations

import dataclasses
import time

import psutil

from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.stack.java import require_java
from labkit.stack.probes import kafka_healthy, mqtt_healthy, port_open, s3_healthy, spark_master_state
from labkit.stack.processes import pid_file, running_process, start_service, stop_service
from labkit.stack.services import embedded_services

# The probes are part of this package's interface: `labkit.stack.port_open(...)`, and the compose
# healthchecks call `labkit.stack.spark_master_state`.
__all__ = [
    "ServiceStatus",
    "up",
    "down",
    "status",
    "format_status",
    "ensure_up",
    "AMQTT_CAVEAT",
    "running_mqtt_broker",
    "port_open",
    "mqtt_healthy",
    "kafka_healthy",
    "spark_master_state",
]

Settings = settings_module.Settings


@dataclasses.dataclass
class ServiceStatus:
    name: str
    endpoint: str
    pid: int | None
    running: bool
    healthy: bool
    note: str = ""  # what a learner should know about this service, e.g. a guarantee it lacks


#: What a learner loses with the pip fallback broker: said by `labkit up`, `status` and the bridge.
AMQTT_CAVEAT = (
    "amqtt, the pip fallback broker, keeps no queue for a disconnected client: readings published "
    "while the bridge is down are LOST (Mosquitto keeps them). Install Mosquitto for the lab's "
    "no-loss guarantee (Debian/Ubuntu: sudo apt-get install mosquitto; macOS: brew install mosquitto)"
)


def up(s: Settings | None = None, spark_cluster: bool = False, only: list[str] | None = None) -> list[ServiceStatus]:
    """Start every embedded service that is not running yet; in compose, check them.

    ``only`` names a subset (e.g. ``["mqtt"]``) for lessons and tests that need just one.
    """
    s = s or settings_module.get()
    if not s.embedded:
        statuses = status(s)
        broken = [st for st in statuses if not st.healthy]
        if broken:
            raise LabkitError(
                "not reachable: " + ", ".join(f"{st.name} at {st.endpoint}" for st in broken),
                "start the Docker stack with `docker compose up -d` and check `docker compose ps`",
            )
        return statuses
    require_java()
    s.state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for service in embedded_services(s, spark_cluster):
        if only is None or service.name in only:
            start_service(s, service)
    print(f"stack up in {time.monotonic() - started:.1f} s (state and logs in {s.state_dir})")
    return status(s)


def down(s: Settings | None = None, only: list[str] | None = None) -> list[str]:
    """Stop what ``up`` started, newest first; return the names of what was stopped."""
    s = s or settings_module.get()
    if not s.embedded:
        print("compose profile: stop the Docker stack with `docker compose down`")
        return []
    stopped = []
    for name in ["spark-worker", "spark-master", "kafka", "mqtt"]:
        if (only is None or name in only) and stop_service(s, name):
            print(f"{name}: stopped")
            stopped.append(name)
    return stopped


def status(s: Settings | None = None) -> list[ServiceStatus]:
    """Each service: endpoint, pid (embedded), whether it runs and whether it answers."""
    s = s or settings_module.get()
    if not s.embedded:
        return compose_status(s)
    spark_cluster = pid_file(s, "spark-master").exists()
    result = []
    for service in embedded_services(s, spark_cluster):
        process = running_process(s, service.name)
        result.append(
            ServiceStatus(
                name=service.name,
                endpoint=f"{service.host}:{service.port}",
                pid=process.pid if process else None,
                running=process is not None,
                healthy=process is not None and service.healthy(),
                note=AMQTT_CAVEAT if service.name == "mqtt" and running_mqtt_broker(s) == "amqtt" else "",
            )
        )
    return result


def compose_status(s: Settings) -> list[ServiceStatus]:
    """Every service of the Docker stack that labkit talks to, each asked the way it answers.

    The compose profile runs nothing itself: each line is a probe of an endpoint from settings
    (MQTT handshake, Kafka metadata, the Spark master's JSON status and its alive workers, the
    S3 endpoint of an ``s3a://`` lake).
    """
    statuses = [
        ServiceStatus("mqtt", f"{s.mqtt_host}:{s.mqtt_port}", None, True, mqtt_healthy(s.mqtt_host, s.mqtt_port)),
        ServiceStatus("kafka", s.kafka_bootstrap, None, True, kafka_healthy(s.kafka_bootstrap)),
    ]
    if s.spark_master.startswith("spark://"):
        host = s.spark_master.removeprefix("spark://").rsplit(":", 1)[0]
        state = spark_master_state(host, s.spark_master_ui_port) or {}
        statuses.append(ServiceStatus("spark-master", s.spark_master, None, True, state.get("status") == "ALIVE"))
        statuses.append(
            ServiceStatus(
                "spark-worker", f"{state.get('aliveworkers', 0)} alive", None, True, state.get("aliveworkers", 0) >= 1
            )
        )
    if s.lake_root.startswith("s3a://"):
        statuses.append(ServiceStatus("s3", s.s3_endpoint, None, True, s3_healthy(s.s3_endpoint)))
    return statuses


def format_status(statuses: list[ServiceStatus]) -> str:
    lines = [f"{'service':<14}{'endpoint':<22}{'pid':<9}state"]
    for st in statuses:
        state = "healthy" if st.healthy else ("running, not answering" if st.running else "stopped")
        lines.append(f"{st.name:<14}{st.endpoint:<22}{st.pid or '-'!s:<9}{state}")
    lines += [f"warning: {st.name}: {st.note}" for st in statuses if st.note]
    return "\n".join(lines)


def running_mqtt_broker(s: Settings) -> str | None:
    """``mosquitto`` or ``amqtt``: the broker ``up`` started (None when none runs, as in compose)."""
    process = running_process(s, "mqtt")
    if process is None:
        return None
    try:
        return "amqtt" if any("amqtt" in part for part in process.cmdline()) else "mosquitto"
    except psutil.Error:
        return None


def ensure_up(s: Settings | None = None) -> None:
    """For notebooks: start the stack if it is not running, else say that it is."""
    s = s or settings_module.get()
    if all(st.healthy for st in status(s)):
        print(format_status(status(s)))
        return
    print(format_status(up(s)))
