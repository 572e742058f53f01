"""The two record shapes of the lab, defined once: the raw reading and the aggregate row.

Every other part of the pipeline derives from this module instead of keeping its own copy:

* the simulator serialises readings with :func:`to_json`,
* the MQTT -> Kafka bridge checks each payload with :func:`validate_payload` and sends what fails
  to the dead-letter topic with the reason code as a header,
* the Spark job parses Kafka values with :func:`raw_spark_schema` and writes Delta rows shaped
  like :func:`aggregate_spark_schema`,
* the tests compare against the same field list.

If a field changes, it changes here, and all of them follow.

The raw field list is a tuple of :class:`Field` records. Both the JSON validation and the Spark
``StructType`` are computed from it, so they cannot disagree about a name, a type or an order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from datetime import datetime, timezone
from typing import Any, Collection

# --------------------------------------------------------------------------------------------
# The raw telemetry message
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of the raw message: its JSON name and type, its Spark type, unit and range.

    ``valid_range`` holds the values that are *physically possible* for the sensor, not the values
    that are normal for a room: a humidity of 105 % is a broken sensor or a broken message, an
    indoor temperature of 35 °C is merely an alarming room. Only the first is rejected.
    """

    name: str
    python_type: type
    spark_type: str
    unit: str
    valid_range: tuple[float, float] | None
    description: str


RAW_FIELDS: tuple[Field, ...] = (
    Field("room_id", str, "string", "", None, "which room sent the reading, e.g. room_1"),
    Field(
        "timestamp", str, "timestamp", "", None, "event time: when the sensor measured, ISO-8601 UTC with milliseconds"
    ),
    Field("temperature", float, "double", "°C", (-40.0, 85.0), "air temperature"),
    Field("humidity", float, "double", "%", (0.0, 100.0), "relative humidity"),
    Field("co2_ppm", int, "integer", "ppm", (0, 10_000), "carbon dioxide concentration"),
    Field("light_lux", int, "integer", "lx", (0, 120_000), "illuminance"),
    Field("occupancy_count", int, "integer", "people", (0, 1_000), "people counted in the room"),
    Field("motion_detected", bool, "boolean", "", None, "did the motion sensor fire"),
    Field(
        "energy_kwh",
        float,
        "double",
        "kWh/h",
        (0.0, 1_000.0),
        "electrical load: energy the room would use in one hour at the current rate",
    ),
    Field(
        "air_quality_index",
        int,
        "integer",
        "AQI",
        (0, 500),
        "US-AQI style index: 0-50 good, 101-150 unhealthy for sensitive groups, 301+ hazardous",
    ),
)

RAW_FIELD_NAMES: tuple[str, ...] = tuple(field.name for field in RAW_FIELDS)

#: What each newer sensor firmware adds to the reading, by ``schema_version``. A reading without
#: that field is version 1: exactly ``RAW_FIELDS``, what every sensor of the building sends today.
#: Version 2 adds the field ``schema_version`` itself (so a reader knows which shape it holds)
#: and ``noise_db``. The bridge accepts every version listed here and refuses a higher one
#: (reason ``unknown_version``): a firmware newer than the bridge must wait for the bridge's
#: update rather than have its new fields dropped unseen. Fields are only ever added, never
#: renamed or removed, so a version-1 reader can still read the fields it knows in a version-2
#: reading, and Spark reads a version-1 reading with the newer schema (nulls in the new fields).
NEWER_FIELDS: dict[int, tuple[Field, ...]] = {
    2: (
        Field("schema_version", int, "integer", "", None, "the reading's schema version; absent means 1"),
        Field("noise_db", float, "double", "dB(A)", (0.0, 140.0), "sound level"),
    ),
}
LATEST_VERSION = max(NEWER_FIELDS)


def fields_of(version: int = 1) -> tuple[Field, ...]:
    """The fields of a reading of ``version``: ``RAW_FIELDS``, then what each later version added."""
    return RAW_FIELDS + tuple(f for v in sorted(NEWER_FIELDS) if v <= version for f in NEWER_FIELDS[v])


#: Largest payload the bridge accepts. A real reading is about 250 bytes; anything much bigger
#: is not a reading, and refusing it early protects the parser from a hostile or broken sender.
MAX_PAYLOAD_BYTES = 4096

#: The pattern Spark needs to parse our timestamps (``timestampFormat`` of ``from_json``).
SPARK_TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"

# --------------------------------------------------------------------------------------------
# The aggregate row (Delta table telemetry_5s_agg and the downsampled topics)
# --------------------------------------------------------------------------------------------

#: (column, Spark type name), in the order docs/architecture.md gives.
AGGREGATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("window_start", "timestamp"),
    ("window_end", "timestamp"),
    ("room_id", "string"),
    ("room_name", "string"),
    ("floor", "integer"),
    ("room_type", "string"),
    ("avg_temperature", "double"),
    ("min_temperature", "double"),
    ("max_temperature", "double"),
    ("avg_humidity", "double"),
    ("min_humidity", "double"),
    ("max_humidity", "double"),
    ("avg_co2", "double"),
    ("max_co2", "integer"),
    ("avg_light", "double"),
    ("max_occupancy", "integer"),
    ("motion_events", "long"),
    ("avg_energy", "double"),
    ("avg_air_quality", "double"),
    ("min_air_quality", "integer"),
)

AGGREGATE_COLUMNS: tuple[str, ...] = tuple(name for name, _ in AGGREGATE_FIELDS)
#: The columns a window row gains from a newer firmware's fields (``NEWER_FIELDS``), by version.
NEWER_AGGREGATE_FIELDS: dict[int, tuple[tuple[str, str], ...]] = {2: (("avg_noise_db", "double"),)}


def aggregate_fields_of(version: int = 1) -> tuple[tuple[str, str], ...]:
    """The window row's (column, type) for readings up to ``version``: new columns at the end."""
    newer = tuple(f for v in sorted(NEWER_AGGREGATE_FIELDS) if v <= version for f in NEWER_AGGREGATE_FIELDS[v])
    return AGGREGATE_FIELDS + newer


def _spark_type(name: str):
    """The pyspark DataType object for one of the type names used in this module."""
    from pyspark.sql import types as T

    spark_types = {
        "string": T.StringType(),
        "timestamp": T.TimestampType(),
        "double": T.DoubleType(),
        "integer": T.IntegerType(),
        "long": T.LongType(),
        "boolean": T.BooleanType(),
    }
    return spark_types[name]


def raw_spark_schema(version: int = 1):
    """The raw message as a pyspark ``StructType``, for ``from_json`` on Kafka values.

    ``version`` 2 or more adds the newer firmware's fields (``NEWER_FIELDS``): a version-1
    reading parsed with it has nulls there, so one job can read both.

    pyspark is imported here rather than at the top of the module so that the simulator and the
    bridge, which never touch Spark, import this module in milliseconds.

    Every column is nullable: ``from_json`` yields null for a field it cannot read, and the
    pipeline must be able to see (and count) such rows rather than fail on them.
    """
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(field.name, _spark_type(field.spark_type), True) for field in fields_of(version)]
    )


def aggregate_spark_schema(version: int = 1):
    """The aggregate row as a pyspark ``StructType`` (the Delta table ``telemetry_5s_agg``).

    Columns are nullable because that is what Spark's own aggregation produces (an average of no
    values is null, a room missing from the metadata table has a null name). Declaring them
    NOT NULL would make Delta reject the writes of a stream whose schema says "nullable".
    """
    from pyspark.sql import types as T

    fields = aggregate_fields_of(version)
    return T.StructType([T.StructField(name, _spark_type(type_name), True) for name, type_name in fields])


# --------------------------------------------------------------------------------------------
# The alert row (topic telemetry.alerts, Delta table alerts)
# --------------------------------------------------------------------------------------------

#: One alert: raised or cleared. Written by the alert job (labkit.alerts) and, for data quality,
#: by the bridge (dead letters) and the windows job's quality watch (labkit.quality).
ALERT_COLUMNS: tuple[str, ...] = ("room_id", "alert", "state", "event_time", "value", "limit", "detail")


def alert_json(alert: dict[str, Any]) -> bytes:
    """An alert as the JSON of a ``telemetry.alerts`` message (what Spark's ``to_json`` writes).

    ``event_time`` is an aware datetime; values that are None are left out, as Spark does.
    """
    fields = {name: alert.get(name) for name in ALERT_COLUMNS}
    fields["event_time"] = format_timestamp(fields["event_time"])
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------

_TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def format_timestamp(moment: datetime) -> str:
    """``2026-01-30T10:30:45.500Z``: UTC, milliseconds, a literal ``Z``.

    One fixed format (and not ``datetime.isoformat``, which drops the fraction when it is zero
    and writes ``+00:00``) keeps every message byte-for-byte predictable. A naive datetime is
    refused: it does not say which clock it was read from.
    """
    if moment.tzinfo is None:
        raise ValueError(
            f"{moment!r} has no time zone; use an aware datetime, e.g. "
            "datetime(2026, 1, 30, 10, 30, tzinfo=timezone.utc)"
        )
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of a timestamp written by :func:`format_timestamp`.

    Anything else (no milliseconds, an offset other than ``Z``, a 30th of February) raises
    ``ValueError``: a message whose event time is ambiguous cannot be put into a window.
    """
    if not isinstance(text, str) or not _TIMESTAMP_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not an ISO-8601 UTC timestamp like 2026-01-30T10:30:45.500Z")
    # fromisoformat checks the calendar (month 13, February 30th) that the pattern cannot; it
    # is also ten times faster than strptime, which matters at thousands of messages a second.
    return datetime.fromisoformat(text[:-1] + "+00:00")


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def to_json(record: dict[str, Any]) -> bytes:
    """The compact UTF-8 JSON of a raw record, fields in schema order.

    A fixed order and no spaces make the same reading always the same bytes, which is what lets
    a test (or a learner) spot a duplicate by comparing payloads.
    """
    ordered = {field.name: record[field.name] for field in fields_of(record.get("schema_version", 1))}
    return json.dumps(ordered, separators=(",", ":"), allow_nan=False).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

#: reason code -> what it means. The code travels as a Kafka header on ``telemetry.dlq``, so it
#: must stay short and never change; the human message beside it may say more.
REASONS: dict[str, str] = {
    "empty_payload": "payload is empty (an MQTT client clearing a retained message sends one)",
    "oversized": f"payload is larger than {MAX_PAYLOAD_BYTES} bytes",
    "not_utf8": "payload is not UTF-8 text",
    "bad_json": "payload is not valid JSON",
    "duplicate_field": "a field appears twice (JSON readers disagree on which value counts)",
    "not_an_object": "JSON value is not an object",
    "missing_field": "a required field is absent",
    "unexpected_field": "a field that is not in the schema is present",
    "unknown_version": "schema_version is newer than this bridge knows (a newer firmware): update the bridge",
    "wrong_type": "a field has the wrong JSON type",
    "not_finite": "a number is NaN or infinite",
    "out_of_range": "a value is physically impossible for its sensor",
    "bad_timestamp": "timestamp is not ISO-8601 UTC with milliseconds",
    "unknown_room": "room_id is not a room of the building",
    "topic_mismatch": "room_id differs from the room of the MQTT topic it was published on",
    "future_timestamp": "event time is further ahead of the receiver's clock than allowed",
    "clock_not_set": "event time is before 2000: the sensor's clock was never set",
    "retained": "a retained MQTT message: an old reading the broker replays at every subscribe",
}

#: A reading stamped before this was made by a clock that was never set (they start at 1970).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """Either ``record`` (the parsed, checked reading) or a ``reason`` code with a ``message``."""

    record: dict[str, Any] | None = None
    reason: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def _reject(reason: str, message: str) -> ValidationResult:
    return ValidationResult(record=None, reason=reason, message=message)


class _NotFinite(ValueError):
    """Raised while parsing when the text contains NaN, Infinity or -Infinity."""


class _DuplicateField(ValueError):
    """Raised while parsing when an object has the same key twice."""


def _refuse_constant(name: str) -> float:
    # Python's json module accepts NaN and Infinity although JSON does not; Spark and most other
    # readers would choke on them later, so they are stopped here.
    raise _NotFinite(name)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"temperature": 1, "temperature": 99} is legal to json.loads (last one wins) but readers
    # disagree on which value counts; such a payload is rejected (reason duplicate_field).
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateField(f"field {key!r} appears twice")
        record[key] = value
    return record


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_field(field: Field, value: Any) -> ValidationResult | None:
    """None when ``value`` suits ``field``, else the rejection."""
    if field.python_type is bool:
        type_ok = isinstance(value, bool)
    elif field.python_type is int:
        # In Python True is an int; in the schema a boolean is never a count.
        type_ok = isinstance(value, int) and not isinstance(value, bool)
    elif field.python_type is float:
        # JSON has one number type: 20 is a fine temperature, as good as 20.0.
        type_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        type_ok = isinstance(value, field.python_type)
    if not type_ok:
        return _reject(
            "wrong_type",
            f"{field.name} must be {field.python_type.__name__}, got {_type_name(value)} {value!r}",
        )
    if isinstance(value, float) and not math.isfinite(value):
        return _reject("not_finite", f"{field.name} is {value!r}")
    if field.valid_range is not None:
        low, high = field.valid_range
        if not low <= value <= high:
            return _reject(
                "out_of_range",
                f"{field.name}={value!r} is outside the possible range {low}..{high} {field.unit}",
            )
    if field.name == "timestamp":
        try:
            parse_timestamp(value)
        except ValueError as error:
            return _reject("bad_timestamp", str(error))
    return None


def validate_record(data: Any, known_rooms: Collection[str] | None) -> ValidationResult:
    """Check an already-parsed JSON value against the raw schema of its ``schema_version``.

    ``known_rooms`` is the set of room ids of the building (``labkit.rooms.room_ids(n)``); the
    rooms module owns that list, so it is passed in rather than imported. ``None`` skips the check.

    On success the record is returned with its fields in schema order and float fields as floats
    (``20`` becomes ``20.0``), so downstream code sees one shape only.
    """
    if not isinstance(data, dict):
        return _reject("not_an_object", f"expected a JSON object, got {_type_name(data)}")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return _reject("wrong_type", f"schema_version must be a whole number from 1, got {version!r}")
    if version > LATEST_VERSION:
        return _reject("unknown_version", f"schema_version {version}: this bridge knows versions 1 to {LATEST_VERSION}")
    fields = fields_of(version)
    for field in fields:
        if field.name not in data:
            return _reject("missing_field", f"field {field.name!r} is missing")
    extra = sorted(set(data) - {field.name for field in fields})
    if extra:
        return _reject("unexpected_field", f"field {extra[0]!r} is not in the schema of version {version}")
    for field in fields:
        problem = _check_field(field, data[field.name])
        if problem is not None:
            return problem
    if known_rooms is not None and data["room_id"] not in known_rooms:
        return _reject("unknown_room", f"room_id {data['room_id']!r} is not a known room")
    record = {
        field.name: float(data[field.name]) if field.python_type is float else data[field.name] for field in fields
    }
    return ValidationResult(record=record)


def check_event_time(record: dict[str, Any], received_at: datetime, max_ahead_s: float) -> ValidationResult:
    """Whether a valid reading's event time is plausible on the clock of the one who receives it.

    The format of a timestamp says nothing about whether the clock behind it is right. One
    reading stamped a year ahead would move Spark's watermark a year ahead, and every later
    reading of every room would then be dropped as late: one bad clock would stall the whole
    building. So a reading more than ``max_ahead_s`` ahead of ``received_at`` is rejected. The
    watermark delay is the natural limit: a reading at most that far ahead cannot push the
    watermark past a reading that is on time. Readings from the *past* are fine (a replay of
    old data, a sensor that buffered while offline), except from before 2000: an unset clock.
    """
    moment = parse_timestamp(record["timestamp"])
    ahead = (moment - received_at).total_seconds()
    if ahead > max_ahead_s:
        return _reject(
            "future_timestamp",
            f"timestamp {record['timestamp']} is {ahead:,.0f} s ahead of the "
            f"receiver's clock (at most {max_ahead_s:g} s allowed)",
        )
    if moment < EARLIEST_EVENT_TIME:
        return _reject("clock_not_set", f"timestamp {record['timestamp']} is before 2000: a clock that was never set")
    return ValidationResult(record=record)


def validate_payload(data: bytes, known_rooms: Collection[str] | None) -> ValidationResult:
    """Decide whether the raw bytes of one message are a valid reading, and if not, why.

    The checks run from cheapest to dearest and stop at the first failure, so each rejected
    message carries exactly one reason code (see ``REASONS``). Nothing here raises: a bad
    message is data to be routed to the dead-letter topic, not an error that stops the bridge.
    """
    if len(data) == 0:
        return _reject("empty_payload", "payload is empty")
    if len(data) > MAX_PAYLOAD_BYTES:
        return _reject("oversized", f"payload has {len(data)} bytes, limit {MAX_PAYLOAD_BYTES}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        return _reject("not_utf8", f"payload is not UTF-8: {error.reason} at byte {error.start}")
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys)
    except _NotFinite as error:
        return _reject("not_finite", f"payload contains {error.args[0]}, which JSON does not allow")
    except _DuplicateField as error:
        return _reject("duplicate_field", str(error))
    except (ValueError, RecursionError) as error:
        return _reject("bad_json", f"payload is not valid JSON: {error}")
    return validate_record(parsed, known_rooms)
