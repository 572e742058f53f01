"""The fault suite: kill each part of the running pipeline, restart it, count what was lost.

While the simulator publishes in real time (8 rooms, 10 readings/s each, event time = wall
clock) and a bridge and a ``labkit stream`` job run, one component at a time is killed with
SIGKILL and restarted: the bridge, the stream job, the Kafka broker, the MQTT broker; then the
whole stack goes through ``labkit down`` / ``labkit up``. At the end the stream job catches up,
and for each scenario the suite counts, against what the simulator published:

* readings lost (published and acknowledged by the MQTT broker, never in Kafka) and readings
  duplicated in Kafka (at-least-once delivery may repeat);
* windows missing from Delta or written twice, against ``labkit.reference``'s computation over
  the raw records in Kafka.

The report (``out/test-artifacts/fault-report.md``, also printed) is the evidence behind the
README's guarantees table. Bridge, stream job and Kafka broker must lose nothing and Delta must
hold every window exactly once. Mosquitto keeps its queues in memory between saves, so a
SIGKILL of the MQTT broker may lose what it held at that instant: the suite measures that
window instead of asserting zero.

Everything runs on a stack of its own (free ports, its own state folder), so killing a broker
here does not disturb the other tests; every process it starts is stopped at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import ROOT, free_port

from labkit import jobs, metadata, names, reference, schema, simulator, topics
from labkit import stack as stack_module

pytestmark = [pytest.mark.services, pytest.mark.spark]

ROOMS = names.room_ids(8)
INTERVAL_S = 0.1  # 10 readings/s per room: 80 readings/s in all
PUBLISH_S = 15  # seconds of publishing per scenario
KILL_AT_S, DOWN_FOR_S = 4, 2
QUERY = "faults"
REPORT = ROOT / "out" / "test-artifacts" / "fault-report.md"


@dataclasses.dataclass
class Scenario:
    name: str
    published: list = dataclasses.field(default_factory=list)  # payloads the broker acknowledged
    first: datetime | None = None  # event-time range of its readings
    last: datetime | None = None
    notes: str = ""


class Running:
    """A labkit command started with ``labkit.jobs`` (its own process group), restartable."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]):
        self.args, self.log, self.env = args, log, env
        self.job = jobs.start([sys.executable, "-m", "labkit", *args], log, env)

    def kill(self) -> None:
        self.job.kill()

    def restart(self) -> None:
        self.job = jobs.start(self.job.process.args, self.log, self.env)

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C would: the job stops its query and Spark."""
        if self.job.poll() is None:
            os.killpg(self.job.pid, signal.SIGTERM)
            self.job.process.wait(120)


@pytest.fixture(scope="module")
def own_stack(stack, tmp_path_factory):
    """A stack of the suite's own: brokers it may kill without disturbing the other tests."""
    folder = tmp_path_factory.mktemp("faults")
    s = dataclasses.replace(
        stack,
        state_dir=folder / "state",
        lake_root=str(folder / "lake"),
        metadata_db=folder / "metadata.db",
        mqtt_port=free_port(),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    env = {
        **os.environ,
        "LABKIT_STATE_DIR": str(s.state_dir),
        "LABKIT_LAKE_ROOT": s.lake_root,
        "LABKIT_METADATA_DB": str(s.metadata_db),
        "LABKIT_MQTT_PORT": str(s.mqtt_port),
        "LABKIT_KAFKA_PORT": str(s.kafka_port),
        "LABKIT_KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
    }
    stack_module.up(s)
    topics.ensure_topics(topics.lab_topics(ROOMS), s=s)
    metadata.init_metadata(s.metadata_db)
    yield s, env, folder
    stack_module.down(s)


def publish(s, scenario: Scenario, during=None) -> None:
    """Publish PUBLISH_S seconds of readings in real time; run ``during(elapsed)`` beside it."""
    messages = list(
        simulator.generate(
            rooms=ROOMS,
            start=datetime.now(timezone.utc),
            duration=PUBLISH_S,
            interval=INTERVAL_S,
            seed=len(scenario.name),
        )
    )
    worker = threading.Thread(target=during) if during else None
    if worker:
        worker.start()
    simulator.publish(messages, realtime=True, host=s.mqtt_host, port=s.mqtt_port, progress_every=None, ack_timeout=120)
    if worker:
        worker.join(120)
    scenario.published = [m.payload for m in messages]
    times = [schema.parse_timestamp(m.record["timestamp"]) for m in messages]
    scenario.first, scenario.last = min(times), max(times)


def quiet(s, seconds: float = 3.0, timeout: float = 120) -> None:
    """Wait until the raw topics stop growing: the bridge has delivered what it will deliver."""
    raw = [names.raw_topic(r) for r in ROOMS]
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = topics.end_offsets(raw, s)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.5)


def after(delay: float, action):
    def run():
        time.sleep(delay)
        action()

    return run


def test_every_component_killed_and_restarted(own_stack, spark):
    s, env, folder = own_stack
    start_offsets = topics.end_offsets([names.raw_topic(r) for r in ROOMS], s)
    bridge = Running(["bridge", "--client-id", "faults-bridge"], folder / "bridge.log", env)
    stream = Running(
        ["stream", "--query-name", QUERY, "--starting-offsets", json.dumps(start_offsets), "--no-kafka"],
        folder / "stream.log",
        env,
    )
    scenarios = []
    try:
        time.sleep(10)  # the bridge subscribed, Spark started

        def kill_and_restart_bridge():
            bridge.kill()
            time.sleep(DOWN_FOR_S)
            bridge.restart()

        def kill_and_restart_stream():
            stream.kill()
            time.sleep(DOWN_FOR_S)
            stream.restart()

        def kill_and_restart(service: str):
            def run():
                os.kill(stack_module.running_process(s, service).pid, signal.SIGKILL)
                time.sleep(DOWN_FOR_S)
                stack_module.up(s, only=[service])

            return run

        for name, action in [
            ("bridge", kill_and_restart_bridge),
            ("stream job", kill_and_restart_stream),
            ("Kafka broker", kill_and_restart("kafka")),
            ("MQTT broker", kill_and_restart("mqtt")),
        ]:
            scenario = Scenario(f"SIGKILL {name}")
            publish(s, scenario, during=after(KILL_AT_S, action))
            quiet(s)
            scenario.notes = revive(bridge, stream)
            scenarios.append(scenario)

        # The whole stack stopped and started between two bursts of readings.
        scenario = Scenario("labkit down / labkit up")
        publish(s, scenario)
        quiet(s)
        stack_module.down(s)
        stack_module.up(s)
        scenario.notes = revive(bridge, stream)
        second = Scenario("(after up)")
        time.sleep(5)
        publish(s, second)
        scenario.published += second.published
        scenario.last = second.last
        quiet(s)
        scenarios.append(scenario)
    finally:
        bridge.stop()
        stream.stop()

    # The job finishes what is in Kafka, from its checkpoint, and stops.
    end = topics.end_offsets([names.raw_topic(r) for r in ROOMS], s)
    final = subprocess.run(
        [
            sys.executable,
            "-m",
            "labkit",
            "stream",
            "--query-name",
            QUERY,
            "--no-kafka",
            "--until-caught-up",
            "--trigger",
            "",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]

    records = reference.records_between(start_offsets, end, s)
    report = measure(spark, s, scenarios, records)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)
    for log in [folder / "bridge.log", folder / "stream.log", s.state_dir / "logs" / "mqtt.log"]:
        shutil.copy(log, REPORT.parent / f"faults-{log.name}")  # kept beside the report, to read after a failure
    print(report)
    rows = {
        line.split("|")[1].strip(): line
        for line in report.splitlines()
        if line.startswith("| SIGKILL") or line.startswith("| labkit")
    }
    for row in rows.values():
        cells = [c.strip() for c in row.strip("|").split("|")]
        name, lost, missing, twice = cells[0], int(cells[3].split()[0]), int(cells[7]), int(cells[8])
        assert twice == 0, f"{name}: a window written twice in Delta\n{report}"
        assert missing == 0, f"{name}: windows missing from Delta\n{report}"
        if name != "SIGKILL MQTT broker":
            assert lost == 0, f"{name}: readings lost\n{report}"
        else:  # what Mosquitto held in memory since its last save (every second: labkit.stack.services)
            assert lost <= 2 * len(ROOMS) / INTERVAL_S, f"{name}: more than 2 s of readings lost\n{report}"


def revive(*processes: Running) -> str:
    """Restart a process that exited (say, a stream job whose broker went away); say which."""
    restarted = []
    for process in processes:
        if process.job.poll() is not None:
            restarted.append(f"{process.args[0]} exited ({process.job.poll()}), restarted")
            process.restart()
    return "; ".join(restarted)


def measure(spark, s, scenarios, records) -> str:
    """The report: per scenario, readings and windows against what the simulator published."""
    in_kafka = collections.Counter(json.dumps(r, separators=(",", ":")).encode() for _, _, r in records)
    newest = max(schema.parse_timestamp(r["timestamp"]) for _, _, r in records)
    final_watermark = newest - timedelta(seconds=10)  # the job's watermark delay
    expected = reference.windows(records, metadata.read_rooms(s.metadata_db), final_watermark)
    delta = collections.Counter()
    for row in (
        spark.read.format("delta").load(s.table_path(names.AGGREGATE_TABLE)).select("room_id", "window_start").collect()
    ):
        delta[(row.room_id, row.window_start.replace(tzinfo=timezone.utc))] += 1
    lines = [
        "| scenario | published | in Kafka | lost (seconds of readings) | duplicated in Kafka | windows expected "
        "| in Delta | missing | written twice | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in scenarios:
        published = sc.published
        lost = sum(1 for p in published if in_kafka[p] == 0)
        repeated = sum(in_kafka[p] - 1 for p in set(published) if in_kafka[p] > 1)
        # the windows that hold any of this scenario's readings
        mine = [w for w in expected if w["window_end"] > sc.first and w["window_start"] <= sc.last]
        keys = [(w["room_id"], w["window_start"]) for w in mine]
        missing = sum(1 for k in keys if delta[k] == 0)
        twice = sum(1 for k in keys if delta[k] > 1)
        rate = len(ROOMS) / INTERVAL_S
        lines.append(
            f"| {sc.name} | {len(published)} | {len(published) - lost} | {lost} ({lost / rate:.1f} s) | {repeated} | {len(keys)} | "
            f"{len(keys) - missing} | {missing} | {twice} | {sc.notes} |"
        )
    return "\n".join(lines) + "\n"
