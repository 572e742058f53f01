"""The raw-record schema: round trips, and one reason code for each kind of bad payload.

Expected field names and orders are written out here from the specification (docs/architecture.md),
not taken from labkit.schema, so a change to the schema that breaks the specification fails these tests.
"""

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from labkit import schema

# The specification's raw telemetry message (docs/architecture.md), verbatim.
SPEC_MESSAGE = b"""{
  "room_id": "room_1",
  "timestamp": "2026-01-30T10:30:45.500Z",
  "temperature": 19.2,
  "humidity": 35.5,
  "co2_ppm": 450,
  "light_lux": 0,
  "occupancy_count": 0,
  "motion_detected": false,
  "energy_kwh": 2.3,
  "air_quality_index": 95
}"""

SPEC_FIELDS = [
    "room_id",
    "timestamp",
    "temperature",
    "humidity",
    "co2_ppm",
    "light_lux",
    "occupancy_count",
    "motion_detected",
    "energy_kwh",
    "air_quality_index",
]

SPEC_AGGREGATE_COLUMNS = [
    "window_start",
    "window_end",
    "room_id",
    "room_name",
    "floor",
    "room_type",
    "avg_temperature",
    "min_temperature",
    "max_temperature",
    "avg_humidity",
    "min_humidity",
    "max_humidity",
    "avg_co2",
    "max_co2",
    "avg_light",
    "max_occupancy",
    "motion_events",
    "avg_energy",
    "avg_air_quality",
    "min_air_quality",
]

KNOWN = {"room_1", "room_2"}


def good_record():
    return json.loads(SPEC_MESSAGE)


def encode(record):
    return json.dumps(record).encode("utf-8")


def with_changes(**changes):
    record = good_record()
    record.update(changes)
    return encode(record)


def without(field):
    record = good_record()
    del record[field]
    return encode(record)


# ---------------------------------------------------------------------------------------------
# valid payloads
# ---------------------------------------------------------------------------------------------


def test_field_names_are_the_seeds_in_order():
    assert list(schema.RAW_FIELD_NAMES) == SPEC_FIELDS
    assert list(schema.AGGREGATE_COLUMNS) == SPEC_AGGREGATE_COLUMNS


def test_seed_example_is_valid():
    result = schema.validate_payload(SPEC_MESSAGE, KNOWN)
    assert result.ok, result.message
    assert result.reason is None
    assert result.record == good_record()


def test_round_trip_keeps_values_and_field_order():
    record = good_record()
    payload = schema.to_json(record)
    assert b" " not in payload  # compact
    keys_in_payload = [key for key, _ in json.loads(payload, object_pairs_hook=list)]
    assert keys_in_payload == SPEC_FIELDS
    result = schema.validate_payload(payload, KNOWN)
    assert result.ok
    assert result.record == record
    assert schema.to_json(result.record) == payload


def test_to_json_orders_fields_whatever_the_dict_order():
    shuffled = dict(reversed(list(good_record().items())))
    keys = [key for key, _ in json.loads(schema.to_json(shuffled), object_pairs_hook=list)]
    assert keys == SPEC_FIELDS


def test_whole_number_is_accepted_for_a_float_field_and_becomes_float():
    result = schema.validate_payload(with_changes(temperature=20, energy_kwh=0), KNOWN)
    assert result.ok, result.message
    assert result.record["temperature"] == 20.0
    assert isinstance(result.record["temperature"], float)
    assert isinstance(result.record["energy_kwh"], float)


def test_room_check_can_be_skipped():
    assert schema.validate_payload(with_changes(room_id="room_99"), None).ok


def test_boundaries_of_ranges_are_valid():
    assert schema.validate_payload(with_changes(humidity=0, light_lux=0, co2_ppm=0), KNOWN).ok
    assert schema.validate_payload(with_changes(humidity=100.0), KNOWN).ok


# ---------------------------------------------------------------------------------------------
# invalid payloads, one reason each
# ---------------------------------------------------------------------------------------------

record_text = SPEC_MESSAGE.decode()

INVALID = [
    # (case id, payload, expected reason)
    ("truncated json", SPEC_MESSAGE[:40], "bad_json"),
    ("empty payload", b"", "empty_payload"),
    ("not json at all", b"temperature=19.2", "bad_json"),
    ("duplicate key", b'{"room_id":"room_1","room_id":"room_2"}', "duplicate_field"),
    ("duplicate key, same value", b'{"room_id":"room_1","room_id":"room_1"}', "duplicate_field"),
    ("json array", b'[{"room_id": "room_1"}]', "not_an_object"),
    ("json string", b'"room_1"', "not_an_object"),
    ("json null", b"null", "not_an_object"),
    ("missing room_id", without("room_id"), "missing_field"),
    ("missing timestamp", without("timestamp"), "missing_field"),
    ("missing motion", without("motion_detected"), "missing_field"),
    ("missing aqi", without("air_quality_index"), "missing_field"),
    ("extra field", with_changes(pressure_hpa=1013.2), "unexpected_field"),
    ("a version-2 field in a version-1 reading", with_changes(noise_db=41.5), "unexpected_field"),
    ("firmware newer than the bridge", with_changes(schema_version=3, noise_db=41.5), "unknown_version"),
    ("version 2 without its field", with_changes(schema_version=2), "missing_field"),
    ("version as text", with_changes(schema_version="2", noise_db=41.5), "wrong_type"),
    ("noise out of range", with_changes(schema_version=2, noise_db=-3.0), "out_of_range"),
    ("number as text", with_changes(temperature="19.2"), "wrong_type"),
    ("null value", with_changes(humidity=None), "wrong_type"),
    ("float for an int", with_changes(co2_ppm=450.5), "wrong_type"),
    ("bool as int", with_changes(occupancy_count=True), "wrong_type"),
    ("bool as float", with_changes(energy_kwh=False), "wrong_type"),
    ("int as bool", with_changes(motion_detected=1), "wrong_type"),
    ("text as bool", with_changes(motion_detected="false"), "wrong_type"),
    ("room id as number", with_changes(room_id=1), "wrong_type"),
    ("timestamp as epoch", with_changes(timestamp=1769769045500), "wrong_type"),
    ("NaN", record_text.replace("19.2", "NaN").encode(), "not_finite"),
    ("Infinity", record_text.replace("35.5", "Infinity").encode(), "not_finite"),
    ("-Infinity", record_text.replace("2.3", "-Infinity").encode(), "not_finite"),
    ("overflowing float", record_text.replace("19.2", "1e999").encode(), "not_finite"),
    ("humidity above 100", with_changes(humidity=100.5), "out_of_range"),
    ("negative humidity", with_changes(humidity=-0.1), "out_of_range"),
    ("negative co2", with_changes(co2_ppm=-1), "out_of_range"),
    ("negative light", with_changes(light_lux=-5), "out_of_range"),
    ("negative occupancy", with_changes(occupancy_count=-1), "out_of_range"),
    ("negative energy", with_changes(energy_kwh=-0.1), "out_of_range"),
    ("aqi above 500", with_changes(air_quality_index=501), "out_of_range"),
    ("below absolute zero", with_changes(temperature=-300.0), "out_of_range"),
    ("huge int", with_changes(co2_ppm=10**30), "out_of_range"),
    ("no milliseconds", with_changes(timestamp="2026-01-30T10:30:45Z"), "bad_timestamp"),
    ("offset, not Z", with_changes(timestamp="2026-01-30T10:30:45.500+01:00"), "bad_timestamp"),
    ("space separator", with_changes(timestamp="2026-01-30 10:30:45.500Z"), "bad_timestamp"),
    ("30th of February", with_changes(timestamp="2026-02-30T10:30:45.500Z"), "bad_timestamp"),
    ("hour 24", with_changes(timestamp="2026-01-30T24:00:00.000Z"), "bad_timestamp"),
    ("words", with_changes(timestamp="yesterday"), "bad_timestamp"),
    ("unknown room", with_changes(room_id="room_9"), "unknown_room"),
    ("empty room id", with_changes(room_id=""), "unknown_room"),
    ("latin-1 bytes", b'{"room_id": "caf\xe9"}', "not_utf8"),
    ("binary garbage", bytes([0xFF, 0xFE, 0x00, 0x81]), "not_utf8"),
    ("oversized", b" " * (schema.MAX_PAYLOAD_BYTES + 1 - len(SPEC_MESSAGE)) + SPEC_MESSAGE, "oversized"),
]


@pytest.mark.parametrize("payload, reason", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_payload_gets_its_reason(payload, reason):
    result = schema.validate_payload(payload, KNOWN)
    assert not result.ok
    assert result.record is None
    assert result.reason == reason, result.message
    assert result.message  # a human explanation is always there


def test_every_reason_code_is_tested_and_documented():
    # topic_mismatch compares the payload with the MQTT topic, which only the bridge sees:
    # tests/test_bridge.py covers it and `retained` (an MQTT flag); the event-time reasons are tested below.
    only_elsewhere = {"topic_mismatch", "future_timestamp", "clock_not_set", "retained"}
    assert {case[2] for case in INVALID} == set(schema.REASONS) - only_elsewhere


RECEIVED = datetime(2026, 1, 30, 10, 30, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "stamp, reason",
    [
        ("2026-01-30T10:30:10.000Z", None),  # exactly the allowed 10 s ahead
        ("2026-01-30T10:30:10.001Z", "future_timestamp"),  # one millisecond more
        ("2027-01-30T10:30:00.000Z", "future_timestamp"),  # a clock a year ahead
        ("2026-01-30T10:29:59.000Z", None),  # a second behind: network and buffering
        ("2024-03-01T08:00:00.000Z", None),  # old data, e.g. a replay
        ("2000-01-01T00:00:00.000Z", None),
        ("1999-12-31T23:59:59.999Z", "clock_not_set"),
        ("1970-01-01T00:00:05.000Z", "clock_not_set"),  # a sensor that booted without its clock
    ],
    ids=["at the limit", "just past it", "a year ahead", "behind", "old data", "2000", "1999", "1970"],
)
def test_event_time_is_judged_against_the_receivers_clock(stamp, reason):
    record = schema.validate_payload(encode({**good_record(), "timestamp": stamp}), KNOWN).record
    result = schema.check_event_time(record, RECEIVED, max_ahead_s=10)
    assert result.reason == reason, result.message
    assert result.ok or stamp in result.message


def test_message_names_the_missing_field():
    result = schema.validate_payload(without("co2_ppm"), KNOWN)
    assert "co2_ppm" in result.message


def test_message_names_the_wrongly_typed_field():
    result = schema.validate_payload(with_changes(humidity="high"), KNOWN)
    assert "humidity" in result.message


def test_payload_at_the_size_limit_is_still_read():
    payload = b" " * (schema.MAX_PAYLOAD_BYTES - len(SPEC_MESSAGE)) + SPEC_MESSAGE
    assert len(payload) == schema.MAX_PAYLOAD_BYTES
    assert schema.validate_payload(payload, KNOWN).ok


def test_bytearray_and_memoryview_are_accepted():
    assert schema.validate_payload(bytearray(SPEC_MESSAGE), KNOWN).ok
    assert schema.validate_payload(memoryview(SPEC_MESSAGE), KNOWN).ok


# ---------------------------------------------------------------------------------------------
# timestamps
# ---------------------------------------------------------------------------------------------


def test_format_timestamp_matches_the_seed_format():
    moment = datetime(2026, 1, 30, 10, 30, 45, 500_000, tzinfo=timezone.utc)
    assert schema.format_timestamp(moment) == "2026-01-30T10:30:45.500Z"


def test_format_timestamp_writes_zero_milliseconds_and_cuts_microseconds():
    assert schema.format_timestamp(datetime(2026, 1, 30, 10, 30, 45, tzinfo=timezone.utc)) == "2026-01-30T10:30:45.000Z"
    assert (
        schema.format_timestamp(datetime(2026, 1, 30, 10, 30, 45, 999_999, tzinfo=timezone.utc))
        == "2026-01-30T10:30:45.999Z"
    )


def test_format_timestamp_converts_to_utc():
    berlin_winter = timezone(timedelta(hours=1))
    moment = datetime(2026, 1, 30, 11, 30, 45, 250_000, tzinfo=berlin_winter)
    assert schema.format_timestamp(moment) == "2026-01-30T10:30:45.250Z"


def test_format_timestamp_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        schema.format_timestamp(datetime(2026, 1, 30, 10, 30))


def test_parse_timestamp_round_trip():
    text = "2026-12-31T23:59:59.007Z"
    moment = schema.parse_timestamp(text)
    assert moment == datetime(2026, 12, 31, 23, 59, 59, 7000, tzinfo=timezone.utc)
    assert moment.utcoffset() == timedelta(0)
    assert schema.format_timestamp(moment) == text


@pytest.mark.parametrize(
    "text",
    ["2026-01-30T10:30:45Z", "2026-01-30T10:30:45.500", "2026-13-01T00:00:00.000Z", "", "2026-01-30T10:30:45.5000Z"],
)
def test_parse_timestamp_refuses_other_forms(text):
    with pytest.raises(ValueError):
        schema.parse_timestamp(text)


# ---------------------------------------------------------------------------------------------
# Spark forms
# ---------------------------------------------------------------------------------------------


def test_importing_schema_does_not_import_spark():
    code = "import sys, labkit.schema; print('pyspark' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    assert result.stdout.strip() == "False"


def test_raw_spark_schema_matches_the_json_fields():
    pytest.importorskip("pyspark")
    struct = schema.raw_spark_schema()
    assert struct.fieldNames() == SPEC_FIELDS
    types = {f.name: f.dataType.simpleString() for f in struct.fields}
    assert types == {
        "room_id": "string",
        "timestamp": "timestamp",
        "temperature": "double",
        "humidity": "double",
        "co2_ppm": "int",
        "light_lux": "int",
        "occupancy_count": "int",
        "motion_detected": "boolean",
        "energy_kwh": "double",
        "air_quality_index": "int",
    }


def test_aggregate_spark_schema_has_the_seed_columns_and_types():
    pytest.importorskip("pyspark")
    struct = schema.aggregate_spark_schema()
    assert struct.fieldNames() == SPEC_AGGREGATE_COLUMNS
    types = {f.name: f.dataType.simpleString() for f in struct.fields}
    assert types["window_start"] == types["window_end"] == "timestamp"
    assert types["floor"] == "int"
    assert types["motion_events"] == "bigint"  # a count
    assert types["max_occupancy"] == types["max_co2"] == types["min_air_quality"] == "int"
    averages = [name for name in SPEC_AGGREGATE_COLUMNS if name.startswith("avg_")]
    assert {types[name] for name in averages} == {"double"}
    assert {types[n] for n in ("min_temperature", "max_temperature", "min_humidity", "max_humidity")} == {"double"}
    assert types["room_id"] == types["room_name"] == types["room_type"] == "string"
