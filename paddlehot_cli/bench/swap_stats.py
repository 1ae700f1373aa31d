"""The swap section of a report: how long a publish takes to reach traffic, and what a swap
costs the requests around it.

A swap window starts when a version is published (or flipped) and ends WINDOW_AFTER seconds after
the first response from the new version (the old version drains and is released in that time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from paddlehot_cli.bench.stats import Sample, latency_summary

WINDOW_AFTER = 1.0


@dataclass
class SwapEvent:
    at: float  # seconds since the run began
    version: str
    error: str | None = None


def swap_section(events: Sequence[SwapEvent], samples: Sequence[Sample],
                 levels: dict[int, Sequence[Sample]] | None = None) -> dict[str, Any]:
    ordered = sorted(samples, key=lambda s: s.start)
    swaps = []
    windows = []
    for event in events:
        if event.error:
            swaps.append({"version": event.version, "at_s": round(event.at, 3),
                          "error": event.error, "publish_to_first_response_s": None})
            continue
        first = next((s.start + s.latency for s in ordered
                      if s.ok and s.version == event.version and s.start + s.latency >= event.at),
                     None)
        swaps.append({
            "version": event.version, "at_s": round(event.at, 3),
            "publish_to_first_response_s": None if first is None else round(first - event.at, 4),
        })
        end = (first if first is not None else event.at) + WINDOW_AFTER
        windows.append((event.at, end))

    def inside(s: Sample) -> bool:
        return any(a <= s.start <= b for a, b in windows)

    in_window = [s for s in samples if inside(s)]
    steady = [s for s in samples if not inside(s)]
    steady_p99 = latency_summary([s.latency for s in steady if s.ok])["p99"]
    window_p99 = latency_summary([s.latency for s in in_window if s.ok])["p99"]
    per_level = []
    for concurrency, level_samples in (levels or {}).items():
        # in a sweep, compare windows with steady traffic at the same concurrency only
        lw = latency_summary([s.latency for s in level_samples if s.ok and inside(s)])["p99"]
        ls = latency_summary([s.latency for s in level_samples if s.ok and not inside(s)])["p99"]
        per_level.append({"concurrency": concurrency, "steady_p99_ms": ls,
                          "swap_window_p99_ms": lw,
                          "p99_ratio": round(lw / ls, 3) if lw and ls else None})
    if len(per_level) > 1:
        ratios = [lv["p99_ratio"] for lv in per_level if lv["p99_ratio"] is not None]
        p99_ratio = max(ratios) if ratios else None
    else:
        p99_ratio = round(window_p99 / steady_p99, 3) if window_p99 and steady_p99 else None
    delays = [s["publish_to_first_response_s"] for s in swaps
              if s.get("publish_to_first_response_s") is not None]
    return {
        "swaps": len(events),
        "swaps_seen": len(delays),
        "failed_requests": sum(not s.ok for s in samples),
        "failed_in_windows": sum(not s.ok for s in in_window),
        "publish_to_first_response_s": {
            "mean": round(sum(delays) / len(delays), 4) if delays else None,
            "max": round(max(delays), 4) if delays else None,
        },
        "steady_p99_ms": steady_p99,
        "swap_window_p99_ms": window_p99,
        "p99_ratio": p99_ratio,  # with several levels: the worst level's ratio
        "per_level": per_level,
        "window_after_s": WINDOW_AFTER,
        "events": swaps,
    }


def rss_slope_mb_per_swap(events: Sequence[SwapEvent], rss_trace: Sequence[tuple[float, float]],
                          end_rss: float | None = None) -> float | None:
    """Least-squares slope of RSS against the swap count, in MB per swap. One point per swap:
    the RSS just before it was published (the previous swap has settled), plus the RSS at the
    end. A leak of one model per swap shows as the model's size; a leak-free server as ~0.
    `rss_trace` holds (seconds since the run began, bytes)."""
    points = []
    done = [e for e in events if not e.error]
    for k, event in enumerate(done):
        before = [rss for t, rss in rss_trace if t <= event.at]
        if before:
            points.append((k, before[-1]))
    if end_rss is not None and done:
        points.append((len(done), end_rss))
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return round(sxy / sxx / 2**20, 3) if sxx else None


def soak_section(events: Sequence[SwapEvent], rss_trace: Sequence[tuple[float, float]],
                 start: dict[str, int] | None, end: dict[str, int] | None,
                 peak_rss_mb: float | None) -> dict[str, Any]:
    """What many swaps leave behind in the process under test (leaks show here)."""
    end_rss = rss_trace[-1][1] if rss_trace else None
    return {
        "rss_slope_mb_per_swap": rss_slope_mb_per_swap(events, rss_trace, end_rss),
        "rss_start_mb": round(rss_trace[0][1] / 2**20, 1) if rss_trace else None,
        "rss_end_mb": round(end_rss / 2**20, 1) if end_rss else None,
        "peak_rss_mb": peak_rss_mb,
        "open_fds": {"start": (start or {}).get("open_fds"), "end": (end or {}).get("open_fds")},
        "sockets": {"start": (start or {}).get("sockets"), "end": (end or {}).get("sockets")},
        "plugin_mappings": {"start": (start or {}).get("plugin_mappings"),
                            "end": (end or {}).get("plugin_mappings")},
    }
