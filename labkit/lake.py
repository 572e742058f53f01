"""The Delta table's past: history, time travel, restore, and schema evolution.

Every write to a Delta table is a numbered *version* recorded in its ``_delta_log`` folder.
Nothing is overwritten in place, so an earlier version can be read (time travel) or made current
again (restore) until ``VACUUM`` deletes the files it needs. These helpers are thin on purpose:
each is one Delta API call a notebook can show next to its SQL twin.
"""

from __future__ import annotations


def history(spark, path: str):
    """One row per version: version, timestamp, operation, its parameters and metrics."""
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, path).history().orderBy("version")


def latest_version(spark, path: str) -> int:
    return history(spark, path).agg({"version": "max"}).first()[0]


def read_version(spark, path: str, version: int):
    """The table as it was at ``version`` (``SELECT ... VERSION AS OF``)."""
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def read_at(spark, path: str, timestamp: str):
    """The table as it was at ``timestamp``, e.g. ``"2026-11-29 10:15:00"`` (``TIMESTAMP AS OF``)."""
    return spark.read.format("delta").option("timestampAsOf", timestamp).load(path)


def restore(spark, path: str, version: int):
    """Make ``version`` the current state again. This is itself a new version: undo is possible."""
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, path).restoreToVersion(version)


def append_with_new_columns(df, path: str) -> None:
    """Append rows that carry columns the table does not have yet (schema evolution).

    Without ``mergeSchema`` Delta refuses the write (schema enforcement protects readers);
    with it, the new columns are added and older rows read them as null.
    """
    df.write.format("delta").mode("append").option("mergeSchema", "true").save(path)


def remove(spark, *paths: str) -> None:
    """Delete tables or checkpoints, so a lesson can be run again from a clean slate.

    Goes through Hadoop's FileSystem API, the one Spark itself writes with, so the same call
    works for a local lake and for an ``s3a://`` bucket. A path that does not exist is fine.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for path in paths:
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        hadoop_path.getFileSystem(conf).delete(hadoop_path, True)
