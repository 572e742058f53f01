"""Data quality: the bridge's dead-letter rate, the windows job's per-batch metrics, the table's constraints.

* ``DeadLetterRate`` and ``QualityWatch`` (plain Python): one alert per episode, raised at the
  threshold and cleared below it.
* A burst of malformed payloads through the real MQTT broker and bridge raises a data-quality
  alert on ``telemetry.alerts``; a clean run raises none.
* The windows job's ``observe`` metrics, added up over its batches, equal counts computed here
  from the raw records read back from Kafka (nulls and impossible values written around the
  bridge, duplicates, late readings); the quality watch raises exactly the alerts over threshold.
* The same readings into a table with the CHECK constraints stop the job with an error that
  names the constraint and says what to do.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Producer

from labkit import (
    bridge,
    feed,
    lake,
    metadata,
    names,
    pipeline,
    progress,
    quality,
    reference,
    rooms,
    schema,
    simulator,
    topics,
    watch,
)
from labkit.errors import LabkitError

START = datetime(2026, 4, 7, 10, 0, tzinfo=timezone.utc)
ROOMS = names.room_ids(2)
T0 = datetime(2026, 4, 7, 10, 0, 30, tzinfo=timezone.utc)


def test_dead_letter_rate_raises_once_per_episode_and_clears_below_the_limit():
    rate = DeadLetterRateProbe(limit=3)
    assert rate.at(0, "bad_json") == [] and rate.at(1, None) == [] and rate.at(2, "bad_json") == []
    assert rate.at(3, "bad_json") == [("raised", "bad_json", 3.0)]
    assert rate.at(4, "bad_json") == []  # the same episode
    assert rate.at(5, "out_of_range") == []  # counted per reason
    assert rate.at(61, "bad_json") == []  # a new minute: 1 so far, still in the episode
    assert rate.at(125, None) == [("cleared", "bad_json", 1.0)]  # the minute from 10:01 ended below 3


class DeadLetterRateProbe:
    def __init__(self, limit):
        self.rate = bridge.DeadLetterRate(limit)

    def at(self, second, reason):
        alerts = self.rate.count(reason, T0.replace(second=0) + timedelta(seconds=second))
        assert all(a["alert"] == names.DATA_QUALITY_ALERT and a["room_id"] == bridge.ALERT_KEY for a in alerts)
        return [(a["state"], a["detail"].split(":")[0].split()[-1], a["value"]) for a in alerts]


def test_quality_watch_judges_enough_rows_and_clears():
    watch_ = quality.QualityWatch("job", {"null_rows": 0.0, "duplicates_dropped": 0.1}, min_rows=100)

    def batch(rows, nulls=0, dups=0):
        metrics = dict.fromkeys(quality.METRICS, 0) | {"rows": rows, "null_rows": nulls, "duplicates_dropped": dups}
        return [(a["state"], a["detail"].split(":")[0]) for a in watch_.add(metrics, T0)]

    assert batch(60, dups=9) == []  # 60 rows: too few to judge, kept
    assert batch(60, dups=9) == [("raised", "duplicates_dropped")]  # 18 of 120: 15 %
    assert batch(100, nulls=1, dups=11) == [("raised", "null_rows")]  # 11 %: still the same episode
    assert batch(100, dups=1) == [("cleared", "null_rows"), ("cleared", "duplicates_dropped")]


def alert_messages(before: dict) -> list[dict]:
    """The alerts written to telemetry.alerts after the offsets ``before``."""
    found = []
    for message in topics.read_all(names.ALERTS_TOPIC):
        if message.offset >= before.get(names.ALERTS_TOPIC, {}).get(str(message.partition), 0):
            found.append(json.loads(message.value))
    return found


@pytest.mark.services
def test_a_burst_of_malformed_payloads_raises_a_data_quality_alert(stack):
    topics.ensure_topics([names.ALERTS_TOPIC], s=stack)
    before = topics.end_offsets([names.ALERTS_TOPIC])
    clean = list(simulator.generate(rooms=ROOMS, start=START, duration=20, seed=3))
    sent = feed.through_bridge(clean, ROOMS)
    assert sent.produced == len(clean)
    assert [a for a in alert_messages(before) if a["room_id"] == bridge.ALERT_KEY] == []

    burst = list(simulator.generate(rooms=ROOMS, start=START, duration=180, seed=4, malformed_fraction=0.6))
    reasons = {
        r: sum(1 for m in burst if m.kind == "malformed" and schema.validate_payload(m.payload, ROOMS).reason == r)
        for r in simulator.MALFORMED_CLASSES
    }
    assert min(reasons.values()) >= 2 * bridge.DEAD_LETTER_ALERT_PER_MINUTE, reasons  # over the limit in any minute
    feed.through_bridge(burst, ROOMS)
    raised = {a["detail"].split(":")[0] for a in alert_messages(before) if a["state"] == "raised"}
    assert raised == {f"dead letters {r}" for r in simulator.MALFORMED_CLASSES}


@pytest.mark.services
@pytest.mark.spark
def test_batch_metrics_equal_counts_from_the_raw_records_and_constraints_stop_a_broken_window(spark, stack):
    metadata.init_metadata(stack.metadata_db)
    messages = list(
        simulator.generate(
            rooms=ROOMS,
            start=START,
            duration=150,
            seed=9,
            duplicate_fraction=0.03,
            late_fraction=0.04,
            late_delay=90,
            out_of_order_fraction=0.03,
        )
    )
    # Written around the bridge first, as a buggy producer would: 3 readings with a field missing
    # (null in Spark), 2 with an impossible humidity, 0.25 s after the first real ones (so that
    # neither they nor the readings arriving after them are late).
    topics.ensure_topics(topics.lab_topics(ROOMS), s=stack)
    before = topics.end_offsets(topics.raw_topics(ROOMS))
    broken = []
    for k in range(5):
        record = rooms.reading(ROOMS[0], START + timedelta(seconds=k / 2 + 0.25))
        if k < 3:
            del record["temperature"]
        else:
            record["humidity"] = 150.0
        broken.append(record)
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True})
    for record in broken:
        producer.produce(names.raw_topic(record["room_id"]), key=record["room_id"], value=json.dumps(record))
    assert producer.flush(30) == 0
    sent = feed.through_bridge(messages, ROOMS)
    after = sent.after

    records = [r for _, _, r in reference.records_between(before, after)]
    assert len(records) == len(messages) - sum(m.kind == "malformed" for m in messages) + len(broken)
    kept = {(r["room_id"], r["timestamp"]) for r in reference.on_time(reference.records_between(before, after))}
    late = sum((r["room_id"], r["timestamp"]) not in kept for r in records)
    expected = {
        "rows": len(records),
        "null_rows": 3,
        "out_of_range_rows": 2,
        "late_rows_dropped": late,
        "duplicates_dropped": len(records) - late - len(kept),
    }
    assert expected["late_rows_dropped"] > 0 and expected["duplicates_dropped"] > 0

    alerts_before = topics.end_offsets([names.ALERTS_TOPIC])
    path = stack.table_path("quality_test")
    lake.remove(spark, path, stack.checkpoint_path("quality_test"))
    listener = quality.watch_quality(spark, "quality_test", stack)
    rows = pipeline.build(spark, stack, ROOMS, starting_offsets=json.dumps(before), max_offsets_per_trigger=150)
    query = pipeline.start(rows, stack, "quality_test", path, trigger=None, to_kafka=False)
    try:
        watch.run_until_caught_up(query, ROOMS, timeout=600)
    finally:
        query.stop()
    assert progress.wait_until(lambda: len(listener.alerts) >= 2, "the quality watch's alerts", 30)
    spark.streams.removeListener(listener)
    listener.close()
    totals = {name: sum(m[name] for m in listener.metrics) for name in quality.METRICS}
    assert totals == expected
    assert len([m for m in listener.metrics if m["rows"]]) > 3  # many batches, added up
    sent_alerts = [a for a in alert_messages(alerts_before) if a["room_id"] == "quality_test"]
    assert {(a["alert"], a["state"], a["detail"].split(":")[0]) for a in sent_alerts} >= {
        (names.DATA_QUALITY_ALERT, "raised", "null_rows"),
        (names.DATA_QUALITY_ALERT, "raised", "out_of_range_rows"),
    }
    assert not any(a["detail"].startswith(("duplicates", "late")) for a in sent_alerts)  # 3-4 %: below 10 %

    # The same readings into a table with the constraints: the window with humidity 150 stops the job.
    checked = stack.table_path("quality_test_checked")
    lake.remove(spark, checked, stack.checkpoint_path("quality_test_checked"))
    assert set(quality.add_constraints(spark, checked)) == set(quality.constraints())
    assert quality.add_constraints(spark, checked) == []  # idempotent
    rows = pipeline.build(spark, stack, ROOMS, starting_offsets=json.dumps(before), max_offsets_per_trigger=150)
    query = pipeline.start(rows, stack, "quality_test_checked", checked, trigger=None, to_kafka=False)
    with pytest.raises(Exception) as failure:
        query.awaitTermination(600)
        pytest.fail("the job ran on past a window with an impossible humidity")
    query.stop()
    message = str(failure.value)
    assert "humidity_possible" in message and "restart the job" in message, message[:2000]
    # nothing of the batch was written (the broken window is among the first to close)
    assert spark.read.format("delta").load(checked).where("max_humidity > 100").count() == 0
    assert LabkitError.__name__ in message


@pytest.mark.spark
def test_a_new_table_gets_the_constraints_in_one_commit_an_existing_one_is_checked_first(spark, tmp_path):
    """A new table gets every constraint in its first commit; an existing table gets the missing
    ones with ALTER TABLE, which Delta refuses while a row already there breaks one."""
    table = str(tmp_path / "windows")
    assert set(quality.add_constraints(spark, table)) == set(quality.constraints())
    operations = [row.operation for row in spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()]
    assert operations == ["CREATE TABLE"], "one commit for all the constraints, not one each"
    assert quality.add_constraints(spark, table) == []  # idempotent

    # The same table, now without one constraint and with a row that breaks it.
    spark.sql(f"ALTER TABLE delta.`{table}` DROP CONSTRAINT window_forward")
    backwards = spark.createDataFrame(
        [("room_1", START + timedelta(seconds=10), START)],
        "room_id string, window_start timestamp, window_end timestamp",
    )
    backwards.write.format("delta").mode("append").save(table)
    with pytest.raises(Exception, match="window_end > window_start"):
        quality.add_constraints(spark, table)
    spark.sql(f"DELETE FROM delta.`{table}` WHERE window_end <= window_start")
    assert quality.add_constraints(spark, table) == ["window_forward"]
    with pytest.raises(Exception, match="window_forward"):
        backwards.write.format("delta").mode("append").save(table)
    assert spark.read.format("delta").load(table).count() == 0
