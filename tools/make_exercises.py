"""Write the exercise notebooks from the solution notebooks: one source, two notebooks.

A solution notebook (``solutions/<name>.ipynb``) marks what the learner must write:

* in a code cell, the lines between ``# BEGIN SOLUTION: <what to do>`` and ``# END SOLUTION``
  become one line ``checks.todo("<what to do>")`` (same indentation), which stops the exercise
  with a friendly message until the learner replaces it (see ``labkit.checks.todo``);
* in a markdown cell, the lines between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->``
  are left out of the exercise (notes meant for the solution only).

The exercise (``exercises/<name>.ipynb``) keeps everything else, cell ids included, without
outputs; cells that held a solution get the tag ``todo``. The notebook must import ``checks``
(``from labkit import checks``) before its first TODO.

    .venv/bin/python tools/make_exercises.py          # write exercises/ from solutions/
    .venv/bin/python tools/make_exercises.py --check  # exit 1 if exercises/ is out of date

``tests/test_notebooks.py`` runs the check, so the two folders cannot drift apart.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import nbformat

from labkit.hints import BEGIN_CODE, END_CODE  # the markers, shared with checks.hint's answers

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

BEGIN_MD = re.compile(r"^\s*<!-- BEGIN SOLUTION -->\s*$")
END_MD = re.compile(r"^\s*<!-- END SOLUTION -->\s*$")
DEFAULT_TODO = "write the code this cell asks for"


class MarkerError(ValueError):
    """A solution region that does not open and close properly."""


def _strip_regions(source: str, begin: re.Pattern, end: re.Pattern, replace, where: str) -> tuple[str, int]:
    """``source`` with each region replaced by ``replace(match)`` (a line, or None for nothing)."""
    out, regions, inside = [], 0, None
    for number, line in enumerate(source.split("\n"), 1):
        if inside is None:
            match = begin.match(line)
            if match:
                inside, regions = match, regions + 1
                stub = replace(match)
                if stub is not None:
                    out.append(stub)
            elif end.match(line):
                raise MarkerError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION")
            else:
                out.append(line)
        elif end.match(line):
            inside = None
        elif begin.match(line):
            raise MarkerError(f"{where}, line {number}: BEGIN SOLUTION inside another solution region")
    if inside is not None:
        raise MarkerError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    # a markdown region may leave blank lines at the end of the cell
    return "\n".join(out).rstrip("\n") if regions else source, regions


def _todo_line(match: re.Match) -> str:
    what = (match.group("what") or DEFAULT_TODO).strip()
    return f"{match.group('indent')}checks.todo({json.dumps(what, ensure_ascii=False)})"


def make_exercise(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The exercise for one solution notebook (a new notebook; the solution is not changed)."""
    exercise = copy.deepcopy(solution)
    todos = 0
    for index, cell in enumerate(exercise.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "code":
            cell.source, regions = _strip_regions(cell.source, BEGIN_CODE, END_CODE, _todo_line, where)
            cell.outputs, cell.execution_count = [], None
            if regions:
                todos += regions
                tags = cell.metadata.setdefault("tags", [])
                if "todo" not in tags:
                    tags.append("todo")
        elif cell.cell_type == "markdown":
            cell.source, _ = _strip_regions(cell.source, BEGIN_MD, END_MD, lambda m: None, where)
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    if todos == 0:
        raise MarkerError(f"{name} has no `# BEGIN SOLUTION` region: nothing for the learner to do")
    exercise.metadata.pop("papermill", None)
    return exercise


def render(notebook: nbformat.NotebookNode) -> str:
    """The exact text written to disk (what the sync test compares)."""
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def expected_exercises(solutions: Path = SOLUTIONS) -> dict[str, str]:
    """exercise file name -> its text, for every solution notebook."""
    result = {}
    for path in sorted(solutions.glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        result[path.name] = render(make_exercise(solution, str(path.relative_to(ROOT))))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that exercises/ is up to date")
    args = parser.parse_args(argv)
    expected = expected_exercises()
    if args.check:
        stale = [
            name
            for name, text in expected.items()
            if not (EXERCISES / name).exists() or (EXERCISES / name).read_text(encoding="utf-8") != text
        ]
        extra = sorted(p.name for p in EXERCISES.glob("*.ipynb") if p.name not in expected)
        for name in stale:
            print(f"exercises/{name} differs from what solutions/{name} gives")
        for name in extra:
            print(f"exercises/{name} has no solutions/{name}")
        if stale or extra:
            print("next: run .venv/bin/python tools/make_exercises.py (and edit solutions/, not exercises/)")
            return 1
        print(f"{len(expected)} exercise(s) up to date")
        return 0
    EXERCISES.mkdir(exist_ok=True)
    for name, text in expected.items():
        (EXERCISES / name).write_text(text, encoding="utf-8")
        print(f"wrote exercises/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
