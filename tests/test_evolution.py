"""Schema evolution end to end: a newer firmware's ``noise_db`` from the sensor to the Delta table.

The building runs on firmware 1 and the windows job writes its table. Then room_1 gets firmware
2 (``schema_version`` 2, ``noise_db``) while room_2 stays on 1. Through the real MQTT broker and
bridge: the bridge accepts both versions, and refuses a version it does not know. The job,
started again with the newer schema (and a new checkpoint: its state's shape changed), writes
``avg_noise_db`` into the same table, which gains the column (``mergeSchema``). Checked against
plain Python over the raw records read back from Kafka: every window of the new run equals
``labkit.reference``'s, and ``avg_noise_db`` is the mean of the room's ``noise_db`` readings (null
for the room still on firmware 1); the rows written before the change are all still there,
unchanged, with a null ``avg_noise_db``.
"""

from __future__ import annotations

import heapq
import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from labkit import feed, lake, metadata, names, pipeline, reference, schema, simulator, watch

ROOMS = names.room_ids(2)
START = datetime(2026, 6, 1, 14, 0, tzinfo=timezone.utc)


def test_a_newer_reading_round_trips_and_an_older_one_is_unchanged():
    older, newer = (next(simulator.generate(rooms=ROOMS[:1], start=START, count=1, schema_version=v)) for v in (1, 2))
    assert set(json.loads(older.payload)) == set(schema.RAW_FIELD_NAMES)
    result = schema.validate_payload(newer.payload, ROOMS)
    assert result.ok, result.message
    assert list(result.record)[-2:] == ["schema_version", "noise_db"] and result.record["schema_version"] == 2
    assert schema.to_json(result.record) == newer.payload
    assert schema.validate_payload(older.payload, ROOMS).record == older.record


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def run(spark, stack, query_name: str, path: str, before: dict, schema_version: int) -> datetime:
    rows = pipeline.build(
        spark,
        stack,
        ROOMS,
        starting_offsets=json.dumps(before),
        max_offsets_per_trigger=400,
        schema_version=schema_version,
    )
    query = pipeline.start(rows, stack, query_name, path, trigger=None, to_kafka=False)
    try:
        return reference.final_watermark(watch.run_until_caught_up(query, ROOMS, timeout=600))
    finally:
        query.stop()


@pytest.mark.services
@pytest.mark.spark
def test_noise_db_reaches_delta_and_older_rows_keep_working(spark, stack):
    metadata.init_metadata(stack.metadata_db)
    path = stack.table_path("evolution_test")
    lake.remove(spark, path, *(stack.checkpoint_path(f"evolution_test_v{v}") for v in (1, 2)))

    # Firmware 1 everywhere: the table as it is today.
    firmware_1 = list(simulator.generate(rooms=ROOMS, start=START, duration=60, seed=2, duplicate_fraction=0.02))
    sent_1 = feed.through_bridge(firmware_1, ROOMS)
    assert sent_1.produced == len(firmware_1), sent_1.counters
    run(spark, stack, "evolution_test_v1", path, sent_1.before, schema_version=1)
    rows_before = {
        (r["room_id"], r["window_start"]): r.asDict() for r in spark.read.format("delta").load(path).collect()
    }
    assert rows_before and "avg_noise_db" not in spark.read.format("delta").load(path).columns

    # room_1 on firmware 2, room_2 still on 1, two minutes later; and one sensor newer than the bridge.
    later = START + timedelta(minutes=2)
    mixed = list(
        heapq.merge(
            simulator.generate(rooms=ROOMS[:1], start=later, duration=60, seed=3, schema_version=2),
            simulator.generate(rooms=ROOMS[1:], start=later, duration=60, seed=4, out_of_order_fraction=0.05),
            key=lambda m: m.due,
        )
    )
    too_new = dict(mixed[0].record, schema_version=3)
    mixed.append(mixed[0]._replace(payload=json.dumps(too_new).encode(), record=None, kind="malformed"))
    sent_2 = feed.through_bridge(mixed, ROOMS)
    assert (sent_2.produced, sent_2.rejected) == (len(mixed) - 1, {"unknown_version": 1}), sent_2.counters
    watermark = run(spark, stack, "evolution_test_v2", path, sent_2.before, schema_version=2)

    table = spark.read.format("delta").load(path)
    assert table.columns == list(schema.AGGREGATE_COLUMNS) + ["avg_noise_db"]
    written = {(r["room_id"], as_utc(r["window_start"])): r.asDict() for r in table.collect()}
    old_keys = {(room, as_utc(start)) for room, start in rows_before}
    for (room, start), row in rows_before.items():  # older rows: all there, unchanged, null noise
        new = written[(room, as_utc(start))]
        assert new["avg_noise_db"] is None and {k: new[k] for k in row} == row

    records = reference.records_between(sent_2.before, sent_2.after)
    rooms_table = metadata.read_rooms(stack.metadata_db)
    expected = {(r["room_id"], r["window_start"]): r for r in reference.windows(records, rooms_table, watermark)}
    streamed = {key: row for key, row in written.items() if key not in old_keys}
    assert set(streamed) == set(expected)
    kept = reference.on_time(records)
    noise_windows = 0
    for key, want in expected.items():
        got = streamed[key]
        for column in schema.AGGREGATE_COLUMNS:
            if isinstance(want[column], float):
                assert math.isclose(got[column], want[column], rel_tol=1e-9), (key, column)
            elif column not in ("window_start", "window_end"):
                assert got[column] == want[column], (key, column)
        room, start = key
        noise = [
            r["noise_db"]
            for r in kept
            if r["room_id"] == room
            and start <= schema.parse_timestamp(r["timestamp"]) < start + timedelta(seconds=10)
            and "noise_db" in r
        ]
        if room == ROOMS[0]:
            assert noise and math.isclose(got["avg_noise_db"], sum(noise) / len(noise), rel_tol=1e-9), key
            noise_windows += 1
        else:
            assert not noise and got["avg_noise_db"] is None, key
    assert noise_windows >= 8  # a minute of windows of the room on firmware 2
