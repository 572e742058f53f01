"""The independent computation itself, on records small enough to work out by hand."""

from datetime import datetime, timedelta, timezone

import pytest

from labkit import reference

ROOMS_TABLE = [{"room_id": "room_1", "room_name": "Server Room", "floor": 1, "room_type": "server"}]
T0 = datetime(2026, 1, 30, 10, 0, 0, tzinfo=timezone.utc)
FAR = T0 + timedelta(hours=1)  # a final watermark that closes every window


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(seconds: float, temperature: float, co2: int = 400, motion: bool = False) -> dict:
    stamp = at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "room_id": "room_1",
        "timestamp": stamp,
        "temperature": temperature,
        "humidity": 30.0,
        "co2_ppm": co2,
        "light_lux": 100.0,
        "occupancy_count": 1,
        "motion_detected": motion,
        "energy_kwh": 1.0,
        "air_quality_index": 50,
    }


def records(*readings):
    """In arrival order, as offsets of one topic."""
    return [("telemetry.room_1", offset, r) for offset, r in enumerate(readings)]


def test_a_reading_belongs_to_every_window_that_holds_it():
    assert reference.window_starts(at(7), 10, 5) == [at(0), at(5)]
    assert reference.window_starts(at(5), 10, 5) == [at(0), at(5)]  # start inclusive
    assert reference.window_starts(at(10), 10, 5) == [at(5), at(10)]  # end exclusive
    assert reference.window_starts(at(7), 10, 10) == [at(0)]
    assert reference.window_starts(at(61), 60, 60) == [at(60)]


def test_sliding_windows_by_hand():
    rows = reference.windows(
        records(reading(1, 20.0, motion=True), reading(6, 22.0), reading(11, 30.0, co2=900)), ROOMS_TABLE, FAR
    )
    by_start = {r["window_start"]: r for r in rows}
    # 09:59:55-10:00:05 holds 1 s; 10:00:00-10 holds 1 and 6; :05-:15 holds 6 and 11; :10-:20 holds 11
    assert sorted(by_start) == [at(-5), at(0), at(5), at(10)]
    assert by_start[at(0)]["avg_temperature"] == 21.0 and by_start[at(0)]["motion_events"] == 1
    assert by_start[at(5)]["max_co2"] == 900 and by_start[at(5)]["min_temperature"] == 22.0
    assert by_start[at(10)]["window_end"] == at(20)
    assert by_start[at(0)]["room_name"] == "Server Room"
    assert list(rows[0]) == list(reference.as_frame(rows).columns)


def test_late_and_repeated_readings_are_left_out_and_open_windows_too():
    rows = reference.windows(
        records(
            reading(1, 20.0), reading(100, 25.0), reading(2, 99.0), reading(100, 25.0), reading(98, 24.0)
        ),  # 2 s out of order: kept
        ROOMS_TABLE,
        final_watermark=at(105),
    )
    by_start = {r["window_start"]: r for r in rows}
    assert by_start[at(0)]["max_temperature"] == 20.0, "the reading 98 s late is not counted"
    assert by_start[at(95)]["avg_temperature"] == 24.5, "the repeat of 100 s counts once"
    assert at(100) not in by_start, "10:01:40-10:01:50 ends after the final watermark: not final yet"


def test_an_ambiguous_reading_is_refused():
    with pytest.raises(ValueError, match="neither"):
        reference.windows(records(reading(30, 20.0), reading(10, 20.0)), ROOMS_TABLE, FAR)


def test_frame_has_the_aggregate_columns_and_naive_utc_times():
    frame = reference.as_frame(reference.windows(records(reading(1, 20.0)), ROOMS_TABLE, FAR))
    assert frame["window_start"].dt.tz is None
    assert frame["window_start"].min() == datetime(2026, 1, 30, 9, 59, 55)


def test_open_windows_are_the_ones_a_final_watermark_leaves_out():
    data = records(reading(1, 20.0), reading(6, 21.0), reading(12, 22.0), reading(13, 22.5))
    watermark = at(15)  # windows ending at or before 10:00:15 are final
    final = {(w["room_id"], w["window_start"]) for w in reference.windows(data, ROOMS_TABLE, watermark)}
    still_open = reference.open_windows(data, watermark)
    # by hand: [-5, 5) 1 reading, [0, 10) 2, [5, 15) 3 are final; [10, 20) 2 and [15, 25)? none: 13 < 15
    assert final == {("room_1", at(-5)), ("room_1", at(0)), ("room_1", at(5))}
    assert still_open == {("room_1", at(10)): 2}
    assert not set(still_open) & final, "a window is either final or open, never both"
