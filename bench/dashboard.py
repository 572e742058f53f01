"""Memory and CPU of `labkit dashboard` at the seed's rate, with and without a browser watching.

Method:

* a Kafka broker on the test ports and state folder of LABKIT_TEST_INSTANCE (tests/conftest.py
  sets them; do not run this beside a test session of the same instance): the dashboard reads
  only Kafka, so no MQTT broker, bridge or Spark is started;
* the seed's rate downstream of Spark: 8 rooms, 10 s windows sliding 5 s, so every 5 s one window
  per room (1.6 messages/s) on ``telemetry.<room>.downsampled``, plus one dead letter every 6 s
  (the seed's 1 % malformed of 16 readings/s). The windows are real: labkit.reference's windows
  over the room profiles' readings (tests/aggregates.py), written as the Spark sink writes them;
* ``labkit dashboard`` as its own process; after a 15 s warm-up, psutil samples its CPU time and
  resident memory (RSS and USS) every second for ``--seconds``: first with no page open, then
  with one headless Chromium tab on the page (the page polls for news every 0.25 s);
* reported: mean CPU in % of one core (CPU seconds / wall seconds), and peak RSS / USS;
* then, for 40 s, the page's latency: from Kafka acknowledging a window to room_1's row
  showing it (the page's text polled every 50 ms through the browser).

Run:  .venv/bin/python bench/dashboard.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# tests/aggregates.py: real windows, written as Spark writes them; tests/browser.py: headless Chromium.
# Importing them imports tests/conftest.py, which sets the test ports (settings are read later, lazily).
import aggregates  # noqa: E402
import browser  # noqa: E402
import psutil  # noqa: E402

from labkit import dashboard, names, stack, topics  # noqa: E402

#: room_1's window end as the page prints it -> when Kafka acknowledged that window (monotonic clock)
ACKED: dict[str, float] = {}


def feed_at_seed_rate(stop: threading.Event) -> None:
    """One window per room every 5 s, one dead letter every 6 s, until ``stop``."""
    room_ids = names.room_ids(8)
    start = aggregates.now_aligned()
    by_start: dict = {}
    for row in aggregates.windows(room_ids, start, 3600):
        by_start.setdefault(row["window_start"], []).append(row)
    dead = (names.DLQ_TOPIC, None, b"{broken", [("reason", b"bad_json"), ("mqtt_topic", b"telemetry/room_3")])
    next_dead = time.monotonic()
    for window_start in sorted(by_start):
        if stop.wait(5):
            return
        extra = []
        if time.monotonic() >= next_dead:
            extra, next_dead = [dead], next_dead + 6
        aggregates.produce(by_start[window_start], extra=extra)
        room_1 = [r for r in by_start[window_start] if r["room_id"] == "room_1"]
        if room_1:
            ACKED[room_1[0]["window_end"].strftime("%H:%M:%S")] = time.monotonic()


def sample(process: psutil.Process, seconds: float) -> tuple[float, float, float]:
    """(mean CPU % of one core, peak RSS MiB, peak USS MiB) of ``process`` over ``seconds``."""
    cpu_before, began = sum(process.cpu_times()[:2]), time.monotonic()
    rss = uss = 0.0
    while time.monotonic() - began < seconds:
        info = process.memory_full_info()
        rss, uss = max(rss, info.rss / 2**20), max(uss, info.uss / 2**20)
        time.sleep(1)
    cpu = (sum(process.cpu_times()[:2]) - cpu_before) / (time.monotonic() - began) * 100
    return cpu, rss, uss


def page_latencies(driver, seconds: float) -> list[float]:
    """Seconds from Kafka's acknowledgement of a window to room_1's row showing it, polled every 50 ms."""
    shown, latencies, began = None, [], time.monotonic()
    while time.monotonic() - began < seconds:
        for line in (browser.text_of(driver, "glance") or "").splitlines():
            cells = line.split("\t")
            if cells[0].strip() == "room_1" and len(cells) > 7 and cells[7].strip() != shown:
                shown = cells[7].strip()
                if shown in ACKED and time.monotonic() - began > 1:  # a change seen while watching
                    latencies.append(time.monotonic() - ACKED[shown])
        time.sleep(0.05)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    print(__doc__)
    stack.up(only=["kafka"])
    topics.ensure_topics(topics.lab_topics(names.room_ids(8)))
    stop = threading.Event()
    feeder = threading.Thread(target=feed_at_seed_rate, args=(stop,), daemon=True)
    port = dashboard.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "labkit", "dashboard", "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    driver = None
    try:
        feeder.start()
        time.sleep(15)
        watched = psutil.Process(process.pid)
        idle = sample(watched, args.seconds)
        driver = browser.chromium()
        driver.get(f"http://127.0.0.1:{port}/")
        time.sleep(5)
        viewed = sample(watched, args.seconds)
        latencies = sorted(page_latencies(driver, 40))
        print(f"{'':28} {'CPU % of a core':>16} {'peak RSS MiB':>13} {'peak USS MiB':>13}")
        for label, (cpu, rss, uss) in (("no page open", idle), ("one browser tab watching", viewed)):
            print(f"{label:28} {cpu:16.1f} {rss:13.0f} {uss:13.0f}")
        if latencies:
            print(
                f"Kafka ack -> on the page ({len(latencies)} windows): median {latencies[len(latencies) // 2]:.2f} s, "
                f"max {latencies[-1]:.2f} s"
            )
    finally:
        stop.set()
        if driver is not None:
            driver.quit()
        process.terminate()
        process.wait(20)
        stack.down(only=["kafka"])


if __name__ == "__main__":
    main()
