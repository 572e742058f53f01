"""Where everything is: the profile, every endpoint and every path, in one frozen object.

The lab runs in two places (docs/architecture.md, "Profiles"):

* ``embedded`` (the default): labkit starts Mosquitto, an Apache Kafka broker and, on request,
  a Spark standalone cluster on this machine, and the lake is a local folder.
* ``compose``: the services run in Docker containers and labkit only talks to them.

Notebooks never ask which profile is active. They call ``labkit.settings.get()`` (or
``use_profile(profile)`` with their papermill parameter) and use the endpoints it returns, so a
notebook that runs in CI runs unchanged in the Docker workshop.

Every value can be overridden by an environment variable. The table of variables lives in
``ENVIRONMENT`` below (and is printed by ``labkit settings``), so the documentation and the code
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path
from typing import Mapping

from labkit.errors import LabkitError

PROFILES = ("embedded", "compose")


def _project_root() -> Path:
    """The folder that holds ``labkit/``, when labkit runs from a checkout; else the cwd.

    Notebooks run with ``notebooks/`` as their working directory, scripts from the top level,
    tests from anywhere: anchoring relative paths at the checkout keeps them all pointing at the
    same ``data/`` and ``lake/`` folders.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


# name of the variable -> (embedded default, compose default, what it means)
ENVIRONMENT: dict[str, tuple[str, str, str]] = {
    "LABKIT_PROFILE": ("embedded", "compose", "embedded | compose"),
    "LABKIT_HOME": ("<checkout>", "<checkout>", "base folder for the relative paths below"),
    "LABKIT_STATE_DIR": (".labkit", ".labkit", "pid files, logs and broker data of `labkit up`"),
    "LABKIT_JARS_DIR": ("~/.cache/labkit/jars", "~/.cache/labkit/jars", "Maven artifact cache"),
    "LABKIT_MAVEN_REPO": ("", "", "Maven repository or mirror URL (empty: Maven Central)"),
    "LABKIT_MQTT_HOST": ("127.0.0.1", "mosquitto", "MQTT broker host"),
    "LABKIT_MQTT_PORT": ("11883", "1883", "MQTT broker port (embedded: not 1883, the system Mosquitto's)"),
    "LABKIT_MQTT_BROKER": ("auto", "auto", "auto | mosquitto | amqtt (embedded broker to start)"),
    "LABKIT_MAX_EVENT_AHEAD_S": ("10", "10", "bridge: readings stamped further ahead of its clock go to the DLQ"),
    "LABKIT_KAFKA_HOST": ("127.0.0.1", "redpanda", "Kafka API broker host"),
    "LABKIT_KAFKA_PORT": ("9092", "9092", "Kafka API broker port"),
    "LABKIT_KAFKA_CONTROLLER_PORT": ("9093", "9093", "KRaft controller port (embedded only)"),
    "LABKIT_KAFKA_VERSION": ("4.1.1", "4.1.1", "Apache Kafka broker version (embedded only)"),
    "LABKIT_KAFKA_HEAP": ("512m", "512m", "Kafka broker JVM heap (embedded only)"),
    "LABKIT_SPARK_MASTER": ("local[2]", "spark://spark-master:7077", "local[N] or spark://host:port"),
    "LABKIT_SPARK_MASTER_PORT": ("7077", "7077", "port of `labkit up --spark-cluster`'s master"),
    "LABKIT_SPARK_MASTER_UI_PORT": ("8080", "8081", "web UI of that master"),
    "LABKIT_SPARK_WORKER_UI_PORT": ("8083", "8083", "web UI of its worker"),
    "LABKIT_SPARK_DRIVER_MEMORY": ("1g", "1g", "spark.driver.memory"),
    "LABKIT_SHUFFLE_PARTITIONS": ("4", "4", "spark.sql.shuffle.partitions (Spark's 200 is too many)"),
    "LABKIT_LAKE_ROOT": ("lake", "s3a://datalake", "folder or s3a:// bucket of the Delta tables"),
    "LABKIT_METADATA_DB": ("data/metadata.db", "data/metadata.db", "SQLite file of the rooms table"),
    "LABKIT_S3_ENDPOINT": ("", "http://minio:9000", "S3 endpoint for an s3a:// lake"),
    "AWS_ACCESS_KEY_ID": ("", "", "S3 access key (compose: from .env)"),
    "AWS_SECRET_ACCESS_KEY": ("", "", "S3 secret key (compose: from .env)"),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything labkit needs to know about the machine it runs on."""

    profile: str
    home: Path
    state_dir: Path
    jars_dir: Path
    maven_repo: str
    mqtt_host: str
    mqtt_port: int
    mqtt_broker: str
    max_event_ahead_s: float
    kafka_host: str
    kafka_port: int
    kafka_controller_port: int
    kafka_version: str
    kafka_heap: str
    spark_master: str
    spark_master_port: int
    spark_master_ui_port: int
    spark_worker_ui_port: int
    spark_driver_memory: str
    shuffle_partitions: int
    lake_root: str
    metadata_db: Path
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str

    @property
    def kafka_bootstrap(self) -> str:
        """The ``bootstrap.servers`` string for Kafka clients and Spark's Kafka source."""
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def embedded(self) -> bool:
        return self.profile == "embedded"

    def table_path(self, name: str) -> str:
        """Where the Delta table ``name`` lives, e.g. ``<lake_root>/telemetry_5s_agg``."""
        return f"{self.lake_root.rstrip('/')}/{name}"

    def checkpoint_path(self, query_name: str) -> str:
        """Where the streaming query ``query_name`` keeps its checkpoint."""
        return f"{self.lake_root.rstrip('/')}/_checkpoints/{query_name}"


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an environment mapping (``os.environ`` when not given).

    Pure function of its input, so tests can build any configuration without touching the
    process environment. Most code should call :func:`get` instead.

    Every value is checked here, where it enters: a typo in a variable stops the first command
    with an ``error:`` naming the variable and a ``next:`` step, instead of a stack trace from
    Spark or a broker minutes later.
    """
    env = os.environ if environ is None else environ
    profile = env.get("LABKIT_PROFILE", "embedded").strip().lower() or "embedded"
    if profile not in PROFILES:
        raise _refused("LABKIT_PROFILE", profile, f"use one of {', '.join(PROFILES)}")
    column = 0 if profile == "embedded" else 1

    def value(name: str) -> str:
        return env.get(name, ENVIRONMENT[name][column])

    def checked(name: str, pattern: str, advice: str) -> str:
        text = value(name)
        if not re.fullmatch(pattern, text):
            raise _refused(name, text, advice)
        return text

    def port(name: str) -> int:
        text = checked(name, r"\d{1,5}", "give a port number between 1 and 65535")
        if not 1 <= int(text) <= 65535:
            raise _refused(name, text, "give a port number between 1 and 65535")
        return int(text)

    def seconds(name: str) -> float:
        return float(checked(name, r"\d+(\.\d+)?", "give a number of seconds, e.g. 10"))

    def host(name: str) -> str:
        return checked(
            name, _HOST, "give a host name or IP address only, e.g. 127.0.0.1 (the port has its own variable)"
        )

    home_text = env.get("LABKIT_HOME") or str(_project_root())
    home = Path(home_text).expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise _refused("LABKIT_HOME", home_text, "give a folder, or unset it to use the checkout")

    def path(name: str, folder: bool = True) -> Path:
        text = value(name)
        if not text.strip():
            raise _refused(name, text, f"unset it for the default ({ENVIRONMENT[name][column]}) or give a path")
        p = Path(text).expanduser()
        p = p if p.is_absolute() else home / p
        if p.exists() and p.is_dir() != folder:
            kind = "a folder" if folder else "a file, not a folder"
            raise _refused(name, text, f"give {kind} (it may not exist yet)")
        return p

    lake_root = value("LABKIT_LAKE_ROOT")
    if "://" in lake_root:
        check_location("LABKIT_LAKE_ROOT", lake_root)
    else:
        lake_root = str(path("LABKIT_LAKE_ROOT"))
    spark_master = checked(
        "LABKIT_SPARK_MASTER",
        r"local(\[(\d+|\*)\])?|spark://[^\s/:]+:\d{1,5}",
        "use local[N] (N cores, e.g. local[2]), local[*] or spark://host:port",
    )
    if spark_master == "local[0]":
        raise _refused("LABKIT_SPARK_MASTER", spark_master, "use at least one core, e.g. local[2]")
    shuffle_partitions = checked("LABKIT_SHUFFLE_PARTITIONS", r"0*[1-9]\d*", "give a whole number of 1 or more")
    memory = r"\d+[kKmMgGtT]?"
    memory_advice = "give a JVM memory size such as 512m or 2g (no space, no B)"

    return Settings(
        profile=profile,
        home=home,
        state_dir=path("LABKIT_STATE_DIR"),
        jars_dir=path("LABKIT_JARS_DIR"),
        maven_repo=checked(
            "LABKIT_MAVEN_REPO",
            r"\s*(https?://\S+|file:\S+)?\s*",
            "give the repository's URL, e.g. https://repo1.maven.org/maven2/, or leave it empty",
        ).strip(),
        mqtt_host=host("LABKIT_MQTT_HOST"),
        mqtt_port=port("LABKIT_MQTT_PORT"),
        mqtt_broker=checked("LABKIT_MQTT_BROKER", "auto|mosquitto|amqtt", "use auto, mosquitto or amqtt"),
        max_event_ahead_s=seconds("LABKIT_MAX_EVENT_AHEAD_S"),
        kafka_host=host("LABKIT_KAFKA_HOST"),
        kafka_port=port("LABKIT_KAFKA_PORT"),
        kafka_controller_port=port("LABKIT_KAFKA_CONTROLLER_PORT"),
        kafka_version=checked("LABKIT_KAFKA_VERSION", r"\d+(\.\d+){0,2}", "give a release number such as 4.1.1"),
        kafka_heap=checked("LABKIT_KAFKA_HEAP", memory, memory_advice),
        spark_master=spark_master,
        spark_master_port=port("LABKIT_SPARK_MASTER_PORT"),
        spark_master_ui_port=port("LABKIT_SPARK_MASTER_UI_PORT"),
        spark_worker_ui_port=port("LABKIT_SPARK_WORKER_UI_PORT"),
        spark_driver_memory=checked("LABKIT_SPARK_DRIVER_MEMORY", memory, memory_advice),
        shuffle_partitions=int(shuffle_partitions),
        lake_root=lake_root,
        metadata_db=path("LABKIT_METADATA_DB", folder=False),
        s3_endpoint=checked(
            "LABKIT_S3_ENDPOINT", r"(https?://[^\s/]+/?)?", "give a URL such as http://minio:9000, or leave it empty"
        ),
        s3_access_key=checked("AWS_ACCESS_KEY_ID", r"\S*", "remove the spaces (a pasted key often carries one)"),
        s3_secret_key=checked("AWS_SECRET_ACCESS_KEY", r"\S*", "remove the spaces (a pasted key often carries one)"),
    )


# a host name or an IPv4 address: letters, digits, dots, dashes, underscores (compose service names)
_HOST = r"[A-Za-z0-9_.-]+"


def _refused(name: str, text: str, advice: str) -> LabkitError:
    """The error for a variable whose value labkit cannot use: which one, and what to give instead."""
    return LabkitError(f"{name}={text!r} is not usable", f"{advice}, or unset {name} to use its default")


def check_location(name: str, text: str) -> str:
    """A lake or table location: a folder, or an ``s3a://bucket/...`` URL (Hadoop's S3 connector).

    ``s3://`` and ``s3n://`` look right but Spark has no file system for them here, and it would
    only say so deep inside the first write.
    """
    if "://" in text and not re.fullmatch(r"s3a://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?", text):
        raise _refused(name, text, "give a folder, or an S3 bucket as s3a://bucket (s3a, Hadoop's S3 connector)")
    return text


@functools.cache
def get() -> Settings:
    """The settings of this process, read from the environment once and then kept."""
    return load()


def use_profile(profile: str | None = None) -> Settings:
    """Choose the profile for this process and return its settings: a notebook's ``profile``.

    Every notebook has a papermill parameter ``profile``. Left at ``None`` it changes nothing:
    ``LABKIT_PROFILE`` decides (embedded when unset), which is how the same notebook runs in CI
    and, unchanged, inside the Docker workshop. A batch run can pick one explicitly, e.g.
    ``papermill notebooks/02_windowing.ipynb out.ipynb -p profile compose``.

    The choice goes into this process's environment, so the processes a lesson starts (lesson
    07's ``labkit stream``) make the same one, and the cached settings are read again.
    """
    if profile is not None:
        chosen = str(profile).strip().lower()
        if chosen not in PROFILES:
            raise LabkitError(f"profile={profile!r} is not a profile", f"use one of {', '.join(PROFILES)} (or None)")
        if os.environ.get("LABKIT_PROFILE") != chosen:
            os.environ["LABKIT_PROFILE"] = chosen
            get.cache_clear()
    return get()


def describe(settings: Settings | None = None) -> str:
    """A table of every variable, its value now and what it means (``labkit settings``)."""
    s = settings or get()
    lines = [f"profile: {s.profile}"]
    for field in dataclasses.fields(s):
        shown = getattr(s, field.name)
        if field.name.endswith("_key") and shown:
            shown = "********"
        lines.append(f"  {field.name:<22} {shown}")
    lines.append("")
    lines.append("Environment variables (embedded default | compose default):")
    for name, (emb, comp, meaning) in ENVIRONMENT.items():
        lines.append(f"  {name:<30} {emb or '-'} | {comp or '-'}   {meaning}")
    return "\n".join(lines)
