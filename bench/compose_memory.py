"""Benchmark: the peak memory of the lab's services, to size the Docker stack's memory limits.

The compose stack cannot run here (no Docker engine), but the same programs can: this script
runs them embedded, with the compose profile's Spark shape, and records how much memory each
one holds at its peak. docker-compose.yml's ``mem_limit`` of each service is this figure plus
a margin (docs/workshop-docker.md, "Memory").

Method:

1. ``labkit up --spark-cluster`` in a fresh state folder, on the ports of the tests of instance N
   (``LABKIT_TEST_INSTANCE=N``, default 1): MQTT, Kafka, a Spark master and a worker with
   4 task slots and 2 GB, as in compose.
2. A lesson (default ``07_fault_tolerance``: a notebook session *and* a ``labkit stream`` job on
   the cluster, the heaviest lesson) runs with papermill, ``minutes=1``, on that cluster. The
   lake is a local folder (compose's is ``s3a://``: the S3A client adds a little to the
   drivers and executors, not measured here).
   Spark's heaps as in docker-compose.yml: drivers ``--driver-memory`` (512m), the master's and
   worker's own ``--daemon-memory`` (128m); executors 512m (labkit.spark).
3. Every 0.5 s the resident memory (RSS) of each process tree is summed: the MQTT broker, the
   Kafka broker, the Spark master, the worker with its executors, and the papermill kernel with
   the Spark drivers it starts (in compose: the JupyterLab container). The peak of each is kept.

Run:  LABKIT_TEST_INSTANCE=1 .venv/bin/python bench/compose_memory.py [--lesson 07_fault_tolerance]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def tree_rss_mb(process: psutil.Process) -> float:
    """RSS of a process and all its descendants, in MiB (0 once it has gone)."""
    total = 0
    try:
        for p in [process, *process.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        return 0.0
    return total / 2**20


class PeakSampler(threading.Thread):
    """Samples named process trees until stopped; keeps each one's peak."""

    def __init__(self):
        super().__init__(daemon=True)
        self.trees: dict[str, psutil.Process] = {}
        self.peaks: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, process in list(self.trees.items()):
                self.peaks[name] = max(self.peaks.get(name, 0.0), tree_rss_mb(process))
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lesson", default="07_fault_tolerance")
    parser.add_argument("--driver-memory", default="512m", help="LABKIT_SPARK_DRIVER_MEMORY, as in compose")
    parser.add_argument("--daemon-memory", default="128m", help="SPARK_DAEMON_MEMORY, as in compose")
    args = parser.parse_args()
    n = int(os.environ.get("LABKIT_TEST_INSTANCE", "1"))
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-memory-"))
    port = lambda base: str(base + 100 * n)  # noqa: E731  (the ports of the tests of instance N)
    env = {
        **os.environ,
        "LABKIT_STATE_DIR": str(work / "state"),
        "LABKIT_LAKE_ROOT": str(work / "lake"),
        "LABKIT_METADATA_DB": str(work / "data" / "metadata.db"),
        "LABKIT_MQTT_PORT": port(21883),
        "LABKIT_KAFKA_PORT": port(29092),
        "LABKIT_KAFKA_CONTROLLER_PORT": port(29093),
        "LABKIT_SPARK_MASTER_PORT": port(27077),
        "LABKIT_SPARK_MASTER_UI_PORT": port(28080),
        "LABKIT_SPARK_WORKER_UI_PORT": port(28083),
        "LABKIT_SPARK_MASTER": f"spark://127.0.0.1:{port(27077)}",
        "LABKIT_SPARK_DRIVER_MEMORY": args.driver_memory,
        "SPARK_DAEMON_MEMORY": args.daemon_memory,
    }
    os.environ.update(env)
    from labkit import settings, stack

    s = settings.load(env)
    sampler = PeakSampler()
    try:
        stack.up(s, spark_cluster=True)
        for st in stack.status(s):
            if st.pid:
                sampler.trees[st.name] = psutil.Process(st.pid)
        sampler.start()
        notebook = ROOT / "notebooks" / f"{args.lesson}.ipynb"
        started = time.monotonic()
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "papermill",
                str(notebook),
                str(work / notebook.name),
                "-p",
                "minutes",
                "1",
                "--cwd",
                str(ROOT / "notebooks"),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        sampler.trees["notebook (papermill, kernel, drivers)"] = psutil.Process(run.pid)
        _, err = run.communicate()
        elapsed = time.monotonic() - started
    finally:
        sampler.done.set()
        stack.down(s)
    print(
        f"{args.lesson} on spark://, minutes=1, driver heap {args.driver_memory}, master/worker heap "
        f"{args.daemon_memory}: exit {run.returncode} after {elapsed:.0f} s"
    )
    if run.returncode:
        print(err[-2000:])
    print(f"{'process tree':<40}{'peak RSS MiB':>14}")
    for name, peak in sampler.peaks.items():
        print(f"{name:<40}{peak:>14.0f}")
    print(f"{'total of the peaks':<40}{sum(sampler.peaks.values()):>14.0f}")


if __name__ == "__main__":
    main()
