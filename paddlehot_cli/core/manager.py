"""The Manager: carries out a swap policy's actions on what the Source says is available.

It owns all mutable serving state (one `ModelState` per model: available, loaded, failed,
labels, the routing table) and does only this: take inputs, ask the policy, carry out its
actions, flip tables, drain and release. Everything else lives beside it: the version policy
(`version_policy.py`) says which versions are aspired, the swap policy (`policies/`) the next
action, the load harness (`load_harness.py`) turns a directory into a warmed version, the router
(`router.py`) picks a version per request, the breaker (`breaker.py`) takes a failing version
out of routing, `status_rows.py` renders the index.

Threads: loads and unloads run on one named thread ("paddlehot-manager"); routing (`acquire`)
reads an immutable per-model table that a flip replaces in one assignment (no lock on the
request path). Events go to an `on_event(kind, model, version, info)` callback (metrics,
logs): no prometheus import in core.

Public surface (what serve/app.py, the gRPC front end and bench call):
  hot path     acquire(model, selector) -> Handle; submit(handle, feeds, done)
  sources      set_available, report_invalid, report_scan_error, set_labels, rescan (attribute)
  admin        load_model (also lifts the model's quarantine), unload_model
  status       models, ready, model_ready, loaded_versions, servable, labels, status,
               serving_versions, wait_idle, stop
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core import pool_swaps
from paddlehot_cli.core.admission import admit, run_admitted
from paddlehot_cli.core.breaker import Breaker
from paddlehot_cli.core.handles import Handle, VersionRef
from paddlehot_cli.core.load_harness import Loader, LoadFailed, LoadHarness
from paddlehot_cli.core.manager_config import ManagerConfig
from paddlehot_cli.core.manager_queries import ManagerQueries
from paddlehot_cli.core.model_state import ModelState, path_signature
from paddlehot_cli.core.policies import Action, Load, Unload
from paddlehot_cli.core.pool_keeper import shared_keeper
from paddlehot_cli.core.quarantine import Quarantine
from paddlehot_cli.core.rollback_log import breaker_changed
from paddlehot_cli.core.router import Labels, NotLoaded, Unavailable
from paddlehot_cli.core.serving_version import ServingVersion
from paddlehot_cli.core.task_thread import TaskThread

log = logging.getLogger("paddlehot.manager")

OnEvent = Callable[[str, str, "str | None", dict], None]
_MAX_ACTIONS = 1000  # per reconcile: a policy bug must not spin the manager thread forever


class Manager(ManagerQueries):
    def __init__(
        self,
        loader: Loader,
        config: ManagerConfig | None = None,
        on_event: OnEvent | None = None,
        rng: Callable[[], float] = random.random,
        quarantine: Quarantine | None = None,
    ):
        self.config = config or ManagerConfig()
        # growing a pool is a small load: the keeper runs at the loads' priority
        shared_keeper().nice = self.config.load_nice
        self._quarantine = quarantine or Quarantine(None)  # versions that killed the process
        self._harness = LoadHarness(loader, self.config.harness(), self._quarantine)
        self._policy = self.config.swap_policy()
        self._on_event = on_event or (lambda kind, model, version, info: None)
        self._rng = rng
        self._models: dict[str, ModelState] = {}
        self._lock = threading.RLock()
        self.rescan: Callable[[str], None] | None = None  # set by whoever owns the Source
        self._scan_error: str | None = None  # the Source cannot read the repository now
        self._stopping = False
        self._tasks = TaskThread("paddlehot-manager", self._run_task, self._lock)

    # -- hot path -------------------------------------------------------------------------

    def acquire(self, model: str, selector: str | None = None) -> Handle:
        """A handle on the version that serves this request; raise NotLoaded/Unavailable.

        Release it on every path (`try/finally: handle.release()`); `submit` takes it over.
        """
        m = self._models.get(model)
        if m is None or not m.enabled:
            raise NotLoaded(f"unknown model '{model}'")
        return admit(lambda: m.table, model, selector, self._rng())

    def submit(self, handle: Handle, feeds: Mapping[str, np.ndarray],
               done: Callable[[Any, BaseException | None], None]) -> None:
        """Run checked inputs on the handle's version; `done` runs on the worker thread.

        Takes the handle over in every case: it is released after `done` (even if the caller
        went away), or at once if this raises (QueueFull, BatcherStopped: nothing was queued).
        The caller's own `handle.release()` is then a no-op.
        """
        run_admitted(handle, feeds, done)

    # -- inputs from sources and the admin API -------------------------------------------

    def set_available(self, model: str, versions: Mapping[str, Path], labels: object = None) -> None:
        """What the Source sees on disk for one model (complete, verified versions only)."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                m = self._models[model] = ModelState(model)
            m.available = dict(versions)
            for v in m.available:
                m.invalid.pop(v, None)
            for v in [v for v in m.failed if v not in m.available]:  # deleted: its row goes
                del m.failed[v]
            m.failed.update(self._quarantine.blocked(model, m.available))
            m.set_file_labels(labels)
            self._flip(m)
        self._schedule(model)

    def report_invalid(self, model: str, version: str, reason: str | None) -> None:
        """The Source rejected a version dir (bad checksum, ...); None: it is gone or fixed."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                m = self._models[model] = ModelState(model)
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
                self._quarantine.lift(model)  # and those that killed the process
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

    # -- the manager thread ---------------------------------------------------------------

    def _schedule(self, model: str) -> None:
        with self._lock:
            if not self._stopping:
                self._tasks.put("reconcile", model, key=model)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._tasks.wait_idle(timeout)

    def _run_task(self, kind: str, arg: Any) -> None:
        if kind == "reconcile":
            self._reconcile(arg)
        elif kind == "finalize":
            self._finalize(arg)

    def _reconcile(self, model: str) -> None:
        """Ask the swap policy for the next action and carry it out, until it says none."""
        m = self._models[model]
        for _ in range(_MAX_ACTIONS):
            if self._stopping:
                return
            with self._lock:
                snapshot = m.snapshot(self.config.policy)
            action: Action | None = self._policy.next_action(snapshot)
            if action is None:
                break
            log.debug("%s: %s", model, action)
            if isinstance(action, Load):
                self._load(m, action.version)
            elif isinstance(action, Unload):
                self._retire(m, action.version, wait=action.drain)
        else:
            log.error("model %s: the swap policy did not settle after %d actions", model, _MAX_ACTIONS)
        if m.enabled and m.available and not m.loaded:
            log.error("model %s has no version loaded", model)

    def _load(self, m: ModelState, version: str) -> None:
        path = m.available[version]
        m.loading = version
        self._on_event("loading", m.name, version, {"path": str(path)})
        start = time.perf_counter()
        try:
            ready = self._harness.load(m.name, version, path, others_serving=self._serving())
        except LoadFailed as exc:
            with self._lock:
                m.failed[version] = (path_signature(path), exc.reason)
                m.loading = None
            log.error("loading %s %s failed, serving version unchanged: %s", m.name, version,
                      exc.reason)
            self._on_event("load_failed", m.name, version, {"reason": exc.reason})
            return
        seconds = time.perf_counter() - start
        ref = ServingVersion(
            m.name, version, ready.loaded.servable, ready.batcher,
            Breaker(on_change=lambda old, new, v=version: self._breaker_changed(m, v, old, new),
                    **self.config.breaker),
            self._released, settings=ready.loaded.settings,
        )
        with self._lock:
            m.loaded[version] = ref
            m.loading = None
            m.failed.pop(version, None)
            self._flip(m)
            kept = list(m.loaded.values())
        pool_swaps.shrink_older(kept, m.newest)  # the one kept for rollback holds only its min
        log.info("loaded %s %s (%s) in %.2f s", m.name, version, ready.loaded.servable.kind,
                 seconds)
        self._on_event("loaded", m.name, version, {"seconds": seconds, "path": str(path)})

    def _serving(self) -> bool:
        with self._lock:
            return any(m.loaded for m in self._models.values())

    def _flip(self, m: ModelState) -> None:
        """Publish a new routing table (called with the lock held)."""
        newest = m.flip()
        if newest != m.newest:
            old, m.newest = m.newest, newest
            if not self._stopping:  # releasing everything at shutdown is not a swap
                self._on_event("swap", m.name, newest, {"from": old})

    def _retire(self, m: ModelState, version: str, wait: bool) -> None:
        with self._lock:
            ref = m.loaded.pop(version)
            self._flip(m)
        self._on_event("retiring", m.name, version, {"in_flight": ref.refs})
        ref.retire()
        pool_swaps.drain(ref.servable)
        if wait:
            self._drain(ref)

    def _drain(self, ref: ServingVersion) -> None:
        ref.wait_released(self.config.drain_timeout_s)
        # the finalize task was queued behind us: run it now so memory is free before the load
        if ref.released and not ref.finalized:
            self._finalize(ref)

    def _released(self, ref: VersionRef) -> None:
        with self._lock:
            if self._stopping and not self._tasks.alive:
                self._finalize(ref)  # type: ignore[arg-type]
                return
            self._tasks.put("finalize", ref)

    def _finalize(self, ref: ServingVersion) -> None:
        if ref.finalize():
            log.info("released %s %s", ref.model, ref.version)
            self._on_event("unloaded", ref.model, ref.version, {})

    def _breaker_changed(self, m: ModelState, version: str, old: str, new: str) -> None:
        breaker_changed(m.table, m.name, version, old, new, self._on_event)

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
        self._quarantine.end()  # a load cut short by a clean stop is no crash
        self.wait_idle(timeout)
        self._tasks.stop(timeout)
