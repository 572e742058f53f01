"""labkit.replay: reprocessing from a timestamp reproduces the shared pipeline run's windows."""

import pytest

from labkit import names, replay, topics, watch

pytestmark = [pytest.mark.services, pytest.mark.spark]


def test_a_replay_from_a_timestamp_reproduces_the_live_windows(spark, published, live, stack):
    first_offsets = published["before"]
    first = topics.read_all(names.raw_topic("room_1"))
    start_ms = min(m.timestamp_ms for m in first if m.offset >= first_offsets[names.raw_topic("room_1")]["0"])
    query = replay.start_replay(
        spark, name="golden_replay", from_timestamp_ms=start_ms - 1, max_offsets_per_trigger=published["max_offsets"]
    )
    try:
        watch.run_until_caught_up(query, names.room_ids(), timeout=600)
    finally:
        query.stop()
    difference = replay.compare_tables(spark, live["path"], stack.table_path("golden_replay"))
    assert difference.count() == 0, difference.limit(5).collect()
