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

Each task's cell runs inside ``with checks.task("02-3"):``. When Spark refuses the learner's code
(a misspelt column, a streaming query Spark cannot run), the learner first reads a short labkit
message that names the likely mistake and the next step; Spark's own message follows, chained,
without its 50 lines of Java and Python frames. ``checks.hint("02-3")`` gives a nudge and
``checks.hint("02-3", level=2)`` the answer (see :mod:`labkit.hints`), so the exercise's text
never has to give the answer away.

The helpers accept Spark DataFrames and pandas DataFrames alike (Spark ones are collected with
``toPandas()``: fine for the lab's small results, not for a production table).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, Sequence

from labkit.errors import LabkitError

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


def fail(what: str, hint: str | None = None) -> NoReturn:
    """Fail a check: an AssertionError saying what was expected, and a hint naming the likely mistake."""
    raise AssertionError(what + (f"\n  hint: {hint}" if hint else ""))


def expect(condition: bool, what: str, hint: str | None = None) -> None:
    """``assert condition``, with ``what`` was expected and a ``hint`` in the message."""
    if not condition:
        fail(f"check failed: {what}", hint)
    passed(what)


def expect_equal(actual: Any, expected: Any, what: str, hint: str | None = None) -> None:
    """``actual == expected``; the message shows both values."""
    if actual != expected:
        fail(f"{what}: expected {expected!r}, got {actual!r}", hint)
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
        fail(
            f"missing column(s) {missing}; the frame has {have}",
            hint or "name each result column with .alias('<name>')",
        )
    if exact and have != list(columns):
        fail(
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
    mistakes: Sequence[Callable] = (),
    allow_empty: bool = False,
) -> None:
    """The two frames hold the same rows (order ignored; floats compared with ``rel_tol``).

    ``key`` names the columns that identify a row (e.g. ``["room_id", "window_start"]``); the
    message then lists keys found on one side only, and the first differing values. Without a
    key every column is part of the identity. Only the expected frame's columns are compared.

    An empty result never passes: "0 windows equal the 0 expected" proves nothing, so an empty
    *expected* frame is an error too, unless ``allow_empty``. ``mistakes`` are functions
    ``(result, expected) -> hint or None`` (both pandas) that recognise a typical wrong answer:
    when the frames differ, the first one that recognises it gives the hint, which then names
    the mistake rather than repeating what the task asked.
    """
    want = as_pandas(expected)
    got = as_pandas(actual)
    columns = list(want.columns)
    if want.empty and not allow_empty:
        fail(
            f"{what}: nothing to compare with, the expected frame is empty",
            hint or "the expected rows depend on your answer (an id, a version): check that it is the right one",
        )
    missing = [c for c in columns if c not in got.columns]
    if missing:
        fail(
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
        recognised = next((h for h in (m(got, want) for m in mistakes) if h), None)
        if got.empty:
            problems.insert(0, "the result is empty")
        fail(
            f"{what} are not the same ({len(got)} in the result, {len(want)} expected):\n  " + "\n  ".join(problems),
            recognised or hint,
        )
    passed(f"{len(got)} {what} equal the expected ones")


# ---------------------------------------------------------------- a task's cell, and its hints


def hint(task_id: str, level: int = 1) -> None:
    """Print help for an exercise task: ``level=1`` a nudge, ``level=2`` the answer."""
    from labkit import hints

    print(hints.nudge(task_id) if level < 2 else hints.answer(task_id))


class SparkMistake(LabkitError):
    """Spark refused the code of an exercise task; the message says what to look at next."""


#: Spark's error conditions a learner meets in the exercises: what it means, and what to do.
#: Keyed by the start of the condition (``UNRESOLVED_COLUMN`` covers its ``.WITH_SUGGESTION``).
SPARK_ERRORS = {
    "UNRESOLVED_COLUMN": (
        "Spark cannot find the column {objectName} (the frame has {proposal})",
        "check the name's spelling, and that the step before names that column (.alias(...))",
    ),
    "STREAMING_OUTPUT_MODE.UNSUPPORTED_OPERATION": (
        "Spark cannot write {operation} in {outputMode} mode: the stream has no watermark where it needs one",
        "in append mode an aggregation writes a window only once a watermark has closed it, so the "
        "watermark must be set on the readings' event time, before the aggregation",
    ),
    "DELTA_METADATA_MISMATCH": (
        "Delta refused the write: its rows have a column the table does not have",
        "a table's schema changes only when the writer asks for it",
    ),
}


def explain_spark_error(error: Exception) -> tuple[str, str]:
    """``(what went wrong, next step)`` for one of Spark's errors, in the lab's words."""
    condition = getattr(error, "getCondition", lambda: None)() or ""
    parameters = getattr(error, "getMessageParameters", lambda: None)() or {}
    for start, (what, next_step) in SPARK_ERRORS.items():
        if condition.startswith(start):
            return what.format_map({**_Missing(), **parameters}), next_step
    first_line = str(error).strip().split("\n")[0].split(";")[0]
    return f"Spark refused the code: {first_line[:300]}", "read Spark's message below: it names the part it refused"


class _Missing(dict):
    def __missing__(self, key):  # a message parameter this Spark version did not send
        return f"<{key}>"


def _spark_error_types() -> tuple[type, ...]:
    from pyspark.errors import PySparkException

    try:
        from py4j.protocol import Py4JJavaError
    except ImportError:  # pragma: no cover - py4j comes with pyspark
        return (PySparkException,)
    return (PySparkException, Py4JJavaError)


@contextmanager
def task(task_id: str) -> Iterator[None]:
    """Run one exercise task's code: Spark's refusals become a short labkit message first.

    * a :class:`TodoError` (the TODO is still there) goes through, with where to find a nudge;
    * an error of Spark's becomes a :class:`SparkMistake` saying what it means and what to do
      next; Spark's error stays chained to it (``__cause__``), without its stack frames, which
      point into Spark's code, not the learner's.
    """
    try:
        yield
    except TodoError as error:
        error.args = (f"{error.args[0]}\nA nudge: run checks.hint({task_id!r}) in a cell.",)
        raise
    except _spark_error_types() as error:
        what, next_step = explain_spark_error(error)
        mistake = SparkMistake(f"task {task_id}: {what}", f"{next_step}; checks.hint({task_id!r}) gives a nudge")
        print(f"error: {mistake.what}\nnext: {mistake.next_step}")  # before Spark's message, in the output
        raise mistake from error.with_traceback(None)


@contextmanager
def shows_error(task_id: str) -> Iterator[None]:
    """For a given broken piece of code the learner must fix: show what Spark says, go on.

    The cell does not fail (a notebook run in CI goes on), but it must fail *inside*: code
    meant to be broken that works is an error of the exercise.
    """
    try:
        yield
    except _spark_error_types() as error:
        what, next_step = explain_spark_error(error)
        print(f"as expected, Spark refused it:\n  error: {what}\n  next: {next_step}")
        return
    raise AssertionError(f"task {task_id}: this code was meant to fail, and it did not")


def require(namespace: dict, *names: str, task_id: str) -> None:
    """The names a check needs exist: else say that the task's cell did not finish.

    Without it, a task cell that stopped at an error leaves a bare ``NameError`` in the check.
    """
    missing = [n for n in names if n not in namespace]
    if missing:
        raise LabkitError(
            f"{', '.join(missing)} not defined: the cell of task {task_id} did not finish",
            f"run that cell again and fix its first error; checks.hint({task_id!r}) gives a nudge",
        )
