"""Shared fixtures: one embedded stack and one Spark session for the whole test run.

The tests use their own ports and state folder (below), so they never touch a stack a
developer has running on the default ports, and ``pytest`` can run beside ``labkit up``.
The jar cache is shared: it only holds downloads.
"""

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Two test runs on one machine (say, two developers' checkouts) need different ports and
# folders: LABKIT_TEST_INSTANCE=1 moves every port up by 100 and the state to .labkit-test-1.
# `make test` runs the tests in two processes (pytest-xdist's workers gw0 and gw1, see
# "two workers" below), each with a stack of its own: worker N adds N to the instance, so a
# run takes two instances, and a second run beside it needs LABKIT_TEST_INSTANCE=2.
WORKER_PROCESS = "PYTEST_XDIST_WORKER" in os.environ
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
INSTANCE = int(os.environ.get("LABKIT_TEST_INSTANCE", "0")) + WORKER
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


class S3Server:
    """An S3-compatible server on loopback: moto's server mode, an S3 *test double*.

    In the Docker workshop the lake is a MinIO bucket (``s3a://datalake``). There is no Docker
    here, so this stands in for MinIO (docs/architecture.md allows a test double for the ``s3a://`` code
    path only). Everything on the lab's side is real: hadoop-aws, the AWS SDK, Delta's S3 log
    store, speaking HTTP to this server.
    """

    # Learning-only credentials: the test double accepts any key, they just have to be present.
    ACCESS_KEY = "labkit-test"
    SECRET_KEY = "labkit-test-secret"

    def __init__(self):
        import boto3
        from moto.server import ThreadedMotoServer

        port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
        )

    def lake_environment(self, bucket: str) -> dict[str, str]:
        """Create ``bucket`` and return the variables that make it labkit's lake (``s3a://bucket``)."""
        self.client.create_bucket(Bucket=bucket)
        return {
            "LABKIT_LAKE_ROOT": f"s3a://{bucket}",
            "LABKIT_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``: what really landed on the server."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def free_port(low: int = 61000, high: int = 65000) -> int:
    """A TCP port nothing holds, above Linux's ephemeral range (32768-60999).

    Not in that range: there the kernel picks the local port of every outgoing connection (Kafka
    and Spark open many), and a broker started a moment later on a port picked there once failed
    with "Address already in use" (CI, the fault suite). Other lab work uses 1883, 9092, 2xxxx.
    A port counts as free when it can be bound, not merely when nothing answers on it.
    """
    import random
    import socket

    for port in random.sample(range(low, high), 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


@pytest.fixture(scope="session")
def s3_server():
    """One S3 test double for the whole run; each test makes its own bucket."""
    pytest.importorskip("moto.server", reason="pip install -e '.[test]' (moto[server])")
    server = S3Server()
    yield server
    server.server.stop()


# ---------------------------------------------------------------- one pipeline run, shared
# Simulated once (``published``) and streamed once (``live``) for test_pipeline, test_lake,
# test_replay, test_topics and test_watch. Their streaming queries read the raw topics from where
# this run starts up to wherever the topics end *now*, so no other test may write to them in
# between: the tests that use the run are moved to the end of the session, one after the other.


#: The modules with tests on the shared run: under two workers they run in one unit (below).
SHARED_RUN_MODULES = ("test_lake.py", "test_pipeline.py", "test_replay.py", "test_topics.py", "test_watch.py")


def pytest_collection_modifyitems(items):
    on_the_shared_run = [item for item in items if "published" in getattr(item, "fixturenames", ())]
    strays = sorted({item.path.name for item in on_the_shared_run} - set(SHARED_RUN_MODULES))
    if strays:
        raise pytest.UsageError(f"{strays} use the shared run: add them to SHARED_RUN_MODULES in tests/conftest.py")
    items[:] = [item for item in items if item not in on_the_shared_run] + on_the_shared_run
    if WORKER_PROCESS:  # the longest units first (a stable sort: each unit keeps its order)
        items.sort(key=lambda item: _minutes_first(item.nodeid))


# ---------------------------------------------------------------- two workers (`make test`)
# `make test` runs pytest-xdist with two workers. Its stock "loadscope" mode sends whole modules
# to a worker; the scheduler below cuts the units a little differently:
#
# * each lesson and solution is a unit of its own (they share nothing but the stack), so the
#   ~20 minutes of notebooks spread over both workers;
# * the shared run's modules are one unit: nothing else may write to the raw topics between
#   the run's simulation and its last test (see above);
# * the s3a tests are one unit: the first downloads the hadoop-aws jars (~650 MB) while the
#   other waits for it, instead of two downloads into one cache;
# * every other module is one unit (test_exactly_once's restarts read the table its first test
#   wrote).
#
# Units go out in collection order, and a worker asks for the next one when it is nearly done,
# so the units that take minutes come first (``_minutes_first``) and short modules fill the
# end. pytest-xdist's ``--dist loadgroup`` would express the same with markers, but with
# pytest 9 its group suffix no longer reaches the node ids, and modules got split.

#: The units that take minutes each (a clean CI run of 2026-12-07); then the notebooks
#: (5-185 s each under two workers), then everything else.
LONG_UNITS = ("the shared run", "s3a", "tests/test_faults.py")


def _minutes_first(nodeid: str) -> int:
    unit = work_unit(nodeid)
    if unit in LONG_UNITS:
        return LONG_UNITS.index(unit)
    return len(LONG_UNITS) + (0 if unit.startswith("tests/test_notebooks.py::test_notebook_runs[") else 1)


def work_unit(nodeid: str) -> str:
    """The unit of ``nodeid``: the tests a worker runs together, in order (see above)."""
    module, _, test = nodeid.partition("::")
    name = module.rsplit("/", 1)[-1]
    if name in SHARED_RUN_MODULES:
        return "the shared run"
    if name == "test_s3a.py" or test.startswith("test_lesson_runs_unchanged_on_a_compose_shaped_stack"):
        return "s3a"
    if test.startswith("test_notebook_runs["):
        return nodeid
    return module


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: pytest calls it only with -n
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    # in collection order (the longest first), not xdist's default of the most tests first
    config.option.loadscopereorder = False
    return ByWorkUnit(config, log)


#: The tests that execute a whole lesson or solution (tests/test_notebooks.py).
EXECUTED_NOTEBOOKS = (
    "tests/test_notebooks.py::test_notebook_runs[",
    "tests/test_notebooks.py::test_lesson_runs_unchanged_on_a_compose_shaped_stack[",
)


def _notebook_label(nodeid: str) -> str:
    """``...::test_notebook_runs[notebooks/02_windowing.ipynb]`` -> ``notebooks/02_windowing.ipynb``."""
    name = nodeid.split("[", 1)[1].rstrip("]")
    return f"{name} (s3a lake, Spark cluster)" if "compose_shaped" in nodeid else name


def pytest_terminal_summary(terminalreporter):
    """Each notebook's wall time at the end of the run (issue 13's (e)), also with ``-q``."""
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    times = sorted(
        (_notebook_label(report.nodeid), report.duration)
        for report in reports
        if report.when == "call" and report.nodeid.startswith(EXECUTED_NOTEBOOKS)
    )
    if times:
        terminalreporter.write_sep("=", "notebook wall times (papermill, small parameters)")
        for name, seconds in times:
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
        terminalreporter.write_line(f"{sum(s for _, s in times):7.1f} s  total")


PIPELINE_START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
LATE_DELAY_S = 90  # far beyond window + watermark: late whatever the micro-batch boundaries
MAX_OFFSETS = 200  # many small micro-batches, so the watermark advances during the run


@pytest.fixture(scope="session")
def published(stack):
    """Simulate 2 minutes of 8 rooms through MQTT and the bridge; return the Kafka offset range.

    One seeded run with out-of-order readings inside the watermark, readings far later than it,
    and duplicates, shared by the pipeline, lake, replay and topics tests.
    """
    from labkit import feed, metadata, names, simulator

    metadata.init_metadata(stack.metadata_db)
    messages = list(
        simulator.generate(
            rooms=names.room_ids(),
            start=PIPELINE_START,
            duration=120,
            seed=11,
            out_of_order_fraction=0.05,
            late_fraction=0.03,
            late_delay=LATE_DELAY_S,
            duplicate_fraction=0.02,
        )
    )
    sent = feed.through_bridge(messages)
    assert sent.produced == sent.count == len(messages), sent.counters
    before, after = sent.before, sent.after
    return {"before": before, "after": after, "messages": messages, "max_offsets": MAX_OFFSETS}


@pytest.fixture(scope="session")
def live(spark, published, stack):
    """The uninterrupted run of the job over ``published``: Delta table, final watermark, downsampled offsets before it."""
    import json
    from datetime import datetime

    from labkit import names, pipeline, topics, watch

    rooms = names.room_ids()
    downsampled_before = topics.end_offsets([names.downsampled_topic(r) for r in rooms])
    path = stack.table_path("golden_live")
    rows = pipeline.build(spark, starting_offsets=json.dumps(published["before"]), max_offsets_per_trigger=MAX_OFFSETS)
    query = pipeline.start(rows, query_name="golden_live", table_path=path, trigger=None)
    try:
        progress = watch.run_until_caught_up(query, rooms, timeout=600)
        dropped = watch.progress_table(query.recentProgress)["late rows dropped"].sum()
    finally:
        query.stop()
    watermark = datetime.fromisoformat(progress["eventTime"]["watermark"].replace("Z", "+00:00"))
    return {"path": path, "watermark": watermark, "downsampled_before": downsampled_before, "dropped": dropped}
