"""Benchmark: table maintenance beside a running stream: OPTIMIZE, VACUUM, log retention.

Own stack on ports 25883/30492 (+100 x LABKIT_TEST_INSTANCE) and own lake, so a running lab is
not disturbed.

Method:

1. **Many small files, as a live job makes them.** ``--minutes`` of sensor time for 8 rooms
   (default 20) go through MQTT and the real bridge into Kafka. The windows job
   (``labkit.pipeline``) reads them with ``maxOffsetsPerTrigger`` = 80 (5 s of the building's
   readings), so each micro-batch closes about one slide of windows and commits one small file
   to Delta: the shape of a table after as many seconds at a 1 s trigger.
2. **Before.** Once the job has written half its batches: data files of the current version,
   their total size, and the median of 3 timed reads (a full ``count`` and the average
   temperature per room, each a fresh read of the table).
3. **OPTIMIZE beside the stream.** ``OPTIMIZE`` (bin-packing into files of up to 1 GB) runs in
   the same Spark session while the job, in its own thread, goes on committing. Delta's optimistic
   concurrency lets both commit: OPTIMIZE only rewrites files the appends never touch, and its
   commit is ``dataChange = false`` (a Delta stream reading the table skips it). Reported: its
   duration, the job's commits during it, whether the job failed.
4. **After.** The same measures on the compacted table, still beside the running job (like
   "before"); then at the end of the run (the job stopped: the files it added since), and after
   a second OPTIMIZE.
5. **VACUUM.** Before: time travel to version 1 works. ``VACUUM ... RETAIN 0 HOURS`` (the safety
   check of 7 days switched off for this table's session only: never do this beside a reader of
   old versions) deletes the files no version within the retention needs; then time travel to
   version 1 fails. Reported: files and bytes on disk before/after, the error.
6. **Log retention.** ``delta.logRetentionDuration`` = 1 second (and the deleted files'
   retention, which it may not undercut), then 10 small appends (Delta cleans the log when it
   writes a checkpoint, every 10 commits): the JSON commit files before and after, and what
   reading version 0 says. Measured: no commit file went. Delta's log cleanup cuts at a day
   boundary (its cutoff, now minus the retention, is rounded down to midnight UTC), so a log
   written today outlives any retention until tomorrow; what stops time travel here is the
   deleted-file retention: Delta refuses to travel further back than it.

The figures depend on the machine and on what else runs on it; under contention they are noisy.

Run:  .venv/bin/python bench/maintenance.py [--minutes 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="labkit-bench-maintenance-"))
SHIFT = 100 * int(os.environ.get("LABKIT_TEST_INSTANCE", "0"))
ENV = {
    "LABKIT_MQTT_PORT": str(25883 + SHIFT),
    "LABKIT_KAFKA_PORT": str(30492 + SHIFT),
    "LABKIT_KAFKA_CONTROLLER_PORT": str(30493 + SHIFT),
    "LABKIT_STATE_DIR": str(WORK / "state"),
    "LABKIT_LAKE_ROOT": str(WORK / "lake"),
    "LABKIT_METADATA_DB": str(WORK / "metadata.db"),
}
os.environ.update(ENV)

from labkit import feed, lake, metadata, names, pipeline, settings, simulator, spark, stack, topics, watch  # noqa: E402

ROOMS = names.room_ids()
START = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


def files_on_disk(path: str) -> tuple[int, int]:
    """Data files under the table's folder (every version's; not the log's checkpoints), and their bytes."""
    found = [p for p in Path(path).rglob("*.parquet") if "_delta_log" not in p.parts]
    return len(found), sum(p.stat().st_size for p in found)


def current_files(session, path: str) -> tuple[int, int]:
    """Data files of the current version, and their bytes (Delta's own count)."""
    detail = session.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    return detail["numFiles"], detail["sizeInBytes"]


def read_seconds(session, path: str, repeat: int = 3) -> float:
    """Median seconds of a full count plus an average per room, each from a fresh read."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        table = session.read.format("delta").load(path)
        table.count()
        table.groupBy("room_id").avg("avg_temperature").collect()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(session, path: str) -> str:
    files, size = current_files(session, path)
    return f"{files} files, {size / 1024:.0f} KiB, read {read_seconds(session, path):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20, help="minutes of sensor time for 8 rooms")
    args = parser.parse_args()
    s = settings.get()
    lines = Report()
    stack.up(s)
    try:
        topics.ensure_topics(topics.lab_topics(ROOMS), s=s)
        metadata.init_metadata(s.metadata_db)
        session = spark.get_session("labkit-bench-maintenance", s, long_running=True)
        messages = list(simulator.generate(rooms=ROOMS, start=START, duration=args.minutes * 60, seed=8))
        sent = feed.through_bridge(messages, ROOMS)
        path = s.table_path("maintenance")
        rows = pipeline.build(session, s, ROOMS, starting_offsets="earliest", max_offsets_per_trigger=80)
        query = pipeline.start(rows, s, "maintenance", path, trigger=None, to_kafka=False)
        batches = len(messages) // 80

        # 2. before, half way
        while lake_version(session, path) < batches // 2:
            time.sleep(2)
        before = measure(session, path)
        lines.append(f"before OPTIMIZE (version {lake_version(session, path)}): {before}")

        # 3. OPTIMIZE beside the running job
        version_at_start = lake_version(session, path)
        began = time.perf_counter()  # the job runs on in its own thread meanwhile
        result = {"metrics": session.sql(f"OPTIMIZE delta.`{path}`").first()["metrics"]}
        result["seconds"] = time.perf_counter() - began
        optimize_version = lake.history(session, path).where("operation = 'OPTIMIZE'").first()["version"]
        appends_during = optimize_version - version_at_start
        lines.append(
            f"OPTIMIZE beside the job: {result['seconds']:.1f} s, {result['metrics']['numFilesRemoved']} files -> "
            f"{result['metrics']['numFilesAdded']}; the job committed {appends_during} batches meanwhile, "
            f"job {'failed: ' + str(query.exception()) if query.exception() else 'still running'}"
        )
        lines.append(f"after OPTIMIZE (version {lake_version(session, path)}): {measure(session, path)}")
        watch.run_until_caught_up(query, ROOMS, timeout=3600)
        watch.stop_between_batches(query)
        lines.append(f"end of the run (version {lake_version(session, path)}, job stopped): {measure(session, path)}")
        session.sql(f"OPTIMIZE delta.`{path}`").collect()
        lines.append(f"after a second OPTIMIZE, job stopped: {measure(session, path)}")

        # 5. VACUUM and time travel
        old = travel(session, path, 1)
        disk_before = files_on_disk(path)
        session.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        began = time.perf_counter()
        session.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS").collect()
        vacuum_s = time.perf_counter() - began
        session.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
        disk_after = files_on_disk(path)
        lines.append(
            f"VACUUM RETAIN 0 HOURS: {vacuum_s:.1f} s; parquet files on disk {disk_before[0]} "
            f"({disk_before[1] / 1024:.0f} KiB) -> {disk_after[0]} ({disk_after[1] / 1024:.0f} KiB); "
            f"version 1 before it: {old}; after it: {travel(session, path, 1)}"
        )

        # 6. log retention
        logs = Path(path) / "_delta_log"
        json_before = len(list(logs.glob("*.json")))
        # Delta requires the log to outlive the deleted files' retention: both go down to 1 s.
        session.sql(
            f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 1 seconds', "
            "'delta.logRetentionDuration' = 'interval 1 seconds')"
        )
        time.sleep(2)
        sample = session.read.format("delta").load(path).limit(8)
        for _ in range(10):
            sample.write.format("delta").mode("append").save(path)
        json_after = len(list(logs.glob("*.json")))
        lines.append(
            f"log retention 1 s + 10 appends: {json_before} -> {json_after} JSON commits in _delta_log; "
            f"version 0: {travel(session, path, 0)}"
        )
        session.stop()
    finally:
        stack.down(s)
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"{args.minutes:g} min of 8 rooms, 80 readings per batch ({sent.produced} readings)")
    print("\n".join(lines))


class Report(list):
    """The figures, each printed as soon as it is known (a failure later keeps the earlier ones)."""

    def append(self, line: str) -> None:
        print(f"FIGURE {line}", flush=True)
        super().append(line)


def lake_version(session, path: str) -> int:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(session, path):
        return -1
    return lake.latest_version(session, path)


def travel(session, path: str, version: int) -> str:
    """Reading an old version: its rows (read from its files), or the first line of the error.

    Not ``count()``: Delta answers that from the statistics in its log, without opening a file,
    so it would "work" on a version whose files VACUUM deleted.
    """
    try:
        return f"{len(lake.read_version(session, path, version).collect())} rows"
    except Exception as error:  # the point of the measure: what a learner would see
        lines = [line.removeprefix(": ") for line in str(error).splitlines() if line.strip()]
        said = [line for line in lines if not line.startswith(("An error occurred", "\tat "))] or lines
        return "fails: " + said[0][:200]


if __name__ == "__main__":
    main()
