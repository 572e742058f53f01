"""Lint the Docker workshop stack: docker-compose.yml, the lab image, .env.example.

CI has no Docker engine, so nothing here starts a container. Each check reads the files and
returns a list of problems, in words a learner (or the next maintainer) can act on; ``main``
prints them and fails. tests/test_compose_lint.py runs every check on the real files and shows
each one failing on a broken copy: a check that cannot fail proves nothing.

This is the lab's own rules. Whether Compose itself accepts the file (its schema, its
consistency rules, every profile) is checked by Compose's own loader: tools/compose-check.

Compose substitutes ``${VARIABLE}`` from ``.env`` before it reads the file; the checks do the
same with the learning defaults of ``.env.example`` (and, for ports, with no .env at all).

    python tools/compose_lint.py        # prints each problem; exit status 1 if there is one

The lists below are the lab's policy, in one place, meant to grow: another registry, a new
service's system port, a new profile's memory budget.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: labkit is imported from this checkout
    sys.path.insert(0, str(ROOT))

from labkit import settings  # noqa: E402
from labkit.stack import java  # noqa: E402

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "lab" / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
# The Compose Specification's current JSON schema, as compose-go embeds it (tools/data/README.md).
SCHEMA = Path(__file__).with_name("data") / "compose-spec.json"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Where images may come from: registry/namespace prefixes that serve the images today, and why.
# An image outside the list fails the lint. Add an entry when a service needs a new source.
ALLOWED_IMAGE_SOURCES = {
    "docker.io/library/": "Docker Hub's official images (python, eclipse-mosquitto, postgres...)",
    "docker.io/redpandadata/": "Redpanda's images, published on Docker Hub by Redpanda",
    "quay.io/minio/": "MinIO's images: the same release tags as Docker Hub had, still served",
    "docker.io/grafana/": "Grafana's images, published on Docker Hub by Grafana Labs",
}
# Sources known to be gone, with what happened: a clearer message than "not allowed".
GONE_IMAGE_SOURCES = {
    "docker.io/minio/": "Docker Hub stopped serving minio/minio and minio/mc around 2026-09-11 "
    "(pull access denied): use quay.io/minio/... with the same tag",
}

# Host ports that a prerequisite's system service takes on a learner's laptop: a default
# published there makes `docker compose up` fail with "address already in use".
SYSTEM_SERVICE_PORTS = {
    1883: "Debian/Ubuntu's mosquitto package (a README prerequisite) runs a system broker on 1883",
    8883: "the system Mosquitto's TLS port, when configured",
    5432: "Debian/Ubuntu's postgresql package runs a system server on 5432",
}

# Memory budgets: the mem_limits of the long-running services of a profile set must sum to at
# most this many MiB. One-shot jobs (topics, bucket...) are left out: the services that wait for
# them start after they have exited. docs/workshop-docker.md, "Memory", explains the figures.
MEMORY_BUDGETS_MIB = {
    "lessons (no profile)": ((), 6144),
    "live building (--profile live)": (("live",), 6656),
    "everything (--profile stream)": (("stream",), 8704),  # + the alert job's 1024 MiB
}

LAB_IMAGE = "labkit-lab"
LAB_HOME = "/lab"  # LABKIT_HOME in the lab image: the editable install of labkit is /lab/labkit
LOOPBACK = "127.0.0.1"
# Where the state that must survive `docker compose down` (without -v) lives in each image.
STATE_PATHS = {"redpanda": "/var/lib/redpanda/data", "minio": "/data", "mosquitto": "/mosquitto/data"}
LAB_COMMANDS = {
    "topics": [["labkit", "topics"]],
    "simulator": [["labkit", "init-metadata"], ["labkit", "simulate", "--realtime"]],
    "bridge": [["labkit", "bridge"]],
    "stream": [["labkit", "stream"]],
}


# ---------------------------------------------------------------- reading the files


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file; comments and blank lines skipped."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


def interpolate(value, env: dict[str, str]):
    """Substitute ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` and ``$$`` as compose does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        present = env.get(name) not in (None, "") if op and op.startswith(":") else name in env
        if present:
            return env[name]
        if op in (":?", "?"):
            raise KeyError(f"{name} is not set: {arg}")
        return arg if op in (":-", "-") else ""

    return VARIABLE.sub(substitute, value)


def load_compose(env: dict[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict:
    """A compose file as compose sees it, with .env.example's values (or ``env``)."""
    raw = yaml.safe_load(path.read_text())
    return interpolate(raw, read_env_file(ENV_EXAMPLE) if env is None else env)


def services(compose: dict) -> dict[str, dict]:
    return compose.get("services") or {}


def is_lab(service: dict) -> bool:
    return str(service.get("image", "")).split(":")[0] == LAB_IMAGE


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a dict (compose also allows a list of NAME=value)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_words(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def command_text(service: dict) -> str:
    return " ".join(command_words(service))


def option(words: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command."""
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def one_shots(compose: dict) -> set[str]:
    """Services others wait for to *finish* (topics, bucket): they need no healthcheck."""
    return {
        dependency
        for service in services(compose).values()
        if isinstance(service.get("depends_on"), dict)
        for dependency, spec in service["depends_on"].items()
        if (spec or {}).get("condition") == "service_completed_successfully"
    }


def published_ports(compose: dict) -> list[tuple[str, str, str, str]]:
    """(service, host ip, host port, container port) of every published port (short syntax)."""
    result = []
    for name, service in services(compose).items():
        for port in service.get("ports") or []:
            parts = str(port).split("/")[0].split(":")
            ip = parts[0] if len(parts) == 3 else ""
            host = parts[-2] if len(parts) >= 2 else ""
            result.append((name, ip, host, parts[-1]))
    return result


def volume_mounts(service: dict) -> dict[str, str]:
    """target path -> source (a named volume, or a ./path for a bind mount)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume.get("target", "")] = volume.get("source", "")
        else:
            source, _, rest = str(volume).partition(":")
            mounts[rest.split(":")[0]] = source
    return mounts


def compose_settings() -> settings.Settings:
    return settings.load({"LABKIT_PROFILE": "compose"})


# ---------------------------------------------------------------- the checks


def check_schema(compose: dict) -> list[str]:
    """The file is valid Compose: the specification's JSON schema accepts it."""
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(compose)]


def check_images(compose: dict) -> list[str]:
    """Every service has an image pinned to a version (no `latest`, no missing tag)."""
    problems = []
    version = PYPROJECT["project"]["version"]
    for name, service in services(compose).items():
        image = service.get("image")
        if not image and not service.get("build"):
            problems.append(f"{name}: neither image nor build")
            continue
        if not image:
            problems.append(f"{name}: built without an image name (tag it so the lab services share it)")
            continue
        repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        if not tag or tag == "latest" or not re.search(r"\d", tag):
            problems.append(f"{name}: image {image} is not pinned to a version")
        if repository == LAB_IMAGE and tag != version:
            problems.append(f"{name}: {image} should be tagged with labkit's version {version}")
    return problems


def check_healthchecks(compose: dict) -> list[str]:
    """Long-running services have a healthcheck; one-shot jobs do not restart and are waited for."""
    problems = []
    finished = one_shots(compose)
    for name, service in services(compose).items():
        if name in finished:
            if service.get("restart", "no") != "no":
                problems.append(f'{name}: a one-shot job must not restart (restart: "no")')
            adopters = [
                n
                for n, s in services(compose).items()
                if n not in finished and isinstance(s.get("depends_on"), dict) and name in s["depends_on"]
            ]
            if not adopters:
                problems.append(
                    f"{name}: no long-running service waits for this one-shot job to complete, so "
                    "`docker compose up --wait` reports its exit as a failure"
                )
            continue
        test = (service.get("healthcheck") or {}).get("test")
        if not test or test in (["NONE"], "NONE") or (service.get("healthcheck") or {}).get("disable"):
            problems.append(f"{name}: a long-running service without a healthcheck")
    return problems


def check_depends_on(compose: dict) -> list[str]:
    """Start order by conditions: healthy for services, completed for one-shot jobs."""
    problems = []
    all_services = services(compose)
    finished = one_shots(compose)
    for name, service in all_services.items():
        depends = service.get("depends_on")
        if depends is None:
            continue
        if not isinstance(depends, dict):
            problems.append(f"{name}: depends_on without conditions starts too early: use the long form")
            continue
        for dependency, spec in depends.items():
            condition = (spec or {}).get("condition")
            target = all_services.get(dependency)
            if target is None:
                problems.append(f"{name}: depends on unknown service {dependency}")
            elif dependency in finished and condition != "service_completed_successfully":
                problems.append(f"{name}: waits for one-shot {dependency} with {condition}")
            elif dependency not in finished and condition != "service_healthy":
                problems.append(f"{name}: should wait for {dependency} to be healthy, not {condition}")
            elif condition == "service_healthy" and not (target.get("healthcheck") or {}).get("test"):
                problems.append(f"{name}: waits for {dependency} to be healthy, but it has no healthcheck")
            elif target.get("profiles") and set(service.get("profiles") or ["(none)"]) - set(target["profiles"]):
                problems.append(f"{name}: starts without {dependency}, which only runs in profile {target['profiles']}")
    return problems


def check_ports(compose: dict) -> list[str]:
    """Published ports are bound to 127.0.0.1 and no two services publish the same one."""
    problems, seen = [], {}
    for name, ip, host, _ in published_ports(compose):
        if ip != LOOPBACK:
            problems.append(f"{name}: port {host} is published on all interfaces: bind it to {LOOPBACK}")
        if not host:
            problems.append(f"{name}: a random host port: give it a fixed one for the docs")
        elif host in seen:
            problems.append(f"{name}: host port {host} is already published by {seen[host]}")
        seen.setdefault(host, name)
    return problems


def check_endpoints(compose: dict) -> list[str]:
    """The services are where `labkit.settings` (compose profile) expects them."""
    s = compose_settings()
    svc = services(compose)
    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    # MQTT: a service named like the host, listening on the port (mosquitto.conf).
    mqtt = svc.get(s.mqtt_host)
    need(mqtt is not None, f"no service {s.mqtt_host} (LABKIT_MQTT_HOST)")
    if mqtt:
        conf = volume_mounts(mqtt).get("/mosquitto/config/mosquitto.conf", "")
        text = (ROOT / conf).read_text() if conf and (ROOT / conf).is_file() else ""
        need(
            re.search(rf"^listener\s+{s.mqtt_port}\b", text, re.M) is not None,
            f"{s.mqtt_host}: mounted mosquitto.conf has no `listener {s.mqtt_port}`",
        )

    # Kafka API: the internal listener is advertised as host:port of the compose profile.
    kafka = svc.get(s.kafka_host)
    need(kafka is not None, f"no service {s.kafka_host} (LABKIT_KAFKA_HOST)")
    if kafka:
        words = command_words(kafka)
        listens = option(words, "--kafka-addr") or ""
        advertised = option(words, "--advertise-kafka-addr") or ""
        need(
            f"internal://{s.kafka_bootstrap}" in advertised.split(","),
            f"{s.kafka_host}: advertises {advertised!r}, labkit expects internal://{s.kafka_bootstrap}",
        )
        need(
            any(a.endswith(f":{s.kafka_port}") for a in listens.split(",")),
            f"{s.kafka_host}: no listener on port {s.kafka_port}",
        )
    console = svc.get("redpanda-console")
    if console:
        need(
            environment(console).get("KAFKA_BROKERS") == s.kafka_bootstrap,
            f"redpanda-console: KAFKA_BROKERS should be {s.kafka_bootstrap}",
        )

    # Spark: the master's --host/--port, the worker's master URL, and the stream job's.
    host, port = s.spark_master.removeprefix("spark://").split(":")
    master = svc.get(host)
    need(master is not None, f"no service {host} for {s.spark_master}")
    if master:
        words = command_words(master)
        need("org.apache.spark.deploy.master.Master" in words, f"{host}: does not run a Spark master")
        need(
            option(words, "--host") == host and option(words, "--port") == port,
            f"{host}: should run with --host {host} --port {port}",
        )
        need(
            option(words, "--webui-port") == str(s.spark_master_ui_port),
            f"{host}: its UI should listen on {s.spark_master_ui_port} (LABKIT_SPARK_MASTER_UI_PORT, labkit status)",
        )
    workers = [n for n, v in svc.items() if "org.apache.spark.deploy.worker.Worker" in command_words(v)]
    need(bool(workers), "no Spark worker")
    for name in workers:
        need(s.spark_master in command_words(svc[name]), f"{name}: should register with {s.spark_master}")

    # The lake: MinIO on the endpoint's host and port, and the bucket of the lake root.
    endpoint = re.fullmatch(r"https?://([\w.-]+):(\d+)", s.s3_endpoint)
    minio = svc.get(endpoint.group(1)) if endpoint else None
    need(minio is not None, f"no service for LABKIT_S3_ENDPOINT {s.s3_endpoint}")
    if minio:
        need(
            option(command_words(minio), "--address") == f":{endpoint.group(2)}",
            f"minio: should serve the S3 API on :{endpoint.group(2)}",
        )
    bucket = s.lake_root.removeprefix("s3a://").split("/")[0]
    creates = [n for n, v in svc.items() if re.search(rf"\bmc mb\b.*\s\w+/{re.escape(bucket)}(\s|$)", command_text(v))]
    need(bool(creates), f"no service creates the bucket {bucket} (LABKIT_LAKE_ROOT {s.lake_root})")
    for name in creates:
        need(s.s3_endpoint in command_text(svc[name]), f"{name}: should talk to {s.s3_endpoint}")

    # Every lab container resolves the same endpoints: none overrides them with something else.
    # Spark may run inside a container instead (local[N], as the alert job does): no endpoint.
    expected = (s.mqtt_host, s.mqtt_port, s.kafka_bootstrap, s.spark_master, s.s3_endpoint, s.lake_root)
    for name, service in svc.items():
        if is_lab(service):
            mine = settings.load(environment(service))
            got = (
                mine.mqtt_host,
                mine.mqtt_port,
                mine.kafka_bootstrap,
                s.spark_master if re.fullmatch(r"local\[\d+\]", mine.spark_master) else mine.spark_master,
                mine.s3_endpoint,
                mine.lake_root,
            )
            need(got == expected, f"{name}: its environment points labkit at {got}, not {expected}")
    return problems


def check_environment(compose: dict) -> list[str]:
    """Lab containers run the compose profile; S3 keys are MinIO's, from .env."""
    problems = []
    svc = services(compose)
    minio = environment(svc.get("minio", {}))
    for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        if not minio.get(key):
            problems.append(f"minio: {key} is not set")
    for name, service in svc.items():
        if not is_lab(service):
            continue
        env = environment(service)
        if env.get("LABKIT_PROFILE") != "compose":
            problems.append(f"{name}: LABKIT_PROFILE=compose is not set")
        if name in LAB_COMMANDS or name == "jupyter":  # they talk to the lake
            if (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) != (
                minio.get("MINIO_ROOT_USER"),
                minio.get("MINIO_ROOT_PASSWORD"),
            ):
                problems.append(f"{name}: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY should be MinIO's root credentials")
    return problems


def check_volumes(compose: dict) -> list[str]:
    """What must survive a restart sits in named volumes, declared at the top level."""
    problems = []
    svc = services(compose)
    declared = set(compose.get("volumes") or {})
    wanted = {(name, path) for name, path in STATE_PATHS.items()}
    # The lab's data/ folder, wherever labkit puts metadata.db, in every lab service that uses it
    # (spark-worker too: the executors read the rooms table through JDBC, labkit.pipeline).
    data_dir = str(Path(settings.ENVIRONMENT["LABKIT_METADATA_DB"][1]).parent)
    for name in ("jupyter", "simulator", "stream", "spark-worker"):
        wanted.add((name, f"{dockerfile_env(DOCKERFILE.read_text()).get('LABKIT_HOME', '/lab')}/{data_dir}"))
    for name, path in sorted(wanted):
        source = volume_mounts(svc.get(name, {})).get(path)
        if source is None:
            problems.append(f"{name}: nothing is mounted at {path}; its state is lost with the container")
        elif source.startswith((".", "/")) or source not in declared:
            problems.append(f"{name}: {path} should be a named volume declared under `volumes:`, not {source}")
    return problems


def check_lab_services(compose: dict) -> list[str]:
    """simulator, bridge, topics and stream run the labkit commands; the live ones are in profiles."""
    problems = []
    svc = services(compose)
    for name, commands in LAB_COMMANDS.items():
        service = svc.get(name)
        if service is None or not is_lab(service):
            problems.append(f"{name}: missing, or not built from the lab image")
            continue
        text = command_text(service)
        for command in commands:
            if " ".join(command) not in text:
                problems.append(f"{name}: should run `{' '.join(command)}`")
    if "stream" in svc and not svc["stream"].get("profiles"):
        problems.append("stream: should only start with its profile (docker compose --profile stream up)")
    for name in ("simulator", "bridge"):  # live readings would disturb the lessons' exact checks
        if name in svc and "live" not in (svc[name].get("profiles") or []):
            problems.append(f"{name}: should only start with the profile `live` (or `stream`), not beside the lessons")
    for name, service in svc.items():  # an edit to labkit reaches every lab container
        if is_lab(service) and volume_mounts(service).get(f"{LAB_HOME}/labkit", "").rstrip("/") != "./labkit":
            problems.append(f"{name}: ./labkit is not mounted at {LAB_HOME}/labkit (edits would not reach it)")
    jupyter = svc.get("jupyter", {})
    mounted = volume_mounts(jupyter)
    for folder in ("notebooks", "exercises", "solutions"):
        if not any(src.rstrip("/") == f"./{folder}" for src in mounted.values()):
            problems.append(f"jupyter: ./{folder} is not mounted")
    return problems


def normalised_image(image: str) -> str:
    """``eclipse-mosquitto:2`` -> ``docker.io/library/eclipse-mosquitto:2``, as Docker resolves it."""
    first = image.split("/")[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def images_built(compose: dict) -> set[str]:
    return {s["image"] for s in services(compose).values() if s.get("build") and s.get("image")}


def check_builders(compose: dict) -> list[str]:
    """One service builds each image; the others use it and never try to pull it."""
    problems = []
    builders: dict[str, list[str]] = {}
    for name, service in services(compose).items():
        if service.get("build"):
            builders.setdefault(service.get("image", f"(unnamed, {name})"), []).append(name)
    for image, names in builders.items():
        if len(names) > 1:
            problems.append(
                f"{image} is built by {len(names)} services ({', '.join(names)}): Compose builds them in "
                "parallel and the exports race ('image already exists'); keep `build:` on one"
            )
    for name, service in services(compose).items():
        image = service.get("image")
        if image in builders and not service.get("build") and service.get("pull_policy") != "never":
            problems.append(
                f"{name}: uses {image}, built by {builders[image][0]}, without `pull_policy: never` "
                "(compose would look for it on Docker Hub)"
            )
        if str(image).split(":")[0] == LAB_IMAGE and image not in builders:
            problems.append(f"{name}: no service builds {image}")
    return problems


def check_registries(compose: dict, dockerfile: str | None = None) -> list[str]:
    """Every image comes from a source on the allowed list (ALLOWED_IMAGE_SOURCES)."""
    problems = []
    built = images_built(compose)
    pulled = [(name, s["image"]) for name, s in services(compose).items() if s.get("image") and s["image"] not in built]
    text = DOCKERFILE.read_text() if dockerfile is None else dockerfile
    pulled += [("docker/lab/Dockerfile", m) for m in re.findall(r"^FROM\s+(\S+)", text, re.M)]
    for where, image in pulled:
        full = normalised_image(image)
        gone = [why for prefix, why in GONE_IMAGE_SOURCES.items() if full.startswith(prefix)]
        if gone:
            problems.append(f"{where}: {image}: {gone[0]}")
        elif not any(full.startswith(prefix) for prefix in ALLOWED_IMAGE_SOURCES):
            problems.append(
                f"{where}: {image} is not from an allowed source ({', '.join(ALLOWED_IMAGE_SOURCES)}): "
                "check the registry serves it, then add it to ALLOWED_IMAGE_SOURCES"
            )
    return problems


def without_port_settings(path: Path = COMPOSE_FILE) -> dict:
    """The compose file with .env.example's values but no ``*_PORT``: the defaults written in the file."""
    return load_compose({k: v for k, v in read_env_file(ENV_EXAMPLE).items() if not k.endswith("_PORT")}, path)


def check_system_ports(compose: dict, defaults: dict | None = None) -> list[str]:
    """No host port, with .env.example or with no .env at all, that a system service takes.

    ``defaults``: the same file read without port settings (``without_port_settings``).
    """
    problems = []
    without_env = without_port_settings() if defaults is None else defaults
    for label, doc in (("", compose), (" (the file's default, without .env)", without_env)):
        for name, _, host, _ in published_ports(doc):
            if host.isdigit() and int(host) in SYSTEM_SERVICE_PORTS:
                problems.append(f"{name}: publishes host port {host}{label}: {SYSTEM_SERVICE_PORTS[int(host)]}")
    return problems


MEMORY = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$")


def memory_mib(value) -> float | None:
    """``512m``, ``1.5g``, ``1024k`` or a byte count, in MiB (None when it is not a size)."""
    match = MEMORY.match(str(value))
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2).lower()
    return number * {"": 2**-20, "k": 2**-10, "m": 1, "g": 1024}[unit]


def memory_limit(service: dict) -> float | None:
    limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    limit = service.get("mem_limit") or limits.get("memory")
    return memory_mib(limit) if limit is not None else None


def check_memory(compose: dict) -> list[str]:
    """Every service has a memory limit, and each profile set sums within its budget."""
    problems = []
    svc = services(compose)
    for name, service in svc.items():
        if memory_limit(service) is None:
            problems.append(f"{name}: no memory limit (mem_limit): one service could take the laptop's memory")
    finished = one_shots(compose)
    for label, (profiles, budget) in MEMORY_BUDGETS_MIB.items():
        active = [
            n
            for n, s in svc.items()
            if n not in finished and (not s.get("profiles") or set(s["profiles"]) & set(profiles))
        ]
        total = sum(memory_limit(svc[n]) or 0 for n in active)
        if total > budget:
            problems.append(
                f"{label}: the memory limits of {', '.join(active)} sum to {total:.0f} MiB, "
                f"over the budget of {budget} MiB"
            )
    return problems


def bind_mounts(service: dict) -> list[tuple[str, str, set[str]]]:
    """(source, target, options) of each bind mount: a source that is a path, not a volume name."""
    result = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                options = {"ro"} if volume.get("read_only") else set()
                options |= {(volume.get("bind") or {}).get("selinux", "")} - {""}
                result.append((volume.get("source", ""), volume.get("target", ""), options))
            continue
        source, target, *rest = str(volume).split(":")
        if source.startswith((".", "/", "~")):
            result.append((source, target, set(rest[0].split(",")) if rest else set()))
    return result


def check_bind_mounts(compose: dict) -> list[str]:
    """Bind mounts are relabelled for SELinux (z); a writable one is written by a non-root user."""
    problems = []
    for name, service in services(compose).items():
        for source, target, options in bind_mounts(service):
            if not options & {"z", "Z"}:
                problems.append(f"{name}: bind mount {source}:{target} without `z`: SELinux hosts refuse access")
            if "ro" in options:
                continue
            user = str(service.get("user", "")).split(":")[0]
            if user in ("", "0", "root"):
                problems.append(
                    f"{name}: writes to {source} as {'root' if user else 'the image user (root?)'}: "
                    "files become root's on a Linux host; set `user:` to a non-root uid"
                )
    return problems


def check_kafka_like_embedded(compose: dict) -> list[str]:
    """Redpanda behaves like the embedded Kafka: no topic auto-creation, segments that roll."""
    problems = []
    commands = " ".join(command_text(s) for s in services(compose).values())
    if not re.search(r"auto_create_topics_enabled\s+false", commands):
        problems.append(
            "nothing turns Redpanda's auto_create_topics_enabled off (dev-container mode turns it on): "
            "a typo in a topic name would create a topic, while the embedded Kafka refuses it"
        )
    if not re.search(r"log_segment_ms\s+\d+", commands):
        problems.append("nothing sets Redpanda's log_segment_ms: segments never roll, so retention never deletes")
    return problems


def dockerfile_env(text: str) -> dict[str, str]:
    """NAME=value pairs of the Dockerfile's ENV instructions."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = {}
    for line in joined.splitlines():
        if line.strip().upper().startswith("ENV "):
            for word in shlex.split(line.strip()[4:]):
                name, _, value = word.partition("=")
                pairs[name] = value
    return pairs


def check_dockerfile(text: str) -> list[str]:
    """The lab image: pinned base, Java for Spark, pyproject's pins, the jars fetched at build."""
    problems = []
    joined = re.sub(r"\\\n", " ", text)
    base = re.search(r"^FROM\s+python:(\d+)\.(\d+)[\w.-]*", joined, re.M)
    if not base or re.search(r"^FROM\s+\S+:latest\b", joined, re.M):
        problems.append("FROM should be a python:X.Y-... image pinned to a Python version")
    else:
        minimum = tuple(int(n) for n in PYPROJECT["project"]["requires-python"].lstrip(">=").split("."))
        if (int(base.group(1)), int(base.group(2))) < minimum:
            problems.append(f"python {base.group(1)}.{base.group(2)} is older than requires-python")
    jdk = re.search(r"openjdk-(\d+)-jre", joined)
    if not jdk or int(jdk.group(1)) < java.MINIMUM_JAVA:
        problems.append(f"install a Java {java.MINIMUM_JAVA}+ runtime (openjdk-17-jre-headless)")

    # What pip installs is pyproject's dependency list: run the Dockerfile's own extraction.
    extract = re.search(r"python -c \"(.*?)\"\s*>\s*/tmp/requirements.txt", joined)
    if not extract or not re.search(r"COPY\s+pyproject.toml", joined):
        problems.append("install the dependencies from pyproject.toml (COPY it, derive requirements.txt)")
    else:
        out = subprocess.run([sys.executable, "-c", extract.group(1)], cwd=ROOT, capture_output=True, text=True)
        if out.stdout.split() != PYPROJECT["project"]["dependencies"]:
            problems.append(f"the requirements the image installs differ from pyproject's: {out.stdout.split()}")
    pins = dict(re.findall(r"([A-Za-z][\w.-]*)==([\w.]+)", " ".join(PYPROJECT["project"]["dependencies"])))
    for run in re.findall(r"pip install ([^&\n]*)", joined):
        for name, version in re.findall(r"([A-Za-z][\w.-]*)==([\w.]+)", run):
            if pins.get(name) != version:
                problems.append(f"pip install {name}=={version}, but pyproject pins {pins.get(name)}")
    if not re.search(r"pip install (--no-deps )?-e \.", joined):
        problems.append("install labkit itself (pip install --no-deps -e .)")

    groups = re.search(r"labkit jars ([\w ]+)", joined)
    fetched = set(groups.group(1).split()) if groups else set()
    if not {"spark", "kafka", "s3a"} <= fetched:
        problems.append(f"fetch the spark, kafka and s3a jars at build time (fetches {sorted(fetched)})")
    if "LABKIT_JARS_DIR" not in dockerfile_env(text):
        problems.append("set LABKIT_JARS_DIR so every container finds the jars fetched at build time")
    users = re.findall(r"^USER\s+(\S+)", joined, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the image runs as root: add a user and end with `USER` it (bind-mounted files stay yours)")
    if "--allow-root" in joined:
        problems.append("JupyterLab runs with --allow-root: run it as the image's user instead")
    return problems


def dockerignore_keeps(patterns: list[str], path: str) -> bool:
    """Whether the build context keeps ``path`` (the last matching pattern decides)."""
    kept = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            kept = negate
    return kept


# ---------------------------------------------------------------- the command line

COMPOSE_CHECKS = [
    check_schema,
    check_images,
    check_builders,
    check_registries,
    check_system_ports,
    check_memory,
    check_bind_mounts,
    check_healthchecks,
    check_depends_on,
    check_ports,
    check_endpoints,
    check_environment,
    check_volumes,
    check_lab_services,
    check_kafka_like_embedded,
]


def lint(path: Path = COMPOSE_FILE) -> list[str]:
    """Every problem of the compose file and the lab image, each prefixed by its check."""
    compose = load_compose(path=path)
    problems = [
        f"{check.__name__}: {p}" for check in COMPOSE_CHECKS if check is not check_system_ports for p in check(compose)
    ]
    problems += [f"check_system_ports: {p}" for p in check_system_ports(compose, without_port_settings(path))]
    return problems + [f"check_dockerfile: {p}" for p in check_dockerfile(DOCKERFILE.read_text())]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Lint docker-compose.yml and the lab image (no Docker needed).")
    parser.add_argument("--file", type=Path, default=COMPOSE_FILE)
    args = parser.parse_args(argv)
    problems = lint(args.file)
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        print(f"next: fix {args.file.name} (each line names the check and the service)")
        return 1
    print(f"ok: {args.file.name}: {len(COMPOSE_CHECKS) + 1} checks, no problem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
