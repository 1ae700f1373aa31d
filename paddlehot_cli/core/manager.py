"""The Manager: carries out a swap policy's actions on what the Source says is available.

It owns all mutable serving state: per model, the available versions, the loaded ones (typed
`ServingVersion`s), failures, labels, and the routing table. The *decisions* live elsewhere:
the version policy (`version_policy.py`) says which versions are aspired, the swap policy
(`policies/`) says the next action (load / unload), the router (`router.py`) picks a version
per request, the breaker (`breaker.py`) takes a failing version out of routing.

Threads: loads and unloads run on one named thread ("paddlehot-manager"); routing (`acquire`)
reads an immutable per-model table that a flip replaces in one assignment (no lock on the
request path). Events go to an `on_event(kind, model, version, info)` callback (metrics,
logs): no prometheus import in core.

Public surface (what serve/app.py, the gRPC front end and bench call):
  hot path     acquire(model, selector) -> Handle; submit(handle, feeds, done)
  sources      set_available, report_invalid, report_scan_error, set_labels, rescan (attribute)
  admin        load_model, unload_model
  status       models, ready, model_ready, loaded_versions, servable, labels, status,
               serving_versions, wait_idle, stop
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core import cpu_affinity, router
from paddlehot_cli.core.batcher import Batcher
from paddlehot_cli.core.breaker import CLOSED, HALF_OPEN, OPEN, TRIAL, Breaker
from paddlehot_cli.core.handles import Handle, VersionRef
from paddlehot_cli.core.policies import (
    Action,
    AvailabilityPreservingPolicy,
    Load,
    ResourcePreservingPolicy,
    Unload,
    VersionSnapshot,
)
from paddlehot_cli.core.router import Labels, NotLoaded, Unavailable
from paddlehot_cli.core.servable import Servable
from paddlehot_cli.core.serving_version import ServingVersion
from paddlehot_cli.core.thread_priority import can_unnice, run_niced, trim_heap
from paddlehot_cli.core.version_policy import VersionPolicy
from paddlehot_cli.core.versions import sort_key
from paddlehot_cli.core.warmup import warm
from paddlehot_cli.errors import InputMismatch, UserError, short_error

log = logging.getLogger("paddlehot.manager")

OnEvent = Callable[[str, str, "str | None", dict], None]
Loader = Callable[[Path], Servable]
_MAX_ACTIONS = 1000  # per reconcile: a policy bug must not spin the manager thread forever


@dataclass
class ManagerConfig:
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    resource_preserving: bool = False
    max_batch: int = 1
    batch_delay_s: float = 0.0
    workers: int = 1
    # requests waiting per version beyond those running (0: 32 per worker and batch slot)
    max_queue: int = 0
    warmup: bool = True
    warmup_cases: int = 1  # validation cases run at warm-up, smallest first (0 = all)
    # unload versions that the new one pushes out of the aspired set before loading it, so at
    # most one version more than steady state is alive (never the last healthy one)
    retire_before_load: bool = True
    warmup_atol: float = 1e-4
    warmup_rtol: float = 1e-3
    breaker: dict = field(default_factory=dict)  # Breaker keyword arguments
    drain_timeout_s: float = 30.0
    load_nice: int = 10  # loads run at a lower CPU priority than serving (Linux, per thread)
    # the CPU of serve's event loop: workers of GIL-bound versions run there too (cpu_affinity.py)
    gil_cpu: int | None = None

    def swap_policy(self) -> AvailabilityPreservingPolicy | ResourcePreservingPolicy:
        if self.resource_preserving:
            return ResourcePreservingPolicy()
        return AvailabilityPreservingPolicy(unload_leaving_first=self.retire_before_load)

    def queue_limit(self) -> int:
        auto = 32 * max(1, self.workers) * max(1, self.max_batch)
        return self.max_queue if self.max_queue > 0 else auto


@dataclass(frozen=True)
class _Table:
    """What routing reads: immutable, replaced whole on every flip."""

    ordered: list  # versions, newest first
    refs: Mapping[str, ServingVersion]
    labels: Labels


_EMPTY = _Table([], {}, Labels())


class _Model:
    def __init__(self, name: str):
        self.name = name
        self.enabled = True
        self.available: dict[str, Path] = {}
        self.failed: dict[str, tuple[str, str]] = {}  # version -> (path signature, reason)
        self.invalid: dict[str, str] = {}  # version -> why the Source rejected it
        self.file_labels = Labels()
        self.admin_labels: Labels | None = None
        self.loaded: dict[str, ServingVersion] = {}
        self.loading: str | None = None
        self.table: _Table = _EMPTY
        self.newest: str | None = None

    @property
    def labels(self) -> Labels:
        return self.admin_labels if self.admin_labels is not None else self.file_labels


def _path_sig(path: Path) -> str:
    """Changes when the version dir's files change (a failed version is retried then)."""
    try:
        entries = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(path))
    except OSError:
        return str(path)
    return f"{path}:{entries}"


class Manager:
    def __init__(
        self,
        loader: Loader,
        config: ManagerConfig | None = None,
        on_event: OnEvent | None = None,
        rng: Callable[[], float] = random.random,
    ):
        self._loader = loader
        self.config = config or ManagerConfig()
        self._policy = self.config.swap_policy()
        self._on_event = on_event or (lambda kind, model, version, info: None)
        self._rng = rng
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()
        self._tasks: queue.Queue = queue.Queue()
        self._pending: set[str] = set()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self.rescan: Callable[[str], None] | None = None  # set by whoever owns the Source
        self._scan_error: str | None = None  # the Source cannot read the repository now
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="paddlehot-manager", daemon=True)
        self._thread.start()

    # -- hot path -------------------------------------------------------------------------

    def acquire(self, model: str, selector: str | None = None) -> Handle:
        """A handle on the version that serves this request; raise NotLoaded/Unavailable.

        Release it on every path (`try/finally: handle.release()`); `submit` takes it over.
        """
        m = self._models.get(model)
        if m is None or not m.enabled:
            raise NotLoaded(f"unknown model '{model}'")
        for _ in range(5):
            table = m.table
            refs = table.refs
            grants: dict[str, str] = {}

            def allow(v: str) -> bool:
                grant = refs[v].breaker.admit()
                if grant is not None:
                    grants[v] = grant
                return grant is not None

            version = None
            try:
                version = router.select(
                    table.ordered, selector, table.labels, allow=allow,
                    healthy=lambda v: refs[v].breaker.healthy(), rnd=self._rng(), model=model,
                )
            finally:
                for v, grant in grants.items():  # a trial granted but not used goes back
                    if grant == TRIAL and v != version:
                        refs[v].breaker.release_trial()
            handle = refs[version].open_handle(grants[version])
            if handle is not None:
                return handle
        raise Unavailable(f"model '{model}' is being swapped; retry")

    def submit(self, handle: Handle, feeds: Mapping[str, np.ndarray],
               done: Callable[[Any, BaseException | None], None]) -> None:
        """Run checked inputs on the handle's version; `done` runs on the worker thread.

        Takes the handle over in every case: it is released after `done` (even if the caller
        went away), or at once if this raises (QueueFull, BatcherStopped: nothing was queued).
        The caller's own `handle.release()` is then a no-op.
        """
        ref: ServingVersion = handle.ref  # type: ignore[assignment]
        breaker = ref.breaker
        trial = ServingVersion.holds_trial(handle)
        held = handle.transfer()

        def finish(out: Any, exc: BaseException | None) -> None:
            try:
                if not isinstance(exc, InputMismatch):
                    held.on_release = None  # a verdict: the trial ends here
                    breaker.record(exc is None, trial=trial)
                done(out, exc)
            finally:
                held.release()

        try:
            ref.batcher.submit(feeds, finish)
        except BaseException:
            held.release()
            raise

    # -- inputs from sources and the admin API -------------------------------------------

    def set_available(self, model: str, versions: Mapping[str, Path], labels: object = None) -> None:
        """What the Source sees on disk for one model (complete, verified versions only)."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                m = self._models[model] = _Model(model)
            m.available = dict(versions)
            for v in m.available:
                m.invalid.pop(v, None)
            if labels is not None:
                try:
                    m.file_labels = Labels.from_json(labels, f"{model}/labels.json")
                except ValueError as exc:
                    log.warning("ignoring labels: %s", exc)
            else:
                m.file_labels = Labels()
            self._flip(m)
        self._schedule(model)

    def report_invalid(self, model: str, version: str, reason: str | None) -> None:
        """The Source rejected a version dir (bad checksum, ...); None: it is gone or fixed."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                m = self._models[model] = _Model(model)
            if reason is None:
                m.invalid.pop(version, None)
                return
            m.invalid[version] = reason
        self._on_event("invalid", model, version, {"reason": reason})

    def report_scan_error(self, message: str | None) -> None:
        """The Source could not read the repository (None: it can again). Nothing is unloaded
        for it; the index shows it on every row until it clears."""
        self._scan_error = message

    def set_labels(self, model: str, labels: Labels | None) -> None:
        with self._lock:
            m = self._need(model)
            m.admin_labels = labels
            self._flip(m)
        self._schedule(model)

    def load_model(self, model: str, timeout: float = 120.0) -> None:
        with self._lock:
            m = self._models.get(model)
            if m is not None:
                m.enabled = True
                m.failed.clear()  # an explicit load retries versions that failed
        if self.rescan is not None:
            self.rescan(model)
        if model not in self._models:
            raise NotLoaded(f"unknown model '{model}'")
        self._schedule(model)
        self.wait_idle(timeout)
        if not self._models[model].loaded:
            reasons = "; ".join(r for _, r in self._models[model].failed.values())
            raise Unavailable(f"model '{model}' has no version that loads" + (f": {reasons}" if reasons else ""))

    def unload_model(self, model: str, timeout: float = 60.0) -> None:
        with self._lock:
            self._need(model).enabled = False
        self._schedule(model)
        self.wait_idle(timeout)

    def _need(self, model: str) -> _Model:
        m = self._models.get(model)
        if m is None:
            raise NotLoaded(f"unknown model '{model}'")
        return m

    # -- status ---------------------------------------------------------------------------

    def models(self) -> list[str]:
        return sorted(self._models)

    def ready(self) -> bool:
        with self._lock:
            enabled = [m for m in self._models.values() if m.enabled]
            return bool(enabled) and all(m.table.ordered for m in enabled)

    def model_ready(self, model: str, version: str | None = None) -> bool:
        m = self._models.get(model)
        if m is None or not m.enabled:
            return False
        if version is None:
            return bool(m.table.ordered)
        return version in m.table.refs

    def loaded_versions(self, model: str) -> list[str]:
        m = self._models.get(model)
        return list(m.table.ordered) if m is not None and m.enabled else []

    def servable(self, model: str, version: str | None = None) -> Servable:
        m = self._models.get(model)
        if m is None or not m.enabled or not m.table.ordered:
            raise NotLoaded(f"unknown model '{model}'" if m is None else f"model '{model}' has no version loaded")
        v = version or m.table.ordered[0]
        if v not in m.table.refs:
            raise NotLoaded(f"version '{v}' of model '{model}' is not loaded")
        return m.table.refs[v].servable

    def labels(self, model: str) -> Labels:
        return self._need(model).labels

    def status(self) -> list[dict]:
        """One row per (model, version) known: state READY / LOADING / UNAVAILABLE and reason
        (a version the Source rejected is UNAVAILABLE with its reason)."""
        rows = []
        with self._lock:
            for name in sorted(self._models):
                rows.extend(self._status_rows(self._models[name]))
        if self._scan_error is not None:
            rows = [{**row, "repository_error": self._scan_error} for row in rows]
        return rows

    def _status_rows(self, m: _Model) -> list[dict]:
        versions = set(m.available) | set(m.loaded) | set(m.failed) | set(m.invalid)
        if not versions:
            return [{"name": m.name, "version": "", "state": "UNAVAILABLE",
                     "reason": "no complete version in the repository"}]
        rows = []
        for v in sorted(versions, key=sort_key, reverse=True):
            ref = m.loaded.get(v)
            if ref is not None and m.enabled:
                state = ref.breaker.state
                rows.append({"name": m.name, "version": v, "state": "READY", "breaker": state,
                             "reason": "" if state == CLOSED else f"breaker {state}"})
            elif m.loading == v:
                rows.append({"name": m.name, "version": v, "state": "LOADING", "reason": ""})
            else:
                reason = (m.invalid.get(v) or (m.failed[v][1] if v in m.failed else None)
                          or ("unloaded" if not m.enabled else "not selected by the version policy"))
                rows.append({"name": m.name, "version": v, "state": "UNAVAILABLE", "reason": reason})
        return rows

    def serving_versions(self) -> list[ServingVersion]:
        """Every loaded version (for metrics: breaker state, pool size, handles in flight)."""
        with self._lock:
            return [r for m in self._models.values() for r in m.loaded.values()]

    loaded_refs = serving_versions  # the name bench and older callers use

    # -- the manager thread ---------------------------------------------------------------

    def _schedule(self, model: str) -> None:
        with self._lock:
            if self._stopping or model in self._pending:
                return
            self._pending.add(model)
            self._busy += 1
        self._tasks.put(("reconcile", model))

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _work(self) -> None:
        while True:
            kind, arg = self._tasks.get()
            if kind == "stop":
                return
            try:
                if kind == "reconcile":
                    with self._lock:
                        self._pending.discard(arg)
                    self._reconcile(arg)
                elif kind == "finalize":
                    self._finalize(arg)
            except Exception:
                log.exception("manager task %s %s failed", kind, arg)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _aspired(self, m: _Model) -> set[str]:
        if not m.enabled:
            return set()
        failed = {v for v, (sig, _) in m.failed.items()
                  if v in m.available and sig == _path_sig(m.available[v])}
        pinned = set(m.labels.labels.values())
        return self.config.policy.aspired(m.available, failed, pinned)

    def _snapshot(self, m: _Model) -> list[VersionSnapshot]:
        with self._lock:
            aspired = self._aspired(m)
            versions = sorted(aspired | set(m.loaded), key=sort_key, reverse=True)
            return [VersionSnapshot(v, v in aspired, v in m.loaded,
                                    v in m.loaded and m.loaded[v].breaker.healthy())
                    for v in versions]

    def _reconcile(self, model: str) -> None:
        """Ask the swap policy for the next action and carry it out, until it says none."""
        m = self._models[model]
        for _ in range(_MAX_ACTIONS):
            if self._stopping:
                return
            action: Action | None = self._policy.next_action(self._snapshot(m))
            if action is None:
                break
            log.debug("%s: %s", model, action)
            if isinstance(action, Load):
                self._load(m, action.version)
            elif isinstance(action, Unload):
                self._retire(m, action.version, wait=action.drain)
        else:
            log.error("model %s: the swap policy did not settle after %d actions", model, _MAX_ACTIONS)
        if isinstance(self._policy, ResourcePreservingPolicy) and not m.loaded and m.enabled:
            log.error("model %s has no version loaded", model)

    def _load(self, m: _Model, version: str) -> None:
        path = m.available[version]
        m.loading = version
        self._on_event("loading", m.name, version, {"path": str(path)})
        start = time.perf_counter()
        servable = None
        batcher = None
        try:
            servable = self._load_niced(path)
            if servable.manifest.name != m.name or servable.manifest.version != version:
                raise UserError(f"{path}: the manifest names {servable.manifest.name} {servable.manifest.version}")
            batcher = self._make_batcher(m.name, version, servable)
            if self.config.warmup:
                warm(servable, path, batcher, cases=self.config.warmup_cases,
                     atol=self.config.warmup_atol, rtol=self.config.warmup_rtol,
                     timeout_s=self.config.drain_timeout_s * 4)
            if self.config.gil_cpu is not None and getattr(servable, "gil_bound", False):
                # after the warm-up: Paddle's first run on a thread resets its CPU mask (the
                # OpenMP runtime), and the threads that run started stay off the loop's CPU
                for tid in batcher.native_ids:
                    cpu_affinity.pin_thread(tid, self.config.gil_cpu)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the serving version
            self._load_failed(m, version, path, exc, servable, batcher)
            return
        seconds = time.perf_counter() - start
        ref = ServingVersion(
            m.name, version, servable, batcher,
            Breaker(on_change=lambda old, new, v=version: self._breaker_changed(m, v, old, new),
                    **self.config.breaker),
            self._released,
        )
        with self._lock:
            m.loaded[version] = ref
            m.loading = None
            m.failed.pop(version, None)
            self._flip(m)
        log.info("loaded %s %s (%s) in %.2f s", m.name, version,
                 getattr(servable, "kind", "package"), seconds)
        self._on_event("loaded", m.name, version, {"seconds": seconds, "path": str(path)})

    def _make_batcher(self, model: str, version: str, servable: Servable) -> Batcher:
        names = [s.name for s in servable.manifest.inputs]
        batchable = all(s.shape and s.shape[0] == -1 for s in servable.manifest.inputs)
        # serving.json hook (issue 13): the loader may set per-model batching on the servable
        max_batch, delay_s, workers = getattr(servable, "batching", None) or (
            self.config.max_batch, self.config.batch_delay_s, self.config.workers)
        return Batcher(
            servable.run_checked, names, batchable=batchable, max_batch=max_batch,
            max_delay_s=delay_s, workers=workers,
            max_queue=replace(self.config, max_batch=max_batch, workers=workers).queue_limit(),
            name=f"paddlehot-infer-{model}-{version}",
        )

    def _load_failed(self, m: _Model, version: str, path: Path, exc: Exception,
                     servable: Servable | None, batcher: Batcher | None) -> None:
        reason = exc.message if isinstance(exc, UserError) else short_error(exc)
        if batcher is not None:
            batcher.stop()
        if servable is not None:
            try:
                servable.close()
            except Exception:  # noqa: BLE001
                pass
        with self._lock:
            m.failed[version] = (_path_sig(path), reason)
            m.loading = None
        log.error("loading %s %s failed, serving version unchanged: %s", m.name, version, reason)
        self._on_event("load_failed", m.name, version, {"reason": reason})

    def _load_niced(self, path: Path) -> Servable:
        """The loader on its own thread, niced while something else is serving."""
        nice = self.config.load_nice if can_unnice() and self._serving() else 0
        return run_niced(lambda: self._loader(path), nice,
                         name=f"paddlehot-load-{path.parent.name}-{path.name}")

    def _serving(self) -> bool:
        with self._lock:
            return any(m.loaded for m in self._models.values())

    def _flip(self, m: _Model) -> None:
        """Publish a new routing table (called with the lock held)."""
        ordered = sorted(m.loaded if m.enabled else (), key=sort_key, reverse=True)
        m.table = _Table(ordered, {v: m.loaded[v] for v in ordered}, m.labels)
        newest = ordered[0] if ordered else None
        if newest != m.newest:
            old, m.newest = m.newest, newest
            if not self._stopping:  # releasing everything at shutdown is not a swap
                self._on_event("swap", m.name, newest, {"from": old})

    def _retire(self, m: _Model, version: str, wait: bool) -> None:
        with self._lock:
            ref = m.loaded.pop(version)
            self._flip(m)
        self._on_event("retiring", m.name, version, {"in_flight": ref.refs})
        ref.retire()
        if wait:
            self._drain(ref)

    def _drain(self, ref: ServingVersion) -> None:
        deadline = time.monotonic() + self.config.drain_timeout_s
        while not ref.released and time.monotonic() < deadline:
            time.sleep(0.005)
        # the finalize task was queued behind us: run it now so memory is free before the load
        if ref.released and not ref.finalized:
            self._finalize(ref)

    def _released(self, ref: VersionRef) -> None:
        with self._lock:
            if self._stopping and not self._thread.is_alive():
                self._finalize(ref)  # type: ignore[arg-type]
                return
            self._busy += 1
        self._tasks.put(("finalize", ref))

    def _finalize(self, ref: ServingVersion) -> None:
        if ref.finalized:
            return
        ref.finalized = True
        ref.batcher.stop()
        try:
            ref.servable.close()
        except Exception:
            log.exception("closing %s %s failed", ref.model, ref.version)
        ref.servable = None
        trim_heap()
        log.info("released %s %s", ref.model, ref.version)
        self._on_event("unloaded", ref.model, ref.version, {})

    def _breaker_changed(self, m: _Model, version: str, old: str, new: str) -> None:
        """Breakers change routing by themselves (router skips open ones); here we say so."""
        log.warning("breaker of %s %s: %s -> %s", m.name, version, old, new)
        self._on_event("breaker", m.name, version, {"from": old, "to": new})
        table = m.table
        if not table.ordered or table.ordered[0] != version:
            return
        if new == OPEN and old == CLOSED:
            fallback = next((v for v in table.ordered[1:] if table.refs[v].breaker.healthy()), None)
            log.warning("rollback: %s %s is failing; traffic goes to %s until a trial succeeds "
                        "(one per %.0f s)", m.name, version, fallback or "nothing (no healthy version)",
                        table.refs[version].breaker.cooldown_s)
            self._on_event("rollback", m.name, version, {"to": fallback})
        elif new == CLOSED and old == HALF_OPEN:
            log.warning("recovery: %s %s passed its trial; traffic returns to it", m.name, version)
            self._on_event("recovered", m.name, version, {})

    # -- shutdown -------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """Retire every version (in-flight requests finish), release them, stop the thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            refs = [(m, v) for m in self._models.values() for v in list(m.loaded)]
        for m, v in refs:
            self._retire(m, v, wait=False)
        self.wait_idle(timeout)
        self._tasks.put(("stop", None))
        self._thread.join(timeout)
