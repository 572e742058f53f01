"""Soak benchmark: 100x the seed's building for ten minutes, through every real component.

Method (own stack on ports 24883/29492 and its own lake, so a running lab is not disturbed):

* 800 rooms publish a reading every 0.5 s each (1,600 readings/s) in real time over MQTT, from
  two simulator processes of 400 rooms each (one Python process cannot pace 1,600 QoS-1
  messages a second alone on a busy 2-core machine);
* ``labkit bridge --rooms 800`` moves them into 800 raw topics; ``labkit stream --rooms 800``
  computes the windows into Delta and the downsampled topics, as in the lab;
* every 10 s the resident memory (RSS) of each process is sampled with psutil (the stream job:
  its Python process and its JVM together), and the stream job's lag (records in Kafka beyond
  its last committed batch, from its checkpoint's ``commits`` and ``offsets`` logs);
* at the end, after publishing stops, the job is given time to catch up (its last batch
  committed, and the no-data batch that closes the last windows run), then: readings
  published vs in Kafka (lost), dead letters, windows in Delta vs ``labkit.reference`` over the
  raw records (missing, extra, written twice), each process's memory at the start and end of
  the run (flat or growing), and the lag at the end.

Run:  .venv/bin/python bench/soak.py [--minutes 10] [--rooms 800]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil

WORK = Path(tempfile.mkdtemp(prefix="labkit-bench-soak-"))
ENV = {
    "LABKIT_MQTT_PORT": "24883",
    "LABKIT_KAFKA_PORT": "29492",
    "LABKIT_KAFKA_CONTROLLER_PORT": "29493",
    "LABKIT_KAFKA_HEAP": "1g",
    "LABKIT_STATE_DIR": str(WORK / "state"),
    "LABKIT_LAKE_ROOT": str(WORK / "lake"),
    "LABKIT_METADATA_DB": str(WORK / "metadata.db"),
}
os.environ.update(ENV)

from labkit import metadata, names, reference, schema, settings, stack, topics  # noqa: E402


def labkit(*args: str, log: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "labkit", *args],
        stdout=open(WORK / log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and its children (a labkit stream job and its JVM), in MB."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def numbered(folder: Path) -> list[int]:
    """The batch ids with a file in a checkpoint's ``offsets`` or ``commits`` folder, in order."""
    return sorted(int(p.name) for p in folder.glob("[0-9]*"))


def lag(s, checkpoint: Path, raw: list[str]) -> int:
    """Records in the raw topics beyond the offsets of the job's last *committed* batch.

    Not the last planned one: a batch of a few hundred thousand readings is planned minutes
    before it is done, and a job stopped in between has not written its windows.
    """
    committed = numbered(checkpoint / "commits")
    if not committed:
        return -1
    read_up_to = json.loads((checkpoint / "offsets" / str(committed[-1])).read_text().splitlines()[-1])
    ends = topics.end_offsets(raw, s)
    return sum(ends[t]["0"] - read_up_to.get(t, {}).get("0", 0) for t in raw)


def settled(checkpoint: Path, seconds: float = 30) -> bool:
    """Every planned batch committed, and no new one for ``seconds``: the no-data batch that
    closes the last windows (it follows the last data batch at once) has run too."""
    before = numbered(checkpoint / "offsets")
    time.sleep(seconds)
    return before == numbered(checkpoint / "offsets") and before == numbered(checkpoint / "commits")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rooms", type=int, default=800)
    parser.add_argument("--catch-up", type=float, default=900, help="seconds allowed to catch up at the end")
    args = parser.parse_args()
    s = settings.get()
    room_ids = names.room_ids(args.rooms)
    raw = [names.raw_topic(r) for r in room_ids]
    stack.up(s)
    processes: dict[str, subprocess.Popen] = {}
    samples: dict[str, list[float]] = collections.defaultdict(list)
    lags = []
    try:
        topics.ensure_topics(topics.lab_topics(room_ids), s=s)
        metadata.init_metadata(s.metadata_db, n_rooms=args.rooms)
        before = topics.end_offsets(raw, s)
        processes["bridge"] = labkit("bridge", "--rooms", str(args.rooms), log="bridge.log")
        processes["stream job"] = labkit(
            "stream",
            "--rooms",
            str(args.rooms),
            "--trigger",
            "",
            "--starting-offsets",
            json.dumps(before),
            log="stream.log",
        )
        time.sleep(20)  # Spark starting; the bridge subscribed
        half = args.rooms // 2
        for i, part in enumerate((room_ids[:half], room_ids[half:])):
            processes[f"simulator {i + 1}"] = subprocess.Popen(
                [sys.executable, "-c", SIMULATE, json.dumps(part), str(args.minutes * 60)],
                stdout=open(WORK / f"simulator-{i + 1}.log", "w"),
                stderr=subprocess.STDOUT,
            )
        watched = {name: psutil.Process(p.pid) for name, p in processes.items()}
        watched["kafka"] = stack.running_process(s, "kafka")
        watched["mqtt"] = stack.running_process(s, "mqtt")
        started = time.monotonic()
        while any(processes[f"simulator {i + 1}"].poll() is None for i in range(2)):
            for name, process in watched.items():
                samples[name].append(tree_rss_mb(process))
            lags.append((time.monotonic() - started, lag(s, Path(s.checkpoint_path(names.AGGREGATE_QUERY)), raw)))
            print(
                f"{time.monotonic() - started:5.0f} s  lag {lags[-1][1]:>7,}  "
                + "  ".join(f"{n} {v[-1]:.0f} MB" for n, v in samples.items()),
                flush=True,
            )
            time.sleep(10)
        checkpoint = Path(s.checkpoint_path(names.AGGREGATE_QUERY))
        deadline = time.monotonic() + args.catch_up
        caught_up_after = None
        while time.monotonic() < deadline:
            if lag(s, checkpoint, raw) == 0 and settled(checkpoint):
                caught_up_after = time.monotonic() - started - args.minutes * 60
                break
            time.sleep(5)
        end_lag = lag(s, checkpoint, raw)
        # each batch's duration: from its plan (offsets/N written) to its commit (commits/N written)
        durations = [
            (checkpoint / "commits" / str(n)).stat().st_mtime - (checkpoint / "offsets" / str(n)).stat().st_mtime
            for n in numbered(checkpoint / "commits")
        ]
        for name in ("stream job", "bridge"):
            # SIGTERM to labkit's process only: it stops the query between batches. Sent to the
            # process group, it would also reach Spark's JVM, whose shutdown hook stops Spark first.
            processes[name].send_signal(signal.SIGTERM)
            processes[name].wait(120)
        published = sum(int(open(WORK / f"simulator-{i + 1}.log").read().split()[-1]) for i in range(2))
        after = topics.end_offsets(raw, s)
        records = reference.records_between(before, after, s)
        dead = topics.end_offsets([names.DLQ_TOPIC], s)[names.DLQ_TOPIC]["0"]
        newest = max(schema.parse_timestamp(r["timestamp"]) for _, _, r in records)
        expected = {
            (w["room_id"], w["window_start"])
            for w in reference.windows(records, metadata.read_rooms(s.metadata_db), newest - timedelta(seconds=10))
        }
        written = collections.Counter(windows_in_delta(s))
        print(f"\nsoak: {args.rooms} rooms, {args.minutes:g} min, {published / (args.minutes * 60):,.0f} readings/s")
        print(
            f"readings published {published:,}, in Kafka {len(records):,}, lost {published - len(records):,}, "
            f"dead letters {dead:,}"
        )
        print(
            f"windows expected {len(expected):,}, in Delta {len(written):,}, missing {len(expected - set(written)):,}, "
            f"not expected {len(set(written) - expected):,}, written twice {sum(1 for n in written.values() if n > 1):,}"
        )
        waited = args.catch_up if caught_up_after is None else caught_up_after
        print(f"lag at the end of publishing {lags[-1][1]:,} records; {waited:.0f} s later, {end_lag:,}")
        print("micro-batch durations, in order (s): " + ", ".join(f"{d:.0f}" for d in durations))
        for name, values in samples.items():
            print(f"RSS {name:12s} start {values[0]:7.0f} MB, end {values[-1]:7.0f} MB, max {max(values):7.0f} MB")
    finally:
        for name, process in processes.items():
            if process.poll() is None and name in ("bridge", "stream job"):
                os.killpg(process.pid, signal.SIGKILL)  # the job's JVM too: its own process group
            elif process.poll() is None:
                process.kill()
        stack.down(s)
        shutil.rmtree(WORK, ignore_errors=True)


def windows_in_delta(s) -> list[tuple[str, datetime]]:
    """(room_id, window_start) of every row of the windows table."""
    from labkit import spark

    session = spark.get_session("labkit-soak-check", s, long_running=True)
    rows = (
        session.read.format("delta")
        .load(s.table_path(names.AGGREGATE_TABLE))
        .select("room_id", "window_start")
        .collect()
    )
    session.stop()
    return [(r.room_id, r.window_start.replace(tzinfo=timezone.utc)) for r in rows]


# The simulator processes: real time, their share of the rooms; the last line printed is the count.
SIMULATE = """
import json, sys
from datetime import datetime, timezone
from labkit import simulator
rooms, seconds = json.loads(sys.argv[1]), float(sys.argv[2])
messages = simulator.generate(rooms=rooms, start=datetime.now(timezone.utc), duration=seconds)
summary = simulator.publish(messages, realtime=True, progress_every=30)
print(summary.total)
"""

if __name__ == "__main__":
    main()
