"""labkit.doctor: each prerequisite made missing or wrong for real, and what the doctor says about it.

Tests run as root, so "unwritable" is made real with a path under a regular file, and "a port
in use" with a socket this test holds open.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, free_port

from labkit import doctor, settings
from labkit.errors import LabkitError
from labkit.stack import processes, services


@pytest.fixture
def environment(tmp_path):
    """This test run's variables, on free ports and with a state folder of its own."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LABKIT_STATE_DIR": str(tmp_path / "state"),
        "LABKIT_MQTT_PORT": str(free_port()),
        "LABKIT_KAFKA_PORT": str(free_port()),
        "LABKIT_KAFKA_CONTROLLER_PORT": str(free_port()),
    }


@pytest.fixture
def held_port():
    """A port another program listens on (this test, as far as labkit can tell)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))  # a port the system picks, free by construction
        listener.listen()
        yield listener.getsockname()[1]


def by_name(checks, start):
    return next(c for c in checks if c.name.startswith(start))


def labkit(args, env):
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT
    )


def test_a_ready_machine_has_nothing_to_do(environment):
    checks = doctor.run(settings.load(environment), "embedded")
    blocking = [c for c in checks if c.required and not c.ready]
    assert not blocking, doctor.format_table(checks)
    doctor.require(checks, "embedded")  # does not raise


def test_a_bad_java_home(environment, tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    check = doctor.java_runtime()
    assert not check.ready and check.required
    assert "JAVA_HOME" in check.found and "JAVA_HOME" in check.advice
    table = doctor.format_table([check])
    assert "MISSING" in table and check.advice in table


def test_a_port_held_by_another_process(environment, held_port):
    s = settings.load({**environment, "LABKIT_MQTT_PORT": str(held_port)})
    check = by_name(doctor.ports(s), f"port {held_port}")
    assert not check.ready and check.required
    assert f"pid {os.getpid()}" in check.found, check.found  # the holder is named
    assert "LABKIT_MQTT_PORT" in check.advice
    with pytest.raises(LabkitError, match="LABKIT_MQTT_PORT"):
        doctor.require([check])


def test_up_stops_before_starting_anything_when_the_kafka_port_is_taken(environment, held_port):
    """Without the doctor, `up` started MQTT, then failed on Kafka's port and left MQTT running."""
    env = {**environment, "LABKIT_KAFKA_PORT": str(held_port)}
    try:
        result = labkit(["up"], env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "LABKIT_KAFKA_PORT" in result.stderr and "next: " in result.stderr, result.stderr
        assert not processes.running_process(settings.load(env), "mqtt"), "up started MQTT before checking Kafka's port"
    finally:
        labkit(["down"], env)


def test_no_mosquitto_on_the_path(environment, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without mosquitto
    monkeypatch.setattr(services, "MOSQUITTO_FOLDERS", ())
    check = doctor.mosquitto(settings.load(environment))
    assert not check.ready and not check.required, "amqtt stands in: a warning, not a stop"
    assert "amqtt" in check.advice and "LOST" in check.advice, "say what the learner loses"
    asked_for = doctor.mosquitto(settings.load({**environment, "LABKIT_MQTT_BROKER": "mosquitto"}))
    assert asked_for.required and not asked_for.ready, "LABKIT_MQTT_BROKER=mosquitto cannot start without it"


def test_an_unwritable_state_folder(environment, tmp_path):
    regular_file = tmp_path / "a-file"
    regular_file.write_text("not a folder\n")
    env = {**environment, "LABKIT_STATE_DIR": str(regular_file / "state")}
    check = doctor.state_folder(settings.load(env))
    assert not check.ready and check.required
    assert "LABKIT_STATE_DIR" in check.advice
    result = labkit(["up"], env)
    assert result.returncode == 1 and "state folder" in result.stderr and "next: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_no_docker_for_the_workshop(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (check,) = doctor.docker()
    assert not check.ready and "install Docker" in check.advice


def test_the_cli_prints_the_table_and_fails_only_for_the_path_in_use(environment, held_port):
    ready = labkit(["doctor", "--for", "embedded"], environment)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "Java 17+" in ready.stdout and "state folder writable" in ready.stdout
    busy = labkit(["doctor"], {**environment, "LABKIT_KAFKA_PORT": str(held_port)})
    assert busy.returncode == 1 and "What to do:" in busy.stdout and "LABKIT_KAFKA_PORT" in busy.stderr
    assert Path(environment["LABKIT_STATE_DIR"]).is_dir()
