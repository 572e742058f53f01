"""Real windows for the downstream consumers' tests, without waiting for Spark.

The rows are the pipeline's windows computed by ``labkit.reference`` (the plain-Python yardstick
the golden test holds the Spark job to) over readings of the room profiles, and they are written
to ``telemetry.<room>.downsampled`` exactly as the Spark sink writes them: JSON of the aggregate
columns (nulls left out, timestamps in the schema's format), key ``<room_id>|<window_start>``,
idempotent producer with ``acks=all``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from confluent_kafka import Producer

from labkit import downstream, metadata, names, reference, rooms, schema, settings


def windows(room_ids: list[str], start: datetime, seconds: int) -> list[dict]:
    """The final 10 s / 5 s windows of ``seconds`` of readings (one every 0.5 s) per room."""
    records = []
    for room in room_ids:
        for k in range(seconds * 2):
            records.append((names.raw_topic(room), k, rooms.reading(room, start + timedelta(seconds=k / 2))))
    table = [metadata.profile_row(p) for p in rooms.profiles(len(room_ids))]
    return reference.windows(records, table, start + timedelta(seconds=seconds))


def as_message(row: dict) -> tuple[str, str, bytes]:
    """(topic, key, value) of an aggregate row, as the Spark job's Kafka sink makes them."""
    value = {k: (schema.format_timestamp(v) if isinstance(v, datetime) else v) for k, v in row.items() if v is not None}
    return (
        names.downsampled_topic(row["room_id"]),
        downstream.window_key(row["room_id"], row["window_start"]),
        json.dumps(value).encode(),
    )


def produce(rows: list[dict], extra: list[tuple[str, str | None, bytes, list | None]] = ()) -> None:
    """Write aggregate rows (and any ``(topic, key, value, headers)`` extras) and wait for the acks."""
    config = {"bootstrap.servers": settings.get().kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    producer = Producer(config)
    for topic, key, value in map(as_message, rows):
        producer.produce(topic, value=value, key=key)
    for topic, key, value, headers in extra:
        producer.produce(topic, value=value, key=key, headers=headers)
    left = producer.flush(30)
    assert left == 0, f"{left} messages not acknowledged by Kafka"


def now_aligned() -> datetime:
    """A start on a whole 5 s boundary, a little in the past (so windows look live)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now - timedelta(seconds=now.second % 5 + 60)
