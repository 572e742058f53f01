"""Take the README's dashboard picture from the real thing: the whole lab running, a few minutes in.

On a stack of its own (ports 25883 and 29692, a temporary state folder, so a running lab is
not disturbed): the bridge, the simulator publishing in real time with two anomalies
(an empty room whose CO2 climbs, a temperature spike) and a few broken payloads, `labkit
stream`, `labkit alerts` and `labkit dashboard`; after ``--wait`` seconds headless Chromium
(the page tests' driver, tests/browser.py) saves the page to docs/img/dashboard.png. Every
process is stopped at the end.

    .venv/bin/python tools/dashboard_screenshot.py [--wait 150] [--out docs/img/dashboard.png]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(tempfile.mkdtemp(prefix="labkit-screenshot-"))
os.environ.update(
    {
        "LABKIT_MQTT_PORT": "25883",
        "LABKIT_KAFKA_PORT": "29692",
        "LABKIT_KAFKA_CONTROLLER_PORT": "29693",
        "LABKIT_STATE_DIR": str(WORK / "state"),
        "LABKIT_LAKE_ROOT": str(WORK / "lake"),
        "LABKIT_METADATA_DB": str(WORK / "metadata.db"),
    }
)
sys.path.insert(0, str(ROOT / "tests"))  # the page tests' Chromium driver


def labkit(*args: str, log: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "labkit", *args],
        cwd=ROOT,
        stdout=open(WORK / log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wait", type=float, default=150, help="seconds of the building before the picture")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "dashboard.png"))
    args = parser.parse_args()
    port = 25990
    subprocess.run([sys.executable, "-m", "labkit", "up"], cwd=ROOT, check=True)
    running = []
    try:
        running.append(labkit("bridge", log="bridge.log"))
        running.append(
            labkit(
                "simulate",
                "--realtime",
                "--malformed",
                "0.002",
                "--anomaly",
                "co2_empty:room_2:20:600",
                "--anomaly",
                f"spike:room_6:{args.wait * 0.6:.0f}:15",
                log="simulate.log",
            )
        )
        running.append(labkit("stream", log="stream.log"))
        running.append(labkit("alerts", log="alerts.log"))
        running.append(labkit("dashboard", "--port", str(port), log="dashboard.log"))
        print(f"the building runs for {args.wait:.0f} s (logs in {WORK})", flush=True)
        time.sleep(args.wait)

        import browser

        driver = browser.chromium()
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            browser.wait_for(lambda: browser.text_of(driver, "glance"), "the glance table", timeout=60)
            time.sleep(5)  # the figures draw after the table
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
        print(f"saved {args.out}")
    finally:
        for process in running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        subprocess.run([sys.executable, "-m", "labkit", "down"], cwd=ROOT)


if __name__ == "__main__":
    main()
