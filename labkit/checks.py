"""Checks for the notebooks and exercises: they fail loudly, and they say what to look at next.

A lesson ends with checks, and an exercise checks every answer. A bare ``assert`` would only say
``AssertionError``; these helpers raise an ``AssertionError`` whose message names what was
expected, what was found, and a *hint* that points the learner at the likely mistake::

    checks.expect_columns(windows, ["window_start", "room_id", "readings"],
                          hint="alias the count with .alias('readings')")
    checks.expect_equal_frames(streamed, batch, key=["room_id", "window_start"])

Exercises are generated from the solutions (``tools/make_exercises.py``): every solution region
becomes a call to :func:`todo`, which stops the notebook with a friendly :class:`TodoError`
saying what to write there. An unmodified exercise therefore stops at its first TODO, not at
some confusing ``NameError`` further down.

The helpers accept Spark DataFrames and pandas DataFrames alike (Spark ones are collected with
``toPandas()``: fine for the lab's small results, not for a production table).
"""

from __future__ import annotations

import math
from typing import Any, NoReturn, Sequence

#: Printed in every TodoError so a learner knows where help is.
TODO_HELP = (
    "Write your code in place of this line (the text above the cell says what to do), "
    "then run the cell again. Stuck? The matching notebook in solutions/ has one answer."
)


class TodoError(NotImplementedError):
    """Raised by :func:`todo`: this part of the exercise is still to be written."""


def todo(what: str) -> NoReturn:
    """Stop here: the learner has still to ``what`` (e.g. "compute the 10-second tumbling windows")."""
    raise TodoError(f"TODO: {what}.\n{TODO_HELP}")


def passed(what: str) -> None:
    """Say that a check passed, so a green run is visibly green."""
    print(f"OK: {what}")


def _fail(what: str, hint: str | None) -> NoReturn:
    raise AssertionError(what + (f"\n  hint: {hint}" if hint else ""))


def expect(condition: bool, what: str, hint: str | None = None) -> None:
    """``assert condition``, with ``what`` was expected and a ``hint`` in the message."""
    if not condition:
        _fail(f"check failed: {what}", hint)
    passed(what)


def expect_equal(actual: Any, expected: Any, what: str, hint: str | None = None) -> None:
    """``actual == expected``; the message shows both values."""
    if actual != expected:
        _fail(f"{what}: expected {expected!r}, got {actual!r}", hint)
    passed(f"{what}: {actual!r}")


def _columns(frame) -> list[str]:
    return list(frame.columns)


def as_pandas(frame):
    """A pandas DataFrame from a Spark or pandas one (Spark's is collected to the driver).

    The rows are collected as plain Python values, then put in a DataFrame: the values a check
    compares are the ones Spark returned, without a second conversion of types on the way.
    """
    if not hasattr(frame, "toPandas"):
        return frame
    import pandas as pd

    return pd.DataFrame([row.asDict() for row in frame.collect()], columns=frame.columns)


def expect_columns(frame, columns: Sequence[str], hint: str | None = None, exact: bool = False) -> None:
    """``frame`` has these columns (``exact``: these and no others, in this order)."""
    have = _columns(frame)
    missing = [c for c in columns if c not in have]
    if missing:
        _fail(
            f"missing column(s) {missing}; the frame has {have}",
            hint or "name each result column with .alias('<name>')",
        )
    if exact and have != list(columns):
        _fail(
            f"expected exactly the columns {list(columns)}, in that order; got {have}",
            hint or "select the columns in this order with .select(...)",
        )
    passed(f"columns {list(columns)} present")


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
    return a == b


def expect_equal_frames(
    actual,
    expected,
    key: Sequence[str] | None = None,
    rel_tol: float = 1e-9,
    what: str = "rows",
    hint: str | None = None,
    show: int = 5,
) -> None:
    """The two frames hold the same rows (order ignored; floats compared with ``rel_tol``).

    ``key`` names the columns that identify a row (e.g. ``["room_id", "window_start"]``); the
    message then lists keys found on one side only, and the first differing values. Without a
    key every column is part of the identity. Only the expected frame's columns are compared.
    """
    want = as_pandas(expected)
    got = as_pandas(actual)
    columns = list(want.columns)
    missing = [c for c in columns if c not in got.columns]
    if missing:
        _fail(
            f"{what}: the result lacks column(s) {missing}; it has {list(got.columns)}",
            hint or "name each result column with .alias('<name>')",
        )
    key = list(key or columns)

    def index(frame) -> dict:
        rows: dict = {}
        for record in frame[columns].to_dict("records"):
            k = tuple(record[c] for c in key)
            rows.setdefault(k, []).append(record)
        return rows

    got_rows, want_rows = index(got), index(want)
    only_got = sorted(set(got_rows) - set(want_rows), key=str)
    only_want = sorted(set(want_rows) - set(got_rows), key=str)
    problems = []
    if only_got:
        problems.append(f"{len(only_got)} {what} only in the result, e.g. {only_got[:show]}")
    if only_want:
        problems.append(f"{len(only_want)} {what} missing from the result, e.g. {only_want[:show]}")
    differing = []
    for k in sorted(set(got_rows) & set(want_rows), key=str):
        g, w = got_rows[k], want_rows[k]
        if len(g) != len(w):
            differing.append(f"{k}: {len(g)} rows in the result, {len(w)} expected")
            continue
        for gr, wr in zip(g, w):
            bad = [c for c in columns if not _same(gr[c], wr[c], rel_tol)]
            if bad:
                differing.append(f"{k}: " + ", ".join(f"{c}={gr[c]!r} (expected {wr[c]!r})" for c in bad))
    if differing:
        problems.append(f"{len(differing)} {what} differ, e.g. " + "; ".join(differing[:show]))
    if problems:
        _fail(
            f"{what} are not the same ({len(got)} in the result, {len(want)} expected):\n  " + "\n  ".join(problems),
            hint,
        )
    passed(f"{len(got)} {what} equal the expected ones")
