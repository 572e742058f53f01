"""``labkit demo``: the whole pipeline once, end to end, in a few minutes.

1. start the embedded stack (MQTT, Kafka) unless it already runs;
2. create the topics and the SQLite rooms table;
3. simulate a few minutes of sensor time on the accelerated clock, with a sprinkle of faults
   (late, out-of-order, duplicated and malformed readings), through MQTT and a bridge running
   in the background, until Kafka has every message (``labkit.feed``);
4. run the Spark job until it has processed everything;
5. print windows per room, what went to the dead-letter topic, and where to look next;
6. stop what it started.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from labkit import feed, metadata, names, pipeline, simulator, spark, stack, topics, watch
from labkit import settings as settings_module

ROOMS = names.room_ids()


def run(minutes: float = 3, keep_running: bool = False, s: settings_module.Settings | None = None) -> None:
    s = s or settings_module.get()
    began = time.monotonic()
    already_up = all(st.healthy for st in stack.status(s))
    print("== 1. the stack")
    print(stack.format_status(stack.up(s)))
    try:
        print("\n== 2. topics and room metadata")
        topics.ensure_topics(topics.lab_topics(ROOMS), s=s)
        metadata.init_metadata(s.metadata_db)
        print(f"topics ready; rooms table in {s.metadata_db}")

        print(
            f"\n== 3. {minutes:g} minutes of sensor time, {len(ROOMS)} rooms, accelerated clock, "
            "through MQTT and the bridge (in the background) into Kafka"
        )
        messages = list(
            simulator.generate(
                rooms=ROOMS,
                start=_working_hours_start(minutes),
                duration=minutes * 60,
                late_fraction=0.01,
                out_of_order_fraction=0.03,
                duplicate_fraction=0.01,
                malformed_fraction=0.005,
            )
        )
        sent = feed.through_bridge(messages, ROOMS, s)  # waits until Kafka has every message, or says why not
        print(f"bridge: {sent.counters}")

        print("\n== 4. Spark: 10 s windows sliding 5 s -> Delta + downsampled topics")
        session = spark.get_session("labkit-demo", s)
        rows = pipeline.build(session, s, ROOMS, starting_offsets=json.dumps(sent.before), max_offsets_per_trigger=2000)
        query = pipeline.start(rows, s, trigger=None)
        try:
            watch.run_until_caught_up(query, ROOMS, s=s)
        finally:
            query.stop()

        print("\n== 5. results")
        _show_results(session, s)
        session.stop()
    finally:
        if not keep_running and not already_up:
            print("\n== stopping the stack this demo started")
            stack.down(s)
    print(f"\ndemo finished in {time.monotonic() - began:.0f} s")


def _working_hours_start(minutes: float) -> datetime:
    """Today at 10:00 UTC (yesterday's, if that is still ahead): offices full, lights on.

    Event time is the sensors' clock, not Kafka's: readings from this morning are fine.
    """
    now = datetime.now(timezone.utc)
    start = now.replace(hour=10, minute=0, second=0, microsecond=0)
    if start + timedelta(minutes=minutes) > now:
        start -= timedelta(days=1)
    return start


def _show_results(session, s: settings_module.Settings) -> None:
    from pyspark.sql import functions as F

    table = s.table_path(names.AGGREGATE_TABLE)
    windows = session.read.format("delta").load(table)
    (
        windows.groupBy("room_id", "room_name")
        .agg(
            F.count("*").alias("windows"),
            F.round(F.avg("avg_temperature"), 1).alias("avg_temp_c"),
            F.max("max_co2").alias("max_co2_ppm"),
            F.max("max_occupancy").alias("max_people"),
            F.sum("motion_events").alias("motion_events"),
        )
        .orderBy("room_id")
        .show(truncate=False)
    )
    dead = topics.last_messages(names.DLQ_TOPIC, 3, s)
    if dead:
        print(f"last rejected readings ({names.DLQ_TOPIC}):")
        for m in dead:
            print(f"  {m.headers.get('reason')}: {m.headers.get('error')}")
    sample = topics.last_messages(names.downsampled_topic(ROOMS[0]), 1, s)
    if sample:
        print(f"\nlatest message on {names.downsampled_topic(ROOMS[0])}:\n  {sample[0].text()}")
    print(f"""
Where to look next:
  Delta table      {table}   (history: labkit.lake.history(spark, path))
  checkpoints      {s.checkpoint_path("<query name>")}
  broker logs      {s.state_dir / "logs"}
  the lessons      make lab   (JupyterLab on notebooks/)
  by hand          labkit up; labkit bridge & labkit simulate --realtime & labkit stream""")
