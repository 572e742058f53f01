"""labkit.checks: the checks and hints notebooks and exercises give, without services."""

import pandas as pd
import pytest

from labkit import checks


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
