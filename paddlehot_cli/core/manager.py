"""The Manager: applies a version policy to what the Source says is available.

Availability-preserving (default): load the new version, warm it with the package's validation
inputs (checking the outputs), flip the routing table, then retire the old version: it is
released when its last in-flight handle is gone. A version that fails to load or warm is
remembered as failed (until its files change) and never replaces the serving one.

Resource-preserving (`resource_preserving=True`, for boxes that cannot hold two versions): retire
and release the old version first, then load the new one. Downtime: from the moment the old one
is retired until the new one is warm (drain + load + warm-up, ~1 s for resnet18 on 2 cores),
requests without an exact version get 503; if the new version fails, the old one is reloaded.

All mutable state lives here. Loads run on one named thread ("paddlehot-manager"); routing
(`acquire`) reads an immutable per-model table that a flip replaces in one assignment.
Events go to an `on_event(kind, model, version, info)` callback (metrics, logs): no prometheus
import in core.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core import router
from paddlehot_cli.core.batcher import Batcher
from paddlehot_cli.core.breaker import OPEN, Breaker
from paddlehot_cli.core.handles import Handle, VersionRef
from paddlehot_cli.core.router import Labels, NotLoaded, Unavailable
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.core.validation_data import load_cases
from paddlehot_cli.core.version_policy import VersionPolicy
from paddlehot_cli.core.versions import sort_key
from paddlehot_cli.errors import InputMismatch, UserError, short_error

log = logging.getLogger("paddlehot.manager")

OnEvent = Callable[[str, str, "str | None", dict], None]
Loader = Callable[[Path], Any]


@dataclass
class ManagerConfig:
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    resource_preserving: bool = False
    max_batch: int = 1
    batch_delay_s: float = 0.0
    workers: int = 1
    warmup: bool = True
    # validation cases run at warm-up, smallest first (0 = all): larger batches cost CPU (and the
    # GIL) inside the swap window and leave their activation memory behind
    warmup_cases: int = 1
    # retire versions that the new one pushes out of the aspired set before loading it, so at
    # most one version more than steady state is alive (never the last healthy one)
    retire_before_load: bool = True
    warmup_atol: float = 1e-4
    warmup_rtol: float = 1e-3
    breaker: dict = field(default_factory=dict)  # Breaker keyword arguments
    drain_timeout_s: float = 30.0
    load_nice: int = 10  # loads run at a lower CPU priority than serving (Linux, per thread)


@dataclass(frozen=True)
class _Table:
    """What routing reads: immutable, replaced whole on every flip."""

    ordered: list  # versions, newest first
    refs: Mapping[str, VersionRef]
    labels: Labels


_EMPTY = _Table([], {}, Labels())


class _Model:
    def __init__(self, name: str):
        self.name = name
        self.enabled = True
        self.available: dict[str, Path] = {}
        self.failed: dict[str, tuple[str, str]] = {}  # version -> (path signature, reason)
        self.file_labels = Labels()
        self.admin_labels: Labels | None = None
        self.loaded: dict[str, VersionRef] = {}
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


def _trim_heap() -> None:
    """Give freed heap back to the OS after a version is released (glibc keeps it otherwise, and
    every version's worker thread had its own malloc arena)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _unnice_new_threads(before: set[int], nice: int) -> None:
    """Back to normal priority for threads a niced load started that are still alive (OpenMP
    pool threads): they will run serving requests."""
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for tid in _thread_ids() - before:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) == nice:
                os.setpriority(os.PRIO_PROCESS, tid, base)
        except OSError:
            pass


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
        self._on_event = on_event or (lambda kind, model, version, info: None)
        self._rng = rng
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()
        self._tasks: queue.Queue = queue.Queue()
        self._pending: set[str] = set()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self.rescan: Callable[[str], None] | None = None  # set by whoever owns the Source
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="paddlehot-manager", daemon=True)
        self._thread.start()

    # -- hot path -------------------------------------------------------------------------

    def acquire(self, model: str, selector: str | None = None) -> Handle:
        """A handle on the version that serves this request; raise NotLoaded/Unavailable."""
        m = self._models.get(model)
        if m is None or not m.enabled:
            raise NotLoaded(f"unknown model '{model}'")
        for _ in range(5):
            table = m.table
            refs = table.refs
            version = router.select(
                table.ordered, selector, table.labels,
                allow=lambda v: refs[v].attachments["breaker"].allow(),
                healthy=lambda v: refs[v].attachments["breaker"].healthy(),
                rnd=self._rng(), model=model,
            )
            handle = refs[version].acquire()
            if handle is not None:
                return handle
        raise Unavailable(f"model '{model}' is being swapped; retry")

    def submit(self, handle: Handle, feeds: Mapping[str, np.ndarray],
               done: Callable[[Any, BaseException | None], None]) -> None:
        """Run checked inputs on the handle's version; `done` runs on the worker thread.

        The handle is released after `done`, even if the caller went away meanwhile.
        """
        ref = handle.ref
        breaker: Breaker = ref.attachments["breaker"]
        batcher: Batcher = ref.attachments["batcher"]

        def finish(out: Any, exc: BaseException | None) -> None:
            try:
                if not isinstance(exc, InputMismatch):
                    breaker.record(exc is None)
                done(out, exc)
            finally:
                handle.release()

        try:
            batcher.submit(feeds, finish)
        except BaseException:
            handle.release()
            raise

    # -- inputs from sources and the admin API -------------------------------------------

    def set_available(self, model: str, versions: Mapping[str, Path], labels: object = None) -> None:
        """What the Source sees on disk for one model (complete, verified versions only)."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                m = self._models[model] = _Model(model)
            m.available = dict(versions)
            if labels is not None:
                try:
                    m.file_labels = Labels.from_json(labels, f"{model}/labels.json")
                except ValueError as exc:
                    log.warning("ignoring labels: %s", exc)
            else:
                m.file_labels = Labels()
            self._flip(m)
        self._schedule(model)

    def report_invalid(self, model: str, version: str, reason: str) -> None:
        self._on_event("invalid", model, version, {"reason": reason})

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

    def servable(self, model: str, version: str | None = None) -> Any:
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
        """One row per (model, version) known: state READY / LOADING / UNAVAILABLE and reason."""
        rows = []
        with self._lock:
            for name in sorted(self._models):
                m = self._models[name]
                versions = set(m.available) | set(m.loaded) | set(m.failed)
                if not versions:
                    rows.append({"name": name, "version": "", "state": "UNAVAILABLE",
                                 "reason": "no complete version in the repository"})
                for v in sorted(versions, key=sort_key, reverse=True):
                    ref = m.loaded.get(v)
                    if ref is not None and m.enabled:
                        state = ref.attachments["breaker"].state
                        row = {"name": name, "version": v, "state": "READY",
                               "breaker": state, "reason": ""}
                        if state != "closed":
                            row["reason"] = f"breaker {state}"
                    elif m.loading == v:
                        row = {"name": name, "version": v, "state": "LOADING", "reason": ""}
                    else:
                        reason = m.failed[v][1] if v in m.failed else (
                            "unloaded" if not m.enabled else "not selected by the version policy")
                        row = {"name": name, "version": v, "state": "UNAVAILABLE", "reason": reason}
                    rows.append(row)
        return rows

    def loaded_refs(self) -> list[VersionRef]:
        with self._lock:
            return [r for m in self._models.values() for r in m.loaded.values()]

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

    def _reconcile(self, model: str) -> None:
        m = self._models[model]
        if self.config.resource_preserving:
            # unload first: free memory before the new version is loaded (downtime, see above)
            aspired = self._aspired(m)
            for v in [v for v in m.loaded if v not in aspired]:
                self._retire(m, v, wait=True)
        while True:
            aspired = self._aspired(m)
            todo = sorted((v for v in aspired if v not in m.loaded), key=sort_key, reverse=True)
            if not todo:
                break
            if self.config.retire_before_load:
                self._retire_leaving(m, aspired)
            self._load(m, todo[0])
        for v in [v for v in m.loaded if v not in aspired]:
            self._retire(m, v, wait=False)
        if self.config.resource_preserving and not m.loaded and m.enabled:
            log.error("model %s has no version loaded", model)

    def _retire_leaving(self, m: _Model, aspired: set[str]) -> None:
        """Retire (and release) loaded versions outside `aspired` while a healthy aspired one
        keeps serving; if the new load fails they are aspired again and reloaded."""
        leaving = [v for v in m.loaded if v not in aspired]
        staying = [m.loaded[v] for v in m.loaded if v in aspired]
        if not leaving or not any(r.attachments["breaker"].healthy() for r in staying):
            return
        for v in leaving:
            self._retire(m, v, wait=True)

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
            names = [s.name for s in servable.manifest.inputs]
            batchable = all(s.shape and s.shape[0] == -1 for s in servable.manifest.inputs)
            run = servable.run_checked
            batcher = Batcher(
                run, names, batchable=batchable, max_batch=self.config.max_batch,
                max_delay_s=self.config.batch_delay_s, workers=self.config.workers,
                name=f"paddlehot-infer-{m.name}-{version}",
            )
            if self.config.warmup:
                # on the version's own worker thread(s): per-thread caches are warm at the flip
                self._warm(servable, path, batcher)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the serving version
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
            return
        seconds = time.perf_counter() - start
        ref = VersionRef(m.name, version, servable, self._released)
        ref.attachments["breaker"] = Breaker(
            on_change=lambda old, new, v=version: self._breaker_changed(m, v, old, new),
            **self.config.breaker,
        )
        ref.attachments["batcher"] = batcher
        with self._lock:
            m.loaded[version] = ref
            m.loading = None
            m.failed.pop(version, None)
            self._flip(m)
        log.info("loaded %s %s (%s) in %.2f s", m.name, version,
                 getattr(servable, "kind", "package"), seconds)
        self._on_event("loaded", m.name, version, {"seconds": seconds, "path": str(path)})

    def _load_niced(self, path: Path) -> Any:
        """Run the loader on a short-lived thread with a lower CPU priority, so that building a
        predictor (graph passes, weight loading) takes CPU from serving as little as possible.

        Threads created by a niced thread inherit its nice value, and the OpenMP pool (libiomp5)
        is process-wide: a pool thread first started by a load would serve every later request at
        the low priority. So loads are niced only while something is serving (the first load
        fills the pool at normal priority) and only if the threads the load started can be set
        back to normal afterwards (root, CAP_SYS_NICE or RLIMIT_NICE >= 20).
        """
        nice = self.config.load_nice if self._can_unnice() and self._serving() else 0
        result: dict[str, Any] = {}
        before = _thread_ids()

        def target() -> None:
            if nice:
                try:
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
                except OSError:
                    pass
            try:
                result["servable"] = self._loader(path)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the manager thread
                result["error"] = exc

        t = threading.Thread(target=target, name=f"paddlehot-load-{path.parent.name}-{path.name}")
        t.start()
        t.join()
        if nice:
            _unnice_new_threads(before, nice)
        if "error" in result:
            raise result["error"]
        return result["servable"]

    def _serving(self) -> bool:
        with self._lock:
            return any(m.loaded for m in self._models.values())

    @staticmethod
    def _can_unnice() -> bool:
        if not hasattr(os, "setpriority"):
            return False
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NICE)[0]
            if soft == resource.RLIM_INFINITY or soft >= 20:
                return True
        except (ImportError, AttributeError, OSError, ValueError):
            pass
        return os.geteuid() == 0

    def _warm(self, servable: Any, path: Path, batcher: Batcher) -> None:
        validation = servable.manifest.validation
        atol = float(validation.get("atol", self.config.warmup_atol))
        rtol = float(validation.get("rtol", self.config.warmup_rtol))
        names = [s.name for s in servable.manifest.outputs]
        specs = servable.manifest.inputs
        cases = load_cases(path)
        if self.config.warmup_cases > 0:
            size = lambda case: sum(int(a.size) for a in case[0].values())  # noqa: E731
            cases = sorted(cases, key=size)[: self.config.warmup_cases]
        for i, (inputs, expected) in enumerate(cases):
            box: dict[str, Any] = {}
            ev = threading.Event()
            batcher.submit(check_inputs(specs, inputs),
                           lambda out, exc: (box.update(out=out, exc=exc), ev.set()))
            if not ev.wait(self.config.drain_timeout_s * 4):
                raise UserError(f"{path}: warm-up case {i} timed out")
            if box["exc"] is not None:
                raise box["exc"]
            got = dict(zip(names, box["out"]))
            for name in names:
                if name not in expected or name not in got:
                    continue
                a, e = got[name], expected[name]
                if a.shape != e.shape or not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
                    raise UserError(
                        f"{path}: warm-up case {i}: output '{name}' differs from the package's "
                        "validation outputs"
                    )

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
            self._drain_tasks_for(ref)

    def _drain_tasks_for(self, ref: VersionRef) -> None:
        deadline = time.monotonic() + self.config.drain_timeout_s
        while not ref.released and time.monotonic() < deadline:
            time.sleep(0.005)
        # the finalize task was queued behind us: run it now so memory is free before the load
        if ref.released and not ref.attachments.get("finalized"):
            self._finalize(ref)

    def _released(self, ref: VersionRef) -> None:
        with self._lock:
            if self._stopping and not self._thread.is_alive():
                self._finalize(ref)
                return
            self._busy += 1
        self._tasks.put(("finalize", ref))

    def _finalize(self, ref: VersionRef) -> None:
        if ref.attachments.get("finalized"):
            return
        ref.attachments["finalized"] = True
        ref.attachments["batcher"].stop()
        try:
            ref.servable.close()
        except Exception:
            log.exception("closing %s %s failed", ref.model, ref.version)
        ref.servable = None
        _trim_heap()
        log.info("released %s %s", ref.model, ref.version)
        self._on_event("unloaded", ref.model, ref.version, {})

    def _breaker_changed(self, m: _Model, version: str, old: str, new: str) -> None:
        log.warning("breaker of %s %s: %s -> %s", m.name, version, old, new)
        self._on_event("breaker", m.name, version, {"from": old, "to": new})
        if new == OPEN:
            table = m.table
            if table.ordered and table.ordered[0] == version:
                fallback = next((v for v in table.ordered[1:]
                                 if table.refs[v].attachments["breaker"].healthy()), None)
                log.warning("rollback: %s %s is failing; traffic goes to %s", m.name, version,
                            fallback or "nothing (no healthy version)")
                self._on_event("rollback", m.name, version, {"to": fallback})

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
