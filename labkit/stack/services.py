"""The embedded services: what runs for each, its config files, its ports, its health probe.

=============  ===========================================================================
service        what runs
=============  ===========================================================================
mqtt           Mosquitto when it is installed, else amqtt (a pip-installed broker)
kafka          an Apache Kafka broker in KRaft mode (no ZooKeeper), from the jar cache
spark-master   on request (``--spark-cluster``): Spark's standalone master, from pyspark
spark-worker   ... and one worker with 4 task slots
=============  ===========================================================================

A :class:`Service` only *describes* a process; :mod:`labkit.stack.processes` starts and stops it.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable

from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.stack import jars
from labkit.stack.java import require_java
from labkit.stack.probes import kafka_healthy, mqtt_healthy, spark_master_state

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


def _mosquitto_user() -> str:
    """The ``user`` line of mosquitto.conf: stay root when labkit runs as root (CI, a container).

    Started as root, Mosquitto drops to the ``mosquitto`` user before it saves anything. That
    user cannot write a folder root made, nor even reach one under a root-only home folder, so
    every save would fail ("Error saving in-memory database ... Permission denied", in its log
    only) and no session or queued reading would survive a broker restart. It listens on
    127.0.0.1 only and writes only labkit's state folder.
    """
    return "user root\n" if os.geteuid() == 0 else ""


def mqtt_service(s: Settings) -> Service:
    folder = s.state_dir / "mqtt"
    broker = chosen_mqtt_broker(s)

    def prepare() -> None:
        (folder / "data").mkdir(parents=True, exist_ok=True)
        # Persistence keeps QoS 1 messages queued for a disconnected persistent session (the
        # bridge), so a bridge restart loses nothing; the default queue of 1000 is too short
        # for a burst of 16 rooms, hence the larger limit. Mosquitto keeps all that in memory
        # and writes it to disk every `autosave_interval` seconds (default 1800; and at a clean
        # shutdown): a broker killed outright loses what came since the last save, the bridge's
        # subscription included, so readings sent after its restart and before the bridge is
        # back would have no subscriber. Saving every second bounds that window (the fault
        # suite, tests/test_faults.py, measures it).
        (folder / "mosquitto.conf").write_text(
            f"listener {s.mqtt_port} {s.mqtt_host}\n"
            "allow_anonymous true\n"
            f"{_mosquitto_user()}"
            "persistence true\n"
            f"persistence_location {folder / 'data'}/\n"
            "autosave_interval 1\n"
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
            [
                str(require_java()),
                "-cp",
                classpath(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(properties),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise LabkitError(
                f"formatting Kafka's storage in {data_dir} failed: {result.stdout[-500:]}{result.stderr[-500:]}",
                f"delete {data_dir} and run `labkit up` again",
            )

    def command() -> list[str]:
        return [
            str(require_java()),
            f"-Xmx{s.kafka_heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-cp",
            classpath(),
            "kafka.Kafka",
            str(properties),
        ]

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
        return {
            "SPARK_HOME": str(spark_home),
            "JAVA_HOME": java_home,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(folder),
            "PYSPARK_PYTHON": sys.executable,
        }

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
        command=lambda: [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(s.spark_master_port),
            "--webui-port",
            str(s.spark_master_ui_port),
        ],
        env=env,
        prepare=prepare,
        ports={s.spark_master_port: "LABKIT_SPARK_MASTER_PORT", s.spark_master_ui_port: "LABKIT_SPARK_MASTER_UI_PORT"},
    )
    worker = Service(
        name="spark-worker",
        host="127.0.0.1",
        port=s.spark_worker_ui_port,
        healthy=worker_alive,
        command=lambda: [
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            master_url,
            "--host",
            "127.0.0.1",
            "--cores",
            "4",
            "--memory",
            "2g",
            "--webui-port",
            str(s.spark_worker_ui_port),
            "--work-dir",
            str(folder / "work"),
        ],
        env=env,
        ports={s.spark_worker_ui_port: "LABKIT_SPARK_WORKER_UI_PORT"},
    )
    return [master, worker]


def embedded_services(s: Settings, spark_cluster: bool = False) -> list[Service]:
    services = [mqtt_service(s), kafka_service(s)]
    if spark_cluster:
        services += spark_services(s)
    return services
