"""`bench --tune` chooses the winner's pool_min and pool_idle_s (issue 27, item 5).

pool_min: serve grows a pool from pool_min under load. A burst after idle must keep up with
the same setting held at pool_max, measured in the same tune (the final round's figures):
throughput >= 0.9 x and p99 <= 1.5 x the fixed pool's. Breathing rounds start from pool_min 1
and go up while they fail; the first that meets both targets is chosen. Each round is >= 10 s
of a ~3-minute tune, so at most MAX_ROUNDS run; when none passes the pool is fixed
(pool_min = pool_max) and the reason names the ratio that failed and by how much.

pool_idle_s: not swept (a reclaim needs tens of seconds of idle per try); derived from what
one predictor took to create in this tune (idle_timeout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from paddlehot_cli.bench.tuning.sweep import ProgressFn, Result, breathing_round
from paddlehot_cli.bench.tuning.target import LoadSpec, TuneTarget
from paddlehot_cli.core.serving_settings import ServingSettings

THROUGHPUT_MIN = 0.9  # burst throughput / fixed pool's (issue 27)
P99_MAX = 1.5  # burst p99 / fixed pool's (issue 27)
MAX_ROUNDS = 3  # breathing rounds per tune: pool_min 1..3 (pool_max up to 4 fully covered)

IDLE_FLOOR_S = 30.0  # serve's default
IDLE_PER_CREATION = 20.0
IDLE_CAP_S = 600.0
IDLE_RULE = (f"max({IDLE_FLOOR_S:g}, {IDLE_PER_CREATION:g} x creation s), "
             f"at most {IDLE_CAP_S:g} s")


def idle_timeout(creation_s: float | None) -> dict[str, Any]:
    """Keep a grown predictor idle for 20 x what it took to create: a pause-burst cycle then
    spends at most 1/20 of one core recreating it (2.5% of a 2-core box). Never below serve's
    30 s (pauses of a few seconds between bursts are common), never above 10 minutes (an edge
    box wants a burst's memory back)."""
    if creation_s is None:
        return {"pool_idle_s": IDLE_FLOOR_S, "creation_s": None, "rule": IDLE_RULE,
                "reason": "predictor creation time not measured: serve's default"}
    idle = min(IDLE_CAP_S, max(IDLE_FLOOR_S, IDLE_PER_CREATION * creation_s))
    bound = ("the floor" if idle == IDLE_FLOOR_S else "the cap" if idle == IDLE_CAP_S
             else f"{IDLE_PER_CREATION:g} x creation")
    return {"pool_idle_s": round(idle, 1), "creation_s": round(creation_s, 3), "rule": IDLE_RULE,
            "reason": f"one predictor took {creation_s:.2f} s to create: {bound}"}


def creation_seconds(winner: Result) -> float | None:
    """Seconds per predictor in the winner's own open (load time / predictors it made)."""
    if winner.load_s is None:
        return None
    return winner.load_s / max(1, winner.predictors or winner.setting.pool_max)


def fixed_reference(final: dict[str, Any] | None, winner: Result) -> dict[str, Any]:
    """The winner held at pool_max: its final-round figures, else its sweep slot's."""
    row = next((r for r in (final or {}).get("finalists", [])
                if r["label"] == winner.setting.label()), None)
    if row is not None:
        return {"throughput_rps": row["throughput_rps"], "p99_ms": row["p99_ms"],
                "measured_in": "final round"}
    level = winner.level or {}
    return {"throughput_rps": level.get("throughput_rps"),
            "p99_ms": (level.get("latency_ms") or {}).get("p99"), "measured_in": "sweep"}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def judge(round_: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """One breathing round against the fixed pool: its ratios and what (if anything) failed."""
    trial: dict[str, Any] = {"pool_min": round_["pool_min"]}
    if "error" in round_:
        return {**trial, "passed": False, "failed": [f"not measured: {round_['error']}"]}
    level = round_["level"]
    p99 = level["latency_ms"]["p99"]
    thr = _ratio(level["throughput_rps"], fixed["throughput_rps"])
    lat = _ratio(p99, fixed["p99_ms"])
    failed = []
    if thr is None or lat is None:
        failed.append("no fixed-pool figures to compare with")
    if thr is not None and thr < THROUGHPUT_MIN:
        failed.append(f"throughput x{thr:g} < {THROUGHPUT_MIN:g} (short by "
                      f"{THROUGHPUT_MIN - thr:.3f})")
    if lat is not None and lat > P99_MAX:
        failed.append(f"p99 x{lat:g} > {P99_MAX:g} (over by {lat - P99_MAX:.3f})")
    full = next((pt["t_s"] for pt in level["timeline"]
                 if (pt["pool_size"] or 0) >= round_["pool_max"]), None)
    return {**trial, "throughput_rps": level["throughput_rps"], "p99_ms": p99,
            "throughput_vs_fixed": thr, "p99_vs_fixed": lat, "pool_full_after_s": full,
            "load_s": round_.get("load_s"), "predictors": round_.get("predictors"),
            "passed": not failed, "failed": failed}


def candidates(pool_max: int) -> list[int]:
    return list(range(1, min(pool_max, MAX_ROUNDS + 1)))


def choose(pool_max: int, trials: list[dict[str, Any]], fixed: dict[str, Any],
           idle: dict[str, Any]) -> dict[str, Any]:
    """pool_min: the first passing trial's, else pool_max; with the reason and the evidence."""
    passed = next((t for t in trials if t["passed"]), None)
    if pool_max == 1:
        pool_min, reason = 1, "pool_max 1: one predictor, nothing to grow"
    elif passed is not None:
        pool_min = passed["pool_min"]
        reason = (f"a burst from {pool_min} met both targets: throughput "
                  f"x{passed['throughput_vs_fixed']:g} >= {THROUGHPUT_MIN:g}, p99 "
                  f"x{passed['p99_vs_fixed']:g} <= {P99_MAX:g} of the fixed pool")
    else:
        pool_min = pool_max
        why = "; ".join(f"from {t['pool_min']}: {', '.join(t['failed'])}" for t in trials)
        untried = [k for k in range(1, pool_max) if k not in {t["pool_min"] for t in trials}]
        if untried and not any("not measured" in f for t in trials for f in t["failed"]):
            why += (f"; pool_min {untried[0]}..{untried[-1]} not tried (at most {MAX_ROUNDS} "
                    "breathing rounds)")
        reason = f"fixed pool: {why}"
    return {"pool_min": pool_min, "pool_max": pool_max, "pool_idle_s": idle["pool_idle_s"],
            "pool_min_reason": reason, "breathing_rounds": len(trials),
            "targets": {"throughput_vs_fixed_min": THROUGHPUT_MIN, "p99_vs_fixed_max": P99_MAX},
            "fixed": fixed, "trials": trials, "idle": idle}


def tune_pool(target: TuneTarget, winner: Result, final: dict[str, Any] | None, load: LoadSpec,
              progress: ProgressFn = lambda what, n: None
              ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Breathing rounds from pool_min 1 up until one passes; (the choice, the last round)."""
    fixed = fixed_reference(final, winner)
    idle = idle_timeout(creation_seconds(winner))
    trials, last = run_trials(
        winner.setting.pool_max, fixed,
        lambda k: breathing_round(target, winner.setting, load, k, idle["pool_idle_s"], progress))
    return choose(winner.setting.pool_max, trials, fixed, idle), last


def run_trials(pool_max: int, fixed: dict[str, Any],
               measure: Callable[[int], dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """measure(pool_min) for pool_min 1, 2, ... until a round passes: (judged trials, last)."""
    trials, last = [], None
    for pool_min in candidates(pool_max):
        last = measure(pool_min)
        trials.append(judge(last, fixed))
        if trials[-1]["passed"] or "error" in last:
            break  # a round that failed to run says nothing about a larger pool_min
    return trials, last


def served_settings(winner: Result, pool: dict[str, Any] | None) -> ServingSettings:
    """What --write saves and serve applies: the winner, with the chosen pool_min and idle."""
    settings = winner.setting.to_settings()
    if pool is None:
        return settings
    return replace(settings, pool_min=pool["pool_min"], pool_idle_s=float(pool["pool_idle_s"]))
