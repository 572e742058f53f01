"""Check the Docker workshop on a machine with Docker, before teaching it: `make workshop-check`.

What a learner will do, end to end, then clean up:

1. ``docker compose build``: the lab image (only the ``jupyter`` service builds it);
2. ``docker compose up -d --wait``: every default service started and healthy;
3. lesson 00 and one solution run with papermill *inside* the JupyterLab container, against
   the containers (``LABKIT_PROFILE=compose`` there), ``minutes=1``;
4. each container's memory (``docker stats --no-stream``), to compare with its ``mem_limit``
   and docs/workshop-docker.md, "Memory";
5. ``docker compose down -v``: containers and volumes removed, always, even after a failure
   (``--keep`` leaves the stack up to look into it).

CI has no Docker engine, so this never runs there; ``--dry-run`` prints the commands instead
of running them (tests/test_workshop_check.py checks that list). Without a ``.env`` the
learning defaults of ``.env.example`` are used.

    python tools/workshop_check.py [--dry-run] [--keep] [--solution 02_windowing]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
LESSON = "notebooks/00_setup.ipynb"
OUT = "/tmp/workshop-check"  # inside the jupyter container


def compose(env_file: str) -> list[str]:
    return ["docker", "compose", "--project-directory", str(ROOT), "--env-file", env_file]


def plan(solution: str, env_file: str) -> list[tuple[str, list[str]]]:
    """The steps, in order, as (what, command). The last one, ``down -v``, runs whatever happens."""
    dc = compose(env_file)
    notebooks = [LESSON, f"solutions/{solution}.ipynb"]
    steps = [
        ("build the lab image", [*dc, "build"]),
        ("start the stack and wait until healthy", [*dc, "up", "-d", "--wait", "--wait-timeout", "900"]),
        ("the stack as labkit sees it", [*dc, "exec", "-T", "jupyter", "labkit", "status"]),
        ("a folder for the executed notebooks", [*dc, "exec", "-T", "jupyter", "mkdir", "-p", OUT]),
    ]
    for notebook in notebooks:
        folder = str(Path("/lab") / Path(notebook).parent)
        steps.append(
            (
                f"run {notebook} in the jupyter container",
                [
                    *dc,
                    "exec",
                    "-T",
                    "jupyter",
                    "papermill",
                    f"/lab/{notebook}",
                    f"{OUT}/{Path(notebook).name}",
                    "-p",
                    "minutes",
                    "1",
                    "--cwd",
                    folder,
                    "--no-progress-bar",
                ],
            )
        )
    table = "table {{.Name}}\t{{.MemUsage}}\t{{.MemPerc}}"
    steps.append(("memory of each container", ["docker", "stats", "--no-stream", "--format", table, "<containers>"]))
    every_profile = [
        "--profile",
        "live",
        "--profile",
        "stream",
        "--profile",
        "dashboards",
    ]  # what docker-compose.yml defines
    steps.append(("stop and delete containers and volumes", [*dc, *every_profile, "down", "-v"]))
    return steps


def run(command: list[str], dc: list[str]) -> None:
    """Run one command with its output shown; CalledProcessError when it fails.

    ``<containers>`` in a command stands for this project's containers (``docker compose ps -q``).
    """
    if "<containers>" in command:
        ids = subprocess.run([*dc, "ps", "-q"], capture_output=True, text=True, check=True).stdout.split()
        command = [c for c in command if c != "<containers>"] + ids
    subprocess.run(command, check=True)


def execute(steps: list[tuple[str, list[str]]], runner: Callable[[list[str]], None], keep: bool = False) -> list[str]:
    """Run the steps in order until one fails; always run the last (clean-up) unless ``keep``.

    Returns what failed, one line each: an empty list means the workshop works.
    """
    *work, (cleanup_what, cleanup) = steps
    failed = []
    try:
        for what, command in work:
            print(f"== {what}: {shlex.join(command)}", flush=True)
            started = time.monotonic()
            try:
                runner(command)
            except (subprocess.CalledProcessError, OSError) as error:
                failed.append(f"{what}: {error}")
                break
            print(f"   {what}: done in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        if keep:
            print(f"== left running (--keep); clean up with: {shlex.join(cleanup)}")
        else:
            print(f"== {cleanup_what}: {shlex.join(cleanup)}", flush=True)
            try:
                runner(cleanup)
            except (subprocess.CalledProcessError, OSError) as error:
                failed.append(f"{cleanup_what}: {error}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--keep", action="store_true", help="leave the stack up at the end")
    parser.add_argument("--solution", default="02_windowing", help="which solutions/<name>.ipynb to run")
    args = parser.parse_args(argv)
    if not (ROOT / "solutions" / f"{args.solution}.ipynb").exists():
        print(
            f"error: no solutions/{args.solution}.ipynb\nnext: pick one of "
            f"{', '.join(p.stem for p in sorted((ROOT / 'solutions').glob('*.ipynb')))}"
        )
        return 2
    env_file = str(ROOT / (".env" if (ROOT / ".env").exists() else ".env.example"))
    steps = plan(args.solution, env_file)
    if args.dry_run:
        for what, command in steps:
            print(f"# {what}\n{shlex.join(command)}")
        return 0
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print(
            "error: no Docker engine answers `docker info`\n"
            "next: start Docker (Docker Desktop, or `sudo systemctl start docker`), then run this again"
        )
        return 2
    failed = execute(steps, lambda command: run(command, compose(env_file)), keep=args.keep)
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    if failed:
        print("next: docs/workshop-docker.md, Troubleshooting; rerun with --keep to look inside", file=sys.stderr)
        return 1
    print("the Docker workshop works on this machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
