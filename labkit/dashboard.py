"""The live building in a browser: a Bokeh server app fed by the pipeline's output topics.

    labkit dashboard                      # prints http://127.0.0.1:5006/ ; Ctrl-C stops
    from labkit import dashboard; dashboard.view()    # the same page inside a notebook cell

What it shows, all from the *downstream* side of the pipeline (labkit.downstream):

* per room, the last minutes of windows: temperature, humidity, CO2, occupancy and energy;
* the building at a glance: one row per room, coloured by its state;
* the latest alerts (``telemetry.alerts``, once an alerts job writes it) and dead letters;
* the stream job's input rate, batch duration, watermark and lag, from its checkpoint
  (labkit.progress_log explains why there).

How it stays live: one background thread (:class:`Feed`) polls Kafka every 0.1 s into a
shared :class:`Building`; each open browser tab checks it every 0.25 s and pushes only what
changed over Bokeh's websocket. A window is on the page well within a second of reaching
Kafka. When the broker goes away, librdkafka reconnects by itself; the page says so meanwhile.

Why Bokeh and not Panel: Panel is built on Bokeh and renders the same plots; measured here
(bench/dashboard.py), Panel adds ~120 MB to the install and ~10 MB of memory at import, for
widgets this page does not need. A Bokeh server app is also plain Python a learner can read.
"""

from __future__ import annotations

import collections
import html
import threading
import time
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from labkit import downstream, names, progress_log, rooms
from labkit import settings as settings_module
from labkit.errors import LabkitError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5006
HISTORY_S = 10 * 60  # windows written in the last ten minutes are plotted
WINDOWS_PER_ROOM = 240  # at most this many per room in memory (20 minutes of 5 s slides)
LATEST = 12  # alerts and dead letters listed
RECENT_ALERT_S = 300  # an alert message without a raised/cleared state colours its room this long
STALE_AFTER_S = 30  # a room with no new window for this long is "stale"
REFRESH_MS = 250  # how often each browser tab looks for news
PROGRESS_EVERY_S = 2.0
QUERY_NAME = names.AGGREGATE_QUERY  # the checkpoint of `labkit stream`'s default query

METRICS = (  # (aggregate column, title): the five plots
    ("avg_temperature", "Temperature (°C)"),
    ("avg_humidity", "Humidity (%)"),
    ("avg_co2", "CO2 (ppm)"),
    ("max_occupancy", "Occupancy (people)"),
    ("avg_energy", "Energy (kWh/h)"),
)
STATE_COLOURS = {"ok": "#c8e6c9", "attention": "#ffe0b2", "alert": "#ffcdd2", "stale": "#e0e0e0", "waiting": "#f5f5f5"}


# ---------------------------------------------------------------- what the page shows


def room_state(
    latest: dict[str, Any] | None, received: float | None, open_alerts: list[str], now: float
) -> tuple[str, str]:
    """(state, why) of a room from its newest window and its open alerts: the colour of its row."""
    if latest is None:
        return "waiting", "no window yet"
    if now - (received or now) > STALE_AFTER_S:
        return "stale", f"no new window for {now - received:.0f} s"
    if open_alerts:
        return "alert", ", ".join(open_alerts)
    reasons = []
    if (latest.get("avg_co2") or 0) > 1000:
        reasons.append("CO2 above 1000 ppm")
    if not 16 <= (latest.get("avg_temperature") or 20) <= 27:
        reasons.append("temperature outside 16-27 °C")
    if (latest.get("avg_humidity") or 50) > 70:
        reasons.append("humidity above 70 %")
    return ("attention", ", ".join(reasons)) if reasons else ("ok", "")


class Building:
    """What the Kafka thread has read, shared with the browser sessions (guarded by ``lock``)."""

    def __init__(self, room_ids: list[str]):
        self.lock = threading.Lock()
        self.room_ids = list(room_ids)
        self.windows: dict[str, collections.OrderedDict] = {r: collections.OrderedDict() for r in room_ids}
        self.received: dict[str, float] = {}  # room -> wall time of its newest window
        self.alerts: collections.deque = collections.deque(maxlen=LATEST)
        self.dead_letters: collections.deque = collections.deque(maxlen=LATEST)
        self.unreadable: collections.deque = collections.deque(maxlen=LATEST)
        self.progress: progress_log.BatchProgress | str = "not read yet"
        self.lag: int | None = None
        self.kafka_problem: str | None = None
        self.has_alerts_topic = False
        self.open_episodes: dict[tuple, dict] = {}  # (room, alert kind) -> its newest message, until cleared
        self.version = 0  # bumped on every change: sessions redraw only when it moved

    def add_window(self, row: dict[str, Any]) -> None:
        room = row["room_id"]
        with self.lock:
            if room not in self.windows:
                self.room_ids.append(room)
                self.windows[room] = collections.OrderedDict()
            kept = self.windows[room]
            kept[row["window_start"]] = row  # at least once: a repeat replaces its first copy
            if len(kept) > WINDOWS_PER_ROOM:
                kept.popitem(last=False)
            self.received[room] = time.time()
            self.version += 1

    def add_alert(self, alert: dict[str, Any]) -> None:
        """An alert message: listed, and its room shows as alerting while the episode is open.

        The alert job (``labkit.alerts``) sends one message when an episode opens (``state``
        "raised") and one when it ends ("cleared"). A message without a state, from another
        producer, keeps its room alerting for RECENT_ALERT_S.
        """
        with self.lock:
            self.alerts.appendleft(alert)
            episode = (alert.get("room_id"), alert.get("alert") or alert.get("kind"))
            if alert.get("state") == "cleared":
                self.open_episodes.pop(episode, None)
            else:
                self.open_episodes[episode] = alert
            self.version += 1

    def open_alerts(self) -> dict[str, list[str]]:
        """Room -> the kinds of its open alerts (raised and not cleared, or recent without a state)."""
        now = datetime.now().astimezone()
        found: dict[str, list[str]] = collections.defaultdict(list)
        with self.lock:
            for (room, kind), alert in self.open_episodes.items():
                if alert.get("state") == "raised" or (now - alert["at"]).total_seconds() < RECENT_ALERT_S:
                    found[room].append(str(kind or "alert"))
        return found

    def add(self, collection: collections.deque, item: Any) -> None:
        with self.lock:
            collection.appendleft(item)
            self.version += 1

    def series(self, room: str) -> dict[str, list]:
        """A room's windows in time order, as columns for a plot."""
        with self.lock:
            rows = sorted(self.windows[room].values(), key=lambda r: r["window_start"])
        columns: dict[str, list] = {"time": [r["window_end"] for r in rows]}
        for column, _ in METRICS:
            columns[column] = [r[column] for r in rows]
        return columns

    def glance(self) -> list[dict[str, Any]]:
        """One row per room: name, newest values, state and why."""
        now = time.time()
        open_alerts = self.open_alerts()
        out = []
        with self.lock:
            for room in self.room_ids:
                kept = self.windows[room]
                latest = kept[max(kept)] if kept else None
                state, why = room_state(latest, self.received.get(room), open_alerts.get(room, []), now)
                try:
                    name = rooms.profile(room).room_name
                except LabkitError:  # a room id outside the building's naming: show it as it is
                    name = room
                out.append(
                    {
                        "room_id": room,
                        "name": (latest or {}).get("room_name") or name,
                        "latest": latest,
                        "state": state,
                        "why": why,
                    }
                )
        return out


class Feed(threading.Thread):
    """Reads the output topics into a :class:`Building` until :meth:`stop` (a daemon thread)."""

    def __init__(self, building: Building, s: settings_module.Settings | None = None, query_name: str = QUERY_NAME):
        super().__init__(name="labkit-dashboard-feed", daemon=True)
        self.building, self.s, self.query_name = building, s or settings_module.get(), query_name
        self._stop_event = threading.Event()
        self.assigned: set[str] = set()

    def stop(self) -> None:
        self._stop_event.set()

    def _on_error(self, error: KafkaError) -> None:
        # librdkafka retries by itself; this only tells the page what is going on meanwhile.
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self.building.kafka_problem = f"Kafka at {self.s.kafka_bootstrap} is unreachable: retrying..."

    def _assign_new_topics(self, c) -> None:
        found = downstream.wanted_topics(c)
        new = []
        since_ms = int((time.time() - HISTORY_S) * 1000)
        for topic, partitions in found.items():
            if topic in self.assigned:
                continue
            if downstream.DOWNSAMPLED_RE.match(topic):
                new += downstream.start_positions(c, topic, partitions, since_ms=since_ms, last_n=None)
            else:
                new += downstream.start_positions(c, topic, partitions, since_ms=None, last_n=LATEST)
            self.assigned.add(topic)
        if new:
            c.incremental_assign(new)
        self.building.has_alerts_topic = names.ALERTS_TOPIC in found

    def _handle(self, m) -> None:
        topic = m.topic()
        try:
            if topic == names.ALERTS_TOPIC:
                self.building.add_alert(downstream.parse_alert(m.key(), m.value(), m.timestamp()[1]))
            elif topic == names.DLQ_TOPIC:
                dead = downstream.parse_dead_letter(m.headers(), m.value(), m.timestamp()[1])
                self.building.add(self.building.dead_letters, dead)
            else:
                self.building.add_window(downstream.parse_window(m.value()))
        except downstream.UnreadableMessage as error:
            self.building.add(self.building.unreadable, f"{topic} offset {m.offset()}: {error}")

    def _read_progress(self, c) -> None:
        progress = progress_log.read(self.s.checkpoint_path(self.query_name))
        lag = None
        if isinstance(progress, progress_log.BatchProgress):
            lag = downstream.end_offsets_now(c, progress.end_offsets)
        with self.building.lock:
            self.building.progress, self.building.lag = progress, lag
            self.building.version += 1

    def run(self) -> None:
        c = downstream.consumer(self.s, error_cb=self._on_error)
        # The job's lag is asked of a second consumer that fetches nothing: asked of `c`, each
        # partition's end offset waited behind c's fetches (~0.5 s each, 4 s for 8 rooms), and
        # a page opened on a busy topic read one message per progress refresh.
        peek = downstream.consumer(self.s)
        next_scan = next_progress = 0.0
        try:
            while not self._stop_event.is_set():
                now = time.monotonic()
                try:
                    if now >= next_scan:
                        next_scan = now + 5
                        self._assign_new_topics(c)
                        self.building.kafka_problem = None
                    if now >= next_progress:
                        next_progress = now + PROGRESS_EVERY_S
                        self._read_progress(peek)
                except KafkaException as error:
                    self.building.kafka_problem = (
                        f"Kafka at {self.s.kafka_bootstrap} does not answer ({error.args[0].str()}): retrying..."
                    )
                    continue
                except OSError as error:  # a checkpoint file half-written or removed under us
                    self.building.progress = f"checkpoint not readable right now: {error}"
                # Everything that has arrived, up to a few hundred messages, before looking at
                # the clock again: a backlog (ten minutes of windows) is read in a second or two.
                for m in c.consume(num_messages=500, timeout=0.1):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            self.building.kafka_problem = f"Kafka: {m.error().str()}"
                        continue
                    self.building.kafka_problem = None
                    self._handle(m)
        finally:
            c.close()
            peek.close()


# ---------------------------------------------------------------- the Bokeh document


def _clock(timestamp: Any) -> Any:
    """``2026-11-30T00:06:18.000Z`` -> ``00:06:18``: the time of day is what a reader compares."""
    return timestamp[11:19] if isinstance(timestamp, str) and len(timestamp) >= 19 else timestamp


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def glance_html(building: Building) -> str:
    headings = ("room", "name", "°C", "%", "CO2", "people", "kWh/h", "window end", "state")
    head = "".join(f"<th>{h}</th>" for h in headings)
    body = []
    for r in building.glance():
        latest = r["latest"] or {}
        end = latest.get("window_end")
        cells = [
            r["room_id"],
            r["name"],
            _fmt(latest.get("avg_temperature")),
            _fmt(latest.get("avg_humidity")),
            _fmt(latest.get("avg_co2"), 0),
            _fmt(latest.get("max_occupancy")),
            _fmt(latest.get("avg_energy"), 2),
            end.strftime("%H:%M:%S") if end else "-",
            r["state"] + (f": {r['why']}" if r["why"] else ""),
        ]
        row = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        body.append(
            f'<tr class="room-{r["state"]}" data-room="{r["room_id"]}" '
            f'style="background:{STATE_COLOURS[r["state"]]}">{row}</tr>'
        )
    return (
        f'<h3>The building at a glance</h3><table id="glance" style="border-collapse:collapse" cellpadding="4">'
        f"<tr>{head}</tr>{''.join(body)}</table>"
    )


def pipeline_html(building: Building) -> str:
    p, lag = building.progress, building.lag
    if isinstance(p, str):
        return f'<h3>Stream job</h3><p id="pipeline">{html.escape(p)}</p>'
    rate = f"{p.input_rate:.1f} records/s" if p.input_rate is not None else "-"
    duration = f"{p.duration_s:.2f} s" if p.duration_s is not None else "first batch running..."
    watermark = p.watermark.strftime("%Y-%m-%d %H:%M:%S UTC") if p.watermark else "none yet"
    rows = [
        ("batch", p.batch_id),
        ("started", p.started.strftime("%H:%M:%S UTC")),
        ("input rate", rate),
        ("batch duration", duration),
        ("watermark", watermark),
        ("lag", f"{lag} records" if lag is not None else "-"),
    ]
    cells = "".join(f"<tr><th align=left>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<h3>Stream job</h3><table id="pipeline">{cells}</table>'


def alerts_html(building: Building) -> str:
    if not building.has_alerts_topic and not building.alerts:
        return '<h3>Alerts</h3><p id="alerts">no alerts topic yet (telemetry.alerts): no alerts job has run</p>'
    if not building.alerts:
        return '<h3>Alerts</h3><p id="alerts">no alert in the last messages</p>'
    items = []
    for a in list(building.alerts):
        shown = ("room_id", "at", "alert", "state")
        what = " ".join(html.escape(str(a[k])) for k in ("alert", "state") if a.get(k))
        details = ", ".join(
            f"{k}={_fmt(_clock(v) if k == 'event_time' else v, 2)}"
            for k, v in a.items()
            if k not in shown and v not in (None, "")
        )
        items.append(f"<li>{a['at'].strftime('%H:%M:%S')} <b>{_fmt(a.get('room_id'))}</b> {what} {details}</li>")
    return f'<h3>Alerts</h3><ul id="alerts">{"".join(items)}</ul>'


def dead_letters_html(building: Building) -> str:
    items = [
        f"<li>{d.at.strftime('%H:%M:%S')} <b>{html.escape(d.reason)}</b> {html.escape(d.source)} "
        f"<code>{html.escape(d.payload[:60])}</code></li>"
        for d in list(building.dead_letters)
    ]
    items += [f"<li><b>unreadable</b> {html.escape(u)}</li>" for u in list(building.unreadable)]
    body = "".join(items) or "<li>none</li>"
    return f'<h3>Dead letters</h3><ul id="dead-letters">{body}</ul>'


def status_html(building: Building) -> str:
    if building.kafka_problem:
        return f'<p id="status" style="color:#b71c1c">{html.escape(building.kafka_problem)}</p>'
    if not any(building.received.values()):
        return (
            '<p id="status">Waiting for the first window... Windows appear about 20 s after the first '
            "readings (10 s windows + 10 s watermark). Is `labkit stream` running, and the simulator?</p>"
        )
    newest = max(building.received.values())
    return f'<p id="status">live: newest window received {time.time() - newest:.0f} s ago</p>'


def make_document(building: Building):
    """A function Bokeh calls once per browser tab to build its page."""
    from bokeh.layouts import column, gridplot, row
    from bokeh.models import ColumnDataSource, Div
    from bokeh.palettes import Category10
    from bokeh.plotting import figure

    def build(doc) -> None:
        colours = Category10[10]
        sources: dict[str, ColumnDataSource] = {}
        plots = []
        for metric, title in METRICS:
            p = figure(
                title=title,
                x_axis_type="datetime",
                height=220,
                sizing_mode="stretch_width",
                tools="pan,wheel_zoom,reset",
                toolbar_location=None,
            )
            plots.append(p)
        for k, room in enumerate(building.room_ids):
            sources[room] = ColumnDataSource(building.series(room))
            for i, (metric, _) in enumerate(METRICS):
                legend = {"legend_label": room} if i == 0 else {}  # one legend is enough for five plots
                plots[i].line("time", metric, source=sources[room], color=colours[k % 10], line_width=2, **legend)
        plots[0].add_layout(plots[0].legend[0], "right")  # beside the plot, not over the lines
        plots[0].legend.label_text_font_size = "8pt"
        title = Div(text="<h2>Smart building: live</h2>")
        status, glance, pipeline = Div(text=status_html(building)), Div(text=glance_html(building)), Div(text="")
        # Side by side, each in half the page: long alert details and payloads wrap instead of scrolling.
        alerts, dead = Div(text=alerts_html(building), width=660), Div(text=dead_letters_html(building), width=660)
        seen = {"version": -1, "sizes": {}}

        def refresh() -> None:
            status.text = status_html(building)
            if building.version == seen["version"]:
                return
            seen["version"] = building.version
            for room, source in sources.items():
                size = len(building.windows[room])
                newest = max(building.windows[room]) if size else None
                if seen["sizes"].get(room) != (size, newest):
                    seen["sizes"][room] = (size, newest)
                    source.data = building.series(room)
            glance.text, pipeline.text = glance_html(building), pipeline_html(building)
            alerts.text, dead.text = alerts_html(building), dead_letters_html(building)

        refresh()
        doc.add_periodic_callback(refresh, REFRESH_MS)
        doc.title = "labkit: the live building"
        doc.add_root(
            column(
                title,
                status,
                row(glance, pipeline),
                gridplot(plots, ncols=3, sizing_mode="stretch_width"),
                row(alerts, dead),
                sizing_mode="stretch_width",
            )
        )

    return build


# ---------------------------------------------------------------- serving it


class Dashboard:
    """A running dashboard: the Kafka feed and the Bokeh server (on its own thread's event loop)."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        n_rooms: int = 8,
        allow_origins: list[str] | None = None,
        s: settings_module.Settings | None = None,
        query_name: str = QUERY_NAME,
    ):
        self.host, self.port = host, port
        self.building = Building(names.room_ids(n_rooms))
        self.feed = Feed(self.building, s, query_name)
        self.allow_origins = allow_origins or [f"{h}:{port}" for h in ("127.0.0.1", "localhost", host)]
        self.server = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{shown}:{self.port}/"

    def _make_server(self):
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import Server

        return Server(
            {"/": Application(FunctionHandler(make_document(self.building)))},
            address=self.host,
            port=self.port,
            allow_websocket_origin=self.allow_origins,
            num_procs=1,
        )

    def serve_forever(self) -> None:
        """Run in this thread until Ctrl-C or SIGTERM (the ``labkit dashboard`` command)."""
        import signal

        self.feed.start()
        self.server = self._make_server()
        self.server.start()
        signal.signal(signal.SIGTERM, lambda *_: self.server.io_loop.add_callback_from_signal(self.server.io_loop.stop))
        print(f"dashboard on {self.url} (Kafka {self.feed.s.kafka_bootstrap}); Ctrl-C stops", flush=True)
        try:
            self.server.io_loop.start()
        finally:
            self.feed.stop()

    def start_in_background(self) -> Dashboard:
        """Serve from a daemon thread (a notebook's kernel keeps its own event loop for itself)."""
        import asyncio

        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            self.server = self._make_server()
            self.server.start()
            ready.set()
            self.server.io_loop.start()

        self.feed.start()
        threading.Thread(target=run, name="labkit-dashboard-server", daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError(f"the dashboard did not start on {self.url}")
        return self

    def stop(self) -> None:
        self.feed.stop()
        if self.server is not None:
            self.server.io_loop.add_callback(self.server.io_loop.stop)


_running: Dashboard | None = None


def free_port() -> int:
    """A port nobody listens on now (the OS picks it), so two kernels never fight over one."""
    import socket

    with socket.socket() as probe:
        probe.bind((DEFAULT_HOST, 0))
        return probe.getsockname()[1]


def view(port: int | None = None, height: int = 900):
    """The dashboard in a notebook cell: starts it in the kernel once, returns an inline frame of it.

    The page is the same as ``labkit dashboard``'s and lives as long as the kernel. ``port``
    None picks a free one. To see it beside the notebook, open the printed URL in a browser
    window next to JupyterLab's, or use "Create New View for Cell Output" on the cell.
    """
    from IPython.display import IFrame

    global _running
    if _running is None:
        _running = Dashboard(port=port or free_port()).start_in_background()
        print(f"dashboard on {_running.url}")
    return IFrame(_running.url, width="100%", height=height)


def running() -> Dashboard | None:
    """The dashboard :func:`view` started in this process, if any (to look at what it has read)."""
    return _running
