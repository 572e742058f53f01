"""``labkit demo``: the whole path once, on the test stack, as a learner runs it."""

import os
import re
import subprocess
import sys

import pytest

from labkit import names
from labkit import stack as stack_module

pytestmark = [pytest.mark.services, pytest.mark.spark]


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
