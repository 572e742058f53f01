"""tools/workshop_check.py: the commands `make workshop-check` runs, checked without Docker.

There is no Docker engine here, so the script's real run cannot be tested; what can is the plan
(`--dry-run`: what it would run, in which order) and that the clean-up runs even after a step
failed. The runner below records commands instead of running them and fails the one it is told.
"""

import importlib.util
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("workshop_check", ROOT / "tools" / "workshop_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load()


def test_dry_run_prints_build_up_wait_notebooks_stats_down(capsys):
    assert check.main(["--dry-run", "--solution", "03_joins"]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    words = [shlex.split(c) for c in commands]
    assert words[0][-1] == "build"
    assert words[1][-5:] == ["up", "-d", "--wait", "--wait-timeout", "900"]
    papermill = [w for w in words if "papermill" in w]
    assert [w[w.index("papermill") + 1] for w in papermill] == [
        "/lab/notebooks/00_setup.ipynb",
        "/lab/solutions/03_joins.ipynb",
    ]
    assert all(w[w.index("exec") + 1 : w.index("exec") + 3] == ["-T", "jupyter"] for w in papermill)
    assert words[-2][:3] == ["docker", "stats", "--no-stream"]
    assert words[-1][-2:] == ["down", "-v"] and "--profile" in words[-1], "down -v of every profile, last"


def test_the_notebooks_it_runs_exist_and_the_compose_service_is_there():
    for folder, name in (("notebooks", "00_setup"), ("solutions", "02_windowing")):
        assert (ROOT / folder / f"{name}.ipynb").exists()
    assert "\n  jupyter:\n" in (ROOT / "docker-compose.yml").read_text()


def test_an_unknown_solution_is_refused(capsys):
    assert check.main(["--dry-run", "--solution", "99_nothing"]) == 2
    assert "next:" in capsys.readouterr().out


def _recording_runner(fail_on: str):
    ran = []

    def runner(command):
        ran.append(command)
        if fail_on in command:
            raise subprocess.CalledProcessError(1, command)

    return ran, runner


def test_clean_up_runs_after_a_failed_step_and_nothing_after_the_failure():
    steps = check.plan("02_windowing", ".env.example")
    ran, runner = _recording_runner(fail_on="papermill")
    failed = check.execute(steps, runner)
    assert len(failed) == 1 and "00_setup" in failed[0]
    assert ran[-1][-2:] == ["down", "-v"], "the stack is removed even though the lesson failed"
    assert not any("stats" in c for c in ran), "no step after the failed one but the clean-up"


def test_keep_leaves_the_stack_up():
    ran, runner = _recording_runner(fail_on="never")
    assert check.execute(check.plan("02_windowing", ".env.example"), runner, keep=True) == []
    assert not any("down" in c for c in ran)


def test_clean_up_names_every_profile_of_the_compose_file():
    """`down -v` without a profile leaves the simulator, bridge and stream containers behind."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    profiles = {p for service in compose["services"].values() for p in service.get("profiles", [])}
    down = check.plan("02_windowing", ".env.example")[-1][1]
    named = {down[i + 1] for i, word in enumerate(down) if word == "--profile"}
    assert named == profiles
