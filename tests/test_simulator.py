"""Message generation (no broker): counts, order, determinism and the injected faults.

Every property is checked from the messages themselves: payloads are re-validated with
labkit.schema, event times are re-parsed from the payload, kinds are checked against what the
order of the messages shows.
"""

import collections
import itertools
import json
from datetime import datetime, timedelta, timezone

import pytest

from labkit import names, rooms, schema, simulator
from labkit.errors import LabkitError

START = datetime(2026, 1, 30, 11, 0, tzinfo=timezone.utc)
FAULTS = dict(late_fraction=0.05, late_delay=30.0, out_of_order_fraction=0.05,
              out_of_order_delay=3.0, duplicate_fraction=0.05, malformed_fraction=0.05)
FAULTY_DURATION = 600  # seconds of event time: 8 rooms x 1200 readings = 9600 readings


def event_time(message):
    return schema.parse_timestamp(json.loads(message.payload)["timestamp"])


@pytest.fixture(scope="module")
def faulty():
    return list(simulator.generate(start=START, duration=FAULTY_DURATION, seed=5, **FAULTS))


# ---------------------------------------------------------------------------------------------
# without faults
# ---------------------------------------------------------------------------------------------


def test_clean_stream_has_one_valid_reading_per_room_per_tick():
    messages = list(simulator.generate(start=START, count=20, seed=1))
    assert len(messages) == 8 * 20
    assert {m.kind for m in messages} == {"ok"}
    per_room = collections.defaultdict(list)
    for m in messages:
        result = schema.validate_payload(m.payload, rooms.ROOM_IDS)
        assert result.ok, result.message
        assert result.record == m.record
        assert m.topic == "telemetry/" + m.record["room_id"]
        per_room[m.record["room_id"]].append(event_time(m))
    assert sorted(per_room) == sorted(rooms.ROOM_IDS)
    expected = [START + timedelta(seconds=0.5 * k) for k in range(20)]
    for times in per_room.values():
        assert times == expected


def test_clean_stream_is_in_event_time_order():
    messages = list(simulator.generate(start=START, duration=30, seed=1))
    times = [event_time(m) for m in messages]
    assert times == sorted(times)
    assert [m.due for m in messages] == sorted(m.due for m in messages)
    for m, at in zip(messages, times):
        assert START + timedelta(seconds=m.due) == at


def test_duration_and_interval_set_the_count():
    messages = list(simulator.generate(rooms=["room_2", "room_5"], start=START,
                                       duration=10, interval=2.0))
    assert len(messages) == 2 * 5
    times = sorted({event_time(m) for m in messages})
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:])] == [2.0] * 4


def test_payloads_are_what_the_rooms_read():
    for m in simulator.generate(start=START, count=3, seed=9):
        at = event_time(m)
        assert m.payload == schema.to_json(rooms.reading(m.record["room_id"], at, 9))


def test_more_rooms_than_eight():
    ids = names.room_ids(20)
    messages = list(simulator.generate(rooms=ids, start=START, count=3))
    assert len(messages) == 60
    assert {m.record["room_id"] for m in messages} == set(ids)
    assert all(schema.validate_payload(m.payload, ids).ok for m in messages)


def test_endless_stream_when_neither_count_nor_duration():
    first = list(itertools.islice(simulator.generate(start=START), 1000))
    assert len(first) == 1000


@pytest.mark.parametrize("arguments", [
    dict(count=5, duration=5),
    dict(count=5, interval=0),
    dict(count=5, late_fraction=1.5),
    dict(count=5, duplicate_fraction=-0.1),
    dict(count=5, malformed_fraction=0.5, late_fraction=0.4, out_of_order_fraction=0.2),
    dict(count=5, out_of_order_fraction=0.1, out_of_order_delay=0.2),
])
def test_impossible_settings_are_refused_at_the_call(arguments):
    with pytest.raises(LabkitError):
        simulator.generate(start=START, **arguments)  # before any message is asked for


def test_naive_start_is_refused():
    with pytest.raises(ValueError):
        simulator.generate(start=datetime(2026, 1, 30, 11, 0), count=1)


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------


def fingerprint(messages):
    return [(m.topic, m.payload, m.kind) for m in messages]


def test_same_seed_same_messages(faulty):
    again = simulator.generate(start=START, duration=FAULTY_DURATION, seed=5, **FAULTS)
    assert fingerprint(again) == fingerprint(faulty)


def test_different_seed_different_messages():
    one = simulator.generate(start=START, count=10, seed=1, **FAULTS)
    two = simulator.generate(start=START, count=10, seed=2, **FAULTS)
    assert fingerprint(one) != fingerprint(two)


def test_faults_do_not_change_the_readings(faulty):
    clean = list(simulator.generate(start=START, duration=FAULTY_DURATION, seed=5))
    clean_payloads = {m.payload for m in clean}
    delivered = [m for m in faulty if m.kind != "malformed"]
    assert {m.payload for m in delivered} <= clean_payloads
    # nothing is silently lost: every reading is either delivered or replaced by a broken one
    originals = {m.payload for m in delivered if m.kind != "duplicate"}
    malformed = [m for m in faulty if m.kind == "malformed"]
    assert len(originals) + len(malformed) == len(clean)


# ---------------------------------------------------------------------------------------------
# the faults
# ---------------------------------------------------------------------------------------------


def test_fault_fractions_are_roughly_as_asked(faulty):
    readings = 8 * FAULTY_DURATION * 2
    counts = collections.Counter(m.kind for m in faulty)
    assert counts["ok"] + counts["late"] + counts["out_of_order"] + counts["malformed"] == readings
    for kind in ("late", "out_of_order", "malformed", "duplicate"):
        share = counts[kind] / readings
        assert 0.03 <= share <= 0.07, (kind, share)


def test_malformed_messages_are_rejected_for_several_reasons(faulty):
    reasons = collections.Counter()
    for m in faulty:
        result = schema.validate_payload(m.payload, rooms.ROOM_IDS)
        if m.kind == "malformed":
            assert not result.ok
            assert m.record is None
            assert m.topic.startswith("telemetry/")
            reasons[result.reason] += 1
        else:
            assert result.ok, result.message
    for reason in ("bad_json", "wrong_type", "missing_field", "unknown_room"):
        assert reasons[reason] >= 10, reasons
    assert len(reasons) >= 5
    assert set(reasons) <= set(simulator.MALFORMED_CLASSES)  # each class is its reason code


def max_event_time_before(messages):
    """For each message, the newest event time among the messages before it."""
    newest = None
    for m in messages:
        yield newest
        if m.record is not None:
            at = event_time(m)
            newest = at if newest is None or at > newest else newest


def test_late_messages_arrive_after_the_watermark_has_passed_them(faulty):
    late_delay = timedelta(seconds=FAULTS["late_delay"])
    interval = timedelta(seconds=simulator.PUBLISH_INTERVAL)
    seen_late = 0
    for m, newest in zip(faulty, max_event_time_before(faulty)):
        if m.kind == "late":
            seen_late += 1
            assert newest - event_time(m) >= late_delay - interval
    assert seen_late > 0


def test_out_of_order_messages_are_overtaken_but_not_by_much(faulty):
    max_delay = timedelta(seconds=FAULTS["out_of_order_delay"])
    newest_per_room = {}
    overtaken_in_own_room = 0
    checked = 0
    for m, newest in zip(faulty, max_event_time_before(faulty)):
        if m.record is None:
            continue
        room, at = m.record["room_id"], event_time(m)
        if m.kind == "out_of_order":
            checked += 1
            assert newest > at  # newer readings came first...
            assert newest - at <= max_delay  # ...but only a few seconds newer
            # usually a newer reading of its own room, unless that one was faulted too
            overtaken_in_own_room += newest_per_room[room] > at
        newest_per_room[room] = max(at, newest_per_room.get(room, at))
    assert checked > 0
    assert overtaken_in_own_room >= 0.8 * checked


def test_ok_messages_stay_in_event_time_order(faulty):
    times = [event_time(m) for m in faulty if m.kind == "ok"]
    assert times == sorted(times)


def test_duplicates_repeat_an_earlier_message_exactly(faulty):
    seen = set()
    duplicates = 0
    for m in faulty:
        if m.kind == "duplicate":
            assert m.payload in seen
            duplicates += 1
        seen.add(m.payload)
    assert duplicates > 0
    payloads = collections.Counter(m.payload for m in faulty if m.kind != "malformed")
    assert max(payloads.values()) == 2  # a copy is sent once, never more


def test_last_readings_are_never_late(faulty):
    end = START + timedelta(seconds=FAULTY_DURATION - FAULTS["late_delay"])
    assert all(event_time(m) <= end for m in faulty if m.kind == "late")


def test_an_accelerated_run_ends_now_so_no_reading_comes_from_the_future():
    before = datetime.now(timezone.utc)
    start = simulator.default_start(realtime=False, duration=600, interval=0.5)
    last = max(schema.parse_timestamp(m.record["timestamp"])
               for m in simulator.generate(rooms=["room_1"], start=start, duration=600, interval=0.5))  # fmt: skip
    assert last <= datetime.now(timezone.utc), "the last reading is stamped in the past"
    assert (before - last).total_seconds() < 5, "and it is about now"
    assert abs((simulator.default_start(realtime=True) - before).total_seconds()) < 2


def test_an_endless_accelerated_run_is_refused_with_what_to_do():
    with pytest.raises(LabkitError, match="--duration"):
        simulator.default_start(realtime=False)
