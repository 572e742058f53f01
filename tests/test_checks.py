"""labkit.checks: the checks and hints notebooks and exercises give, without services."""

import re
from datetime import datetime, timezone

import pandas as pd
import pytest

from labkit import checks, hints
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
