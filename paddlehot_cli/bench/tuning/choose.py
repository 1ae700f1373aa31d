"""Choosing the winner of `bench --tune`: rank the sweep by the objective within the p99
target, then let the final round (the same rules, measured interleaved) have the last word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from paddlehot_cli.bench.tuning.settings import Setting, default_setting
from paddlehot_cli.bench.tuning.sweep import Result
from paddlehot_cli.errors import UserError

OBJECTIVES = ("throughput", "latency", "memory")


def rank(results: Sequence[Result], objective: str, slo_p99_ms: float | None) -> Result | None:
    """Rank usable results by the objective (1 = best); return the winner: the best usable
    result that meets the SLO, or None when none does. Drifting or failing settings get no rank.
    """
    if objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, not '{objective}'")
    usable = [r for r in results if r.usable]
    for r in results:
        p99 = r.p99()
        r.meets_slo = (None if slo_p99_ms is None or not r.usable
                       else p99 is not None and p99 <= slo_p99_ms)

    def key(r: Result) -> tuple:
        p99 = r.p99() if r.p99() is not None else float("inf")
        rss = r.level.get("peak_rss_mb") or float("inf")  # type: ignore[union-attr]
        if objective == "latency":
            return (p99, -r.throughput())
        if objective == "memory":
            return (rss, -r.throughput())
        return (-r.throughput(), p99)

    # settings that meet the SLO rank above those that miss it
    ordered = sorted(usable, key=lambda r: (r.meets_slo is False, key(r)))
    for index, r in enumerate(ordered, 1):
        r.rank = index
    best = ordered[0] if ordered else None
    return best if best is not None and best.meets_slo is not False else None


def pick_final(final: dict[str, Any], objective: str, slo_p99_ms: float | None) -> dict[str, Any]:
    """The winner of the final round by the same rules as rank(), and its ratios to the
    defaults measured in the same rounds."""
    merged: dict[Setting, dict] = final["merged"]
    baseline = default_setting()

    def ok(s: Setting) -> bool:
        m = merged[s]
        return m["errors"] == 0 and (slo_p99_ms is None or (m["p99_ms"] or 1e18) <= slo_p99_ms)

    def key(s: Setting) -> tuple:
        m = merged[s]
        p99 = m["p99_ms"] or float("inf")
        if objective == "latency":
            return (p99, -m["throughput_rps"])
        if objective == "memory":
            return (m["peak_rss_mb"] or float("inf"), -m["throughput_rps"])
        return (-m["throughput_rps"], p99)

    candidates = sorted((s for s in merged if ok(s)), key=key)
    winner = candidates[0] if candidates else None
    d = merged[baseline]
    t = merged[winner] if winner else None
    return {
        "rounds": final["rounds"], "winner": asdict(winner) if winner else None,
        "finalists": [{"setting": asdict(s), "label": s.label(), **merged[s]} for s in merged],
        "default": d, "tuned": t,
        "throughput_ratio": _ratio(t["throughput_rps"], d["throughput_rps"]) if t else None,
        "p99_ratio": _ratio(t["p99_ms"], d["p99_ms"]) if t else None,
        "_winner": winner,
    }

def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None
