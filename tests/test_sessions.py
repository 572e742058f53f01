"""Occupancy sessions from session_window, checked against the same sessions computed in plain Python.

Ten minutes of 8 rooms at 09:00 (the break room fills and empties, other rooms stay busy) go
through MQTT and the real bridge into Kafka; the sessions job runs over them once with a 10 s
gap. Every session it wrote is one that ``reference_sessions`` finds in the simulator's
records, with the same start, end, count, peak and energy; and every session that was closed
before the final watermark was written.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from labkit import feed, sessions, simulator, watch

START = datetime(2026, 2, 10, 9, 0, tzinfo=timezone.utc)  # the break room comes and goes
GAP_S = 10


def test_reference_splits_at_the_gap_and_counts_duplicates_once():
    def record(second, people):
        return {
            "room_id": "room_5",
            "timestamp": f"2026-02-10T12:00:{second:02d}.000Z",
            "occupancy_count": people,
            "energy_kwh": 1.0,
        }

    records = [record(0, 2), record(0, 2), record(10, 3), record(20, 0), record(40, 1), record(45, 0)]
    found = sessions.reference_sessions(records, gap_s=30)
    assert [(s["readings"], s["peak_people"], s["session_start"].second, s["session_end"].second) for s in found] == [
        (2, 3, 0, 10),
        (1, 1, 40, 40),
    ]  # 10 -> 40 is 30 s: a new session
    assert found[0]["energy_kwh"] == pytest.approx(1.0 * 10 / 3600)


@pytest.mark.services
@pytest.mark.spark
def test_stream_sessions_equal_the_reference(spark, stack):
    messages = list(
        simulator.generate(start=START, duration=600, seed=21, duplicate_fraction=0.02, out_of_order_fraction=0.02)
    )
    sent = feed.through_bridge(messages)
    assert sent.produced == len(messages), sent.counters
    path = stack.table_path("sessions_test")
    rows = sessions.build(
        spark, stack, gap=f"{GAP_S} seconds", starting_offsets=json.dumps(sent.before), max_offsets_per_trigger=2000
    )
    query = sessions.start(rows, stack, query_name="sessions_test", table_path=path, trigger=None)
    try:
        progress = watch.run_until_caught_up(query, timeout=900)
    finally:
        query.stop()
    watermark = datetime.fromisoformat(progress["eventTime"]["watermark"].replace("Z", "+00:00"))
    streamed = [r.asDict() for r in spark.read.format("delta").load(path).collect()]
    expected = sessions.reference_sessions([m.record for m in messages], GAP_S)

    def key(session):
        start, end = (session[c].replace(tzinfo=timezone.utc) for c in ("session_start", "session_end"))
        return (
            session["room_id"],
            start,
            end,
            session["readings"],
            session["peak_people"],
            round(session["energy_kwh"], 9),
        )

    streamed_keys, expected_keys = {key(s) for s in streamed}, {key(s) for s in expected}
    assert len(streamed_keys) == len(streamed)  # no session written twice
    assert streamed_keys <= expected_keys
    closed = {k for k in expected_keys if k[2] + timedelta(seconds=GAP_S) < watermark}
    assert closed <= streamed_keys
    assert len([k for k in closed if k[0] == "room_7"]) >= 2, "the break room's sessions: pick another time of day"
