"""The one SparkSession factory of the lab.

Every notebook and command gets Spark from :func:`get_session`, so they all share the same
choices, each made here once:

* the master: ``local[N]`` (the default) or a ``spark://`` standalone cluster, from settings;
* Delta Lake's SQL extension and catalog, and the Kafka connector, from the jar cache
  (``spark.jars``, not ``spark.jars.packages``: see :mod:`labkit.stack.jars`);
* ``s3a://`` settings and jars only when the lake root is an S3 bucket;
* ``spark.sql.shuffle.partitions`` sized for a lab (Spark's default of 200 turns every
  micro-batch of a stateful query into 200 tiny tasks);
* quiet logs, and the Spark UI address printed so a learner can watch jobs run;
* a class-data archive of the JVM's classes (:func:`build_class_archive`), so every start of
  Spark's JVM skips most of its class loading.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from labkit import settings as settings_module
from labkit.stack import jars
from labkit.stack.java import java_executable, require_java

LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")

#: Lines Spark's JVM prints on stderr before any log configuration applies. Spark's launcher
#: always adds the incubating Vector API module (``--add-modules=jdk.incubator.vector``), and the
#: JVM then warns about it at every start; no JVM option turns that warning off.
JVM_NOISE = (b"WARNING: Using incubator modules",)

_gateway = None  # Spark's JVM for this process, started once by _launch_gateway


#: For every session but a long-running job's: the JVM compiles with its quick compiler (C1)
#: only. Java compiles a hot method twice, quickly (C1) then thoroughly (C2); on 2 cores C2's
#: compiler threads take the cores the first batches need, and a lesson's small queries never
#: repay it. Measured: ``labkit demo``'s first window 2.8-3.8 s sooner (three A/B pairs);
#: lessons 02, 04, 06, 08 and solution 04 under papermill 5-9% sooner, on 25-31% less CPU
#: (2026-12-07). A job that runs for hours (``labkit stream`` and ``labkit alerts`` unless
#: ``--until-caught-up``, the benchmarks) asks for ``long_running``: on C1's code it ran slower
#: (the live job's latency excess p50 2.8 s instead of 2.1, backlog throughput -23%).
QUICK_COMPILER_ONLY = "-XX:TieredStopAtLevel=1"

#: With C1 alone, Java sizes its code cache as for a small client program: 48 MB instead of the
#: 240 MB it reserves with both compilers. A long notebook filled that (lesson 09, run one notebook
#: at a time: ``OPTIMIZE`` failed with "Out of space in CodeCache for method handle intrinsic"),
#: so the quick compiler comes with the usual size. Reserved address space, not memory in use.
FULL_CODE_CACHE = "-XX:ReservedCodeCacheSize=240m"


#: How long a query started without a trigger interval (the lab's default: batches back to back)
#: waits before it asks its sources again when the last ask found nothing new. Spark's 10 ms
#: means a hundred offset requests a second to the Kafka broker while the building is quiet:
#: 0.40 of a core between Spark and the broker for a query with nothing to do, 0.04 with 100 ms
#: (``bench/idle.py``, 2026-12-08). While readings flow, each batch finds new ones and starts at
#: once; after a quiet spell, the first batch starts at most 0.1 s later.
IDLE_POLL = "100ms"


def session_config(s: settings_module.Settings, app_name: str, long_running: bool = False) -> dict[str, str]:
    """Every Spark setting the lab uses, as a plain dict a learner can print and read."""
    jar_files = jars.resolve("spark", s)
    if s.lake_root.startswith("s3a://"):
        jar_files += jars.resolve("s3a", s)
    quiet_logs = f"-Dlog4j.configurationFile=file:{LOG4J2_CONFIG}"
    driver_options = quiet_logs
    archive = class_archive(s)
    if archive.exists():
        driver_options += f" {ARCHIVE_QUIET} -XX:SharedArchiveFile={archive}"
    if not long_running:
        driver_options += f" {QUICK_COMPILER_ONLY} {FULL_CODE_CACHE}"
    config = {
        "spark.app.name": app_name,
        "spark.master": s.spark_master,
        **jar_config(s, jar_files),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(s.shuffle_partitions),
        # Delta rebuilds a table's state (e.g. to check an idempotent write's txnVersion) with
        # 50 tasks by default: 5 s per micro-batch on 2 cores, 1 s with one task.
        "spark.databricks.delta.snapshotPartitions": "1",
        "spark.sql.streaming.pollingDelay": IDLE_POLL,
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": s.spark_driver_memory,
        "spark.driver.extraJavaOptions": driver_options,
        "spark.executor.extraJavaOptions": quiet_logs,
        "spark.ui.showConsoleProgress": "false",
        # executors (in a standalone cluster) must run the same Python as the driver
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.warehouse.dir": str(s.state_dir / "spark-warehouse"),
    }
    if s.spark_master.startswith("spark://"):
        config["spark.cores.max"] = "2"
        # 512m: the lessons' data is small, and two applications (a notebook and lesson 07's
        # stream job) must fit the compose worker's memory limit (docker-compose.yml).
        config["spark.executor.memory"] = "512m"
    if s.lake_root.startswith("s3a://"):
        config.update(s3a_config(s))
    return config


#: The JVM's log of its class-data sharing: off. It warns, for instance, when the archive no
#: longer matches the jars (after an upgrade); the JVM then loads its classes as usual.
ARCHIVE_QUIET = "-Xlog:cds*=off"


def class_archive(s: settings_module.Settings) -> Path:
    """Where the class-data archive of Spark's JVM is kept, beside the jars it was made from.

    Its name carries what it was made with (pyspark's version and its jars folder, the JVM's
    class path, with the time that folder was made, and the Java runtime): a reinstalled pyspark
    or another Java gets another file. The JVM skips an archive whose jars have changed.
    """
    import pyspark

    java = java_executable().resolve()
    spark_jars = Path(pyspark.__file__).resolve().parent / "jars"
    made_with = f"{pyspark.__version__} {spark_jars} {spark_jars.stat().st_mtime_ns} {java}"
    return s.jars_dir / f"spark-classes-{hashlib.sha256(made_with.encode()).hexdigest()[:12]}.jsa"


def build_class_archive(s: settings_module.Settings, archive: Path | None = None) -> Path:
    """Record the classes a lab session loads into a class-data archive; return its path.

    Spark's JVM finds, reads and verifies some 18,000 classes in its jars at every start. Java's
    class-data sharing (JDK 13+) maps them from an archive instead: ``get_session()`` and two
    small jobs measured 8.3-9.6 s instead of 11.1-14.9 s on 2 cores. The archive is written by a
    JVM when it exits (``-XX:ArchiveClassesAtExit``), so a short Spark session runs here in a
    child process: a Delta write and read, a Kafka source, a windowed streaming aggregation
    written with ``foreachBatch``. It is written under a temporary name and renamed once a JVM
    has started with it: a half-written archive crashes the JVM.
    """
    archive = archive or class_archive(s)
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    workload = "import sys; from labkit import spark; spark._archive_workload(sys.argv[1])"
    try:
        subprocess.run([sys.executable, "-c", workload, str(partial)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        partial.unlink(missing_ok=True)
        raise
    if not archive_is_sound(partial):
        partial.unlink(missing_ok=True)
        raise RuntimeError("the class archive written is unreadable")
    partial.rename(archive)
    return archive


def archive_is_sound(archive: Path) -> bool:
    """Does a JVM start with this archive? A truncated one crashes it (a mismatched one is skipped)."""
    if not archive.exists():
        return False
    # a crash would write its report (hs_err_pid*.log) into the current folder: send it nowhere
    no_report = ["-XX:ErrorFile=/dev/null", "-XX:-CreateCoredumpOnCrash"]
    check = subprocess.run(
        [str(require_java()), *no_report, ARCHIVE_QUIET, f"-XX:SharedArchiveFile={archive}", "-version"],
        capture_output=True,
    )
    return check.returncode == 0


def _archive_workload(partial: str) -> None:
    """The session :func:`build_class_archive` records: what the lessons' jobs load."""
    import tempfile

    from pyspark.sql import SparkSession
    from pyspark.sql.functions import avg, col, count, window

    s = settings_module.get()
    config = session_config(s, "labkit-class-archive")
    config["spark.master"] = "local[2]"  # the driver's classes are the ones recorded
    config["spark.driver.extraJavaOptions"] = (
        f"-Dlog4j.configurationFile=file:{LOG4J2_CONFIG} {ARCHIVE_QUIET} -XX:ArchiveClassesAtExit={partial}"
    )
    os.environ.setdefault("JAVA_HOME", str(require_java().resolve().parent.parent))
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = SparkSession.builder.config(map=config).getOrCreate()
    with tempfile.TemporaryDirectory(prefix="labkit-class-archive-") as work:
        spark.range(100).selectExpr("id", "id % 8 AS room").write.format("delta").save(f"{work}/table")
        spark.read.format("delta").load(f"{work}/table").groupBy("room").count().collect()
        # the Kafka source: resolved and planned (no broker needed until it runs)
        kafka = spark.readStream.format("kafka").option("kafka.bootstrap.servers", "127.0.0.1:9")
        kafka.option("subscribe", "raw").load().selectExpr("CAST(value AS STRING)").printSchema()
        windows = (
            spark.readStream.format("rate")
            .option("rowsPerSecond", 50)
            .load()
            .withWatermark("timestamp", "1 second")
            .groupBy(window("timestamp", "2 seconds", "1 second"), (col("value") % 8).alias("room"))
            .agg(avg("value").alias("avg"), count("*").alias("n"))
        )

        def write(batch, batch_id):
            batch.persist()
            batch.write.format("delta").mode("append").option("txnAppId", "archive").option(
                "txnVersion", batch_id
            ).save(f"{work}/windows")
            batch.unpersist()

        query = (
            windows.writeStream.outputMode("append")
            .foreachBatch(write)
            .option("checkpointLocation", f"{work}/checkpoint")
            .trigger(processingTime="500 milliseconds")
            .start()
        )
        query.awaitTermination(6)
        query.stop()
    spark.stop()


def jar_config(s: settings_module.Settings, jar_files: list) -> dict[str, str]:
    """How Spark finds the jars: shipped to each application, or read where they already are.

    ``spark.jars`` makes the driver serve every jar to the executors, and each executor copies
    them into its work folder: with the s3a group (the AWS SDK) that is ~700 MB per application.
    On a ``spark://`` cluster the worker has the jars already, at the same path: the compose
    containers share one image (``LABKIT_JARS_DIR=/opt/labkit/jars``) and ``labkit up
    --spark-cluster`` runs on this machine. So the driver and the executors put them on their
    class path instead, and nothing is copied. ``local[N]`` has no executors to ship to.
    """
    if not s.spark_master.startswith("spark://"):
        return {"spark.jars": ",".join(str(j) for j in jar_files)}
    class_path = os.pathsep.join(str(j) for j in jar_files)
    return {"spark.driver.extraClassPath": class_path, "spark.executor.extraClassPath": class_path}


def s3a_config(s: settings_module.Settings) -> dict[str, str]:
    """Hadoop's S3A settings for an S3-compatible store such as MinIO."""
    return {
        "spark.hadoop.fs.s3a.endpoint": s.s3_endpoint,
        "spark.hadoop.fs.s3a.access.key": s.s3_access_key,
        "spark.hadoop.fs.s3a.secret.key": s.s3_secret_key,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(s.s3_endpoint.startswith("https")).lower(),
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        # Delta needs a LogStore that knows S3 has no atomic rename (single writer here).
        "spark.delta.logStore.s3a.impl": "io.delta.storage.S3SingleDriverLogStore",
    }


def get_session(
    app_name: str = "labkit",
    s: settings_module.Settings | None = None,
    verbose: bool = True,
    long_running: bool = False,
):
    """Create (or return the running) SparkSession configured for the lab.

    ``long_running``: the session runs a job for hours, and compiles its hot code thoroughly;
    a notebook's session compiles with the quick compiler only (:data:`QUICK_COMPILER_ONLY`).
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    s = s or settings_module.get()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java = require_java()
    os.environ.setdefault("JAVA_HOME", str(java.resolve().parent.parent))
    (s.state_dir / "spark-warehouse").mkdir(parents=True, exist_ok=True)
    if s.embedded:
        # Everything runs on this machine: bind to loopback (and skip Spark's warning that the
        # host name resolves to loopback). In compose the containers must reach the driver.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The Python processes Spark starts for a stateful Python stream (transformWithStateInPandas,
    # labkit.alerts) take their interpreter from this variable, not from spark.pyspark.python:
    # without it they run the system's python3, which has no pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    started = time.monotonic()
    conf = SparkConf().setAll(session_config(s, app_name, long_running).items())
    if _gateway is None:
        SparkContext(conf=conf, gateway=_launch_gateway(conf))
    session = SparkSession.builder.config(conf=conf).getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    _quiet_query_context_logs()
    if verbose:
        print(
            f"Spark {session.version} on {s.spark_master} ready in {time.monotonic() - started:.1f} s; "
            f"UI: {session.sparkContext.uiWebUrl}"
        )
    return session


def _quiet_query_context_logs() -> None:
    """Silence the JSON log line (~11 KB: Java's stack as a string) pyspark writes for each error.

    pyspark logs every analysis error it raises (an unresolved column, say) at ERROR level, with
    the JVM's stack trace, before the exception itself is shown. The exception says the same in
    one line; the log only buries it.
    """
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _launch_gateway(conf):
    """Start Spark's JVM as pyspark does, but with its stderr passed through a filter.

    pyspark's ``launch_gateway`` takes the arguments of the JVM's ``Popen`` for this purpose.
    Every stderr line except :data:`JVM_NOISE` is copied to this process's stderr, so Spark's
    warnings and errors still show where they did before.
    """
    from pyspark.java_gateway import launch_gateway

    global _gateway
    _gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})

    def copy_stderr(stream) -> None:
        for line in iter(stream.readline, b""):
            if not line.startswith(JVM_NOISE):
                os.write(2, line)

    threading.Thread(target=copy_stderr, args=(_gateway.proc.stderr,), name="spark-stderr", daemon=True).start()
    return _gateway
