"""labkit.feed: a lesson's readings through MQTT and the bridge, and exactly where they landed."""

from datetime import datetime, timezone

import pytest

from labkit import feed, names, reference, simulator

pytestmark = pytest.mark.services

ROOMS = names.room_ids()


def readings(seed: int, seconds: float = 5, **faults):
    start = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    return list(simulator.generate(rooms=ROOMS, start=start, duration=seconds, seed=seed, **faults))


def test_offsets_frame_exactly_this_runs_readings(stack):
    messages = readings(seed=21, malformed_fraction=0.05)
    sent = feed.through_bridge(messages)
    valid = [m for m in messages if m.kind != "malformed"]
    assert sent.count == sent.produced == len(valid)
    assert sum(sent.rejected.values()) == len(messages) - len(valid) > 0
    records = reference.records_between(sent.before, sent.after)
    assert sorted(r["timestamp"] + r["room_id"] for _, _, r in records) == sorted(
        m.record["timestamp"] + m.record["room_id"] for m in valid
    )


def test_readings_queued_while_no_bridge_ran_are_not_counted_as_this_runs(stack):
    feed.through_bridge(readings(seed=22, seconds=1))  # makes sure the bridge's persistent session exists
    queued = readings(seed=23, seconds=3)
    simulator.publish(queued, progress_every=None)  # no bridge running: the broker keeps them for it
    messages = readings(seed=24, seconds=4)
    sent = feed.through_bridge(messages)
    assert sent.count == sent.produced == len(messages), "the backlog went in before `before`"
    records = reference.records_between(sent.before, sent.after)
    assert sorted(r["timestamp"] + r["room_id"] for _, _, r in records) == sorted(
        m.record["timestamp"] + m.record["room_id"] for m in messages
    )
