"""The ``labkit`` command line: every wrong input ends in labkit's ``error:`` and ``next:`` lines.

The lists of options and variables are not written here: they come from the parser
(``cli.build_parser()``) and from ``settings.ENVIRONMENT``. A new option or variable without a
bad example below fails :func:`test_every_option_and_variable_has_a_bad_example`, so none can
escape the walk. Each case runs the real ``labkit`` in a subprocess and reads what a learner
would read.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, free_port

from labkit import cli, settings, topics

# (command, option) -> values that must be refused. Flags (no value) are refused with "=yes".
# "{file}" is a regular file and "{folder}" an existing folder, made by the test.
BAD_OPTIONS: dict[tuple[str, str], list[str]] = {
    ("jars", "groups"): ["nosuch"],
    ("topics", "--rooms"): ["abc", "0"],
    ("init-metadata", "--rooms"): ["abc", "-1"],
    ("simulate", "--rooms"): ["abc", "0"],
    ("simulate", "--duration"): ["abc", "-5"],
    ("simulate", "--count"): ["abc", "0"],
    ("simulate", "--interval"): ["abc", "0"],
    ("simulate", "--seed"): ["abc"],
    ("simulate", "--start"): ["yesterday"],
    ("simulate", "--late"): ["abc", "2"],
    ("simulate", "--out-of-order"): ["-0.1"],
    ("simulate", "--duplicates"): ["lots"],
    ("simulate", "--malformed"): ["1.5"],
    ("simulate", "--anomaly"): ["spike:room_1:10", "boom:room_1:0:5", "spike:room_1:0:-5"],
    ("simulate", "--labels"): ["{folder}", "{folder}/no/such/labels.json"],
    ("bridge", "--rooms"): ["0"],
    ("bridge", "--exit-when-idle"): ["abc", "-1"],
    ("bridge", "--client-id"): [""],
    ("stream", "--trigger"): ["abc", "5"],
    ("stream", "--max-offsets-per-trigger"): ["abc", "0"],
    ("stream", "--starting-offsets"): ["beginning", "[1, 2]"],
    ("stream", "--window"): ["abc", "0 seconds"],
    ("stream", "--slide"): ["10 parsecs"],
    ("stream", "--watermark"): ["ten seconds"],
    ("stream", "--rooms"): ["0"],
    ("stream", "--query-name"): ["my query/1"],
    ("stream", "--table"): ["s3://bucket/table", "{file}/table"],
    ("stream", "--timeout"): ["abc", "0"],
    ("alerts", "--trigger"): ["abc"],
    ("alerts", "--max-offsets-per-trigger"): ["0"],
    ("alerts", "--starting-offsets"): ["beginning"],
    ("alerts", "--watermark"): ["ten seconds"],
    ("alerts", "--rooms"): ["0"],
    ("alerts", "--query-name"): ["my query/1"],
    ("alerts", "--table"): ["s3://bucket/table"],
    ("alerts", "--timeout"): ["0"],
    ("demo", "--minutes"): ["abc", "0"],
    ("doctor", "--for"): ["kubernetes"],
    ("dashboard", "--host"): ["http://127.0.0.1", "127.0.0.1:5006"],
    ("dashboard", "--port"): ["abc", "0", "70000"],
    ("dashboard", "--rooms"): ["0"],
    ("dashboard", "--query-name"): ["my query/1"],
    ("dashboard", "--allow-origin"): ["http://127.0.0.1:5006", "localhost"],
    ("to-postgres", "--dsn"): ["not a dsn", "host=127.0.0.1 port"],
    ("to-postgres", "--timeout"): ["abc", "0"],
}

# variable -> values that must be refused (checked with `labkit status`, which reads them all).
BAD_VARIABLES: dict[str, list[str]] = {
    "LABKIT_PROFILE": ["foo"],
    "LABKIT_HOME": ["{file}"],
    "LABKIT_STATE_DIR": ["{file}", ""],
    "LABKIT_JARS_DIR": ["{file}"],
    "LABKIT_MAVEN_REPO": ["repo.example.com/maven2"],
    "LABKIT_MQTT_HOST": ["my broker", ""],
    "LABKIT_MQTT_PORT": ["abc", "70000"],
    "LABKIT_MQTT_BROKER": ["rabbitmq"],
    "LABKIT_MAX_EVENT_AHEAD_S": ["ten", "-1"],
    "LABKIT_KAFKA_HOST": ["kafka:9092"],
    "LABKIT_KAFKA_PORT": ["abc", "0"],
    "LABKIT_KAFKA_CONTROLLER_PORT": ["-1"],
    "LABKIT_KAFKA_VERSION": ["latest"],
    "LABKIT_KAFKA_HEAP": ["512MB"],
    "LABKIT_SPARK_MASTER": ["local[two]", "yarn"],
    "LABKIT_SPARK_MASTER_PORT": ["abc"],
    "LABKIT_SPARK_MASTER_UI_PORT": ["99999"],
    "LABKIT_SPARK_WORKER_UI_PORT": ["8O83"],
    "LABKIT_SPARK_DRIVER_MEMORY": ["1 GB"],
    "LABKIT_SHUFFLE_PARTITIONS": ["0", "four"],
    "LABKIT_LAKE_ROOT": ["s3://datalake", "{file}"],
    "LABKIT_METADATA_DB": ["{folder}", ""],
    "LABKIT_S3_ENDPOINT": ["minio:9000"],
    "AWS_ACCESS_KEY_ID": ["lab key"],
    "AWS_SECRET_ACCESS_KEY": ["secret "],
}

# Every command, run with no MQTT or Kafka listening. `up` and `demo` start the services
# themselves (tests/test_stack.py and tests/test_demo.py run them).
WITH_SERVICES_DOWN: dict[str, list[str]] = {
    "down": [],
    "status": ["--check"],
    "settings": [],
    "jars": [],
    "topics": [],
    "init-metadata": [],
    "simulate": ["--duration", "1"],
    "bridge": ["--exit-when-idle", "1"],
    "stream": ["--until-caught-up", "--timeout", "30"],
    "alerts": ["--until-caught-up", "--timeout", "30"],
    "doctor": [],
    "to-postgres": ["--until-caught-up", "--timeout", "5", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2"],
}
START_SERVICES = {"up", "demo"}
# serves until stopped, also with Kafka down (its page says so): tests/test_dashboard.py
SERVES_UNTIL_STOPPED = {"dashboard"}
# these need a broker: with none, they must fail and say which one is not reachable
NEED_A_BROKER = {"status", "topics", "simulate", "bridge", "stream", "alerts"}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def option_cases() -> list[tuple[str, str, str | None]]:
    """(command, option, bad value) for every option of every command; None: no example yet."""
    cases = []
    for command, sub in subcommands().items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            if action.nargs == 0:  # a flag: it takes no value
                cases.append((command, name, "=yes"))
                continue
            for value in BAD_OPTIONS.get((command, name), [None]):
                cases.append((command, name, value))
    return cases


def variable_cases() -> list[tuple[str, str | None]]:
    return [(name, value) for name in settings.ENVIRONMENT for value in BAD_VARIABLES.get(name, [None])]


@pytest.fixture(scope="module")
def services_down(tmp_path_factory) -> dict[str, str]:
    """An environment whose brokers are not running: free ports, a fresh state folder."""
    folder = tmp_path_factory.mktemp("services-down")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LABKIT_MQTT_PORT": str(free_port()),
        "LABKIT_KAFKA_PORT": str(free_port()),
        "LABKIT_KAFKA_CONTROLLER_PORT": str(free_port()),
        "LABKIT_STATE_DIR": str(folder / "state"),
        "LABKIT_LAKE_ROOT": str(folder / "lake"),
        "LABKIT_METADATA_DB": str(folder / "data" / "metadata.db"),
    }


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("places")
    (folder / "a-file").write_text("not a folder\n")
    (folder / "a-folder").mkdir()
    return {"file": str(folder / "a-file"), "folder": str(folder / "a-folder")}


def labkit(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def assert_labkit_error(result: subprocess.CompletedProcess, mentions: str) -> None:
    """Refused, with labkit's one-line error, a next step, and no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"accepted:\n{output}"
    assert "Traceback" not in output, output
    lines = result.stderr.splitlines()
    assert any(line.startswith("error: ") for line in lines), output
    assert any(line.startswith("next: ") for line in lines), f"no next: line\n{output}"
    assert mentions in result.stderr, f"the error does not name {mentions!r}:\n{output}"


def test_every_option_and_variable_has_a_bad_example():
    missing = [f"{c} {o}" for c, o, v in option_cases() if v is None]
    missing += [name for name, v in variable_cases() if v is None]
    assert not missing, f"add a bad value for each to BAD_OPTIONS / BAD_VARIABLES: {missing}"
    commands = set(subcommands())
    assert commands == set(WITH_SERVICES_DOWN) | START_SERVICES | SERVES_UNTIL_STOPPED, (
        "list each command in WITH_SERVICES_DOWN"
    )


@pytest.mark.parametrize("command,option,value", [c for c in option_cases() if c[2] is not None])
def test_a_bad_option_value_is_refused_before_anything_runs(command, option, value, services_down, places):
    if value == "=yes":
        args = [command, f"{option}=yes"]
    else:
        value = value.format(**places)
        args = [command, value] if not option.startswith("-") else [command, option, value]
    result = labkit(args, services_down)
    assert_labkit_error(result, option if option.startswith("-") else value)


@pytest.mark.parametrize("name,value", [c for c in variable_cases() if c[1] is not None])
def test_a_bad_variable_is_refused_with_its_name(name, value, services_down, places):
    result = labkit(["status"], {**services_down, name: value.format(**places)})
    assert_labkit_error(result, name)


@pytest.mark.parametrize("command", sorted(WITH_SERVICES_DOWN))
def test_every_command_with_its_services_down(command, services_down):
    result = labkit([command, *WITH_SERVICES_DOWN[command]], services_down)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    if command in NEED_A_BROKER:
        endpoint = services_down["LABKIT_MQTT_PORT" if command == "simulate" else "LABKIT_KAFKA_PORT"]
        assert_labkit_error(result, endpoint)
        assert "labkit up" in result.stderr, output
    elif result.returncode != 0:
        assert_labkit_error(result, "")


def test_a_bad_java_home_is_refused_by_up(services_down, tmp_path):
    """JAVA_HOME is read by labkit too (labkit.java): `labkit up` stops before starting anything."""
    env = {**services_down, "JAVA_HOME": str(tmp_path / "no-jdk-here")}
    try:
        result = labkit(["up"], env)
        assert_labkit_error(result, "JAVA_HOME")
        assert not Path(services_down["LABKIT_STATE_DIR"], "pids").exists() or not any(
            Path(services_down["LABKIT_STATE_DIR"], "pids").iterdir()
        ), "up started something"
    finally:
        labkit(["down"], services_down)


def run_labkit(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_defaults_are_the_lab_s_values():
    """Written out from docs/architecture.md and the README, not read from the modules."""
    parser = cli.build_parser()
    stream = parser.parse_args(["stream"])
    assert (stream.window, stream.slide, stream.watermark) == ("10 seconds", "5 seconds", "10 seconds")
    assert (stream.query_name, stream.rooms, stream.trigger) == ("telemetry_5s_agg", 8, None)
    simulate = parser.parse_args(["simulate"])
    assert (simulate.rooms, simulate.interval) == (8, 0.5)
    assert parser.parse_args(["bridge"]).client_id == "labkit-bridge"


@pytest.mark.parametrize("bad", ["0", "-3", "eight"])
def test_a_building_without_rooms_is_refused_before_anything_runs(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["topics", "--rooms", bad])
    assert exit_.value.code == 2
    assert "--rooms" in capsys.readouterr().err


def test_a_labkit_error_prints_error_and_next_lines(tmp_path):
    """Nothing runs in a fresh state folder: `status --check` says so and what to do, exit status 1."""
    result = run_labkit("status", "--check", env={"LABKIT_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stopped" in result.stdout
    error, next_step = result.stderr.splitlines()
    assert error.startswith("error: not healthy: mqtt at 127.0.0.1:") and next_step == "next: run `labkit up`"


@pytest.mark.services
def test_topics_creates_the_topics_of_the_building(stack):
    result = run_labkit("topics", "--rooms", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("5 topics ready (retention 72 h): telemetry.room_1, telemetry.room_2, ")
    assert {"telemetry.room_2.downsampled", "telemetry.dlq"} <= topics.existing_topics()


def test_init_metadata_creates_the_rooms_table(tmp_path):
    db = tmp_path / "metadata.db"
    result = run_labkit("init-metadata", "--rooms", "9", env={"LABKIT_METADATA_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rooms table ready in {db} (9 rooms)"
