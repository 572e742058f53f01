"""The streaming job, as small steps that compose: each is one idea a notebook can show.

    raw = read_raw(spark)                        # Kafka topics telemetry.<room>, as bytes
    readings = parse(raw)                        # JSON -> typed columns (labkit.schema)
    readings = observe_readings(readings)        # per batch: rows, rows with a null, out of range
    readings = with_watermark(readings)          # event time, and how late a reading may be
    readings = deduplicate(readings)             # the same reading twice counts once
    readings = observe_kept(readings)            # per batch: rows left (labkit.quality reads both)
    windows = aggregate(readings)                # 10 s windows sliding 5 s, per room
    rows = enrich(windows, read_rooms(spark))    # + room_name, floor, room_type from SQLite
    query = start_sinks(rows)                    # Delta table + telemetry.<room>.downsampled

:func:`build` chains them and :func:`start` runs the result; the lessons run them one by one.
:mod:`labkit.watch` follows a running query's progress.

Guarantees of the two sinks (both written by one ``foreachBatch``, so they get the same rows):

* **Delta: exactly once.** Output mode *append* with a watermark emits each window once, when it
  is final. Each micro-batch is written with ``txnAppId`` (the query name and the id its
  checkpoint keeps: :func:`delta_app_id`) and ``txnVersion`` (the batch id): if the job dies
  after writing a batch but before its checkpoint records it, the replayed batch is recognised
  by Delta and skipped.
* **A batch with no final window writes nothing**: no Delta commit, no Kafka job. With a short
  trigger most batches close no window (a window closes every 5 s), and the two writes were
  most of a batch's cost. Skipping them keeps exactly-once intact: Delta only compares the
  batch ids it was given, and those still only grow.
* **Kafka: at least once.** Spark's Kafka sink does not use Kafka's transactions, so a replayed
  batch is sent again. The producer is idempotent (no duplicates from its own retries), and each
  message is keyed by ``<room_id>|<window_start>``, so a consumer can drop a repeat by its key.
  (Exactly once into Kafka is possible, with a transactional producer of one's own inside
  ``foreachBatch`` and consumers reading ``read_committed``; it costs a transaction per batch
  and delays every consumer until the commit. The lab keeps the simpler, keyed at-least-once.)
"""

from __future__ import annotations

import json

from labkit import checkpoints, schema, topics
from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.names import AGGREGATE_QUERY, AGGREGATE_TABLE, DOWNSAMPLED_TOPIC_PATTERN, ROOMS_TABLE

TABLE_NAME = AGGREGATE_TABLE  # the defaults of start(), named in labkit.names
QUERY_NAME = AGGREGATE_QUERY
WINDOW = "10 seconds"
SLIDE = "5 seconds"
WATERMARK = "10 seconds"
#: How often the live job may start a micro-batch: ``None``, as fast as possible (the next batch
#: as soon as one ends). A window reaches its consumers two batches after the reading that closes
#: it: one batch sees the reading and moves the watermark, the next emits the window. Measured on
#: a quiet 2-core machine (README, "Benchmarks"), excess over window end + watermark: p50 1.4 s,
#: p99 1.8 s as fast as possible; p50 2.6 s, p99 2.8 s with a 1 s trigger. The price: while the
#: building is quiet, Spark asks Kafka for new offsets every 10 ms (``spark.sql.streaming.pollingDelay``).
TRIGGER: str | None = None
#: How long the Kafka broker may hold a fetch that finds no new record, for Spark's readers.
#: Kafka's default, 500 ms, suits a consumer that polls forever. A Spark task reads a fixed range
#: of offsets, and each one ended up waiting out such a fetch at the end of its range: half a
#: second per partition per micro-batch, 2 of a batch's 2.5 s with 8 rooms on 2 cores (measured
#: in the Spark UI's stages: 4.2 s of task time, 0.07 s of it CPU). 10 ms removes that wait.
KAFKA_FETCH_MAX_WAIT_MS = 10
#: The names under which the job's two ``observe`` steps report, per micro-batch, in the progress
#: report's ``observedMetrics`` (:func:`observe_readings`, :func:`observe_kept`; labkit.quality).
OBSERVED_READINGS = "readings"
OBSERVED_KEPT = "kept"


# ---------------------------------------------------------------- sources


def read_raw(
    spark,
    room_ids=None,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    starting_timestamp: int | None = None,
    s: settings_module.Settings | None = None,
):
    """The raw room topics as a streaming DataFrame (key, value, topic, offset, timestamp...).

    ``starting_offsets`` is ``earliest``, ``latest`` or Spark's JSON of offsets per partition;
    ``starting_timestamp`` (ms since the epoch) starts at the first record at or after it.
    ``max_offsets_per_trigger`` caps a micro-batch, the lab's lever for backpressure.
    """
    s = s or settings_module.get()
    names = topics.raw_topics(room_ids)
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", s.kafka_bootstrap)
        .option("subscribe", ",".join(names))
        .option("failOnDataLoss", "true")
        .option("kafka.fetch.max.wait.ms", str(KAFKA_FETCH_MAX_WAIT_MS))
    )
    if starting_timestamp is not None:
        reader = reader.option("startingTimestamp", str(starting_timestamp))
    else:
        reader = reader.option("startingOffsets", starting_offsets)
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def read_raw_batch(spark, starting_offsets: dict, ending_offsets: dict, s: settings_module.Settings | None = None):
    """The same topics as :func:`read_raw`, but as a *batch* DataFrame between two offset snapshots.

    A batch read of exactly the records a streaming query read is what its result is compared
    with (``labkit.feed.Sent.before`` / ``.after`` are such snapshots).
    """
    s = s or settings_module.get()
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", s.kafka_bootstrap)
        .option("subscribe", ",".join(ending_offsets))
        .option("kafka.fetch.max.wait.ms", str(KAFKA_FETCH_MAX_WAIT_MS))
        .option("startingOffsets", json.dumps(starting_offsets))
        .option("endingOffsets", json.dumps(ending_offsets))
        .load()
    )


def read_rooms(spark, s: settings_module.Settings | None = None, table: str = ROOMS_TABLE):
    """The SQLite ``rooms`` table through JDBC: the static side of the stream-static join.

    Spark re-reads a JDBC table at every micro-batch (nothing caches it), so a change to the
    metadata shows up in the windows computed after it: lesson 03 shows exactly that.
    ``table`` reads another table of the same file (the alert job's ``thresholds``).
    """
    s = s or settings_module.get()
    if not s.metadata_db.exists():  # a read only reads: SQLite would create an empty file
        raise LabkitError(
            f"no room metadata at {s.metadata_db}",
            "create it with `labkit init-metadata` (or labkit.metadata.init_metadata())",
        )
    return (
        spark.read.format("jdbc")
        .option("url", f"jdbc:sqlite:{s.metadata_db}")
        .option("dbtable", table)
        .option("driver", "org.sqlite.JDBC")
        .load()
    )


# ---------------------------------------------------------------- transformations


def parse(raw, schema_version: int = 1):
    """Kafka's value bytes -> the raw reading's typed columns (one schema: labkit.schema).

    The bridge let only valid readings into these topics, so every value parses; a row that
    did not would come out with nulls rather than vanish. ``schema_version`` 2 reads the newer
    firmware's fields too (``schema.NEWER_FIELDS``); older readings have nulls there.
    """
    from pyspark.sql import functions as F

    options = {"timestampFormat": schema.SPARK_TIMESTAMP_FORMAT}
    parsed = F.from_json(F.col("value").cast("string"), schema.raw_spark_schema(schema_version), options)
    return raw.select(parsed.alias("reading")).select("reading.*")


def observe_readings(readings):
    """Count, per micro-batch, the parsed readings, those with a null and those out of range.

    ``observe`` is a Spark action's side channel: the counts are computed while the batch runs
    (no extra pass over the data) and arrive in the query's progress report, under
    ``observedMetrics["readings"]``. The bridge lets through only complete readings within the
    sensors' possible ranges (``schema.RAW_FIELDS``), so both counts should stay 0: anything
    else means something wrote to the raw topics around the bridge, or the firmware changed.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    any_null = reduce(lambda a, b: a | b, [F.col(name).isNull() for name in schema.RAW_FIELD_NAMES])
    impossible = reduce(
        lambda a, b: a | b,
        [~F.col(f.name).between(*f.valid_range) for f in schema.RAW_FIELDS if f.valid_range is not None],
    )
    return readings.observe(
        OBSERVED_READINGS,
        F.count(F.lit(1)).alias("rows"),
        F.count_if(any_null).alias("null_rows"),
        F.count_if(impossible).alias("out_of_range_rows"),
    )


def observe_kept(readings):
    """Count, per micro-batch, the readings left after the watermark and the deduplication.

    The rows :func:`observe_readings` counted, minus these, minus the late rows the watermark
    dropped (reported by the stateful step itself), are the duplicates dropped.
    """
    from pyspark.sql import functions as F

    return readings.observe(OBSERVED_KEPT, F.count(F.lit(1)).alias("rows"))


def with_watermark(readings, delay: str = WATERMARK):
    """Declare event time and how late a reading may be: ``delay`` behind the newest seen.

    The watermark decides when a window is final: in append mode Spark emits it once, then
    forgets it; a reading older than the watermark when it arrives is dropped (counted as
    ``numRowsDroppedByWatermark``). It is declared once, before every stateful step.
    """
    return readings.withWatermark("timestamp", delay)


def deduplicate(readings):
    """Drop repeated readings (same room, same event time), e.g. a bridge's at-least-once resend.

    ``dropDuplicatesWithinWatermark`` remembers each key only until the watermark passes it,
    so the state stays small however long the stream runs. Needs :func:`with_watermark` first.
    """
    return readings.dropDuplicatesWithinWatermark(["room_id", "timestamp"])


def aggregate(readings, window: str = WINDOW, slide: str = SLIDE):
    """Windows of ``window`` sliding every ``slide`` per room, with the aggregate row's values.

    Each reading falls into ``window / slide`` windows (two here). A window is emitted once the
    watermark (see :func:`with_watermark`) has passed its end.
    """
    from pyspark.sql import functions as F

    grouped = readings.groupBy(F.window("timestamp", window, slide), "room_id")
    return (
        grouped.agg(
            F.avg("temperature").alias("avg_temperature"),
            F.min("temperature").alias("min_temperature"),
            F.max("temperature").alias("max_temperature"),
            F.avg("humidity").alias("avg_humidity"),
            F.min("humidity").alias("min_humidity"),
            F.max("humidity").alias("max_humidity"),
            F.avg("co2_ppm").alias("avg_co2"),
            F.max("co2_ppm").alias("max_co2"),
            F.avg("light_lux").alias("avg_light"),
            F.max("occupancy_count").alias("max_occupancy"),
            F.count_if("motion_detected").alias("motion_events"),
            F.avg("energy_kwh").alias("avg_energy"),
            F.avg("air_quality_index").alias("avg_air_quality"),
            F.min("air_quality_index").alias("min_air_quality"),
            # a newer firmware's field, when the readings were parsed with it (avg of nulls: null)
            *([F.avg("noise_db").alias("avg_noise_db")] if "noise_db" in readings.columns else []),
        )
        .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), "*")
        .drop("window")
    )


def enrich(windows, rooms_table):
    """Join the room metadata, then shape the row exactly as the aggregate row (one schema).

    A left join: a window of a room missing from the metadata keeps its numbers, with null
    names, instead of disappearing. The rooms table is tiny, so it is *broadcast*: every task
    gets a copy and the stream is never shuffled for the join.
    """
    from pyspark.sql import functions as F

    names = F.broadcast(rooms_table.select("room_id", "room_name", "floor", "room_type"))
    joined = windows.join(names, on="room_id", how="left")
    version = schema.LATEST_VERSION if "avg_noise_db" in windows.columns else 1
    return joined.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.aggregate_spark_schema(version)])


def build(
    spark,
    s: settings_module.Settings | None = None,
    room_ids=None,
    window: str = WINDOW,
    slide: str = SLIDE,
    watermark: str = WATERMARK,
    schema_version: int = 1,
    **source_options,
):
    """read_raw -> parse -> observe -> with_watermark -> deduplicate -> observe -> aggregate -> enrich.

    ``schema_version`` 2 carries the newer firmware's ``noise_db`` through to ``avg_noise_db``.
    """
    raw = read_raw(spark, room_ids, s=s, **source_options)
    readings = parse(raw, schema_version)
    readings = observe_kept(deduplicate(with_watermark(observe_readings(readings), watermark)))
    return enrich(aggregate(readings, window, slide), read_rooms(spark, s))


# ---------------------------------------------------------------- sinks


def to_kafka_messages(rows):
    """Aggregate rows -> (topic, key, value) columns for Kafka's sink.

    The topic is computed per row from the room id, with the pattern of labkit.names. The value
    holds every column of the row: the aggregate row's, and a newer firmware's if present.
    """
    from pyspark.sql import functions as F

    prefix, suffix = DOWNSAMPLED_TOPIC_PATTERN.split("{room_id}")
    options = {"timestampFormat": schema.SPARK_TIMESTAMP_FORMAT}
    window_start = F.date_format("window_start", schema.SPARK_TIMESTAMP_FORMAT)
    return rows.select(
        F.concat(F.lit(prefix), "room_id", F.lit(suffix)).alias("topic"),
        F.concat_ws("|", "room_id", window_start).alias("key"),
        F.to_json(F.struct(*rows.columns), options).alias("value"),
    )


def delta_app_id(spark, query_name: str, checkpoint: str) -> str:
    """The ``txnAppId`` of a query's Delta writes: its name + the id kept in its checkpoint.

    Delta skips a write whose ``txnVersion`` (the batch id) is not above the highest it has seen
    for the same ``txnAppId``. Batch ids start again at 0 in a new checkpoint, so with the name
    alone a job whose checkpoint was deleted would have its next batches skipped, silently,
    until their ids passed the old ones (Delta's documentation warns about exactly this). The
    query's id is written into ``<checkpoint>/metadata`` when the checkpoint is created: the
    same for every restart from that checkpoint, new for a new one.
    """
    query_id = spark.read.json(f"{checkpoint}/metadata").first()["id"]
    return f"{query_name}-{query_id}"


def batch_writer(
    table_path: str,
    query_name: str,
    checkpoint: str,
    kafka_bootstrap: str | None,
    kafka_messages=None,
    merge_schema: bool = False,
):
    """The ``foreachBatch`` function: one micro-batch to Kafka, then to Delta (idempotent).

    ``kafka_messages`` turns the batch into (topic, key, value) columns: by default
    :func:`to_kafka_messages` (the windows); the alert job (``labkit.alerts``) passes its own.
    ``merge_schema`` lets a batch add columns to the table (schema evolution: a newer firmware's
    column); without it Delta refuses such a write, which protects the table from a typo.
    """
    kafka_messages = kafka_messages or to_kafka_messages
    app_id = None  # read from the checkpoint at the first write: it exists once the query has started

    def write(batch, batch_id: int) -> None:
        nonlocal app_id
        # Computed once, written twice. The count() runs the whole batch, stateful steps
        # included, even when nothing is written: Spark requires every state partition to
        # commit, and the count says whether there is anything to write.
        batch.persist()
        try:
            if batch.count() == 0:
                return  # no window became final in this batch: no Kafka job, no Delta commit
            # Kafka first: it is the live path (dashboards, alerts), and a Delta commit takes
            # longer than the whole Kafka write. Either order gives the same guarantees.
            if kafka_bootstrap:
                (
                    kafka_messages(batch)
                    .write.format("kafka")
                    .option("kafka.bootstrap.servers", kafka_bootstrap)
                    .option("kafka.enable.idempotence", "true")
                    .option("kafka.acks", "all")
                    .save()
                )
            app_id = app_id or delta_app_id(batch.sparkSession, query_name, checkpoint)
            try:
                (
                    batch.write.format("delta")
                    .mode("append")
                    .option("txnAppId", app_id)
                    .option("txnVersion", batch_id)
                    .option("mergeSchema", str(merge_schema).lower())
                    .save(table_path)
                )
            except Exception as error:
                if "CHECK constraint" not in str(error):
                    raise
                raise constraint_violated(table_path, batch_id, error) from None
        finally:
            batch.unpersist()

    return write


def constraint_violated(table_path: str, batch_id: int, error: Exception) -> LabkitError:
    """Delta refused a row that breaks one of the table's CHECK constraints: say which, and what next.

    Delta's own message (kept below) names the constraint and the row's values. Nothing of the
    batch was written, and the checkpoint does not record it: the job stops here, and a restart
    tries the same batch again, so the cause must be fixed first.
    """
    # Delta's message, without the Java stack frames under it
    lines = [line for line in str(error).splitlines() if line.strip() and not line.startswith("\tat ")]
    delta_says = "\n".join(line.removeprefix(": ") for line in lines if not line.startswith("An error occurred"))
    return LabkitError(
        f"batch {batch_id}: a row broke a CHECK constraint of {table_path}, so nothing of the batch was "
        f"written and the job stopped. Delta says:\n{delta_says}",
        "find the reading behind that window in its raw topic (labkit.topics.read_all), stop whatever sent it "
        "around the bridge (or fix the step that computed the row), then restart the job: it retries the batch",
    )


def start(
    rows,
    s: settings_module.Settings | None = None,
    query_name: str = QUERY_NAME,
    table_path: str | None = None,
    trigger: str | None = TRIGGER,
    to_kafka: bool = True,
):
    """Start the dual-sink query; its checkpoint is ``<lake>/_checkpoints/<query_name>``.

    A restart from a checkpoint whose last batch still owes its no-data batch runs that last
    batch again first (see :mod:`labkit.checkpoints`).

    The trigger is how often a micro-batch may start; ``None`` runs them back to back. Rows with
    columns beyond the aggregate row (a newer firmware's: ``build(schema_version=2)``) are
    written with ``mergeSchema``: the table gains the columns, its older rows read null there.
    """
    s = s or settings_module.get()
    table_path = table_path or s.table_path(TABLE_NAME)
    checkpoints.redo_batch_owing_a_watermark(rows.sparkSession, s.checkpoint_path(query_name))
    evolves = bool(set(rows.columns) - set(schema.AGGREGATE_COLUMNS))
    writer = (
        rows.writeStream.queryName(query_name)
        .outputMode("append")
        .option("checkpointLocation", s.checkpoint_path(query_name))
        .foreachBatch(
            batch_writer(
                table_path,
                query_name,
                s.checkpoint_path(query_name),
                s.kafka_bootstrap if to_kafka else None,
                merge_schema=evolves,
            )
        )
    )
    writer = writer.trigger(processingTime=trigger) if trigger else writer
    return writer.start()
