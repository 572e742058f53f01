"""A streaming query's checkpoint, read before a restart: the one case Spark does not resume.

The checkpoint keeps two logs, one small file per micro-batch:

* ``offsets/<batch id>``: written when a batch is *planned*: ``v1``, then a JSON line with the
  ``batchWatermarkMs`` the batch runs with, then the Kafka offsets it reads up to;
* ``commits/<batch id>``: written when the batch has *finished*: ``v1``, then a JSON line with
  ``nextBatchWatermarkMs``, the watermark the batch's own readings moved it to.

When the last data batch moves the watermark past some windows, Spark runs one more batch with
no new data (a *no-data batch*) in which the windowed aggregate emits them. It decides to run
it by asking the previous batch's plan, which only the process that ran that batch has. So if
the job stops in the instant between committing its last data batch and planning the no-data
batch, the restarted query has no previous plan and waits for new data; on a replay of a
bounded set of readings none ever comes, and the last windows of every room stay unwritten.
Lesson 07 met this once in CI, when the kill fell in that instant.

:func:`redo_batch_owing_a_watermark` turns that case into the ordinary one: it removes the last
commit, so the restarted query runs the last batch again (as after any crash in mid-batch),
remembers its plan, and then runs the no-data batch. Running it again is safe: Delta skips the
batch's write (same ``txnAppId`` and ``txnVersion``), and the downsampled topics receive its rows
again, which they already may (they are at least once).
"""

from __future__ import annotations

import json


def _file_system(spark, path: str):
    """Hadoop's FileSystem for ``path`` (local folder or ``s3a://`` bucket) and the path itself."""
    hadoop_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def batch_ids(spark, folder: str) -> list[int]:
    """The batch ids that have a file in ``folder`` (``<checkpoint>/offsets`` or ``/commits``)."""
    fs, path = _file_system(spark, folder)
    if not fs.exists(path):
        return []
    names = (status.getPath().getName() for status in fs.listStatus(path))
    return sorted(int(name) for name in names if name.isdigit())


def _metadata(spark, file: str) -> dict:
    """The JSON line after the version line of an ``offsets`` or ``commits`` file."""
    text = spark.read.text(file, wholetext=True).first().value
    return json.loads(text.splitlines()[1])


def batch_owing_a_watermark(spark, checkpoint: str) -> int | None:
    """The last batch, if it is committed and moved the watermark that no batch has applied yet."""
    planned = batch_ids(spark, f"{checkpoint}/offsets")
    if not planned or planned[-1] not in batch_ids(spark, f"{checkpoint}/commits"):
        return None  # a fresh checkpoint, or a batch in flight that Spark runs again by itself
    last = planned[-1]
    ran_with = _metadata(spark, f"{checkpoint}/offsets/{last}")["batchWatermarkMs"]
    moved_to = _metadata(spark, f"{checkpoint}/commits/{last}").get("nextBatchWatermarkMs", 0)
    return last if moved_to > ran_with else None


def redo_batch_owing_a_watermark(spark, checkpoint: str) -> int | None:
    """Remove the last commit if a no-data batch is owed, so a restart runs it; the batch id, or None."""
    last = batch_owing_a_watermark(spark, checkpoint)
    if last is not None:
        fs, path = _file_system(spark, f"{checkpoint}/commits/{last}")
        fs.delete(path, False)  # on a local folder, Hadoop removes its .crc file with it
        print(
            f"checkpoint: batch {last} moved the watermark, and the job stopped before the batch that applies it; "
            f"running batch {last} again so that batch follows (Delta skips its rows, Kafka may get them twice)"
        )
    return last
