"""The one process-wide thread that grows and shrinks every pool (core/pool.py).

Growth: a pool whose callers found every predictor busy asks here; the keeper creates one
predictor at a time (the box has 2-4 cores: two creations at once would only slow each other and
the requests), niced like a version load (the Manager sets `nice` to its load_nice), warms it on
this same thread, and hands it to the oldest caller waiting (core/pool.py: first come, first
served) or to the free list; it grows that pool again while callers still wait. A failure (the factory raised, the warm-up
raised, the memory budget refused) is logged, counted by the pool and retried with a backoff
(1 s doubling to 30 s); the version keeps serving on the predictors it has.

Why warm-up runs here: Paddle's oneDNN cache is keyed by thread id, and a thread that ran two
predictors and exits leaves entries that poison the next thread given its id (onednn_threads.py).
This thread lives as long as any pool does, so the predictors it warms never meet such entries;
it ends when the last pool is gone (a shutdown: every background thread stops), and the next
pool starts a new one (no predictor of the old thread is left to meet its entries).

Reclaim: every tick (a quarter of the shortest idle timeout, 50 ms..1 s) each pool destroys its
predictors idle past its timeout down to `min`; after any destroy the C heap is trimmed
(malloc_trim), which is what returns the memory to the system (glibc keeps freed arenas). The
same tick renews, niced, the free predictors that went stale when a thread exited (pool.py
renew_stale): a request that met one used to pay a whole creation.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from paddlehot_cli.core.thread_priority import niced_here, trim_heap

log = logging.getLogger("paddlehot.pool")
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 1.0, 30.0


class PoolKeeper:
    def __init__(self, nice: int = 10):
        self.nice = nice
        self._cond = threading.Condition()
        self._pools: weakref.WeakSet[Any] = weakref.WeakSet()
        self._wanted: weakref.WeakSet[Any] = weakref.WeakSet()
        self._backoff: weakref.WeakKeyDictionary[Any, tuple[float, float]] = \
            weakref.WeakKeyDictionary()  # pool -> (delay, not before)
        self._thread: threading.Thread | None = None

    def register(self, pool: Any) -> None:
        with self._cond:
            self._pools.add(pool)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="paddlehot-pools",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def unregister(self, pool: Any) -> None:
        with self._cond:
            self._pools.discard(pool)
            self._wanted.discard(pool)
            self._cond.notify()  # the last pool gone: the thread ends

    @property
    def running(self) -> bool:
        with self._cond:
            return self._thread is not None

    def request_growth(self, pool: Any) -> None:
        """Called by a pool (under its own lock: this lock comes second, never the reverse)."""
        with self._cond:
            if pool in self._pools:
                self._wanted.add(pool)
                self._cond.notify()

    def shrink_all(self) -> int:
        """Every pool down to its `min` now (the memory budget making room for a load)."""
        freed = sum(pool.shrink_to_min() for pool in list(self._pools))
        if freed:
            trim_heap()
        return freed

    # -- the thread
    def _tick_s(self) -> float:
        idle = [p.idle_s for p in list(self._pools)]
        return min(1.0, max(0.05, min(idle) / 4)) if idle else 1.0

    def _run(self) -> None:
        next_reclaim = time.monotonic()
        while True:
            with self._cond:
                if not self._pools:  # under the lock: a register() now starts a new thread
                    self._thread = None
                    return
                now = time.monotonic()
                ready = [p for p in list(self._wanted)
                         if self._backoff.get(p, (0.0, 0.0))[1] <= now]
                if not ready:
                    wake = [self._backoff.get(p, (0.0, now))[1] for p in list(self._wanted)]
                    timeout = min([next_reclaim, *wake]) - now
                    if timeout > 0:
                        self._cond.wait(timeout)
                    ready = [p for p in list(self._wanted)
                             if self._backoff.get(p, (0.0, 0.0))[1] <= time.monotonic()]
            for pool in ready:
                self._grow(pool)
            if time.monotonic() >= next_reclaim:
                self._reclaim()
                next_reclaim = time.monotonic() + self._tick_s()

    def _grow(self, pool: Any) -> None:
        try:
            with niced_here(self.nice):
                pool.grow_once()
            self._backoff.pop(pool, None)
        except Exception as exc:  # noqa: BLE001 - the version keeps serving; say why, retry
            delay = self._backoff.get(pool, (_BACKOFF_FIRST_S / 2, 0.0))[0] * 2
            delay = min(_BACKOFF_MAX_S, delay)
            self._backoff[pool] = (delay, time.monotonic() + delay)
            log.warning("%s: could not add a predictor (retrying in %.0f s): %s", pool.name,
                        delay, exc)
        self._settle(pool)

    def _settle(self, pool: Any) -> None:
        # the pool's lock is taken outside ours (a pool calls request_growth under its lock)
        wants = pool.wants_growth()
        with self._cond:
            if wants:
                self._wanted.add(pool)
            else:
                self._wanted.discard(pool)

    def _reclaim(self) -> None:
        freed = 0
        for pool in list(self._pools):
            self._settle(pool)  # a request that raced with a discard is picked up here
            try:
                freed += pool.reclaim()
            except Exception:  # noqa: BLE001 - one pool's destroy must not stop the others
                log.exception("%s: releasing idle predictors failed", pool.name)
            try:
                if pool.has_stale():  # most ticks: nothing to renew, nothing to nice
                    with niced_here(self.nice):
                        pool.renew_stale()
            except Exception as exc:  # noqa: BLE001 - its requests renew it themselves
                log.warning("%s: could not renew a predictor (retrying in 30 s): %s", pool.name,
                            exc)
        if freed:
            trim_heap()


_shared: PoolKeeper | None = None
_shared_lock = threading.Lock()


def shared_keeper() -> PoolKeeper:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PoolKeeper()
        return _shared
