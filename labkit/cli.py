"""The ``labkit`` command line: a thin layer over the library's functions.

Each subcommand calls one function a notebook could call too, so the terminal and the
notebooks do the same things the same way. A :class:`~labkit.errors.LabkitError` is printed as
``error:`` and ``next:`` lines, without a traceback, and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from labkit import names
from labkit import settings as settings_module
from labkit.errors import LabkitError

# ---------------------------------------------------------------- checked option values
#
# Each option is checked by argparse as it is read (its ``type``), so a wrong value stops the
# command at once with one line saying what is wrong, before a broker or Spark is contacted.


class Parser(argparse.ArgumentParser):
    """argparse with labkit's ``error:`` / ``next:`` lines instead of a usage dump."""

    def error(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        print(f"next: `{self.prog} --help` lists the options and their values", file=sys.stderr)
        sys.exit(2)


def room_count(text: str) -> int:
    """``--rooms``: a whole number of rooms, at least one."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rooms") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"a building needs at least one room, got {n}")
    return n


def positive_int(text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def port_number(text: str) -> int:
    """``--port``: a TCP port, 1 to 65535."""
    if not re.fullmatch(r"\s*\d+\s*", text) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return int(text)


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return number


def fraction(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1 (e.g. 0.02)")
    return number


def timestamp(text: str) -> str:
    from labkit import schema

    try:
        schema.parse_timestamp(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def anomaly(text: str) -> str:
    """``--anomaly``: KIND:ROOM:START_S:DURATION_S (labkit.simulator.Anomaly), checked at parse time."""
    from labkit import simulator

    try:
        simulator.Anomaly.parse(text)
    except LabkitError as error:
        raise argparse.ArgumentTypeError(f"{error.what}: {error.next_step}") from None
    return text


SECONDS_PER_UNIT = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_INTERVAL_PART = r"(\d+(?:\.\d+)?)\s*(" + "|".join(SECONDS_PER_UNIT) + r")s?"


def interval_seconds(text: str) -> float:
    """Seconds in a Spark interval such as ``10 seconds`` or ``1 minute 30 seconds``."""
    if not re.fullmatch(rf"\s*{_INTERVAL_PART}(\s+{_INTERVAL_PART})*\s*", text, re.IGNORECASE):
        return 0.0
    return sum(float(n) * SECONDS_PER_UNIT[u.lower()] for n, u in re.findall(_INTERVAL_PART, text, re.IGNORECASE))


def spark_interval(text: str) -> str:
    if interval_seconds(text) <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a duration above 0 such as "10 seconds" or "1 minute"')
    return text


def trigger_interval(text: str) -> str:
    return text if text == "" else spark_interval(text)


def starting_offsets(text: str) -> str:
    if text in ("earliest", "latest"):
        return text
    try:
        offsets = json.loads(text)
    except ValueError:
        offsets = None
    if not isinstance(offsets, dict):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not earliest, latest or a JSON object of offsets "
            '(e.g. \'{"telemetry.room_1": {"0": 42}}\')'
        )
    return text


def listen_host(text: str) -> str:
    """``dashboard --host``: an IP address or a host name, without a port or a scheme."""
    if not re.fullmatch(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or IP address (e.g. 127.0.0.1, 0.0.0.0)")
    return text


def browser_origin(text: str) -> str:
    """``dashboard --allow-origin``: ``host:port`` as the browser's address bar shows it."""
    if not re.fullmatch(r"[A-Za-z0-9.-]+:\d{1,5}|\*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port (e.g. 127.0.0.1:5006)")
    return text


def postgres_dsn(text: str) -> str:
    """``to-postgres --dsn``: a libpq connection string, checked by libpq's own parser."""
    from psycopg import conninfo

    try:
        conninfo.conninfo_to_dict(text)
    except Exception as error:  # psycopg's ProgrammingError: the message says what is wrong
        raise argparse.ArgumentTypeError(f"{text!r} is not a libpq connection string: {error}") from None
    return text


def query_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a name of letters, digits, _ . or - (it names a folder)")
    return text


def table_location(text: str) -> str:
    try:
        settings_module.check_location("--table", text)
    except LabkitError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error.next_step}") from None
    if "://" not in text:
        existing = next(p for p in [Path(text).absolute(), *Path(text).absolute().parents] if p.exists())
        if not existing.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} lies inside {existing}, which is a file, not a folder")
    return text


def labels_file(text: str) -> str:
    """``--labels``: a JSON file to write, in a folder that exists."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder: give a file name, e.g. {path / 'labels.json'}")
    if not path.absolute().parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: its folder {path.absolute().parent} does not exist")
    return text


def jar_group(text: str) -> str:
    # (argparse's choices= would also check the default list of nargs="*" against the choices)
    if text not in ("spark", "kafka", "s3a"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a group of jars: use spark, kafka or s3a")
    return text


def client_id(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the client id is empty: it names the bridge's persistent session")
    return text


def cmd_up(args: argparse.Namespace) -> None:
    from labkit import doctor, stack

    doctor.require_before_up(settings_module.get())
    print(stack.format_status(stack.up(spark_cluster=args.spark_cluster)))


def cmd_down(args: argparse.Namespace) -> None:
    from labkit import stack

    if not stack.down():
        print("nothing was running")


def cmd_status(args: argparse.Namespace) -> None:
    from labkit import stack

    statuses = stack.status()
    print(stack.format_status(statuses))
    broken = [st for st in statuses if not st.healthy]
    if args.check and broken:
        raise LabkitError(
            "not healthy: " + ", ".join(f"{st.name} at {st.endpoint}" for st in broken), "run `labkit up`"
        )


def cmd_settings(args: argparse.Namespace) -> None:
    print(settings_module.describe())


def cmd_doctor(args: argparse.Namespace) -> None:
    from labkit import doctor

    s = settings_module.get()
    checks = doctor.run(s, args.path)
    print(doctor.format_table(checks))
    # "both" shows both paths, but only the one in use (LABKIT_PROFILE) can stop you
    doctor.require(checks, args.path if args.path != "both" else ("embedded" if s.embedded else "docker"))


def cmd_jars(args: argparse.Namespace) -> None:
    from labkit.stack import jars

    for group in args.groups:
        files = jars.resolve(group)
        print(f"{group}: {len(files)} jars in {files[0].parent if files else '-'}")
    if "spark" in args.groups and not args.no_class_archive:
        from labkit import spark

        s = settings_module.get()
        if not spark.class_archive(s).exists():
            print("spark: recording the classes Spark's JVM loads, so it starts faster (~1 min, once)", flush=True)
        started = time.monotonic()
        try:
            archive = spark.build_class_archive(s)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            # Spark works without it, only slower to start: say so, and do not fail the setup.
            print(f"spark: no class archive ({error}); Spark starts as usual, 3-4 s slower")
        else:
            print(f"spark: class archive {archive} ({time.monotonic() - started:.0f} s)")


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
        rooms=names.room_ids(args.rooms),
        start=start,
        count=args.count,
        duration=args.duration,
        interval=args.interval,
        seed=args.seed,
        late_fraction=args.late,
        out_of_order_fraction=args.out_of_order,
        duplicate_fraction=args.duplicates,
        malformed_fraction=args.malformed,
        anomalies=anomalies,
    )
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

    from labkit import metadata, pipeline, quality, rollups, spark, topics, watch

    s = settings_module.get()
    if interval_seconds(args.slide) > interval_seconds(args.window):
        raise LabkitError(
            f"--slide {args.slide!r} is longer than --window {args.window!r}",
            "give a slide no longer than the window (a window of 10 seconds can slide 5 seconds)",
        )
    topics.require_broker(s)  # at once, before Spark starts (Spark would fail a minute later, at length)
    if not s.metadata_db.exists():  # the job joins with the rooms table: create it on a fresh machine
        print(f"rooms table ready in {metadata.init_metadata(s.metadata_db)}")
    # A job that runs until stopped gets the JVM's full compiler; a catch-up run (a restart after a
    # crash, a lesson's step) is over in seconds to minutes, and the quick one serves it better
    # (983 readings: 25-28 s instead of 32-33 s, three A/B pairs on 2026-12-07).
    session = spark.get_session(f"labkit-stream-{args.query_name}", long_running=not args.until_caught_up)
    room_ids = names.room_ids(args.rooms)
    rows = pipeline.build(
        session,
        s,
        room_ids,
        window=args.window,
        slide=args.slide,
        watermark=args.watermark,
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
    )
    table = args.table or s.table_path(names.AGGREGATE_TABLE)
    if args.constraints:  # a broken window stops the job, with the reason
        added = quality.add_constraints(session, table)
        if added:
            print(f"CHECK constraints on {table}: {', '.join(added)}")
    quality.watch_quality(session, args.query_name, s)  # data-quality alerts to telemetry.alerts
    query = pipeline.start(
        rows, s, query_name=args.query_name, table_path=table, trigger=args.trigger or None, to_kafka=not args.no_kafka
    )
    print(f"streaming into {table} (checkpoint {s.checkpoint_path(args.query_name)}); Ctrl-C stops")
    beside = rollups.start_all(session, s, source_path=table) if args.rollups else []
    for rollup in beside:
        print(f"rolling {table} up into {s.table_path(rollup.name)} (checkpoint {s.checkpoint_path(rollup.name)})")

    def stop_all(*_) -> None:
        for running in [query, *beside]:
            watch.stop_between_batches(running)

    signal.signal(signal.SIGTERM, stop_all)
    try:
        if args.until_caught_up:
            watch.run_until_caught_up(query, room_ids, timeout=args.timeout)
            for rollup in beside:
                watch.run_until_idle(rollup, timeout=args.timeout)
        else:
            watch.follow(query)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()
        session.stop()
    if query.exception() is not None:
        raise LabkitError(
            f"the streaming query failed: {query.exception()}",
            "read the error above; `labkit status` checks the brokers",
        )


def cmd_alerts(args: argparse.Namespace) -> None:
    import signal

    from labkit import alerts, metadata, spark, topics, watch

    s = settings_module.get()
    topics.require_broker(s)  # at once, before Spark starts (Spark would fail a minute later, at length)
    if not s.metadata_db.exists():  # the job joins with the rooms and thresholds tables
        print(f"rooms and thresholds ready in {metadata.init_metadata(s.metadata_db)}")
    session = spark.get_session(f"labkit-alerts-{args.query_name}", long_running=not args.until_caught_up)
    room_ids = names.room_ids(args.rooms)
    rows = alerts.build(
        session,
        s,
        room_ids,
        watermark=args.watermark,
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
    )
    table = args.table or s.table_path(names.ALERTS_TABLE)
    query = alerts.start(rows, s, query_name=args.query_name, table_path=table, trigger=args.trigger or None)
    print(
        f"alerts into {table} and {names.ALERTS_TOPIC} (checkpoint {s.checkpoint_path(args.query_name)}); Ctrl-C stops"
    )
    signal.signal(signal.SIGTERM, lambda *_: watch.stop_between_batches(query))
    try:
        if args.until_caught_up:
            watch.run_until_caught_up(query, room_ids, timeout=args.timeout)
        else:
            watch.follow(query)
    except KeyboardInterrupt:
        pass
    finally:
        watch.stop_between_batches(query)
        session.stop()
    if query.exception() is not None:
        raise LabkitError(
            f"the alert query failed: {query.exception()}", "read the error above; `labkit status` checks the brokers"
        )


def cmd_demo(args: argparse.Namespace) -> None:
    from labkit import demo, doctor

    doctor.require_before_up(settings_module.get())
    demo.run(minutes=args.minutes, keep_running=args.keep_running)


def cmd_dashboard(args: argparse.Namespace) -> None:
    from labkit import dashboard

    origins = args.allow_origin or None
    dashboard.Dashboard(
        host=args.host, port=args.port, n_rooms=args.rooms, allow_origins=origins, query_name=args.query_name
    ).serve_forever()


def cmd_to_postgres(args: argparse.Namespace) -> None:
    from labkit import warehouse

    loaded = warehouse.run(dsn=args.dsn, until_caught_up=args.until_caught_up, timeout=args.timeout)
    print(f"loaded {loaded['windows']} windows and {loaded['alerts']} alerts ({loaded['unreadable']} unreadable)")


def build_parser() -> argparse.ArgumentParser:
    # The defaults come from the modules that own them, so `--help` and the library agree.
    from labkit import bridge, pipeline, rooms, simulator

    parser = Parser(prog="labkit", description="Smart-building streaming lab")
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
    p.add_argument("groups", nargs="*", type=jar_group, default=["spark", "kafka"], help="spark, kafka, s3a")
    p.add_argument(
        "--no-class-archive",
        action="store_true",
        help="do not record Spark's class archive (only a driver on local[N] can use it)",
    )
    p.set_defaults(func=cmd_jars)

    p = sub.add_parser("topics", help="create the raw, downsampled and dead-letter topics")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("init-metadata", help="create the SQLite rooms table (idempotent)")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.set_defaults(func=cmd_init_metadata)

    p = sub.add_parser("simulate", help="publish sensor readings over MQTT")
    p.add_argument(
        "--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT, help="number of rooms (beyond 8, profiles repeat)"
    )
    p.add_argument("--duration", type=positive_float, help="seconds of sensor time (default: run until Ctrl-C)")
    p.add_argument("--count", type=positive_int, help="readings per room, instead of --duration")
    p.add_argument(
        "--interval", type=positive_float, default=simulator.PUBLISH_INTERVAL, help="seconds between readings of a room"
    )
    p.add_argument("--seed", type=whole_number, default=rooms.DEFAULT_SEED)
    p.add_argument(
        "--start",
        type=timestamp,
        help="event time of the first reading, e.g. 2026-01-30T09:00:00.000Z "
        "(default: now with --realtime, else the run's length before now, so it ends now)",
    )
    p.add_argument("--realtime", action="store_true", help="publish on the wall clock (else: as fast as acknowledged)")
    p.add_argument("--late", type=fraction, default=0.0, help="fraction of readings sent late")
    p.add_argument("--out-of-order", type=fraction, default=0.0, help="fraction sent slightly out of order")
    p.add_argument("--duplicates", type=fraction, default=0.0, help="fraction sent twice")
    p.add_argument("--malformed", type=fraction, default=0.0, help="fraction replaced by broken payloads")
    p.add_argument(
        "--anomaly",
        type=anomaly,
        action="append",
        default=[],
        metavar="KIND:ROOM:START_S:DURATION_S",
        help=f"inject an anomaly ({', '.join(simulator.ANOMALY_KINDS)}), e.g. spike:room_4:60:10; repeatable",
    )
    p.add_argument(
        "--labels",
        type=labels_file,
        metavar="FILE",
        help="write the anomalies' labels (ground truth) to this JSON file",
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("bridge", help=f"move MQTT readings into Kafka (invalid ones to {names.DLQ_TOPIC})")
    p.add_argument(
        "--rooms",
        type=room_count,
        default=names.DEFAULT_ROOM_COUNT,
        help="rooms the building has (others are rejected)",
    )
    p.add_argument("--exit-when-idle", type=positive_float, help="stop after this many seconds without messages")
    p.add_argument(
        "--client-id",
        type=client_id,
        default=bridge.DEFAULT_CLIENT_ID,
        help="MQTT client id: names the persistent session",
    )
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("stream", help="run the Spark job: windows per room -> Delta + downsampled topics")
    p.add_argument(
        "--trigger",
        type=trigger_interval,
        default=pipeline.TRIGGER,
        help='micro-batch interval, e.g. "5 seconds" (default: as fast as possible, the lowest latency: '
        'README, "Benchmarks")',
    )
    p.add_argument("--max-offsets-per-trigger", type=positive_int, help="cap on records per micro-batch")
    p.add_argument(
        "--starting-offsets",
        type=starting_offsets,
        default="earliest",
        help="earliest, latest, or Spark's JSON of offsets",
    )
    p.add_argument("--window", type=spark_interval, default=pipeline.WINDOW)
    p.add_argument("--slide", type=spark_interval, default=pipeline.SLIDE)
    p.add_argument("--watermark", type=spark_interval, default=pipeline.WATERMARK, help="how late a reading may arrive")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.add_argument("--query-name", type=query_name, default=names.AGGREGATE_QUERY, help="names the checkpoint")
    p.add_argument("--table", type=table_location, help=f"Delta table path (default: <lake>/{names.AGGREGATE_TABLE})")
    p.add_argument("--no-kafka", action="store_true", help="write Delta only, not the downsampled topics")
    p.add_argument(
        "--constraints",
        action="store_true",
        help="add CHECK constraints to the table first (a new table gets them in its first version): a broken window stops the job",
    )
    p.add_argument(
        "--rollups",
        action="store_true",
        help=f"also roll the table up into {names.ROLLUP_1M_TABLE} and {names.ROLLUP_5M_TABLE} (Delta as a source)",
    )
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka is processed")
    p.add_argument("--timeout", type=positive_float, default=900, help="with --until-caught-up: give up after seconds")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("alerts", help=f"run the alert job: raw readings -> {names.ALERTS_TOPIC} + Delta alerts")
    p.add_argument(
        "--trigger", type=trigger_interval, default="5 seconds", help='micro-batch interval; "" = as fast as possible'
    )
    p.add_argument("--max-offsets-per-trigger", type=positive_int, help="cap on records per micro-batch")
    p.add_argument(
        "--starting-offsets",
        type=starting_offsets,
        default="latest",
        help="latest (the default: alerts are about now), earliest, or Spark's JSON of offsets",
    )
    p.add_argument("--watermark", type=spark_interval, default=pipeline.WATERMARK, help="how late a reading may arrive")
    p.add_argument("--rooms", type=room_count, default=names.DEFAULT_ROOM_COUNT)
    p.add_argument("--query-name", type=query_name, default=names.ALERTS_QUERY, help="names the checkpoint")
    p.add_argument("--table", type=table_location, help=f"Delta table path (default: <lake>/{names.ALERTS_TABLE})")
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka is processed")
    p.add_argument("--timeout", type=positive_float, default=900, help="with --until-caught-up: give up after seconds")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("demo", help="the whole pipeline end to end, in a few minutes")
    p.add_argument("--minutes", type=positive_float, default=3, help="minutes of sensor time to simulate")
    p.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("doctor", help="is this machine ready? Java, Mosquitto, ports, memory, disk, jars, Docker")
    p.add_argument(
        "--for",
        dest="path",
        choices=["embedded", "docker", "both"],
        default="both",
        help="the embedded stack, the Docker workshop, or both (default)",
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("dashboard", help="the live building in a browser (downsampled topics, alerts, DLQ, progress)")
    p.add_argument(
        "--host", type=listen_host, default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)"
    )
    p.add_argument("--port", type=port_number, default=5006)
    p.add_argument(
        "--rooms",
        type=room_count,
        default=names.DEFAULT_ROOM_COUNT,
        help="rooms listed before their first window arrives",
    )
    p.add_argument(
        "--query-name",
        type=query_name,
        default=names.AGGREGATE_QUERY,
        help="the stream job whose checkpoint shows progress",
    )
    p.add_argument(
        "--allow-origin", type=browser_origin, action="append", help="host:port the page may be opened as (repeatable)"
    )
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("to-postgres", help="load the downsampled and alert topics into PostgreSQL (for Grafana)")
    p.add_argument(
        "--dsn", type=postgres_dsn, default="", help="libpq connection string (default: PGHOST, PGPORT, PGUSER, ...)"
    )
    p.add_argument("--until-caught-up", action="store_true", help="stop once everything in Kafka now is loaded")
    p.add_argument("--timeout", type=positive_float, help="with --until-caught-up: give up after seconds")
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
