"""labkit.watch: reading a query's progress reports, and a real query watched until it caught up.

The reports in the first tests are written by hand in the shape Spark gives them (the fields
labkit reads, with values chosen here), and the expected figures are worked out by hand.
"""

import math

import pandas as pd
import pytest

from labkit import watch


def report(batch, timestamp, rows, ms, watermark=None, add_batch=True, dropped=0, state=10, out=0):
    durations = {"triggerExecution": ms, **({"addBatch": ms - 10} if add_batch else {})}
    return {
        "batchId": batch,
        "timestamp": timestamp,
        "numInputRows": rows,
        "durationMs": durations,
        "processedRowsPerSecond": rows / (ms / 1000) if rows else 0.0,
        "eventTime": {"watermark": watermark} if watermark else {},
        "stateOperators": [
            {"numRowsTotal": state, "numRowsDroppedByWatermark": dropped, "numShufflePartitions": 4},
            {"numRowsTotal": 1, "numRowsDroppedByWatermark": 0, "numShufflePartitions": 4},
        ],
        "sink": {"numOutputRows": out},
        "sources": [{"endOffset": '{"telemetry.room_1": {"0": 5}}'}],
    }


REPORTS = [
    report(0, "2026-11-29T10:00:00.000Z", 200, 2000),
    report(0, "2026-11-29T10:00:02.500Z", 0, 15, add_batch=False),  # idle: no batch ran
    report(1, "2026-11-29T10:00:03.000Z", 100, 500, watermark="2026-01-30T10:00:05.000Z", dropped=3, out=16),
    report(2, "2026-11-29T10:00:04.000Z", 0, 250, watermark="2026-01-30T10:00:15.000Z", out=8),
]


def test_progress_table_has_one_row_per_batch_that_ran():
    table = watch.progress_table(REPORTS)
    assert list(table["batch"]) == [0, 1, 2]
    assert list(table["rows in"]) == [200, 100, 0]
    assert list(table["ready_s"]) == [2.0, 3.5, 4.25]  # start since the first batch + its duration
    assert list(table["state rows"]) == [11, 11, 11]
    assert list(table["late rows dropped"]) == [0, 3, 0]
    assert list(table["partitions"]) == [4, 4, 4]
    assert list(table["rows out"]) == [0, 16, 8]
    assert table["processed rows/s"].iloc[0] == 100.0 and math.isnan(table["processed rows/s"].iloc[2])
    assert pd.isna(table["watermark"].iloc[0])
    assert table["watermark"].iloc[2] == pd.Timestamp("2026-01-30 10:00:15")


def test_progress_table_of_a_query_that_ran_no_batch_is_empty():
    table = watch.progress_table([REPORTS[1]])
    assert table.empty and "rows in" in table.columns


def test_describe_progress_sums_the_state_operators():
    line = watch.describe_progress(REPORTS[2])
    assert line.startswith("batch 1: 100 rows in, 200 rows/s, watermark 2026-01-30T10:00:05.000Z")
    assert line.endswith("state rows 11, late rows dropped 3")
    assert watch.describe_progress(None) == "waiting for the first batch..."


@pytest.mark.services
@pytest.mark.spark
def test_a_real_query_is_watched_until_it_has_read_everything(spark, published):
    """A memory-sink count over this run's raw records: caught up means every record was read."""
    import json

    from labkit import names, pipeline, topics

    end = topics.end_offsets(topics.raw_topics())  # what Kafka holds now (later tests may add more)
    raw = pipeline.read_raw(spark, starting_offsets=json.dumps(published["before"]), max_offsets_per_trigger=500)
    query = raw.groupBy().count().writeStream.format("memory").queryName("watch_count").outputMode("complete").start()
    try:
        last = watch.run_until_caught_up(query, names.room_ids(), timeout=300, every=30)
    finally:
        query.stop()
    table = watch.progress_table(query.recentProgress)
    expected = sum(end[t]["0"] - published["before"][t]["0"] for t in end)
    assert table["rows in"].sum() == expected == spark.table("watch_count").first()[0]
    assert table["rows in"].max() <= 500
    assert last["numInputRows"] == 0, "caught up: the last batch found nothing new"


@pytest.mark.spark
def test_stop_between_batches_lets_the_running_batch_finish(spark, tmp_path):
    """A plain stop() in the middle of a batch interrupts its foreachBatch function; this waits for it."""
    import threading
    import time

    started, finished = threading.Event(), []

    def slow_batch(batch, batch_id):
        started.set()
        time.sleep(2)  # the batch is busy when the stop comes
        finished.append(batch.count())  # a Spark job: an interrupted batch never gets here

    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 5)
        .load()
        .writeStream.option("checkpointLocation", str(tmp_path / "checkpoint"))
        .foreachBatch(slow_batch)
        .start()
    )
    assert started.wait(120), "no batch started"
    watch.stop_between_batches(query)
    assert not query.isActive
    assert len(finished) >= 1, "the batch running at the stop was interrupted"
