"""Benchmark: how well the alert job finds injected anomalies, what it costs, how fast it tells.

Own stack on ports 24883/29492 (+100 x LABKIT_TEST_INSTANCE) and own lake, so a running lab is
not disturbed.

(q) **A quiet day.** 24 hours of the 8 rooms' readings (every half second, no anomaly) through
    the detectors in plain Python (``labkit.alerts.watch_readings``: the rules, spikes and stuck
    sensors; a silent room needs the stream) with the default thresholds: every alert is false.
    No broker, no Spark; about 10 minutes of one core.
(a) **Precision and recall.** ``--minutes`` of sensor time (default 40) for 8 rooms, with
    ``--per-kind`` anomalies of each kind (default 4) placed by a seeded random generator: a
    random room, a random start, no two anomalies of one room overlapping (with a 60 s gap), the
    durations below. The readings go through MQTT and the real bridge into Kafka; the alert job
    (``labkit.alerts``, default thresholds from ``labkit.metadata``) runs over them once, and its
    ``raised`` alerts are scored against the labels with :func:`labkit.alerts.score`:

    * recall per anomaly kind = anomalies with a matching alert / anomalies injected, where a
      matching alert is in the anomaly's room, of a kind that finds it
      (``labkit.alerts.DETECTED_BY``), raised between its start and its end + 30 s;
    * precision per alert kind = raised alerts that match some anomaly / raised alerts.

    Some misses are by design and the table shows them: a drift of 6 °C only crosses the limit
    of a room within 6 °C of it (a server room, not a storage closet at 17 °C under its 25 °C
    limit), and a storage closet's stuck sensor needs 20 minutes to be told from its calm.
(b) **Cost per batch.** The same backlog read with ``maxOffsetsPerTrigger`` = 80 (5 s of the
    building's readings) by the windows job (``labkit.pipeline``) and by the alert job, one after
    the other: median ``triggerExecution`` of each over the batches after the first five.
    The difference is what the alert job adds per batch when both run.
(c) **Latency.** The alert job runs with its default trigger (5 s) while the simulator publishes
    in real time (event time = wall clock) through MQTT and the bridge, with a temperature spike
    or a CO2 anomaly every 15 s in turn across the rooms. Latency of an alert = its Kafka
    timestamp in ``telemetry.alerts`` - the event time of the anomaly's first reading; p50, p99.

Run:  .venv/bin/python bench/alerts.py [--minutes 40] [--per-kind 4] [--latency-seconds 120] [--skip q,a,b,c]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="labkit-bench-alerts-"))
SHIFT = 100 * int(os.environ.get("LABKIT_TEST_INSTANCE", "0"))
ENV = {
    "LABKIT_MQTT_PORT": str(24883 + SHIFT),
    "LABKIT_KAFKA_PORT": str(29492 + SHIFT),
    "LABKIT_KAFKA_CONTROLLER_PORT": str(29493 + SHIFT),
    "LABKIT_STATE_DIR": str(WORK / "state"),
    "LABKIT_LAKE_ROOT": str(WORK / "lake"),
    "LABKIT_METADATA_DB": str(WORK / "metadata.db"),
}
os.environ.update(ENV)

from labkit import (  # noqa: E402
    alerts,
    bridge,
    feed,
    metadata,
    names,
    pipeline,
    settings,
    simulator,
    spark,
    stack,
    topics,
    watch,
)

ROOMS = names.room_ids(8)
START = datetime(2026, 2, 10, 9, 0, tzinfo=timezone.utc)
#: Seconds each kind of anomaly lasts in (a).
DURATION_S = {"spike": 5, "drift": 240, "stuck": 400, "dropout": 45, "co2_empty": 30}


def quiet_day(hours: float = 24) -> list[dict]:
    """Every alert the detectors raise over ``hours`` of an ordinary day (from 00:00): all false."""
    from labkit import rooms

    path = WORK / "quiet.db"
    thresholds = metadata.read_thresholds(metadata.init_metadata(path))
    limits = {r: thresholds[rooms.profile(r).room_type] for r in ROOMS}
    midnight = START.replace(hour=0)
    records = (rooms.reading(r, midnight + timedelta(seconds=0.5 * k)) for k in range(int(hours * 7200)) for r in ROOMS)
    return [a for a in alerts.watch_readings(records, limits) if a["state"] == "raised"]


def place_anomalies(per_kind: int, run_s: float, seed: int = 15) -> list[simulator.Anomaly]:
    """``per_kind`` anomalies of each kind, in random rooms and times, never two at once in a room."""
    rng = random.Random(seed)
    busy: dict[str, list[tuple[float, float]]] = {r: [] for r in ROOMS}
    placed = []
    for kind in simulator.ANOMALY_KINDS:
        for _ in range(per_kind):
            for _attempt in range(1000):
                room, length = rng.choice(ROOMS), DURATION_S[kind]
                begin = rng.uniform(60, run_s - length - 60)
                if all(begin + length + 60 < b or e + 60 < begin for b, e in busy[room]):
                    busy[room].append((begin, begin + length))
                    placed.append(simulator.Anomaly(kind, room, round(begin, 1), length))
                    break
    return placed


def precision_recall(session, s, minutes: float, per_kind: int):
    anomalies = place_anomalies(per_kind, minutes * 60)
    messages = list(simulator.generate(rooms=ROOMS, start=START, duration=minutes * 60, seed=15, anomalies=anomalies))
    sent = feed.through_bridge(messages, ROOMS, s)
    rows = alerts.build(session, s, ROOMS, starting_offsets=json.dumps(sent.before), max_offsets_per_trigger=4000)
    query = alerts.start(
        rows, s, query_name="bench_alerts_a", table_path=s.table_path("bench_alerts_a"), trigger=None, to_kafka=False
    )
    try:
        watch.run_until_caught_up(query, ROOMS, timeout=3600, s=s)
    finally:
        watch.stop_between_batches(query)  # not mid-batch: see labkit.watch
    found = alerts.read_alerts(session, s.table_path("bench_alerts_a"))
    return alerts.score(found, simulator.anomaly_labels(anomalies, START)), sent


def median_batch_s(query_progress: list[dict]) -> float:
    durations = [p["durationMs"]["triggerExecution"] / 1000 for p in query_progress if p["numInputRows"] > 0][5:]
    return statistics.median(durations)


def cost_per_batch(session, s, sent):
    """Median batch time of the windows job and of the alert job over the same backlog, 80 rows a batch."""
    offsets = json.dumps(sent.before)
    rows = pipeline.build(session, s, ROOMS, starting_offsets=offsets, max_offsets_per_trigger=80)
    windows = pipeline.start(
        rows, s, query_name="bench_windows_b", table_path=s.table_path("bench_windows_b"), trigger=None
    )
    progress = _run_for(windows, 40)
    windows_s = median_batch_s(progress)
    rows = alerts.build(session, s, ROOMS, starting_offsets=offsets, max_offsets_per_trigger=80)
    alert_query = alerts.start(
        rows, s, query_name="bench_alerts_b", table_path=s.table_path("bench_alerts_b"), trigger=None
    )
    progress = _run_for(alert_query, 40)
    return windows_s, median_batch_s(progress)


def _run_for(query, batches: int) -> list[dict]:
    """Let ``query`` run ``batches`` micro-batches with input, then stop it; its progress reports."""
    import time

    try:
        while sum(1 for p in query.recentProgress if p["numInputRows"] > 0) < batches:
            if query.exception() is not None:
                raise query.exception()
            time.sleep(1)
        return list(query.recentProgress)
    finally:
        watch.stop_between_batches(query)  # not mid-batch: see labkit.watch


def latency(session, s, seconds: float):
    """Real-time run with an anomaly every 15 s: (p50, p99, alerts measured)."""
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
    kinds = ["spike", "co2_empty"]
    anomalies = [
        simulator.Anomaly(kinds[k % 2], ROOMS[k % len(ROOMS)], 15.0 * (k + 1), 5) for k in range(int(seconds // 15) - 1)
    ]
    alerts_before = topics.end_offsets([names.ALERTS_TOPIC], s)[names.ALERTS_TOPIC]
    rows = alerts.build(session, s, ROOMS, starting_offsets="latest")
    query = alerts.start(rows, s, query_name="bench_alerts_c", table_path=s.table_path("bench_alerts_c"))
    running, thread = bridge.start_in_background(s, room_count=len(ROOMS))
    try:
        import time

        time.sleep(10)  # the query's first batch, so "latest" is before the first reading
        messages = simulator.generate(rooms=ROOMS, start=start, duration=seconds, seed=15, anomalies=anomalies)
        simulator.publish(messages, realtime=True, host=s.mqtt_host, port=s.mqtt_port, progress_every=None)
        time.sleep(20)
    finally:
        running.stop()
        thread.join(60)
        watch.stop_between_batches(query)  # not mid-batch: see labkit.watch
    first_seen = {}
    for m in topics.read_all(names.ALERTS_TOPIC, s):
        if m.offset < alerts_before.get(m.partition, 0):
            continue
        row = json.loads(m.value)
        if row["state"] == "raised":
            first_seen.setdefault((row["room_id"], row["alert"], row["event_time"]), m.timestamp_ms / 1000)
    delays = []
    for label in simulator.anomaly_labels(anomalies, start):
        begin = datetime.fromisoformat(label["start"].replace("Z", "+00:00")).timestamp()
        seen = [
            at
            for (room, kind, event), at in first_seen.items()
            if room == label["room_id"]
            and kind in alerts.DETECTED_BY[label["kind"]]
            and 0 <= datetime.fromisoformat(event.replace("Z", "+00:00")).timestamp() - begin < 10
        ]
        if seen:
            delays.append(min(seen) - begin)
    delays.sort()
    if not delays:
        return float("nan"), float("nan"), 0
    return statistics.median(delays), delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))], len(delays)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=40, help="minutes of sensor time for (a) and (b)")
    parser.add_argument("--per-kind", type=int, default=4, help="anomalies of each kind in (a)")
    parser.add_argument("--latency-seconds", type=float, default=120, help="seconds of real-time publishing for (c)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out, e.g. b,c")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    s = settings.get()
    lines = []
    if "q" not in skip:
        false = quiet_day()
        lines.append(
            f"(q) a quiet day, 24 h of 8 rooms: {len(false)} alerts raised"
            + "".join(f"\n    {a['room_id']} {a['alert']} at {a['event_time']}: {a['detail']}" for a in false)
        )
    if {"a", "b", "c"} <= skip:
        print("\n".join(lines))
        return
    stack.up(s)
    try:
        topics.ensure_topics(topics.lab_topics(ROOMS) + [names.ALERTS_TOPIC], s=s)
        metadata.init_metadata(s.metadata_db)
        session = spark.get_session("labkit-bench-alerts", s, long_running=True)
        result, sent = precision_recall(session, s, args.minutes, args.per_kind)
        lines.append(f"(a) {args.minutes:g} min of 8 rooms, {args.per_kind} anomalies of each kind:\n{result.table()}")
        print(lines[-1], flush=True)
        if "b" not in skip:
            windows_s, alerts_s = cost_per_batch(session, s, sent)
            lines.append(
                f"(b) 80 readings per batch: median batch windows job {windows_s:.2f} s, alert job "
                f"{alerts_s:.2f} s: the alert job adds {alerts_s:.2f} s per batch "
                f"({alerts_s / windows_s:.2f}x the windows job)"
            )
        if "c" not in skip:
            p50, p99, n = latency(session, s, args.latency_seconds)
            lines.append(
                f"(c) real time, {n} anomalies: event time of the first anomalous reading -> alert in "
                f"{names.ALERTS_TOPIC}: p50 {p50:.2f} s, p99 {p99:.2f} s"
            )
        session.stop()
    finally:
        stack.down(s)
        shutil.rmtree(WORK, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
