"""Benchmark: what a streaming query costs while the building is quiet.

The lab's jobs run micro-batches back to back (no trigger interval: the lowest latency, see
README "The live path"). When a batch finds no new readings, Spark waits
``spark.sql.streaming.pollingDelay`` and asks Kafka again: with Spark's default of 10 ms, a
hundred offset requests a second, each answered by the broker. ``labkit.spark`` sets it to
``labkit.spark.IDLE_POLL``. This measures what each costs in CPU while no reading arrives.

Method. Own stack on ports 25883/29592 (+100 x LABKIT_TEST_INSTANCE) and own lake, so a running
lab is not disturbed. One Spark session (the lab's settings, as ``labkit stream`` starts it). The
lab's topics exist and stay empty. Then, ``--rounds`` times, in turn:

* no query running (the baseline: an idle Spark session and broker);
* the lab's windows job (``pipeline.build`` + ``pipeline.start``, Delta and Kafka sinks, no
  trigger interval) with Spark's 10 ms;
* the same with the lab's setting.

Each query first gets 15 s to plan and run its first batch; then the CPU time (user + system,
from /proc through psutil) of Spark's JVM and of the Kafka broker's process is read over
``--seconds`` (default 30). Printed: CPU seconds per second of wall time (1.0 = one core busy),
the medians over the rounds, and each query's cost above the baseline as a ratio of Spark's
default to the lab's setting.

Run:  .venv/bin/python bench/idle.py [--seconds 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="labkit-bench-idle-"))
SHIFT = 100 * int(os.environ.get("LABKIT_TEST_INSTANCE", "0"))
ENV = {
    "LABKIT_MQTT_PORT": str(25883 + SHIFT),
    "LABKIT_KAFKA_PORT": str(29592 + SHIFT),
    "LABKIT_KAFKA_CONTROLLER_PORT": str(29593 + SHIFT),
    "LABKIT_STATE_DIR": str(WORK / "state"),
    "LABKIT_LAKE_ROOT": str(WORK / "lake"),
    "LABKIT_METADATA_DB": str(WORK / "metadata.db"),
}
os.environ.update(ENV)

import psutil  # noqa: E402

from labkit import metadata, names, pipeline, settings, spark, stack, topics  # noqa: E402
from labkit.stack.processes import process_tree  # noqa: E402

ROOMS = names.room_ids(8)
SPARK_DEFAULT = "10ms"  # spark.sql.streaming.pollingDelay when nobody sets it


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(spark_jvm, broker, seconds: float) -> tuple[float, float]:
    """CPU seconds per second of Spark's JVM and of the broker over ``seconds``."""
    jvm_before, broker_before = cpu_seconds(spark_jvm), cpu_seconds(broker)
    time.sleep(seconds)
    return (cpu_seconds(spark_jvm) - jvm_before) / seconds, (cpu_seconds(broker) - broker_before) / seconds


def idle_query(session, s, poll: str, seconds: float, round_no: int, spark_jvm, broker) -> tuple[float, float]:
    session.conf.set("spark.sql.streaming.pollingDelay", poll)
    name = f"bench_idle_{poll}_{round_no}"
    end = topics.end_offsets(topics.raw_topics(ROOMS), s)
    rows = pipeline.build(session, s, ROOMS, starting_offsets=json.dumps(end))
    query = pipeline.start(rows, s, name, s.table_path(name), trigger=None)
    try:
        time.sleep(15)  # planning and the first (empty) batch
        if query.exception() is not None:
            raise query.exception()
        return measure(spark_jvm, broker, seconds)
    finally:
        query.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    s = settings.get()
    try:
        stack.up(s)
        metadata.init_metadata()
        topics.ensure_topics(topics.lab_topics(ROOMS), s=s)
        broker_pid = next(st.pid for st in stack.status(s) if st.name == "kafka")
        broker = process_tree(broker_pid)
        session = spark.get_session("labkit-bench-idle", s, long_running=True)
        broker_pids = {p.pid for p in broker}
        spark_jvm = [
            p for p in psutil.Process().children(recursive=True) if p.name() == "java" and p.pid not in broker_pids
        ]
        print(f"lab setting {spark.IDLE_POLL}; Spark's JVM {[p.pid for p in spark_jvm]}, broker {sorted(broker_pids)}")
        results: dict[str, list[tuple[float, float]]] = {"no query": [], SPARK_DEFAULT: [], spark.IDLE_POLL: []}
        for round_no in range(args.rounds):
            results["no query"].append(measure(spark_jvm, broker, args.seconds))
            for poll in (SPARK_DEFAULT, spark.IDLE_POLL):
                results[poll].append(idle_query(session, s, poll, args.seconds, round_no, spark_jvm, broker))
            for label, runs in results.items():
                jvm, kafka = runs[-1]
                print(f"  round {round_no + 1}, {label:>8}: Spark {jvm:.3f}, broker {kafka:.3f} CPU s per s")
        session.stop()
    finally:
        stack.down(s)
        shutil.rmtree(WORK, ignore_errors=True)

    print(f"\nIdle for {args.seconds:.0f} s, medians of {args.rounds} rounds (CPU seconds per second; 1.0 = a core):")
    print("| what | Spark's JVM | Kafka broker | both | above no query |")
    print("|---|---|---|---|---|")
    both = {}
    for label, runs in results.items():
        jvm = statistics.median(r[0] for r in runs)
        kafka = statistics.median(r[1] for r in runs)
        both[label] = jvm + kafka
        above = both[label] - both["no query"]
        shown = label if label == "no query" else f"idle query, pollingDelay {label}"
        print(f"| {shown} | {jvm:.3f} | {kafka:.3f} | {both[label]:.3f} | {above:+.3f} |")
    default_cost = both[SPARK_DEFAULT] - both["no query"]
    lab_cost = max(both[spark.IDLE_POLL] - both["no query"], 1e-3)
    print(
        f"\nan idle query costs {default_cost / lab_cost:.1f}x as much with Spark's {SPARK_DEFAULT} as with {spark.IDLE_POLL}"
    )


if __name__ == "__main__":
    main()
