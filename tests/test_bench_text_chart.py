"""The text chart of pool size and RSS over time (`paddlehot bench`, bench/pool_breathing.py)."""

from __future__ import annotations

from paddlehot_cli.bench.text_chart import BARS, resample, sparkline, timeline_chart


def test_sparkline_scales_between_the_range_and_marks_missing_values():
    assert sparkline([0, 5, 10]) == BARS[0] + BARS[4] + BARS[-1]
    assert sparkline([1, 2], lo=0, hi=2) == BARS[4] + BARS[-1]
    assert sparkline([3, None, 3]) == BARS[0] + " " + BARS[0]  # flat: the lowest bar
    assert sparkline([99], lo=0, hi=10) == BARS[-1]  # clipped, never an IndexError


def test_resample_holds_each_value_until_it_changes():
    # a pool at 1, grown to 2 at 10 s, back to 1 at 40 s, sampled unevenly
    points = [(0.0, 1), (9.9, 1), (10.0, 2), (12.0, 2), (40.0, 1), (50.0, 1)]
    cols = resample(points, 6)  # at 0, 10, 20, 30, 40, 50 s
    assert cols == [1, 2, 2, 2, 1, 1]


def test_timeline_chart_shows_growth_and_reclaim_in_rows_of_one_width():
    timeline = [(t, 300.0 + (100 if 10 <= t < 40 else 0), 2 if 10 <= t < 40 else 1)
                for t in range(61)]
    rss, pool, axis = timeline_chart(timeline, width=30)
    assert "300..400" in rss and "1..2" in pool
    bars = pool.split()[-1]
    assert len(bars) == 30 and len(rss.split()[-1]) == 30
    grown = [i for i, ch in enumerate(bars) if ch == BARS[-1]]
    assert grown and bars[0] != BARS[-1] and bars[-1] != BARS[-1]  # up, then down again
    assert axis.strip().startswith("0s") and axis.rstrip().endswith("60s")
    assert timeline_chart(timeline[:1]) == []  # one sample is no chart
