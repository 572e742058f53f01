"""The typical wrong answers of the exercises, recognised, so that a check's hint names the mistake.

A check that only says "the windows differ" sends a learner back to the task's text, which they
have read. Learners who tried the exercises made the same few mistakes (a stream without starting
offsets, a restore off by one, an inner join, ``subtract``...); each function here recognises one
of them from the learner's answer and says what it is, without giving the code (that is
``checks.hint(task, level=2)``'s job).

Two kinds of functions:

* *recognisers* for :func:`labkit.checks.expect_equal_frames` (``mistakes=[...]``): they take the
  result and the expected rows (pandas) and return a hint, or None when it is not their mistake;
* *checks* of answers that are not a table (a number chosen, a function written): they raise
  the same ``AssertionError`` with a hint as :mod:`labkit.checks` does, or print ``OK``.

A function the learner writes is judged by what it does: :func:`try_batch_writer` calls a
``foreachBatch`` writer as a query's life would (a replay, a restart) and returns plain values,
which :func:`check_batch_writer` judges; the same trial shows the colleague's draft failing.

``tests/test_checks.py`` feeds each of them the wrong answer it is meant to recognise.
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime

import numpy as np
import pandas as pd

from labkit import checks, reference, schema


def _whole(value) -> bool:
    """A whole number (numpy's too), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _naive(moment) -> pd.Timestamp:
    """A timestamp as Spark returns it to pandas: naive, in UTC."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert(None) if stamp.tzinfo else stamp


# ---------------------------------------------------------------- recognisers of wrong tables


def window_length(seconds: int):
    """Recognise windows of another length than ``seconds`` (a duration typed wrong)."""

    def recognise(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
        if got.empty or not {"window_start", "window_end"} <= set(got.columns):
            return None
        lengths = sorted({(e - s).total_seconds() for s, e in zip(got["window_start"], got["window_end"])})
        if lengths != [seconds]:
            shown = ", ".join(f"{length:g} s" for length in lengths[:3])
            return f"your windows are {shown} long, not {seconds} s: check the window's duration"
        return None

    return recognise


def reads_other_runs(first: datetime, last: datetime, count: str = "readings", what: str = "readings"):
    """Recognise a stream that read what other runs left in Kafka (no starting offsets).

    Its windows lie outside this run's readings (``first`` to ``last``, event time), or, for a
    run with the same times before, hold more readings than this run sent. Neither has to do
    with the watermark. ``what`` the stream reads: ``"windows"`` for a consumer of the
    downsampled topics.
    """

    def recognise(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
        if got.empty or "window_start" not in got.columns:
            return None
        starts = pd.to_datetime(got["window_start"])
        margin = pd.Timedelta(minutes=1)
        outside = got[(starts < _naive(first) - margin) | (starts > _naive(last) + margin)]
        too_many = False
        if count in got.columns and count in want.columns:
            both = got.merge(want, on=["room_id", "window_start"], suffixes=("", "_expected"))
            too_many = bool((both[count] > both[f"{count}_expected"]).any())
        if outside.empty and not too_many:
            return None
        seen = []
        if len(outside):
            seen.append(
                f"{len(outside)} windows outside this run's readings ({_naive(first):%H:%M:%S}-{_naive(last):%H:%M:%S})"
            )
        if too_many:
            seen.append("windows with more readings than this run sent")
        return (
            f"your stream read {what} of other runs: {' and '.join(seen)}. A Kafka stream reads from where it "
            f"is told to start; told nothing, it starts at the topics' beginning. Tell it where this run's "
            f"{what} begin (its starting offsets)"
        )

    return recognise


# ---------------------------------------------------------------- checks of answers that are not tables


def smallest_delay(lateness_s: pd.Series, allowed_late_share: float) -> int:
    """The smallest whole number of seconds that at most ``allowed_late_share`` of readings exceed."""
    delay = 0
    while (lateness_s > delay).mean() > allowed_late_share:
        delay += 1
    return delay


def check_watermark_choice(watermark_s, lateness_s: pd.Series, allowed_late_share: float) -> None:
    """Exercise 02: a watermark delay chosen from the readings' lateness (seconds behind the newest)."""
    if watermark_s is None or not isinstance(watermark_s, (int, float)) or isinstance(watermark_s, bool):
        checks.fail(
            f"watermark_s must be a number of seconds, got {watermark_s!r}",
            "read the histogram, then set watermark_s to a whole number of seconds",
        )
    best = smallest_delay(lateness_s, allowed_late_share)
    dropped = float((lateness_s > watermark_s).mean())
    if dropped > allowed_late_share:
        checks.fail(
            f"with a {watermark_s:g} s watermark, {dropped:.1%} of the readings ({int((lateness_s > watermark_s).sum())})"
            f" arrive later than that and would be dropped; at most {allowed_late_share:.1%} may be",
            "look at the histogram's tail, not at its bulk: the delay must cover the late readings too",
        )
    if math.ceil(watermark_s) > best:
        checks.fail(
            f"a {watermark_s:g} s watermark drops {dropped:.1%} of the readings, but a smaller delay does as well",
            "every second of delay is a second more before each window's result is written: take the smallest "
            "whole number of seconds that keeps the share",
        )
    checks.passed(f"watermark {watermark_s:g} s: {dropped:.1%} of the readings are later than that")


def check_first_version(first_batch, first_rows, batch_watermarks: dict, expected_windows) -> None:
    """Exercise 05, task 1: the micro-batch that wrote version 0, and version 0's rows.

    ``expected_windows(watermark)`` gives the windows final under a watermark (``labkit.reference``).
    """
    checks.expect(
        first_batch in batch_watermarks,
        f"{first_batch!r} is one of the stream's micro-batch ids",
        hint="the `txn` action's `version` is a micro-batch id (its `appId` names the query)",
    )
    checks.expect(
        first_batch > 0 and expected_windows(batch_watermarks[first_batch - 1]).empty,
        f"no window was final before micro-batch {first_batch}",
        hint="the first micro-batches close no window and write no version: version 0 came later. Read the "
        "txn action of version 0's own file",
    )
    checks.expect_equal_frames(
        first_rows,
        expected_windows(batch_watermarks[first_batch]),
        key=["room_id", "window_start"],
        what="windows of version 0",
        hint="read the table as of version 0, not its latest version",
    )


def _restored_version(history_now: pd.DataFrame):
    newest = history_now.sort_values("version").iloc[-1]
    if newest["operation"] != "RESTORE":
        return None
    parameters = newest["operationParameters"] or {}
    version = parameters.get("version")
    return int(version) if version not in (None, "", "null") else None


def check_restore(history_before: pd.DataFrame, history_now: pd.DataFrame) -> None:
    """Exercise 05, task 2: the table restored to the version before the overwrite.

    ``history_before`` was captured before the overwrite (its newest version is the one to go
    back to); ``history_now`` is the history after the learner's restore, with ``operation``
    and ``operationParameters``.
    """
    wanted = int(history_before["version"].max())
    newest = history_now.sort_values("version").iloc[-1]
    if newest["operation"] != "RESTORE" and int(newest["version"]) == wanted + 1:
        checks.fail(
            f"the table's latest version is still {wanted + 1}, the overwrite: no RESTORE happened",
            f"restoring the version a table is already at does nothing: was {wanted + 1} the version you restored "
            "(off by one)? The `history` you captured in the setup, before the overwrite, ends at the version you want",
        )
    checks.expect(
        newest["operation"] == "RESTORE",
        "the latest version is a RESTORE",
        hint=f"the latest operation is a {newest['operation']}: restore the table (a RESTORE makes a new version)",
    )
    restored = _restored_version(history_now)
    if restored is not None and restored != wanted:
        overwrite = wanted + 1
        if restored == overwrite:
            hint = (
                f"you restored version {restored}, the overwrite itself: a version is the table as that commit "
                "left it. The `history` you captured in the setup, before the overwrite, ends at the version "
                "you want"
            )
        elif restored < wanted:
            hint = (
                f"version {restored} is older than the stream's last version: the windows written after it are "
                "missing. The `history` captured before the overwrite ends at the version you want"
            )
        else:
            hint = f"version {restored} was written after the overwrite: it still lacks the windows it removed"
        checks.fail(f"the table was restored to version {restored}", hint)
    checks.passed(f"restored to version {wanted}, the last one before the overwrite")


def check_keeps_windows_without_rooms(join_rooms, windows, rooms_table, missing_room: str) -> None:
    """Exercise 03: the join keeps a window whose room has no row in the rooms table."""
    rooms_left = rooms_table.filter(rooms_table["room_id"] != missing_room)
    got, want = join_rooms(windows, rooms_left).count(), windows.count()
    lost = windows.filter(windows["room_id"] == missing_room).count()
    if got < want:
        checks.fail(
            f"windows kept when {missing_room} has no row in the rooms table: expected {want}, got {got}",
            f"the {lost} windows of {missing_room} are lost: an inner join keeps only the rows that find a "
            "partner on the other side. Which join keeps every window?",
        )
    checks.expect_equal(got, want, f"windows kept when {missing_room} has no row in the rooms table")


def check_difference(difference, spark) -> None:
    """Exercise 06: ``difference(left, right)`` counts repeats (a multiset difference)."""
    left = spark.createDataFrame([("room_1", 1), ("room_1", 1), ("room_2", 2)], "room_id string, n int")
    right = spark.createDataFrame([("room_1", 1), ("room_2", 2)], "room_id string, n int")
    got = sorted(map(tuple, difference(left, right).collect()))
    if got == []:
        checks.fail(
            "difference of a small example with a repeated row: expected [('room_1', 1)], got []",
            "('room_1', 1) is twice on the left and once on the right, and your difference forgets it: it "
            "removes every copy of a row found on the right (EXCEPT DISTINCT). Two tables that differ only in "
            "a repeated window would look equal",
        )
    checks.expect_equal(got, [("room_1", 1)], "difference of a small example with a repeated row")
    checks.expect_equal(difference(right, left).count(), 0, "nothing of the right side is missing on the left")


def check_dead_letter_predictions(predicted, outcome: dict, explanations: dict) -> None:
    """Exercise 01: what the learner predicted the bridge does with each payload, against what it did.

    ``outcome``: payload name -> the dead-letter reason, or None when it was forwarded;
    ``explanations``: payload name -> the bridge's ``error`` header, for the dead-lettered ones.
    """
    from labkit import schema

    if not isinstance(predicted, dict) or not predicted:
        checks.fail(
            f"predicted must be a dict with one entry per payload, got {predicted!r}",
            "for each name in payloads: None if the bridge forwards it, else the reason it gives",
        )
    missing = [name for name in outcome if name not in predicted]
    if missing:
        checks.fail(f"no prediction for {missing}", "predict every payload, the ordinary one too")
    unknown = sorted({str(r) for r in predicted.values() if r is not None and r not in schema.REASONS})
    if unknown:
        checks.fail(f"{unknown} are not reasons the bridge gives", "the reasons are the keys of schema.REASONS")
    lines = []
    for name, reason in outcome.items():
        guess = predicted[name]
        if guess == reason:
            continue
        if reason is None:
            lines.append(
                f"{name!r} was forwarded, you predicted {guess}: the bridge rejects what is impossible or "
                "unreadable, not what is unusual (the stream job must see an alarming room)"
            )
        elif guess is None:
            lines.append(f"{name!r} went to the dead-letter topic as {reason}: {explanations.get(name, '')}")
        else:
            lines.append(
                f"{name!r} went to the dead-letter topic as {reason}, not {guess}: {explanations.get(name, '')}"
            )
    if lines:
        checks.fail(
            f"{len(lines)} of {len(outcome)} predictions differ from what the bridge did:\n  " + "\n  ".join(lines),
            "each line says why; schema.REASONS says what each reason means",
        )
    checks.passed(f"all {len(outcome)} predictions match what the bridge did")


def batch_cost(measured: pd.DataFrame) -> tuple[float, float]:
    """``(fixed_ms, per_record_ms)`` of a micro-batch, from two runs with different caps.

    ``measured``: the runs' ``watch.progress_table`` rows with a ``cap`` column. The line through
    the median duration of each run's *full* batches (those that read exactly ``cap`` records);
    a negative slope (the records' own cost lost in the noise) counts as 0.
    """
    full = measured[measured["rows in"] == measured["cap"]]
    medians = full.groupby("cap")["batch ms"].median()
    if len(medians) < 2:
        raise ValueError(f"need full batches of two caps, have {list(medians.index)}")
    (small, small_ms), (large, large_ms) = list(medians.items())[0], list(medians.items())[-1]
    per_record = max((large_ms - small_ms) / (large - small), 0.0)
    return small_ms - small * per_record, per_record


def catch_up_ms(cap: int, backlog: int, fixed_ms: float, per_record_ms: float) -> float:
    """How long a backlog takes with this cap: that many batches, each its fixed cost plus its records'."""
    return math.ceil(backlog / cap) * (fixed_ms + per_record_ms * min(cap, backlog))


def smallest_cap(backlog: int, target_ms: float, fixed_ms: float, per_record_ms: float, step: int = 10):
    """The smallest multiple of ``step`` that catches up ``backlog`` within ``target_ms`` (None: none does)."""
    for cap in range(step, backlog + step, step):
        if catch_up_ms(cap, backlog, fixed_ms, per_record_ms) <= target_ms:
            return cap
    return None


def check_cap_choice(cap, measured: pd.DataFrame, backlog: int, target_ms: float, lesson_caps=(50, 200)) -> None:
    """Exercise 08: the smallest maxOffsetsPerTrigger that catches up a backlog in time, from measurements."""
    fixed_ms, per_record_ms = batch_cost(measured)
    wanted = smallest_cap(backlog, target_ms, fixed_ms, per_record_ms)
    model = f"your runs say: a batch costs {fixed_ms:.0f} ms + {per_record_ms:.2f} ms per record"
    if cap == wanted:
        took = catch_up_ms(cap, backlog, fixed_ms, per_record_ms) if cap else float("nan")
        checks.passed(f"cap {cap}: {model}; {backlog:,} records in about {took / 1000:.0f} s")
        return
    if wanted is None:
        checks.fail(
            f"cap {cap!r}, but {model}: even one batch of the whole backlog takes longer than {target_ms:.0f} ms",
            "when no cap catches up in time, the answer is None",
        )
    if not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0:
        checks.fail(f"cap {cap!r}: {model}", "cap must be a whole number of records (a multiple of 10)")
    took = catch_up_ms(cap, backlog, fixed_ms, per_record_ms)
    if cap in lesson_caps:
        hint = f"{cap} is one of lesson 08's caps, not a cap computed from your measurements"
    elif took > target_ms:
        hint = (
            f"{math.ceil(backlog / cap)} batches of {cap} take about {took / 1000:.0f} s: over the target. "
            "Each batch pays the fixed cost"
        )
    else:
        hint = (
            f"{cap} catches up in time, but so does a smaller cap: smaller batches write each result sooner "
            "and hold less in memory"
        )
    checks.fail(f"cap {cap!r}: {model}", hint)


def check_replay_prediction(
    predicted_rows, predicted_messages, before: tuple[int, int], after: tuple[int, int], replayed: int
):
    """Exercise 04: the learner's prediction of Delta's rows and Kafka's messages after a replayed batch.

    ``before`` and ``after``: (Delta rows, messages on the topics) before and after the batch of
    ``replayed`` rows was written again.
    """
    for name, value in (("predicted_rows", predicted_rows), ("predicted_messages", predicted_messages)):
        if not isinstance(value, int) or isinstance(value, bool):
            checks.fail(
                f"{name} must be a whole number, got {value!r}", "predict both counts before running the replay"
            )
    (rows_before, messages_before), (rows, messages) = before, after
    if predicted_rows != rows:
        hint = (
            "Delta skipped the batch: the write names its writer and batch id, and the table's log already has them"
            if predicted_rows == rows_before + replayed
            else f"the table had {rows_before} rows and the batch {replayed}: which of the two sinks can tell a repeat?"
        )
        checks.fail(f"Delta holds {rows} rows after the replay, you predicted {predicted_rows}", hint)
    if predicted_messages != messages:
        hint = (
            "Kafka's sink keeps no record of what it sent: a replayed batch is sent again (at least once), and a "
            "consumer drops the repeats by key"
            if predicted_messages == messages_before
            else f"the topics held {messages_before} messages and the batch has {replayed} rows"
        )
        checks.fail(f"the topics hold {messages} messages after the replay, you predicted {predicted_messages}", hint)
    checks.passed(f"predicted: Delta {rows} rows (the batch skipped), the topics {messages} messages (sent again)")


# ---------------------------------------------------------------- exercise 04: a writer, two queries, a consumer

#: The calls of :func:`try_batch_writer`: a writer's life in short. Batch 0, then batch 0 again (a
#: crash before the checkpoint's commit), then a restarted job (a writer made anew, same app id)
#: replaying batch 0 again, then its next batch.
WRITER_TRIAL = (("first writer", 0), ("first writer", 0), ("restarted writer", 0), ("restarted writer", 1))


def _delta_state(spark, table_path: str) -> tuple[int, int, tuple | None]:
    """``(rows, newest version, (txnAppId, txnVersion) of that version or None)``; ``(0, -1, None)``: no table."""
    try:
        version = spark.sql(f"DESCRIBE HISTORY delta.`{table_path}` LIMIT 1").first().version
    except Exception:  # no table yet: the writer wrote nothing
        return 0, -1, None
    rows = spark.read.format("delta").load(table_path).count()
    txn = spark.read.json(f"{table_path}/_delta_log/{version:020d}.json").where("txn IS NOT NULL").first()
    return rows, version, (txn.txn.appId, txn.txn.version) if txn else None


def try_batch_writer(make_batch_writer, sample, table_path: str, app_id: str, messages_now) -> dict:
    """Exercise 04, task 1: run a ``make_batch_writer`` through :data:`WRITER_TRIAL`, then a batch Delta refuses.

    ``sample`` is a batch of windows; ``table_path`` an empty scratch table; ``messages_now()``
    the messages the downsampled topics hold now. Returns plain values for
    :func:`check_batch_writer`: per call the table's rows, the messages sent so far, how many
    times the batch was computed, and the ``txn`` of the Delta commit it made (None: none, or a
    commit without a txn); then whether the refused batch raised and was left cached.
    """
    from pyspark.sql import functions as F

    spark = sample.sparkSession
    computed = spark.sparkContext.accumulator(0)

    def count_row(_):  # runs once per row each time Spark computes the batch
        computed.add(1)
        return True

    batch = sample.where(F.udf(count_row, "boolean")(F.col("room_id")))
    n, messages_before = sample.count(), messages_now()
    if n == 0:
        raise ValueError("try_batch_writer needs a sample with rows: an empty batch tells nothing")
    writers, steps, version = {}, [], -1
    for who, batch_id in WRITER_TRIAL:
        if who not in writers:
            writers[who] = make_batch_writer(table_path, app_id)
        computed_before = computed.value
        writers[who](batch, batch_id)
        rows, newest, txn = _delta_state(spark, table_path)
        steps.append(
            {
                "writer": who,
                "batch_id": batch_id,
                "rows": rows,
                "messages": messages_now() - messages_before,
                "computed": (computed.value - computed_before) / n,
                "committed": newest > version,
                "txn": txn if newest > version else None,
            }
        )
        version = newest
    refused = batch.withColumn("firmware", F.lit(2))  # a column the table does not have: Delta refuses it
    try:
        writers["restarted writer"](refused, 2)
        raised = False
    except Exception:
        raised = True
    return {
        "rows_per_batch": n,
        "steps": steps,
        "refused_raised": raised,
        "refused_cached": refused.storageLevel.useMemory or refused.storageLevel.useDisk,
    }


def check_batch_writer(trial: dict) -> None:
    """Exercise 04, task 1: the colleague's writer fixed, judged from :func:`try_batch_writer`'s trial.

    Each mistake is recognised by what it does: rows doubled by a replay (no txn, a txnVersion
    that is not the batch id, a txnAppId that changes), a new batch skipped, the batch computed
    once per use, an error swallowed, a failed batch left in memory.
    """
    n, (first, again, restarted, new) = trial["rows_per_batch"], trial["steps"]
    if first["rows"] != n:
        checks.fail(
            f"after batch 0 the table holds {first['rows']} rows, expected the batch's {n}",
            "the writer must append the batch to the Delta table at table_path",
        )
    if first["messages"] != n:
        checks.fail(
            f"batch 0 sent {first['messages']} messages to the downsampled topics, expected {n}",
            "the writer must send the batch to Kafka too (pipeline.to_kafka_messages, the Kafka sink)",
        )
    txn = first["txn"]
    if again["rows"] > n:
        if txn is None:
            hint = (
                "the Delta write carries no txnAppId and txnVersion: nothing tells Delta which writer and which "
                "batch it is, so it appends the replay"
            )
        elif again["txn"] and again["txn"][0] != txn[0]:
            hint = (
                f"txnAppId changed from {txn[0]!r} to {again['txn'][0]!r} between two calls of the same writer: Delta "
                "recognises a replay only under the same txnAppId"
            )
        else:
            written = [s["txn"][1] for s in (first, again) if s["txn"]]
            hint = (
                f"batch 0 was written with txnVersion {' then '.join(map(str, written))}: txnVersion is not the batch "
                "id Spark passes (a count of the writer's own calls?). A replayed batch must carry the same number"
            )
        checks.fail(f"batch 0 written again by the same writer: {again['rows']} rows, expected {n}", hint)
    if restarted["rows"] > n:
        hint = (
            f"the restarted writer wrote with txnAppId {restarted['txn'][0]!r}, the first one with {txn[0]!r}: the "
            "app id is made anew each time the writer is made (a uuid, the time), so after a restart Delta takes the "
            "replay for another writer's batch. It must be the same for every run of the query: app_id, as given"
            if restarted["txn"] and txn and restarted["txn"][0] != txn[0]
            else "the restarted writer did not recognise batch 0: txnAppId and txnVersion must not depend on the "
            "writer object (the app_id given, the batch id given)"
        )
        checks.fail(f"batch 0 replayed by a restarted writer: {restarted['rows']} rows, expected {n}", hint)
    if new["rows"] != 2 * n:
        hint = "batch 1 is a new batch: only a batch id Delta already has from this txnAppId may be skipped"
        if new["rows"] == n and txn:
            hint = (
                "batch 1 was skipped: Delta skips every txnVersion not above the highest it has from this txnAppId, "
                "so txnVersion must be the batch id Spark passes"
                + (
                    f" (yours was {n} for batch 0: the batch's row count?)"
                    if txn[1] == n
                    else f" (yours was {txn[1]} for batch 0, and not above it for batch 1)"
                )
            )
        checks.fail(f"after batch 1 the table holds {new['rows']} rows, expected {2 * n}", hint)
    times = max(s["computed"] for s in trial["steps"])
    if times > 1.5:
        checks.fail(
            f"one call of the writer computed the batch {times:g} times",
            "the writer counts the batch and writes it twice: without persist() Spark computes it again for each "
            "(in a stream: reads Kafka and runs the aggregation again). Persist it first, count it once",
        )
    if not trial["refused_raised"]:
        checks.fail(
            "a batch Delta refused did not stop the writer",
            "a writer that catches the error and returns tells Spark the batch is done: the checkpoint commits it, "
            "and its windows are lost. Let the error through",
        )
    if trial["refused_cached"]:
        checks.fail(
            "the batch Delta refused is still in memory after the writer failed",
            "unpersist() after the writes is skipped when one of them fails: free the batch in a `finally`",
        )
    checks.passed(
        f"batch 0 written once ({n} rows) through a replay and a restart, batch 1 written, Kafka sent each time, the "
        "batch computed once per call, a failed batch raised and freed"
    )


def check_wing_writes(got: pd.DataFrame, expected: pd.DataFrame, app_ids, query_ids: dict) -> None:
    """Exercise 04, task 2: two queries (one per wing) into one Delta table, each window once.

    ``app_ids``: the distinct txnAppIds of the table's commits; ``query_ids``: wing -> the id of
    the query that wrote it (the id a checkpoint keeps: one checkpoint, one id).
    """
    if len(set(query_ids.values())) < len(query_ids):
        checks.fail(
            f"the wings' queries have the same id {next(iter(query_ids.values()))}: they ran on one checkpoint",
            "a checkpoint belongs to one query (it keeps that query's id, offsets and state): the second wing "
            "resumed the first's, as in the lesson's single query. Give each query its own checkpoint",
        )
    app_ids = sorted({a for a in app_ids if a is not None})

    def one_writer_for_two(got_rows, want_rows):
        if len(app_ids) != 1 or len(query_ids) < 2:
            return None
        key = ["room_id", "window_start"]
        missing = want_rows.merge(got_rows[key], on=key, how="left", indicator=True).query("_merge == 'left_only'")
        if missing.empty:
            return None
        return (
            f"both queries write with the one txnAppId {app_ids[0]!r}; {len(missing)} windows are missing, of rooms "
            f"{sorted(missing['room_id'].unique())}. Delta skips a txnVersion not above the highest it has from that "
            "app id, and the second query's batch ids (0, 1, ...) were all seen already from the first. Each "
            "query needs its own txnAppId"
        )

    checks.expect_equal_frames(
        got,
        expected,
        key=["room_id", "window_start"],
        what="windows in Delta",
        hint="each wing's query writes its rooms' windows, with the writer of task 1",
        mistakes=[one_writer_for_two],
    )
    checks.expect(
        len(app_ids) == len(query_ids),
        f"{len(query_ids)} queries wrote with {len(query_ids)} txnAppIds",
        hint=f"the table's commits carry {len(app_ids)} txnAppIds: one per query, the same for each of its batches "
        "(a replay must find its batch under the same id)",
    )


def repeats_kept(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
    """Exercise 04, task 4: recognise a consumer that kept the replayed windows (each window once is asked)."""
    key = [c for c in ("room_id", "window_start") if c in got.columns]
    if got.empty or len(key) < 2 or not got.duplicated(key).any():
        return None
    return (
        f"{int(got.duplicated(key).sum())} windows are there more than once: a replayed batch's repeats are other "
        "Kafka records (another offset, another timestamp), so dropping duplicate *records* keeps them. A repeat "
        "carries the same key: keep one message per key"
    )


def check_consumer_start(read_after_end: int) -> None:
    """Exercise 04, task 4: ``consume(since)`` with ``since`` = the topics' end must read nothing."""
    if read_after_end:
        checks.fail(
            f"consume(since) with since = where the topics end now returned {read_after_end} windows",
            "it reads the topics from their beginning (startingOffsets earliest): other runs' windows, and this "
            "run's twice. Start at `since`",
        )
    checks.passed("consume(since) reads nothing written before since")


# ---------------------------------------------------------------- exercise 06: a replay in one micro-batch


def dropped_as_late(records) -> list[dict]:
    """The readings a job reading in small batches left out as late (a repeat is not one: its first copy counts).

    ``records``: ``(topic, offset, record)`` as :func:`labkit.reference.records_between` gives them.
    """
    kept = {(r["room_id"], r["timestamp"]) for r in reference.on_time(records)}
    return [r for _, _, r in records if (r["room_id"], r["timestamp"]) not in kept]


def windows_holding(readings, window_s: int = 10, slide_s: int = 5) -> set[tuple[str, pd.Timestamp]]:
    """``{(room_id, window_start)}`` of every window that holds one of ``readings`` (naive UTC starts)."""
    return {
        (r["room_id"], _naive(start))
        for r in readings
        for start in reference.window_starts(schema.parse_timestamp(r["timestamp"]), window_s, slide_s)
    }


def check_one_batch_prediction(predicted, records, late_delay_s: float) -> None:
    """Exercise 06, task 1: the windows a replay that reads everything in one micro-batch fills differently.

    In its first micro-batch a query has no watermark yet (it moves only between batches), so
    it drops nothing: the readings the live job dropped as late are counted, each in the
    windows that hold it. ``predicted``: the learner's ``(room_id, window_start)`` pairs.
    """
    late = dropped_as_late(records)
    want = windows_holding(late)
    try:
        got = {(str(room), _naive(start)) for room, start in predicted}
    except (TypeError, ValueError):
        checks.fail(
            f"predicted_late_windows must be a set of (room_id, window_start) pairs, got {predicted!r}",
            "one pair per window the one-batch replay fills with other readings than the live job",
        )
    if got == want:
        if want:
            checks.passed(f"predicted: {len(want)} windows hold one of the {len(late)} readings the live job dropped")
        else:
            checks.passed(
                f"predicted: no window differs, no reading of this run was dropped as late (the run is not longer "
                f"than the {late_delay_s:g} s late delay)"
            )
        return
    if not got:
        hint = (
            "that is the lesson's replay, which cut its batches as the live job did. In its first micro-batch a query "
            f"has no watermark yet (it moves between batches): the {len(late)} readings the live job dropped as late "
            "are all in that one batch, and counted"
        )
    elif got < want and all(windows_holding([r]) & got for r in late):
        hint = (
            "each reading is in two windows (10 s long, sliding every 5 s): a late reading changes both. "
            "reference.window_starts gives them"
        )
    elif got > want:
        hint = (
            f"{len(got - want)} of your windows hold no reading the live job dropped. Out-of-order readings (a few "
            "seconds behind) were kept by the live job too, within its watermark: only the late ones differ"
        )
    else:
        hint = (
            f"the live job dropped {len(late)} readings as late (reference.on_time gives the ones it kept): the "
            "windows that hold them are the ones the one-batch replay fills differently"
        )
    checks.fail(
        f"you predicted {len(got)} windows, the one-batch replay fills {len(want)} differently: {len(got - want)} "
        f"of yours are not among them, {len(want - got)} of them are not in yours",
        hint,
    )


# ---------------------------------------------------------------- exercise 06: a replay start for one window


def window_offsets(room_records: pd.DataFrame, window_start, window_end) -> list[int]:
    """The offsets of the room's readings measured inside ``[window_start, window_end)`` (event time)."""
    times = pd.to_datetime(room_records["event_time"])
    inside = (times >= _naive(window_start)) & (times < _naive(window_end))
    return sorted(int(o) for o in room_records.loc[inside, "offset"])


def _offset_of(replay_from: dict, topic: str):
    parts = replay_from.get(topic)
    if not isinstance(parts, dict):
        return None
    return parts.get("0", parts.get(0))


def check_replay_start(
    replay_from, room_topic: str, room_records: pd.DataFrame, window_start, window_end, before: dict, after: dict
) -> None:
    """Exercise 06, task 4: the starting offsets of a replay that recomputes one window, reading the least.

    ``room_records``: the window's room's records of this run (``offset``, ``event_time``);
    ``before`` and ``after``: where this run's readings begin and end in every raw topic.
    The least a replay can read: the room's topic from the window's earliest reading on (its
    later readings then move the watermark past the window's end), and nothing of the others.
    """
    if not isinstance(replay_from, dict) or not replay_from:
        checks.fail(
            f"replay_from must be a dict like sent.before (topic -> {{partition: offset}}), got {replay_from!r}",
            "give a starting offset for every raw topic the replay subscribes to",
        )
    missing = [t for t in after if _offset_of(replay_from, t) is None]
    if missing:
        checks.fail(
            f"no starting offset for {missing}",
            "the replay subscribes to every room's topic: each needs a start (a topic's end offset reads nothing of it)",
        )
    for topic, partitions in after.items():
        offset, low, high = _offset_of(replay_from, topic), before[topic]["0"], partitions["0"]
        if not _whole(offset):
            checks.fail(f"{topic}: the start {offset!r} is not a whole number", "an offset counts records")
        if offset >= 10**12:
            checks.fail(
                f"{topic}: {offset} is no offset of this topic (this run's records are at offsets {low} to {high - 1})",
                "that is a Kafka timestamp (ms since 1970), not an offset: an offset numbers the records of a "
                "partition. The records' offsets are in room_records; offsets_for_times turns a time into an offset",
            )
        if not low <= offset <= high:
            checks.fail(
                f"{topic}: offset {offset} is outside this run's records ({low} to {high})",
                "start inside this run: before it the replay reads other runs' readings, after its end nothing",
            )
    inside = window_offsets(room_records, window_start, window_end)
    need, chosen = inside[0], _offset_of(replay_from, room_topic)
    if chosen > need:
        cut = sum(1 for o in inside if o < chosen)
        times = pd.to_datetime(room_records["event_time"])
        at_end = room_records.loc[times >= _naive(window_end), "offset"]
        if len(at_end) and chosen >= int(at_end.min()):
            hint = (
                "you start where the window ends: every one of its readings was written before that, so the replay "
                "never sees them and the window is missing. Start where its readings begin"
            )
        elif cut == len(inside):
            hint = "none of the window's readings is read: the window would be missing from the replay"
        else:
            hint = (
                f"the replay would miss {cut} of the window's {len(inside)} readings and write the window from the "
                "others: a wrong average, a wrong count. Out-of-order readings do not come before the window's "
                "first one: start at the earliest reading of the window"
            )
        checks.fail(f"{room_topic}: starting at offset {chosen} cuts {cut} of the window's readings", hint)
    if chosen < need:
        checks.fail(
            f"{room_topic}: starting at offset {chosen} re-reads {need - chosen} records that come before the window",
            "the window's readings all come from its earliest one on: the records before it are read for nothing",
        )
    others = {t: _offset_of(replay_from, t) for t in after if t != room_topic}
    extra = {t: after[t]["0"] - o for t, o in others.items() if o < after[t]["0"]}
    if extra:
        checks.fail(
            f"the replay re-reads {sum(extra.values())} records of other rooms' topics ({sorted(extra)})",
            f"the window is {room_topic.rsplit('.', 1)[-1]}'s: no other room's reading is part of it, and the room's "
            "own later readings move the watermark past the window's end. A topic's end offset reads nothing",
        )
    checks.passed(
        f"the replay starts at {room_topic} offset {need}, the window's earliest reading, and reads "
        f"{after[room_topic]['0'] - need} records, none of the other rooms"
    )


# ---------------------------------------------------------------- exercise 07: a restart done the wrong way


def check_wrong_restart_prediction(
    predicted_rows, predicted_twice, rows_at_kill: int, expected_rows: int, rows_after: int, twice_after: int
) -> None:
    """Exercise 07, task 1: the table after a restart under a new name (a new checkpoint), predicted.

    ``rows_at_kill``: the table's rows when the job was killed; ``expected_rows``: the windows of
    the whole run; ``rows_after`` and ``twice_after``: the rows and the windows found twice after
    the colleague's restart, counted.
    """
    for name, value in (("predicted_rows", predicted_rows), ("predicted_twice", predicted_twice)):
        if not _whole(value):
            checks.fail(f"{name} must be a whole number, got {value!r}", "predict both counts before the restart runs")
    if (predicted_rows, predicted_twice) == (rows_after, twice_after):
        checks.passed(f"predicted: {rows_after} rows, {twice_after} windows twice")
        return
    if predicted_rows == expected_rows or predicted_twice == 0:
        hint = (
            "that is the lesson's restart, on the job's own checkpoint. Another query name is another checkpoint: "
            "it knows nothing of the killed job, starts at --starting-offsets, and has a new query id, so a new "
            "txnAppId that Delta does not connect with the killed job's writes"
        )
    elif predicted_rows == rows_at_kill:
        hint = (
            "the colleague's query does not carry on where the killed job stopped: a new checkpoint starts at "
            "--starting-offsets and writes every window of the run"
        )
    elif predicted_rows == 2 * expected_rows or predicted_twice == expected_rows:
        hint = (
            f"not every window is there twice: only those the killed job had written before the kill "
            f"({rows_at_kill} rows) are written a second time"
        )
    else:
        hint = (
            f"the table held {rows_at_kill} rows at the kill, and the run has {expected_rows} windows: which of them "
            "does the colleague's query write, and which were already there?"
        )
    checks.fail(
        f"after the colleague's restart: {rows_after} rows, {twice_after} windows twice; you predicted "
        f"{predicted_rows} rows, {predicted_twice} twice",
        hint,
    )


def next_batch(planned: list[int], committed: list[int]) -> int:
    """The batch a query restarted on its checkpoint runs first: the one in flight, else the next one."""
    last = max(planned)
    return last if last not in committed else last + 1


def check_restart_diagnosis(
    restore_to, first_batch, delta_has_it, delta_log: pd.DataFrame, job_app_id: str, planned, committed
) -> None:
    """Exercise 07, task 2: the version to restore, and what the job's own checkpoint will do on restart.

    ``delta_log``: one row per Delta version (``version``, ``txnAppId``, ``txnVersion``; NaN for
    a commit without a txn); ``planned`` and ``committed``: the batch ids of the checkpoint's
    ``offsets`` and ``commits`` folders.
    """
    for name, value in (("restore_to", restore_to), ("first_batch", first_batch)):
        if not _whole(value):
            checks.fail(
                f"{name} must be a whole number, got {value!r}", "read it from the Delta log and the checkpoint"
            )
    if not isinstance(delta_has_it, (bool, np.bool_)):
        checks.fail(f"delta_has_it must be True or False, got {delta_has_it!r}", "does the Delta log hold that batch?")
    ours = delta_log[delta_log["txnAppId"] == job_app_id]
    theirs = delta_log[delta_log["txnAppId"].notna() & (delta_log["txnAppId"] != job_app_id)]
    last_ours = int(ours["version"].max())
    if restore_to != last_ours:
        if restore_to in set(theirs["version"]):
            hint = (
                f"version {restore_to} was written by the colleague's query (another txnAppId): the table as of that "
                "version still holds windows the killed job will write again. Look at each version's txnAppId"
            )
        elif restore_to < last_ours:
            hint = (
                f"version {restore_to} is older than the killed job's last write: the batches written after it are "
                "committed in its checkpoint, so the restarted job will not write their windows again: they would "
                "be lost"
            )
        else:
            hint = f"the table has no version {restore_to} written by the killed job"
        checks.fail(f"restore_to = {restore_to}: not the version to go back to", hint)
    planned, committed = sorted(planned), sorted(committed)
    wanted = next_batch(planned, committed)
    in_flight = wanted == planned[-1]
    if first_batch != wanted:
        if first_batch == 0:
            hint = "the job's own checkpoint does not start over: only a new checkpoint begins at batch 0"
        elif in_flight and first_batch == planned[-1] + 1:
            hint = (
                f"offsets/{planned[-1]} exists and commits/{planned[-1]} does not: batch {planned[-1]} was in flight, "
                "and the restart runs it again first, from the offsets recorded before it ran"
            )
        elif committed and first_batch == committed[-1]:
            hint = (
                f"commits/{committed[-1]} exists: batch {committed[-1]} finished, and a finished batch is not run again"
            )
        else:
            hint = "compare the checkpoint's offsets and commits folders: a batch planned and not committed runs first"
        checks.fail(f"first_batch = {first_batch}: not the batch the restart runs first", hint)
    has_it = bool((ours["txnVersion"] == wanted).any())
    if delta_has_it != has_it:
        hint = (
            f"the killed job's commit with txnVersion {wanted} is in the Delta log: the batch's write reached Delta "
            "before the kill, only its commits file did not get written"
            if has_it
            else f"no Delta commit of the killed job (txnAppId {job_app_id}) has txnVersion {wanted}: its rows are "
            "not in the table"
        )
        checks.fail(f"delta_has_it = {delta_has_it}: Delta {'has' if has_it else 'does not have'} batch {wanted}", hint)
    checks.passed(
        f"restore to version {last_ours}; the restart runs batch {wanted} first"
        + (", and Delta skips its write (it has it)" if has_it else ", and writes its windows if it has any")
    )


def restart_leftovers(restored_to, last_job_version: int, colleague_versions):
    """Recognise the wrong fixes of exercise 07, task 3 from the table they leave.

    ``restored_to``: the version the learner's RESTORE went back to (None: no restore after the
    colleague's writes); ``last_job_version``: the killed job's last version.
    """
    colleague_versions = set(colleague_versions)

    def recognise(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
        if got.empty:
            return None
        key = ["room_id", "window_start"]
        twice = bool(got.duplicated(key).any())
        missing = bool(
            len(
                want.merge(got[key].drop_duplicates(), on=key, how="left", indicator=True).query(
                    "_merge == 'left_only'"
                )
            )
        )
        if twice:
            if restored_to is None:
                return (
                    "windows twice: the colleague's rows are still in the table. A restart on the job's own checkpoint "
                    "(the lesson's) cannot remove rows another txnAppId wrote: restore the table first"
                )
            if restored_to in colleague_versions:
                return f"windows twice: version {restored_to} still holds the colleague's first writes"
            return "windows twice: was the job restarted under its own name? Another name is another checkpoint"
        if missing:
            if restored_to is not None and restored_to < last_job_version:
                return (
                    f"windows missing: you restored version {restored_to}, older than the killed job's last version "
                    f"{last_job_version}; its checkpoint does not run committed batches again"
                )
            return (
                "windows missing: the restart did not resume the killed job's checkpoint (the colleague's has read "
                "everything already, and writes nothing more)"
            )
        return None

    return recognise


def check_enriched_stream(written: pd.DataFrame, progress: dict, newest, expected_of, delay_s: int = 10) -> None:
    """Exercise 03, task 2: the colleague's query fixed: each window written once, when its watermark closed it.

    ``written``: what the memory sink holds; ``progress``: the query's last progress report;
    ``newest``: the newest event time the query read; ``expected_of(watermark)``: the windows
    final under a watermark (an aware datetime), as a frame (``labkit.reference``).
    """
    watermark = (progress.get("eventTime") or {}).get("watermark")
    if not watermark or watermark.startswith("1970-01-01T00:00:00"):
        checks.fail(
            "the query has no watermark: Spark cannot tell when a window is final, so it keeps every window's state "
            "for ever, and only a mode that writes windows again (complete, update) accepts it",
            "set the 10 s watermark on the readings' `timestamp`, before the aggregation (the aggregation uses it "
            "only if it comes first)",
        )
    final = datetime.fromisoformat(watermark.replace("Z", "+00:00"))
    mark = _naive(final)
    delay = (_naive(newest) - mark).total_seconds()
    if delay != delay_s:
        checks.fail(
            f"the watermark is {delay:g} s behind the newest reading, not {delay_s} s",
            f"the watermark's delay is withWatermark's second argument: {delay_s} seconds, on `timestamp`",
        )
    key = ["room_id", "window_start"]
    twice = written[written.duplicated(key, keep=False)]
    if len(twice):
        checks.fail(
            f"{twice[key].drop_duplicates().shape[0]} windows were written more than once ({len(twice)} rows)",
            "update mode writes a window again each time a batch changes it, and the memory sink keeps every "
            "version; append mode writes a window once, when the watermark has closed it",
        )
    still_open = written[pd.to_datetime(written["window_end"]) > mark] if len(written) else written
    if len(still_open):
        checks.fail(
            f"{len(still_open)} windows written while still open (they end after the watermark {mark:%H:%M:%S})",
            "complete mode writes every window at every batch, open ones too (their values will still change), and "
            "keeps them all in its state even with a watermark; append mode writes a window once, when final",
        )
    checks.expect_equal_frames(
        written,
        expected_of(final),
        key=key,
        what="windows written so far",
        hint="the windows are lesson 02's, enriched by your join_rooms",
    )


def names_as_of_now(change_at: datetime):
    """Exercise 03, task 3: recognise windows enriched with the room as it is now (processing time).

    That is the lesson's join: the rooms table read when the batch runs. Windows that began
    before the change then carry the new name, where the task asks for the one valid then.
    """

    def recognise(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
        if got.empty or "room_name" not in got.columns:
            return None
        both = got.merge(want, on=["room_id", "window_start"], suffixes=("", "_expected"))
        wrong = both[both["room_name"] != both["room_name_expected"]]
        if wrong.empty or not (pd.to_datetime(wrong["window_start"]) < _naive(change_at)).all():
            return None
        return (
            f"{len(wrong)} windows that began before the change carry the room's new name: that is the room as it "
            "is when the join runs (processing time, the lesson's join). Take the version valid at window_start"
        )

    return recognise


def check_group_reset(group_offset: int, first_at_cut: int, run_start: int, topic_start: int) -> None:
    """Exercise 06, task 3: the group moved to the first record written at or after ``cut_ms``.

    ``run_start``: where this run's records begin in the topic (the lesson moved its group back to
    its live job's start); ``topic_start``: the oldest record the topic still holds.
    """
    if group_offset == first_at_cut:
        checks.passed(f"the group's committed offset: {group_offset}, the first record at or after cut_ms")
        return
    if group_offset == topic_start:
        hint = (
            "the group is at the oldest record the topic holds: a reset without a timestamp goes back to the "
            "beginning, other runs' readings included"
        )
    elif group_offset == run_start:
        hint = (
            "the group is where this run's readings begin, as in the lesson (the live job's start): the task asks "
            "for the moment cut_ms, halfway through"
        )
    elif group_offset == first_at_cut + 1:
        hint = "one record too far: the record written at cut_ms is to be read again too (at or after, not after)"
    else:
        hint = "reset to the Kafka timestamp cut_ms: Kafka finds the first record written at or after it"
    checks.fail(f"the group's committed offset is {group_offset}, expected {first_at_cut}", hint)


def counted_twice(column: str = "motion_events"):
    """Exercise 09, task 3: recognise sums over overlapping windows (each reading counted twice).

    The 10 s windows slide every 5 s, so every reading is in two of them: a minute summed from
    all of them counts each motion event twice.
    """

    def recognise(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
        if got.empty or column not in got.columns:
            return None
        both = got.merge(want, on=["room_id", "window_start"], suffixes=("", "_expected"))
        expected_total = both[f"{column}_expected"].sum()
        if not expected_total or not 1.6 <= both[column].sum() / expected_total <= 2.4:
            return None  # the windows at a minute's edges make it a little more or less than twice
        return (
            f"{column} about twice the expected: the windows slide by half their length, so every reading is in two "
            "of them. Sum only the windows that do not overlap (those starting on a multiple of 10 s)"
        )

    return recognise


def check_quiet_limit(quiet_limit, outcomes: dict, default_limit: float) -> None:
    """Exercise 09, task 1: the smallest candidate ``spike_delta_c`` with no false alert that still finds the spike.

    ``outcomes``: candidate -> ``(false alerts raised, spike found)``, from the detectors in plain
    Python (``alerts.watch_readings``); ``default_limit``: the thresholds table's value, the one
    lesson 09 runs with (and shows finding the spike, on its own readings).
    """
    if quiet_limit not in outcomes:
        checks.fail(
            f"quiet_limit = {quiet_limit!r} is not one of the candidates {sorted(outcomes)}",
            "try each candidate as every room's spike_delta_c, and keep one of them",
        )
    quiet = [limit for limit in sorted(outcomes) if outcomes[limit][0] == 0 and outcomes[limit][1]]
    false_alerts, found = outcomes[quiet_limit]
    if quiet and quiet_limit == quiet[0]:
        checks.passed(f"quiet_limit {quiet_limit:g}: no false alert, the spike found, and no smaller candidate does it")
        return
    if false_alerts:
        checks.fail(
            f"at spike_delta_c {quiet_limit:g} the detectors raise {false_alerts} alerts that match no label",
            "a band that tight takes a room's ordinary wobbles for spikes: a quiet building needs a wider one",
        )
    if not found:
        checks.fail(
            f"at spike_delta_c {quiet_limit:g} the spike is not found",
            "the band is wider than the spike itself: a quiet building that hears nothing is not the answer",
        )
    hint = (
        f"{quiet_limit:g} is the thresholds table's default, the one lesson 09 runs with: it finds the spike there "
        "and here, but the task asks for the smallest quiet candidate"
        if quiet_limit == default_limit
        else "a smaller candidate is quiet too: the tighter the band, the smaller the spike it hears"
    )
    checks.fail(
        f"quiet_limit = {quiet_limit:g}: no false alert and the spike found, but {quiet[0]:g} does as well", hint
    )
