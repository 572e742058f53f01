"""Reprocessing: run the same job again over data Kafka still holds.

Kafka keeps the raw readings for three days, so a fixed bug or a changed window can be applied
to the past: start the pipeline again from an earlier offset or timestamp, with its **own**
checkpoint and its **own** table, and compare with the live one before switching over.

Spark keeps its Kafka offsets in its checkpoint, not in a consumer group. Consumer groups
matter for the *other* readers of the topics (a dashboard reading the downsampled topics, say);
:func:`labkit.topics.reset_consumer_group` moves one back in time.
"""

from __future__ import annotations

import json

from labkit import names, pipeline
from labkit import settings as settings_module


def start_replay(
    spark,
    name: str = names.REPLAY_QUERY,
    from_timestamp_ms: int | None = None,
    from_offsets: dict | None = None,
    s: settings_module.Settings | None = None,
    to_kafka: bool = False,
    **build_options,
):
    """Start the pipeline from a timestamp (ms) or explicit offsets, into table ``name``.

    The replay writes to ``<lake>/<name>`` with checkpoint ``<lake>/_checkpoints/<name>``, and
    by default not to the downsampled topics (their consumers already saw those windows).
    """
    s = s or settings_module.get()
    if from_offsets is not None:
        build_options["starting_offsets"] = json.dumps(from_offsets)
    elif from_timestamp_ms is not None:
        build_options["starting_timestamp"] = from_timestamp_ms
    rows = pipeline.build(spark, s, **build_options)
    return pipeline.start(rows, s, query_name=name, table_path=s.table_path(name), trigger=None, to_kafka=to_kafka)


def compare_tables(spark, left_path: str, right_path: str):
    """Rows in one table and not the other (with their multiplicity); empty when identical."""
    from pyspark.sql import functions as F

    left = spark.read.format("delta").load(left_path)
    right = spark.read.format("delta").load(right_path)
    only_left = left.exceptAll(right).withColumn("only_in", F.lit("left"))
    only_right = right.exceptAll(left).withColumn("only_in", F.lit("right"))
    return only_left.unionByName(only_right)
