"""`bench --tune` from a request to a winner: check the request, build the grid, sweep it, rank,
run the final round, choose the winner's pool_min and idle timeout (pool_choice), and (with
--write) save them as REPO/NAME/serving.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.bench.tuning.choose import OBJECTIVES, pick_final, rank
from paddlehot_cli.bench.tuning.pool_choice import served_settings, tune_pool
from paddlehot_cli.bench.tuning.settings import AxisText, Grid, Setting, build_grid
from paddlehot_cli.bench.tuning.sweep import (
    ProgressFn,
    Result,
    TuneRun,
    final_round,
    sweep,
)
from paddlehot_cli.bench.tuning.target import LoadSpec, TuneTarget, resolve_target
from paddlehot_cli.errors import UserError


@dataclass
class TunePlan:
    """A checked `bench --tune` request."""

    target: TuneTarget
    grid: Grid
    settings: list[Setting]
    load: LoadSpec
    objective: str
    slo_p99_ms: float | None
    write: bool
    finalists: int = 3


@dataclass
class TuneOutcome:
    run: TuneRun
    winner: Result | None  # None: no setting ran cleanly within the p99 target


def plan(target_spec: str, axes: AxisText, load: LoadSpec, objective: str,
         slo_p99_ms: float | None, write: bool) -> TunePlan:
    if objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, not '{objective}'")
    if slo_p99_ms is not None and slo_p99_ms <= 0:
        raise UserError("--slo-p99 must be > 0 milliseconds")
    target = resolve_target(target_spec)
    if write and target.model_dir is None:
        raise UserError("--write saves REPO/NAME/serving.json: give the target as REPO:NAME",
                        hint="serving settings belong to a model, not to one version or a file")
    grid = build_grid(axes, target.kind, target.model_format)
    return TunePlan(target, grid, grid.settings(), load, objective, slo_p99_ms, write)


def search(p: TunePlan, progress: ProgressFn = lambda what, n: None) -> TuneOutcome:
    """Sweep every setting, rank them; the best few and serve's defaults then run again,
    interleaved, and that final round picks the winner (the sweep's best if it fails)."""
    run = sweep(p.target, p.settings, p.load, progress)
    winner = rank(run.results, p.objective, p.slo_p99_ms)
    if winner is not None:
        best = [r for r in run.results if r.rank and r.rank <= p.finalists
                and r.meets_slo is not False]
        final = final_round(p.target, best, p.load, progress=progress)
        if "error" in final:
            run.final = final
        else:
            run.final = pick_final(final, p.objective, p.slo_p99_ms)
            chosen = run.final.pop("_winner")
            winner = next((r for r in run.results if r.setting == chosen), None)
    if winner is not None:
        # serve breathes from pool_min to the tuned pool_max: the smallest pool_min whose burst
        # keeps up with the fixed pool, and an idle timeout from the measured creation time
        run.pool, run.breathing = tune_pool(p.target, winner, run.final, p.load, progress)
    return TuneOutcome(run, winner)


def save_winner(p: TunePlan, outcome: TuneOutcome) -> Path:
    """Write the winner, with its pool_min and pool_idle_s, to REPO/NAME/serving.json with what
    measured it (serve applies it)."""
    from paddlehot_cli.bench.tuning.report import tuned_provenance
    from paddlehot_cli.core.serving_settings import write_settings

    assert p.target.model_dir is not None and outcome.winner is not None
    return write_settings(p.target.model_dir, served_settings(outcome.winner, outcome.run.pool),
                          tuned_provenance(outcome.run, outcome.winner, p.objective, p.slo_p99_ms))
