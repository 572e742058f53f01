"""Two levels of help for each exercise task: a nudge first, the answer only on request.

An exercise's text says what to do, and a failing check names the mistake it recognised; neither
gives the code away. A learner who is stuck asks for more, one step at a time::

    checks.hint("02-3")           # a nudge: where to look, what to think about (no code)
    checks.hint("02-3", level=2)  # the answer: the solution's code for that task

The answer is read from the solution notebook (``solutions/02_*.ipynb``, the code cell that runs
``checks.task("02-3")``), so the answer shown is the one CI runs: one source, not a copy here.
The markers that delimit it are defined here and used by ``tools/make_exercises.py`` too.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from labkit.errors import LabkitError

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"

#: A solution region in a code cell: ``# BEGIN SOLUTION: <what to do>`` ... ``# END SOLUTION``.
BEGIN_CODE = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<what>.*?))?\s*$")
END_CODE = re.compile(r"^\s*# END SOLUTION\s*$")

#: One nudge per task: what to look at or think about, never the code.
NUDGES = {
    "01-1": "Read each dead letter's `reason` header, then compare the payload with the fields and ranges "
    "labkit.schema expects. Which payloads are rejected is decided by the bridge, not by Kafka.",
    "02-1": "A tumbling window is F.window with only a duration. Group by the window and by the room, and "
    "take the window's start and end out of the struct.",
    "02-2": "F.window takes a third argument. How many windows does each reading fall into?",
    "02-3": "Two things are wrong with the colleague's query. Spark tells you about one of them: where must a "
    "watermark be for an aggregation to use it? The other is silent: which readings does the query read "
    "when nobody tells it where to start?",
    "02-4": "The watermark delay is how far behind the newest reading a reading may arrive and still count. "
    "Read the histogram's tail: which delay leaves at most the allowed share of readings behind it?",
    "03-1": "Count the windows before and after the draft's join, with a room missing from the rooms table. "
    "Which join type keeps a row that has no partner? And how does Spark learn that a side is small?",
    "03-2": "When is a window of this table final, and how does Spark know? Compare the draft's window ends with "
    "the newest reading, and read its progress report's eventTime. Which output mode writes a window only once "
    "it is final, and what does that mode need from the readings, and where?",
    "03-3": "A window must match exactly one version of its room: the same room, and a period that contains "
    "the window's start. The periods are half-open.",
    "04-1": "Read the trial's table row by row: which calls added rows although the batch was there already? "
    "Their txn column says under which app id and version Delta filed each write: which of the two must stay the "
    "same for a replay, even after a restart (a writer made anew), and what does Spark pass that already is? Then "
    "the `computed` column: how often does Spark compute a batch that is not kept in memory? And a write that fails "
    "halfway: what is then left undone?",
    "04-2": "Compare the draft's txn column for the two wings. Delta skips a write whose txnVersion is not above the "
    "highest it has from the same txnAppId: what happens to the second wing's batch 0, 1, 2...? Which ids does "
    "each query need: shared, or its own, and stable across restarts of the query?",
    "04-3": "Which of the two sinks can recognise a batch it has already written? Look at what the writer passes "
    "to each.",
    "04-4": "Two things. Where does the draft start reading, whatever `since` says? And what does its "
    "dropDuplicates compare: a replayed window's message and its repeat have the same key and value, but are they "
    "the same Kafka record (offset, timestamp)?",
    "05-1": "Open the JSON file of version 0 in _delta_log/: one of its lines is a `txn` action. Which of its "
    "fields is the micro-batch id? Then read the table *as of* that version.",
    "05-2": "You captured `history` in the setup, before the overwrite. Its newest version is the table as "
    "the stream left it. Compare it with the history now: which version did the overwrite make?",
    "05-3": "A plain append with a new column is refused on purpose. The Delta writer has an option that "
    "allows the schema to grow.",
    "06-1": "A query's watermark moves after each micro-batch: what can its first batch drop? Compare the raw "
    "records with the ones the live job kept (labkit.reference writes its rules out). How many windows hold one "
    "reading?",
    "06-2": "SQL has EXCEPT DISTINCT and EXCEPT ALL. Which one still sees a row that is in `left` twice and "
    "in `right` once?",
    "06-3": "labkit.topics can reset a consumer group. To a timestamp, not to the beginning.",
    "06-4": "A window is computed from its own room's readings only, and written once the watermark has passed "
    "its end. Which of room 2's records is the earliest one measured inside the window? The replay reads on "
    "from there to the end of the topic; the other topics can start at their end.",
    "07-1": "The colleague's query has a new name, so a new checkpoint: where does it start reading, and which "
    "txnAppId do its Delta writes carry? Which windows were in the table before it ran?",
    "07-2": "In delta_log(), which versions carry the killed job's txnAppId and which another one? In the "
    "checkpoint, a batch with an offsets file and no commits file was in flight. Is its txnVersion in the log?",
    "07-3": "Lesson 05 restores a version; lesson 07 restarts the job on its own checkpoint (same query name, "
    "the same command) until it has caught up. Both, in that order.",
    "08-1": "From the measured numbers: how long does a batch of N records take? The latency target limits "
    "the batch duration plus the wait for the next trigger.",
    "09-1": "Try every candidate as every room's spike_delta_c with the detectors in plain Python, as lesson 09's "
    "tuning table did, and score each run against the labels: which candidates raise only alerts that match a "
    "label, and of those, which still find the spike? The smallest of them.",
    "10-1": "from_json with the raw schema; a timestamp that comes out null was written in another format than "
    "from_json expected (it takes options).",
    "10-2": "Lesson 02's windows and lesson 04's pipeline: the watermark first, then the repeats dropped by a "
    "method that forgets a key once the watermark has passed it, then groupBy(window, room).",
    "10-3": "Exercise 03, task 1, plus a cast of every column to the type of schema.aggregate_spark_schema().",
    "10-4": "Exercise 04's writer: Delta with the writer's id and the batch id, Kafka with topic, key and value "
    "columns; then writeStream with foreachBatch, a checkpoint and a name.",
}


def nudge(task_id: str) -> str:
    """The first hint of a task (no code)."""
    if task_id not in NUDGES:
        raise LabkitError(f"no exercise task {task_id!r}", f"tasks are named like {sorted(NUDGES)[0]!r}")
    return f"nudge for task {task_id}: {NUDGES[task_id]}\n(still stuck? checks.hint({task_id!r}, level=2))"


def solution_regions(source: str) -> list[str]:
    """The code between each ``# BEGIN SOLUTION`` and ``# END SOLUTION`` of a cell, dedented."""
    regions, inside = [], None
    for line in source.split("\n"):
        if inside is None:
            if BEGIN_CODE.match(line):
                inside = []
        elif END_CODE.match(line):
            regions.append(textwrap.dedent("\n".join(inside)).strip("\n"))
            inside = None
        else:
            inside.append(line)
    return regions


def answer(task_id: str, solutions: Path = SOLUTIONS) -> str:
    """The solution's code for a task, from the solution notebook that runs ``checks.task(task_id)``."""
    import nbformat

    nudge(task_id)  # an unknown id fails here, with the right message
    marker = f"checks.task({task_id!r})".replace("'", '"')
    for path in sorted(solutions.glob(f"{task_id.split('-')[0]}_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        code = [r for c in cells if c.cell_type == "code" and marker in c.source for r in solution_regions(c.source)]
        if code:
            return f"an answer to task {task_id} (from solutions/{path.name}):\n\n" + "\n\n".join(code)
    raise LabkitError(
        f"no answer to task {task_id} in {solutions}",
        "open the matching notebook in solutions/ (it is next to exercises/ in the repository)",
    )
