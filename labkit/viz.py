"""Pictures for the notebooks: readings over time, and windows on a timeline.

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
