"""Run a benchmark: warm up, sweep concurrency levels, optionally swap versions during the run,
and collect latency, throughput, errors, CPU and peak RSS per level."""

from __future__ import annotations

import platform
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from paddlehot_cli.bench import loadgen
from paddlehot_cli.bench.data import make_feeds
from paddlehot_cli.bench.resources import ResourceSampler, process_facts
from paddlehot_cli.bench.stats import LevelResult
from paddlehot_cli.bench.swap_stats import SwapEvent, soak_section, swap_section
from paddlehot_cli.bench.targets import Target
from paddlehot_cli.errors import UserError

SCHEMA = "paddlehot.bench/1"


@dataclass
class BenchConfig:
    concurrency: Sequence[int] = (1,)
    duration: float | None = 10.0
    requests: int | None = None
    warmup: float = 1.0
    batch: int = 1
    input_data: str = "random"
    rate: float | None = None
    swap_every: float | None = None

    def check(self) -> None:
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise UserError("--concurrency must be positive integers, e.g. 1,2,4,8")
        if self.requests is not None and self.requests < 1:
            raise UserError("--requests must be >= 1")
        if self.duration is not None and self.duration <= 0:
            raise UserError("--duration must be > 0")
        if self.rate is not None and self.rate <= 0:
            raise UserError("--rate must be > 0")
        if self.swap_every is not None and self.swap_every <= 0:
            raise UserError("--swap-every must be > 0")
        if self.warmup < 0:
            raise UserError("--warmup must be >= 0")


@dataclass
class BenchReport:
    target: str
    kind: str
    config: BenchConfig
    levels: list[LevelResult] = field(default_factory=list)
    swap: dict[str, Any] | None = None
    swap_events: list[SwapEvent] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "schema": SCHEMA,
            "target": self.target,
            "kind": self.kind,
            "machine": {"cpus": cpu_count(), "arch": platform.machine(),
                        "python": platform.python_version()},
            "config": {
                "concurrency": list(cfg.concurrency), "duration_s": cfg.duration,
                "requests": cfg.requests, "warmup_s": cfg.warmup, "batch": cfg.batch,
                "input_data": cfg.input_data, "rate": cfg.rate, "swap_every_s": cfg.swap_every,
                "mode": "open" if cfg.rate else "closed",
            },
            "levels": [level.to_json() for level in self.levels],
            "swap": self.swap,
        }


def cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


Progress = Callable[[str, int, int | None, float | None], Callable[[int], None]]


def _no_progress(label: str, level: int, total: int | None, duration: float | None):
    return lambda n: None


def run_level(target: Target, feeds: Sequence[Any], concurrency: int, cfg: BenchConfig,
              on_done: Callable[[int], None], t0: float | None = None,
              duration: float | None = None) -> LevelResult:
    """One measured level. `t0` anchors sample times (swap windows need a common clock)."""
    duration = cfg.duration if duration is None else duration
    reader = target.resource_reader()
    t0 = time.perf_counter() if t0 is None else t0
    cpu_before = time.process_time()
    begin = time.perf_counter()
    # /metrics is scraped less often than /proc is read: its cost lands on the client's CPU
    interval = 0.25 if target.remote else 0.05
    sampler = ResourceSampler(reader, interval, pool=target.pool_size) if reader else None
    if sampler:
        sampler.__enter__()
    try:
        if cfg.rate:
            samples = loadgen.run_open(target, feeds, concurrency, t0, cfg.rate,
                                       duration, cfg.requests, on_done)
        else:
            samples = loadgen.run_closed(target, feeds, concurrency, t0, duration,
                                         cfg.requests, on_done)
    finally:
        if sampler:
            sampler.__exit__(None, None, None)
    elapsed = time.perf_counter() - begin
    level = LevelResult(concurrency, elapsed, samples, batch=cfg.batch)
    if sampler:
        level.cpu_percent = sampler.cpu_percent
        level.peak_rss_mb = sampler.peak_rss_mb
        level.timeline = sampler.timeline(begin)
    if target.remote and samples:
        # The load generator's own CPU per request: it must stay small next to the server's.
        level.client_cpu_us_per_request = round(
            (time.process_time() - cpu_before) / len(samples) * 1e6, 1)
    return level


def warm_up(target: Target, feeds: Sequence[Any], cfg: BenchConfig) -> None:
    if cfg.warmup <= 0:
        return
    warm = BenchConfig(duration=cfg.warmup, batch=cfg.batch)
    level = run_level(target, feeds, max(cfg.concurrency), warm, lambda n: None)
    if level.samples and not level.ok:
        raise UserError(f"every warm-up request failed: {level.samples[0].error}")


def run_bench(target: Target, cfg: BenchConfig, progress: Progress = _no_progress,
              swapper: Callable[[], str] | None = None) -> BenchReport:
    cfg.check()
    feeds = make_feeds(target.inputs, cfg.batch, cfg.input_data)
    report = BenchReport(target.label, target.kind, cfg)
    warm_up(target, feeds, cfg)
    t0 = time.perf_counter()
    stop = threading.Event()
    swap_thread = None
    soak = _Soak(target, t0) if swapper is not None and cfg.swap_every else None
    if swapper is not None and cfg.swap_every:
        swap_thread = threading.Thread(
            target=_swap_loop, args=(swapper, cfg.swap_every, t0, stop, report.swap_events),
            name="bench-swapper", daemon=True)
        swap_thread.start()
    try:
        for concurrency in cfg.concurrency:
            tick = progress(target.label, concurrency, cfg.requests, cfg.duration)
            report.levels.append(run_level(target, feeds, concurrency, cfg, tick, t0))
    finally:
        stop.set()
        if swap_thread is not None:
            swap_thread.join()
    if swapper is not None and cfg.swap_every:
        samples = [s for level in report.levels for s in level.samples]
        by_level = {level.concurrency: level.samples for level in report.levels}
        report.swap = swap_section(report.swap_events, samples, by_level)
        if soak is not None:
            report.swap["soak"] = soak.finish(report.swap_events, settle=min(cfg.swap_every, 10.0))
    return report


class _Soak:
    """RSS over the whole swapping run, and fds/plugin mappings at its start and end, of the
    process under test (this one, or --pid's)."""

    def __init__(self, target: Target, t0: float):
        import os

        self.t0 = t0
        self.pid = getattr(target, "pid", None) if target.kind == "http" else os.getpid()
        self.start = process_facts(self.pid) if self.pid else None
        reader = target.resource_reader()
        self.sampler = ResourceSampler(reader, 0.25) if reader else None
        if self.sampler:
            self.sampler.__enter__()

    def finish(self, events: Sequence[SwapEvent], settle: float) -> dict[str, Any]:
        time.sleep(settle)  # the last swap drains and releases its old version
        end = self._steady_facts()
        trace: list[tuple[float, float]] = []
        if self.sampler:
            self.sampler.__exit__(None, None, None)
            trace = [(t - self.t0, rss) for t, rss in self.sampler.rss_trace]
        peak = self.sampler.peak_rss_mb if self.sampler else None
        return soak_section(events, trace, self.start, end, peak)

    def _steady_facts(self, within: float = 30.0) -> dict[str, int] | None:
        """The end facts once a load still in flight is done: the same for 3 s in a row."""
        if not self.pid:
            return None
        deadline = time.monotonic() + within
        last, same = process_facts(self.pid), 0
        while same < 3 and time.monotonic() < deadline:
            time.sleep(1.0)
            now = process_facts(self.pid)
            same = same + 1 if now == last else 0
            last = now
        return last


def _swap_loop(swapper: Callable[[], str], every: float, t0: float, stop: threading.Event,
               events: list[SwapEvent]) -> None:
    while not stop.wait(every):
        at = time.perf_counter() - t0
        try:
            version = swapper()
            events.append(SwapEvent(at, version))
        except Exception as exc:  # a failed publish is reported, it never stops the run
            events.append(SwapEvent(at, "?", str(exc).splitlines()[0] if str(exc) else "error"))


def run_compare(a: Target, b: Target, cfg: BenchConfig, rounds: int = 6,
                progress: Progress = _no_progress) -> tuple[BenchReport, BenchReport]:
    """Interleave A and B (A B A B ...) per concurrency level so drift hits both alike."""
    cfg.check()
    reports = []
    feeds = {}
    for target in (a, b):
        feeds[id(target)] = make_feeds(target.inputs, cfg.batch, cfg.input_data)
        warm_up(target, feeds[id(target)], cfg)
        reports.append(BenchReport(target.label, target.kind, cfg))
    per_round = (cfg.duration or 10.0) / rounds
    for concurrency in cfg.concurrency:
        merged: list[list[LevelResult]] = [[], []]
        ticks = [progress(t.label, concurrency, None, cfg.duration) for t in (a, b)]
        for _ in range(rounds):
            for index, target in enumerate((a, b)):
                round_cfg = BenchConfig(concurrency=cfg.concurrency, duration=per_round,
                                        batch=cfg.batch, rate=cfg.rate)
                merged[index].append(run_level(target, feeds[id(target)], concurrency,
                                               round_cfg, ticks[index], duration=per_round))
        for index in (0, 1):
            reports[index].levels.append(_merge(merged[index], cfg.batch))
    return reports[0], reports[1]


def _merge(levels: Sequence[LevelResult], batch: int) -> LevelResult:
    merged = LevelResult(levels[0].concurrency, sum(lv.duration for lv in levels), batch=batch)
    for level in levels:
        merged.samples.extend(level.samples)
    cpus = [lv.cpu_percent for lv in levels if lv.cpu_percent is not None]
    merged.cpu_percent = round(sum(cpus) / len(cpus), 1) if cpus else None
    rss = [lv.peak_rss_mb for lv in levels if lv.peak_rss_mb is not None]
    merged.peak_rss_mb = max(rss) if rss else None
    client = [lv.client_cpu_us_per_request for lv in levels
              if lv.client_cpu_us_per_request is not None]
    merged.client_cpu_us_per_request = round(sum(client) / len(client), 1) if client else None
    return merged


def compare_ratios(a: BenchReport, b: BenchReport) -> list[dict[str, Any]]:
    """B relative to A per concurrency level (throughput B/A, latency B/A)."""
    rows = []
    for la, lb in zip(a.levels, b.levels):
        pa, pb = la.latency_ms(), lb.latency_ms()
        rows.append({
            "concurrency": la.concurrency,
            "throughput_ratio": round(lb.throughput / la.throughput, 3) if la.throughput else None,
            "p50_ratio": _ratio(pb["p50"], pa["p50"]),
            "p99_ratio": _ratio(pb["p99"], pa["p99"]),
            "mean_delta_us": round((pb["mean"] - pa["mean"]) * 1000, 1)
            if pa["mean"] is not None and pb["mean"] is not None else None,
            "a": la.to_json(), "b": lb.to_json(),
        })
    return rows


def _ratio(x: float | None, y: float | None) -> float | None:
    return round(x / y, 3) if x and y else None
