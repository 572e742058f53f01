"""labkit.lake on the shared pipeline run's Delta table: history, time travel, restore, schema evolution."""

import shutil

import pytest

from labkit import lake

pytestmark = [pytest.mark.services, pytest.mark.spark]


def test_time_travel_reads_earlier_versions_and_restore_brings_one_back(spark, live, tmp_path):
    path = str(tmp_path / "copy")
    shutil.copytree(live["path"], path)  # restore writes: work on a copy of the live table
    history = lake.history(spark, path).collect()
    latest = lake.latest_version(spark, path)
    assert [h.version for h in history] == list(range(latest + 1))
    counts = [lake.read_version(spark, path, v).count() for v in range(latest + 1)]
    assert counts == sorted(counts) and counts[-1] > counts[0], "an append-only table only grows"
    middle = latest // 2
    lake.restore(spark, path, middle)
    assert spark.read.format("delta").load(path).count() == counts[middle]
    assert lake.history(spark, path).collect()[-1].operation == "RESTORE"
    at_time = history[middle].timestamp
    assert lake.read_at(spark, path, str(at_time)).count() == counts[middle]


def test_schema_evolution_adds_a_column_old_rows_read_as_null(spark, live, tmp_path):
    from pyspark.sql import functions as F

    path = str(tmp_path / "evolve")
    shutil.copytree(live["path"], path)
    before = spark.read.format("delta").load(path).count()
    new_rows = spark.read.format("delta").load(path).limit(3).withColumn("comfort_score", F.lit(0.9))
    with pytest.raises(Exception, match="(?i)schema"):
        new_rows.write.format("delta").mode("append").save(path)  # enforcement: refused
    lake.append_with_new_columns(new_rows, path)
    evolved = spark.read.format("delta").load(path)
    assert "comfort_score" in evolved.columns
    assert evolved.where("comfort_score IS NULL").count() == before
