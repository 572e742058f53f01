"""Rollups: 1-minute and 5-minute windows per room, computed from the windows table itself.

The windows job (``labkit.pipeline``) writes 10-second windows to the Delta table
``telemetry_5s_agg``. A dashboard of the last day wants coarser rows: one a minute, or one every
five minutes. They could be computed from Kafka again, but the lake already holds the windows,
final and deduplicated. So the rollup jobs read the windows table **as a stream** (Delta is a
streaming source: each new commit of the table is a micro-batch's input) and write their own
tables, ``telemetry_1m_agg`` and ``telemetry_5m_agg``, with the same columns as a window row.

Two facts make this simple and exact:

* **The 10 s windows slide every 5 s, so every reading is in two of them.** Summing all of them
  would count each reading twice. The windows that start on a multiple of 10 s do not overlap
  and cover every instant once (they *tile* time): the rollup uses only those.
* **The windows arrive in event-time order.** The windows job emits a window once its watermark
  has passed the window's end, for all rooms at once, so a later commit never holds an earlier
  window. The rollup's own watermark can therefore be short; a rollup window is written once
  the tiles of its whole span have arrived.

Minima, maxima, the peak occupancy and the motion count combine exactly. An average of the
tiles' averages is the average of the readings when every tile holds the same number of
readings (the sensors' 2 Hz: 20 per tile); a tile that lost a reading (late, silent sensor)
weighs its others a little more. The aggregate row has no count column to weigh them by.

A Delta stream stops when its source table's schema changes (a column added by
``mergeSchema``: ``DELTA_SCHEMA_CHANGED_WITH_VERSION``); started again, it reads on with the new
schema. The rollup rows keep the aggregate row's columns either way.

Delta exactly once, like the windows (:func:`labkit.pipeline.batch_writer`). Table maintenance
(``OPTIMIZE``) is invisible to the rollups: its commits change no data, and a Delta stream skips
them.
"""

from __future__ import annotations

from labkit import checkpoints, pipeline, schema
from labkit import settings as settings_module
from labkit.names import AGGREGATE_TABLE, ROLLUP_1M_TABLE, ROLLUP_5M_TABLE

#: Each rollup: its table (also its query's name) -> its window length.
ROLLUPS = {ROLLUP_1M_TABLE: "1 minute", ROLLUP_5M_TABLE: "5 minutes"}
#: The windows job's windows tile time when they start on a multiple of their own length.
TILE_S = int(pipeline.WINDOW.split()[0])
#: How far behind the newest tile a tile may arrive. Tiles arrive in event-time order (see the
#: module docstring), so one tile's length is margin enough.
WATERMARK = pipeline.WINDOW


def tiles(windows):
    """The windows that do not overlap: those that start on a multiple of ``TILE_S`` seconds."""
    from pyspark.sql import functions as F

    return windows.where(F.unix_timestamp("window_start") % TILE_S == 0)


def rollup(windows, length: str, watermark: str = WATERMARK):
    """Window rows (of ``telemetry_5s_agg``) -> rows of ``length`` per room, same columns.

    Works on a stream (the live rollup) and on a batch DataFrame alike.
    """
    from pyspark.sql import functions as F

    grouped = (
        tiles(windows)
        .withWatermark("window_start", watermark)
        .groupBy(F.window("window_start", length).alias("window"), "room_id", "room_name", "floor", "room_type")
    )
    rows = grouped.agg(
        F.avg("avg_temperature").alias("avg_temperature"),
        F.min("min_temperature").alias("min_temperature"),
        F.max("max_temperature").alias("max_temperature"),
        F.avg("avg_humidity").alias("avg_humidity"),
        F.min("min_humidity").alias("min_humidity"),
        F.max("max_humidity").alias("max_humidity"),
        F.avg("avg_co2").alias("avg_co2"),
        F.max("max_co2").alias("max_co2"),
        F.avg("avg_light").alias("avg_light"),
        F.max("max_occupancy").alias("max_occupancy"),
        F.sum("motion_events").alias("motion_events"),
        F.avg("avg_energy").alias("avg_energy"),
        F.avg("avg_air_quality").alias("avg_air_quality"),
        F.min("min_air_quality").alias("min_air_quality"),
    ).select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), "*")
    return rows.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.aggregate_spark_schema()])


def read_windows(spark, s: settings_module.Settings | None = None, source_path: str | None = None):
    """The windows table as a stream: its rows now, then each new commit's rows as it lands."""
    s = s or settings_module.get()
    return spark.readStream.format("delta").load(source_path or s.table_path(AGGREGATE_TABLE))


def start(
    spark,
    table: str,
    s: settings_module.Settings | None = None,
    source_path: str | None = None,
    table_path: str | None = None,
    query_name: str | None = None,
    trigger: str | None = "5 seconds",
):
    """Start the rollup into ``table`` (a key of :data:`ROLLUPS`); checkpoint ``_checkpoints/<query_name>``."""
    s = s or settings_module.get()
    query_name = query_name or table
    table_path = table_path or s.table_path(table)
    checkpoint = s.checkpoint_path(query_name)
    checkpoints.redo_batch_owing_a_watermark(spark, checkpoint)  # its last windows, too, wait for a no-data batch
    rows = rollup(read_windows(spark, s, source_path), ROLLUPS[table])
    writer = (
        rows.writeStream.queryName(query_name)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(pipeline.batch_writer(table_path, query_name, checkpoint, None))
    )
    return (writer.trigger(processingTime=trigger) if trigger else writer).start()


def start_all(
    spark, s: settings_module.Settings | None = None, source_path: str | None = None, trigger: str | None = "5 seconds"
) -> list:
    """Both rollups, beside the windows job, each with its own table and checkpoint."""
    return [start(spark, table, s, source_path, trigger=trigger) for table in ROLLUPS]
