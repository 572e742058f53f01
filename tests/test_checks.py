"""labkit.checks: the checks and hints notebooks and exercises give, without services."""

import re
from datetime import datetime, timezone

import pandas as pd
import pytest

from labkit import checks, hints, reference
from labkit import mistakes as mistakes_module
from labkit.errors import LabkitError
from labkit.mistakes import (
    check_cap_choice,
    check_dead_letter_predictions,
    check_difference,
    check_first_version,
    check_keeps_windows_without_rooms,
    check_replay_prediction,
    check_restore,
    check_watermark_choice,
    reads_other_runs,
    window_length,
)


def test_todo_raises_a_friendly_not_implemented_error():
    with pytest.raises(NotImplementedError) as failure:
        checks.todo("compute the 10-second tumbling windows")
    assert isinstance(failure.value, checks.TodoError)
    assert str(failure.value).startswith("TODO: compute the 10-second tumbling windows.\n")
    assert "solutions/" in str(failure.value)


def test_expect_columns_names_the_missing_ones_and_hints():
    frame = pd.DataFrame({"room_id": ["room_1"], "count": [3]})
    checks.expect_columns(frame, ["room_id"])
    with pytest.raises(AssertionError, match=r"missing column\(s\) \['readings'\].*\n  hint: .*alias"):
        checks.expect_columns(frame, ["room_id", "readings"])
    with pytest.raises(AssertionError, match="exactly the columns"):
        checks.expect_columns(frame, ["count", "room_id"], exact=True)


def test_expect_equal_frames_ignores_order_and_tolerates_rounding():
    expected = pd.DataFrame({"room_id": ["room_1", "room_2"], "avg": [0.3, 1.0]})
    actual = pd.DataFrame({"avg": [1.0, 0.1 + 0.2], "room_id": ["room_2", "room_1"], "extra": [0, 0]})
    checks.expect_equal_frames(actual, expected, key=["room_id"])


def test_expect_equal_frames_reports_missing_extra_and_differing_rows():
    expected = pd.DataFrame({"room_id": ["room_1", "room_2"], "n": [1, 2]})
    actual = pd.DataFrame({"room_id": ["room_2", "room_3"], "n": [5, 1]})
    with pytest.raises(AssertionError) as failure:
        checks.expect_equal_frames(actual, expected, key=["room_id"], what="windows", hint="look at the key")
    message = str(failure.value)
    assert "1 windows only in the result, e.g. [('room_3',)]" in message
    assert "1 windows missing from the result, e.g. [('room_1',)]" in message
    assert "('room_2',): n=5 (expected 2)" in message
    assert message.endswith("hint: look at the key")


def test_expect_and_expect_equal():
    checks.expect(True, "fine")
    checks.expect_equal(2, 2, "two")
    with pytest.raises(AssertionError, match="readings: expected 3, got 2\n  hint: count again"):
        checks.expect_equal(2, 3, "readings", hint="count again")


# ---------------------------------------------------------------- empty answers never pass


def test_an_empty_result_never_passes():
    expected = pd.DataFrame({"room_id": ["room_1"], "window_start": [pd.Timestamp("2026-01-30 14:00")], "n": [3]})
    empty = expected.iloc[0:0]
    with pytest.raises(AssertionError, match="the result is empty"):
        checks.expect_equal_frames(empty, expected, key=["room_id", "window_start"])
    # the other way round: an answer that makes the expected rows empty (a wrong id) proves nothing either
    with pytest.raises(AssertionError, match="nothing to compare with, the expected frame is empty"):
        checks.expect_equal_frames(empty, empty, key=["room_id", "window_start"])
    checks.expect_equal_frames(empty, empty, allow_empty=True)


# ---------------------------------------------------------------- recognised mistakes, named in the hint


def _windows(starts, readings, length_s=20, room="room_1"):
    starts = [pd.Timestamp(s) for s in starts]
    return pd.DataFrame(
        {
            "room_id": [room] * len(starts),
            "window_start": starts,
            "window_end": [s + pd.Timedelta(seconds=length_s) for s in starts],
            "readings": readings,
        }
    )


def test_a_stream_without_starting_offsets_is_told_about_them_not_the_watermark():
    """Exercise 02, task 3: a stream that read other runs' readings (windows before or after, counts too high)."""
    first = datetime(2026, 1, 30, 14, 0, tzinfo=timezone.utc)
    last = datetime(2026, 1, 30, 14, 1, 59, tzinfo=timezone.utc)
    expected = _windows(["2026-01-30 14:00:00", "2026-01-30 14:00:10"], [40, 40])
    mistakes = [reads_other_runs(first, last)]
    earlier_windows = pd.concat([_windows(["2026-01-30 11:00:00"], [40]), expected])
    later_windows = pd.concat([expected, _windows(["2026-02-05 09:00:00"], [40])])  # another lesson's later readings
    counted_twice = _windows(["2026-01-30 14:00:00", "2026-01-30 14:00:10"], [80, 80])  # a run with the same start
    for wrong in (earlier_windows, later_windows, counted_twice):
        with pytest.raises(AssertionError) as failure:
            checks.expect_equal_frames(
                wrong,
                expected,
                key=["room_id", "window_start"],
                what="windows",
                hint="the task's hint",
                mistakes=mistakes,
            )
        hint = str(failure.value).split("hint: ", 1)[1]
        assert "other runs" in hint and "starting offsets" in hint and "watermark" not in hint
    # a different mistake (a window missing) is not blamed on the starting offsets
    with pytest.raises(AssertionError, match="hint: the task's hint$"):
        checks.expect_equal_frames(
            expected.iloc[:1], expected, key=["room_id", "window_start"], hint="the task's hint", mistakes=mistakes
        )


def test_windows_of_the_wrong_length_are_named():
    expected = _windows(["2026-01-30 14:00:00", "2026-01-30 14:00:30"], [60, 60], length_s=30)
    lesson_windows = _windows(["2026-01-30 14:00:00", "2026-01-30 14:00:10"], [20, 20], length_s=10)
    with pytest.raises(AssertionError, match="your windows are 10 s long, not 30 s"):
        checks.expect_equal_frames(
            lesson_windows, expected, key=["room_id", "window_start"], mistakes=[window_length(30)]
        )


def test_a_watermark_is_chosen_from_the_lateness_histogram_not_copied_from_the_lesson():
    """Exercise 02, task 4: 2 % of the readings are 45 s late; at most 1 % may be dropped."""
    lateness = pd.Series([0.0] * 970 + [2.5] * 10 + [44.2] * 20)
    assert mistakes_module.smallest_delay(lateness, 0.01) == 45
    with pytest.raises(AssertionError, match=r"10 s watermark, 2.0% of the readings \(20\).*\n  hint: .*tail"):
        check_watermark_choice(10, lateness, 0.01)  # the lesson's delay
    with pytest.raises(AssertionError, match="a smaller delay does as well"):
        check_watermark_choice(60, lateness, 0.01)
    with pytest.raises(AssertionError, match="must be a number of seconds, got None"):
        check_watermark_choice(None, lateness, 0.01)  # the empty answer
    check_watermark_choice(45, lateness, 0.01)


def test_version_0_must_be_found_not_assumed():
    """Exercise 05, task 1: `first_batch = 0` and an empty version are refused."""
    window = _windows(["2026-02-03 11:00:00"], [40])
    batch_watermarks = {0: "w0", 1: "w1", 2: "w2"}
    final = {"w0": window.iloc[0:0], "w1": window.iloc[0:0], "w2": window}

    with pytest.raises(AssertionError, match="no window was final before micro-batch 0.*\n  hint: .*version 0 came"):
        check_first_version(0, window.iloc[0:0], batch_watermarks, final.get)
    with pytest.raises(AssertionError, match="expected frame is empty"):  # a batch that wrote nothing, an empty read
        check_first_version(1, window.iloc[0:0], batch_watermarks, final.get)
    with pytest.raises(AssertionError, match="the result is empty"):
        check_first_version(2, window.iloc[0:0], batch_watermarks, final.get)
    check_first_version(2, window, batch_watermarks, final.get)


def _history(operations):
    return pd.DataFrame(
        [{"version": v, "operation": op, "operationParameters": params} for v, (op, params) in enumerate(operations)]
    )


def test_a_restore_off_by_one_points_at_the_history_captured_before_the_overwrite():
    """Exercise 05, task 2: versions 0-2 by the stream, 3 the overwrite, 4 the learner's restore."""
    stream = [("STREAMING UPDATE", {"outputMode": "Append"})] * 3
    before = _history(stream)
    overwrite = ("WRITE", {"mode": "Overwrite"})
    off_by_one = _history(stream + [overwrite, ("RESTORE", {"version": "3"})])
    with pytest.raises(AssertionError) as failure:
        check_restore(before, off_by_one)
    hint = str(failure.value).split("hint: ", 1)[1]
    assert "the overwrite itself" in hint and "`history`" in hint and "restoreToVersion" not in hint
    with pytest.raises(AssertionError, match="older than the stream's last version"):
        check_restore(before, _history(stream + [overwrite, ("RESTORE", {"version": "1"})]))
    # restoring the overwrite's own version makes no commit at all (Delta: a restore to the current version is a
    # no-op), so the history still ends with the overwrite
    with pytest.raises(AssertionError) as failure:
        check_restore(before, _history(stream + [overwrite]))
    hint = str(failure.value).split("hint: ", 1)[1]
    assert "does nothing" in hint and "off by one" in hint and "`history`" in hint and "restoreToVersion" not in hint
    with pytest.raises(AssertionError, match="the latest version is a RESTORE"):  # some other write after it
        check_restore(before, _history(stream + [overwrite, ("WRITE", {"mode": "Append"})]))
    check_restore(before, _history(stream + [overwrite, ("RESTORE", {"version": "2"})]))


# ---------------------------------------------------------------- two-level hints


def test_a_hint_nudges_first_and_gives_the_answer_on_request(capsys):
    checks.hint("02-3")
    nudge = capsys.readouterr().out
    assert "watermark" in nudge and "level=2" in nudge
    assert "withWatermark" not in nudge and "starting_offsets" not in nudge, "a nudge gives no code"
    checks.hint("02-3", level=2)
    answer = capsys.readouterr().out
    assert "withWatermark" in answer and "starting_offsets" in answer, "the solution's code, read from solutions/"
    with pytest.raises(LabkitError, match="no exercise task '02-9'"):
        checks.hint("02-9")


def test_every_task_of_the_solutions_has_a_nudge_and_an_answer_and_its_markdown_no_code():
    """Each `checks.task("NN-k")` of a solution has a nudge and an answer; the task texts keep the code back."""
    import nbformat

    tasks = {}
    for path in sorted(hints.SOLUTIONS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for task_id in re.findall(r'checks\.task\("(\d\d-\d)"\)', cell.source):
                tasks[task_id] = path.name
    assert len(tasks) >= 12, tasks
    for task_id in tasks:
        assert task_id in hints.NUDGES, f"task {task_id} ({tasks[task_id]}) has no nudge"
        assert "BEGIN SOLUTION" not in hints.answer(task_id) and hints.answer(task_id).count("\n") >= 2
    exercise_text = "\n".join(
        c.source
        for p in sorted((hints.SOLUTIONS.parent / "exercises").glob("*.ipynb"))
        for c in nbformat.read(p, as_version=4).cells
        if c.cell_type == "markdown"
    )
    for giveaway in ("exceptAll", "mergeSchema", "how='left'", "restoreToVersion(version"):
        assert giveaway not in exercise_text, f"the exercises' text gives the answer away: {giveaway}"


# ---------------------------------------------------------------- labkit's message before Spark's


def test_a_task_cell_that_stopped_early_is_named_instead_of_a_name_error():
    with pytest.raises(LabkitError, match=r"query not defined: the cell of task 02-3 did not finish(.|\n)*checks.hint"):
        checks.require({"spark": object()}, "query", task_id="02-3")
    checks.require({"query": object()}, "query", task_id="02-3")


def test_a_todo_inside_a_task_says_where_the_nudge_is():
    with pytest.raises(checks.TodoError, match=r"TODO: fix it\.(.|\n)*solutions/(.|\n)*checks.hint\('02-3'\)"):
        with checks.task("02-3"):
            checks.todo("fix it")


@pytest.mark.services
@pytest.mark.spark
def test_spark_refusals_become_a_short_labkit_message_first(spark, capsys, tmp_path):
    frame = spark.createDataFrame([("room_1", 1)], "room_id string, n int")
    with pytest.raises(checks.SparkMistake) as failure:
        with checks.task("02-1"):
            frame.select("roomid").collect()
    printed = capsys.readouterr().out
    assert printed.startswith("error: task 02-1: Spark cannot find the column `roomid` (the frame has `room_id`")
    assert "checks.hint('02-1')" in printed
    cause = failure.value.__cause__
    assert type(cause).__name__ == "AnalysisException" and cause.__traceback__ is None, "Spark's error, chained, short"

    # the colleague's query of exercise 02: the watermark set after the aggregation
    from pyspark.sql import functions as F

    rate = spark.readStream.format("rate").option("rowsPerSecond", 1).load()
    counted = rate.groupBy(F.window("timestamp", "10 seconds")).count().withWatermark("window", "10 seconds")
    with pytest.raises(checks.SparkMistake, match="has no watermark(.|\n)*before the aggregation"):
        with checks.task("02-3"):
            counted.writeStream.format("memory").queryName("never_started").outputMode("append").start()

    # exercise 05, task 3: a plain append of a new column
    path = str(tmp_path / "table")
    frame.write.format("delta").save(path)
    with pytest.raises(checks.SparkMistake, match="a column the table does not have(.|\n)*writer asks for it"):
        with checks.task("05-3"):
            frame.withColumn("band", F.lit("ok")).write.format("delta").mode("append").save(path)

    # code meant to fail is shown failing, and the notebook goes on; code meant to fail that works is an error
    with checks.shows_error("02-3"):
        frame.select("roomid").collect()
    assert "as expected, Spark refused it" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="meant to fail, and it did not"):
        with checks.shows_error("02-3"):
            frame.select("room_id").collect()


@pytest.mark.services
@pytest.mark.spark
def test_an_inner_join_and_subtract_are_named(spark):
    """Exercise 03: an inner join loses the windows of a room without metadata; 06: subtract forgets repeats."""
    windows = spark.createDataFrame([("room_1", 1.0), ("room_2", 2.0), ("room_2", 3.0)], "room_id string, t double")
    rooms = spark.createDataFrame([("room_1", "Lab"), ("room_2", "Office")], "room_id string, room_name string")

    def inner(w, r):
        return w.join(r, "room_id")

    with pytest.raises(AssertionError, match="the 2 windows of room_2 are lost: an inner join"):
        check_keeps_windows_without_rooms(inner, windows, rooms, "room_2")
    check_keeps_windows_without_rooms(lambda w, r: w.join(r, "room_id", "left"), windows, rooms, "room_2")

    with pytest.raises(AssertionError, match="your difference forgets it(.|\n)*EXCEPT DISTINCT"):
        check_difference(lambda left, right: left.subtract(right), spark)
    with pytest.raises(AssertionError):  # the empty answer
        check_difference(lambda left, right: left.limit(0), spark)
    check_difference(lambda left, right: left.exceptAll(right), spark)


def test_dead_letter_predictions_name_each_wrong_one_and_why():
    """Exercise 01: an alarming room is forwarded; an impossible humidity is not; {} is no answer."""
    outcome = {"ordinary": None, "hot room": None, "humidity 104 %": "out_of_range"}
    why = {"humidity 104 %": "humidity=104.0 is outside the possible range 0.0..100.0 %"}
    with pytest.raises(AssertionError, match="must be a dict with one entry per payload, got {}"):
        check_dead_letter_predictions({}, outcome, why)
    with pytest.raises(AssertionError, match=r"no prediction for \['hot room'\]"):
        check_dead_letter_predictions({"ordinary": None, "humidity 104 %": "out_of_range"}, outcome, why)
    with pytest.raises(AssertionError) as failure:
        check_dead_letter_predictions(
            {"ordinary": None, "hot room": "out_of_range", "humidity 104 %": None}, outcome, why
        )
    message = str(failure.value)
    assert "2 of 3 predictions differ" in message
    assert "'hot room' was forwarded, you predicted out_of_range: the bridge rejects what is impossible" in message
    assert "'humidity 104 %' went to the dead-letter topic as out_of_range: humidity=104.0 is outside" in message
    with pytest.raises(AssertionError, match=r"\['too_hot'\] are not reasons the bridge gives"):
        check_dead_letter_predictions({"ordinary": None, "hot room": "too_hot", "humidity 104 %": None}, outcome, why)
    check_dead_letter_predictions({"ordinary": None, "hot room": None, "humidity 104 %": "out_of_range"}, outcome, why)


def _batches(cap, durations_ms, rows=None):
    rows = rows or [cap] * len(durations_ms)
    return pd.DataFrame({"cap": cap, "rows in": rows, "batch ms": durations_ms})


def test_a_cap_is_computed_from_the_measurements_not_taken_from_the_lesson():
    """Exercise 08: 300 ms + 2 ms per record; 9,600 records within 60 s.

    By hand: 80 records -> 120 batches of 460 ms = 55.2 s (in time); 70 -> 138 batches of 440 ms
    = 60.7 s (too late). The partial and empty batches are left out of the estimate.
    """
    measured = pd.concat(
        [_batches(40, [380, 370, 390, 90], rows=[40, 40, 40, 7]), _batches(240, [780, 790, 770, 60], [240] * 3 + [0])]
    )
    assert mistakes_module.batch_cost(measured) == pytest.approx((300.0, 2.0))
    check_cap_choice(80, measured, 9600, 60_000)
    with pytest.raises(AssertionError, match="50 is one of lesson 08's caps"):
        check_cap_choice(50, measured, 9600, 60_000)
    with pytest.raises(AssertionError, match="138 batches of 70 take about 61 s: over the target"):
        check_cap_choice(70, measured, 9600, 60_000)
    with pytest.raises(AssertionError, match="so does a smaller cap"):
        check_cap_choice(300, measured, 9600, 60_000)
    with pytest.raises(AssertionError, match="a whole number"):
        check_cap_choice(None, measured, 9600, 60_000)  # the empty answer
    # bigger batches measured faster (noise): the per-record cost counts as 0, the fixed cost is the small cap's
    noisy = pd.concat([_batches(40, [500, 500]), _batches(240, [450, 450])])
    assert mistakes_module.batch_cost(noisy) == pytest.approx((500.0, 0.0))
    # one batch of the whole backlog already takes too long: no cap does it, and the answer is None
    with pytest.raises(AssertionError, match="even one batch of the whole backlog"):
        check_cap_choice(9600, measured, 9600, 10_000)
    check_cap_choice(None, measured, 9600, 10_000)


def test_a_replay_prediction_names_which_sink_remembers():
    """Exercise 04: 100 rows and 100 messages; a batch of 8 replayed -> Delta 100, Kafka 108."""
    before, after = (100, 100), (100, 108)
    with pytest.raises(
        AssertionError, match="Delta holds 100 rows after the replay, you predicted 108\n  hint: Delta skip"
    ):
        check_replay_prediction(108, 108, before, after, 8)
    with pytest.raises(AssertionError, match="you predicted 100\n  hint: Kafka's sink keeps no record"):
        check_replay_prediction(100, 100, before, after, 8)
    with pytest.raises(AssertionError, match="predicted_rows must be a whole number, got None"):
        check_replay_prediction(None, None, before, after, 8)  # the empty answer
    check_replay_prediction(100, 108, before, after, 8)


# ---------------------------------------------------------------- exercise 06, task 1: a replay in one micro-batch


def _stamp(seconds: float) -> str:
    return (pd.Timestamp("2026-02-04 13:00:00") + pd.Timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3
    ] + "Z"


def _records_with_a_late_reading():
    """room_1 every 0.5 s for 100 s; 13:00:07.250 arrives 90 s late, 13:00:30.250 2 s late (out of order, kept)."""
    times = [0.5 * i for i in range(200)]
    times.insert(times.index(97.0), 7.25)  # late: after the readings of 13:01:37
    times.insert(times.index(32.5), 30.25)  # out of order: after 13:00:32.000
    return [("t.room_1", offset, {"room_id": "room_1", "timestamp": _stamp(s)}) for offset, s in enumerate(times)]


def test_a_one_batch_replay_counts_the_late_readings_and_the_prediction_names_each_mistake():
    """Exercise 06, task 1: the late reading 13:00:07.250 is in the windows starting 13:00:00 and 13:00:05."""
    records = _records_with_a_late_reading()
    at = pd.Timestamp("2026-02-04 13:00:00")
    right = {("room_1", at), ("room_1", at + pd.Timedelta(seconds=5))}

    def hint_of(answer):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_one_batch_prediction(answer, records, late_delay_s=90)
        return str(failure.value)

    assert "predicted_late_windows must be a set of (room_id, window_start) pairs" in hint_of(None)
    # the lesson's answer: the replay equals the live table, nothing differs
    lesson = hint_of(set())
    assert "the lesson's replay" in lesson and "no watermark yet" in lesson and "the 1 readings" in lesson
    assert "two windows" in hint_of({("room_1", at + pd.Timedelta(seconds=5))})  # one window per reading
    out_of_order = right | {("room_1", at + pd.Timedelta(seconds=25)), ("room_1", at + pd.Timedelta(seconds=30))}
    assert "Out-of-order readings" in hint_of(out_of_order)
    assert "reference.on_time" in hint_of({("room_2", at)})
    mistakes_module.check_one_batch_prediction(right, records, late_delay_s=90)
    # window starts as aware datetimes (reference.window_starts gives those) are fine too
    mistakes_module.check_one_batch_prediction(
        [(room, start.tz_localize("UTC").to_pydatetime()) for room, start in right], records, late_delay_s=90
    )
    # a run without late readings: nothing differs, and an empty prediction is the right one
    on_time = [r for r in records if r[2]["timestamp"] != _stamp(7.25)]
    mistakes_module.check_one_batch_prediction(set(), on_time, late_delay_s=90)
    assert "hold no reading the live job dropped" in str(
        pytest.raises(AssertionError, mistakes_module.check_one_batch_prediction, right, on_time, 90).value
    )


def test_the_reference_keeps_the_late_readings_of_a_one_batch_query():
    """keep_late: the late reading is kept (a repeat still is not); without it, only the live job's readings."""
    records = _records_with_a_late_reading()
    records.append(("t.room_1", len(records), dict(records[10][2])))  # a repeat of 13:00:05.000
    live = [r["timestamp"] for r in reference.on_time(records)]
    one_batch = [r["timestamp"] for r in reference.on_time(records, keep_late=True)]
    assert _stamp(7.25) not in live and _stamp(7.25) in one_batch
    assert len(one_batch) == len(live) + 1 == len(records) - 1
    assert [r["timestamp"] for r in mistakes_module.dropped_as_late(records)] == [_stamp(7.25)]


# ---------------------------------------------------------------- exercise 06, task 4: a replay start for one window


def _room_records(first_offset=100, n=60, start="2026-02-04 13:00:00"):
    """One reading every 0.5 s, in offset order; reading 7 of each 10 s arrives out of order (2 s behind)."""
    times = [pd.Timestamp(start) + pd.Timedelta(seconds=0.5 * i) for i in range(n)]
    times[27], times[26] = times[26], times[27]  # 13:00:13.5 before 13:00:13.0: inside the window, kept
    return pd.DataFrame(
        {
            "offset": range(first_offset, first_offset + n),
            "kafka_ms": [1_770_210_000_000 + i for i in range(n)],
            "event_time": times,
        }
    )


def test_a_replay_start_must_cover_the_window_and_read_the_least():
    """The window 13:00:10-13:00:20 of room_1: its readings are offsets 120-139; room_2 is another room."""
    records = _room_records()
    before = {"t.room_1": {"0": 100}, "t.room_2": {"0": 50}}
    after = {"t.room_1": {"0": 160}, "t.room_2": {"0": 110}}
    window = (pd.Timestamp("2026-02-04 13:00:10"), pd.Timestamp("2026-02-04 13:00:20"))

    def check(answer):
        mistakes_module.check_replay_start(answer, "t.room_1", records, *window, before, after)

    def hint_of(answer):
        with pytest.raises(AssertionError) as failure:
            check(answer)
        return str(failure.value)

    for empty in (None, {}):
        assert "replay_from must be a dict like sent.before" in hint_of(empty)
    assert "no starting offset for ['t.room_2']" in hint_of({"t.room_1": {"0": 120}})
    # the lesson's replay: from the live job's first offsets, every topic
    lesson = hint_of(before)
    assert "re-reads 20 records that come before the window" in lesson and "read for nothing" in lesson
    # starting at the window's end: the window is missing
    assert "you start where the window ends" in hint_of({"t.room_1": {"0": 140}, "t.room_2": {"0": 110}})
    # starting a few seconds into the window: part of its readings cut, a wrong average
    cut = hint_of({"t.room_1": {"0": 125}, "t.room_2": {"0": 110}})
    assert "cuts 5 of the window's readings" in cut and "miss 5 of the window's 20 readings" in cut
    assert "a wrong average" in cut
    # a Kafka timestamp where an offset belongs
    stamp = hint_of({"t.room_1": {"0": int(records["kafka_ms"][20])}, "t.room_2": {"0": 110}})
    assert "Kafka timestamp" in stamp and "not an offset" in stamp
    # the right start for the room, but the other rooms read too
    others = hint_of({"t.room_1": {"0": 120}, "t.room_2": {"0": 50}})
    assert "re-reads 60 records of other rooms' topics" in others and "watermark" in others
    check({"t.room_1": {"0": 120}, "t.room_2": {"0": 110}})
    check({"t.room_1": {0: 120}, "t.room_2": {0: 110}})  # partitions as ints are fine too


# ---------------------------------------------------------------- exercise 07: a restart done the wrong way


def test_the_colleagues_restart_is_predicted_not_taken_for_the_lessons():
    """Exercise 07, task 1: 30 rows at the kill, 100 windows in the run; a new checkpoint writes all 100 again."""
    rows_at_kill, windows, after, twice = 30, 100, 130, 30

    def hint_of(rows, repeated):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_wrong_restart_prediction(rows, repeated, rows_at_kill, windows, after, twice)
        return str(failure.value).split("hint: ", 1)[1]

    lesson = hint_of(100, 0)  # the lesson's restart: the same checkpoint, every window once
    assert "the lesson's restart" in lesson and "new query id" in lesson and "txnAppId" in lesson
    assert "does not carry on where the killed job stopped" in hint_of(30, 30)
    assert "not every window is there twice" in hint_of(200, 100)
    with pytest.raises(AssertionError, match="predicted_rows must be a whole number, got None"):
        mistakes_module.check_wrong_restart_prediction(None, None, rows_at_kill, windows, after, twice)
    mistakes_module.check_wrong_restart_prediction(130, 30, rows_at_kill, windows, after, twice)


def _delta_log(rows):
    return pd.DataFrame(rows, columns=["version", "txnAppId", "txnVersion"])


def test_the_restart_diagnosis_reads_the_delta_log_and_the_checkpoint():
    """Exercise 07, task 2: versions 0-1 by the killed job, 2-4 by the colleague's query; batch 6 in flight."""
    job, colleague = "exercise07_job-a1", "exercise07_job_v2-b2"
    log = _delta_log([(0, job, 3), (1, job, 5), (2, colleague, 2), (3, colleague, 3), (4, colleague, 4)])
    planned, committed = list(range(7)), list(range(6))

    def hint_of(restore_to, first_batch, delta_has_it, delta_log=log):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_restart_diagnosis(
                restore_to, first_batch, delta_has_it, delta_log, job, planned, committed
            )
        return str(failure.value)

    assert "written by the colleague's query" in hint_of(2, 6, False)  # off by one: the colleague's first version
    assert "older than the killed job's last write" in hint_of(0, 6, False)
    assert "does not start over" in hint_of(1, 0, False)
    assert "batch 6 was in flight" in hint_of(1, 7, False)  # the in-flight batch taken for lost
    assert "batch 5 finished" in hint_of(1, 5, False)
    assert "no Delta commit of the killed job" in hint_of(1, 6, True)
    assert "must be a whole number, got None" in hint_of(None, None, None)
    mistakes_module.check_restart_diagnosis(1, 6, False, log, job, planned, committed)
    # the in-flight batch had reached Delta before the kill: Delta has it, and skips it
    reached = _delta_log([(0, job, 3), (1, job, 5), (2, job, 6), (3, colleague, 2)])
    assert "the batch's write reached Delta before the kill" in hint_of(2, 6, False, reached)
    mistakes_module.check_restart_diagnosis(2, 6, True, reached, job, planned, committed)


def test_a_repair_that_leaves_windows_twice_or_loses_some_is_named():
    """Exercise 07, task 3: the killed job's last version is 1, the colleague wrote versions 2-4."""
    expected = _windows(["2026-01-30 15:00:00", "2026-01-30 15:00:05", "2026-01-30 15:00:10"], [20, 20, 20])
    twice = pd.concat([expected, expected.iloc[:2]])
    missing = expected.iloc[1:]

    def hint_of(result, restored_to):
        with pytest.raises(AssertionError) as failure:
            checks.expect_equal_frames(
                result,
                expected,
                key=["room_id", "window_start"],
                mistakes=[mistakes_module.restart_leftovers(restored_to, 1, [2, 3, 4])],
            )
        return str(failure.value).split("hint: ", 1)[1]

    assert "the lesson's" in hint_of(twice, None) and "restore the table first" in hint_of(twice, None)
    assert "version 2 still holds the colleague's" in hint_of(twice, 2)
    assert "another checkpoint" in hint_of(twice, 1)  # restored right, restarted under a new name
    assert "older than the killed job's last version 1" in hint_of(missing, 0)
    assert "did not resume the killed job's checkpoint" in hint_of(missing, 1)
    checks.expect_equal_frames(
        expected, expected, key=["room_id", "window_start"], mistakes=[mistakes_module.restart_leftovers(1, 1, [2])]
    )


# ---------------------------------------------------------------- the lesson's own code, where a task asks for more


def test_the_lessons_windows_fail_the_tasks_that_ask_for_other_windows():
    """Exercise 02, tasks 2 and 3: 20 s windows sliding 10 s; lesson 02's are 10 s sliding 5 s."""
    expected = _windows(["2026-01-30 14:00:00", "2026-01-30 14:00:10"], [40, 40], length_s=20)
    lessons = _windows(["2026-01-30 14:00:00", "2026-01-30 14:00:05", "2026-01-30 14:00:10"], [20] * 3, length_s=10)
    first, last = datetime(2026, 1, 30, 14, tzinfo=timezone.utc), datetime(2026, 1, 30, 14, 0, 30, tzinfo=timezone.utc)
    task_3_mistakes = [reads_other_runs(first, last), window_length(20)]  # as the solution's check of task 3 has them
    for mistakes in ([window_length(20)], task_3_mistakes):
        with pytest.raises(AssertionError, match="your windows are 10 s long, not 20 s"):
            checks.expect_equal_frames(lessons, expected, key=["room_id", "window_start"], mistakes=mistakes)


def _room_windows(*starts_s, at="2026-01-30 15:00:00", room="room_1", temperature=20.0):
    begin = pd.Timestamp(at)
    return pd.DataFrame(
        {
            "room_id": [room] * len(starts_s),
            "window_start": [begin + pd.Timedelta(seconds=s) for s in starts_s],
            "window_end": [begin + pd.Timedelta(seconds=s + 10) for s in starts_s],
            "avg_temperature": [temperature] * len(starts_s),
        }
    )


def test_a_colleagues_query_without_watermark_or_in_complete_or_update_mode_is_named():
    """Exercise 03, task 2: readings up to 15:00:40; a 10 s watermark at 15:00:30 closes the windows 0-20."""
    newest = datetime(2026, 1, 30, 15, 0, 40, tzinfo=timezone.utc)

    def expected_of(final):
        mark = pd.Timestamp(final).tz_convert(None)
        return _room_windows(
            *[s for s in range(0, 40, 5) if pd.Timestamp("2026-01-30 15:00:00") + pd.Timedelta(seconds=s + 10) <= mark]
        )

    def progress(watermark):
        return {"eventTime": {"watermark": watermark}} if watermark else {"eventTime": {}}

    right = _room_windows(0, 5, 10, 15, 20)

    def hint_of(written, watermark):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_enriched_stream(written, progress(watermark), newest, expected_of)
        return str(failure.value)

    # the colleague's draft: no watermark, complete mode (every window, open ones too)
    assert "no watermark" in hint_of(_room_windows(*range(0, 40, 5)), None)
    assert "no watermark" in hint_of(_room_windows(*range(0, 40, 5)), "1970-01-01T00:00:00.000Z")
    # the watermark set, but complete mode kept
    complete = hint_of(_room_windows(*range(0, 40, 5)), "2026-01-30T15:00:30.000Z")
    assert "3 windows written while still open" in complete and "complete mode" in complete
    # update mode: the window 15:00:20 written once open, then again when final
    update = pd.concat([right, _room_windows(20, temperature=19.0)])
    assert "update mode" in hint_of(update, "2026-01-30T15:00:30.000Z")
    # a watermark of another delay
    assert "50 s behind the newest reading, not 10 s" in hint_of(_room_windows(), "2026-01-30T14:59:50.000Z")
    # an empty result (a query that wrote nothing) never passes
    assert "the result is empty" in hint_of(right.iloc[0:0], "2026-01-30T15:00:30.000Z")
    mistakes_module.check_enriched_stream(right, progress("2026-01-30T15:00:30.000Z"), newest, expected_of)


def test_the_lessons_processing_time_join_fails_the_event_time_task():
    """Exercise 03, task 3: room_1 renamed at 14:01; the lesson's join gives every window the new name."""
    change = datetime(2026, 1, 30, 14, 1, tzinfo=timezone.utc)
    starts = pd.to_datetime(["2026-01-30 14:00:50", "2026-01-30 14:00:55", "2026-01-30 14:01:00"])
    expected = pd.DataFrame({"room_id": "room_1", "window_start": starts, "room_name": ["Lab", "Lab", "Studio"]})
    lessons = expected.assign(room_name="Studio")  # the rooms table as it is when the join runs
    with pytest.raises(AssertionError) as failure:
        checks.expect_equal_frames(
            lessons,
            expected,
            key=["room_id", "window_start"],
            hint="the task's hint",
            mistakes=[mistakes_module.names_as_of_now(change)],
        )
    hint = str(failure.value).split("hint: ", 1)[1]
    assert hint.startswith("2 windows that began before the change carry the room's new name") and "lesson" in hint
    # a different mistake (an old name after the change) is not blamed on processing time
    with pytest.raises(AssertionError, match="hint: the task's hint$"):
        checks.expect_equal_frames(
            expected.assign(room_name="Lab"),
            expected,
            key=["room_id", "window_start"],
            hint="the task's hint",
            mistakes=[mistakes_module.names_as_of_now(change)],
        )


def test_a_group_reset_to_the_lessons_moment_or_to_the_beginning_is_named():
    """Exercise 06, task 3: this run's records are offsets 500-599 of a topic holding 0-599; cut_ms is at 550."""

    def hint_of(offset):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_group_reset(offset, first_at_cut=550, run_start=500, topic_start=0)
        return str(failure.value).split("hint: ", 1)[1]

    assert "as in the lesson" in hint_of(500)  # the lesson's reset: back to where the live job started
    assert "reset without a timestamp goes back to the beginning" in hint_of(0)
    assert "at or after, not after" in hint_of(551)
    assert "Kafka timestamp cut_ms" in hint_of(600)
    mistakes_module.check_group_reset(550, first_at_cut=550, run_start=500, topic_start=0)


def test_minutes_summed_from_overlapping_windows_are_named():
    """Exercise 09, task 3: the sliding windows summed as they are count every motion event twice."""
    starts = pd.to_datetime(["2026-02-05 10:00:00", "2026-02-05 10:01:00"])
    expected = pd.DataFrame({"room_id": "room_1", "window_start": starts, "motion_events": [12, 7]})
    every_window = expected.assign(motion_events=[24, 13])  # a reading at the run's edge is in one window only
    with pytest.raises(AssertionError, match="about twice the expected(.|\n)*do not overlap"):
        checks.expect_equal_frames(
            every_window,
            expected,
            key=["room_id", "window_start"],
            mistakes=[mistakes_module.counted_twice("motion_events")],
        )
    with pytest.raises(AssertionError, match="hint: the task's hint$"):  # one event too many is another mistake
        checks.expect_equal_frames(
            expected.assign(motion_events=[13, 7]),
            expected,
            key=["room_id", "window_start"],
            hint="the task's hint",
            mistakes=[mistakes_module.counted_twice("motion_events")],
        )


# ---------------------------------------------------------------- exercise 04: a writer, two queries, a consumer


def _step(writer, batch_id, rows, messages, txn=None, computed=1.0):
    return {
        "writer": writer,
        "batch_id": batch_id,
        "rows": rows,
        "messages": messages,
        "computed": computed,
        "committed": txn is not None,
        "txn": txn,
    }


def _trial(rows, txns, computed=1.0, raised=True, cached=False, n=10, messages=None):
    """A trial of mistakes.try_batch_writer, as plain values: rows and txn after each of its four calls."""
    messages = messages or [n, 2 * n, 3 * n, 4 * n]
    calls = mistakes_module.WRITER_TRIAL
    steps = [_step(w, b, r, m, t, computed) for (w, b), r, m, t in zip(calls, rows, messages, txns)]
    return {"rows_per_batch": n, "steps": steps, "refused_raised": raised, "refused_cached": cached}


_RIGHT_TXNS = [("job", 0), None, None, ("job", 1)]  # batch 0, two replays skipped, batch 1


def _writer_hint(trial):
    with pytest.raises(AssertionError) as failure:
        mistakes_module.check_batch_writer(trial)
    return str(failure.value)


def test_each_mistake_of_the_colleagues_writer_is_named():
    """Exercise 04, task 1: batches of 10 windows; batch 0, batch 0 again, a restarted writer's batch 0, batch 1."""
    right = _trial([10, 10, 10, 20], _RIGHT_TXNS)
    mistakes_module.check_batch_writer(right)
    # the empty answer: a writer that writes nothing
    assert "after batch 0 the table holds 0 rows" in _writer_hint(_trial([0] * 4, [None] * 4, messages=[0] * 4))
    assert "send the batch to Kafka too" in _writer_hint(_trial([10, 10, 10, 20], _RIGHT_TXNS, messages=[0] * 4))
    # the colleague's draft: a counter for txnVersion, a uuid in txnAppId, no persist (the counter shows first)
    draft = _trial([10, 20, 30, 40], [("job-1a", 0), ("job-1a", 1), ("job-2b", 0), ("job-2b", 1)], computed=3.0)
    assert "written with txnVersion 0 then 1" in _writer_hint(draft) and "not the batch id" in _writer_hint(draft)
    # the counter fixed, the uuid kept: the restarted writer's replay is new to Delta
    uuid_app_id = _trial([10, 10, 20, 30], [("job-1a", 0), None, ("job-2b", 0), ("job-2b", 1)], computed=3.0)
    hint = _writer_hint(uuid_app_id)
    assert "restarted writer wrote with txnAppId 'job-2b', the first one with 'job-1a'" in hint and "uuid" in hint
    # both fixed, still not persisted: computed for the count, for Kafka and for Delta
    assert "computed the batch 3 times" in _writer_hint(_trial([10, 10, 10, 20], _RIGHT_TXNS, computed=3.0))
    # persisted, but unpersist() not in a finally; and an error swallowed
    assert "free the batch in a `finally`" in _writer_hint(_trial([10, 10, 10, 20], _RIGHT_TXNS, cached=True))
    assert "its windows are lost" in _writer_hint(_trial([10, 10, 10, 20], _RIGHT_TXNS, raised=False))
    # no txn at all: every replay appended
    assert "carries no txnAppId and txnVersion" in _writer_hint(_trial([10, 20, 30, 40], [None] * 4))
    # txnVersion = the batch's row count: replays skipped, but batch 1 (10 rows too) as well
    count_version = _trial([10, 10, 10, 10], [("job", 10), None, None, None])
    assert "batch 1 was skipped" in _writer_hint(count_version) and "row count" in _writer_hint(count_version)
    # a constant txnVersion: every later batch skipped
    constant = _trial([10, 10, 10, 10], [("job", 0), None, None, None])
    assert "batch 1 was skipped" in _writer_hint(constant) and "yours was 0 for batch 0" in _writer_hint(constant)


def _wing_windows(room, *starts_s):
    return _room_windows(*starts_s, room=room)


def test_two_queries_with_one_txn_app_id_or_one_checkpoint_are_named():
    """Exercise 04, task 2: room_1 is the west wing, room_5 the east; west ran first."""
    expected = pd.concat([_wing_windows("room_1", 0, 5, 10), _wing_windows("room_5", 0, 5, 10)], ignore_index=True)
    ids = {"west": "q-west", "east": "q-east"}

    def hint_of(got, app_ids, query_ids=ids):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_wing_writes(got, expected, app_ids, query_ids)
        return str(failure.value)

    # the colleague's draft: one txnAppId for both, so Delta skipped east's batches
    one_id = hint_of(expected.iloc[:3], ["exercise04_telemetry"] * 4)
    assert "both queries write with the one txnAppId 'exercise04_telemetry'" in one_id and "['room_5']" in one_id
    # the lesson's own query for both wings: one name, one checkpoint, so one query id
    assert "they ran on one checkpoint" in hint_of(expected, ["a", "b"], {"west": "q-1", "east": "q-1"})
    # a txnAppId that changes with each batch: the windows are right, a replay would not be recognised
    assert "one per query, the same for each of its batches" in hint_of(expected, ["a", "b", "c", "d", None])
    assert "the result is empty" in hint_of(expected.iloc[0:0], [])  # the empty answer
    mistakes_module.check_wing_writes(expected, expected, ["west", "west", "east", None], ids)


def test_a_consumer_that_keeps_repeats_or_reads_other_runs_is_named():
    """Exercise 04, task 4: three windows of this run at 16:00; a replayed batch repeats one of them."""
    delta = _room_windows(0, 5, 10, at="2026-01-30 16:00:00")
    first, last = datetime(2026, 1, 30, 16, tzinfo=timezone.utc), datetime(2026, 1, 30, 16, 0, 20, tzinfo=timezone.utc)
    recognisers = [mistakes_module.repeats_kept, reads_other_runs(first, last, what="windows")]

    def hint_of(got):
        with pytest.raises(AssertionError) as failure:
            checks.expect_equal_frames(
                got, delta, key=["room_id", "window_start"], hint="the task's hint", mistakes=recognisers
            )
        return str(failure.value).split("hint: ", 1)[1]

    # the draft's dropDuplicates over the whole Kafka record: the repeat has another offset, it stays
    assert "dropping duplicate *records* keeps them" in hint_of(pd.concat([delta, delta.iloc[:1]]))
    # startingOffsets earliest: another lesson's windows (12:00) too
    other = hint_of(pd.concat([_room_windows(0, 5, at="2026-01-30 12:00:00"), delta]))
    assert "your stream read windows of other runs" in other and "starting offsets" in other
    assert hint_of(delta.iloc[0:0]) == "the task's hint"  # the empty answer fails, on the task's hint
    checks.expect_equal_frames(delta, delta, key=["room_id", "window_start"], mistakes=recognisers)
    with pytest.raises(AssertionError, match="returned 12 windows(.|\n)*startingOffsets earliest"):
        mistakes_module.check_consumer_start(12)
    mistakes_module.check_consumer_start(0)
    # the lesson's consumer (section 8): the messages as read, with their topic, offset and key, repeats kept
    lessons = delta.assign(topic="telemetry.room_1.downsampled", offset=range(3), key="k")
    with pytest.raises(AssertionError, match="exactly the columns"):
        checks.expect_columns(lessons, list(delta.columns), exact=True)


@pytest.mark.services
@pytest.mark.spark
def test_the_writer_trial_sees_the_colleagues_mistakes_in_delta_and_kafka(spark, settings, tmp_path):
    """Exercise 04, task 1, for real: the notebook's draft writer and its solution, through the trial's calls."""
    import uuid

    import nbformat

    from labkit import names, pipeline, schema, topics

    cells = nbformat.read(hints.SOLUTIONS / "04_sinks.ipynb", as_version=4).cells
    draft = next(c.source for c in cells if "def make_batch_writer_draft" in c.source).split("\n\nfirst_windows")[0]
    fixed = hints.solution_regions(next(c.source for c in cells if 'checks.task("04-1")' in c.source))[0]
    namespace = {"uuid": uuid, "pipeline": pipeline, "s": settings}
    exec(draft, namespace)  # the colleague's writer, as the exercise shows it
    exec(fixed, namespace)  # the solution's

    def persists_without_finally(table_path, app_id):
        def write(batch, batch_id):
            batch.persist()
            batch.count()
            batch.write.format("delta").mode("append").option("txnAppId", app_id).option("txnVersion", batch_id).save(
                table_path
            )
            pipeline.to_kafka_messages(batch).write.format("kafka").option(
                "kafka.bootstrap.servers", settings.kafka_bootstrap
            ).save()
            batch.unpersist()

        return write

    topic = names.downsampled_topic("room_1")
    topics.ensure_topics([topic])
    values = {"string": "room_1", "int": 1, "double": 20.5, "bigint": 3, "timestamp": None}  # by column type
    rows = []
    for second in (0, 5, 10):
        start = datetime(2026, 1, 30, 16, 0, second)
        row = [values[f.dataType.simpleString()] for f in schema.aggregate_spark_schema()]
        row[:2] = [start, start + pd.Timedelta(seconds=10)]
        rows.append(tuple(row))
    sample = spark.createDataFrame(rows, schema.aggregate_spark_schema())

    def trial(make, name):
        return mistakes_module.try_batch_writer(
            make, sample, str(tmp_path / name), "check", lambda: topics.end_offsets([topic])[topic]["0"]
        )

    drafted = trial(namespace["make_batch_writer_draft"], "draft")
    assert [s["rows"] for s in drafted["steps"]] == [3, 6, 9, 12]
    assert [s["computed"] for s in drafted["steps"]] == [3.0] * 4, "counted, sent to Kafka, written to Delta"
    assert drafted["steps"][2]["txn"][0] != drafted["steps"][0]["txn"][0], "a new uuid for the restarted writer"
    assert "txnVersion 0 then 1" in _writer_hint(drafted)
    no_finally = trial(persists_without_finally, "no_finally")
    assert no_finally["refused_raised"] and no_finally["refused_cached"]
    assert "free the batch in a `finally`" in _writer_hint(no_finally)
    solved = trial(namespace["make_batch_writer"], "solved")
    assert [s["rows"] for s in solved["steps"]] == [3, 3, 3, 6] and [s["messages"] for s in solved["steps"]] == [
        3,
        6,
        9,
        12,
    ]
    mistakes_module.check_batch_writer(solved)


def test_the_lessons_default_spike_threshold_is_not_the_smallest_quiet_one():
    """Exercise 09, task 1, with the outcomes of the exercise's own readings (seed 19): 0.3 is the answer.

    Lesson 09 runs with the thresholds table's spike_delta_c (4.0 for an open office) and shows it
    finding the spike; here too it is quiet and finds it, but the task asks for the smallest quiet
    candidate, which is another one.
    """
    outcomes = {0.1: (1, True), 0.2: (1, True), 0.3: (0, True), 0.5: (0, True), 1.0: (0, True), 4.0: (0, True)}

    def hint_of(answer, found=outcomes):
        with pytest.raises(AssertionError) as failure:
            mistakes_module.check_quiet_limit(answer, found, default_limit=4.0)
        return str(failure.value)

    lesson = hint_of(4.0)  # the lesson's own threshold
    assert "the thresholds table's default, the one lesson 09 runs with" in lesson and "smallest" in lesson
    assert "a smaller candidate is quiet too" in hint_of(1.0)
    assert "raise 1 alerts that match no label" in hint_of(0.2)
    assert "the spike is not found" in hint_of(4.0, {**outcomes, 4.0: (0, False)})
    assert "not one of the candidates" in hint_of(None)  # the empty answer
    assert "not one of the candidates" in hint_of(3.0)  # one of the lesson's spike_limits, not the task's
    mistakes_module.check_quiet_limit(0.3, outcomes, default_limit=4.0)
