"""Shared fixtures: one embedded stack and one Spark session for the whole test run.

The tests use their own ports and state folder (below), so they never touch a stack a
developer has running on the default ports, and ``pytest`` can run beside ``labkit up``.
The jar cache is shared: it only holds downloads.
"""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Two test runs on one machine (say, two developers' checkouts) need different ports and
# folders: LABKIT_TEST_INSTANCE=1 moves every port up by 100 and the state to .labkit-test-1.
INSTANCE = int(os.environ.get("LABKIT_TEST_INSTANCE", "0"))
TEST_STATE = ROOT / (".labkit-test" + (f"-{INSTANCE}" if INSTANCE else ""))


def _port(base: int) -> str:
    return str(base + 100 * INSTANCE)


# Before anything imports labkit.settings: the environment of the whole test run.
TEST_ENVIRONMENT = {
    "LABKIT_PROFILE": "embedded",
    "LABKIT_STATE_DIR": str(TEST_STATE / "state"),
    "LABKIT_LAKE_ROOT": str(TEST_STATE / "lake"),
    "LABKIT_METADATA_DB": str(TEST_STATE / "data" / "metadata.db"),
    "LABKIT_MQTT_PORT": _port(21883),
    "LABKIT_KAFKA_PORT": _port(29092),
    "LABKIT_KAFKA_CONTROLLER_PORT": _port(29093),
    "LABKIT_SPARK_MASTER": "local[2]",
    "LABKIT_SPARK_MASTER_PORT": _port(27077),
    "LABKIT_SPARK_MASTER_UI_PORT": _port(28080),
    "LABKIT_SPARK_WORKER_UI_PORT": _port(28083),
}
os.environ.update(TEST_ENVIRONMENT)


@pytest.fixture(scope="session")
def settings():
    from labkit import settings

    return settings.get()


@pytest.fixture(scope="session")
def stack(settings):
    """The embedded MQTT and Kafka brokers, started once for all tests that need them."""
    from labkit import stack as stack_module

    stack_module.down(settings)  # a run killed earlier may have left its brokers behind
    shutil.rmtree(TEST_STATE, ignore_errors=True)
    stack_module.up(settings)
    yield settings
    stack_module.down(settings)


@pytest.fixture(scope="session")
def spark(stack):
    """One local Spark session for every test that needs Spark (starting one takes ~10 s)."""
    from labkit import spark as spark_module

    session = spark_module.get_session("labkit-tests")
    yield session
    session.stop()
