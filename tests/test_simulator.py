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
FAULTS = dict(
    late_fraction=0.05,
    late_delay=30.0,
    out_of_order_fraction=0.05,
    out_of_order_delay=3.0,
    duplicate_fraction=0.05,
    malformed_fraction=0.05,
)
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
    messages = list(simulator.generate(rooms=["room_2", "room_5"], start=START, duration=10, interval=2.0))
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


@pytest.mark.parametrize(
    "arguments",
    [
        dict(count=5, duration=5),
        dict(count=5, interval=0),
        dict(count=5, late_fraction=1.5),
        dict(count=5, duplicate_fraction=-0.1),
        dict(count=5, malformed_fraction=0.5, late_fraction=0.4, out_of_order_fraction=0.2),
        dict(count=5, out_of_order_fraction=0.1, out_of_order_delay=0.2),
    ],
)
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
    last = max(
        schema.parse_timestamp(m.record["timestamp"])
        for m in simulator.generate(rooms=["room_1"], start=start, duration=600, interval=0.5)
    )
    assert last <= datetime.now(timezone.utc), "the last reading is stamped in the past"
    assert (before - last).total_seconds() < 5, "and it is about now"
    assert abs((simulator.default_start(realtime=True) - before).total_seconds()) < 2


def test_an_endless_accelerated_run_is_refused_with_what_to_do():
    with pytest.raises(LabkitError, match="--duration"):
        simulator.default_start(realtime=False)


# ---------------------------------------------------------------------------------------------
# anomalies: each changes what it says, in its room and span only, and leaves a label
# ---------------------------------------------------------------------------------------------

ANOMALY_START = datetime(2026, 2, 10, 9, 0, tzinfo=timezone.utc)
ANOMALIES = [
    simulator.Anomaly("spike", "room_1", 10, 5),
    simulator.Anomaly("drift", "room_4", 20, 40),
    simulator.Anomaly("stuck", "room_6", 30, 20),
    simulator.Anomaly("dropout", "room_2", 40, 15),
    simulator.Anomaly("co2_empty", "room_5", 5, 10),
]


def by_room_and_time(messages):
    return {(m.record["room_id"], event_time(m)): m.record for m in messages}


@pytest.fixture(scope="module")
def with_anomalies():
    plain = by_room_and_time(simulator.generate(start=ANOMALY_START, duration=70, seed=3))
    hit = by_room_and_time(simulator.generate(start=ANOMALY_START, duration=70, seed=3, anomalies=ANOMALIES))
    return plain, hit


def span(anomaly, room_id, at):
    """Whether a reading of room_id at ``at`` lies inside the anomaly (computed from the label)."""
    label = anomaly.label(ANOMALY_START)
    return room_id == label["room_id"] and schema.parse_timestamp(label["start"]) <= at < schema.parse_timestamp(
        label["end"]
    )


def test_anomalies_change_only_their_room_in_their_span(with_anomalies):
    plain, hit = with_anomalies
    changed = {key for key in plain if hit.get(key) != plain[key]}
    # a drift starts from nothing and a stuck sensor repeats its first value: their first reading is as it was
    inside = {
        (room_id, at)
        for room_id, at in plain
        for a in ANOMALIES
        if span(a, room_id, at) and not (a.kind in ("drift", "stuck") and at == label_start(a))
    }
    assert changed == inside
    assert set(hit) <= set(plain)


def label_start(anomaly):
    return schema.parse_timestamp(anomaly.label(ANOMALY_START)["start"])


def test_each_anomaly_does_what_its_kind_says(with_anomalies):
    plain, hit = with_anomalies
    spike, drift, stuck, dropout, co2 = ANOMALIES
    for key, record in plain.items():
        if span(spike, *key):
            assert hit[key]["temperature"] == pytest.approx(record["temperature"] + 8.0)
        if span(drift, *key):
            lift = hit[key]["temperature"] - record["temperature"]
            assert 0 <= lift <= 6.0 + 0.01
        if span(dropout, *key):
            assert key not in hit
        if span(co2, *key):
            assert (hit[key]["co2_ppm"], hit[key]["occupancy_count"], hit[key]["motion_detected"]) == (1600, 0, False)
            assert record["occupancy_count"] > 0 or record["co2_ppm"] < 1000  # not already true of the room
    drift_lifts = [hit[k]["temperature"] - plain[k]["temperature"] for k in sorted(plain) if span(drift, *k)]
    assert drift_lifts[0] < 0.2 and drift_lifts[-1] > 5.5  # from nothing to nearly DRIFT_C, slowly
    stuck_values = {tuple(v for f, v in hit[k].items() if f not in ("timestamp",)) for k in plain if span(stuck, *k)}
    assert len(stuck_values) == 1
    assert len({plain[k]["temperature"] for k in plain if span(stuck, *k)}) > 1  # the room itself moved


def test_labels_say_kind_room_and_event_time_span(tmp_path):
    labels = simulator.anomaly_labels(ANOMALIES[:1], ANOMALY_START)
    assert labels == [
        {"kind": "spike", "room_id": "room_1", "start": "2026-02-10T09:00:10.000Z", "end": "2026-02-10T09:00:15.000Z"}
    ]
    path = tmp_path / "truth.json"
    simulator.write_labels(path, simulator.anomaly_labels(ANOMALIES, ANOMALY_START))
    assert [label["kind"] for label in simulator.read_labels(path)] == list(simulator.ANOMALY_KINDS)


def test_anomalies_are_deterministic_and_mix_with_faults():
    def run():
        return list(simulator.generate(start=ANOMALY_START, duration=60, seed=9, anomalies=ANOMALIES, **FAULTS))

    first, second = run(), run()
    assert first == second
    assert collections.Counter(m.kind for m in first)["malformed"] > 0


def test_anomalies_given_as_text_like_the_command_line():
    as_text = list(simulator.generate(start=ANOMALY_START, duration=20, anomalies=["spike:room_1:10:5"]))
    as_objects = list(simulator.generate(start=ANOMALY_START, duration=20, anomalies=ANOMALIES[:1]))
    assert as_text == as_objects


@pytest.mark.parametrize(
    "anomaly",
    [
        "spike:room_1:10",
        "boom:room_1:0:5",
        "spike:room_1:-1:5",
        "spike:room_1:0:0",
        "spike:room_9:0:5",
        "spike:room_1:ten:5",
    ],
)
def test_bad_anomalies_are_refused_with_the_format(anomaly):
    with pytest.raises(LabkitError) as error:
        simulator.generate(start=ANOMALY_START, duration=20, anomalies=[anomaly])
    assert error.value.next_step


def test_simulate_command_injects_anomalies_and_writes_labels(tmp_path):
    from labkit import cli

    args = cli.build_parser().parse_args(
        [
            "simulate",
            "--duration",
            "20",
            "--start",
            "2026-02-10T09:00:00.000Z",
            "--anomaly",
            "dropout:room_3:5:10",
            "--anomaly",
            "spike:room_1:0:2",
        ]
    )
    messages, labels = cli.simulation(args)
    rooms_sent = [m.record["room_id"] for m in messages]
    assert rooms_sent.count("room_3") == rooms_sent.count("room_4") - 20
    assert [(label["kind"], label["start"]) for label in labels] == [
        ("dropout", "2026-02-10T09:00:05.000Z"),
        ("spike", "2026-02-10T09:00:00.000Z"),
    ]
