"""The streaming job checked against an independent batch computation over the same raw records.

One seeded simulation (with out-of-order readings inside the watermark, readings far later than
it, and duplicates) goes through the real bridge into Kafka once (conftest's ``published``), and
the job runs over it once (``live``). Then:

* the golden check: every window the stream wrote to Delta equals the windows computed here in
  plain Python from the raw records read back from Kafka (same windows, same values, late
  readings excluded), and the downsampled topics carry the same rows;
* the job killed with SIGKILL mid-run and restarted from its checkpoint ends with the same
  Delta table as the uninterrupted run;
* the rooms table is read, never created, by the job.

(test_lake.py and test_replay.py use the same run.)
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from labkit import jobs, metadata, names, pipeline, reference, replay, schema, settings, topics
from labkit.errors import LabkitError
from labkit.spark import QUICK_COMPILER_ONLY

pytestmark = [pytest.mark.services, pytest.mark.spark]

ROOMS = names.room_ids()
WINDOW_S, SLIDE_S, WATERMARK_S = 10, 5, 10


def raw_records(published) -> list[tuple[str, int, dict]]:
    """(topic, offset, record) of the module's readings, read back from Kafka."""
    return reference.records_between(published["before"], published["after"])


def expected_windows(records, rooms_table, final_watermark: datetime) -> dict:
    """The aggregates per (room, window), computed in plain Python by labkit.reference."""
    rows = reference.windows(records, rooms_table, final_watermark, WINDOW_S, SLIDE_S)
    return {(r["room_id"], r["window_start"]): r for r in rows}


def assert_same_rows(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), (
        f"windows only in the stream: {sorted(set(actual) - set(expected))[:5]}; "
        f"only in the batch computation: {sorted(set(expected) - set(actual))[:5]}"
    )
    for key, want in expected.items():
        got = actual[key]
        for column in schema.AGGREGATE_COLUMNS:
            if isinstance(want[column], float):
                assert math.isclose(got[column], want[column], rel_tol=1e-9), (key, column, got[column], want[column])
            else:
                assert got[column] == want[column], (key, column, got[column], want[column])


def as_utc(value: datetime) -> datetime:
    """Spark returns naive datetimes in the session time zone, which labkit sets to UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def delta_rows(spark, path) -> dict:
    rows = {}
    for row in spark.read.format("delta").load(path).collect():
        record = row.asDict()
        record["window_start"], record["window_end"] = as_utc(record["window_start"]), as_utc(record["window_end"])
        key = (record["room_id"], record["window_start"])
        assert key not in rows, f"window {key} written twice"
        rows[key] = record
    return rows


def test_every_final_window_equals_the_batch_computation(spark, published, live, stack):
    records = raw_records(published)
    kinds = collections.Counter(m.kind for m in published["messages"])
    assert kinds["late"] > 0 and kinds["out_of_order"] > 0 and kinds["duplicate"] > 0, kinds
    newest = max(schema.parse_timestamp(r["timestamp"]) for _, _, r in records)
    assert live["watermark"] == newest - timedelta(seconds=10), "the job stopped before its last watermark"
    expected = expected_windows(records, metadata.read_rooms(stack.metadata_db), live["watermark"])
    actual = delta_rows(spark, live["path"])
    assert len(expected) > 8 * 20, "two minutes of 8 rooms make well over 20 final windows each"
    assert_same_rows(actual, expected)


def test_spark_reports_the_late_readings_it_dropped(published, live):
    late = sum(1 for m in published["messages"] if m.kind == "late")
    assert live["dropped"] >= 1, "Spark's progress shows no reading dropped by the watermark"
    assert live["dropped"] <= 2 * late, "only late readings (and their copies) may be dropped"


def test_downsampled_topics_carry_the_same_rows(spark, live):
    table = delta_rows(spark, live["path"])
    seen = {}
    for room in ROOMS:
        name = names.downsampled_topic(room)
        low = live["downsampled_before"][name]["0"]
        for m in topics.read_all(name):
            if m.offset < low:
                continue
            row = json.loads(m.value)
            for column in ("window_start", "window_end"):
                row[column] = schema.parse_timestamp(row[column])
            key = (row["room_id"], row["window_start"])
            assert m.key == f"{row['room_id']}|{schema.format_timestamp(row['window_start'])}"
            assert seen.get(key, row) == row, "a repeated key must carry the same row"
            seen[key] = row
    assert_same_rows(seen, table)


# ---------------------------------------------------------------- failure and recovery


def delta_versions(path) -> int:
    log = os.path.join(path, "_delta_log")
    return len([f for f in os.listdir(log) if f.endswith(".json")]) if os.path.isdir(log) else 0


def compilers(processes) -> list[str]:
    """For Spark's JVM among ``processes``: "quick" (C1 only) or "full" (see labkit.spark).

    Only the JVM that runs ``SparkSubmit``: Spark's start scripts (``spark-submit``,
    ``spark-class``) name it too, and first run a short-lived JVM of their own
    (``org.apache.spark.launcher.Main``) that only works out the real command line.
    """
    found = []
    for p in jobs.still_running(processes):
        command = p.cmdline()
        java = bool(command) and command[0].endswith("java") and "org.apache.spark.launcher.Main" not in command
        if java and "org.apache.spark.deploy.SparkSubmit" in command:
            found.append("quick" if QUICK_COMPILER_ONLY in command else "full")
    return found


def test_a_job_killed_mid_run_resumes_without_loss_or_duplicates(spark, published, live, stack, tmp_path):
    path = stack.table_path("golden_killed")
    log = tmp_path / "stream.log"
    command = jobs.stream_command(
        "golden_killed", path, published["before"], max_offsets_per_trigger=published["max_offsets"]
    )
    first = jobs.start(command, log)
    deadline = time.monotonic() + 300
    while delta_versions(path) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    first_processes = first.processes()
    first_compilers = compilers(first_processes)
    assert first.kill() == -signal.SIGKILL, log.read_text()[-3000:]
    versions_at_kill = delta_versions(path)
    assert versions_at_kill >= 3, log.read_text()[-3000:]

    second = jobs.start(command + ["--until-caught-up"], log)
    deadline = time.monotonic() + 120
    while not compilers(second.processes()) and time.monotonic() < deadline and second.poll() is None:
        time.sleep(0.2)
    second_compilers = compilers(second.processes())
    assert second.process.wait(600) == 0, log.read_text()[-3000:]
    # the job that runs until stopped compiles fully, the catch-up run quickly (labkit.cli.cmd_stream)
    assert (first_compilers, second_compilers) == (["full"], ["quick"])
    assert not jobs.still_running(first_processes), "the killed job's JVM went with it"
    assert delta_versions(path) > versions_at_kill, "the restart wrote the rest"
    difference = replay.compare_tables(spark, live["path"], path)
    assert difference.count() == 0, difference.limit(5).collect()
    delta_rows(spark, path)  # raises if any window was written twice


def test_reading_the_rooms_table_never_creates_it(spark, tmp_path):
    missing = tmp_path / "no-such.db"
    s = dataclasses.replace(settings.get(), metadata_db=missing)
    with pytest.raises(LabkitError, match="no room metadata") as failure:
        pipeline.read_rooms(spark, s)
    assert "labkit init-metadata" in failure.value.next_step
    assert not missing.exists(), "a read must not write"
