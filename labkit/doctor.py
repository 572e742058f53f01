"""``labkit doctor``: is this machine ready for the lab, and what to do about each missing piece.

A newcomer learns that Java is missing or a port is taken only when something fails, minutes in.
The doctor looks first, for both ways of running the lab:

* **embedded** (labkit starts the services): Java 17+, Mosquitto (else the pip broker amqtt,
  which loses readings across a bridge restart), the MQTT/Kafka ports free, memory, disk, the
  jar cache, a writable state folder;
* **docker** (the workshop): Docker and Compose v2, memory and disk for the containers.

Each check says what it found and, when something is missing, what to do. ``labkit up`` and
``labkit demo`` run the embedded checks first and stop with that advice (:func:`require_before_up`).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import uuid

import psutil

from labkit import settings as settings_module
from labkit import stack
from labkit.errors import LabkitError
from labkit.stack import jars, java, processes, services

GIB = 1024**3
SPARK_UI_PORT = 4040  # Spark's first web UI; a busy one makes Spark move to 4041, 4042...
JUPYTER_PORT = 8888  # JupyterLab's default (`make lab`, and the Docker workshop's published port)


@dataclasses.dataclass(frozen=True)
class Check:
    """One prerequisite: what was found, and what to do when it is not ready."""

    path: str  # "embedded", "docker", or "both"
    name: str
    ready: bool
    found: str
    advice: str = ""  # what to do; empty when ready
    required: bool = True  # False: the lab still runs, with the loss the advice explains


def run(s: settings_module.Settings, path: str = "both") -> list[Check]:
    """Every check for ``path`` ("embedded", "docker" or "both"), in the order of the table."""
    checks = [python_version()]
    if path in ("embedded", "both"):
        checks += [java_runtime(), mosquitto(s), *ports(s), state_folder(s), jar_cache(s)]
    checks += [memory(path), disk(s, path)]
    if path in ("docker", "both"):
        checks += docker()
    return checks


# ---------------------------------------------------------------- the checks


def python_version() -> Check:
    found = f"Python {sys.version.split()[0]}"
    ok = sys.version_info >= (3, 10)
    return Check(
        "both", "Python 3.10+", ok, found, "" if ok else "install Python 3.10 or newer (README, Prerequisites)"
    )


def java_runtime() -> Check:
    """Spark and the Kafka broker are JVM programs: Java 17+, from JAVA_HOME or the PATH."""
    try:
        executable = java.java_executable()
        major = java.java_version(executable)
    except LabkitError as error:
        return Check("embedded", "Java 17+", False, error.what, error.next_step)
    ok = major >= java.MINIMUM_JAVA
    return Check("embedded", "Java 17+", ok, f"Java {major} ({executable})", "" if ok else java.INSTALL_HINT)


def mosquitto(s: settings_module.Settings) -> Check:
    binary = services.mosquitto_binary()
    if binary:
        return Check("embedded", "Mosquitto", True, binary)
    return Check(
        "embedded",
        "Mosquitto",
        False,
        "not found (on the PATH or in " + ", ".join(services.MOSQUITTO_FOLDERS) + ")",
        "without it, " + stack.AMQTT_CAVEAT,
        required=s.mqtt_broker == "mosquitto",  # asked for by name: `up` cannot start without it
    )


def ports(s: settings_module.Settings) -> list[Check]:
    """The brokers' ports must be free (or held by labkit's own brokers); Spark's UI and Jupyter's should be."""
    wanted = [
        (s.mqtt_port, "mqtt", "LABKIT_MQTT_PORT", True),
        (s.kafka_port, "kafka", "LABKIT_KAFKA_PORT", True),
        (s.kafka_controller_port, "kafka", "LABKIT_KAFKA_CONTROLLER_PORT", True),
        (SPARK_UI_PORT, "Spark UI", "", False),
        (JUPYTER_PORT, "JupyterLab", "", False),
    ]
    checks = []
    for port, owner, variable, required in wanted:
        name = f"port {port} ({owner})"
        host = s.mqtt_host if owner == "mqtt" else s.kafka_host if owner == "kafka" else "127.0.0.1"
        if not stack.port_open(host, port, timeout=0.5):
            checks.append(Check("embedded", name, True, "free"))
            continue
        own = processes.running_process(s, owner) if owner in ("mqtt", "kafka") else None
        if own is not None:
            checks.append(Check("embedded", name, True, f"labkit's own {owner} (pid {own.pid})"))
            continue
        if variable:
            advice = f"stop that program, or set {variable} to a free port (e.g. {port + 10000})"
        else:
            advice = (
                f"nothing to do: {owner} takes the next free port ({port + 1}...); stop that program to keep {port}"
            )
        checks.append(Check("embedded", name, False, f"in use by {holder(port)}", advice, required))
    return checks


def holder(port: int) -> str:
    """Which program listens on ``port``, as far as this user may see."""
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                process = psutil.Process(connection.pid)
                return f"{process.name()} (pid {process.pid})"
    except psutil.Error:
        pass
    return f"another program (`lsof -i :{port}` names it)"


def state_folder(s: settings_module.Settings) -> Check:
    """``labkit up`` writes pid files, logs and broker data there: try it."""
    probe_file = s.state_dir / f".doctor-{uuid.uuid4().hex[:8]}"
    try:
        s.state_dir.mkdir(parents=True, exist_ok=True)
        probe_file.write_text("ok")
        probe_file.unlink()
    except OSError as error:
        return Check(
            "embedded",
            "state folder writable",
            False,
            f"{s.state_dir}: {error.strerror or error}",
            "set LABKIT_STATE_DIR to a folder you can write, e.g. ~/.labkit",
        )
    return Check("embedded", "state folder writable", True, str(s.state_dir))


def jar_cache(s: settings_module.Settings) -> Check:
    missing = [group for group in ("spark", "kafka") if not jars.is_cached(group, s)]
    if not missing:
        return Check("embedded", "jars cached", True, str(s.jars_dir))
    return Check(
        "embedded",
        "jars cached",
        False,
        f"not yet: {', '.join(missing)} (in {s.jars_dir})",
        "`labkit jars` fetches them once (~90 MB from Maven Central, or LABKIT_MAVEN_REPO)",
        required=False,
    )


def memory(path: str) -> Check:
    """4 GB free for Spark + Kafka on this machine; the Docker workshop wants 8 GB for Docker."""
    available = psutil.virtual_memory().available
    needed = 8 if path == "docker" else 4
    ok = available >= needed * GIB
    advice = "" if ok else f"close programs to free memory: the lab needs about {needed} GB while Spark runs"
    return Check(path, f"memory ({needed} GB free)", ok, f"{available / GIB:.1f} GB available", advice, required=False)


def disk(s: settings_module.Settings, path: str) -> Check:
    """About 2 GB for .venv and the jars (embedded), 6 GB for the Docker images and volumes."""
    folder = next(p for p in [s.home, *s.home.parents] if p.exists())
    free = shutil.disk_usage(folder).free
    needed = 6 if path == "docker" else 2
    ok = free >= needed * GIB
    advice = "" if ok else f"free disk space: the lab needs about {needed} GB"
    return Check(path, f"disk ({needed} GB free)", ok, f"{free / GIB:.1f} GB free in {folder}", advice, required=False)


def docker() -> list[Check]:
    """The workshop path: the docker command, Compose v2 (``docker compose``), a running engine."""
    install = "install Docker Desktop, or Docker Engine with the compose plugin (docs.docker.com/get-docker)"
    if not shutil.which("docker"):
        return [Check("docker", "Docker", False, "docker not found on the PATH", install)]
    checks = [Check("docker", "Docker", True, _output(["docker", "--version"]) or "docker found")]
    compose = _output(["docker", "compose", "version"])
    if compose:
        checks.append(Check("docker", "Compose v2", True, compose))
    else:
        checks.append(
            Check(
                "docker",
                "Compose v2",
                False,
                "`docker compose` is not available",
                "install the compose plugin (Debian/Ubuntu: sudo apt-get install docker-compose-plugin)",
            )
        )
    server = _output(["docker", "info", "--format", "{{.ServerVersion}}"])
    checks.append(
        Check(
            "docker",
            "Docker engine running",
            bool(server),
            f"engine {server}" if server else "no answer",
            "" if server else "start Docker (Docker Desktop, or `sudo systemctl start docker`)",
        )
    )
    return checks


def _output(command: list[str]) -> str:
    """The first line a command prints, or "" when it fails or takes more than 15 s."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ""


# ---------------------------------------------------------------- the table and the verdict


def format_table(checks: list[Check]) -> str:
    """What is ready, in a table, then what to do about each piece that is not."""
    width = max(len(c.name) for c in checks) + 2
    lines = [f"{'for':<10}{'check':<{width}}{'state':<10}found"]
    for c in checks:
        state = "ready" if c.ready else ("MISSING" if c.required else "warning")
        lines.append(f"{c.path:<10}{c.name:<{width}}{state:<10}{c.found}")
    todo = [c for c in checks if not c.ready]
    if todo:
        lines += ["", "What to do:"]
        lines += [f"  - {c.name}: {c.advice}" for c in todo]
    else:
        lines += ["", "Everything is ready."]
    return "\n".join(lines)


def require(checks: list[Check], path: str = "both") -> None:
    """Raise a LabkitError for the required checks of ``path`` that are not ready."""
    blocking = [c for c in checks if c.required and not c.ready and (path == "both" or c.path in (path, "both"))]
    if blocking:
        raise LabkitError(
            "not ready: " + "; ".join(f"{c.name}: {c.found.rstrip('.')}" for c in blocking),
            "; ".join(c.advice for c in blocking),
        )


def require_before_up(s: settings_module.Settings) -> None:
    """``labkit up`` / ``labkit demo``: stop before starting anything when a prerequisite is missing.

    Warnings (no Mosquitto, little memory) are printed and do not stop it.
    """
    if not s.embedded:
        return  # compose: Docker runs the services; `up` only checks that they answer
    checks = [java_runtime(), mosquitto(s), *[c for c in ports(s) if c.required], state_folder(s)]
    require(checks, "embedded")
    for c in checks:
        if not c.ready:
            print(f"note: {c.name}: {c.found}. {c.advice}")
