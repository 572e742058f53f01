"""Alerts: a streaming job that watches every room and says when something is wrong, once.

It reads the same raw topics as the windows job (``labkit.pipeline``) and looks at each reading:

* **rules**: the temperature above the room type's limit (``temperature_high``), the CO2 above it
  (``co2_high``). The limits live in the SQLite table ``thresholds`` (``labkit.metadata``), joined
  to the readings through the rooms table the way the windows job joins the room names;
* **spike**: the temperature further than ``spike_delta_c`` from the room's *own* recent
  baseline, an exponentially weighted moving average (EWMA) of its readings. A kitchen at 25 °C
  is normal while cooking; an office that jumps from 21 to 29 °C is not, though both are below
  a fixed limit;
* **stuck**: every measured value exactly repeated for ``stuck_after_s`` seconds (a frozen
  sensor still sends, but what it sends means nothing);
* **silent**: no reading from the room for ``silent_after_s`` seconds of event time. Nothing
  arrives to look at, so this one comes from an *event-time timer*: it fires when the watermark
  (pushed on by the other rooms' readings) passes the room's last reading + ``silent_after_s``.
  (A gap that starts and ends inside one micro-batch, as in a replay, is seen from the readings.)

**One alert per episode.** A hot room sends 2 readings a second; nobody wants 2 alerts a second.
Each kind of alert of a room is an *episode*: a ``raised`` row when it starts, a ``cleared`` row
when the condition has been false for ``CLEAR_AFTER_S`` seconds (so a value wobbling around the
limit does not raise and clear over and over). That needs memory per room across micro-batches,
plus timers: Spark 4's ``transformWithStateInPandas`` gives both (:class:`AlertProcessor`). The
detectors themselves are plain Python (:class:`RoomWatch`), run by Spark once per room and
micro-batch, and readable (and testable) without Spark.

**Where alerts go.** Topic ``telemetry.alerts`` (key = room id, at least once) and the Delta table
``alerts``, exactly once through :func:`labkit.pipeline.batch_writer` (``txnAppId`` from the
checkpoint, ``txnVersion`` = batch id; a batch that raised nothing writes nothing).

**Scoring.** :func:`score` compares the raised alerts with the labels of the anomalies the
simulator injected (``labkit.simulator.Anomaly``): recall per anomaly kind, precision per alert.

Limits a learner should know about: a reading older than the room's newest one (out of order,
or late within the watermark) is not looked at (the windows job still counts it); readings later
than the watermark are dropped before they reach the detectors.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Sequence

from labkit import checkpoints, pipeline, schema
from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.names import ALERTS_QUERY, ALERTS_TABLE, ALERTS_TOPIC, THRESHOLDS_TABLE

#: Every kind of alert the job raises.
ALERT_KINDS = ("temperature_high", "co2_high", "spike", "stuck", "silent")
#: Seconds of event time a condition must stay false before its episode is cleared.
CLEAR_AFTER_S = 5.0
#: Weight of the newest reading in the room's temperature baseline (EWMA). At 2 readings a second
#: the baseline follows a slow change within ~10 s, while one odd reading moves it by 5 %.
BASELINE_WEIGHT = 0.05
#: How late a reading may arrive: as in the windows job.
WATERMARK = pipeline.WATERMARK
#: The state store ``transformWithStateInPandas`` requires (set for the alert query only).
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
#: The columns of a threshold row, as each reading carries them after the join.
LIMIT_COLUMNS = ("max_temperature", "max_co2_ppm", "spike_delta_c", "silent_after_s", "stuck_after_s")
#: The values compared by the stuck detector: everything a sensor measures.
MEASURED_FIELDS = tuple(name for name in schema.RAW_FIELD_NAMES if name not in ("room_id", "timestamp"))

#: One alert row (Delta table ``alerts``, a message of ``telemetry.alerts``): labkit.schema owns it.
ALERT_COLUMNS = schema.ALERT_COLUMNS
ALERT_SCHEMA_DDL = (
    "room_id STRING, alert STRING, state STRING, event_time TIMESTAMP, value DOUBLE, `limit` DOUBLE, detail STRING"
)


# ---------------------------------------------------------------- the detectors, plain Python


def _alert(room_id: str, alert: str, state: str, at: float, value=None, limit=None, detail: str = "") -> dict:
    return {
        "room_id": room_id,
        "alert": alert,
        "state": state,
        "event_time": datetime.fromtimestamp(at, timezone.utc).replace(tzinfo=None),
        "value": None if value is None else float(value),
        "limit": None if limit is None else float(limit),
        "detail": detail,
    }


@dataclasses.dataclass
class RoomWatch:
    """The detectors of one room and the episodes they have open; ``state`` survives batches.

    ``state`` is a small dict of plain values (so Spark can keep it as one JSON string):
    ``last_t`` (event time of the newest reading, seconds since 1970), ``baseline`` (EWMA of the
    temperature), ``same_since`` and ``last_values`` (for the stuck detector), ``silent_after_s``
    (for the timer) and ``open``: alert kind -> since when its condition is false (None: true).
    """

    room_id: str
    state: dict = dataclasses.field(default_factory=dict)

    def _episode(self, kind: str, true: bool, at: float, value, limit, detail: str) -> list[dict]:
        """Raise ``kind`` when it becomes true, clear it once false for CLEAR_AFTER_S: 0 or 1 row."""
        open_ = self.state.setdefault("open", {})
        if true:
            raised = kind not in open_
            open_[kind] = None
            return [_alert(self.room_id, kind, "raised", at, value, limit, detail)] if raised else []
        if kind not in open_:
            return []
        if open_[kind] is None:
            open_[kind] = at
        if at - open_[kind] >= CLEAR_AFTER_S:
            del open_[kind]
            return [_alert(self.room_id, kind, "cleared", at, value, limit)]
        return []

    def reading(self, t: float, values: dict[str, Any], limits: dict[str, Any]) -> list[dict]:
        """Look at one reading (event time ``t``) with its room type's ``limits``; the alert rows it makes."""
        st = self.state
        if st.get("last_t") is not None and t <= st["last_t"]:
            return []  # older than what the detectors have seen: see the module's docstring
        out = []
        deadline = self.silent_deadline()
        if deadline is not None and t > deadline:
            # A gap longer than silent_after_s inside one micro-batch: no timer could fire in it
            # (timers fire between batches), yet the room was silent. Replays hit this every time.
            out += self.silence(deadline)
        if "silent" in st.get("open", {}):
            del st["open"]["silent"]
            out.append(_alert(self.room_id, "silent", "cleared", t, detail="readings again"))
        st["last_t"] = t
        if limits.get("silent_after_s") is not None:
            st["silent_after_s"] = float(limits["silent_after_s"])
        temperature = values["temperature"]
        if limits.get("max_temperature") is not None:
            out += self._episode(
                "temperature_high",
                temperature > limits["max_temperature"],
                t,
                temperature,
                limits["max_temperature"],
                f"{temperature:.2f} °C",
            )
        if limits.get("max_co2_ppm") is not None:
            co2 = values["co2_ppm"]
            out += self._episode(
                "co2_high",
                co2 > limits["max_co2_ppm"],
                t,
                co2,
                limits["max_co2_ppm"],
                f"{co2} ppm with {values['occupancy_count']} people in",
            )
        baseline = st.get("baseline")
        if baseline is None:
            st["baseline"] = baseline = temperature
        if limits.get("spike_delta_c") is not None:
            away = abs(temperature - baseline) > limits["spike_delta_c"]
            out += self._episode(
                "spike", away, t, temperature, baseline, f"{temperature:.2f} °C against a baseline of {baseline:.2f} °C"
            )
            if away:  # the baseline must not learn the spike, or a long one would become normal
                return out + self._stuck(t, values, limits)
        st["baseline"] = baseline + BASELINE_WEIGHT * (temperature - baseline)
        return out + self._stuck(t, values, limits)

    def _stuck(self, t: float, values: dict[str, Any], limits: dict[str, Any]) -> list[dict]:
        st = self.state
        measured = [float(values[name]) for name in MEASURED_FIELDS]
        if measured != st.get("last_values"):
            st["last_values"], st["same_since"] = measured, t
        if limits.get("stuck_after_s") is None:
            return []
        stuck_for = t - st["same_since"]
        return self._episode(
            "stuck",
            stuck_for >= limits["stuck_after_s"],
            t,
            stuck_for,
            limits["stuck_after_s"],
            f"the same values for {stuck_for:.0f} s",
        )

    def silent_deadline(self) -> float | None:
        """When the room counts as silent if nothing more arrives (event time), or None."""
        if self.state.get("last_t") is None or self.state.get("silent_after_s") is None:
            return None
        return self.state["last_t"] + self.state["silent_after_s"]

    def silence(self, at: float) -> list[dict]:
        """The silence timer fired at ``at``: raise ``silent`` (once)."""
        open_ = self.state.setdefault("open", {})
        if "silent" in open_ or self.state.get("last_t") is None:
            return []
        open_["silent"] = None
        quiet_for = at - self.state["last_t"]
        return [
            _alert(
                self.room_id,
                "silent",
                "raised",
                at,
                quiet_for,
                self.state.get("silent_after_s"),
                f"no reading for {quiet_for:.0f} s",
            )
        ]


def watch_readings(records: Iterable[dict], limits_by_room: dict[str, dict]) -> list[dict]:
    """The detectors over raw records in plain Python, with ``limits_by_room``: alert rows.

    No timers here: a silent room is seen only once its readings resume (in the stream, the
    watermark also tells a room that stays silent). E.g. to try a threshold on a day of
    simulated readings before streaming it (bench/alerts.py does, for a quiet day).
    """
    watches: dict[str, RoomWatch] = {}
    out = []
    for record in sorted(records, key=lambda r: (r["timestamp"], r["room_id"])):
        watch = watches.setdefault(record["room_id"], RoomWatch(record["room_id"]))
        t = schema.parse_timestamp(record["timestamp"]).timestamp()
        out += watch.reading(t, record, limits_by_room.get(record["room_id"], {}))
    return out


# ---------------------------------------------------------------- the detectors in Spark


def _processor_class():
    """:class:`AlertProcessor`, defined on first use: pyspark is imported only by the Spark side."""
    import pandas as pd
    from pyspark.sql.streaming import StatefulProcessor

    class AlertProcessor(StatefulProcessor):
        """Runs a room's :class:`RoomWatch` over each micro-batch; keeps its state and its silence timer.

        The state is one JSON string per room (a ValueState): the detectors' dict as it is.
        The timer is the room's silence deadline, moved on by every newer reading.
        """

        def init(self, handle) -> None:
            self.handle = handle
            self.saved = handle.getValueState("room", "json STRING")

        def _load(self, room_id: str) -> RoomWatch:
            return RoomWatch(room_id, json.loads(self.saved.get()[0]) if self.saved.exists() else {})

        def _save(self, watch: RoomWatch) -> None:
            self.saved.update((json.dumps(watch.state),))

        def _frame(self, rows: list[dict]) -> Iterator[pd.DataFrame]:
            if rows:
                yield pd.DataFrame(rows, columns=list(ALERT_COLUMNS))

        def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:
            watch = self._load(key[0])
            before = watch.silent_deadline()
            batch = pd.concat(list(rows)).sort_values("timestamp")
            out = []
            for row in batch.to_dict("records"):
                t = pd.Timestamp(row["timestamp"]).timestamp()
                limits = {name: (None if pd.isna(row[name]) else row[name]) for name in LIMIT_COLUMNS}
                out += watch.reading(t, row, limits)
            after = watch.silent_deadline()
            if after != before:
                for timer in list(self.handle.listTimers()):
                    self.handle.deleteTimer(timer)
                if after is not None:
                    self.handle.registerTimer(int(after * 1000))
            self._save(watch)
            return self._frame(out)

        def handleExpiredTimer(self, key, timerValues, expiredTimerInfo) -> Iterator[pd.DataFrame]:
            watch = self._load(key[0])
            out = watch.silence(expiredTimerInfo.getExpiryTimeInMs() / 1000)
            self._save(watch)
            return self._frame(out)

        def close(self) -> None:
            pass

    return AlertProcessor


def read_limits(spark, s: settings_module.Settings | None = None):
    """room_id -> its room type's limits: the SQLite ``rooms`` table joined with ``thresholds``."""
    rooms = pipeline.read_rooms(spark, s).select("room_id", "room_type")
    thresholds = pipeline.read_rooms(spark, s, table=THRESHOLDS_TABLE)
    return rooms.join(thresholds, "room_type", "left").drop("room_type")


def build(
    spark, s: settings_module.Settings | None = None, room_ids=None, watermark: str = WATERMARK, **source_options
):
    """read_raw -> parse -> watermark -> join the limits -> the detectors per room: alert rows."""
    from pyspark.sql import functions as F

    s = s or settings_module.get()
    readings = pipeline.with_watermark(
        pipeline.parse(pipeline.read_raw(spark, room_ids, s=s, **source_options)), watermark
    )
    with_limits = readings.join(F.broadcast(read_limits(spark, s)), "room_id", "left")
    return with_limits.groupBy("room_id").transformWithStateInPandas(
        statefulProcessor=_processor_class()(),
        outputStructType=ALERT_SCHEMA_DDL,
        outputMode="Append",
        timeMode="EventTime",
    )


def to_kafka_messages(alerts):
    """Alert rows -> (topic, key, value) for ``telemetry.alerts``: key = room id, value = the row as JSON."""
    from pyspark.sql import functions as F

    options = {"timestampFormat": schema.SPARK_TIMESTAMP_FORMAT}
    return alerts.select(
        F.lit(ALERTS_TOPIC).alias("topic"),
        F.col("room_id").alias("key"),
        F.to_json(F.struct(*ALERT_COLUMNS), options).alias("value"),
    )


def start(
    alerts,
    s: settings_module.Settings | None = None,
    query_name: str = ALERTS_QUERY,
    table_path: str | None = None,
    trigger: str | None = "5 seconds",
    to_kafka: bool = True,
):
    """Start the alert query: Kafka ``telemetry.alerts`` + Delta ``alerts`` through pipeline.batch_writer.

    ``transformWithStateInPandas`` keeps its state in RocksDB: the provider is set on the session
    just for this query's start (a query takes its settings when it starts; the windows job in
    the same session keeps the default store its checkpoint was made with).
    """
    from labkit import topics

    s = s or settings_module.get()
    table_path = table_path or s.table_path(ALERTS_TABLE)
    checkpoint = s.checkpoint_path(query_name)
    checkpoints.redo_batch_owing_a_watermark(alerts.sparkSession, checkpoint)  # timers, too, wait for it
    if to_kafka:
        topics.ensure_topics([ALERTS_TOPIC], s=s)
    write = pipeline.batch_writer(
        table_path, query_name, checkpoint, s.kafka_bootstrap if to_kafka else None, to_kafka_messages
    )
    writer = (
        alerts.writeStream.queryName(query_name)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(write)
    )
    writer = writer.trigger(processingTime=trigger) if trigger else writer
    conf = alerts.sparkSession.conf
    key = "spark.sql.streaming.stateStore.providerClass"
    previous = conf.get(key, None)
    conf.set(key, ROCKSDB_PROVIDER)
    try:
        return writer.start()
    finally:
        if previous is None:
            conf.unset(key)
        else:
            conf.set(key, previous)


# ---------------------------------------------------------------- scoring against the labels

#: Which alerts find which injected anomaly (labkit.simulator.ANOMALY_KINDS).
DETECTED_BY = {
    "spike": {"spike", "temperature_high"},
    "drift": {"temperature_high", "spike"},
    "stuck": {"stuck"},
    "dropout": {"silent"},
    "co2_empty": {"co2_high"},
}
#: An alert raised up to this long after an anomaly's end still counts for it (a silent room is
#: only known silent ``silent_after_s`` after its last reading).
GRACE_S = 30.0


def _as_utc(value) -> datetime:
    if isinstance(value, str):
        return schema.parse_timestamp(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def matches(alert: dict, label: dict) -> bool:
    """Whether a raised ``alert`` is one of ``label``'s: its room, a kind that finds it, in its span."""
    at = _as_utc(alert["event_time"])
    start, end = _as_utc(label["start"]), _as_utc(label["end"])
    return (
        alert["room_id"] == label["room_id"]
        and alert["alert"] in DETECTED_BY[label["kind"]]
        and start <= at <= end + timedelta(seconds=GRACE_S)
    )


@dataclasses.dataclass(frozen=True)
class Score:
    """Recall per anomaly kind (found / injected) and precision per alert kind (true / raised)."""

    found: dict[str, tuple[int, int]]  # anomaly kind -> (found, injected)
    true_alerts: dict[str, tuple[int, int]]  # alert kind -> (matching a label, raised)

    def recall(self, kind: str) -> float:
        found, injected = self.found[kind]
        return found / injected if injected else float("nan")

    def precision(self, alert: str) -> float:
        true, raised = self.true_alerts[alert]
        return true / raised if raised else float("nan")

    def table(self) -> str:
        lines = [f"{'anomaly':<10} {'found':>5} / {'injected':<8} recall"]
        lines += [f"{k:<10} {f:>5} / {n:<8} {self.recall(k):.2f}" for k, (f, n) in self.found.items()]
        lines += ["", f"{'alert':<16} {'true':>4} / {'raised':<6} precision"]
        lines += [f"{k:<16} {t:>4} / {n:<6} {self.precision(k):.2f}" for k, (t, n) in self.true_alerts.items()]
        return "\n".join(lines)


def score(alerts: Sequence[dict], labels: Sequence[dict]) -> Score:
    """Score alert rows (``raised`` ones count) against the simulator's labels."""
    raised = [a for a in alerts if a["state"] == "raised"]
    found = {
        kind: (
            sum(any(matches(a, lb) for a in raised) for lb in labels if lb["kind"] == kind),
            sum(lb["kind"] == kind for lb in labels),
        )
        for kind in DETECTED_BY
    }
    true_alerts = {
        kind: (
            sum(any(matches(a, lb) for lb in labels) for a in raised if a["alert"] == kind),
            sum(a["alert"] == kind for a in raised),
        )
        for kind in ALERT_KINDS
    }
    return Score(found, true_alerts)


def read_alerts(spark, table_path: str) -> list[dict]:
    """Every row of an alerts Delta table, oldest event first, as dicts."""
    try:
        rows = spark.read.format("delta").load(table_path).orderBy("event_time", "room_id", "alert").collect()
    except Exception as error:  # AnalysisException: not a Delta table yet
        if "DELTA_MISSING_DELTA_TABLE" in str(error) or "is not a Delta table" in str(error):
            return []
        raise LabkitError(f"cannot read the alerts at {table_path}: {error}", "is the alert job running?") from None
    return [row.asDict() for row in rows]
