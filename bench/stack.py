"""Benchmark: how long the embedded stack takes to start, and how much memory it holds.

Method (each step in a fresh state folder, on the ports of the tests + 100 so a running
stack is not disturbed):

1. ``labkit up`` with an EMPTY jar cache: includes resolving and downloading the Kafka broker's
   jars with Ivy (network bound), formatting Kafka's storage and waiting for both brokers.
2. ``labkit down``, then ``labkit up`` again with the WARM cache and a new state folder.
3. Resident memory (RSS) of each service's process tree after 15 s idle.
4. ``labkit.spark.get_session()`` start time in a fresh Python process (warm cache), 3 runs.

Run:  .venv/bin/python bench/stack.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def labkit(env: dict, *args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "labkit", *args], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.monotonic() - started


def tree_rss_mb(pid: int) -> float:
    from labkit.stack.processes import process_tree

    return sum(p.memory_info().rss for p in process_tree(pid)) / 2**20


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    base = {
        **os.environ,
        "LABKIT_MQTT_PORT": "21983",
        "LABKIT_KAFKA_PORT": "29192",
        "LABKIT_KAFKA_CONTROLLER_PORT": "29193",
    }
    cold = {**base, "LABKIT_JARS_DIR": str(work / "empty-cache"), "LABKIT_STATE_DIR": str(work / "s1")}
    t_cold = labkit(cold, "up")
    labkit(cold, "down")
    warm = {**base, "LABKIT_STATE_DIR": str(work / "s2")}
    labkit(warm, "jars", "kafka")  # the default cache, filled once (normally by `make setup`)
    t_warm = labkit(warm, "up")
    time.sleep(15)
    from labkit import settings, stack

    s = settings.load(warm)
    rss = {st.name: tree_rss_mb(st.pid) for st in stack.status(s) if st.pid}
    labkit(warm, "down")

    spark_times = []
    for _ in range(3):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t=time.monotonic(); from labkit import spark; "
                "s=spark.get_session(verbose=False); print(time.monotonic()-t); s.stop()",
            ],
            env=warm,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        spark_times.append(float(out.stdout.strip().splitlines()[-1]))

    print(f"labkit up, empty jar cache : {t_cold:6.1f} s")
    print(f"labkit up, warm jar cache  : {t_warm:6.1f} s")
    for name, mb in rss.items():
        print(f"idle RSS {name:<17} : {mb:6.0f} MiB")
    print(f"idle RSS total             : {sum(rss.values()):6.0f} MiB")
    print(
        f"SparkSession start (local) : {statistics.median(spark_times):6.1f} s median of "
        f"{', '.join(f'{t:.1f}' for t in spark_times)}"
    )


if __name__ == "__main__":
    main()
