"""Pictures for the notebooks: readings over time, windows on a timeline, the pipeline, a micro-batch.

Plain matplotlib, one function per picture, each returning its ``Figure`` so a notebook shows
it (the last expression of a cell) and a learner can restyle it. Inputs are pandas DataFrames:
Spark results are small here, and ``toPandas()`` on them is the usual way to plot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence


def _label(field: str) -> str:
    """An axis label with the unit of a raw field (from the one schema), e.g. ``co2_ppm (ppm)``."""
    from labkit.schema import RAW_FIELDS

    units = {f.name: f.unit for f in RAW_FIELDS}
    unit = units.get(field, "")
    return f"{field} ({unit})" if unit else field


def plot_readings(
    readings,
    metrics: Sequence[str] = ("temperature", "co2_ppm"),
    time_column: str = "timestamp",
    room_column: str = "room_id",
    title: str | None = None,
):
    """One panel per metric, one line per room, over event time.

    ``readings`` is a pandas DataFrame of raw records; ``time_column`` may hold datetimes or
    the records' ISO-8601 strings.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = readings.copy()
    frame[time_column] = pd.to_datetime(frame[time_column], utc=True)
    frame = frame.sort_values(time_column)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(11, 3.2 * len(metrics)), sharex=True, squeeze=False)
    rooms = sorted(frame[room_column].unique(), key=lambda r: (len(r), r))
    for ax, metric in zip(axes[:, 0], metrics):
        for room in rooms:
            one = frame[frame[room_column] == room]
            ax.plot(one[time_column], one[metric], label=room, linewidth=1)
        ax.set_ylabel(_label(metric))
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="room")
    axes[-1, 0].set_xlabel("event time (UTC)")
    fig.suptitle(title or "raw readings per room")
    fig.tight_layout()
    return fig


def window_starts(first: datetime, last: datetime, window_s: float, slide_s: float) -> list[datetime]:
    """Start of every window (of ``window_s``, starting each ``slide_s``) that overlaps [first, last].

    Spark aligns windows to the epoch: a 10 s window starts at :00, :10, :20...; sliding by 5 s
    adds :05, :15... This is the same rule, written out for the picture.
    """
    import math

    # the first window that overlaps ``first`` starts just after first - window_s
    start = math.floor((first.timestamp() - window_s) / slide_s) * slide_s + slide_s
    result = []
    while start <= last.timestamp():
        result.append(datetime.fromtimestamp(start, first.tzinfo))
        start += slide_s
    return result


def plot_windows(
    first: datetime,
    last: datetime,
    window_s: float,
    slide_s: float | None = None,
    events: Sequence[datetime] = (),
    late_events: Sequence[datetime] = (),
    watermark: datetime | None = None,
    ax=None,
    title: str | None = None,
):
    """Windows as bars on a timeline, with readings as dots under them.

    * ``slide_s`` None (or equal to ``window_s``): tumbling windows, each reading in one window;
      smaller: sliding windows, each reading in ``window_s / slide_s`` of them.
    * ``late_events`` are drawn as red crosses; ``watermark`` as a dashed vertical line.

    Returns the Figure (a new one unless ``ax`` is given).
    """
    import matplotlib.pyplot as plt

    slide_s = slide_s or window_s
    if ax is None:
        fig, ax = plt.subplots(figsize=(11, 2.8))
    else:
        fig = ax.figure
    starts = window_starts(first, last, window_s, slide_s)
    lanes = max(1, round(window_s / slide_s))
    for i, start in enumerate(starts):
        lane = i % lanes
        ax.barh(
            lane + 1,
            timedelta(seconds=window_s),
            left=start,
            height=0.6,
            color=f"C{i % 10}",
            alpha=0.35,
            edgecolor=f"C{i % 10}",
        )
        ax.text(
            start + timedelta(seconds=window_s / 2),
            lane + 1,
            start.strftime("%H:%M:%S"),
            ha="center",
            va="center",
            fontsize=7,
        )
    if events:
        ax.plot(list(events), [0] * len(events), "o", color="black", markersize=3, label="reading")
    if late_events:
        ax.plot(list(late_events), [0] * len(late_events), "x", color="red", markersize=8, label="late reading")
    if watermark is not None:
        ax.axvline(watermark, color="red", linestyle="--", linewidth=1, label="watermark")
    kind = "tumbling" if slide_s == window_s else "sliding"
    ax.set_yticks(
        [0] + [lane + 1 for lane in range(lanes)], ["readings"] + [f"windows {lane + 1}" for lane in range(lanes)]
    )
    ax.set_ylim(-0.7, lanes + 0.7)
    ax.set_title(
        title or f"{kind} windows: {window_s:g} s" + (f", sliding every {slide_s:g} s" if kind == "sliding" else "")
    )
    ax.set_xlabel("event time (UTC)")
    if events or late_events or watermark is not None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


#: The boxes of the lab's data path, left to right: (key, label, x, y). ``plot_pipeline`` draws them.
PIPELINE_STAGES = (
    ("sensors", "sensors\n8 rooms, 2 Hz", 0.0, 1.0),
    ("mqtt", "MQTT broker\ntelemetry/<room>", 1.0, 1.0),
    ("bridge", "bridge\nvalidate, route", 2.0, 1.0),
    ("kafka", "Kafka\ntelemetry.<room>", 3.0, 1.0),
    ("spark", "Spark Structured\nStreaming", 4.0, 1.0),
    ("delta", "Delta table\ntelemetry_5s_agg", 5.0, 1.6),
    ("downsampled", "Kafka\n<room>.downsampled", 5.0, 0.4),
    ("dlq", "Kafka\ntelemetry.dlq", 2.0, 0.0),
    ("rooms", "SQLite\nrooms", 4.0, 0.0),
    ("checkpoint", "checkpoint\noffsets, state, commits", 4.0, 2.0),
)

#: Arrows between stages: (from, to, what travels).
PIPELINE_FLOWS = (
    ("sensors", "mqtt", "QoS 1"),
    ("mqtt", "bridge", ""),
    ("bridge", "kafka", "valid"),
    ("bridge", "dlq", "rejected"),
    ("kafka", "spark", "offsets"),
    ("rooms", "spark", "join"),
    ("spark", "checkpoint", ""),
    ("spark", "delta", "exactly once"),
    ("spark", "downsampled", "at least once"),
)


def plot_pipeline(highlight: Sequence[str], note: str | None = None, title: str | None = None):
    """The lab's data path, sensors to Delta and Kafka, with the parts a lesson is about highlighted.

    Every lesson opens with it, so a learner always sees where the lesson sits in the whole.
    ``highlight`` holds keys of ``PIPELINE_STAGES`` (``"kafka"``, ``"spark"``...); an arrow is
    highlighted when both its ends are. ``note`` is written under the picture. An unknown key
    is a mistake worth a clear error (a typo would otherwise draw nothing highlighted).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    known = {key for key, *_ in PIPELINE_STAGES}
    unknown = sorted(set(highlight) - known)
    if unknown:
        raise ValueError(f"unknown pipeline stage(s) {unknown}; the stages are {sorted(known)}")
    on, off = "#d95f02", "#bbbbbb"
    fig, ax = plt.subplots(figsize=(12, 3.6))
    width, height = 0.8, 0.5
    where = {}
    for key, label, x, y in PIPELINE_STAGES:
        lit = key in highlight
        ax.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2),
                width,
                height,
                boxstyle="round,pad=0.02",
                facecolor="#fde0c5" if lit else "#f4f4f4",
                edgecolor=on if lit else off,
                linewidth=2.5 if lit else 1,
                gid=f"stage:{key}:{'on' if lit else 'off'}",
            )
        )
        ax.text(x, y, label, ha="center", va="center", fontsize=8, color="black" if lit else "#777777")
        where[key] = (x, y)
    for start, end, what in PIPELINE_FLOWS:
        (x0, y0), (x1, y1) = where[start], where[end]
        lit = start in highlight and end in highlight
        dx, dy = x1 - x0, y1 - y0
        # leave the arrow at the edge of each box: horizontally by half a width, vertically by half a height
        shrink = min(width / 2 / abs(dx) if dx else 1, height / 2 / abs(dy) if dy else 1)
        tail = (x0 + dx * shrink, y0 + dy * shrink)
        head = (x1 - dx * shrink, y1 - dy * shrink)
        ax.annotate(
            "",
            xy=head,
            xytext=tail,
            arrowprops={"arrowstyle": "->", "color": on if lit else off, "linewidth": 2 if lit else 1},
        )
        if what:
            ax.text(
                (tail[0] + head[0]) / 2,
                (tail[1] + head[1]) / 2 + 0.08,
                what,
                ha="center",
                fontsize=7,
                color=on if lit else "#999999",
            )
    ax.set_xlim(-0.6, 5.6)
    ax.set_ylim(-0.45, 2.45)
    ax.axis("off")
    ax.set_title(title or "where this lesson sits in the pipeline", fontsize=10)
    if note:
        fig.text(0.5, 0.02, note, ha="center", fontsize=9, color=on)
    fig.tight_layout()
    return fig


#: The steps of one micro-batch, in order: (actor, what it does). ``plot_micro_batch`` draws them.
MICRO_BATCH_STEPS = (
    ("checkpoint", "1. write offsets/N: the Kafka offsets batch N will read, and its watermark (the WAL)"),
    ("Kafka", "2. read the records between offsets/N-1 and offsets/N"),
    ("state store", "3. load the state of batch N-1, add the rows, save the state of batch N"),
    ("sink", "4. foreachBatch: Delta append with txnAppId + txnVersion N, then the Kafka messages"),
    ("checkpoint", "5. write commits/N: batch N is done"),
)


def plot_micro_batch(steps: Sequence[tuple[str, str]] = MICRO_BATCH_STEPS, crash_after: int | None = None):
    """One micro-batch as a sequence diagram: the driver and what it talks to, step by step.

    The order is the point: the plan (``offsets/N``) is on disk before any work, the receipt
    (``commits/N``) after the sink. ``crash_after`` (a step number) draws a crash there and says
    what a restart does, which is how lesson 04 explains replays.
    """
    import matplotlib.pyplot as plt

    actors = ["driver"] + list(dict.fromkeys(actor for actor, _ in steps))
    column = {actor: i for i, actor in enumerate(actors)}
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.7 * len(steps)))
    bottom = -len(steps) - 0.5
    for actor, x in column.items():
        ax.plot([x, x], [0.3, bottom], color="#bbbbbb", linewidth=1, zorder=0)
        ax.text(x, 0.5, actor, ha="center", va="bottom", fontsize=10, fontweight="bold")
    for i, (actor, what) in enumerate(steps, start=1):
        y = -i
        ax.annotate(
            "", xy=(column[actor], y), xytext=(0, y), arrowprops={"arrowstyle": "->", "color": f"C{i - 1}", "lw": 2}
        )
        ax.text(0.1, y + 0.12, what, fontsize=8.5, va="bottom", color=f"C{i - 1}")
        if crash_after == i:
            ax.axhline(y - 0.5, color="red", linestyle="--", linewidth=1.5)
            ax.text(
                len(actors) - 1,
                y - 0.45,
                "crash here: on restart, offsets/N without commits/N means run batch N again, same offsets",
                ha="right",
                va="bottom",
                fontsize=8.5,
                color="red",
            )
    ax.set_xlim(-0.3, len(actors) - 0.7)
    ax.set_ylim(bottom, 1.0)
    ax.axis("off")
    ax.set_title("one micro-batch N, in order", fontsize=10)
    fig.tight_layout()
    return fig
