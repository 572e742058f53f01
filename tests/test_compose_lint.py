"""tools/compose_lint.py: the Docker workshop's own rules, on the real files and on broken ones.

CI has no Docker engine, so nothing here starts a container. Each check of the lint must pass on
docker-compose.yml and fail on a copy broken in the one way it guards against (a check that
cannot fail proves nothing): small YAML fixtures in tests/data/compose-bad/ for the checks of
issue 14 (one builder per image, allowed registries, system ports, memory, bind mounts), and
in-memory breakages of the real file for the older ones. Compose's own loader is run by
tools/compose-check (tests/test_compose_check.py).
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("yaml", reason="pip install -e '.[test]' (PyYAML)")
pytest.importorskip("jsonschema", reason="pip install -e '.[test]' (jsonschema)")

from labkit import settings  # noqa: E402
from labkit.stack import jars  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).with_name("data") / "compose-bad"


def _load_lint():
    spec = importlib.util.spec_from_file_location("compose_lint", ROOT / "tools" / "compose_lint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lint = _load_lint()


@pytest.fixture(scope="module")
def compose() -> dict:
    return lint.load_compose()


@pytest.mark.parametrize("check", lint.COMPOSE_CHECKS, ids=lambda c: c.__name__)
def test_compose_file(compose, check):
    assert check(compose) == [], check.__doc__


def test_the_command_line_passes_on_the_repository():
    assert lint.main([]) == 0


# ---------------------------------------------------------------- issue 14's checks, on bad fixtures


def bad(name: str) -> dict:
    """A small compose file in tests/data/compose-bad/, read as the lint reads the real one."""
    return lint.load_compose(env=lint.read_env_file(lint.ENV_EXAMPLE), path=BAD / name)


BAD_FIXTURES = [
    # (check, fixture, a phrase the problem must contain)
    (lint.check_builders, "two_builders.yml", "built by 2 services"),
    (lint.check_builders, "lab_image_pulled.yml", "pull_policy: never"),
    (lint.check_registries, "minio_on_docker_hub.yml", "stopped serving minio"),
    (lint.check_registries, "unknown_registry.yml", "not from an allowed source"),
    (lint.check_system_ports, "mqtt_on_1883.yml", "1883"),
    (lint.check_system_ports, "postgres_on_5432_by_default.yml", "without .env"),
    (lint.check_memory, "no_memory_limit.yml", "no memory limit"),
    (lint.check_memory, "over_budget.yml", "over the budget"),
    (lint.check_bind_mounts, "root_on_bind_mount.yml", "root"),
    (lint.check_bind_mounts, "bind_mount_without_z.yml", "SELinux"),
    (lint.check_kafka_like_embedded, "redpanda_auto_create.yml", "auto_create_topics_enabled"),
]


@pytest.mark.parametrize("check, fixture, phrase", BAD_FIXTURES, ids=lambda x: getattr(x, "__name__", x))
def test_each_new_check_fails_on_its_bad_fixture(check, fixture, phrase):
    doc = bad(fixture)
    if check is lint.check_system_ports:
        problems = check(doc, defaults=lint.without_port_settings(BAD / fixture))
    else:
        problems = check(doc)
    assert any(phrase in p for p in problems), f"{check.__name__} on {fixture}: {problems}"


def test_the_bad_fixtures_are_otherwise_valid_compose():
    """Each fixture is wrong in one way only: the Compose schema accepts all of them."""
    for path in sorted(BAD.glob("*.yml")):
        assert lint.check_schema(bad(path.name)) == [], path.name


def test_memory_sizes_are_read_as_compose_reads_them():
    sizes = ("64m", "1g", "1.5g", "512M", "1048576", "2gb")
    assert [lint.memory_mib(v) for v in sizes] == [64, 1024, 1536, 512, 1, 2048]
    assert lint.memory_mib("lots") is None


def test_images_resolve_to_their_registry_as_docker_does():
    assert lint.normalised_image("eclipse-mosquitto:2.0.22") == "docker.io/library/eclipse-mosquitto:2.0.22"
    assert lint.normalised_image("minio/minio:x") == "docker.io/minio/minio:x"
    assert lint.normalised_image("quay.io/minio/minio:x") == "quay.io/minio/minio:x"


def test_dockerfile_running_as_root_is_noticed():
    text = lint.DOCKERFILE.read_text()
    assert "USER lab" in text
    assert any("root" in p for p in lint.check_dockerfile(text.replace("USER lab", "USER root")))
    as_root = text.replace('"--no-browser",', '"--no-browser", "--allow-root",')
    assert any("--allow-root" in p for p in lint.check_dockerfile(as_root))


# ---------------------------------------------------------------- the file and its neighbours


def test_ports_are_also_unique_without_env_file():
    """Without port settings in .env compose uses the defaults written in the file: no clash either."""
    credentials_only = {k: v for k, v in lint.read_env_file(lint.ENV_EXAMPLE).items() if not k.endswith("_PORT")}
    assert lint.check_ports(lint.load_compose(credentials_only)) == []


def test_env_example_documents_every_variable_and_its_defaults():
    """Each ${lint.VARIABLE} the compose file uses is in .env.example, with the same default."""
    example = lint.read_env_file(lint.ENV_EXAMPLE)
    matches = lint.VARIABLE.finditer(lint.COMPOSE_FILE.read_text())
    used = {m.group("name"): m.group("arg") for m in matches if m.group("name")}
    assert set(used) <= set(example), f"not in .env.example: {sorted(set(used) - set(example))}"
    for name, default in used.items():
        if default and not default.startswith("copy"):
            assert example[name] == default, f"{name}: .env.example says {example[name]}, the compose file {default}"


def test_credentials_come_from_env_file_only():
    """Without .env compose refuses to start (no silent default password), and labkit holds none."""
    with pytest.raises(KeyError, match="MINIO_ROOT_USER|MINIO_ROOT_PASSWORD|JUPYTER_TOKEN"):
        lint.load_compose({})
    secrets = {v for k, v in lint.read_env_file(lint.ENV_EXAMPLE).items() if re.search(r"USER|PASSWORD|TOKEN", k)}
    for source in (ROOT / "labkit").glob("*.py"):
        text = source.read_text()
        found = [s for s in secrets if re.search(rf"[\"']{re.escape(s)}[\"']", text)]
        assert not found, f"{source.name} hard-codes {found}: read credentials from the environment"
    assert all(settings.ENVIRONMENT[k][:2] == ("", "") for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))


def test_mosquitto_config_suits_the_bridge():
    """Anonymous, persistent, and queues long enough for a bridge restart."""
    text = (ROOT / "docker" / "mosquitto" / "mosquitto.conf").read_text()
    conf = dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    assert conf.get("allow_anonymous") == "true"
    assert conf.get("persistence") == "true"
    assert conf.get("persistence_location", "").rstrip("/") == lint.STATE_PATHS["mosquitto"]
    assert int(conf.get("max_queued_messages", "1000")) >= 100_000


def test_dockerfile():
    assert lint.check_dockerfile(lint.DOCKERFILE.read_text()) == [], lint.check_dockerfile.__doc__


def test_build_context_and_dockerignore(compose):
    """Each lab service builds docker/lab/Dockerfile from the top; .dockerignore keeps what it copies."""
    for name, service in lint.services(compose).items():
        if lint.is_lab(service) and service.get("build"):
            build = service["build"]
            assert (ROOT / build["context"] / build["dockerfile"]).resolve() == lint.DOCKERFILE, name
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    for copied in re.findall(r"^COPY\s+(.+)\s+\S+$", lint.DOCKERFILE.read_text(), re.M):
        for path in copied.split():
            kept = lint.dockerignore_keeps(patterns, path.rstrip("/"))
            assert kept, f".dockerignore drops {path}, which the Dockerfile copies"
    for heavy in (".venv", ".git", "data", ".labkit-test"):
        assert not lint.dockerignore_keeps(patterns, heavy), f".dockerignore should keep {heavy} out of the context"


def test_lab_commands_exist_in_labkit(compose):
    """The compose file runs labkit subcommands that labkit's command line knows."""
    from labkit import cli

    def known(argv: list[str]) -> bool:
        try:
            cli.build_parser().parse_args(argv)
            return True
        except SystemExit:  # argparse's way of saying "invalid choice"
            return False

    missing = {" ".join(c) for commands in lint.LAB_COMMANDS.values() for c in commands if not known(c[1:])}
    if missing == {"labkit stream"}:
        pytest.skip("`labkit stream` is not written yet (the pipeline issue)")
    assert not missing, f"labkit has no subcommand for {sorted(missing)}"


def test_image_fetches_only_known_jar_groups():
    groups = re.search(r"labkit jars ([\w ]+)", re.sub(r"\\\n", " ", lint.DOCKERFILE.read_text())).group(1).split()
    for group in groups:
        jars._group_for(group, lint.compose_settings())  # raises ValueError for an unknown group


# ---------------------------------------------------------------- the checks can fail


def _set(path: str, value):
    """A breakage: set compose[path] (``a/b/c``) to value, or delete it when value is None."""

    def mutate(doc: dict) -> None:
        *parents, last = path.split("/")
        for key in parents:
            doc = doc[key]
        if value is None:
            del doc[last]
        else:
            doc[last] = value

    mutate.__name__ = f"{path} {'deleted' if value is None else 'changed'}"  # the test's id
    return mutate


BREAKAGES = [
    (lint.check_schema, _set("services/mosquitto/imagee", "typo")),
    (lint.check_schema, _set("services/redpanda/restart", ["always"])),
    (lint.check_images, _set("services/redpanda/image", "redpandadata/redpanda:latest")),
    (lint.check_images, _set("services/minio/image", "minio/minio")),
    (lint.check_images, _set("services/jupyter/image", "labkit-lab:0.0.1")),
    (lint.check_healthchecks, _set("services/bridge/healthcheck", None)),
    (lint.check_healthchecks, _set("services/topics/restart", "unless-stopped")),
    (lint.check_healthchecks, _set("services/jupyter/depends_on/redpanda-config", None)),
    (lint.check_depends_on, _set("services/jupyter/depends_on", ["redpanda", "minio"])),
    (lint.check_depends_on, _set("services/stream/depends_on/topics", {"condition": "service_healthy"})),
    (lint.check_depends_on, _set("services/bridge/depends_on/stream", {"condition": "service_healthy"})),
    (lint.check_ports, _set("services/redpanda-console/ports", ["8080:8080"])),
    (lint.check_ports, _set("services/redpanda/ports", ["127.0.0.1:19092:19092", "127.0.0.1:8081:8081"])),
    (
        lint.check_endpoints,
        _set(
            "services/redpanda/command",
            [
                "redpanda",
                "start",
                "--kafka-addr=internal://0.0.0.0:29092",
                "--advertise-kafka-addr=internal://redpanda:29092",
            ],
        ),
    ),
    (
        lint.check_endpoints,
        _set(
            "services/spark-worker/command",
            ["spark-class", "org.apache.spark.deploy.worker.Worker", "spark://spark-master:7078"],
        ),
    ),
    (
        lint.check_endpoints,
        _set("services/minio-init/command", ["mc alias set lake http://minio:9000 u p && mc mb lake/lake"]),
    ),
    (lint.check_endpoints, _set("services/jupyter/environment/LABKIT_KAFKA_PORT", "9093")),
    (lint.check_endpoints, _set("services/mosquitto/volumes", ["mosquitto-data:/mosquitto/data"])),
    (lint.check_environment, _set("services/simulator/environment", {"AWS_ACCESS_KEY_ID": "x"})),
    (lint.check_environment, _set("services/jupyter/environment/AWS_SECRET_ACCESS_KEY", "hard-coded")),
    (lint.check_volumes, _set("services/minio/volumes", ["./minio:/data"])),
    (lint.check_volumes, _set("services/redpanda/volumes", None)),
    (lint.check_volumes, _set("services/spark-worker/volumes", None)),
    (lint.check_lab_services, _set("services/stream/profiles", None)),
    (lint.check_lab_services, _set("services/bridge/profiles", None)),
    (lint.check_lab_services, _set("services/simulator/command", ["labkit", "simulate"])),
]


@pytest.mark.parametrize("check, breakage", BREAKAGES, ids=lambda x: getattr(x, "__name__", ""))
def test_each_check_notices_a_broken_compose_file(compose, check, breakage):
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert check(broken), f"{check.__name__} did not notice the breakage"


DOCKERFILE_BREAKAGES = [
    ("python:3.11-slim-bookworm", "python:latest"),
    ("python:3.11-slim-bookworm", "python:3.9-slim-bookworm"),
    ("openjdk-17-jre-headless", "openjdk-11-jre-headless"),
    ("labkit jars spark kafka s3a", "labkit jars spark kafka"),
    ("pip install --no-deps -e .", "pip install --no-deps -e . pyspark==4.1.0"),
    ("['project']['dependencies']", "['project']['dependencies'][:-1]"),
]


@pytest.mark.parametrize("old, new", DOCKERFILE_BREAKAGES)
def test_dockerfile_check_notices_a_broken_dockerfile(old, new):
    text = lint.DOCKERFILE.read_text()
    assert old in text
    assert lint.check_dockerfile(text.replace(old, new))
