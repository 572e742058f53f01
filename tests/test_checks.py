"""labkit.checks (the hints exercises give) and labkit.viz (the pictures), without services."""

from datetime import datetime, timezone

import matplotlib
import pandas as pd
import pytest

from labkit import checks, viz

matplotlib.use("Agg")


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


def test_window_starts_are_aligned_on_the_clock():
    first = datetime(2026, 1, 30, 10, 0, 3, tzinfo=timezone.utc)
    last = datetime(2026, 1, 30, 10, 0, 21, tzinfo=timezone.utc)
    assert [s.second for s in viz.window_starts(first, last, 10, 10)] == [0, 10, 20]
    assert [s.second for s in viz.window_starts(first, last, 10, 5)] == [55, 0, 5, 10, 15, 20]


def test_plots_return_figures():
    t = [datetime(2026, 1, 30, 10, 0, s, tzinfo=timezone.utc) for s in range(0, 20, 2)]
    readings = pd.DataFrame({"room_id": ["room_1", "room_2"] * 5, "timestamp": t,
                             "temperature": range(10), "co2_ppm": range(10)})  # fmt: skip
    assert len(viz.plot_readings(readings).axes) == 2
    figure = viz.plot_windows(t[0], t[-1], 10, 5, events=t, late_events=t[:1], watermark=t[-1])
    assert figure.axes[0].get_title() == "sliding windows: 10 s, sliding every 5 s"
