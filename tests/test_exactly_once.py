"""Exactly once in Delta across restarts, also when batches write nothing and when a checkpoint is reset.

The windows job writes nothing for a micro-batch in which no window became final (no Delta
commit, no Kafka job), so the last batch id in the checkpoint can be ahead of the last
``txnVersion`` in the Delta log. And a checkpoint can be deleted: batch ids then start again at 0.
Both must leave Delta with every window exactly once, checked against ``labkit.reference``:

1. a job stopped right after a batch that wrote nothing restarts from its checkpoint and reads
   on: the table holds every window once;
2. the same job's checkpoint is deleted and it starts again from the second part's offsets:
   its windows are written again (a reset reprocesses, it does not resume), none is skipped.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from labkit import feed, metadata, names, pipeline, reference, schema, simulator, watch

pytestmark = [pytest.mark.services, pytest.mark.spark]

ROOMS = names.room_ids()
START = datetime(2026, 11, 4, 14, 0, tzinfo=timezone.utc)
PART_S = 60
QUERY = "exactly_once_restart"


def send(start: datetime, seed: int) -> feed.Sent:
    messages = list(simulator.generate(rooms=ROOMS, start=start, duration=PART_S, seed=seed, duplicate_fraction=0.02))
    sent = feed.through_bridge(messages)
    assert sent.produced == sent.count == len(messages), sent.counters
    return sent


def start(spark, stack, starting_offsets: dict, max_offsets: int):
    rows = pipeline.build(spark, starting_offsets=json.dumps(starting_offsets), max_offsets_per_trigger=max_offsets)
    return pipeline.start(rows, query_name=QUERY, table_path=stack.table_path(QUERY), trigger=None)


def run_until_caught_up(spark, stack, starting_offsets: dict) -> dict:
    """Run the job (checkpoint of QUERY) until it has processed everything in Kafka."""
    query = start(spark, stack, starting_offsets, max_offsets=300)
    try:
        return watch.run_until_caught_up(query, ROOMS, timeout=600)
    finally:
        query.stop()


def delta_windows(spark, path: str, versions_after: int = -1) -> list[dict]:
    """The rows the commits after version ``versions_after`` added, as dicts keyed like the reference."""
    from pyspark.sql import functions as F

    table = spark.read.format("delta").load(path)
    if versions_after >= 0:
        table = table.exceptAll(spark.read.format("delta").option("versionAsOf", versions_after).load(path))
    rows = []
    for row in table.orderBy(F.col("room_id"), F.col("window_start")).collect():
        record = row.asDict()
        for column in ("window_start", "window_end"):
            record[column] = record[column].replace(tzinfo=timezone.utc)
        rows.append(record)
    return rows


def assert_each_window_once(actual: list[dict], expected: list[dict]) -> None:
    keys = [(r["room_id"], r["window_start"]) for r in actual]
    assert len(keys) == len(set(keys)), "a window was written twice"
    want = {(r["room_id"], r["window_start"]): r for r in expected}
    got = {(r["room_id"], r["window_start"]): r for r in actual}
    assert set(got) == set(want), (
        f"only in Delta: {sorted(set(got) - set(want))[:4]}; missing from Delta: {sorted(set(want) - set(got))[:4]}"
    )
    for key, row in want.items():
        for column in schema.AGGREGATE_COLUMNS:
            if isinstance(row[column], float):
                assert math.isclose(got[key][column], row[column], rel_tol=1e-9), (key, column)
            else:
                assert got[key][column] == row[column], (key, column)


def final_watermark(records) -> datetime:
    """Where the watermark ends once the job has read ``records``: the newest event time minus 10 s.

    Computed from the records, not taken from the job's progress: a job that stops short of
    its last batch reports a lower watermark, and a test using it would expect fewer windows.
    """
    return max(schema.parse_timestamp(r["timestamp"]) for _, _, r in records) - timedelta(seconds=10)


def last_txn(path: str) -> tuple[str | None, int]:
    """(txnAppId, txnVersion) of the table's newest streaming write, read from the Delta log itself."""
    newest = (None, -1)
    for commit in sorted(Path(path, "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            txn = json.loads(line).get("txn")
            if txn:
                newest = (txn["appId"], txn["version"])
    return newest


@pytest.fixture(scope="module")
def parts(spark, stack):
    """Two minutes of the building in Kafka, as two parts of one minute each."""
    metadata.init_metadata(stack.metadata_db)
    shutil.rmtree(stack.checkpoint_path(QUERY), ignore_errors=True)
    shutil.rmtree(stack.table_path(QUERY), ignore_errors=True)
    return send(START, seed=31), send(START + timedelta(seconds=PART_S), seed=32)


def test_a_restart_after_batches_that_wrote_nothing_writes_each_window_once(spark, stack, parts):
    # 40 readings a batch are 2.5 s of the building: about every other batch closes no window.
    query = start(spark, stack, parts[0].before, max_offsets=40)
    try:

        def stopped_after_a_batch_that_wrote_nothing() -> bool:
            done = query.lastProgress
            written_up_to = last_txn(stack.table_path(QUERY))[1]
            return bool(done) and 0 <= written_up_to < done["batchId"]

        while not stopped_after_a_batch_that_wrote_nothing():
            assert query.isActive, query.exception()
            query.awaitTermination(0.3)
    finally:
        query.stop()
    app_id = last_txn(stack.table_path(QUERY))[0]  # the loop ended right after a batch that wrote nothing

    run_until_caught_up(spark, stack, parts[0].before)  # resumes from the checkpoint
    records = reference.records_between(parts[0].before, parts[1].after)
    expected = reference.windows(records, metadata.read_rooms(stack.metadata_db), final_watermark(records))
    assert_each_window_once(delta_windows(spark, stack.table_path(QUERY)), expected)
    assert last_txn(stack.table_path(QUERY))[0] == app_id, "a restart from the checkpoint keeps its app id"


def test_a_deleted_checkpoint_starts_over_and_delta_skips_nothing(spark, stack, parts):
    from delta.tables import DeltaTable

    path = stack.table_path(QUERY)
    old_app_id, _ = last_txn(path)
    before_reset = DeltaTable.forPath(spark, path).history(1).first().version
    shutil.rmtree(stack.checkpoint_path(QUERY))  # what a learner does to "start from scratch"

    run_until_caught_up(spark, stack, parts[1].before)  # a new query: these offsets count
    records = reference.records_between(parts[1].before, parts[1].after)
    expected = reference.windows(records, metadata.read_rooms(stack.metadata_db), final_watermark(records))
    assert expected, "the second part has final windows"
    assert_each_window_once(delta_windows(spark, path, versions_after=before_reset), expected)
    assert last_txn(path)[0] != old_app_id, "a new checkpoint writes under a new app id"


OWED = "exactly_once_owed_batch"


def test_a_restart_right_after_the_last_data_batch_still_writes_the_final_windows(spark, stack, parts):
    """The last data batch moved the watermark, then the job stopped before the batch that applies it.

    Spark runs that batch (a no-data batch) only when it remembers the previous one: a restarted
    query forgets it and waits for new data, which a bounded replay never sends. Seen in CI:
    lesson 07's job killed in the instant after its last data batch committed, the restarted
    ``--until-caught-up`` job reported "caught up" and the last two windows of every room never
    reached Delta. Here the first run gets there for sure: no-data batches off, so it never runs
    the batch the watermark owes; the restart must still write every window.
    """
    shutil.rmtree(stack.checkpoint_path(OWED), ignore_errors=True)
    shutil.rmtree(stack.table_path(OWED), ignore_errors=True)
    targets = topics_end_offsets()
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    try:
        rows = pipeline.build(spark, starting_offsets=json.dumps(parts[0].before), max_offsets_per_trigger=600)
        query = pipeline.start(rows, query_name=OWED, table_path=stack.table_path(OWED), trigger=None)
        try:
            while not read_up_to(query.lastProgress, targets):
                assert query.isActive, query.exception()
                query.awaitTermination(0.3)
        finally:
            watch.stop_between_batches(query)
    finally:
        spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "true")

    rows = pipeline.build(spark, starting_offsets=json.dumps(parts[0].before), max_offsets_per_trigger=600)
    query = pipeline.start(rows, query_name=OWED, table_path=stack.table_path(OWED), trigger=None)
    try:
        watch.run_until_caught_up(query, ROOMS, timeout=300)
    finally:
        query.stop()

    records = reference.records_between(parts[0].before, targets)
    expected = reference.windows(records, metadata.read_rooms(stack.metadata_db), final_watermark(records))
    assert_each_window_once(delta_windows(spark, stack.table_path(OWED)), expected)


def topics_end_offsets() -> dict:
    from labkit import topics

    return topics.end_offsets(topics.raw_topics(ROOMS))


def read_up_to(progress: dict | None, targets: dict) -> bool:
    if not progress or not progress["sources"]:
        return False
    reached = json.loads(progress["sources"][0]["endOffset"] or "{}")
    return all(reached.get(t, {}).get(p, -1) >= o for t, parts in targets.items() for p, o in parts.items())
