"""labkit.viz: the pictures of the notebooks, without services."""

from datetime import datetime, timezone

import matplotlib
import pandas as pd

from labkit import viz

matplotlib.use("Agg")


def test_window_starts_are_aligned_on_the_clock():
    first = datetime(2026, 1, 30, 10, 0, 3, tzinfo=timezone.utc)
    last = datetime(2026, 1, 30, 10, 0, 21, tzinfo=timezone.utc)
    assert [s.second for s in viz.window_starts(first, last, 10, 10)] == [0, 10, 20]
    assert [s.second for s in viz.window_starts(first, last, 10, 5)] == [55, 0, 5, 10, 15, 20]


def test_plots_return_figures():
    t = [datetime(2026, 1, 30, 10, 0, s, tzinfo=timezone.utc) for s in range(0, 20, 2)]
    readings = pd.DataFrame(
        {"room_id": ["room_1", "room_2"] * 5, "timestamp": t, "temperature": range(10), "co2_ppm": range(10)}
    )
    assert len(viz.plot_readings(readings).axes) == 2
    figure = viz.plot_windows(t[0], t[-1], 10, 5, events=t, late_events=t[:1], watermark=t[-1])
    assert figure.axes[0].get_title() == "sliding windows: 10 s, sliding every 5 s"
