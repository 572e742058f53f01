"""The ``s3a://`` lake, for real: Spark writes a Delta table through Hadoop's S3A connector.

In the Docker workshop the lake is a MinIO bucket (``s3a://datalake``). CI has no Docker, so
here the lake is a bucket on conftest's ``s3_server``, an S3 *test double* (docs/architecture.md allows one
for this code path only; MinIO stays the real thing in compose). What is real is everything on
the lab's side: ``labkit.stack.jars.resolve("s3a")`` (hadoop-aws and the AWS SDK),
``labkit.spark.s3a_config`` and Delta's S3 log store, speaking HTTP to a server.

Spark runs in a child process for two reasons: one Python process holds one SparkContext, and
the s3a settings are read from the environment when the session is *created*, so they must be
in the environment before the child starts.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.s3a, pytest.mark.spark]

BUCKET = "lab-test-lake"


CHILD = textwrap.dedent("""
    import json
    from labkit import settings, spark as spark_module

    s = settings.get()
    session = spark_module.get_session("labkit-s3a-test", verbose=False)
    table = s.table_path("time_travel")
    session.createDataFrame([("room_1", 1), ("room_2", 2)], "room_id string, n int") \\
        .write.format("delta").save(table)                       # version 0
    session.createDataFrame([("room_3", 3)], "room_id string, n int") \\
        .write.format("delta").mode("overwrite").save(table)     # version 1

    def rows(df):
        return sorted([r.room_id, r.n] for r in df.collect())

    print(json.dumps({
        "table": table,
        "fs": session.sparkContext._jvm.org.apache.hadoop.fs.Path(table)
              .getFileSystem(session.sparkContext._jsc.hadoopConfiguration()).getClass().getName(),
        "v0": rows(session.read.format("delta").option("versionAsOf", 0).load(table)),
        "latest": rows(session.read.format("delta").load(table)),
        "history": [h.operation for h in session.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()],
    }))
    session.stop()
""")


def test_delta_table_through_s3a_with_time_travel(s3_server, tmp_path):
    script = tmp_path / "s3a_child.py"
    script.write_text(CHILD)
    env = {**os.environ, **s3_server.lake_environment(BUCKET)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])

    assert outcome["table"] == f"s3a://{BUCKET}/time_travel"
    assert outcome["fs"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert outcome["v0"] == [["room_1", 1], ["room_2", 2]], "time travel reads version 0 back"
    assert outcome["latest"] == [["room_3", 3]]
    assert outcome["history"] == ["WRITE", "WRITE"], "newest first: the overwrite, then the first write"

    # The files really are in the bucket: both commits of the Delta log, and Parquet data.
    keys = s3_server.keys(BUCKET)
    assert "time_travel/_delta_log/00000000000000000000.json" in keys
    assert "time_travel/_delta_log/00000000000000000001.json" in keys
    assert any(k.startswith("time_travel/") and k.endswith(".parquet") for k in keys)
