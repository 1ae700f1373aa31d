"""The load harness: one version directory in, a warmed servable and its worker queue out.

Contract: `load()` returns a `Prepared` version that has passed its warm-up and may take traffic,
or raises `LoadFailed(reason)` with nothing left open (the servable closed, the batcher stopped).
It never touches routing: the Manager decides what to do with the result.

The loader runs on its own thread, niced while other versions serve, so a load cannot starve
requests. Before the loader runs, the journal (quarantine.py) records which version is loading,
and forgets it once the load ends: a process that dies inside a load leaves the record behind
for the next start. Warm-up replays the package's validation inputs on the version's own worker threads;
workers of GIL-bound versions are then pinned to the event loop's CPU (cpu_affinity.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.core import cpu_affinity
from paddlehot_cli.core.batcher import Batcher
from paddlehot_cli.core.loaded import Batching, Loaded
from paddlehot_cli.core.quarantine import Quarantine
from paddlehot_cli.core.servable import Servable
from paddlehot_cli.core.thread_priority import can_unnice, run_niced
from paddlehot_cli.core.variants import variant_key
from paddlehot_cli.core.warmup import warm
from paddlehot_cli.errors import UserError, short_error

log = logging.getLogger("paddlehot.manager")
Loader = Callable[[Path], "Loaded | Servable"]


class LoadFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HarnessConfig:
    batching: Batching  # when the loader says nothing
    max_queue: int = 0  # per version (serve --max-queue); 0: from its batching
    warmup: bool = True
    warmup_cases: int = 1  # validation cases run at warm-up, smallest first (0 = all)
    warmup_atol: float = 1e-4
    warmup_rtol: float = 1e-3
    warmup_timeout_s: float = 120.0
    load_nice: int = 10  # loads run at a lower CPU priority than serving (Linux, per thread)
    gil_cpu: int | None = None  # the event loop's CPU: GIL-bound workers run there too


@dataclass(frozen=True)
class Prepared:
    loaded: Loaded
    batcher: Batcher


class LoadHarness:
    def __init__(self, loader: Loader, config: HarnessConfig, journal: Quarantine | None = None):
        self._loader = loader
        self.config = config
        self._journal = journal or Quarantine(None)

    def load(self, model: str, version: str, path: Path, others_serving: bool) -> Prepared:
        self._journal.begin(model, version, path)
        try:
            return self._load(model, version, path, others_serving)
        finally:
            self._journal.end()

    def _load(self, model: str, version: str, path: Path, others_serving: bool) -> Prepared:
        loaded: Loaded | None = None
        batcher: Batcher | None = None
        try:
            loaded = self._open(path, others_serving)
            manifest = loaded.servable.manifest
            said = variant_key(manifest.version, manifest.precision)  # `1.2.0-int8` for a variant
            if manifest.name != model or said != version:
                raise UserError(f"{path}: the manifest names {manifest.name} {said}")
            batcher = self._batcher(model, version, loaded)
            self._warm(loaded.servable, path, batcher)
            return Prepared(loaded, batcher)
        except Exception as exc:  # noqa: BLE001 - any failure is a reason, nothing stays open
            _discard(loaded, batcher)
            raise LoadFailed(exc.message if isinstance(exc, UserError) else short_error(exc)) \
                from exc

    def _open(self, path: Path, others_serving: bool) -> Loaded:
        nice = self.config.load_nice if can_unnice() and others_serving else 0
        result = run_niced(lambda: self._loader(path), nice,
                           name=f"paddlehot-load-{path.parent.name}-{path.name}")
        return result if isinstance(result, Loaded) else Loaded(result)

    def _batcher(self, model: str, version: str, loaded: Loaded) -> Batcher:
        inputs = loaded.servable.manifest.inputs
        b = loaded.batching or self.config.batching
        return Batcher(
            loaded.servable.run_checked, [s.name for s in inputs],
            batchable=all(s.shape and s.shape[0] == -1 for s in inputs),
            max_batch=b.batch_size, max_delay_s=b.batch_delay_ms / 1000.0, workers=b.pool_max,
            max_queue=b.queue_limit(self.config.max_queue),
            name=f"paddlehot-infer-{model}-{version}",
        )

    def _warm(self, servable: Servable, path: Path, batcher: Batcher) -> None:
        c = self.config
        if c.warmup:
            warm(servable, path, batcher, cases=c.warmup_cases, atol=c.warmup_atol,
                 rtol=c.warmup_rtol, timeout_s=c.warmup_timeout_s)
        if c.gil_cpu is not None and servable.gil_bound:
            # after the warm-up: Paddle's first run on a thread resets its CPU mask (the
            # OpenMP runtime), and the threads that run started stay off the loop's CPU
            for tid in batcher.native_ids:
                cpu_affinity.pin_thread(tid, c.gil_cpu)


def _discard(loaded: Loaded | None, batcher: Batcher | None) -> None:
    if batcher is not None:
        batcher.stop()
    if loaded is not None:
        try:
            loaded.servable.close()
        except Exception:  # noqa: BLE001 - the load already failed; say why it did
            log.debug("closing a version that failed to load failed too", exc_info=True)
