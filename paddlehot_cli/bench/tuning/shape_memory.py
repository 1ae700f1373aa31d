"""`bench --shape-memory`: RSS under random-shape traffic per oneDNN cache bound, and what each
bound costs on fixed-shape traffic.

Two caches are compared: oneDNN's process-wide primitive cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY,
1024 kernels by default; paddlehot sets a lower bound) and Paddle's per-predictor shape cache
(Config.set_mkldnn_cache_capacity; paddlehot sets 0 = off, Paddle's own default is 10). Each variant runs in its own process (RSS is
per process; both apply from the first kernel). First the fixed-shape throughput of every
variant, interleaved (A B A B ...) so the ratios see the same noise on a shared box; then, one
process after the other, N requests with a new random shape each (bench.shapes), RSS sampled
every K requests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from paddlehot_cli.bench.tuning.settings import default_setting, parse_axis
from paddlehot_cli.bench.tuning.target import (
    LoadSpec,
    TuneTarget,
    WorkerError,
    WorkerProcess,
    resolve_target,
)
from paddlehot_cli.core.paddle_runtime import ONEDNN_PRIMITIVE_CACHE_ENV
from paddlehot_cli.errors import UserError

ONEDNN_DEFAULT_PRIMITIVE_CACHE = 1024  # oneDNN's own default
SCHEMA = "paddlehot.bench-shape-memory/1"


@dataclass
class ShapeMemoryPlan:
    """A checked `bench --shape-memory` request: what to load and which cache bounds to compare."""

    target: TuneTarget
    primitive_caches: list[int]
    shape_caches: list[int]
    requests: int
    max_batch: int
    max_len: int
    threads: int
    load: LoadSpec


def plan(target_spec: str, primitive_text: str | None, shape_text: str | None, requests: int,
         input_data: str, threads: int, load: LoadSpec) -> ShapeMemoryPlan:
    from paddlehot_cli.bench import shapes
    from paddlehot_cli.core.paddle_runtime import (
        DEFAULT_ONEDNN_CACHE_CAPACITY,
        DEFAULT_ONEDNN_PRIMITIVE_CACHE,
        has_onednn,
    )

    limits = shapes.parse_spec(input_data if input_data != "random" else shapes.PREFIX)
    if limits is None:
        raise UserError("--shape-memory draws its own inputs: --input-data random-shapes[:B,L]")
    primitive = (parse_axis(primitive_text, "--primitive-cache", int) if primitive_text
                 else [ONEDNN_DEFAULT_PRIMITIVE_CACHE, DEFAULT_ONEDNN_PRIMITIVE_CACHE])
    shape = (parse_axis(shape_text, "--onednn-cache-capacity", int) if shape_text
             else [DEFAULT_ONEDNN_CACHE_CAPACITY])
    target = resolve_target(target_spec)
    if not has_onednn():
        raise UserError("this paddle wheel has no oneDNN: there is no oneDNN cache to bound")
    return ShapeMemoryPlan(target, primitive, shape, requests, limits[0], limits[1], threads, load)


def run_plan(p: ShapeMemoryPlan,
             progress: Callable[[str, int], None] = lambda what, n: None) -> dict[str, Any]:
    """The study's summary: RSS sampled every 1% of the random-shape requests."""
    return run_shape_memory(p.target, p.primitive_caches, p.shape_caches, p.requests,
                            max(1, p.requests // 100), p.max_batch, p.max_len, p.threads, p.load,
                            progress=progress)


def run_shape_memory(
    target: TuneTarget, primitive_caches: Sequence[int], shape_caches: Sequence[int],
    requests: int, every: int, max_batch: int, max_len: int, threads: int, fixed: LoadSpec,
    rounds: int = 6, progress: Callable[[str, int], None] = lambda what, n: None,
) -> dict[str, Any]:
    if target.kind != "package":
        raise UserError("--shape-memory needs a package (a plugin sets its own Paddle options "
                        "through the C API)")
    base = replace(default_setting(), threads=threads)
    variants = list(itertools.product(primitive_caches, shape_caches))
    workers: dict[tuple[int, int], WorkerProcess] = {}
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    try:
        for prim, cap in variants:
            worker = workers[(prim, cap)] = WorkerProcess({ONEDNN_PRIMITIVE_CACHE_ENV: str(prim)})
            opened = worker.call({"cmd": "open", "path": str(target.path),
                                  "setting": asdict(replace(base, onednn_cache_capacity=cap)),
                                  "validation_dir": str(target.validation_dir)})
            runs[(prim, cap)] = {"primitive_cache": prim, "onednn_cache_capacity": cap,
                                 "check": opened["check"], "rss_after_load_mb": opened["rss_mb"],
                                 "fixed": []}
        per_round = replace(fixed, duration=fixed.duration / rounds)
        for index in range(rounds):
            order = list(workers.items())
            # A B, then B A: drift in the box's load during a round hits every variant alike
            for key, worker in order if index % 2 == 0 else order[::-1]:
                answer = worker.call(per_round.command(),
                                     lambda n, k=key: progress(f"fixed shape, {_name(k)}", n))
                runs[key]["fixed"].append(answer["level"])
        for key, worker in workers.items():
            answer = worker.call({"cmd": "shapes", "n": requests, "every": every,
                                  "max_batch": max_batch, "max_len": max_len},
                                 lambda n, k=key: progress(f"random shapes, {_name(k)}", n))
            runs[key].update(curve=answer["curve"], shapes_seconds=answer["seconds"])
            worker.call({"cmd": "close"})
    except WorkerError as exc:
        raise UserError(f"--shape-memory: {exc}") from None
    finally:
        for worker in workers.values():
            worker.close()
    return _summary(list(runs.values()), requests, max_batch, max_len, threads, fixed)


def _name(key: tuple[int, int]) -> str:
    return f"primitive cache {key[0]}, shape cache {key[1]}"


def _summary(runs: list[dict[str, Any]], requests: int, max_batch: int, max_len: int,
             threads: int, fixed: LoadSpec) -> dict[str, Any]:
    rows = []
    for run in runs:
        levels = run.pop("fixed")
        ok = sum(lv["ok"] for lv in levels)
        seconds = sum(lv["duration_s"] for lv in levels)
        curve = run["curve"]
        start = curve[0][1]
        # CPU time per request of the measuring process: on a shared box far steadier than
        # requests/s, which mostly measures what the neighbours are doing
        cpu_s = sum((lv["cpu_percent"] or 0) / 100 * lv["duration_s"] for lv in levels)
        rows.append({
            **run,
            "fixed_throughput_rps": round(ok / seconds, 2) if seconds else 0.0,
            "fixed_cpu_ms_per_request": round(cpu_s * 1000 / ok, 4) if ok else None,
            "fixed_p99_ms": sorted(lv["latency_ms"]["p99"] or 0 for lv in levels)[len(levels) // 2],
            "rss_start_mb": start, "rss_end_mb": curve[-1][1],
            "rss_peak_mb": max(rss for _, rss in curve),
            # one late request of the largest shape moves the end value; the median of the last
            # 90% says where RSS sat
            "rss_median_mb": _median([rss for done, rss in curve if done >= requests // 10]),
            "growth_mb": round(curve[-1][1] - start, 1),
            "random_shape_rps": round(requests / run["shapes_seconds"], 2)
            if run["shapes_seconds"] else None,
            # growth over the second half: still creeping, or bounded?
            "late_growth_mb": round(curve[-1][1] - _at(curve, requests // 2), 1),
        })
    base, base_cpu = rows[0]["fixed_throughput_rps"], rows[0]["fixed_cpu_ms_per_request"]
    for row in rows:
        row["fixed_throughput_vs_first"] = (round(row["fixed_throughput_rps"] / base, 3)
                                            if base else None)
        cpu = row["fixed_cpu_ms_per_request"]
        row["fixed_cpu_vs_first"] = round(cpu / base_cpu, 3) if cpu and base_cpu else None
    return {"requests": requests, "max_batch": max_batch, "max_len": max_len,
            "threads": threads, "fixed_load": {"concurrency": fixed.concurrency,
                                               "duration_s": fixed.duration,
                                               "batch": fixed.batch},
            "variants": rows}


def _at(curve: Sequence[Sequence[float]], n: int) -> float:
    """RSS at the first sample at or after request n."""
    for done, rss in curve:
        if done >= n:
            return rss
    return curve[-1][1]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0
