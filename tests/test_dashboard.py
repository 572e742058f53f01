"""`labkit dashboard` in a real browser, fed by real windows in the real Kafka broker.

The windows are the pipeline's windows computed by labkit.reference and written as the Spark
sink writes them (tests/aggregates.py); what the page must show is derived from those rows
here, not from the dashboard's code. They lie two hours ahead in event time, so windows other
tests of the session wrote (at "now" or in January) never are the newest of a room.
"""

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import aggregates
import browser
import pytest
from conftest import ROOT, free_port

from labkit import names, watch

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def topics_ready(stack):
    from labkit import topics

    topics.ensure_topics(topics.lab_topics(names.room_ids(8)) + [names.ALERTS_TOPIC])


@pytest.fixture(scope="module")
def dashboard_url(topics_ready, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit", "dashboard", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        browser.wait_for(lambda: "dashboard on" in log.read_text() or process.poll() is not None, "the URL line")
        assert process.poll() is None, f"labkit dashboard exited: {log.read_text()}"
        assert f"http://127.0.0.1:{port}/" in log.read_text()
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(20)


def glance_rows(driver) -> dict[str, list[str]]:
    """The at-a-glance table as the browser shows it: room id -> its cells."""
    text = browser.text_of(driver, "glance") or ""
    rows = [line.split("\t") for line in text.splitlines()]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows if cells and cells[0].startswith("room_")}


def newest_per_room(rows):
    newest = {}
    for row in rows:
        if row["room_id"] not in newest or row["window_start"] > newest[row["room_id"]]["window_start"]:
            newest[row["room_id"]] = row
    return newest


def shows(driver, newest) -> bool:
    """Whether every room's row shows its newest window's end and temperature."""
    table = glance_rows(driver)
    return all(
        room in table
        and table[room][2] == f"{row['avg_temperature']:.1f}"
        and table[room][7] == row["window_end"].strftime("%H:%M:%S")
        for room, row in newest.items()
    )


def test_dashboard_shows_every_room_updates_live_and_shows_alerts(dashboard_url):
    from labkit import rooms

    room_ids = names.room_ids(8)
    start = aggregates.now_aligned() + timedelta(hours=2)
    first = aggregates.windows(room_ids, start, 40)
    aggregates.produce(first)
    driver = browser.chromium()
    try:
        driver.get(dashboard_url)
        browser.wait_for(
            lambda: shows(driver, newest_per_room(first)),
            "every room's newest window on the page",
            on_failure=lambda: (glance_rows(driver), newest_per_room(first)["room_1"]),
        )
        assert set(glance_rows(driver)) >= set(room_ids)
        for room in room_ids:
            assert rooms.profile(room).room_name in glance_rows(driver)[room][1]

        # New windows arrive: the page changes without a reload.
        later = [
            r for r in aggregates.windows(room_ids, start, 70) if r["window_start"] >= start + timedelta(seconds=35)
        ]
        before = glance_rows(driver)["room_1"]
        aggregates.produce(later)
        browser.wait_for(lambda: shows(driver, newest_per_room(later)), "the next windows on the page", timeout=10)
        assert glance_rows(driver)["room_1"][7] != before[7]

        # An alert on telemetry.alerts and a dead letter on telemetry.dlq show up.
        alert = {"room_id": "room_4", "kind": "co2_high", "message": "dashboard test alert 4711"}
        dead = (names.DLQ_TOPIC, None, b"{broken", [("reason", b"bad_json"), ("mqtt_topic", b"telemetry/room_9")])
        aggregates.produce([], extra=[(names.ALERTS_TOPIC, "room_4", json.dumps(alert).encode(), None), dead])
        browser.wait_for(
            lambda: "dashboard test alert 4711" in (browser.text_of(driver, "alerts") or ""),
            "the alert on the page",
            timeout=10,
        )
        browser.wait_for(
            lambda: "bad_json" in (browser.text_of(driver, "dead-letters") or ""),
            "the dead letter on the page",
            timeout=10,
        )
        browser.wait_for(
            lambda: "alert" in glance_rows(driver)["room_4"][8], "room_4's row in the alert state", timeout=10
        )
        time.sleep(1)  # let the plots finish drawing for the picture
        browser.screenshot(driver, "dashboard")
        assert browser.console_errors(driver) == []
    finally:
        driver.quit()


def test_waiting_message_before_any_window():
    from labkit import dashboard

    building = dashboard.Building(["room_1", "room_2"])
    assert "Waiting for the first window" in dashboard.status_html(building)
    assert glance_states(dashboard.glance_html(building)) == ["waiting", "waiting"]


def test_a_room_alerts_while_its_episode_is_open_and_not_after_it_is_cleared():
    from datetime import datetime

    from labkit import dashboard

    building = dashboard.Building(["room_1", "room_2"])
    for room in ("room_1", "room_2"):
        building.add_window(
            {"room_id": room, "window_start": datetime(2026, 1, 1), "avg_temperature": 21.0, "avg_co2": 600.0}
        )
    assert glance_states(dashboard.glance_html(building)) == ["ok", "ok"]

    def alert(room, state, kind="co2_high"):
        message = {"room_id": room, "alert": kind, "state": state, "value": 1320.0, "limit": 1000.0}
        return message | {"at": datetime.now().astimezone()}

    building.add_alert(alert("room_1", "raised"))
    assert glance_states(dashboard.glance_html(building)) == ["alert", "ok"]
    assert "alert: co2_high" in dashboard.glance_html(building)
    assert "co2_high raised" in dashboard.alerts_html(building)
    building.add_alert(alert("room_1", "raised", kind="spike"))
    building.add_alert(alert("room_1", "cleared"))
    assert glance_states(dashboard.glance_html(building)) == ["alert", "ok"], "the spike is still open"
    building.add_alert(alert("room_1", "cleared", kind="spike"))
    assert glance_states(dashboard.glance_html(building)) == ["ok", "ok"], "every episode of room_1 cleared"
    building.add_alert({"room_id": "room_2", "message": "from another producer", "at": datetime.now().astimezone()})
    assert glance_states(dashboard.glance_html(building)) == ["ok", "alert"], "a message without a state counts"


def glance_states(html: str) -> list[str]:
    import re

    return re.findall(r'class="room-(\w+)"', html)


def test_feed_rides_out_a_broker_restart(topics_ready, settings):
    """Kafka stops and comes back: the page says so meanwhile, and windows written after it arrive."""
    from labkit import dashboard, stack

    building = dashboard.Building(names.room_ids(8))
    feed = dashboard.Feed(building, settings)
    feed.start()
    try:
        start = aggregates.now_aligned() + timedelta(hours=3)
        first = aggregates.windows(["room_1"], start, 20)
        aggregates.produce(first)
        browser.wait_for(lambda: first[-1]["window_start"] in building.windows["room_1"], "the first windows")
        stack.down(settings, only=["kafka"])
        browser.wait_for(lambda: building.kafka_problem, "the page to say Kafka is unreachable", timeout=60)
        assert "unreachable" in dashboard.status_html(building) or "does not answer" in dashboard.status_html(building)
        stack.up(settings, only=["kafka"])
        later = [r for r in aggregates.windows(["room_1"], start, 40) if r["window_start"] > first[-1]["window_start"]]
        aggregates.produce(later)
        browser.wait_for(
            lambda: later[-1]["window_start"] in building.windows["room_1"],
            "the windows written after the restart",
            timeout=60,
        )
        browser.wait_for(lambda: building.kafka_problem is None, "the Kafka problem to clear", timeout=30)
    finally:
        feed.stop()
        feed.join(10)
        stack.up(settings)  # whatever happened above, leave the session's stack running


def test_feed_reads_a_backlog_at_kafkas_pace_while_it_follows_the_jobs_progress(topics_ready, settings):
    """A page opened while the stream job runs reads what is waiting in a second or two.

    Found in CI: with the job's checkpoint naming 8 room topics, each progress refresh (every
    2 s) asked the consumer that fetches the windows for 8 end offsets, ~4 s behind its
    fetches, and the feed read one message per refresh: lesson 01's dead letters took 54 s
    to appear. Here, a checkpoint like the job's and 8 rooms' windows waiting in Kafka.
    """
    from labkit import dashboard

    query = f"dashboard_backlog_{int(time.time())}"
    offsets = Path(settings.checkpoint_path(query)) / "offsets"  # the tests' lake is a local folder
    offsets.mkdir(parents=True)
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": int(time.time() * 1000)}
    sources = {names.raw_topic(room): {"0": 0} for room in names.room_ids(8)}
    (offsets / "0").write_text(f"v1\n{json.dumps(meta)}\n{json.dumps(sources)}\n")
    rows = aggregates.windows(names.room_ids(8), aggregates.now_aligned() + timedelta(hours=5), 60)
    aggregates.produce(rows)

    building = dashboard.Building(names.room_ids(8))
    feed = dashboard.Feed(building, settings, query_name=query)
    feed.start()
    try:
        browser.wait_for(lambda: building.progress and building.lag is not None, "the job's progress and lag")
        browser.wait_for(
            lambda: all(row["window_start"] in building.windows[row["room_id"]] for row in rows),
            f"all {len(rows)} windows (a backlog of seconds, not minutes)",
            timeout=30,
            on_failure=lambda: f"{sum(len(w) for w in building.windows.values())} windows read",
        )
    finally:
        feed.stop()
        feed.join(10)


@pytest.mark.spark
def test_progress_read_from_the_checkpoint_matches_sparks_own_report(spark, settings, tmp_path):
    """The stream job's progress as the dashboard reads it (another process's view: the checkpoint)
    equals what Spark itself reports in ``lastProgress`` for the same batch."""
    from confluent_kafka import Producer

    from labkit import metadata, pipeline, progress_log, rooms, schema, topics

    metadata.init_metadata()  # the job joins the rooms table (idempotent)
    topics.ensure_topics(topics.lab_topics(["room_1"]))
    before = topics.end_offsets(topics.raw_topics(["room_1"]))
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    start = aggregates.now_aligned() + timedelta(hours=4)
    for k in range(120):
        reading = rooms.reading("room_1", start + timedelta(seconds=k / 2))
        producer.produce(names.raw_topic("room_1"), key="room_1", value=schema.to_json(reading))
    assert producer.flush(30) == 0

    name = f"dashboard_progress_{int(time.time())}"
    rows = pipeline.build(spark, settings, ["room_1"], starting_offsets=json.dumps(before), max_offsets_per_trigger=40)
    query = pipeline.start(
        rows, settings, query_name=name, table_path=str(tmp_path / "table"), trigger="", to_kafka=False
    )
    try:
        watch.run_until_caught_up(query, ["room_1"], timeout=300, s=settings)
    finally:
        query.stop()
    progress = progress_log.read(settings.checkpoint_path(name))
    assert isinstance(progress, progress_log.BatchProgress), progress
    reports = {p["batchId"]: p for p in query.recentProgress}
    last = reports[progress.batch_id]
    assert progress.end_offsets == json.loads(last["sources"][0]["endOffset"])
    assert progress.duration_s is not None and progress.duration_s >= 0
    watermark = last.get("eventTime", {}).get("watermark")
    assert (progress.watermark and schema.format_timestamp(progress.watermark)) == watermark
    # The rate's numerator: the records between two batches' end offsets, as Spark counted them.
    with_rows = [p for p in query.recentProgress if p["numInputRows"] > 0]
    assert sum(p["numInputRows"] for p in with_rows) == 120
