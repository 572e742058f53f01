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


def _stages(figure):
    """{stage key: 'on' or 'off'} from the boxes plot_pipeline drew (each box's gid names it)."""
    boxes = [p.get_gid() for p in figure.axes[0].patches if (p.get_gid() or "").startswith("stage:")]
    return {gid.split(":")[1]: gid.split(":")[2] for gid in boxes}


def test_pipeline_figure_draws_every_stage_and_highlights_the_lessons():
    figure = viz.plot_pipeline(["kafka", "spark"], note="lesson 02")
    drawn = _stages(figure)
    assert set(drawn) == {key for key, *_ in viz.PIPELINE_STAGES}, "every stage of the data path is drawn"
    assert {k for k, state in drawn.items() if state == "on"} == {"kafka", "spark"}
    lit_arrows = [a for a in figure.axes[0].texts if a.get_text() == "offsets"]
    assert lit_arrows, "the Kafka -> Spark arrow is labelled"
    assert "lesson 02" in [t.get_text() for t in figure.texts], "the note is written under the picture"


def test_pipeline_figure_refuses_an_unknown_stage():
    import pytest

    with pytest.raises(ValueError, match=r"unknown pipeline stage\(s\) \['kafak'\]"):
        viz.plot_pipeline(["kafak"])


def test_micro_batch_figure_shows_the_steps_in_order_and_a_crash():
    figure = viz.plot_micro_batch(crash_after=4)
    texts = [t.get_text() for t in figure.axes[0].texts]
    steps = [t for t in texts if t[:2] in {"1.", "2.", "3.", "4.", "5."}]
    assert [s[:2] for s in steps] == ["1.", "2.", "3.", "4.", "5."]
    assert "offsets/N" in steps[0] and "commits/N" in steps[-1], "the plan first, the receipt last"
    assert any(t.startswith("crash here") for t in texts)
    assert not any(t.startswith("crash here") for t in (x.get_text() for x in viz.plot_micro_batch().axes[0].texts))
