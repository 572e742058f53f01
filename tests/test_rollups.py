"""The 1- and 5-minute rollups, read from the windows table as a stream, checked against plain Python.

Eleven minutes of four rooms (with duplicates and out-of-order readings) go through MQTT and the
real bridge into Kafka. The windows job writes its 10 s windows to a Delta table while both
rollup jobs read that table as a stream. Every rollup row must equal the 1- or 5-minute window
``labkit.reference`` computes from the raw records read back from Kafka (no Spark, no 10 s
windows in between), and every window the rollup's final watermark closed must be there, once.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest

from labkit import feed, lake, metadata, names, pipeline, progress, reference, rollups, schema, simulator, watch

ROOMS = names.room_ids(4)
START = datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)  # on a 5-minute boundary
LENGTH_S = {names.ROLLUP_1M_TABLE: 60, names.ROLLUP_5M_TABLE: 300}


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


@pytest.mark.services
@pytest.mark.spark
def test_rollups_equal_the_reference_over_the_raw_records(spark, stack):
    metadata.init_metadata(stack.metadata_db)
    messages = list(
        simulator.generate(
            rooms=ROOMS, start=START, duration=660, seed=5, duplicate_fraction=0.02, out_of_order_fraction=0.03
        )
    )
    sent = feed.through_bridge(messages, ROOMS)
    assert sent.produced == len(messages), sent.counters
    windows_path = stack.table_path("rollup_test_windows")
    paths = {table: stack.table_path(f"rollup_test_{table}") for table in rollups.ROLLUPS}
    lake.remove(spark, windows_path, *paths.values(), stack.checkpoint_path("rollup_test_windows"))
    lake.remove(spark, *(stack.checkpoint_path(f"rollup_test_{t}") for t in rollups.ROLLUPS))

    rows = pipeline.build(spark, stack, ROOMS, starting_offsets=json.dumps(sent.before), max_offsets_per_trigger=1500)
    windows_job = pipeline.start(rows, stack, "rollup_test_windows", windows_path, trigger=None, to_kafka=False)
    rollup_jobs = {}
    try:
        assert progress.wait_until(lambda: lake_exists(spark, windows_path), "the windows table's first commit", 300)
        for table in rollups.ROLLUPS:  # beside the running windows job
            rollup_jobs[table] = rollups.start(
                spark, table, stack, windows_path, paths[table], f"rollup_test_{table}", trigger=None
            )
        windows_progress = watch.run_until_caught_up(windows_job, ROOMS, timeout=900)
        finals = {table: watch.run_until_idle(job, timeout=300) for table, job in rollup_jobs.items()}
    finally:
        windows_job.stop()
        for job in rollup_jobs.values():
            job.stop()

    records = reference.records_between(sent.before, sent.after)
    rooms_table = metadata.read_rooms(stack.metadata_db)
    for table, length_s in LENGTH_S.items():
        rollup_watermark = reference.final_watermark(finals[table])
        expected = {
            (r["room_id"], r["window_start"]): r
            for r in reference.windows(
                records, rooms_table, reference.final_watermark(windows_progress), length_s, length_s
            )
            if r["window_end"] <= rollup_watermark
        }
        streamed = {}
        for row in spark.read.format("delta").load(paths[table]).collect():
            record = row.asDict()
            record["window_start"], record["window_end"] = as_utc(record["window_start"]), as_utc(record["window_end"])
            key = (record["room_id"], record["window_start"])
            assert key not in streamed, f"{table}: {key} written twice"
            streamed[key] = record
        assert len(expected) >= len(ROOMS) * (2 if length_s == 300 else 9), f"{table}: too few closed windows"
        assert set(streamed) == set(expected), (table, sorted(set(streamed) ^ set(expected))[:5])
        for key, want in expected.items():
            got = streamed[key]
            for column in schema.AGGREGATE_COLUMNS:
                if isinstance(want[column], float):
                    assert math.isclose(got[column], want[column], rel_tol=1e-9), (table, key, column, got, want)
                else:
                    assert got[column] == want[column], (table, key, column, got[column], want[column])


def lake_exists(spark, path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)
