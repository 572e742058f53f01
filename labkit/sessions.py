"""Occupancy sessions: per room, each stretch of time with people in it, from ``session_window``.

A fixed window cuts time into equal pieces whatever happens; a *session* window follows the
data: it opens with the first occupied reading and stays open while the next occupied reading
comes within ``gap`` of the last one. A meeting of 50 minutes is one session, however long; a
kitchen emptied for a minute between breakfast and the coffee rush is two.

Per session: ``session_start`` and ``session_end`` (first and last occupied reading),
``readings``, ``peak_people`` and ``energy_kwh`` (the room's average load over the session times
its length: what the session cost). Written to the Delta table ``occupancy_sessions``, exactly
once, by :func:`labkit.pipeline.batch_writer`. A session is final, and written, once the
watermark has passed its last reading + ``gap``; :func:`reference_sessions` computes the same
sessions in plain Python, the yardstick for the stream.
"""

from __future__ import annotations

from typing import Iterable

from labkit import pipeline, schema
from labkit import settings as settings_module
from labkit.names import OCCUPANCY_TABLE

#: Time without an occupied reading after which a session ends.
GAP = "60 seconds"
QUERY_NAME = OCCUPANCY_TABLE
SESSION_COLUMNS = ("room_id", "session_start", "session_end", "readings", "peak_people", "energy_kwh")


def sessions(readings, gap: str = GAP):
    """Occupied readings -> one row per room and session (see the module docstring)."""
    from pyspark.sql import functions as F

    occupied = readings.where(F.col("occupancy_count") > 0)
    grouped = occupied.groupBy(F.session_window("timestamp", gap).alias("session"), "room_id")
    rows = grouped.agg(
        F.min("timestamp").alias("session_start"),
        F.max("timestamp").alias("session_end"),
        F.count("*").alias("readings"),
        F.max("occupancy_count").alias("peak_people"),
        F.avg("energy_kwh").alias("avg_load"),
    )
    hours = (F.unix_micros("session_end") - F.unix_micros("session_start")) / 3_600_000_000
    return rows.select(
        "room_id",
        "session_start",
        "session_end",
        "readings",
        "peak_people",
        (F.col("avg_load") * hours).alias("energy_kwh"),
    )


def build(
    spark,
    s: settings_module.Settings | None = None,
    room_ids=None,
    gap: str = GAP,
    watermark: str = pipeline.WATERMARK,
    **source_options,
):
    """read_raw -> parse -> watermark -> deduplicate -> sessions."""
    raw = pipeline.read_raw(spark, room_ids, s=s, **source_options)
    return sessions(pipeline.deduplicate(pipeline.with_watermark(pipeline.parse(raw), watermark)), gap)


def start(
    rows,
    s: settings_module.Settings | None = None,
    query_name: str = QUERY_NAME,
    table_path: str | None = None,
    trigger: str | None = "5 seconds",
):
    """Write the sessions to Delta (append: each session once, when final), exactly once."""
    s = s or settings_module.get()
    table_path = table_path or s.table_path(OCCUPANCY_TABLE)
    checkpoint = s.checkpoint_path(query_name)
    writer = (
        rows.writeStream.queryName(query_name)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(pipeline.batch_writer(table_path, query_name, checkpoint, None))
    )
    return (writer.trigger(processingTime=trigger) if trigger else writer).start()


def reference_sessions(records: Iterable[dict], gap_s: float) -> list[dict]:
    """The same sessions in plain Python, from raw records (duplicates count once).

    Occupied readings of a room, in event-time order, belong to one session while each comes
    less than ``gap_s`` after the one before (Spark's rule: a reading at t opens [t, t + gap),
    and overlapping ranges merge).
    """
    unique = {(r["room_id"], r["timestamp"]): r for r in records if r["occupancy_count"] > 0}
    by_room: dict[str, list[dict]] = {}
    for key in sorted(unique):
        by_room.setdefault(key[0], []).append(unique[key])
    found = []
    for room_id, readings in by_room.items():
        current: list[dict] = []
        times = [schema.parse_timestamp(r["timestamp"]) for r in readings]
        for reading, at in zip(readings, times):
            if current and (at - current[-1][1]).total_seconds() >= gap_s:
                found.append(_session(room_id, current))
                current = []
            current.append((reading, at))
        if current:
            found.append(_session(room_id, current))
    return found


def _session(room_id: str, members: list) -> dict:
    first, last = members[0][1], members[-1][1]
    avg_load = sum(r["energy_kwh"] for r, _ in members) / len(members)
    return {
        "room_id": room_id,
        "session_start": first,
        "session_end": last,
        "readings": len(members),
        "peak_people": max(r["occupancy_count"] for r, _ in members),
        "energy_kwh": avg_load * (last - first).total_seconds() / 3600,
    }
