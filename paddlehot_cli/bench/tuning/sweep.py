"""`bench --tune`: measure a grid of serve settings on this box (the sweep), then the best few
and serve's defaults again (the final round).

Axes: intra-op threads, predictors per version (pool_max, also the batcher's worker count),
dynamic batching (batch size, max delay) and the Paddle CPU options the wheel has (oneDNN, IR
optimisation, memory optimisation, oneDNN cache capacity). Every setting is loaded as serve
loads it (servable + core Batcher), its outputs are checked against the package's validation
outputs with the package's tolerances, then one load level is measured. Settings that share
Paddle options share a child process (options apply at predictor creation; RSS is per process);
each child measures its settings in turn, releasing the previous one first.

After the sweep the winner and serve's defaults are measured again, interleaved (A B A B), so
the "tuned vs default" ratio does not depend on which minute of a shared box each ran in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from paddlehot_cli.bench.tuning.settings import Setting, default_setting
from paddlehot_cli.bench.tuning.target import LoadSpec, TuneTarget, WorkerError, WorkerProcess


@dataclass
class Result:
    setting: Setting
    level: dict[str, Any] | None = None
    check: dict[str, Any] | None = None
    load_s: float | None = None
    predictors: int | None = None  # made by the open that took load_s
    error: str | None = None
    rank: int | None = None
    meets_slo: bool | None = None

    @property
    def drift(self) -> bool:
        return bool(self.check and self.check.get("checked") and not self.check.get("passed"))

    @property
    def usable(self) -> bool:
        """Measured without errors and computing what the package computes."""
        return (self.error is None and self.level is not None and not self.drift
                and self.level["errors"] == 0 and self.level["ok"] > 0)

    def throughput(self) -> float:
        return self.level["throughput_rps"] if self.level else 0.0

    def p99(self) -> float | None:
        return self.level["latency_ms"]["p99"] if self.level else None

    def to_json(self) -> dict[str, Any]:
        return {"setting": asdict(self.setting), "label": self.setting.label(),
                "rank": self.rank, "meets_slo": self.meets_slo, "usable": self.usable,
                "drift": self.drift, "check": self.check, "load_s": self.load_s,
                "predictors": self.predictors, "error": self.error, "level": self.level}


ProgressFn = Callable[[str, int], None]  # (what is being measured, requests done)


@dataclass
class TuneRun:
    target: TuneTarget
    load: LoadSpec
    results: list[Result] = field(default_factory=list)
    final: dict[str, Any] | None = None
    breathing: dict[str, Any] | None = None  # the winner as serve runs it (breathing_round)
    pool: dict[str, Any] | None = None  # pool_min and pool_idle_s chosen (pool_choice.choose)


def _open(worker: WorkerProcess, target: TuneTarget, setting: Setting, **pool: Any) -> dict:
    """Load `setting` in the worker (`pool`: pool_min, pool_idle_s; default: fixed at max)."""
    return worker.call({"cmd": "open", "path": str(target.path), "setting": asdict(setting),
                        "validation_dir": str(target.validation_dir), "label": setting.label(),
                        **pool})


def sweep(target: TuneTarget, settings: Sequence[Setting], load: LoadSpec,
          progress: ProgressFn = lambda what, n: None) -> TuneRun:
    run = TuneRun(target, load)
    groups: dict[tuple, list[Setting]] = {}
    for s in settings:
        groups.setdefault(s.paddle_key(), []).append(s)
    for group in groups.values():
        worker = WorkerProcess()
        try:
            unloadable = None
            for setting in group:
                if unloadable:  # these Paddle options do not load this model: skip the rest
                    run.results.append(Result(setting, error=unloadable))
                    progress(setting.label(), 0)
                    continue
                result = _measure_one(worker, target, setting, load, progress)
                run.results.append(result)
                if result.error and result.load_s is None and "could not load" in result.error:
                    unloadable = result.error
                elif result.error and worker.proc.poll() is not None:
                    worker.close()
                    worker = WorkerProcess()  # a crash costs one setting, not the group
        finally:
            worker.close()
    return run


def _measure_one(worker: WorkerProcess, target: TuneTarget, setting: Setting, load: LoadSpec,
                 progress: ProgressFn) -> Result:
    result = Result(setting)
    label = setting.label()
    try:
        opened = _open(worker, target, setting)
        result.check, result.load_s = opened["check"], opened["load_s"]
        result.predictors = opened.get("predictors")
        # a drifting setting is measured anyway (the table shows what it would have bought) but
        # never ranked
        answer = worker.call(load.command(), lambda n: progress(label, n))
        result.level = answer["level"]
        worker.call({"cmd": "close"})
    except WorkerError as exc:
        result.error = str(exc)
    progress(label, 0)
    return result


def final_round(target: TuneTarget, finalists: Sequence[Result], load: LoadSpec,
                rounds: int = 3, progress: ProgressFn = lambda what, n: None) -> dict[str, Any]:
    """The best few settings and serve's defaults measured again, each in its own process, in
    interleaved rounds (A B C D, then D C B A, ...): on a shared box a 2-second sweep slot can
    catch a quiet or a busy moment; here every finalist sees the same ones."""
    baseline = default_setting()
    settings = list(dict.fromkeys([r.setting for r in finalists] + [baseline]))
    workers: dict[Setting, WorkerProcess] = {}
    levels: dict[Setting, list[dict]] = {s: [] for s in settings}
    try:
        for setting in settings:
            workers[setting] = WorkerProcess()
            _open(workers[setting], target, setting)
        per_round = replace(load, duration=max(load.duration / 2, 0.5), warmup=0.3)
        for index in range(rounds):
            order = settings if index % 2 == 0 else settings[::-1]
            for setting in order:
                answer = workers[setting].call(
                    per_round.command(), lambda n, s=setting: progress(f"final {s.label()}", n))
                levels[setting].append(answer["level"])
    except WorkerError as exc:
        return {"error": str(exc)}
    finally:
        for worker in workers.values():
            worker.close()
    return {"rounds": rounds, "settings": settings,
            "merged": {s: _merge_levels(levels[s]) for s in settings}}


BREATHING_MIN_S = 10.0


def breathing_round(target: TuneTarget, setting: Setting, load: LoadSpec, pool_min: int,
                    idle_s: float, progress: ProgressFn = lambda what, n: None) -> dict[str, Any]:
    """The winner as serve runs it: its pool starts at `pool_min` and grows under the same load
    (a burst after idle), with no warm-up: the growth is part of what is measured. As long as
    the final round measured each finalist, and at least 10 s: a resnet18 predictor takes 1.5 s
    to create on an idle core, several on a busy box (the keeper creates niced)."""
    worker = WorkerProcess()
    try:
        opened = _open(worker, target, setting, pool_min=pool_min, pool_idle_s=idle_s)
        burst = replace(load, duration=max(1.5 * load.duration, BREATHING_MIN_S), warmup=0.0)
        answer = worker.call(burst.command(), lambda n: progress("breathing", n))
    except WorkerError as exc:
        return {"error": str(exc)}
    finally:
        worker.close()
    return {"pool_min": pool_min, "pool_max": setting.pool_max, "pool_idle_s": idle_s,
            "idle_rss_mb": opened.get("rss_mb"), "load_s": opened.get("load_s"),
            "predictors": opened.get("predictors"), "level": answer["level"]}


def _merge_levels(levels: Sequence[dict]) -> dict[str, Any]:
    """Throughput over all rounds; p99 as the median of the rounds' p99 (samples are not kept)."""
    ok = sum(lv["ok"] for lv in levels)
    seconds = sum(lv["duration_s"] for lv in levels)
    p99s = sorted(lv["latency_ms"]["p99"] for lv in levels if lv["latency_ms"]["p99"] is not None)
    p50s = sorted(lv["latency_ms"]["p50"] for lv in levels if lv["latency_ms"]["p50"] is not None)
    rss = [lv["peak_rss_mb"] for lv in levels if lv.get("peak_rss_mb")]
    return {"requests": ok, "throughput_rps": round(ok / seconds, 2) if seconds else 0.0,
            "p50_ms": p50s[len(p50s) // 2] if p50s else None,
            "p99_ms": p99s[len(p99s) // 2] if p99s else None,
            "peak_rss_mb": max(rss) if rss else None,
            "errors": sum(lv["errors"] for lv in levels)}
