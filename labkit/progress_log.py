"""The stream job's progress, read from another process: its checkpoint's offset and commit logs.

A dashboard runs in its own process and cannot call ``query.lastProgress``. Spark's REST API
has no endpoint for Structured Streaming queries, and the UI port moves (4040, 4041, ...) with
every Spark session on the machine. The checkpoint, though, is where the job itself records
each micro-batch, in a documented, line-oriented format:

* ``offsets/<batch id>``: written when a batch *starts*: ``v1``, then a JSON line with
  ``batchWatermarkMs`` and ``batchTimestampMs``, then one JSON line per source with the Kafka
  offsets the batch reads up to (``{"telemetry.room_1": {"0": 1234}, ...}``);
* ``commits/<batch id>``: written when the batch has *finished* (sinks included).

From two consecutive batches this module derives what the lessons read from
``lastProgress``: the input rate (records between their end offsets over the time between
their starts), the batch duration (commit written minus offsets written), the watermark, and
with the end offsets of Kafka (:func:`labkit.downstream.end_offsets_now`) the lag.

It works where the checkpoint is a local folder (the embedded profile). An ``s3a://`` lake
(compose) has its checkpoint in the bucket: :func:`read` then says so instead of guessing.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path


@dataclasses.dataclass
class BatchProgress:
    batch_id: int
    started: datetime
    watermark: datetime | None
    end_offsets: dict[str, dict[str, int]]
    duration_s: float | None  # of the newest finished batch (None before the first)
    input_rate: float | None  # records/s since the previous batch; None for the first


def _batch_ids(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def _read_offsets(path: Path) -> tuple[dict, dict[str, dict[str, int]]]:
    lines = path.read_text().splitlines()
    meta = json.loads(lines[1])
    offsets: dict[str, dict[str, int]] = {}
    for line in lines[2:]:
        if line.strip().startswith("{"):
            for topic, partitions in json.loads(line).items():
                offsets[topic] = {p: int(o) for p, o in partitions.items()}
    return meta, offsets


def _total(offsets: dict[str, dict[str, int]]) -> int:
    return sum(o for partitions in offsets.values() for o in partitions.values())


def read(checkpoint: str) -> BatchProgress | str:
    """The latest batch of the query checkpointed at ``checkpoint``, or a sentence saying why not."""
    if "://" in checkpoint and not checkpoint.startswith("file://"):
        return f"the checkpoint is at {checkpoint}: progress is shown for a local lake only"
    folder = Path(checkpoint.removeprefix("file://"))
    ids = _batch_ids(folder / "offsets")
    if not ids:
        return f"no micro-batch yet (checkpoint {folder}): is `labkit stream` running?"
    latest = ids[-1]
    meta, offsets = _read_offsets(folder / "offsets" / str(latest))
    started = datetime.fromtimestamp(meta["batchTimestampMs"] / 1000, timezone.utc)
    watermark_ms = meta.get("batchWatermarkMs", 0)
    watermark = datetime.fromtimestamp(watermark_ms / 1000, timezone.utc) if watermark_ms else None
    duration = None  # of the newest *finished* batch: the latest may still be running
    for batch in reversed(ids[-2:]):
        commit = folder / "commits" / str(batch)
        if commit.exists():
            duration = commit.stat().st_mtime - (folder / "offsets" / str(batch)).stat().st_mtime
            break
    rate = None
    if len(ids) > 1:
        previous_meta, previous = _read_offsets(folder / "offsets" / str(ids[-2]))
        seconds = (meta["batchTimestampMs"] - previous_meta["batchTimestampMs"]) / 1000
        rate = (_total(offsets) - _total(previous)) / seconds if seconds > 0 else None
    return BatchProgress(latest, started, watermark, offsets, duration, rate)
