"""Benchmark: what the streaming job costs per batch, how fast it drains a backlog, how live it is.

Every figure is printed beside a baseline measured in the same run, on the same machine, so a
busy machine moves both and the ratio stays meaningful. Own stack on ports 23883/29392 and own
lake, so a running lab is not disturbed.

(a) **Throughput from a backlog.** ``--backlog`` readings (default 1,000,000: 8 rooms, hours of
    sensor time) are produced straight to Kafka, then the windows job drains them in one
    unbounded micro-batch: the full dual-sink job (``pipeline.start``: Delta + downsampled
    topics) against the same query with Spark's ``noop`` sink. Rows/s = readings / the batch's
    ``triggerExecution`` time. The dual sink runs first: the first query of a session pays for
    the JVM's warm-up (measured: noop first 17.2 s, then dual 9.3 s, then noop again 11.3 s).
(b) **Steady state at the seed's rate.** 80 readings per micro-batch (``maxOffsetsPerTrigger``
    = 80: 5 s of the seed's building) over a pre-filled backlog; median and p90 of
    ``triggerExecution`` over the batches after the first five: dual sink against ``noop``.
    A third run says where the difference goes: the same two writes without Delta's ``txnAppId``
    / ``txnVersion`` options (``write_without_txn``, a measuring device, not a way to run the job:
    without them a restart could write a batch twice). Delta 4.4 answers "has this batch been
    written?" from a full reconstruction of the table's state (the Spark jobs named "Compute
    snapshot for version: N", one set per batch that writes); the checksum file beside each
    commit already holds the answer, and Delta's development branch reads it from there.
(c) **Latency.** The job runs with ``labkit stream``'s default trigger while the simulator
    publishes in real time (2 readings/s per room, event time = wall clock) through MQTT and the
    real bridge, for 8 rooms (the seed's rate) and for 80 (10x). A window [s, s+10 s) can only be
    final once a reading with event time >= s+10 s + watermark (10 s) has been seen, so
    ``window_end + 10 s`` is the earliest any engine could emit it. For each message in the
    downsampled topics: excess = its Kafka timestamp - (window_end + 10 s); p50 and p99.
(d) **Demo.** ``labkit demo`` in a fresh state folder (warm jar cache): total wall time, and time
    from the command's start to the first Delta commit that adds a file.

Run:  .venv/bin/python bench/pipeline.py [--backlog 1000000] [--latency-seconds 90] [--skip a,b,c,d]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="labkit-bench-pipeline-"))
ENV = {
    "LABKIT_MQTT_PORT": "23883",
    "LABKIT_KAFKA_PORT": "29392",
    "LABKIT_KAFKA_CONTROLLER_PORT": "29393",
    "LABKIT_STATE_DIR": str(WORK / "state"),
    "LABKIT_LAKE_ROOT": str(WORK / "lake"),
    "LABKIT_METADATA_DB": str(WORK / "metadata.db"),
}
os.environ.update(ENV)

from confluent_kafka import Producer  # noqa: E402

from labkit import bridge, cli, metadata, names, pipeline, settings, simulator, spark, stack, topics, watch  # noqa: E402

ROOMS = names.room_ids(8)


def prefill(s, room_ids, start: datetime, readings: int) -> int:
    """Produce ``readings`` valid readings straight to the raw topics (no bridge: this is a backlog)."""
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 50, "batch.size": 1_000_000})
    per_room = readings // len(room_ids)
    count = 0
    for m in simulator.generate(rooms=room_ids, start=start, count=per_room):
        while True:
            try:
                producer.produce(names.raw_topic(m.record["room_id"]), key=m.record["room_id"], value=m.payload)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 100_000 == 0:
            producer.poll(0)
            print(f"  prefill: {count:,} of {per_room * len(room_ids):,}", flush=True)
    producer.flush()
    return count


def run_variant(session, s, name: str, offsets: dict, sink: str, **source_options) -> list[dict]:
    """Run the windows job from ``offsets`` until caught up; its progress reports with input rows."""
    rows = pipeline.build(session, s, ROOMS, starting_offsets=json.dumps(offsets), **source_options)
    if sink == "noop":
        writer = rows.writeStream.queryName(name).outputMode("append").format("noop")
        query = writer.option("checkpointLocation", s.checkpoint_path(name)).start()
    elif sink == "dual without txn":
        writer = rows.writeStream.queryName(name).outputMode("append")
        writer = writer.foreachBatch(write_without_txn(s.table_path(name), s.kafka_bootstrap))
        query = writer.option("checkpointLocation", s.checkpoint_path(name)).start()
    else:
        query = pipeline.start(rows, s, query_name=name, table_path=s.table_path(name), trigger=None)
    try:
        watch.run_until_caught_up(query, ROOMS, s=s, timeout=3600, every=15)
        return [p for p in query.recentProgress if p["numInputRows"] > 0]
    finally:
        query.stop()


def write_without_txn(table_path: str, kafka_bootstrap: str):
    """``pipeline.batch_writer`` minus Delta's exactly-once bookkeeping: for (b)'s breakdown only."""

    def write(batch, batch_id: int) -> None:
        batch.persist()
        try:
            if batch.count() == 0:
                return
            messages = pipeline.to_kafka_messages(batch).write.format("kafka")
            messages = messages.option("kafka.enable.idempotence", "true").option("kafka.acks", "all")
            messages.option("kafka.bootstrap.servers", kafka_bootstrap).save()
            batch.write.format("delta").mode("append").save(table_path)
        finally:
            batch.unpersist()

    return write


def throughput(session, s, backlog: int) -> dict[str, float]:
    before = topics.end_offsets([names.raw_topic(r) for r in ROOMS], s)
    count = prefill(s, ROOMS, datetime(2026, 11, 3, 0, 0, tzinfo=timezone.utc), backlog)
    rates = {}
    # dual first: the first query of a session pays for the JVM's warm-up, so this order can only
    # flatter noop (a second round would need a fresh JVM: the first round's state, 1,000,000
    # deduplication keys per query, stays in the heap and ran it out of memory)
    for sink in ("dual", "noop"):
        batches = run_variant(session, s, f"bench_backlog_{sink}", before, sink)
        seconds = sum(p["durationMs"]["triggerExecution"] for p in batches) / 1000
        rates[sink] = sum(p["numInputRows"] for p in batches) / seconds
        print(f"  (a) {sink}: {count:,} readings in {seconds:.1f} s", flush=True)
    return rates


def steady_state(session, s) -> dict[str, tuple[float, float]]:
    before = topics.end_offsets([names.raw_topic(r) for r in ROOMS], s)
    prefill(s, ROOMS, datetime(2026, 11, 5, 9, 0, tzinfo=timezone.utc), 8 * 2 * 150)  # 150 s of the building
    result = {}
    for sink in ("noop", "dual", "dual without txn"):
        name = f"bench_steady_{sink.replace(' ', '_')}"
        batches = run_variant(session, s, name, before, sink, max_offsets_per_trigger=80)[5:]
        durations = sorted(p["durationMs"]["triggerExecution"] / 1000 for p in batches)
        result[sink] = (statistics.median(durations), durations[int(len(durations) * 0.9)])
    return result


def latency(session, s, room_count: int, seconds: float, trigger: str | None) -> tuple[float, float, int]:
    room_ids = names.room_ids(room_count)
    topics.ensure_topics(topics.lab_topics(room_ids), s=s)
    metadata.init_metadata(s.metadata_db, n_rooms=room_count)
    downsampled = [names.downsampled_topic(r) for r in room_ids]
    before = topics.end_offsets(downsampled, s)
    rows = pipeline.build(session, s, room_ids, starting_offsets="latest")
    name = f"bench_latency_{room_count}_{(trigger or 'asap').replace(' ', '')}"
    query = pipeline.start(rows, s, query_name=name, table_path=s.table_path(name), trigger=trigger or None)
    running, thread = bridge.start_in_background(s, room_count=room_count)
    try:
        time.sleep(5)  # let the query start reading at "latest" before the first reading
        messages = simulator.generate(rooms=room_ids, start=datetime.now(timezone.utc), duration=seconds)
        simulator.publish(messages, realtime=True, progress_every=15)
        time.sleep(25)  # the last windows close only after watermark + a batch
    finally:
        watch.stop_between_batches(query)
        running.stop()
        thread.join(30)
    excess = []
    for name in downsampled:
        for m in topics.read_all(name, s):
            if m.offset < before[name]["0"]:
                continue
            window_end = datetime.fromisoformat(json.loads(m.value)["window_end"].replace("Z", "+00:00"))
            excess.append(m.timestamp_ms / 1000 - (window_end.timestamp() + 10))  # + watermark delay
    excess.sort()
    return excess[len(excess) // 2], excess[int(len(excess) * 0.99)], len(excess)


def demo() -> tuple[float, float]:
    env = {
        **os.environ,
        "LABKIT_MQTT_PORT": "23884",
        "LABKIT_KAFKA_PORT": "29394",
        "LABKIT_KAFKA_CONTROLLER_PORT": "29395",
        "LABKIT_STATE_DIR": str(WORK / "demo-state"),
        "LABKIT_LAKE_ROOT": str(WORK / "demo-lake"),
        "LABKIT_METADATA_DB": str(WORK / "demo.db"),
    }
    log_dir = WORK / "demo-lake" / names.AGGREGATE_TABLE / "_delta_log"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "labkit", "demo"], env=env, stdout=open(WORK / "demo.log", "w"), stderr=subprocess.STDOUT
    )
    first = None
    while process.poll() is None:
        if first is None and log_dir.exists():
            for commit in sorted(log_dir.glob("*.json")):
                if '"add"' in commit.read_text():
                    first = time.monotonic() - started
                    break
        time.sleep(0.2)
    if process.returncode != 0:
        raise SystemExit(f"labkit demo failed: see {WORK / 'demo.log'}")
    return time.monotonic() - started, first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=1_000_000, help="readings pre-filled for (a)")
    parser.add_argument("--latency-seconds", type=float, default=90, help="seconds of real-time publishing for (c)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out, e.g. a,d")
    parser.add_argument(
        "--triggers",
        default=None,
        help='(c) triggers to compare, comma-separated, "" = as fast as possible (default: labkit stream\'s)',
    )
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    s = settings.get()
    lines = []
    stack.up(s)
    try:
        topics.ensure_topics(topics.lab_topics(ROOMS), s=s)
        metadata.init_metadata(s.metadata_db)
        session = spark.get_session("labkit-bench", s, long_running=True)
        if "a" not in skip:
            rates = throughput(session, s, args.backlog)
            lines.append(
                f"(a) backlog of {args.backlog:,}: dual sink {rates['dual']:8,.0f} rows/s, noop "
                f"{rates['noop']:8,.0f} rows/s: dual / noop = {rates['dual'] / rates['noop']:.2f}"
            )
        if "b" not in skip:
            steady = steady_state(session, s)
            (dual, dual90), (noop, noop90) = steady["dual"], steady["noop"]
            no_txn, no_txn90 = steady["dual without txn"]
            lines.append(
                f"(b) 80 rows per batch: median batch dual {dual:.2f} s (p90 {dual90:.2f}), noop "
                f"{noop:.2f} s (p90 {noop90:.2f}): dual / noop = {dual / noop:.2f}; dual without Delta's txn "
                f"{no_txn:.2f} s (p90 {no_txn90:.2f}): {no_txn / noop:.2f}x noop"
            )
        if "c" not in skip:
            # labkit stream's default trigger (None: the next batch as soon as one ends)
            default = cli.build_parser().parse_args(["stream"]).trigger or ""
            triggers = [default] if args.triggers is None else args.triggers.split(",")
            for trigger in triggers:
                for room_count in (8, 80):
                    p50, p99, windows = latency(session, s, room_count, args.latency_seconds, trigger or None)
                    lines.append(
                        f"(c) trigger {trigger or 'as fast as possible'!r}, {room_count} rooms, {windows} windows: "
                        f"latency excess over window_end + watermark p50 {p50:.2f} s, p99 {p99:.2f} s"
                    )
        session.stop()
    finally:
        stack.down(s)
    if "d" not in skip:
        total, first = demo()
        lines.append(f"(d) labkit demo: {total:.1f} s in all, first window in Delta after {first:.1f} s")
    shutil.rmtree(WORK, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
