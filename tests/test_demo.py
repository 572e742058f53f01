"""``labkit demo``: the whole path once, on the test stack, as a learner runs it."""

import os
import re
import subprocess
import sys

import pytest
from conftest import free_port

from labkit import names
from labkit import stack as stack_module

# Lines that used to fill the demo's output; none of them asks the learner to do anything.
NOISE = [
    "Coordinator load in progress",  # librdkafka: the idempotent producer retrying at a fresh broker
    "Connection refused",  # librdkafka: connection attempts, once a second
    "Using incubator modules",  # the JVM: Spark's launcher adds jdk.incubator.vector
    "ResolveWriteToStream",  # Spark: AQE is not supported in streaming
    "Disabling AQE",  # Spark: ... said a second time
    "Traceback",
]


@pytest.mark.services
@pytest.mark.spark
def test_the_demo_fills_the_table_for_every_room_and_reports_what_the_bridge_did(stack, spark):
    # --keep-running: the stack is the test session's, the demo must leave it up
    result = subprocess.run(
        [sys.executable, "-m", "labkit", "demo", "--minutes", "0.5", "--keep-running"],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    noisy = [line for line in (out + result.stderr).splitlines() if any(noise in line for noise in NOISE)]
    assert not noisy, "noise in the demo's output:\n" + "\n".join(noisy[:20])

    # every message the simulator sent reached Kafka: a room topic or the dead-letter topic
    sent, produced, rejected = (
        int(n.replace(",", ""))
        for n in re.search(
            r"bridge: ([\d,]+) sent, ([\d,]+) into the room topics, ([\d,]+) to the dead-letter topic", out
        ).groups()
    )
    assert sent == produced + rejected and produced > 0

    windows = spark.read.format("delta").load(stack.table_path(names.AGGREGATE_TABLE))
    per_room = {r.room_id: r["count"] for r in windows.groupBy("room_id").count().collect()}
    assert sorted(per_room) == sorted(names.room_ids()), per_room
    assert windows.groupBy("room_id", "window_start").count().where("count > 1").count() == 0, "a window twice"
    for room in names.room_ids():
        assert re.search(rf"\|{room}\s*\|", out), f"{room} missing from the printed results"
    assert "demo finished" in out
    assert all(st.healthy for st in stack_module.status(stack)), "the demo stopped a stack it did not start"


def test_a_kafka_failure_still_shows_once():
    """The log filter drops repeats, not problems: a broker that refuses shows up once, not every second."""
    script = (
        "import time; from labkit import settings, topics; from confluent_kafka import Producer\n"
        "p = Producer(topics.client_config(settings.get()))\n"
        "end = time.monotonic() + 4\n"
        "while time.monotonic() < end: p.poll(0.2)\n"
    )
    env = {**os.environ, "LABKIT_KAFKA_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    refused = [line for line in result.stderr.splitlines() if "Connection refused" in line]
    assert len(refused) == 1, f"{len(refused)} lines:\n{result.stderr}"
    assert refused[0].startswith("kafka: "), result.stderr
