"""The streaming job checked against an independent batch computation over the same raw records.

One seeded simulation (with out-of-order readings inside the watermark, readings far later than
it, and duplicates) goes through the real bridge into Kafka once for the module. Then:

* the golden check: every window the stream wrote to Delta equals the windows computed here in
  plain Python from the raw records read back from Kafka (same windows, same values, late
  readings excluded), and the downsampled topics carry the same rows;
* the job killed with SIGKILL mid-run and restarted from its checkpoint ends with the same
  Delta table as the uninterrupted run;
* time travel returns earlier versions; a replay from a timestamp reproduces the live windows.
"""

from __future__ import annotations

import collections
import json
import math
import os
import shutil
import signal
import time
from datetime import datetime, timezone

import pytest

from labkit import feed, jobs, lake, metadata, names, pipeline, reference, replay, schema, simulator, topics, watch

pytestmark = [pytest.mark.services, pytest.mark.spark]

ROOMS = names.room_ids()
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
WINDOW_S, SLIDE_S, WATERMARK_S = 10, 5, 10
LATE_DELAY_S = 90  # far beyond window + watermark: late whatever the micro-batch boundaries
MAX_OFFSETS = 200  # many small micro-batches, so the watermark advances during the run


# ---------------------------------------------------------------- the data, once per module


@pytest.fixture(scope="module")
def published(stack):
    """Simulate 2 minutes of 8 rooms through MQTT and the bridge; return the Kafka offset range."""
    metadata.init_metadata(stack.metadata_db)
    messages = list(simulator.generate(
        rooms=ROOMS, start=START, duration=120, seed=11, out_of_order_fraction=0.05,
        late_fraction=0.03, late_delay=LATE_DELAY_S, duplicate_fraction=0.02,
    ))  # fmt: skip
    sent = feed.through_bridge(messages)
    assert sent.produced == sent.count == len(messages), sent.counters
    before, after = sent.before, sent.after
    return {"before": before, "after": after, "messages": messages}


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


# ---------------------------------------------------------------- the live run


@pytest.fixture(scope="module")
def live(spark, published, stack):
    """The uninterrupted run: Delta table, final watermark, downsampled offsets before it."""
    downsampled_before = topics.end_offsets([names.downsampled_topic(r) for r in ROOMS])
    path = stack.table_path("golden_live")
    rows = pipeline.build(spark, starting_offsets=json.dumps(published["before"]), max_offsets_per_trigger=MAX_OFFSETS)
    query = pipeline.start(rows, query_name="golden_live", table_path=path, trigger=None)
    try:
        progress = watch.run_until_caught_up(query, ROOMS, timeout=600)
        dropped = watch.progress_table(query.recentProgress)["late rows dropped"].sum()
    finally:
        query.stop()
    watermark = datetime.fromisoformat(progress["eventTime"]["watermark"].replace("Z", "+00:00"))
    return {"path": path, "watermark": watermark, "downsampled_before": downsampled_before, "dropped": dropped}


def test_every_final_window_equals_the_batch_computation(spark, published, live, stack):
    records = raw_records(published)
    kinds = collections.Counter(m.kind for m in published["messages"])
    assert kinds["late"] > 0 and kinds["out_of_order"] > 0 and kinds["duplicate"] > 0, kinds
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


def test_a_job_killed_mid_run_resumes_without_loss_or_duplicates(spark, published, live, stack, tmp_path):
    path = stack.table_path("golden_killed")
    log = tmp_path / "stream.log"
    command = jobs.stream_command("golden_killed", path, published["before"], max_offsets_per_trigger=MAX_OFFSETS)
    first = jobs.start(command, log)
    deadline = time.monotonic() + 300
    while delta_versions(path) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    first_processes = first.processes()
    assert first.kill() == -signal.SIGKILL, log.read_text()[-3000:]
    versions_at_kill = delta_versions(path)
    assert versions_at_kill >= 3, log.read_text()[-3000:]

    second = jobs.start(command + ["--until-caught-up"], log)
    assert second.process.wait(600) == 0, log.read_text()[-3000:]
    assert not jobs.still_running(first_processes), "the killed job's JVM went with it"
    assert delta_versions(path) > versions_at_kill, "the restart wrote the rest"
    difference = replay.compare_tables(spark, live["path"], path)
    assert difference.count() == 0, difference.limit(5).collect()
    delta_rows(spark, path)  # raises if any window was written twice


# ---------------------------------------------------------------- time travel and replay


def test_time_travel_reads_earlier_versions_and_restore_brings_one_back(spark, live, tmp_path):
    path = str(tmp_path / "copy")
    shutil.copytree(live["path"], path)  # restore writes: work on a copy of the live table
    history = lake.history(spark, path).collect()
    latest = lake.latest_version(spark, path)
    assert [h.version for h in history] == list(range(latest + 1))
    counts = [lake.read_version(spark, path, v).count() for v in range(latest + 1)]
    assert counts == sorted(counts) and counts[-1] > counts[0], "an append-only table only grows"
    middle = latest // 2
    lake.restore(spark, path, middle)
    assert spark.read.format("delta").load(path).count() == counts[middle]
    assert lake.history(spark, path).collect()[-1].operation == "RESTORE"
    at_time = history[middle].timestamp
    assert lake.read_at(spark, path, str(at_time)).count() == counts[middle]


def test_schema_evolution_adds_a_column_old_rows_read_as_null(spark, live, tmp_path):
    from pyspark.sql import functions as F

    path = str(tmp_path / "evolve")
    shutil.copytree(live["path"], path)
    before = spark.read.format("delta").load(path).count()
    new_rows = spark.read.format("delta").load(path).limit(3).withColumn("comfort_score", F.lit(0.9))
    with pytest.raises(Exception, match="(?i)schema"):
        new_rows.write.format("delta").mode("append").save(path)  # enforcement: refused
    lake.append_with_new_columns(new_rows, path)
    evolved = spark.read.format("delta").load(path)
    assert "comfort_score" in evolved.columns
    assert evolved.where("comfort_score IS NULL").count() == before


def test_a_replay_from_a_timestamp_reproduces_the_live_windows(spark, published, live, stack):
    first_offsets = published["before"]
    first = topics.read_all(names.raw_topic("room_1"))
    start_ms = min(m.timestamp_ms for m in first if m.offset >= first_offsets[names.raw_topic("room_1")]["0"])
    query = replay.start_replay(spark, name="golden_replay", from_timestamp_ms=start_ms - 1,
                                max_offsets_per_trigger=MAX_OFFSETS)  # fmt: skip
    try:
        watch.run_until_caught_up(query, ROOMS, timeout=600)
    finally:
        query.stop()
    difference = replay.compare_tables(spark, live["path"], stack.table_path("golden_replay"))
    assert difference.count() == 0, difference.limit(5).collect()


def test_reset_consumer_group_moves_offsets_back(stack, published):
    from confluent_kafka import Consumer, TopicPartition

    name = names.raw_topic("room_2")
    group = "dashboard-test"
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "latest"})  # fmt: skip
    end = published["after"][name]["0"]
    consumer.commit(offsets=[TopicPartition(name, 0, end)], asynchronous=False)
    consumer.close()
    moved = topics.reset_consumer_group(group, [name])
    assert moved[f"{name}:0"] == 0
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition(name, 0)], timeout=10)[0].offset
    consumer.close()
    assert committed == 0
