"""Pool size and RSS over time as text, for a terminal: one sparkline row per series, resampled
to a fixed width, with each row's range and the time axis beside it. No plotting library: bench
runs on edge boxes without matplotlib, and the samples themselves go into the JSON report."""

from __future__ import annotations

from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], lo: float | None = None,
              hi: float | None = None) -> str:
    """One character per value, scaled between lo and hi (default: the values' own range); a
    missing value is a space."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    lo = min(known) if lo is None else lo
    hi = max(known) if hi is None else hi
    span = hi - lo
    top = len(BARS) - 1
    return "".join(" " if v is None else
                   BARS[0 if span <= 0 else max(0, min(top, round((v - lo) / span * top)))]
                   for v in values)


def resample(points: Sequence[tuple[float, float | None]], width: int) -> list[float | None]:
    """The last value at or before each of `width` evenly spaced times (a step chart: a pool's
    size holds until it changes)."""
    if not points or width < 1:
        return []
    t0, t1 = points[0][0], points[-1][0]
    out: list[float | None] = []
    i = 0
    for col in range(width):
        at = t0 + (t1 - t0) * col / max(1, width - 1)
        while i + 1 < len(points) and points[i + 1][0] <= at:
            i += 1
        out.append(points[i][1])
    return out


def timeline_chart(timeline: Sequence[tuple[float, float, int | None]],
                   width: int = 60) -> list[str]:
    """Rows for (seconds, RSS MiB, pool size) samples: RSS, pool size, time axis."""
    if len(timeline) < 2:
        return []
    rss = resample([(t, r) for t, r, _ in timeline], width)
    pool = resample([(t, p) for t, _, p in timeline], width)
    rows = [f"RSS MiB {_range(rss):>11} {sparkline(rss)}"]
    if any(p is not None for p in pool):
        sizes = [p for p in pool if p is not None]
        rows.append(f"pool    {_range(pool):>11} {sparkline(pool, lo=0, hi=max(sizes))}")
    first, last = f"{timeline[0][0]:g}s", f"{timeline[-1][0]:g}s"
    rows.append(f"{'':20}{first}{last:>{max(1, width - len(first))}}")
    return rows


def _range(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):.0f}..{max(known):.0f}" if known else "-"
