"""The ``labkit`` command line: a thin layer over the library's functions.

Each subcommand calls one function a notebook could call too, so the terminal and the
notebooks do the same things the same way. A :class:`~labkit.errors.LabkitError` is printed as
``error:`` and ``next:`` lines, without a traceback, and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import sys

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
    from labkit import jars

    for group in args.groups:
        files = jars.resolve(group)
        print(f"{group}: {len(files)} jars in {files[0].parent if files else '-'}")


def cmd_topics(args: argparse.Namespace) -> None:
    from labkit import rooms, topics

    names = topics.lab_topics(rooms.room_ids(args.rooms))
    topics.ensure_topics(names)
    print(f"{len(names)} topics ready (retention {topics.RETENTION_MS // 3_600_000} h): {', '.join(names)}")


def cmd_init_metadata(args: argparse.Namespace) -> None:
    from labkit import metadata

    path = metadata.init_metadata(n_rooms=args.rooms)
    print(f"rooms table ready in {path} ({len(metadata.read_rooms(path))} rooms)")


def cmd_simulate(args: argparse.Namespace) -> None:
    from datetime import datetime, timezone

    from labkit import rooms, schema, simulator

    start = schema.parse_timestamp(args.start) if args.start else datetime.now(timezone.utc)
    messages = simulator.generate(
        rooms=rooms.room_ids(args.rooms), start=start, count=args.count, duration=args.duration,
        interval=args.interval, seed=args.seed, late_fraction=args.late, out_of_order_fraction=args.out_of_order,
        duplicate_fraction=args.duplicates, malformed_fraction=args.malformed,
    )  # fmt: skip
    simulator.publish(messages, realtime=args.realtime)


def cmd_bridge(args: argparse.Namespace) -> None:
    from labkit import bridge

    bridge.run_until_signal(room_count=args.rooms, idle_exit=args.exit_when_idle, client_id=args.client_id)


def cmd_stream(args: argparse.Namespace) -> None:
    import signal
    import time

    from labkit import pipeline, rooms, spark

    s = settings_module.get()
    session = spark.get_session(f"labkit-stream-{args.query_name}")
    room_ids = rooms.room_ids(args.rooms)
    rows = pipeline.build(session, s, room_ids, window=args.window, slide=args.slide, watermark=args.watermark,
                          starting_offsets=args.starting_offsets,
                          max_offsets_per_trigger=args.max_offsets_per_trigger)  # fmt: skip
    table = args.table or s.table_path(pipeline.TABLE_NAME)
    query = pipeline.start(rows, s, query_name=args.query_name, table_path=table,
                           trigger=args.trigger or None, to_kafka=not args.no_kafka)  # fmt: skip
    print(f"streaming into {table} (checkpoint {s.checkpoint_path(args.query_name)}); Ctrl-C stops")
    signal.signal(signal.SIGTERM, lambda *_: query.stop())
    try:
        if args.until_caught_up:
            pipeline.run_until_caught_up(query, room_ids, timeout=args.timeout)
        else:
            last = None
            while query.isActive:
                progress = query.lastProgress
                if progress and progress["batchId"] != last:
                    last = progress["batchId"]
                    print(pipeline.describe_progress(progress), flush=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        query.stop()
        session.stop()
    if query.exception() is not None:
        raise LabkitError(f"the streaming query failed: {query.exception()}", "read the error above; "
                          "`labkit status` checks the brokers")  # fmt: skip


def cmd_demo(args: argparse.Namespace) -> None:
    from labkit import demo

    demo.run(minutes=args.minutes, keep_running=args.keep_running)


def cmd_dashboard(args: argparse.Namespace) -> None:
    from labkit import dashboard

    origins = args.allow_origin or None
    dashboard.Dashboard(host=args.host, port=args.port, n_rooms=args.rooms, allow_origins=origins,
                        query_name=args.query_name).serve_forever()  # fmt: skip


def cmd_to_postgres(args: argparse.Namespace) -> None:
    from labkit import warehouse

    loaded = warehouse.run(dsn=args.dsn, until_caught_up=args.until_caught_up, timeout=args.timeout)
    print(f"loaded {loaded['windows']} windows and {loaded['alerts']} alerts ({loaded['unreadable']} unreadable)")


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--rooms", type=int, default=8)
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("init-metadata", help="create the SQLite rooms table (idempotent)")
    p.add_argument("--rooms", type=int, default=8)
    p.set_defaults(func=cmd_init_metadata)

    p = sub.add_parser("simulate", help="publish sensor readings over MQTT")
    p.add_argument("--rooms", type=int, default=8, help="number of rooms (beyond 8, profiles repeat)")
    p.add_argument("--duration", type=float, help="seconds of sensor time (default: run until Ctrl-C)")
    p.add_argument("--count", type=int, help="readings per room, instead of --duration")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between readings of a room")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--start", help="event time of the first reading, e.g. 2026-01-30T09:00:00.000Z (default: now)")
    p.add_argument("--realtime", action="store_true", help="publish on the wall clock (else: as fast as acknowledged)")
    p.add_argument("--late", type=float, default=0.0, help="fraction of readings sent late")
    p.add_argument("--out-of-order", type=float, default=0.0, help="fraction sent slightly out of order")
    p.add_argument("--duplicates", type=float, default=0.0, help="fraction sent twice")
    p.add_argument("--malformed", type=float, default=0.0, help="fraction replaced by broken payloads")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("bridge", help="move MQTT readings into Kafka (invalid ones to telemetry.dlq)")
    p.add_argument("--rooms", type=int, default=8, help="rooms the building has (others are rejected)")
    p.add_argument("--exit-when-idle", type=float, help="stop after this many seconds without messages")
    p.add_argument("--client-id", default="labkit-bridge", help="MQTT client id: names the persistent session")
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("stream", help="run the Spark job: windows per room -> Delta + downsampled topics")
    p.add_argument("--trigger", default="5 seconds", help='micro-batch interval, e.g. "5 seconds"; "" = as fast as possible')
    p.add_argument("--max-offsets-per-trigger", type=int, help="cap on records per micro-batch")
    p.add_argument("--starting-offsets", default="earliest", help="earliest, latest, or Spark's JSON of offsets")
    p.add_argument("--window", default="10 seconds")
    p.add_argument("--slide", default="5 seconds")
    p.add_argument("--watermark", default="10 seconds", help="how late a reading may arrive")
    p.add_argument("--rooms", type=int, default=8)
    p.add_argument("--query-name", default="telemetry_5s_agg", help="names the checkpoint")
    p.add_argument("--table", help="Delta table path (default: <lake>/telemetry_5s_agg)")
    p.add_argument("--no-kafka", action="store_true", help="write Delta only, not the downsampled topics")
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka is processed")
    p.add_argument("--timeout", type=float, default=900, help="with --until-caught-up: give up after seconds")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("demo", help="the whole pipeline end to end, in a few minutes")
    p.add_argument("--minutes", type=float, default=3, help="minutes of sensor time to simulate")
    p.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dashboard", help="the live building in a browser (downsampled topics, alerts, DLQ, progress)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--rooms", type=int, default=8, help="rooms listed before their first window arrives")
    p.add_argument("--query-name", default="telemetry_5s_agg", help="the stream job whose checkpoint shows progress")
    p.add_argument("--allow-origin", action="append", help="host:port the page may be opened as (repeatable)")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("to-postgres", help="load the downsampled and alert topics into PostgreSQL (for Grafana)")
    p.add_argument("--dsn", default="", help="libpq connection string (default: PGHOST, PGPORT, PGUSER, ...)")
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka now is loaded")
    p.add_argument("--timeout", type=float, help="with --until-caught-up: give up after seconds")
    p.set_defaults(func=cmd_to_postgres)
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
