"""The pipeline's windows computed a second way, in plain Python: the yardstick for the stream.

"It printed some rows" proves nothing about a streaming job. What does is to compute the same
result independently, over the same raw records, and compare. This module is that independent
computation. It uses no Spark at all, only the records as they were read back from Kafka:

    records = reference.records_between(sent.before, sent.after)   # from Kafka, in arrival order
    expected = reference.windows(records, metadata.read_rooms(), final_watermark)
    checks.expect_equal_frames(spark.read.format("delta").load(path), reference.as_frame(expected),
                               key=["room_id", "window_start"])

The rules it applies are the pipeline's rules, written out by hand:

1. **Late readings are left out.** A reading is late when it is more than ``late_after_s``
   seconds behind the newest reading of its room that arrived before it (in Kafka order). For
   the comparison to be exact, the data must be unambiguous: readings are either slightly out
   of order (well inside the watermark) or very late (beyond window + watermark + a
   micro-batch). The simulator's defaults are, and an ambiguous reading raises.
2. **Duplicates count once**: a second reading with the same room and event time is dropped.
3. **Sliding windows**: each reading belongs to every window ``[start, start + window_s)``
   that holds it, with starts on multiples of ``slide_s`` since the epoch.
4. **Only final windows**: a window is in the result when its end is at or before the final
   watermark of the streaming query (later windows are still waiting for data).
"""

from __future__ import annotations

import collections
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from labkit import schema, topics
from labkit import settings as settings_module

#: Readings at most this far behind their room's newest are "out of order" (kept) ...
OUT_OF_ORDER_MAX_S = 5.0
#: ... and readings at least this far behind are "late" (dropped). Nothing may fall in between.
LATE_AFTER_S = 60.0


def records_between(
    before: dict, after: dict, s: settings_module.Settings | None = None
) -> list[tuple[str, int, dict]]:
    """``(topic, offset, record)`` of every raw record between two offset snapshots, read from Kafka."""
    out = []
    for name, partitions in after.items():
        for message in topics.read_all(name, s, since=before[name]):
            low, high = before[name][str(message.partition)], partitions[str(message.partition)]
            if low <= message.offset < high:
                out.append((name, message.offset, json.loads(message.value)))
    return out


def on_time(
    records: Iterable[tuple[str, int, dict]], late_after_s: float = LATE_AFTER_S, keep_late: bool = False
) -> list[dict]:
    """The records the stream keeps: late ones and repeated ones left out (rules 1 and 2).

    ``keep_late``: late ones kept too, as a query does that reads them all in its first
    micro-batch (its watermark only starts to move after that batch).
    """
    kept, newest, seen = [], {}, set()
    for _, _, record in sorted(records, key=lambda r: (r[0], r[1])):  # arrival order, per room topic
        room, t = record["room_id"], schema.parse_timestamp(record["timestamp"])
        behind = (newest[room] - t).total_seconds() if room in newest else 0.0
        if OUT_OF_ORDER_MAX_S < behind < late_after_s:
            raise ValueError(
                f"{room} {record['timestamp']} arrived {behind:.1f} s behind its room: neither "
                f"slightly out of order (<= {OUT_OF_ORDER_MAX_S:.0f} s) nor clearly late "
                f"(>= {late_after_s:.0f} s); simulate with a larger late delay"
            )
        newest[room] = max(newest.get(room, t), t)
        if (behind >= late_after_s and not keep_late) or (room, t) in seen:
            continue
        seen.add((room, t))
        kept.append(record)
    return kept


def window_starts(t: datetime, window_s: int, slide_s: int) -> list[datetime]:
    """The starts of every sliding window that holds the instant ``t`` (rule 3)."""
    seconds = t.timestamp()
    last = math.floor(seconds / slide_s) * slide_s
    starts = range(last - (math.ceil(window_s / slide_s) - 1) * slide_s, last + 1, slide_s)
    return [datetime.fromtimestamp(s, timezone.utc) for s in starts if s <= seconds < s + window_s]


def _window_groups(
    records, window_s: int, slide_s: int, late_after_s: float, keep_late: bool = False
) -> dict[tuple[str, datetime], list]:
    """``{(room_id, window start): [the window's readings]}``: rules 1 to 3, every window, open or final."""
    groups = collections.defaultdict(list)
    for record in on_time(records, late_after_s, keep_late):
        for start in window_starts(schema.parse_timestamp(record["timestamp"]), window_s, slide_s):
            groups[(record["room_id"], start)].append(record)
    return groups


def open_windows(
    records: Iterable[tuple[str, int, dict]],
    final_watermark: datetime,
    window_s: int = 10,
    slide_s: int = 5,
    late_after_s: float = LATE_AFTER_S,
) -> dict[tuple[str, datetime], int]:
    """``{(room_id, window start): readings}`` of the windows still *open* under ``final_watermark``.

    The complement of :func:`windows` (rule 4 the other way round): the windows whose end is after
    the watermark, which an append-mode query has not written yet and keeps in its state store.
    Lessons 04 and 07 compare them with the state read back from the checkpoint.
    """
    groups = _window_groups(records, window_s, slide_s, late_after_s)
    edge = final_watermark - timedelta(seconds=window_s)  # a window is open when start + window_s > watermark
    return {key: len(rs) for key, rs in groups.items() if key[1] > edge}


def windows(
    records: Iterable[tuple[str, int, dict]],
    rooms_table: Sequence[dict],
    final_watermark: datetime,
    window_s: int = 10,
    slide_s: int = 5,
    late_after_s: float = LATE_AFTER_S,
    keep_late: bool = False,
) -> list[dict[str, Any]]:
    """The aggregate rows (``schema.AGGREGATE_COLUMNS``) the stream must have written, in plain Python.

    ``keep_late``: the rows of a query that read every record in one micro-batch, late ones
    included (rule 1 does not apply before the watermark has moved).
    """
    groups = _window_groups(records, window_s, slide_s, late_after_s, keep_late)
    meta = {r["room_id"]: r for r in rooms_table}
    result = []
    for (room, start), rs in sorted(groups.items()):
        end = start + timedelta(seconds=window_s)
        if end > final_watermark:
            continue

        def values(field):
            return [r[field] for r in rs]

        def mean(field):
            return math.fsum(values(field)) / len(rs)

        info = meta.get(room, {})
        result.append(
            {
                "window_start": start,
                "window_end": end,
                "room_id": room,
                "room_name": info.get("room_name"),
                "floor": info.get("floor"),
                "room_type": info.get("room_type"),
                "avg_temperature": mean("temperature"),
                "min_temperature": min(values("temperature")),
                "max_temperature": max(values("temperature")),
                "avg_humidity": mean("humidity"),
                "min_humidity": min(values("humidity")),
                "max_humidity": max(values("humidity")),
                "avg_co2": mean("co2_ppm"),
                "max_co2": max(values("co2_ppm")),
                "avg_light": mean("light_lux"),
                "max_occupancy": max(values("occupancy_count")),
                "motion_events": sum(values("motion_detected")),
                "avg_energy": mean("energy_kwh"),
                "avg_air_quality": mean("air_quality_index"),
                "min_air_quality": min(values("air_quality_index")),
            }
        )
    return result


def as_frame(rows: Sequence[dict[str, Any]]):
    """The rows as a pandas DataFrame with Spark's conventions (naive UTC timestamps), for checks."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=schema.AGGREGATE_COLUMNS)
    for column in ("window_start", "window_end"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
    return frame


def final_watermark(progress: dict) -> datetime:
    """The watermark of a query's last progress report, as an aware UTC datetime."""
    return datetime.fromisoformat(progress["eventTime"]["watermark"].replace("Z", "+00:00"))
