"""Start, check and stop the lab's services.

In the **embedded** profile labkit runs the services itself, as ordinary background processes:

=============  ===========================================================================
service        what runs
=============  ===========================================================================
mqtt           Mosquitto when it is installed, else amqtt (a pip-installed broker)
kafka          an Apache Kafka broker in KRaft mode (no ZooKeeper), from the jar cache
spark-master   on request (``--spark-cluster``): Spark's standalone master, from pyspark
spark-worker   ... and one worker with 2 cores
=============  ===========================================================================

Everything a run leaves behind sits in one state folder (``LABKIT_STATE_DIR``): a pid file,
a log and the data of each service. ``down`` stops exactly the processes whose pid files
``up`` wrote (checking each pid still belongs to the process ``up`` started) and nothing else.

In the **compose** profile Docker runs the services; ``up`` and ``status`` only check that
each endpoint answers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

import psutil

from labkit import jars
from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.java import require_java
from labkit.progress import wait_until

Settings = settings_module.Settings


@dataclasses.dataclass
class Service:
    """One background process: how to start it and how to tell that it works."""

    name: str
    host: str
    port: int  # the endpoint clients use
    healthy: Callable[[], bool]
    command: Callable[[], list[str]] = lambda: []  # built lazily: it may need jars or Java
    env: Callable[[], dict[str, str]] = dict
    # every port the process listens on -> the variable that moves it
    ports: dict[int, str] = dataclasses.field(default_factory=dict)
    prepare: Callable[[], None] = lambda: None  # write config files, format storage...
    start_timeout: float = 60.0


@dataclasses.dataclass
class ServiceStatus:
    name: str
    endpoint: str
    pid: int | None
    running: bool
    healthy: bool


# ---------------------------------------------------------------- health checks


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mqtt_healthy(host: str, port: int) -> bool:
    """A real MQTT handshake: connect and wait for the broker's CONNACK."""
    if not port_open(host, port):
        return False
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"labkit-probe-{uuid.uuid4().hex[:8]}")
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + 3
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.2)
        return client.is_connected()
    except OSError:
        return False
    finally:
        client.disconnect()


def kafka_healthy(bootstrap: str) -> bool:
    """The broker answers a metadata request (it lists its topics)."""
    host, port = bootstrap.rsplit(":", 1)
    if not port_open(host, int(port)):
        return False
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=3)
        return len(metadata.brokers) > 0
    except Exception:  # KafkaException while the broker is still starting
        return False


def spark_master_state(host: str, ui_port: int) -> dict | None:
    """The master's own status page as JSON (status, alive workers...), or None."""
    try:
        with urllib.request.urlopen(f"http://{host}:{ui_port}/json/", timeout=2) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the embedded services


#: Where Debian and Homebrew put Mosquitto's broker: ``sbin`` folders, often not on a user's PATH.
MOSQUITTO_FOLDERS = ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin")


def mosquitto_binary() -> str | None:
    """Mosquitto's broker binary: on the PATH, or in one of :data:`MOSQUITTO_FOLDERS`."""
    return shutil.which("mosquitto", path=os.pathsep.join([os.environ.get("PATH", ""), *MOSQUITTO_FOLDERS]))


def chosen_mqtt_broker(s: Settings) -> str:
    """``mosquitto`` or ``amqtt``: the setting, or in ``auto`` whichever is installed."""
    if s.mqtt_broker == "mosquitto" and not mosquitto_binary():
        raise LabkitError(
            "LABKIT_MQTT_BROKER=mosquitto but mosquitto is not installed.",
            "install it (Debian/Ubuntu: sudo apt-get install mosquitto; macOS: brew install "
            "mosquitto) or set LABKIT_MQTT_BROKER=auto to use the pip-installed amqtt broker",
        )
    if s.mqtt_broker in ("mosquitto", "amqtt"):
        return s.mqtt_broker
    if s.mqtt_broker != "auto":
        raise LabkitError(f"LABKIT_MQTT_BROKER={s.mqtt_broker!r} is unknown.", "use auto, mosquitto or amqtt")
    return "mosquitto" if mosquitto_binary() else "amqtt"


def mqtt_service(s: Settings) -> Service:
    folder = s.state_dir / "mqtt"
    broker = chosen_mqtt_broker(s)

    def prepare() -> None:
        (folder / "data").mkdir(parents=True, exist_ok=True)
        # Persistence keeps QoS 1 messages queued for a disconnected persistent session (the
        # bridge), so a bridge restart loses nothing; the default queue of 1000 is too short
        # for a burst of 16 rooms, hence the larger limit.
        (folder / "mosquitto.conf").write_text(
            f"listener {s.mqtt_port} {s.mqtt_host}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder / 'data'}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 1000\n"
            "log_dest stdout\n"
        )
        (folder / "amqtt.yaml").write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: {s.mqtt_host}:{s.mqtt_port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )

    def command() -> list[str]:
        if broker == "mosquitto":
            return [mosquitto_binary(), "-c", str(folder / "mosquitto.conf")]
        amqtt = Path(sys.executable).parent / "amqtt"
        return [str(amqtt if amqtt.exists() else shutil.which("amqtt") or "amqtt"), "-c", str(folder / "amqtt.yaml")]

    return Service(
        name="mqtt",
        host=s.mqtt_host,
        port=s.mqtt_port,
        healthy=lambda: mqtt_healthy(s.mqtt_host, s.mqtt_port),
        command=command,
        prepare=prepare,
        ports={s.mqtt_port: "LABKIT_MQTT_PORT"},
        start_timeout=30,
    )


def kafka_server_properties(s: Settings, data_dir: Path) -> str:
    """A single-node KRaft broker: one process is both controller and broker."""
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{s.kafka_host}:{s.kafka_controller_port}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://{s.kafka_host}:{s.kafka_port},CONTROLLER://{s.kafka_host}:{s.kafka_controller_port}
advertised.listeners=PLAINTEXT://{s.kafka_host}:{s.kafka_port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
num.partitions=1
# one broker: internal topics cannot have more than one replica
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# topics are created by labkit.topics with their retention; a typo should fail, not create
auto.create.topics.enable=false
log.retention.hours=72
"""


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64, as ``kafka-storage random-uuid``.

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``, which the storage tool's
    argument parser would read as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_service(s: Settings) -> Service:
    folder = s.state_dir / "kafka"
    data_dir = folder / "data"
    properties = folder / "server.properties"

    def classpath() -> str:
        return os.pathsep.join(str(j) for j in jars.resolve("kafka", s))

    def prepare() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        properties.write_text(kafka_server_properties(s, data_dir))
        if (data_dir / "meta.properties").exists():
            return  # formatted by an earlier `up`: keep its topics and offsets
        cluster_id = new_cluster_id()
        result = subprocess.run(
            [str(require_java()), "-cp", classpath(), "kafka.tools.StorageTool",
             "format", "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise LabkitError(
                f"formatting Kafka's storage in {data_dir} failed: {result.stdout[-500:]}{result.stderr[-500:]}",
                f"delete {data_dir} and run `labkit up` again",
            )

    def command() -> list[str]:
        return [
            str(require_java()), f"-Xmx{s.kafka_heap}", "-Xms128m", "-XX:+UseG1GC",
            "-Djava.awt.headless=true", "-cp", classpath(), "kafka.Kafka", str(properties),
        ]  # fmt: skip

    return Service(
        name="kafka",
        host=s.kafka_host,
        port=s.kafka_port,
        healthy=lambda: kafka_healthy(s.kafka_bootstrap),
        command=command,
        prepare=prepare,
        ports={s.kafka_port: "LABKIT_KAFKA_PORT", s.kafka_controller_port: "LABKIT_KAFKA_CONTROLLER_PORT"},
        start_timeout=90,
    )


def spark_services(s: Settings) -> list[Service]:
    """A standalone master and one worker, started from the pyspark install's ``spark-class``.

    The worker offers 4 cores (task slots, not CPUs) and 2 GB, as in the compose stack: each
    application takes 2 slots and 1 GB (``spark.cores.max`` in labkit.spark), so a notebook's
    session and the ``labkit stream`` job it starts (lesson 07) run side by side. With only 2
    slots the second application would wait for the first one forever.
    """
    spark_home = jars.pyspark_home()
    spark_class = str(spark_home / "bin" / "spark-class")
    folder = s.state_dir / "spark"
    master_url = f"spark://127.0.0.1:{s.spark_master_port}"

    def env() -> dict[str, str]:
        java_home = str(require_java().resolve().parent.parent)
        return {"SPARK_HOME": str(spark_home), "JAVA_HOME": java_home, "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_LOG_DIR": str(folder), "PYSPARK_PYTHON": sys.executable}  # fmt: skip

    def prepare() -> None:
        (folder / "work").mkdir(parents=True, exist_ok=True)
        os.chmod(spark_class, 0o755)  # wheels do not always keep the executable bit

    def master_alive() -> bool:
        state = spark_master_state("127.0.0.1", s.spark_master_ui_port)
        return bool(state) and state.get("status") == "ALIVE"

    def worker_alive() -> bool:
        state = spark_master_state("127.0.0.1", s.spark_master_ui_port)
        return bool(state) and state.get("aliveworkers", 0) >= 1

    master = Service(
        name="spark-master",
        host="127.0.0.1",
        port=s.spark_master_port,
        healthy=master_alive,
        command=lambda: [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                         "--port", str(s.spark_master_port), "--webui-port", str(s.spark_master_ui_port)],
        env=env,
        prepare=prepare,
        ports={s.spark_master_port: "LABKIT_SPARK_MASTER_PORT", s.spark_master_ui_port: "LABKIT_SPARK_MASTER_UI_PORT"},
    )  # fmt: skip
    worker = Service(
        name="spark-worker",
        host="127.0.0.1",
        port=s.spark_worker_ui_port,
        healthy=worker_alive,
        command=lambda: [spark_class, "org.apache.spark.deploy.worker.Worker", master_url,
                         "--host", "127.0.0.1", "--cores", "4", "--memory", "2g",
                         "--webui-port", str(s.spark_worker_ui_port), "--work-dir", str(folder / "work")],
        env=env,
        ports={s.spark_worker_ui_port: "LABKIT_SPARK_WORKER_UI_PORT"},
    )  # fmt: skip
    return [master, worker]


def embedded_services(s: Settings, spark_cluster: bool = False) -> list[Service]:
    services = [mqtt_service(s), kafka_service(s)]
    if spark_cluster:
        services += spark_services(s)
    return services


# ---------------------------------------------------------------- pid files


def _pid_file(s: Settings, name: str) -> Path:
    return s.state_dir / "pids" / f"{name}.json"


def _log_file(s: Settings, name: str) -> Path:
    return s.state_dir / "logs" / f"{name}.log"


def running_process(s: Settings, name: str) -> psutil.Process | None:
    """The process ``up`` started for ``name``, if it still runs.

    A pid alone is not proof: after a reboot the number may belong to another program. The
    pid file also keeps the process's start time, and both must match.
    """
    pid_file = _pid_file(s, name)
    if not pid_file.exists():
        return None
    record = json.loads(pid_file.read_text())
    try:
        process = psutil.Process(record["pid"])
        if abs(process.create_time() - record["create_time"]) < 1 and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except psutil.Error:
        pass
    return None


def log_tail(s: Settings, name: str, lines: int = 20) -> str:
    log = _log_file(s, name)
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- up / down / status


def _start(s: Settings, service: Service) -> None:
    if running_process(s, service.name):
        print(f"{service.name}: already running on {service.host}:{service.port}")
        return
    for port, variable in service.ports.items():
        if port_open(service.host, port):
            raise LabkitError(
                f"port {port} on {service.host} is already in use by another program, "
                f"so {service.name} cannot start.",
                f"stop that program (`lsof -i :{port}` shows it) or set {variable} to a free "
                "port (see `labkit settings`)",
            )
    service.prepare()
    command = service.command()
    env = {**os.environ, **service.env()}
    log = _log_file(s, service.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(s, service.name).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as log_handle:
        # a session of its own: Ctrl-C in the terminal (or a notebook interrupt) does not kill it
        process = subprocess.Popen(command, stdout=log_handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=s.state_dir,
                                   start_new_session=True)  # fmt: skip
    record = {"pid": process.pid, "create_time": psutil.Process(process.pid).create_time(),
              "port": service.port, "command": command}  # fmt: skip
    _pid_file(s, service.name).write_text(json.dumps(record, indent=2))

    def healthy_or_exited() -> bool:
        return process.poll() is not None or service.healthy()

    wait_until(healthy_or_exited, f"starting {service.name} on {service.host}:{service.port}:",
               timeout=service.start_timeout)  # fmt: skip
    if process.poll() is not None or not service.healthy():
        exited = process.poll()
        _stop(s, service.name)
        why = f"exited with code {exited}" if exited is not None else f"is not healthy after {service.start_timeout:.0f} s"
        raise LabkitError(
            f"{service.name} {why}. Last lines of {log}:\n{log_tail(s, service.name)}",
            "read the log above; `labkit down` then `labkit up` retries from a clean start",
        )


def _stop(s: Settings, name: str, timeout: float = 20) -> bool:
    """Stop the process ``up`` started for ``name`` (SIGTERM, then SIGKILL). True if it ran."""
    process = running_process(s, name)
    _pid_file(s, name).unlink(missing_ok=True)
    if process is None:
        return False
    family = [process] + process.children(recursive=True)
    for p in family:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return True


def up(s: Settings | None = None, spark_cluster: bool = False, only: list[str] | None = None) -> list[ServiceStatus]:
    """Start every embedded service that is not running yet; in compose, check them.

    ``only`` names a subset (e.g. ``["mqtt"]``) for lessons and tests that need just one.
    """
    s = s or settings_module.get()
    if not s.embedded:
        from labkit import probe  # built on this module's health checks

        probe.require(s)
        return status(s)
    require_java()
    s.state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for service in embedded_services(s, spark_cluster):
        if only is None or service.name in only:
            _start(s, service)
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
        if (only is None or name in only) and _stop(s, name):
            print(f"{name}: stopped")
            stopped.append(name)
    return stopped


def status(s: Settings | None = None) -> list[ServiceStatus]:
    """Each service: endpoint, pid (embedded), whether it runs and whether it answers."""
    s = s or settings_module.get()
    if not s.embedded:
        return [
            ServiceStatus("mqtt", f"{s.mqtt_host}:{s.mqtt_port}", None, True, mqtt_healthy(s.mqtt_host, s.mqtt_port)),
            ServiceStatus("kafka", s.kafka_bootstrap, None, True, kafka_healthy(s.kafka_bootstrap)),
        ]
    spark_cluster = _pid_file(s, "spark-master").exists()
    result = []
    for service in embedded_services(s, spark_cluster):
        process = running_process(s, service.name)
        result.append(ServiceStatus(
            name=service.name,
            endpoint=f"{service.host}:{service.port}",
            pid=process.pid if process else None,
            running=process is not None,
            healthy=process is not None and service.healthy(),
        ))  # fmt: skip
    return result


def format_status(statuses: list[ServiceStatus]) -> str:
    lines = [f"{'service':<14}{'endpoint':<22}{'pid':<9}state"]
    for st in statuses:
        state = "healthy" if st.healthy else ("running, not answering" if st.running else "stopped")
        lines.append(f"{st.name:<14}{st.endpoint:<22}{st.pid or '-'!s:<9}{state}")
    return "\n".join(lines)


def ensure_up(s: Settings | None = None) -> None:
    """For notebooks: start the stack if it is not running, else say that it is."""
    s = s or settings_module.get()
    if all(st.healthy for st in status(s)):
        print(format_status(status(s)))
        return
    print(format_status(up(s)))
