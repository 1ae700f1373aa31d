"""`bench --shape-memory`: RSS under random-shape traffic, per oneDNN cache capacity, and what
each capacity costs on fixed-shape traffic.

Each capacity runs in its own process (RSS is per process; the capacity applies at predictor
creation). First the fixed-shape throughput of every capacity, interleaved (A B A B ...) so the
ratio sees the same noise on a shared box; then, one process after the other, N requests with a
new random shape each (bench.shapes), RSS sampled every K requests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

from paddlehot_cli.bench.tune import (LoadSpec, Setting, TuneTarget, WorkerError, WorkerProcess,
                                      default_setting)
from paddlehot_cli.errors import UserError

UNBOUNDED = 0


def run_shape_memory(
    target: TuneTarget, capacities: Sequence[int], requests: int, every: int,
    max_batch: int, max_len: int, threads: int, fixed: LoadSpec, rounds: int = 3,
    progress: Callable[[str, int], None] = lambda what, n: None,
) -> dict[str, Any]:
    if target.kind != "package":
        raise UserError("--shape-memory needs a package (a plugin sets its own Paddle options "
                        "through the C API)")
    base = replace(default_setting(), threads=threads)
    workers: dict[int, WorkerProcess] = {}
    runs: dict[int, dict[str, Any]] = {}
    try:
        for cap in capacities:
            workers[cap] = WorkerProcess()
            setting = replace(base, onednn_cache_capacity=cap)
            opened = workers[cap].call({"cmd": "open", "path": str(target.path),
                                        "setting": _as_dict(setting),
                                        "validation_dir": str(target.validation_dir)})
            runs[cap] = {"onednn_cache_capacity": cap, "check": opened["check"],
                         "rss_after_load_mb": opened["rss_mb"], "fixed": []}
        per_round = replace(fixed, duration=fixed.duration / rounds)
        for _ in range(rounds):
            for cap, worker in workers.items():
                answer = worker.call(per_round.command(),
                                     lambda n, c=cap: progress(f"fixed shape, capacity {c}", n))
                runs[cap]["fixed"].append(answer["level"])
        for cap, worker in workers.items():
            answer = worker.call({"cmd": "shapes", "n": requests, "every": every,
                                  "max_batch": max_batch, "max_len": max_len},
                                 lambda n, c=cap: progress(f"random shapes, capacity {c}", n))
            runs[cap].update(curve=answer["curve"], shapes_seconds=answer["seconds"])
            worker.call({"cmd": "close"})
    except WorkerError as exc:
        raise UserError(f"--shape-memory: {exc}") from None
    finally:
        for worker in workers.values():
            worker.close()
    return _summary(runs, requests, max_batch, max_len, threads, fixed)


def _as_dict(setting: Setting) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(setting)


def _summary(runs: dict[int, dict[str, Any]], requests: int, max_batch: int, max_len: int,
             threads: int, fixed: LoadSpec) -> dict[str, Any]:
    rows = []
    for cap, run in runs.items():
        levels = run["fixed"]
        ok = sum(lv["ok"] for lv in levels)
        seconds = sum(lv["duration_s"] for lv in levels)
        curve = run["curve"]
        start = curve[0][1]
        rows.append({
            "onednn_cache_capacity": cap,
            "fixed_throughput_rps": round(ok / seconds, 2) if seconds else 0.0,
            "rss_start_mb": start, "rss_end_mb": curve[-1][1],
            "rss_peak_mb": max(rss for _, rss in curve),
            "growth_mb": round(curve[-1][1] - start, 1),
            # growth over the second half: still creeping, or bounded?
            "late_growth_mb": round(curve[-1][1] - _at(curve, requests // 2), 1),
            "check": run["check"], "curve": curve, "shapes_seconds": run["shapes_seconds"],
        })
    ref = next((r for r in rows if r["onednn_cache_capacity"] == UNBOUNDED), rows[0])
    for row in rows:
        base = ref["fixed_throughput_rps"]
        row["fixed_throughput_vs_unbounded"] = (round(row["fixed_throughput_rps"] / base, 3)
                                                if base else None)
    return {"requests": requests, "max_batch": max_batch, "max_len": max_len,
            "threads": threads, "fixed_load": {"concurrency": fixed.concurrency,
                                               "duration_s": fixed.duration,
                                               "batch": fixed.batch},
            "capacities": rows}


def _at(curve: Sequence[Sequence[float]], n: int) -> float:
    """RSS at the first sample at or after request n."""
    for done, rss in curve:
        if done >= n:
            return rss
    return curve[-1][1]
