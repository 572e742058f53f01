"""The ``labkit`` command line: a thin layer over the library's functions.

Each subcommand calls one function a notebook could call too, so the terminal and the
notebooks do the same things the same way. A :class:`~labkit.errors.LabkitError` is printed as
``error:`` and ``next:`` lines, without a traceback, and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import sys

from labkit import names
from labkit import settings as settings_module
from labkit.errors import LabkitError


def cmd_up(args: argparse.Namespace) -> None:
    from labkit import stack

    print(stack.format_status(stack.up(spark_cluster=args.spark_cluster)))


def cmd_down(args: argparse.Namespace) -> None:
    from labkit import stack

    if not stack.down():
        print("nothing was running")


def cmd_status(args: argparse.Namespace) -> None:
    from labkit import stack

    statuses = stack.status()
    print(stack.format_status(statuses))
    if args.check and not all(st.healthy for st in statuses):
        raise LabkitError("some services are not healthy", "run `labkit up`")


def cmd_settings(args: argparse.Namespace) -> None:
    print(settings_module.describe())


def cmd_jars(args: argparse.Namespace) -> None:
    from labkit.stack import jars

    for group in args.groups:
        files = jars.resolve(group)
        print(f"{group}: {len(files)} jars in {files[0].parent if files else '-'}")


def cmd_topics(args: argparse.Namespace) -> None:
    from labkit import topics

    lab_topics = topics.lab_topics(names.room_ids(args.rooms))
    topics.ensure_topics(lab_topics)
    print(f"{len(lab_topics)} topics ready (retention {names.RETENTION_MS // 3_600_000} h): {', '.join(lab_topics)}")


def cmd_init_metadata(args: argparse.Namespace) -> None:
    from labkit import metadata

    path = metadata.init_metadata(n_rooms=args.rooms)
    print(f"rooms table ready in {path} ({len(metadata.read_rooms(path))} rooms)")


def simulation(args: argparse.Namespace):
    """``labkit simulate``'s messages (a generator) and the labels of the anomalies it injects."""
    from labkit import schema, simulator

    if args.start:
        start = schema.parse_timestamp(args.start)
    else:
        start = simulator.default_start(args.realtime, args.count, args.duration, args.interval)
    anomalies = [simulator.Anomaly.parse(text) for text in args.anomaly]
    messages = simulator.generate(
        rooms=names.room_ids(args.rooms), start=start, count=args.count, duration=args.duration,
        interval=args.interval, seed=args.seed, late_fraction=args.late, out_of_order_fraction=args.out_of_order,
        duplicate_fraction=args.duplicates, malformed_fraction=args.malformed, anomalies=anomalies,
    )  # fmt: skip
    return messages, simulator.anomaly_labels(anomalies, start)


def cmd_simulate(args: argparse.Namespace) -> None:
    from labkit import simulator

    messages, labels = simulation(args)
    if args.labels:
        simulator.write_labels(args.labels, labels)
        print(f"{len(labels)} anomaly labels written to {args.labels}")
    simulator.publish(messages, realtime=args.realtime)


def cmd_bridge(args: argparse.Namespace) -> None:
    from labkit import bridge, stack

    s = settings_module.get()
    if s.embedded and stack.running_mqtt_broker(s) == "amqtt":  # it cannot keep the bridge's promise
        print(f"bridge: WARNING: {stack.AMQTT_CAVEAT}", flush=True)
    bridge.run_until_signal(room_count=args.rooms, idle_exit=args.exit_when_idle, client_id=args.client_id)


def cmd_stream(args: argparse.Namespace) -> None:
    import signal

    from labkit import metadata, pipeline, spark, watch

    s = settings_module.get()
    if not s.metadata_db.exists():  # the job joins with the rooms table: create it on a fresh machine
        print(f"rooms table ready in {metadata.init_metadata(s.metadata_db)}")
    session = spark.get_session(f"labkit-stream-{args.query_name}")
    room_ids = names.room_ids(args.rooms)
    rows = pipeline.build(session, s, room_ids, window=args.window, slide=args.slide, watermark=args.watermark,
                          starting_offsets=args.starting_offsets,
                          max_offsets_per_trigger=args.max_offsets_per_trigger)  # fmt: skip
    table = args.table or s.table_path(names.AGGREGATE_TABLE)
    query = pipeline.start(rows, s, query_name=args.query_name, table_path=table,
                           trigger=args.trigger or None, to_kafka=not args.no_kafka)  # fmt: skip
    print(f"streaming into {table} (checkpoint {s.checkpoint_path(args.query_name)}); Ctrl-C stops")
    signal.signal(signal.SIGTERM, lambda *_: query.stop())
    try:
        if args.until_caught_up:
            watch.run_until_caught_up(query, room_ids, timeout=args.timeout)
        else:
            watch.follow(query)
    except KeyboardInterrupt:
        pass
    finally:
        query.stop()
        session.stop()
    if query.exception() is not None:
        raise LabkitError(f"the streaming query failed: {query.exception()}", "read the error above; "
                          "`labkit status` checks the brokers")  # fmt: skip


def cmd_alerts(args: argparse.Namespace) -> None:
    import signal

    from labkit import alerts, metadata, spark, watch

    s = settings_module.get()
    if not s.metadata_db.exists():  # the job joins with the rooms and thresholds tables
        print(f"rooms and thresholds ready in {metadata.init_metadata(s.metadata_db)}")
    session = spark.get_session(f"labkit-alerts-{args.query_name}")
    room_ids = names.room_ids(args.rooms)
    rows = alerts.build(session, s, room_ids, watermark=args.watermark, starting_offsets=args.starting_offsets,
                        max_offsets_per_trigger=args.max_offsets_per_trigger)  # fmt: skip
    table = args.table or s.table_path(names.ALERTS_TABLE)
    query = alerts.start(rows, s, query_name=args.query_name, table_path=table, trigger=args.trigger or None)
    print(f"alerts into {table} and {names.ALERTS_TOPIC} (checkpoint {s.checkpoint_path(args.query_name)}); "
          "Ctrl-C stops")  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: query.stop())
    try:
        if args.until_caught_up:
            watch.run_until_caught_up(query, room_ids, timeout=args.timeout)
        else:
            watch.follow(query)
    except KeyboardInterrupt:
        pass
    finally:
        query.stop()
        session.stop()
    if query.exception() is not None:
        raise LabkitError(f"the alert query failed: {query.exception()}", "read the error above; "
                          "`labkit status` checks the brokers")  # fmt: skip


def cmd_demo(args: argparse.Namespace) -> None:
    from labkit import demo

    demo.run(minutes=args.minutes, keep_running=args.keep_running)


def room_count(text: str) -> int:
    """``--rooms``: a whole number of rooms, at least one (argparse prints the error and the usage)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rooms") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"a building needs at least one room, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    # The defaults come from the modules that own them, so `--help` and the library agree.
    from labkit import bridge, pipeline, rooms, simulator

    parser = argparse.ArgumentParser(prog="labkit", description="Smart-building streaming lab")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="start the embedded stack (MQTT, Kafka); compose: check it")
    p.add_argument("--spark-cluster", action="store_true", help="also start a Spark master and worker")
    p.set_defaults(func=cmd_up)

    sub.add_parser("down", help="stop what `up` started").set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="each service, its endpoint, pid and health")
    p.add_argument("--check", action="store_true", help="exit with status 1 unless all are healthy")
    p.set_defaults(func=cmd_status)

    sub.add_parser("settings", help="the profile, endpoints and paths in use").set_defaults(func=cmd_settings)

    p = sub.add_parser("jars", help="fetch the Maven artifacts into the local cache")
    p.add_argument("groups", nargs="*", default=["spark", "kafka"], help="spark, kafka, s3a")
    p.set_defaults(func=cmd_jars)

    p = sub.add_parser("topics", help="create the raw, downsampled and dead-letter topics")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("init-metadata", help="create the SQLite rooms table (idempotent)")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.set_defaults(func=cmd_init_metadata)

    p = sub.add_parser("simulate", help="publish sensor readings over MQTT")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT,
                   help="number of rooms (beyond 8, profiles repeat)")
    p.add_argument("--duration", type=float, help="seconds of sensor time (default: run until Ctrl-C)")
    p.add_argument("--count", type=int, help="readings per room, instead of --duration")
    p.add_argument("--interval", type=float, default=simulator.PUBLISH_INTERVAL, help="seconds between readings of a room")
    p.add_argument("--seed", type=int, default=rooms.DEFAULT_SEED)
    p.add_argument("--start", help="event time of the first reading, e.g. 2026-01-30T09:00:00.000Z "
                   "(default: now with --realtime, else the run's length before now, so it ends now)")
    p.add_argument("--realtime", action="store_true", help="publish on the wall clock (else: as fast as acknowledged)")
    p.add_argument("--late", type=float, default=0.0, help="fraction of readings sent late")
    p.add_argument("--out-of-order", type=float, default=0.0, help="fraction sent slightly out of order")
    p.add_argument("--duplicates", type=float, default=0.0, help="fraction sent twice")
    p.add_argument("--malformed", type=float, default=0.0, help="fraction replaced by broken payloads")
    p.add_argument("--anomaly", action="append", default=[], metavar="KIND:ROOM:START_S:DURATION_S",
                   help=f"inject an anomaly ({', '.join(simulator.ANOMALY_KINDS)}), e.g. spike:room_4:60:10; "
                   "repeatable")
    p.add_argument("--labels", metavar="FILE", help="write the anomalies' labels (ground truth) to this JSON file")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("bridge", help=f"move MQTT readings into Kafka (invalid ones to {names.DLQ_TOPIC})")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT,
                   help="rooms the building has (others are rejected)")
    p.add_argument("--exit-when-idle", type=float, help="stop after this many seconds without messages")
    p.add_argument("--client-id", default=bridge.DEFAULT_CLIENT_ID, help="MQTT client id: names the persistent session")
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("stream", help="run the Spark job: windows per room -> Delta + downsampled topics")
    p.add_argument("--trigger", default="5 seconds", help='micro-batch interval, e.g. "5 seconds"; "" = as fast as possible')
    p.add_argument("--max-offsets-per-trigger", type=int, help="cap on records per micro-batch")
    p.add_argument("--starting-offsets", default="earliest", help="earliest, latest, or Spark's JSON of offsets")
    p.add_argument("--window", default=pipeline.WINDOW)
    p.add_argument("--slide", default=pipeline.SLIDE)
    p.add_argument("--watermark", default=pipeline.WATERMARK, help="how late a reading may arrive")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.add_argument("--query-name", default=names.AGGREGATE_QUERY, help="names the checkpoint")
    p.add_argument("--table", help=f"Delta table path (default: <lake>/{names.AGGREGATE_TABLE})")
    p.add_argument("--no-kafka", action="store_true", help="write Delta only, not the downsampled topics")
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka is processed")
    p.add_argument("--timeout", type=float, default=900, help="with --until-caught-up: give up after seconds")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("alerts", help=f"run the alert job: raw readings -> {names.ALERTS_TOPIC} + Delta alerts")
    p.add_argument("--trigger", default="5 seconds", help='micro-batch interval; "" = as fast as possible')
    p.add_argument("--max-offsets-per-trigger", type=int, help="cap on records per micro-batch")
    p.add_argument("--starting-offsets", default="latest", help="latest (the default: alerts are about now), "
                   "earliest, or Spark's JSON of offsets")
    p.add_argument("--watermark", default=pipeline.WATERMARK, help="how late a reading may arrive")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.add_argument("--query-name", default=names.ALERTS_QUERY, help="names the checkpoint")
    p.add_argument("--table", help=f"Delta table path (default: <lake>/{names.ALERTS_TABLE})")
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka is processed")
    p.add_argument("--timeout", type=float, default=900, help="with --until-caught-up: give up after seconds")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("demo", help="the whole pipeline end to end, in a few minutes")
    p.add_argument("--minutes", type=float, default=3, help="minutes of sensor time to simulate")
    p.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except LabkitError as error:
        print(f"error: {error.what}", file=sys.stderr)
        if error.next_step:
            print(f"next: {error.next_step}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
