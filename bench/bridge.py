"""Benchmark: how many readings per second the MQTT -> Kafka bridge moves, with zero loss.

Method (own stack on ports 22883/29292, so a running lab is not disturbed):

1. **Broker ceiling.** Mosquitto's own C clients: ``mosquitto_sub -q 1 -C N`` receives while one
   ``mosquitto_pub -q 1 -l`` per room publishes the same N readings (one JSON line each).
   Time from the first publish to the last receipt: what the MQTT broker alone can carry at QoS 1.
2. **Bridge drain rate.** The bridge subscribes once (creating its persistent session) and is
   stopped; the N readings are published into the broker, which queues them for the session;
   then the bridge starts again and we time until Kafka holds all N (end offsets of the room
   topics), with nothing in the dead-letter topic. This is the sustained rate of the bridge
   itself (validate, produce with acks=all, acknowledge to MQTT after Kafka confirms), not of
   a Python publisher competing with it for the 2 cores.
3. **Live.** Bridge running while the C publishers send: end-to-end rate with both at work.

Run:  .venv/bin/python bench/bridge.py [--messages 100000] [--rooms 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
PORTS = {"LABKIT_MQTT_PORT": "22883", "LABKIT_KAFKA_PORT": "29292", "LABKIT_KAFKA_CONTROLLER_PORT": "29293"}


def readings_per_room(rooms: list[str], total: int, folder: Path) -> dict[str, Path]:
    """One file of JSON lines per room, ``total`` readings in all, from the lab's simulator."""
    from labkit import simulator

    files = {r: open(folder / f"{r}.jsonl", "wb") for r in rooms}
    start = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
    for m in simulator.generate(rooms=rooms, start=start, count=total // len(rooms)):
        files[m.record["room_id"]].write(m.payload + b"\n")
    for f in files.values():
        f.close()
    return {r: folder / f"{r}.jsonl" for r in rooms}


def publish_with_c_clients(files: dict[str, Path], port: str) -> None:
    """One mosquitto_pub per room, all at once, QoS 1; returns when all have finished."""
    from labkit import names

    procs = [
        subprocess.Popen(
            ["mosquitto_pub", "-p", port, "-q", "1", "-t", names.mqtt_topic(r), "-l", "-i", f"bench-pub-{r}"],
            stdin=open(path, "rb"),
        )
        for r, path in files.items()
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("mosquitto_pub failed")


def kafka_total(bootstrap: str, names: list[str]) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-peek"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(t, 0), timeout=10)[1] for t in names)
    finally:
        consumer.close()


def wait_for_kafka(bootstrap: str, names: list[str], target: int, timeout: float = 600) -> float:
    started = time.monotonic()
    while kafka_total(bootstrap, names) < target:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {kafka_total(bootstrap, names)} of {target} readings reached Kafka")
        time.sleep(0.2)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rooms", type=int, default=64)
    args = parser.parse_args()
    if not shutil.which("mosquitto_pub"):
        raise SystemExit("needs mosquitto's C clients: sudo apt-get install mosquitto-clients")

    work = Path(tempfile.mkdtemp(prefix="labkit-bench-bridge-"))
    env = {**os.environ, **PORTS, "LABKIT_STATE_DIR": str(work / "state"), "LABKIT_MQTT_BROKER": "mosquitto"}
    os.environ.update(env)
    from labkit import names, settings, stack, topics

    s = settings.get()
    room_ids = names.room_ids(args.rooms)
    total = args.messages // len(room_ids) * len(room_ids)
    files = readings_per_room(room_ids, total, work)
    raw = [names.raw_topic(r) for r in room_ids]
    stack.up(s)
    topics.ensure_topics(topics.lab_topics(room_ids))
    try:
        # 1. the broker's own ceiling
        sub = subprocess.Popen(
            [
                "mosquitto_sub",
                "-p",
                PORTS["LABKIT_MQTT_PORT"],
                "-q",
                "1",
                "-t",
                "telemetry/+",
                "-C",
                str(total),
                "-i",
                "bench-sub",
            ],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        started = time.monotonic()
        publish_with_c_clients(files, PORTS["LABKIT_MQTT_PORT"])
        sub.wait(600)
        ceiling = total / (time.monotonic() - started)

        # 2. the bridge draining a backlog queued for its persistent session
        def bridge_process():
            return subprocess.Popen(
                [sys.executable, "-m", "labkit", "bridge", "--rooms", str(args.rooms), "--client-id", "bench-bridge"],
                env=env,
                stdout=open(work / "bridge.log", "ab"),
                stderr=subprocess.STDOUT,
            )

        def connected():
            return "-> Kafka" in (work / "bridge.log").read_text()

        bridge = bridge_process()
        while not connected():
            time.sleep(0.2)
        time.sleep(1)
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(60)
        publish_with_c_clients(files, PORTS["LABKIT_MQTT_PORT"])
        before = kafka_total(s.kafka_bootstrap, raw)
        (work / "bridge.log").write_text("")
        bridge = bridge_process()
        drain_seconds = wait_for_kafka(s.kafka_bootstrap, raw, before + total)
        drain = total / drain_seconds  # includes the bridge's start (~1 s): a lower bound

        # 3. live: bridge running while the C clients publish
        before = kafka_total(s.kafka_bootstrap, raw)
        started = time.monotonic()
        publish_with_c_clients(files, PORTS["LABKIT_MQTT_PORT"])
        wait_for_kafka(s.kafka_bootstrap, raw, before + total)
        live = total / (time.monotonic() - started)
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(60)
        dead = kafka_total(s.kafka_bootstrap, [names.DLQ_TOPIC])
        lost = 2 * total - kafka_total(s.kafka_bootstrap, raw)  # runs 2 and 3 went through the bridge
    finally:
        stack.down(s)
        shutil.rmtree(work, ignore_errors=True)

    print(f"readings: {total:,} per run over {len(room_ids)} rooms, QoS 1, mosquitto")
    print(f"broker ceiling (mosquitto_pub -> mosquitto_sub) : {ceiling:9,.0f} msg/s")
    print(f"bridge, draining a queued backlog               : {drain:9,.0f} msg/s")
    print(f"bridge, live beside the publishers              : {live:9,.0f} msg/s")
    print(f"ratio bridge/ceiling                            : {drain / ceiling:9.2f}")
    print(f"lost: {max(lost, 0)}, in the dead-letter topic: {dead}, extra copies: {max(-lost, 0)}")
    print(f"the building's load is 16 msg/s: headroom x{drain / 16:,.0f}")


if __name__ == "__main__":
    main()
