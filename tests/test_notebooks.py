"""The lessons themselves: every notebook runs green, exercises match their solutions.

* every notebook under ``notebooks/`` and ``solutions/`` is executed with papermill, with small
  parameters, against the session stack (the kernel inherits conftest's environment, so it
  talks to the test brokers on ports 21883/29092); each one's wall time is printed at the end
  (conftest's terminal summary);
* lesson 05 runs again on a compose-shaped stack: an ``s3a://`` lake and a Spark cluster;
* ``exercises/`` is exactly what ``tools/make_exercises.py`` writes from ``solutions/``;
* an unmodified exercise stops at its first TODO cell, with the friendly ``TodoError``: shown
  statically for every exercise (same cells as its solution up to there) and by executing the
  first one (``LABKIT_ALL_EXERCISES=1`` executes them all, a few minutes more);
* the ``profile`` parameter reaches labkit (lesson 00 with ``profile="compose"`` asks for Docker);
* every committed notebook is stripped of outputs and has a ``parameters`` cell declaring
  ``profile`` (and ``minutes``, ``interval_s``, ``seed`` where it simulates readings).

The kernel: papermill starts the kernel named ``python3``. A ``python3`` kernel spec in the
user's folder could point at another Python (one without labkit), so the tests write their own
spec, running this very interpreter, into a temporary folder put first on ``JUPYTER_PATH``.
Nothing has to be installed by hand, and nothing outside the temporary folder is changed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
COMMITTED = LESSONS + SOLUTIONS + EXERCISES

#: Small values for the parameters a notebook declares (others keep the notebook's defaults).
SMALL_PARAMETERS = {"minutes": 1}

KERNEL = "python3"


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _load_make_exercises():
    spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    """A ``python3`` kernel spec that runs this interpreter (the venv's), first on JUPYTER_PATH."""
    folder = tmp_path_factory.mktemp("jupyter")
    spec_dir = folder / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (labkit tests)",
                "language": "python",
            }
        )
    )
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(folder)] + ([previous] if previous else []))
    from jupyter_client.kernelspec import KernelSpecManager

    found = KernelSpecManager().get_kernel_spec(KERNEL)
    assert found.argv[0] == sys.executable, f"kernel {KERNEL} runs {found.argv[0]}, not {sys.executable}"
    yield KERNEL
    if previous is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = previous


def execute(path: Path, output: Path, kernel_name: str):
    """Run ``path`` with papermill into ``output``, with the small parameters it declares."""
    import papermill

    declared = papermill.inspect_notebook(str(path))
    parameters = {k: v for k, v in SMALL_PARAMETERS.items() if k in declared}
    papermill.execute_notebook(
        str(path),
        str(output),
        kernel_name=kernel_name,
        cwd=str(path.parent),
        parameters=parameters,
        progress_bar=False,
        execution_timeout=600,
    )


# ---------------------------------------------------------------- (a) every notebook runs green


@pytest.mark.services
@pytest.mark.spark
@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=_name)
def test_notebook_runs(path, stack, kernel, tmp_path):
    execute(path, tmp_path / path.name, kernel)


#: Lessons that also run on a stack shaped like the Docker workshop's (see the test below):
#: 05 leans on the lake the most (history, the _delta_log files, restore, schema evolution).
COMPOSE_SHAPED = [ROOT / "notebooks" / "05_time_travel.ipynb"]


@pytest.mark.services
@pytest.mark.spark
@pytest.mark.s3a
@pytest.mark.parametrize("path", COMPOSE_SHAPED, ids=_name)
def test_lesson_runs_unchanged_on_a_compose_shaped_stack(path, stack, kernel, s3_server, tmp_path, monkeypatch):
    """The same notebook where the Docker workshop differs from the embedded stack.

    In compose the lake is an ``s3a://`` bucket (MinIO) and Spark a standalone cluster. Without
    Docker, the lake here is a bucket on the S3 test double and the cluster is the one
    ``labkit up --spark-cluster`` starts; only the brokers stay the embedded ones (Apache Kafka
    rather than Redpanda: both speak the Kafka API). The kernel inherits these variables, so
    the notebook is not told anything: it must simply work.
    """
    from labkit import stack as stack_module

    bucket = "compose-shaped-lake"
    for name, value in s3_server.lake_environment(bucket).items():
        monkeypatch.setenv(name, value)
    master = f"spark://127.0.0.1:{stack.spark_master_port}"
    monkeypatch.setenv("LABKIT_SPARK_MASTER", master)
    try:
        stack_module.up(stack, spark_cluster=True)
        execute(path, tmp_path / path.name, kernel)
        cluster = stack_module.spark_master_state("127.0.0.1", stack.spark_master_ui_port) or {}
    finally:
        stack_module.down(stack, only=["spark-worker", "spark-master"])

    app_names = [app["name"] for app in cluster.get("completedapps", []) + cluster.get("activeapps", [])]
    assert any(name.startswith("lesson-05") for name in app_names), f"the lesson ran on {master}: apps {app_names}"
    keys = s3_server.keys(bucket)
    commits = [k for k in keys if "/_delta_log/" in k and k.endswith(".json") and not k.startswith("_checkpoints/")]
    checkpoints = [k for k in keys if k.startswith("_checkpoints/")]
    assert commits and checkpoints, f"the lesson's tables and checkpoints are in the bucket: {keys[:10]}"


# ---------------------------------------------------------------- (b) exercises are generated


def test_exercises_are_generated_from_the_solutions():
    make_exercises = _load_make_exercises()
    expected = make_exercises.expected_exercises()
    assert expected, "no solution notebooks in solutions/"
    committed = {p.name for p in EXERCISES}
    assert committed == set(expected), (
        f"exercises/ and solutions/ hold different notebooks: {sorted(committed ^ set(expected))}; "
        "run .venv/bin/python tools/make_exercises.py"
    )
    for name, text in expected.items():
        assert (ROOT / "exercises" / name).read_text(encoding="utf-8") == text, (
            f"exercises/{name} drifted from solutions/{name}: edit the solution, then run "
            ".venv/bin/python tools/make_exercises.py"
        )


def test_make_exercises_replaces_each_region_by_a_todo():
    make_exercises = _load_make_exercises()
    solution = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "Intro\n<!-- BEGIN SOLUTION -->\nonly in the solution\n<!-- END SOLUTION -->"
            ),
            nbformat.v4.new_code_cell(
                "x = 1\nif x:\n    # BEGIN SOLUTION: set y to two\n    y = 2\n    # END SOLUTION\nprint(y)"
            ),
        ]
    )
    exercise = make_exercises.make_exercise(solution)
    assert exercise.cells[0].source == "Intro"
    assert exercise.cells[1].source == 'x = 1\nif x:\n    checks.todo("set y to two")\nprint(y)'
    assert exercise.cells[1].metadata["tags"] == ["todo"]
    assert "y = 2" in solution.cells[1].source, "the solution itself is left unchanged"
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# BEGIN SOLUTION\ny = 2")])
    with pytest.raises(make_exercises.MarkerError, match="without END SOLUTION"):
        make_exercises.make_exercise(broken)


# ---------------------------------------------------------------- (c) an exercise stops at its first TODO


def _first_todo(notebook) -> int:
    return next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and "checks.todo(" in c.source)


@pytest.mark.parametrize("path", EXERCISES, ids=_name)
def test_an_exercise_runs_its_solutions_cells_until_its_first_todo(path):
    """Why executing one exercise (below) vouches for all of them.

    Everything an exercise runs before its first TODO is, cell for cell, what its solution runs
    (and the solution runs green in ``test_notebook_runs``); the first TODO cell runs the
    solution's lines up to the region, then ``checks.todo``, which raises TodoError. So each
    exercise stops exactly there, and executing them all would repeat the solutions' setup.
    """
    exercise = nbformat.read(path, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / path.name, as_version=4)
    first = _first_todo(exercise)
    before = [c.source for c in exercise.cells[:first] if c.cell_type == "code"]
    assert before == [c.source for c in solution.cells[:first] if c.cell_type == "code"], (
        f"{_name(path)}: the code before the first TODO differs from the solution's"
    )
    lead, todo_line = exercise.cells[first].source.split("checks.todo(", 1)[0], "checks.todo("
    assert solution.cells[first].source.startswith(lead.rstrip(" ")), (
        f"{_name(path)}: the TODO cell's first lines differ"
    )
    assert "from labkit import" in "\n".join(before) and "checks" in "\n".join(before), (
        f"{_name(path)}: `checks` must be imported before the first {todo_line}"
    )


#: The exercises executed for real (the test above covers the others); LABKIT_ALL_EXERCISES=1: all.
EXECUTED_EXERCISES = EXERCISES if os.environ.get("LABKIT_ALL_EXERCISES") else EXERCISES[:1]


@pytest.mark.services
@pytest.mark.spark
@pytest.mark.parametrize("path", EXECUTED_EXERCISES, ids=_name)
def test_unmodified_exercise_stops_at_its_first_todo(path, stack, kernel, tmp_path):
    from papermill.exceptions import PapermillExecutionError

    source = nbformat.read(path, as_version=4)
    todo_cells = [c for c in source.cells if c.cell_type == "code" and "checks.todo(" in c.source]
    assert todo_cells, f"{_name(path)} has no TODO"
    first = todo_cells[0]
    what = re.search(r'checks\.todo\("(.*)"\)', first.source).group(1)

    output = tmp_path / path.name
    with pytest.raises(PapermillExecutionError) as failure:
        execute(path, output, kernel)
    assert failure.value.ename == "TodoError", failure.value
    assert f"TODO: {what}." in failure.value.evalue
    assert "solutions/" in failure.value.evalue, "the message says where help is"

    executed = nbformat.read(output, as_version=4)
    failed = [c.id for c in executed.cells if c.get("metadata", {}).get("papermill", {}).get("status") == "failed"]
    assert failed == [first.id], f"expected the first TODO cell {first.id} to fail, got {failed}"


# ---------------------------------------------------------------- (d) the profile parameter


def test_profile_parameter_reaches_labkit(kernel, tmp_path):
    """``-p profile compose`` makes lesson 00 look for the Docker stack (absent here), and say so.

    Runs only the cells up to the stack check, without Spark: a few seconds. The services it
    looks for (``mosquitto``, ``redpanda``) are Docker host names that do not resolve here.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = ROOT / "notebooks" / "00_setup.ipynb"
    output = tmp_path / path.name
    with pytest.raises(PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(path),
            str(output),
            kernel_name=kernel,
            cwd=str(path.parent),
            parameters={"profile": "compose", "timeout_s": 5},
            progress_bar=False,
        )
    assert failure.value.ename == "LabkitError", failure.value
    assert "docker compose up" in failure.value.evalue, "the error says how to start the compose stack"
    printed = "".join(
        o.get("text", "") for c in nbformat.read(output, as_version=4).cells for o in c.get("outputs", [])
    )
    assert "profile: compose" in printed and "redpanda" in printed, "the settings cell shows the compose endpoints"


# ---------------------------------------------------------------- (e) committed notebooks are clean


@pytest.mark.parametrize("path", COMMITTED, ids=_name)
def test_committed_notebook_is_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    with_output = [
        i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not with_output, f"{_name(path)}: cells {with_output} have outputs; strip them before committing"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{_name(path)}: needs exactly one code cell tagged `parameters`, has {len(tagged)}"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# "), "a title first"
    assert "**Time:**" in notebook.cells[0].source, f"{_name(path)}: the first cell states a time estimate"
    declared = set(re.findall(r"^(\w+)(?:\s*,\s*\w+)*\s*=", tagged[0].source, flags=re.M))
    assert "profile" in declared, f"{_name(path)}: the parameters cell needs `profile` (None: as the environment says)"
    if any("simulator.generate(" in c.source for c in code):  # a lesson with readings: how many, how fast, which
        missing = {"minutes", "interval_s", "seed"} - declared
        assert not missing, f"{_name(path)}: the parameters cell lacks {sorted(missing)}"
    # One code path for every profile: a notebook never asks which one it runs on.
    branching = [c.source for c in code if re.search(r"\.embedded\b|\.profile\b|LABKIT_PROFILE", c.source)]
    assert not branching, f"{_name(path)} looks at the profile: {branching[0][:80]!r}"


def test_every_lesson_folder_has_notebooks():
    assert LESSONS and SOLUTIONS and EXERCISES
    assert [p.name for p in LESSONS][:2] == ["00_setup.ipynb", "01_ingestion.ipynb"]
