"""Prometheus metrics for the server, fed by Manager events and the request path.

A registry per server (no global state); breaker states, pool sizes and loaded versions are
read from the Manager at scrape time by a custom collector.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from paddlehot_cli.core.breaker import STATE_CODE

log = logging.getLogger("paddlehot.serve")

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class _ManagerCollector:
    def __init__(self, manager: Any):
        self.manager = manager

    def collect(self):
        loaded = GaugeMetricFamily("paddlehot_version_loaded", "1 for each loaded version",
                                   labels=["model", "version"])
        breaker = GaugeMetricFamily(
            "paddlehot_breaker_state", "Breaker state per version: 0 closed, 1 half-open, 2 open",
            labels=["model", "version"])
        pool = GaugeMetricFamily("paddlehot_pool_size", "Predictors in the version's pool",
                                 labels=["model", "version"])
        inflight = GaugeMetricFamily("paddlehot_handles_in_flight", "Handles held by requests",
                                     labels=["model", "version"])
        queued = GaugeMetricFamily("paddlehot_queue_depth",
                                   "Requests waiting in the version's queue (bounded: --max-queue)",
                                   labels=["model", "version"])
        for ref in self.manager.serving_versions():
            lv = [ref.model, ref.version]
            loaded.add_metric(lv, 1)
            breaker.add_metric(lv, STATE_CODE[ref.breaker.state])
            pool.add_metric(lv, ref.servable.pool_size)
            inflight.add_metric(lv, ref.refs)
            queued.add_metric(lv, ref.batcher.waiting)
        ready = GaugeMetricFamily("paddlehot_ready", "1 when every configured model is loaded")
        ready.add_metric([], 1 if self.manager.ready() else 0)
        # a server whose versions are all plugins never imports it (~60 MB less resident)
        paddle = GaugeMetricFamily("paddlehot_paddle_python_imported",
                                   "1 once the paddle Python package is imported in this process")
        paddle.add_metric([], 1 if "paddle" in sys.modules else 0)
        return [loaded, breaker, pool, inflight, queued, ready, paddle,
                *_pool_counters(self.manager)]


# PoolCounters field -> (metric name, help)
_POOL_COUNTERS = {
    "grown": ("paddlehot_pool_grown", "Predictors the pool grew in the background"),
    "reclaimed": ("paddlehot_pool_reclaimed", "Idle predictors released (timer or shrink)"),
    "refused": ("paddlehot_pool_growth_refused", "Growths the memory budget refused"),
    "failed": ("paddlehot_pool_growth_failed", "Growths that failed (logged, retried later)"),
    "renewed": ("paddlehot_pool_renewed",
                "Stale predictors renewed in the background (a thread that ran them exited)"),
}


def _pool_counters(manager: Any) -> list:
    """Per-version pool counters (core/pool.py), and the process's memory budget."""
    from paddlehot_cli.core.memory_budget import budget

    families = {k: CounterMetricFamily(name, text, labels=["model", "version"])
                for k, (name, text) in _POOL_COUNTERS.items()}
    for ref in manager.serving_versions():
        pool = ref.servable.pool  # Servable.pool (None: nothing that breathes)
        if pool is None:
            continue
        for key, family in families.items():
            family.add_metric([ref.model, ref.version], getattr(pool.counters, key))
    limit = GaugeMetricFamily("paddlehot_memory_budget_bytes",
                              "serve --memory-budget (0: no limit)")
    b = budget()
    limit.add_metric([], b.limit or 0)
    refused = CounterMetricFamily("paddlehot_loads_refused_by_budget",
                                  "Loads the memory budget refused")
    refused.add_metric([], b.refused_loads)
    return [*families.values(), limit, refused]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_cpu_seconds_total and process_resident_memory_bytes: what a bench reads
        ProcessCollector(registry=r)
        # protocol: "http" or "grpc" (the gRPC front end, serve/grpc_server.py)
        self.requests = Counter("paddlehot_requests", "Inference requests",
                                ["model", "version", "outcome", "protocol"], registry=r)
        self.latency = Histogram("paddlehot_request_seconds", "Inference request latency",
                                 ["model", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("paddlehot_rejected_requests", "Requests rejected before a version ran",
                                ["reason"], registry=r)
        self.swaps = Counter("paddlehot_swaps", "Changes of a model's newest served version",
                             ["model"], registry=r)
        self.loads = Counter("paddlehot_loads", "Versions loaded and warmed", ["model"], registry=r)
        self.load_failures = Counter("paddlehot_load_failures", "Versions that failed to load or warm",
                                     ["model", "version"], registry=r)
        self.invalid = Counter("paddlehot_invalid_versions",
                               "Version dirs ignored: bad checksum, truncated, missing file",
                               ["model", "version"], registry=r)
        self.unloads = Counter("paddlehot_unloads", "Versions released", ["model"], registry=r)
        self.breaker_changes = Counter("paddlehot_breaker_transitions", "Breaker state changes",
                                       ["model", "version", "to"], registry=r)
        self.rollbacks = Counter("paddlehot_rollbacks", "Automatic rollbacks (breaker open on the newest)",
                                 ["model", "version"], registry=r)
        self.recoveries = Counter("paddlehot_recoveries",
                                  "Rollbacks undone: the newest version passed its breaker trial",
                                  ["model", "version"], registry=r)
        self._children: dict[tuple, tuple] = {}

    def attach(self, manager: Any) -> None:
        self.registry.register(_ManagerCollector(manager))

    def observe(self, model: str, version: str, outcome: str, seconds: float,
                protocol: str = "http") -> None:
        key = (model, version, outcome, protocol)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self.requests.labels(model, version, outcome, protocol),
                self.latency.labels(model, version))
        child[0].inc()
        child[1].observe(seconds)

    def on_event(self, kind: str, model: str, version: str | None, info: dict) -> None:
        if kind == "swap":
            self.swaps.labels(model).inc()
            log.info("serving %s %s (was %s)", model, version, info.get("from"))
        elif kind == "loaded":
            self.loads.labels(model).inc()
        elif kind == "load_failed":
            self.load_failures.labels(model, version or "").inc()
        elif kind == "invalid":
            self.invalid.labels(model, version or "").inc()
        elif kind == "unloaded":
            self.unloads.labels(model).inc()
            for key in [k for k in self._children if k[0] == model and k[1] == version]:
                self._children.pop(key, None)
        elif kind == "breaker":
            self.breaker_changes.labels(model, version or "", info["to"]).inc()
        elif kind == "rollback":
            self.rollbacks.labels(model, version or "").inc()
        elif kind == "recovered":
            self.recoveries.labels(model, version or "").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
