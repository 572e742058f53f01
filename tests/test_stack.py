"""labkit.stack against real processes: up, status, down, and the errors a learner meets.

These tests start their own brokers on ports of their own (not the session stack's), so they
can stop and break them freely.
"""

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest
from conftest import _port

from labkit import settings, stack
from labkit.errors import LabkitError
from labkit.stack import services

pytestmark = pytest.mark.services

# ports of this file's own stacks: apart from the session's, and moved by LABKIT_TEST_INSTANCE like them
OWN_PORTS = {
    "LABKIT_MQTT_PORT": _port(32883),
    "LABKIT_KAFKA_PORT": _port(32092),
    "LABKIT_KAFKA_CONTROLLER_PORT": _port(32093),
}


@pytest.fixture
def own_settings(tmp_path):
    env = {**os.environ, "LABKIT_STATE_DIR": str(tmp_path / "state"), **OWN_PORTS}
    s = settings.load(env)
    yield s
    stack.down(s)


def labkit_cli(*args, env_changes=None, timeout=300):
    env = {**os.environ, **(env_changes or {})}
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_up_status_down_round_trip(own_settings):
    s = own_settings
    first = stack.up(s)
    assert [st.name for st in first] == ["mqtt", "kafka"]
    assert all(st.healthy and st.pid for st in first), stack.format_status(first)
    pids = {st.name: st.pid for st in first}

    # `up` a second time changes nothing: same processes, still healthy
    again = stack.up(s)
    assert {st.name: st.pid for st in again} == pids
    assert all(st.healthy for st in again)

    stopped = stack.down(s)
    assert sorted(stopped) == ["kafka", "mqtt"]
    for pid in pids.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not stack.port_open("127.0.0.1", s.mqtt_port)
    assert not stack.port_open("127.0.0.1", s.kafka_port)
    assert not any(st.running or st.healthy for st in stack.status(s))
    assert stack.down(s) == [], "a second down has nothing to stop"


def test_up_keeps_kafka_data_across_restarts(own_settings):
    """A restart reuses the formatted storage, so topics survive `down` + `up`."""
    from labkit import topics

    s = own_settings
    stack.up(s)
    topics.ensure_topics(["restart.check"], s=s)
    stack.down(s)
    stack.up(s)
    assert "restart.check" in topics.existing_topics(s)


def test_down_stops_only_what_up_started(own_settings):
    """A pid file whose pid now belongs to another program must not get that program killed."""
    s = own_settings
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = s.state_dir / "pids" / "kafka.json"
        pid_file.parent.mkdir(parents=True)
        # the pid of the bystander, but the start time of some other process: a recycled pid
        pid_file.write_text(json.dumps({"pid": bystander.pid, "create_time": time.time() - 3600}))
        assert stack.down(s) == []
        assert bystander.poll() is None, "down killed a process it did not start"
    finally:
        bystander.kill()


def test_port_in_use_is_reported_with_the_variable_to_change(own_settings):
    s = own_settings
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", s.mqtt_port))
    squatter.listen()
    try:
        with pytest.raises(LabkitError) as error:
            stack.up(s)
        assert f"port {s.mqtt_port}" in error.value.what
        assert "LABKIT_MQTT_PORT" in error.value.next_step
    finally:
        squatter.close()
    assert not any(st.running for st in stack.status(s)), "nothing is left half-started"


def test_unhealthy_service_reports_the_tail_of_its_log(own_settings):
    """A broker that dies at start (here: a heap far too small) is reported with its log."""
    s = settings.load(
        {**os.environ, "LABKIT_STATE_DIR": str(own_settings.state_dir), **OWN_PORTS, "LABKIT_KAFKA_HEAP": "1k"}
    )
    with pytest.raises(LabkitError) as error:
        stack.up(s)
    assert "kafka exited" in error.value.what
    assert "heap" in error.value.what.lower(), "the JVM's own complaint is quoted from the log"
    assert "labkit up" in error.value.next_step
    stack.down(s)


def test_missing_java_says_how_to_install_it(tmp_path):
    result = labkit_cli(
        "up", env_changes={"JAVA_HOME": str(tmp_path / "no-such-jdk"), "LABKIT_STATE_DIR": str(tmp_path / "state")}
    )
    assert result.returncode == 1
    assert "JAVA_HOME" in result.stderr and "next:" in result.stderr
    assert "openjdk" in result.stderr
    assert "Traceback" not in result.stderr


def test_too_old_java_is_refused(tmp_path):
    """A JAVA_HOME whose java reports version 1.8 (the old numbering) is refused with a hint."""
    java = tmp_path / "jdk8" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_402\"' >&2\n")
    java.chmod(0o755)
    result = labkit_cli(
        "up", env_changes={"JAVA_HOME": str(tmp_path / "jdk8"), "LABKIT_STATE_DIR": str(tmp_path / "state")}
    )
    assert result.returncode == 1
    assert "Java 8" in result.stderr and "17" in result.stderr


def test_unreachable_maven_repository_names_the_artifact(tmp_path):
    result = labkit_cli(
        "jars",
        "kafka",
        env_changes={
            "LABKIT_JARS_DIR": str(tmp_path / "jars"),
            "LABKIT_MAVEN_REPO": "http://127.0.0.1:9/maven2/",  # nothing listens on port 9
        },
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kafka_2.13" in result.stderr, result.stderr
    assert "LABKIT_MAVEN_REPO" in result.stderr
    assert not (tmp_path / "jars" / "kafka").exists()


def test_cluster_ids_never_look_like_options():
    ids = [services.new_cluster_id() for _ in range(2000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)


def test_compose_status_checks_every_service_labkit_talks_to(stack, s3_server):  # stack: the session's brokers
    """In compose, `labkit status` probes MQTT, Kafka, the Spark master and worker and the lake.

    Here the compose profile points at the session's brokers and the S3 test double, and at a
    Spark master that is not there: that one must show as not healthy, not be left out.
    """
    from conftest import free_port

    s = settings.load(
        {
            "LABKIT_PROFILE": "compose",
            "LABKIT_MQTT_HOST": "127.0.0.1",
            "LABKIT_MQTT_PORT": str(stack.mqtt_port),
            "LABKIT_KAFKA_HOST": "127.0.0.1",
            "LABKIT_KAFKA_PORT": str(stack.kafka_port),
            "LABKIT_SPARK_MASTER": f"spark://127.0.0.1:{free_port()}",
            "LABKIT_SPARK_MASTER_UI_PORT": str(free_port()),
            "LABKIT_S3_ENDPOINT": s3_server.endpoint,
        }
    )
    from labkit import stack as stack_module

    health = {st.name: st.healthy for st in stack_module.status(s)}
    assert health == {"mqtt": True, "kafka": True, "spark-master": False, "spark-worker": False, "s3": True}
