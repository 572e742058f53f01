"""Watching a streaming query: its progress as a line, as a table, and until it has caught up.

After every micro-batch Spark leaves a *progress report* (a dict: ``query.lastProgress`` is the
newest, ``query.recentProgress`` the last hundred or so). The lessons, ``labkit stream``, the
benchmarks and the tests all read the same few fields of it, so they read them here:

* :func:`describe_progress`: one line for a log or a notebook;
* :func:`progress_table`: one row per micro-batch that ran, as a pandas DataFrame;
* :func:`run_until_caught_up`: block until the query has processed what Kafka holds now;
* :func:`run_until_idle`: the same for any source (a Delta table read as a stream, say).
"""

from __future__ import annotations

import json
import time

from labkit import settings as settings_module
from labkit import topics
from labkit.progress import Ticker


def describe_progress(progress: dict | None) -> str:
    """One line from a query's progress report: batch, rows, rate, watermark, state, late rows."""
    if not progress:
        return "waiting for the first batch..."
    state = progress.get("stateOperators", [])
    state_rows = sum(op.get("numRowsTotal", 0) for op in state)
    late = sum(op.get("numRowsDroppedByWatermark", 0) for op in state)
    watermark = progress.get("eventTime", {}).get("watermark", "-")
    return (
        f"batch {progress['batchId']}: {progress['numInputRows']} rows in, "
        f"{progress.get('processedRowsPerSecond', 0):.0f} rows/s, watermark {watermark}, "
        f"state rows {state_rows}, late rows dropped {late}"
    )


def progress_table(reports: list[dict]):
    """One row per micro-batch that ran (``query.recentProgress``), as a pandas DataFrame.

    Spark also reports idle moments, when no batch ran (no ``addBatch`` duration): they are left
    out. Columns: ``batch``; ``ready_s``, when the batch's result was ready, in seconds since the
    first batch started; ``rows in``; ``batch ms``; ``processed rows/s`` (NaN for an empty
    batch); ``watermark`` (naive UTC, NaT before the first one); ``state rows``; ``late rows
    dropped``; ``partitions`` of the stateful steps; ``rows out`` written to the sink.
    """
    import pandas as pd

    ran = [p for p in reports if "addBatch" in p.get("durationMs", {})]
    columns = [
        "batch",
        "ready_s",
        "rows in",
        "batch ms",
        "processed rows/s",
        "watermark",
        "state rows",
        "late rows dropped",
        "partitions",
        "rows out",
    ]
    if not ran:
        return pd.DataFrame(columns=columns)
    began = pd.Timestamp(ran[0]["timestamp"])
    rows = []
    for p in ran:
        state = p.get("stateOperators", [])
        watermark = pd.Timestamp(p.get("eventTime", {}).get("watermark", "1970-01-01T00:00:00Z"))
        rows.append(
            {
                "batch": p["batchId"],
                "ready_s": (pd.Timestamp(p["timestamp"]) - began).total_seconds()
                + p["durationMs"]["triggerExecution"] / 1000,
                "rows in": p["numInputRows"],
                "batch ms": p["durationMs"]["triggerExecution"],
                "processed rows/s": p["processedRowsPerSecond"] if p["numInputRows"] else float("nan"),
                "watermark": watermark.tz_convert(None) if watermark.year > 1970 else pd.NaT,
                "state rows": sum(op.get("numRowsTotal", 0) for op in state),
                "late rows dropped": sum(op.get("numRowsDroppedByWatermark", 0) for op in state),
                "partitions": max((op.get("numShufflePartitions", 0) for op in state), default=0),
                "rows out": p.get("sink", {}).get("numOutputRows", 0),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    frame["watermark"] = pd.to_datetime(frame["watermark"])
    return frame


def caught_up(query, targets: dict[str, dict[str, int]]) -> bool:
    """Whether the query has read up to ``targets`` and then run a batch with no new data.

    That last empty batch matters: it is the one in which the advanced watermark closes the
    final windows and they are written out.
    """
    progress = query.lastProgress
    if not progress or progress["numInputRows"] != 0:
        return False
    reached = json.loads(progress["sources"][0]["endOffset"] or "{}") if progress["sources"] else {}
    return all(reached.get(t, {}).get(p, -1) >= o for t, parts in targets.items() for p, o in parts.items())


def run_until_caught_up(
    query, room_ids=None, timeout: float = 600, s: settings_module.Settings | None = None, every: float = 5.0
) -> dict:
    """Block until ``query`` has processed everything in Kafka now, printing progress lines.

    Returns the last progress report. Raises TimeoutError (with the last progress) if the
    query does not catch up in time, and the query's own error if it failed.
    """
    targets = topics.end_offsets(topics.raw_topics(room_ids), s)
    return _wait_for(query, lambda: caught_up(query, targets), "catch up", timeout, every)


def run_until_idle(query, timeout: float = 600, every: float = 5.0) -> dict:
    """Block until ``query`` has processed all its source holds now, then run out of work.

    For sources other than Kafka (a Delta table read as a stream: ``labkit.rollups``).
    ``processAllAvailable`` returns once the input is read; the batch with no new data that
    follows (where the advanced watermark closes the last windows) may still be to run, so this
    waits for a report of a batch that read nothing (or of no batch needed: Spark sends one
    every 10 s while idle). Returns the last progress.
    """
    query.processAllAvailable()

    def idle() -> bool:
        # a batch that read nothing: the no-data batch, or Spark's report that none was needed
        progress = query.lastProgress
        return bool(progress) and progress["numInputRows"] == 0 and not query.status.get("isTriggerActive")

    return _wait_for(query, idle, "finish", timeout, every)


def _wait_for(query, done, what: str, timeout: float, every: float) -> dict:
    """Poll ``done()`` with a progress line until it holds; the query's last progress report.

    Raises the query's own error if it failed, RuntimeError if it stopped first, TimeoutError
    (with the last progress) after ``timeout`` seconds.
    """
    ticker = Ticker(f"{query.name}:", every=every)
    deadline = time.monotonic() + timeout
    while not done():
        if query.exception() is not None:
            raise query.exception()
        if not query.isActive:
            raise RuntimeError(f"query {query.name} stopped before it could {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{query.name} did not {what} in {timeout:.0f} s: {describe_progress(query.lastProgress)}"
            )
        ticker.update(describe_progress(query.lastProgress))
        time.sleep(0.5)
    ticker.done(describe_progress(query.lastProgress))
    return query.lastProgress


def follow(query, poll_s: float = 0.5) -> None:
    """Print one line per micro-batch until the query stops (``labkit stream`` without an end)."""
    last = None
    while query.isActive:
        progress = query.lastProgress
        if progress and progress["batchId"] != last:
            last = progress["batchId"]
            print(describe_progress(progress), flush=True)
        time.sleep(poll_s)


def stop_between_batches(query, timeout: float = 60) -> None:
    """Stop ``query`` after the micro-batch it is running, not in the middle of it.

    ``query.stop()`` during a batch cancels its Spark jobs and interrupts the ``foreachBatch``
    function. The query stops all the same (the batch is redone on restart), but its thread
    goes down on an error; once, with 80 rooms, it printed a ``java.lang.StackOverflowError``
    whose frames were all Java's regular-expression engine, while Spark handled that
    interruption. Waiting for the running batch to finish (its duration at most) leaves nothing
    to interrupt. A new batch may still begin in the instant before ``stop()``: rare, harmless.
    """
    deadline = time.monotonic() + timeout
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.05)
    query.stop()
