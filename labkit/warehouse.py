"""The windows and alerts into PostgreSQL, where Grafana reads them: ``labkit to-postgres``.

Grafana has no built-in Kafka data source, and a dashboard wants history: PostgreSQL keeps it,
runs offline once its image is pulled, and Grafana's PostgreSQL data source is built in. This
small consumer (labkit.downstream) loads the downsampled topics and ``telemetry.alerts`` into
two tables:

* ``telemetry_windows``: one row per window, keyed exactly like the downsampled messages,
  ``(room_id, window_start)``. The topics deliver *at least once*; the load is an *upsert*
  (``INSERT ... ON CONFLICT DO UPDATE``), so a repeated message changes nothing.
* ``telemetry_alerts``: one row per alert message, keyed by its Kafka position (the alert's
  own fields belong to the alerts job and are kept whole in a ``jsonb`` column).

Where it has read up to is stored *in PostgreSQL too*, in ``kafka_positions``, in the same
transaction as the rows: a loader killed at any moment resumes exactly where its last commit
ended. Connection settings come from libpq's usual variables (``PGHOST``, ``PGPORT``,
``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``) or ``--dsn``.
"""

from __future__ import annotations

import json
import time

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from labkit import downstream, names, schema
from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.progress import Ticker

WINDOWS_TABLE = "telemetry_windows"
ALERTS_TABLE = "telemetry_alerts"
SQL_TYPES = {
    "timestamp": "timestamptz",
    "string": "text",
    "integer": "integer",
    "long": "bigint",
    "double": "double precision",
}
KEY = ("room_id", "window_start")


def create_tables_sql() -> str:
    columns = ",\n  ".join(
        f"{name} {SQL_TYPES[kind]}" + (" NOT NULL" if name in KEY else "") for name, kind in schema.AGGREGATE_FIELDS
    )
    return f"""
CREATE TABLE IF NOT EXISTS {WINDOWS_TABLE} (
  {columns},
  loaded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, window_start)
);
CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} (
  kafka_partition integer NOT NULL,
  kafka_offset bigint NOT NULL,
  room_id text,
  at timestamptz NOT NULL,
  details jsonb NOT NULL,
  PRIMARY KEY (kafka_partition, kafka_offset)
);
CREATE TABLE IF NOT EXISTS kafka_positions (
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  next_offset bigint NOT NULL,
  PRIMARY KEY (topic, kafka_partition)
);
"""


def upsert_window_sql() -> str:
    names = schema.AGGREGATE_COLUMNS
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in KEY)
    return (
        f"INSERT INTO {WINDOWS_TABLE} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT (room_id, window_start) DO UPDATE SET {updates}, loaded_at = now()"
    )


UPSERT_ALERT = (
    f"INSERT INTO {ALERTS_TABLE} (kafka_partition, kafka_offset, room_id, at, details) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kafka_partition, kafka_offset) DO NOTHING"
)
SAVE_POSITION = (
    "INSERT INTO kafka_positions (topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
    "ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
)


def connect(dsn: str = ""):
    import psycopg

    try:
        # autocommit: each `with conn.transaction()` below is then one real transaction
        return psycopg.connect(dsn, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as error:
        raise LabkitError(
            f"cannot connect to PostgreSQL ({dsn or 'PG* variables'}): {str(error).strip()}",
            "start PostgreSQL (compose: `docker compose --profile dashboards up -d`) "
            "or set PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE or --dsn",
        ) from None


class Loader:
    """Kafka -> PostgreSQL, one transaction per polled batch (rows and positions together)."""

    def __init__(self, conn, s: settings_module.Settings | None = None):
        self.conn, self.s = conn, s or settings_module.get()
        self.consumer = downstream.consumer(self.s)
        self.assigned: set[str] = set()
        self.loaded = {"windows": 0, "alerts": 0, "unreadable": 0}
        with conn.transaction():
            conn.execute(create_tables_sql())

    def _positions(self) -> dict[tuple[str, int], int]:
        rows = self.conn.execute("SELECT topic, kafka_partition, next_offset FROM kafka_positions").fetchall()
        return {(t, p): o for t, p, o in rows}

    def assign_new_topics(self) -> None:
        known = self._positions()
        new = []
        for topic, partitions in downstream.wanted_topics(self.consumer).items():
            if topic in self.assigned or topic == names.DLQ_TOPIC:
                continue
            new += [TopicPartition(topic, p, known.get((topic, p), OFFSET_BEGINNING)) for p in partitions]
            self.assigned.add(topic)
        if new:
            self.consumer.incremental_assign(new)

    def load(self, messages) -> None:
        """One batch of messages into PostgreSQL, in one transaction with the new positions."""
        windows, alerts, positions = [], [], {}
        for m in messages:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"warning: Kafka: {m.error().str()} (retrying)", flush=True)
                continue
            positions[(m.topic(), m.partition())] = m.offset() + 1
            try:
                if m.topic() == names.ALERTS_TOPIC:
                    alert = downstream.parse_alert(m.key(), m.value(), m.timestamp()[1])
                    at = alert.pop("at")
                    alerts.append((m.partition(), m.offset(), alert.get("room_id"), at, json.dumps(alert, default=str)))
                else:
                    row = downstream.parse_window(m.value())
                    windows.append([row[c] for c in schema.AGGREGATE_COLUMNS])
            except downstream.UnreadableMessage as error:
                # Not loadable, and not lost: said here, and still in its topic for 3 days.
                self.loaded["unreadable"] += 1
                print(f"warning: skipped {m.topic()} offset {m.offset()}: {error}", flush=True)
        if not positions:
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            if windows:
                cur.executemany(upsert_window_sql(), windows)
            if alerts:
                cur.executemany(UPSERT_ALERT, alerts)
            cur.executemany(SAVE_POSITION, [(t, p, o) for (t, p), o in positions.items()])
        self.loaded["windows"] += len(windows)
        self.loaded["alerts"] += len(alerts)

    def caught_up(self) -> bool:
        """Whether every assigned partition has been read to its current end."""
        positions = self._positions()
        for tp in self.consumer.assignment():
            _, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            if positions.get((tp.topic, tp.partition), 0) < high:
                return False
        return True

    def run(self, until_caught_up: bool = False, timeout: float | None = None) -> dict[str, int]:
        """Load until Ctrl-C (or, with ``until_caught_up``, until everything in Kafka now is in)."""
        ticker = Ticker("to-postgres:", every=10)
        deadline = time.monotonic() + timeout if timeout else None
        next_scan = 0.0
        try:
            while True:
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + 5
                    try:
                        self.assign_new_topics()
                    except KafkaException as error:
                        print(f"warning: Kafka at {self.s.kafka_bootstrap}: {error.args[0].str()} (retrying)")
                messages = self.consumer.consume(num_messages=500, timeout=0.5)
                self.load(messages)
                ticker.update(f"{self.loaded['windows']} windows, {self.loaded['alerts']} alerts loaded")
                if until_caught_up and not messages and self.assigned and self.caught_up():
                    return self.loaded
                if deadline and time.monotonic() > deadline:
                    raise LabkitError(
                        f"not caught up after {timeout:.0f} s ({self.loaded})",
                        "check `labkit status` and that the topics exist (`labkit topics`)",
                    )
        finally:
            self.consumer.close()


def run(
    dsn: str = "",
    until_caught_up: bool = False,
    timeout: float | None = None,
    s: settings_module.Settings | None = None,
) -> dict[str, int]:
    """``labkit to-postgres``: create the tables if needed, then load (see :class:`Loader`)."""
    with connect(dsn) as conn:
        return Loader(conn, s).run(until_caught_up=until_caught_up, timeout=timeout)
