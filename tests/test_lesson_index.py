"""The README's table of lessons is the index a learner opens first: it must agree with the lessons.

Each lesson's time estimate has one source, the ``**Time:** about N minutes`` line of the
notebook's first cell (what a learner sees when the lesson opens). The README's table repeats it
for planning a course; this test fails when the two drift apart, when a lesson is missing from
the table, or when the table names a notebook that does not exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook_minutes(path: Path) -> int:
    first = nbformat.read(path, as_version=4).cells[0].source
    found = re.search(r"\*\*Time:\*\* about (\d+) minutes", first)
    assert found, f"{path.name}: the first cell states `**Time:** about N minutes.`"
    return int(found.group(1))


def readme_table() -> dict[str, int]:
    """``{notebook stem: minutes}`` from the README's table of lessons (rows ``| [`00_setup`](...) | ... | 20 min |``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The lessons", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| \[?`(\d\d_\w+)`\]?(?:\([^)]*\))? \|.*\| (\d+) min \|$", section, flags=re.M)
    return {name: int(minutes) for name, minutes in rows}


def test_the_readme_lists_every_lesson_with_the_notebooks_time_estimate():
    table = readme_table()
    assert table, "the README's 'The lessons' section has a table of lessons"
    from_notebooks = {path.stem: notebook_minutes(path) for path in LESSONS}
    assert table == from_notebooks, (
        "README's lesson table and the notebooks' first cells disagree (the notebook is the source): "
        f"README {table}, notebooks {from_notebooks}"
    )


def test_the_readme_links_each_lesson_to_its_notebook():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in LESSONS:
        assert f"[`{path.stem}`](notebooks/{path.name})" in text, f"the README's table links {path.name}"
