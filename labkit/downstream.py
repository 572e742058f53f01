"""Reading the pipeline's output from Kafka: windows, alerts and dead letters, as plain dicts.

Two consumers sit downstream of the Spark job: the live dashboard (``labkit.dashboard``) and the
loader into PostgreSQL for Grafana (``labkit.warehouse``). Both read the same topics the same
way, so the decoding lives here once:

* ``telemetry.<room>.downsampled``: one JSON aggregate row per window (``schema.AGGREGATE_COLUMNS``),
  key ``<room_id>|<window_start>``. Delivery is *at least once*: the same key may come twice,
  and a consumer keeps the last one (a dict keyed by it, or an upsert).
* ``telemetry.alerts``: JSON, key = room_id. Its fields belong to the alerts job; a consumer
  shows them as they come and needs only ``room_id`` and a time.
* ``telemetry.dlq``: the rejected bytes, with the reason in the headers (``labkit.bridge``).

Consumers here use ``assign`` with explicit start positions rather than a consumer group:
a viewer wants "the last few minutes", not "whatever my group has not read yet", and needs no
group coordinator (which also makes a broker restart cheaper to ride out).
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from labkit import names, schema, topics
from labkit import settings as settings_module

#: ``telemetry.<room>.downsampled``, from the one pattern in labkit.topics.
DOWNSAMPLED_RE = re.compile("^" + re.escape(names.DOWNSAMPLED_TOPIC_PATTERN).replace(r"\{room_id\}", "([^.]+)") + "$")
TIME_COLUMNS = ("window_start", "window_end")


class UnreadableMessage(ValueError):
    """A message on an output topic that is not what the topic promises (kept and shown, not dropped)."""


def window_key(room_id: str, window_start: datetime) -> str:
    """The key the pipeline gives a window's message: ``<room_id>|<window_start>``."""
    return f"{room_id}|{schema.format_timestamp(window_start)}"


def parse_window(value: bytes) -> dict[str, Any]:
    """A downsampled message's value -> the aggregate row, timestamps as aware UTC datetimes."""
    try:
        row = json.loads(value)
        for column in TIME_COLUMNS:
            row[column] = schema.parse_timestamp(row[column])
        if not isinstance(row.get("room_id"), str):
            raise KeyError("room_id")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UnreadableMessage(f"not an aggregate row ({type(error).__name__}: {error}): {value[:80]!r}") from None
    return {column: row.get(column) for column in schema.AGGREGATE_COLUMNS}


def parse_alert(key: bytes | None, value: bytes, timestamp_ms: int) -> dict[str, Any]:
    """An alert message -> a dict with at least ``room_id`` and ``at`` (the Kafka time if it has none)."""
    try:
        alert = json.loads(value)
        if not isinstance(alert, dict):
            raise TypeError("not a JSON object")
    except (ValueError, TypeError) as error:
        raise UnreadableMessage(f"alert is not a JSON object ({error}): {value[:80]!r}") from None
    alert.setdefault("room_id", key.decode("utf-8", "replace") if key else None)
    alert["at"] = datetime.fromtimestamp(timestamp_ms / 1000).astimezone()
    return alert


@dataclasses.dataclass
class DeadLetter:
    at: datetime
    reason: str
    error: str
    source: str
    payload: str


def parse_dead_letter(headers: list[tuple[str, bytes]] | None, value: bytes | None, timestamp_ms: int) -> DeadLetter:
    fields = {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or [])}
    return DeadLetter(
        at=datetime.fromtimestamp(timestamp_ms / 1000).astimezone(),
        reason=fields.get("reason", "(no reason header)"),
        error=fields.get("error", ""),
        source=fields.get("mqtt_topic", ""),
        payload=(value or b"").decode("utf-8", "replace")[:200],
    )


def consumer(s: settings_module.Settings, error_cb=None) -> Consumer:
    """A consumer that never commits, in a throw-away group, reconnecting quickly after a broker restart.

    ``auto.offset.reset=earliest``: if the broker comes back without a topic's old data (its
    folder was reset), the consumer starts the new topic from its beginning instead of waiting
    past an end that no longer exists.
    """
    config = {
        "bootstrap.servers": s.kafka_bootstrap,
        "group.id": f"labkit-view-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 5000,
    }
    if error_cb is not None:
        config["error_cb"] = error_cb
    return Consumer(config)


def start_positions(
    c: Consumer, topic: str, partitions, since_ms: int | None, last_n: int | None
) -> list[TopicPartition]:
    """Where to start reading each partition: at a write time (``since_ms``), or ``last_n`` before the end."""
    if since_ms is not None:
        wanted = [TopicPartition(topic, p, since_ms) for p in partitions]
        found = c.offsets_for_times(wanted, timeout=10)
        # Nothing written since then: start at today's end *offset*, not at the logical END, which
        # the consumer resolves later and would skip what is written in between.
        return [
            TopicPartition(
                topic, tp.partition, tp.offset if tp.offset >= 0 else topics.watermarks(c, topic, tp.partition)[1]
            )
            for tp in found
        ]
    out = []
    for p in partitions:
        low, high = topics.watermarks(c, topic, p)
        out.append(TopicPartition(topic, p, max(low, high - (last_n or 0))))
    return out


def wanted_topics(c: Consumer, timeout: float = 5) -> dict[str, list[int]]:
    """The output topics that exist now, with their partitions (``telemetry.alerts`` may not yet)."""
    metadata = c.list_topics(timeout=timeout).topics
    return {
        name: list(t.partitions)
        for name, t in metadata.items()
        if t.error is None and (DOWNSAMPLED_RE.match(name) or name in (names.ALERTS_TOPIC, names.DLQ_TOPIC))
    }


def end_offsets_now(c: Consumer, offsets: dict[str, dict[str, int]], timeout: float = 2) -> int:
    """How many records lie in Kafka beyond ``offsets`` (Spark's JSON shape): the job's lag."""
    lag = 0
    for topic, partitions in offsets.items():
        for partition, offset in partitions.items():
            _, high = c.get_watermark_offsets(TopicPartition(topic, int(partition)), timeout=timeout, cached=False)
            lag += max(0, high - offset)
    return lag
