"""Benchmark: the streaming job's throughput, its latency, and how soon the demo shows results.

Method (own stack on ports 23883/29392 and own lake, so a running lab is not disturbed):

(a) **Throughput.** The raw topics are pre-filled with ``--minutes`` of sensor time for 8 rooms
    (produced straight to Kafka), then the job runs on ``local[2]`` with ``maxOffsetsPerTrigger``
    = 4000 until it has processed all of it. Rows/s = readings / wall time from the first batch's
    start to the end of the last batch (the session start is excluded).
(b) **Latency.** The job runs with a 1 s trigger while the simulator publishes 8 rooms in real
    time (2 readings/s each, event time = wall clock) through MQTT and the bridge. A window
    [s, s+10 s) can only be final when a reading with event time >= s+10 s+watermark (10 s)
    has been seen, so ``window_end + 10 s`` is the earliest any engine could emit it. For each
    message in the downsampled topics: excess = its Kafka timestamp - (window_end + 10 s).
    Reported: p50 and p99 of the excess.
(c) **Demo.** ``labkit demo`` in a fresh state folder (warm jar cache); time from the command's
    start to the first Delta commit that adds a file.

Run:  .venv/bin/python bench/pipeline.py [--minutes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="labkit-bench-pipeline-"))
ENV = {"LABKIT_MQTT_PORT": "23883", "LABKIT_KAFKA_PORT": "29392", "LABKIT_KAFKA_CONTROLLER_PORT": "29393",
       "LABKIT_STATE_DIR": str(WORK / "state"), "LABKIT_LAKE_ROOT": str(WORK / "lake"),
       "LABKIT_METADATA_DB": str(WORK / "metadata.db")}  # fmt: skip
os.environ.update(ENV)

from confluent_kafka import Producer  # noqa: E402

from labkit import bridge, metadata, names, pipeline, settings, simulator, spark, stack, topics, watch  # noqa: E402

ROOMS = names.room_ids()


def throughput(session, s, minutes: float) -> tuple[int, float, float]:
    start = datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc)
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 20})
    count = 0
    for m in simulator.generate(rooms=ROOMS, start=start, duration=minutes * 60):
        producer.produce(names.raw_topic(m.record["room_id"]), key=m.record["room_id"], value=m.payload)
        producer.poll(0)
        count += 1
    producer.flush()
    rows = pipeline.build(session, s, ROOMS, max_offsets_per_trigger=4000)
    query = pipeline.start(rows, s, query_name="bench_throughput", table_path=s.table_path("bench_throughput"),
                           trigger=None, to_kafka=True)  # fmt: skip
    try:
        watch.run_until_caught_up(query, ROOMS, s=s, timeout=1800, every=15)
        batches = watch.progress_table(query.recentProgress)
    finally:
        query.stop()
    batches = batches[batches["rows in"] > 0]
    # from the start of the first batch with data to the end of the last one
    first_start = batches["ready_s"].iloc[0] - batches["batch ms"].iloc[0] / 1000
    wall = batches["ready_s"].iloc[-1] - first_start
    per_batch = batches["processed rows/s"].median()
    return count, count / wall, per_batch


def latency(session, s, seconds: float = 90) -> tuple[float, float, int]:
    before = topics.end_offsets([names.downsampled_topic(r) for r in ROOMS], s)
    rows = pipeline.build(session, s, ROOMS, starting_offsets="latest")
    query = pipeline.start(rows, s, query_name="bench_latency", table_path=s.table_path("bench_latency"), trigger="1 second")
    running, thread = bridge.start_in_background(s)
    try:
        time.sleep(5)  # let the query start reading at "latest" before the first reading
        messages = simulator.generate(rooms=ROOMS, start=datetime.now(timezone.utc), duration=seconds)
        simulator.publish(messages, realtime=True, progress_every=15)
        time.sleep(25)  # the last windows close only after watermark + a batch
    finally:
        query.stop()
        running.stop()
        thread.join(30)
    excess = []
    for room in ROOMS:
        name = names.downsampled_topic(room)
        for m in topics.read_all(name, s):
            if m.offset < before[name]["0"]:
                continue
            window_end = datetime.fromisoformat(json.loads(m.value)["window_end"].replace("Z", "+00:00"))
            earliest = window_end.timestamp() + 10  # + watermark delay
            excess.append(m.timestamp_ms / 1000 - earliest)
    excess.sort()
    return excess[len(excess) // 2], excess[int(len(excess) * 0.99)], len(excess)


def demo_first_window() -> float:
    env = {**os.environ, "LABKIT_MQTT_PORT": "23884", "LABKIT_KAFKA_PORT": "29394",
           "LABKIT_KAFKA_CONTROLLER_PORT": "29395", "LABKIT_STATE_DIR": str(WORK / "demo-state"),
           "LABKIT_LAKE_ROOT": str(WORK / "demo-lake"), "LABKIT_METADATA_DB": str(WORK / "demo.db")}  # fmt: skip
    log_dir = WORK / "demo-lake" / "telemetry_5s_agg" / "_delta_log"
    started = time.monotonic()
    demo = subprocess.Popen([sys.executable, "-m", "labkit", "demo", "--minutes", "3"], env=env,
                            stdout=open(WORK / "demo.log", "w"), stderr=subprocess.STDOUT)  # fmt: skip
    first = None
    while demo.poll() is None:
        if first is None and log_dir.exists():
            for commit in sorted(log_dir.glob("*.json")):
                if '"add"' in commit.read_text():
                    first = time.monotonic() - started
                    break
        time.sleep(0.2)
    if demo.returncode != 0:
        raise SystemExit(f"labkit demo failed: see {WORK / 'demo.log'}")
    return first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20, help="sensor time pre-filled for (a)")
    args = parser.parse_args()
    s = settings.get()
    stack.up(s)
    try:
        topics.ensure_topics(topics.lab_topics(ROOMS), s=s)
        metadata.init_metadata(s.metadata_db)
        session = spark.get_session("labkit-bench", s)
        count, rate, per_batch = throughput(session, s, args.minutes)
        p50, p99, windows = latency(session, s)
        session.stop()
    finally:
        stack.down(s)
    first_window = demo_first_window()
    shutil.rmtree(WORK, ignore_errors=True)
    print(f"(a) throughput, local[2], {count:,} readings pre-filled : {rate:8,.0f} rows/s "
          f"(median batch {per_batch:,.0f} rows/s)")
    print(f"(b) latency beyond window end + watermark, {windows} windows: p50 {p50:5.1f} s, p99 {p99:5.1f} s")
    print(f"(c) labkit demo start -> first window in Delta             : {first_window:8.1f} s")


if __name__ == "__main__":
    main()
