"""Data quality: how good the readings are, batch by batch, and an alert when they are not.

Three lines of defence, from the sensors to the lake:

1. **The bridge** refuses what it can see is broken (``labkit.schema.validate_payload``) and
   counts its dead letters per reason per minute; too many raise a data-quality alert
   (``labkit.bridge.DeadLetterRate``).
2. **The windows job** counts, per micro-batch, with Spark's ``observe`` (no extra pass over the
   data: ``labkit.pipeline.observe_readings`` and ``observe_kept``): the readings, those with a
   null, those out of the sensors' possible range, the duplicates dropped and the late rows
   dropped. :func:`batch_metrics` reads them from a progress report, :class:`QualityWatch`
   holds them against :data:`THRESHOLDS`, and :func:`watch_quality` runs it beside the job (a
   ``StreamingQueryListener``) and sends its alerts to ``telemetry.alerts``.
3. **The Delta table** refuses a broken window: ``CHECK`` constraints (:func:`add_constraints`)
   make a write with an impossible value fail, with an error naming the constraint and the row,
   instead of a wrong number landing quietly in every dashboard after it.

A data-quality alert is an alert row like the others (``labkit.schema.ALERT_COLUMNS``) with
``alert = "data_quality"`` and, as ``room_id``, where it was seen: ``bridge`` or the query name.
One per episode: raised when a metric crosses its threshold, cleared when it is back below.
"""

from __future__ import annotations

import collections
import json
from datetime import datetime, timezone
from typing import Sequence

from labkit import pipeline, schema, topics
from labkit import settings as settings_module
from labkit.names import AGGREGATE_QUERY, ALERTS_TOPIC, DATA_QUALITY_ALERT

#: The per-batch metrics, in the order they are shown.
METRICS = ("rows", "null_rows", "out_of_range_rows", "duplicates_dropped", "late_rows_dropped")
#: Metric -> the fraction of the readings above which it raises an alert. Nulls and impossible
#: values never pass the bridge, so any is an alert; some duplicates (QoS 1 redeliveries) and
#: some late readings are normal life on a network.
THRESHOLDS = {"null_rows": 0.0, "out_of_range_rows": 0.0, "duplicates_dropped": 0.10, "late_rows_dropped": 0.10}
#: Readings judged at once, at least: batches are added up until there are this many. With a 1 s
#: trigger a batch holds ~16 readings, and one duplicate in 16 is not a 6 % problem.
MIN_ROWS = 100

#: Aggregate column -> the raw field whose possible range (``schema.RAW_FIELDS``) bounds it.
AGGREGATE_SOURCES = {
    "avg_temperature": "temperature",
    "min_temperature": "temperature",
    "max_temperature": "temperature",
    "avg_humidity": "humidity",
    "min_humidity": "humidity",
    "max_humidity": "humidity",
    "avg_co2": "co2_ppm",
    "max_co2": "co2_ppm",
    "avg_light": "light_lux",
    "max_occupancy": "occupancy_count",
    "avg_energy": "energy_kwh",
    "avg_air_quality": "air_quality_index",
    "min_air_quality": "air_quality_index",
}


# ---------------------------------------------------------------- per-batch metrics


def batch_metrics(progress: dict) -> dict | None:
    """The quality metrics of one micro-batch, from its progress report (None: not the windows job).

    ``duplicates_dropped`` is what the deduplication removed: the readings in, minus those left
    after it, minus the late ones the watermark dropped (which the stateful steps report).
    """
    observed = progress.get("observedMetrics") or {}
    if pipeline.OBSERVED_READINGS not in observed:
        return None
    readings = observed[pipeline.OBSERVED_READINGS]
    kept = observed.get(pipeline.OBSERVED_KEPT, {}).get("rows", 0)
    late = sum(op.get("numRowsDroppedByWatermark", 0) for op in progress.get("stateOperators", []))
    return {
        "batch": progress["batchId"],
        "timestamp": progress["timestamp"],
        "rows": readings["rows"],
        "null_rows": readings["null_rows"],
        "out_of_range_rows": readings["out_of_range_rows"],
        "duplicates_dropped": readings["rows"] - kept - late,
        "late_rows_dropped": late,
    }


def metrics_table(metrics: Sequence[dict]):
    """Per-batch metrics as a pandas DataFrame, one row per batch that read something."""
    import pandas as pd

    return pd.DataFrame([m for m in metrics if m["rows"]], columns=["batch", "timestamp", *METRICS])


class QualityWatch:
    """Holds per-batch metrics against thresholds; returns the alerts to raise or clear.

    Plain Python, so it can be read and tested without Spark. ``source`` becomes the alerts'
    ``room_id`` (the query name).
    """

    def __init__(self, source: str, thresholds: dict[str, float] | None = None, min_rows: int = MIN_ROWS):
        self.source = source
        self.thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
        self.min_rows = min_rows
        self.pending: collections.Counter[str] = collections.Counter()
        self.raised: set[str] = set()

    def add(self, metrics: dict, at: datetime) -> list[dict]:
        for name in METRICS:
            self.pending[name] += metrics[name]
        if self.pending["rows"] < self.min_rows:
            return []
        rows, alerts = self.pending["rows"], []
        for name, limit in self.thresholds.items():
            fraction = self.pending[name] / rows
            state = "raised" if fraction > limit and name not in self.raised else None
            if fraction <= limit and name in self.raised:
                state = "cleared"
            if state:
                (self.raised.add if state == "raised" else self.raised.discard)(name)
                detail = f"{name}: {self.pending[name]} of {rows} readings ({fraction:.1%}; limit {limit:.1%})"
                alerts.append(
                    {
                        "room_id": self.source,
                        "alert": DATA_QUALITY_ALERT,
                        "state": state,
                        "event_time": at,
                        "value": fraction,
                        "limit": limit,
                        "detail": detail,
                    }
                )
        self.pending.clear()
        return alerts


def _listener_class():
    from pyspark.sql.streaming import StreamingQueryListener

    class QualityListener(StreamingQueryListener):
        """Spark calls it after every micro-batch of every query of the session; it looks at one."""

        def __init__(self, query_name: str, s: settings_module.Settings, thresholds, min_rows: int):
            self.query_name = query_name
            self.settings = s
            self.watch = QualityWatch(query_name, thresholds, min_rows)
            self.metrics: list[dict] = []  # every batch's, for a notebook's table
            self.alerts: list[dict] = []  # every alert sent
            self._producer = None

        def onQueryStarted(self, event) -> None:
            pass

        def onQueryProgress(self, event) -> None:
            if event.progress.name != self.query_name:
                return
            metrics = batch_metrics(json.loads(event.progress.json))
            if metrics is None:
                return
            self.metrics.append(metrics)
            at = datetime.fromisoformat(metrics["timestamp"].replace("Z", "+00:00")).astimezone(timezone.utc)
            for alert in self.watch.add(metrics, at):
                self._send(alert)

        def onQueryIdle(self, event) -> None:
            pass

        def onQueryTerminated(self, event) -> None:
            if self._producer is not None:
                self._producer.flush(10)

        def close(self) -> None:
            """Let go of the Kafka producer (after ``spark.streams.removeListener(listener)``)."""
            if self._producer is not None:
                self._producer.flush(10)
                self._producer = None

        def _send(self, alert: dict) -> None:
            from confluent_kafka import Producer

            if self._producer is None:
                topics.ensure_topics([ALERTS_TOPIC], s=self.settings)
                self._producer = Producer(topics.client_config(self.settings, **{"enable.idempotence": True}))
            print(f"{self.query_name}: data-quality alert {alert['state']}: {alert['detail']}", flush=True)
            self._producer.produce(ALERTS_TOPIC, key=alert["room_id"], value=schema.alert_json(alert))
            self._producer.flush(10)
            self.alerts.append(alert)

    return QualityListener


def watch_quality(
    spark,
    query_name: str = AGGREGATE_QUERY,
    s: settings_module.Settings | None = None,
    thresholds: dict[str, float] | None = None,
    min_rows: int = MIN_ROWS,
):
    """Watch the quality metrics of the query ``query_name`` (started before or after this call).

    Returns the listener: ``.metrics`` holds every batch's metrics, ``.alerts`` the alerts sent.
    ``spark.streams.removeListener(listener)`` then ``listener.close()`` stops it.
    """
    listener = _listener_class()(query_name, s or settings_module.get(), thresholds, min_rows)
    spark.streams.addListener(listener)
    return listener


# ---------------------------------------------------------------- CHECK constraints


def constraints() -> dict[str, str]:
    """Constraint name -> the SQL condition every row of the windows table must meet.

    One per sensor: each of its aggregate columns within the sensor's possible range (null is
    allowed: an average of no values is null); a window that ends after it starts; a room id.
    """
    ranges = {f.name: f.valid_range for f in schema.RAW_FIELDS if f.valid_range is not None}
    by_field: dict[str, list[str]] = collections.defaultdict(list)
    for column, field in AGGREGATE_SOURCES.items():
        low, high = ranges[field]
        by_field[field].append(f"({column} IS NULL OR {column} BETWEEN {low} AND {high})")
    checks = {f"{field}_possible": " AND ".join(parts) for field, parts in by_field.items()}
    checks["motion_events_counted"] = "motion_events IS NULL OR motion_events >= 0"
    checks["window_forward"] = "window_end > window_start"
    checks["room_id_present"] = "room_id IS NOT NULL"
    return checks


def add_constraints(spark, table_path: str) -> list[str]:
    """Add the :func:`constraints` the table lacks (creating it if needed); return their names.

    Delta keeps a CHECK constraint in the table's properties, as ``delta.constraints.<name>``,
    and checks every write against it: a write with one bad row writes nothing.

    * A new table is created with all of them in its first commit.
    * An existing table gets the missing ones with ``ALTER TABLE ... ADD CONSTRAINT``, one
      commit each, and Delta first checks the rows already there: a table that breaks one
      refuses it. Each of those commits costs a Spark job over the table's state: ten took
      20-30 s on 2 cores, against half a second for the new table's one commit.
    """
    from delta.tables import DeltaTable

    wanted = constraints()
    if not DeltaTable.isDeltaTable(spark, table_path):
        table = DeltaTable.createIfNotExists(spark).location(table_path).addColumns(schema.aggregate_spark_schema())
        for name, condition in wanted.items():
            table = table.property(f"delta.constraints.{name.lower()}", condition)
        table.execute()
        return list(wanted)
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{table_path}`").first()["properties"]
    added = []
    for name, condition in wanted.items():
        if f"delta.constraints.{name.lower()}" not in properties:
            spark.sql(f"ALTER TABLE delta.`{table_path}` ADD CONSTRAINT {name} CHECK ({condition})")
            added.append(name)
    return added
