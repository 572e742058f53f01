"""The room profiles: each room behaves as the specification describes, readings are coherent,
deterministic, valid, and the building extends to more than eight rooms.

The properties are computed from a simulated day (a reading every 30 s for 24 h) and compared
with the specification's descriptions (docs/architecture.md), never with numbers copied from labkit.rooms.
"""

import statistics
from datetime import datetime, timedelta, timezone

import pytest

from labkit import names, rooms, schema
from labkit.errors import LabkitError

SEED = 11
MIDNIGHT = datetime(2026, 1, 30, tzinfo=timezone.utc)
DAY = [MIDNIGHT + timedelta(seconds=30 * i) for i in range(24 * 120)]

# The specification's room table (docs/architecture.md).
SPEC_ROOMS = {
    "room_1": "Server Room",
    "room_2": "Conference Room",
    "room_3": "Storage Closet",
    "room_4": "Open Office",
    "room_5": "Kitchen",
    "room_6": "Lab/Workshop",
    "room_7": "Break Room",
    "room_8": "Executive Office",
}


@pytest.fixture(scope="module")
def day():
    """room_id -> the 2880 readings of one day."""
    return {room_id: [rooms.reading(room_id, at, SEED) for at in DAY] for room_id in rooms.ROOM_IDS}


def hour_of(record):
    moment = schema.parse_timestamp(record["timestamp"])
    return moment.hour + moment.minute / 60


def values(records, field):
    return [r[field] for r in records]


def spread(records, field):
    column = values(records, field)
    return max(column) - min(column)


def mean(records, field):
    return statistics.fmean(values(records, field))


def between(records, start_hour, end_hour):
    return [r for r in records if start_hour <= hour_of(r) < end_hour]


# ---------------------------------------------------------------------------------------------
# the building
# ---------------------------------------------------------------------------------------------


def test_the_eight_rooms_of_the_seed():
    assert list(rooms.ROOM_IDS) == list(SPEC_ROOMS)
    assert {p.room_id: p.room_name for p in rooms.PROFILES} == SPEC_ROOMS
    assert names.room_ids() == list(SPEC_ROOMS)
    for p in rooms.PROFILES:
        assert p.area_m2 > 0 and p.capacity >= 1 and isinstance(p.floor, int)
    assert len({p.room_type for p in rooms.PROFILES}) == 8


def test_more_than_eight_rooms_repeat_the_profiles_with_new_names():
    ids = names.room_ids(20)
    assert len(ids) == len(set(ids)) == 20
    assert ids[:8] == list(SPEC_ROOMS)
    assert ids[8] == "room_9" and ids[-1] == "room_20"
    profiles = rooms.profiles(20)
    assert len({p.room_name for p in profiles}) == 20  # every room has its own name
    ninth, first = rooms.profile("room_9"), rooms.profile("room_1")
    assert ninth.room_type == first.room_type
    assert ninth.room_name != first.room_name and ninth.room_name.startswith(first.room_name)
    assert rooms.profile("room_18").room_type == rooms.profile("room_2").room_type


def test_extra_rooms_read_like_their_profile_but_not_identically():
    times = DAY[::40]
    ninth = [rooms.reading("room_9", at, SEED) for at in times]
    first = [rooms.reading("room_1", at, SEED) for at in times]
    known = set(names.room_ids(9))
    assert all(schema.validate_record(r, known).ok for r in ninth)
    assert all(r["occupancy_count"] >= 1 for r in ninth)  # still a server room
    assert [r["temperature"] for r in ninth] != [r["temperature"] for r in first]


@pytest.mark.parametrize("bad", ["room_0", "kitchen", "room_", "room_x", "Room_1"])
def test_unknown_room_ids_are_refused(bad):
    with pytest.raises(LabkitError):
        rooms.profile(bad)


def test_zero_rooms_is_refused():
    with pytest.raises(ValueError, match="at least one room"):
        names.room_ids(0)


# ---------------------------------------------------------------------------------------------
# validity and determinism
# ---------------------------------------------------------------------------------------------


def test_every_reading_of_the_day_is_a_valid_message(day):
    for room_id, records in day.items():
        for at, record in zip(DAY, records):
            result = schema.validate_payload(schema.to_json(record), rooms.ROOM_IDS)
            assert result.ok, (room_id, record, result.message)
            assert record["room_id"] == room_id
            assert schema.parse_timestamp(record["timestamp"]) == at


def test_occupancy_never_exceeds_capacity(day):
    for room_id, records in day.items():
        assert max(values(records, "occupancy_count")) <= rooms.profile(room_id).capacity


def test_same_seed_same_readings_in_any_order():
    times = DAY[::97]
    forward = [rooms.reading("room_5", at, 3) for at in times]
    backward = [rooms.reading("room_5", at, 3) for at in reversed(times)]
    assert forward == list(reversed(backward))


def test_different_seed_different_readings():
    times = DAY[::97]
    for room_id in rooms.ROOM_IDS:
        one = [rooms.reading(room_id, at, 1) for at in times]
        two = [rooms.reading(room_id, at, 2) for at in times]
        assert one != two, room_id
        differing = sum(a["temperature"] != b["temperature"] for a, b in zip(one, two))
        assert differing > len(times) // 2, room_id


def test_a_record_can_be_rebuilt_from_its_timestamp():
    at = datetime(2026, 1, 30, 12, 0, 1, 123_456, tzinfo=timezone.utc)
    record = rooms.reading("room_6", at, SEED)
    assert record["timestamp"] == "2026-01-30T12:00:01.123Z"
    assert rooms.reading("room_6", schema.parse_timestamp(record["timestamp"]), SEED) == record


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        rooms.reading("room_1", datetime(2026, 1, 30, 12, 0), SEED)


def test_readings_do_not_flicker_every_half_second():
    """Head counts are per slot, not per reading: two readings 0.5 s apart mostly agree."""
    pairs = [(at, at + timedelta(seconds=0.5)) for at in DAY[::10]]
    for room_id in rooms.ROOM_IDS:
        same = sum(
            rooms.reading(room_id, a, SEED)["occupancy_count"] == rooms.reading(room_id, b, SEED)["occupancy_count"]
            for a, b in pairs
        )
        assert same >= 0.9 * len(pairs), room_id


# ---------------------------------------------------------------------------------------------
# the profiles of the specification
# ---------------------------------------------------------------------------------------------


def test_server_room_cool_dry_always_occupied_power_hungry(day):
    server = day["room_1"]
    assert all(18.0 <= t <= 20.0 for t in values(server, "temperature"))
    assert max(values(server, "humidity")) < 45  # low
    assert min(values(server, "occupancy_count")) >= 1
    others = [mean(day[r], "energy_kwh") for r in rooms.ROOM_IDS if r != "room_1"]
    assert mean(server, "energy_kwh") > 1.5 * max(others)


def test_conference_room_swings_with_bursts_of_people(day):
    conference = day["room_2"]
    assert spread(conference, "temperature") >= 1.5
    assert spread(conference, "humidity") >= 8
    occupancy = values(conference, "occupancy_count")
    # bursts: separate meetings that start from an empty room with several people at once
    starts = [i for i in range(1, len(occupancy)) if occupancy[i - 1] == 0 and occupancy[i] >= 3]
    assert len(starts) >= 3
    assert max(occupancy) >= 6
    assert all(r["occupancy_count"] == 0 for r in between(conference, 0, 6))
    busy = [r for r in conference if r["occupancy_count"] > 0]
    empty = [r for r in conference if r["occupancy_count"] == 0]
    assert mean(busy, "temperature") > mean(empty, "temperature")
    assert mean(busy, "energy_kwh") > 2 * mean(empty, "energy_kwh")  # variable energy


def test_storage_closet_dark_empty_stable_and_frugal(day):
    closet = day["room_3"]
    assert set(values(closet, "light_lux")) == {0}
    assert set(values(closet, "occupancy_count")) == {0}
    assert not any(values(closet, "motion_detected"))
    assert spread(closet, "temperature") < 1.0
    lowest_elsewhere = min(min(values(day[r], "energy_kwh")) for r in rooms.ROOM_IDS if r != "room_3")
    assert max(values(closet, "energy_kwh")) < lowest_elsewhere


def test_open_office_five_to_eight_people_during_working_hours(day):
    office = day["room_4"]
    working = between(office, 8, 18)
    assert len(working) == 10 * 120
    assert all(5 <= r["occupancy_count"] <= 8 for r in working)
    assert all(r["occupancy_count"] == 0 for r in between(office, 0, 6))
    assert all(18 <= t <= 24 for t in values(office, "temperature"))  # moderate
    energy = mean(office, "energy_kwh")
    assert mean(day["room_3"], "energy_kwh") < energy < mean(day["room_1"], "energy_kwh")


def test_kitchen_spikes_in_humidity_temperature_and_energy(day):
    kitchen = day["room_5"]
    humidity = values(kitchen, "humidity")
    temperature = values(kitchen, "temperature")
    energy = values(kitchen, "energy_kwh")
    assert max(humidity) - statistics.median(humidity) >= 15
    assert max(temperature) - statistics.median(temperature) >= 2.5
    assert max(energy) >= 3 * statistics.median(energy)
    # spikes happen when someone is in the kitchen
    most_humid = sorted(kitchen, key=lambda r: r["humidity"])[-20:]
    assert all(r["occupancy_count"] > 0 for r in most_humid)


def test_lab_is_the_most_variable_room_with_air_quality_problems(day):
    lab = day["room_6"]
    assert spread(lab, "temperature") >= 5
    assert spread(lab, "humidity") >= 20
    for field in ("temperature", "humidity"):
        lab_sd = statistics.pstdev(values(lab, field))
        for room_id in rooms.ROOM_IDS:
            if room_id != "room_6":
                assert lab_sd > statistics.pstdev(values(day[room_id], field)), (field, room_id)
    assert max(values(lab, "air_quality_index")) > 150  # unhealthy on the US AQI scale
    for room_id in rooms.ROOM_IDS:
        if room_id != "room_6":
            assert max(values(day[room_id], "air_quality_index")) <= 100, room_id


def test_break_room_stable_temperature_few_people_changing_light(day):
    room = day["room_7"]
    assert spread(room, "temperature") < 1.0
    assert max(values(room, "occupancy_count")) <= 3
    assert mean(room, "occupancy_count") < 1
    assert statistics.pstdev(values(room, "light_lux")) > 50
    occupied = [r for r in room if r["occupancy_count"] > 0]
    assert len(set(values(occupied, "light_lux"))) > 50  # the lighting changes all the time


def test_executive_office_tightly_controlled_single_occupant(day):
    office = day["room_8"]
    assert spread(office, "temperature") <= 0.5
    assert spread(office, "humidity") <= 5
    assert set(values(office, "occupancy_count")) == {0, 1}
    core_hours = between(office, 9, 17)
    assert mean(core_hours, "occupancy_count") >= 0.5  # mostly at the desk


# ---------------------------------------------------------------------------------------------
# coherence between the signals
# ---------------------------------------------------------------------------------------------


def rooms_with_changing_occupancy(day):
    return [
        r
        for r in rooms.ROOM_IDS
        if 0 in values(day[r], "occupancy_count") and max(values(day[r], "occupancy_count")) > 0
    ]


def test_the_day_has_rooms_with_changing_occupancy(day):
    assert len(rooms_with_changing_occupancy(day)) >= 5


def test_motion_only_when_occupied_and_usually_when_occupied(day):
    for room_id, records in day.items():
        assert all(r["occupancy_count"] > 0 for r in records if r["motion_detected"]), room_id
        occupied = [r for r in records if r["occupancy_count"] > 0]
        if occupied:
            share = sum(values(occupied, "motion_detected")) / len(occupied)
            assert share >= 0.6, room_id


def test_co2_rises_with_occupancy(day):
    for room_id in rooms_with_changing_occupancy(day):
        records = day[room_id]
        r = statistics.correlation(values(records, "occupancy_count"), values(records, "co2_ppm"))
        assert r > 0.5, room_id


def test_energy_follows_activity(day):
    for room_id in rooms_with_changing_occupancy(day):
        busy = [r for r in day[room_id] if r["occupancy_count"] > 0]
        empty = [r for r in day[room_id] if r["occupancy_count"] == 0]
        assert mean(busy, "energy_kwh") > mean(empty, "energy_kwh"), room_id


def test_light_follows_time_of_day_and_use(day):
    for room_id, records in day.items():
        night = between(records, 0, 5)
        assert all(r["light_lux"] == 0 for r in night if r["occupancy_count"] == 0), room_id
        if room_id != "room_3":  # the closet is always dark
            assert mean(between(records, 10, 16), "light_lux") > mean(night, "light_lux"), room_id
    for room_id in rooms_with_changing_occupancy(day):
        daytime = between(day[room_id], 9, 17)
        lit = [r for r in daytime if r["occupancy_count"] > 0]
        dark = [r for r in daytime if r["occupancy_count"] == 0]
        if lit and dark:
            assert mean(lit, "light_lux") > mean(dark, "light_lux"), room_id
