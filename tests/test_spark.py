"""A Spark session from labkit reads Kafka and writes and reads Delta, locally and on a cluster."""

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import Producer

from labkit import stack as stack_module
from labkit import topics

pytestmark = [pytest.mark.services, pytest.mark.spark]


def fill_topic(s, count: int) -> tuple[str, list[dict]]:
    name = f"test.spark.{uuid.uuid4().hex[:6]}"
    topics.ensure_topics([name], s=s)
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    records = [{"n": i, "room_id": f"room_{i % 8 + 1}"} for i in range(count)]
    for record in records:
        producer.produce(name, key=record["room_id"], value=json.dumps(record))
    assert producer.flush(30) == 0
    return name, records


def test_session_is_configured_for_the_lab(spark, settings):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.sql.shuffle.partitions") == str(settings.shuffle_partitions)
    assert "delta-spark" in conf.get("spark.jars") and "spark-sql-kafka" in conf.get("spark.jars")
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    # what the stream execution reads (a misspelled key would leave Spark's 10 ms): an idle query
    # asks Kafka every 100 ms, not a hundred times a second (bench/idle.py)
    assert spark._jsparkSession.sessionState().conf().streamingPollingDelay() == 100


def test_kafka_to_delta_and_back(spark, stack, tmp_path):
    name, records = fill_topic(stack, 100)
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
        .option("subscribe", name)
        .option("startingOffsets", "earliest")
        .load()
    )
    table = str(tmp_path / "delta-table")
    df.selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value").write.format("delta").save(table)
    back = spark.read.format("delta").load(table).collect()
    assert sorted((r.key, json.loads(r.value)["n"]) for r in back) == sorted((r["room_id"], r["n"]) for r in records)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()
    assert [h.operation for h in history] == ["WRITE"]


CLUSTER_SCRIPT = textwrap.dedent("""
    import json, sys
    from labkit import spark as spark_module
    session = spark_module.get_session("labkit-cluster-test")
    topic, table = sys.argv[1], sys.argv[2]
    df = (session.read.format("kafka").option("kafka.bootstrap.servers", "{bootstrap}")
          .option("subscribe", topic).option("startingOffsets", "earliest").load())
    df.selectExpr("CAST(value AS STRING) AS value").write.format("delta").save(table)
    values = [json.loads(r.value)["n"] for r in session.read.format("delta").load(table).collect()]
    executors = session.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    print(json.dumps({{"master": session.sparkContext.master, "values": sorted(values), "executors": executors}}))
    session.stop()
""")


def test_the_same_through_a_standalone_cluster(stack, tmp_path):
    """`labkit up --spark-cluster` starts a master and a worker; a spark:// session uses them.

    It runs in a child process: one Python process holds one SparkContext at a time.
    """
    name, records = fill_topic(stack, 50)
    try:
        stack_module.up(stack, spark_cluster=True)
        master = f"spark://127.0.0.1:{stack.spark_master_port}"
        script = tmp_path / "cluster.py"
        script.write_text(CLUSTER_SCRIPT.format(bootstrap=stack.kafka_bootstrap))
        env = {**os.environ, "LABKIT_SPARK_MASTER": master}
        result = subprocess.run(
            [sys.executable, str(script), name, str(tmp_path / "table")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        assert outcome["master"] == master
        assert outcome["executors"] >= 2, "the driver and at least one executor on the worker"
        assert outcome["values"] == [r["n"] for r in records]
        # The worker has the jars at the same path: the application loads them from there
        # instead of copying them into its work folder (~700 MB per application with s3a).
        copied = sorted(p.name for p in (stack.state_dir / "spark" / "work").rglob("*.jar"))
        assert copied == [], f"the executors copied the jars into the worker's work folder: {copied[:5]}"
    finally:
        stack_module.down(stack, only=["spark-worker", "spark-master"])


HOLDING_SCRIPT = textwrap.dedent("""
    import pathlib, sys, time
    from labkit import spark as spark_module
    session = spark_module.get_session(sys.argv[1], verbose=False)
    assert session.range(1000).count() == 1000        # a job that needs an executor
    pathlib.Path(sys.argv[2]).write_text("ran")         # tell the test
    while not pathlib.Path(sys.argv[3]).exists():       # hold the application, as a notebook does
        time.sleep(0.2)
    session.stop()
""")


def test_a_notebook_and_a_stream_job_share_the_cluster(stack, tmp_path):
    """Lesson 07 on a cluster: the notebook's session holds its cores while `labkit stream` runs.

    Both are applications of the same worker. If the worker offered fewer task slots than two
    applications take (``spark.cores.max`` each), the second would wait forever ("Initial job has
    not accepted any resources"), which is what happened before the worker got 4 cores.
    """
    script = tmp_path / "hold.py"
    script.write_text(HOLDING_SCRIPT)
    release = tmp_path / "release"
    env = {**os.environ, "LABKIT_SPARK_MASTER": f"spark://127.0.0.1:{stack.spark_master_port}"}
    children = []
    try:
        stack_module.up(stack, spark_cluster=True)
        for name in ("notebook", "stream-job"):
            ran = tmp_path / f"{name}.ran"
            with open(tmp_path / f"{name}.log", "wb") as log:  # the child keeps its own handle
                children.append(
                    subprocess.Popen(
                        [sys.executable, str(script), f"labkit-test-{name}", str(ran), str(release)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
            deadline = time.monotonic() + 180
            while not ran.exists() and children[-1].poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            assert ran.exists(), (
                f"the {name} application ran no job (with {len(children) - 1} other application(s) "
                "holding the cluster); its log ends with:\n" + (tmp_path / f"{name}.log").read_text()[-1500:]
            )
        release.touch()
        assert [child.wait(timeout=60) for child in children] == [0, 0]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        stack_module.down(stack, only=["spark-worker", "spark-master"])


@pytest.mark.parametrize("long_running", [False, True])
def test_sparks_jvm_loads_its_classes_from_the_class_archive(settings, tmp_path, long_running):
    """`make setup` (labkit jars spark) records the archive; every session's JVM maps it.

    A notebook's session compiles with the quick compiler only, a long-running job's does not.
    """
    from labkit import spark as spark_module

    archive = spark_module.class_archive(settings)
    assert archive.exists(), f"no class archive at {archive}: `labkit jars spark` should have written it"
    class_log = tmp_path / "class-load.log"
    script = textwrap.dedent(
        f"""
        from pyspark.sql import SparkSession
        from labkit import settings, spark
        config = spark.session_config(settings.get(), "class-archive-test", long_running={long_running})
        config["spark.driver.extraJavaOptions"] += " -Xlog:class+load=info:file={class_log}"
        session = SparkSession.builder.config(map=config).getOrCreate()
        session.range(3).count()
        jvm = session.sparkContext._jvm
        print(list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()))
        hotspot = jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
        bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(hotspot)
        print(bean.getVMOption("ReservedCodeCacheSize").getValue())
        """
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = class_log.read_text().splitlines()
    from_archive = [line for line in lines if "source: shared objects file (top)" in line]
    # Spark's start loads ~18,500 classes; without the archive none of them comes from it
    assert len(from_archive) > len(lines) / 2, f"{len(from_archive)} of {len(lines)} classes from {archive}"
    jvm_arguments, code_cache = run.stdout.strip().splitlines()[-2:]
    assert ("-XX:TieredStopAtLevel=1" in jvm_arguments) != long_running, jvm_arguments
    # C1 alone would get a 48 MB code cache, which lesson 09 filled ("Out of space in CodeCache")
    assert int(code_cache) >= 240 * 2**20, f"code cache {int(code_cache) / 2**20:.0f} MB: {jvm_arguments}"


def test_a_truncated_class_archive_is_never_used(settings, tmp_path):
    """A JVM given a half-written archive crashes, so the build checks it before it renames it."""
    from labkit import spark as spark_module

    whole = spark_module.class_archive(settings)
    truncated = tmp_path / "truncated.jsa"
    truncated.write_bytes(whole.read_bytes()[:1_000_000])
    assert spark_module.archive_is_sound(whole)
    assert not spark_module.archive_is_sound(truncated)
    assert not spark_module.archive_is_sound(tmp_path / "missing.jsa")
