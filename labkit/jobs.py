"""A ``labkit stream`` job as a process of its own: start it, watch it, kill it, read its log.

Lesson 07 kills the streaming job in the middle of its work and restarts it from its checkpoint.
For that the job cannot run inside the notebook: it runs as the command a learner would type,
``python -m labkit stream ...``, and this module is the plumbing around that process.

Two details matter:

* :func:`start` gives the job a *process group* of its own (``start_new_session=True``). The
  job is two processes, the Python one and the Java one (the JVM) it starts for Spark.
  :meth:`StreamJob.kill` sends ``SIGKILL`` to the whole group, so both die at once, as in a
  power cut. Killing only the Python process would let the JVM notice and shut down in order,
  which is not the crash the lesson wants to survive.
* Spark starts short-lived helper processes. One may exit between being listed and being
  looked at; that is not an error, so every look here tolerates ``psutil.NoSuchProcess``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from labkit.stack.processes import process_tree, still_running


def stream_command(
    query_name: str,
    table: str,
    starting_offsets: dict | str = "earliest",
    max_offsets_per_trigger: int | None = None,
    trigger: str = "",
    to_kafka: bool = False,
    until_caught_up: bool = False,
) -> list[str]:
    """The ``labkit stream`` command line for a job named ``query_name`` writing ``table``.

    ``trigger=""`` runs micro-batches back to back; ``to_kafka=False`` writes Delta only.
    """
    offsets = starting_offsets if isinstance(starting_offsets, str) else json.dumps(starting_offsets)
    command = [
        sys.executable,
        "-m",
        "labkit",
        "stream",
        "--query-name",
        query_name,
        "--table",
        table,
        "--starting-offsets",
        offsets,
        "--trigger",
        trigger,
    ]
    if max_offsets_per_trigger:
        command += ["--max-offsets-per-trigger", str(max_offsets_per_trigger)]
    if not to_kafka:
        command.append("--no-kafka")
    if until_caught_up:
        command.append("--until-caught-up")
    return command


@dataclasses.dataclass
class StreamJob:
    """A started job: its process (``subprocess.Popen``) and the log file it writes to."""

    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """None while the job runs, else its exit status (``-9``: killed by SIGKILL)."""
        return self.process.poll()

    def processes(self) -> list[psutil.Process]:
        """The job's Python process and every process it started (Spark's JVM among them)."""
        return process_tree(self.pid)

    def kill(self, timeout: float = 30) -> int:
        """``SIGKILL`` to the job's whole process group, no goodbye; returns the exit status."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had already exited, and its group with it
            pass
        return self.process.wait(timeout)

    def log_tail(self, n: int = 4) -> list[str]:
        """The last ``n`` lines of the log, Spark's warnings and stack-trace lines left out."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if line and not line[0].isspace() and " WARN " not in line][-n:]


def start(command: list[str], log_path: str | Path, env: dict[str, str] | None = None) -> StreamJob:
    """Start ``command`` in a process group of its own, its output appended to ``log_path``.

    ``env``: the child's environment (default: this process's), e.g. to point it at another stack.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the child keeps its own handle
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    return StreamJob(process, log_path)


def describe(processes) -> str:
    """``pid (name)`` of each process, skipping one that has exited in the meantime."""
    shown = []
    for p in processes:
        try:
            shown.append(f"{p.pid} ({p.name()})")
        except psutil.NoSuchProcess:
            pass
    return ", ".join(shown)


def _runs_labkit_stream(p: psutil.Process) -> bool:
    try:
        return p.cmdline()[1:4] == ["-m", "labkit", "stream"]
    except psutil.NoSuchProcess:
        return False


def leftover_streams() -> list[psutil.Process]:
    """Every ``labkit stream`` process this process started (directly or not) that still runs."""
    return [p for p in still_running(psutil.Process().children(recursive=True)) if _runs_labkit_stream(p)]
