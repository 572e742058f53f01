"""`labkit demo` end to end, read as a newcomer reads it: no noise a learner cannot act on."""

import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, free_port

# Lines that used to fill the demo's output; none of them asks the learner to do anything.
NOISE = [
    "Coordinator load in progress",  # librdkafka: the idempotent producer retrying at a fresh broker
    "Connection refused",  # librdkafka: connection attempts, once a second
    "Using incubator modules",  # the JVM: Spark's launcher adds jdk.incubator.vector
    "ResolveWriteToStream",  # Spark: AQE is not supported in streaming
    "Disabling AQE",  # Spark: ... said a second time
    "Traceback",
]


@pytest.mark.spark
def test_demo_output_has_no_noise():
    """The shortest demo (`--minutes 0.5`) on this test run's ports and folders (tests/conftest.py)."""
    result = subprocess.run([sys.executable, "-m", "labkit", "demo", "--minutes", "0.5"], capture_output=True,
                            text=True, timeout=900, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "room_1" in result.stdout and "demo finished" in result.stdout, output[-3000:]
    noisy = [line for line in output.splitlines() if any(noise in line for noise in NOISE)]
    assert not noisy, "noise in the demo's output:\n" + "\n".join(noisy[:20])


def test_a_kafka_failure_still_shows_once():
    """The filter drops repeats, not problems: a broker that refuses shows up once, not every second."""
    script = (
        "import time; from labkit import settings, topics; from confluent_kafka import Producer\n"
        "p = Producer(topics.client_config(settings.get()))\n"
        "end = time.monotonic() + 4\n"
        "while time.monotonic() < end: p.poll(0.2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABKIT_KAFKA_PORT": str(free_port())}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    refused = [line for line in result.stderr.splitlines() if "Connection refused" in line]
    assert len(refused) == 1, f"{len(refused)} lines in {time.monotonic() - started:.0f} s:\n{result.stderr}"
    assert refused[0].startswith("kafka: "), result.stderr
