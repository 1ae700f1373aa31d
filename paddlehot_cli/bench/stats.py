"""Latency statistics over recorded requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass
class Sample:
    start: float  # seconds since the run began
    latency: float  # seconds
    ok: bool
    version: str | None = None
    error: str | None = None


@dataclass
class LevelResult:
    """Everything measured at one concurrency level (or one rate)."""

    concurrency: int
    duration: float
    samples: list[Sample] = field(default_factory=list)
    cpu_percent: float | None = None  # of the process under test, 100 = one core
    peak_rss_mb: float | None = None
    client_cpu_us_per_request: float | None = None
    batch: int = 1
    # (seconds into the level, RSS MB, predictors in the pool or None): what a breathing pool did
    timeline: list[tuple[float, float, int | None]] = field(default_factory=list)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> int:
        return sum(not s.ok for s in self.samples)

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.duration if self.duration > 0 else 0.0

    def latency_ms(self) -> dict[str, float | None]:
        return latency_summary([s.latency for s in self.ok])

    def error_kinds(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for s in self.samples:
            if not s.ok:
                key = (s.error or "error")[:120]
                kinds[key] = kinds.get(key, 0) + 1
        return kinds

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "duration_s": round(self.duration, 4),
            "requests": len(self.samples),
            "ok": len(self.ok),
            "errors": self.errors,
            "error_kinds": self.error_kinds(),
            "throughput_rps": round(self.throughput, 3),
            "items_per_s": round(self.throughput * self.batch, 3),
            "latency_ms": self.latency_ms(),
            "cpu_percent": self.cpu_percent,
            "peak_rss_mb": self.peak_rss_mb,
            "client_cpu_us_per_request": self.client_cpu_us_per_request,
            "timeline": [{"t_s": t, "rss_mb": rss, "pool_size": pool}
                         for t, rss, pool in self.timeline],
        }


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    keys = ["p50", "p90", "p99", "p99.9", "max", "mean"]
    if not latencies_s:
        return {k: None for k in keys}
    arr = np.asarray(latencies_s) * 1000.0
    values = list(np.percentile(arr, PERCENTILES)) + [float(arr.max()), float(arr.mean())]
    return {k: round(float(v), 4) for k, v in zip(keys, values)}
