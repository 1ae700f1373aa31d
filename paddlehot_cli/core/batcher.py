"""Run one version's inference on its own named worker thread(s), with optional dynamic batching.

Requests are queued with a completion callback (called on the worker thread). With
`max_batch > 1`, a worker takes the first request, then waits up to `max_delay_s` for more,
concatenates requests whose inputs agree on every dim but the first (only when every input's
first dim is dynamic), runs one call, and splits the outputs back. Batching trades a little
latency for throughput under concurrency; Python threads add no parallelism to a GIL-holding
predictor, so one worker is the default.

The queue is bounded (`max_queue` requests waiting, not counting those running): a full queue
raises QueueFull at once, so an overloaded server answers 503 instead of growing latency and
memory without limit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Done = Callable[[Any, BaseException | None], None]  # (outputs list | None, error | None)
_STOP = object()


class BatcherStopped(RuntimeError):
    pass


class QueueFull(RuntimeError):
    """The version's queue is full: retry later (503 + Retry-After)."""


class Batcher:
    def __init__(
        self,
        run: Callable[[Mapping[str, np.ndarray]], list[np.ndarray]],
        input_names: Sequence[str],
        *,
        batchable: bool = True,
        max_batch: int = 1,
        max_delay_s: float = 0.0,
        workers: int = 1,
        name: str = "paddlehot-infer",
        on_batch: Callable[[int], None] | None = None,
        max_queue: int = 0,
    ):
        self._run = run
        self._names = list(input_names)
        self.max_batch = max(1, int(max_batch)) if batchable else 1
        self.max_delay_s = max(0.0, float(max_delay_s))
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.max_queue = max(0, int(max_queue))  # 0 = unbounded
        self._waiting = 0  # queued, not yet taken by a worker
        self._count_lock = threading.Lock()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
            for i in range(max(1, int(workers)))
        ]
        for t in self._threads:
            t.start()

    @property
    def native_ids(self) -> list[int]:
        """The worker threads' OS thread ids (e.g. to pin them to a CPU)."""
        return [t.native_id for t in self._threads if t.native_id is not None]

    @property
    def waiting(self) -> int:
        return self._waiting

    def submit(self, feeds: Mapping[str, np.ndarray], done: Done, force: bool = False) -> None:
        """Queue checked inputs; `done(outputs, None)` or `done(None, exc)` is called once.
        Raises QueueFull (unless `force`: warm-up) or BatcherStopped without queueing."""
        if self._stopped:
            raise BatcherStopped("this version is shutting down")
        with self._count_lock:
            if self.max_queue and self._waiting >= self.max_queue and not force:
                raise QueueFull(f"{self._waiting} requests are already waiting")
            self._waiting += 1
        self._queue.put((feeds, done))

    def _taken(self) -> None:
        with self._count_lock:
            self._waiting -= 1

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish everything queued, then stop the workers."""
        self._stopped = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def _loop(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            self._taken()
            if self.max_batch == 1:
                self._run_one(item)
                continue
            items = [item]
            stop = False
            deadline = time.monotonic() + self.max_delay_s
            while len(items) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = get(timeout=remaining) if remaining > 0 else get_nowait(self._queue)
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                self._taken()
                items.append(nxt)
            self._run_many(items)
            if stop:
                return

    def _run_one(self, item: tuple) -> None:
        feeds, done = item
        try:
            out = self._run(feeds)
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller
            _deliver(done, None, exc)
            return
        if self._on_batch is not None:
            self._on_batch(1)
        _deliver(done, out, None)

    def _run_many(self, items: list[tuple]) -> None:
        groups: dict[tuple, list[tuple]] = {}
        for item in items:
            key = tuple((item[0][n].shape[1:], item[0][n].dtype.str) for n in self._names)
            groups.setdefault(key, []).append(item)
        for group in groups.values():
            if len(group) == 1:
                self._run_one(group[0])
                continue
            sizes = [it[0][self._names[0]].shape[0] for it in group]
            total = sum(sizes)
            feeds = {n: np.concatenate([it[0][n] for it in group]) for n in self._names}
            try:
                outs = self._run(feeds)
            except BaseException:  # noqa: BLE001 - retry one by one: one bad request fails alone
                for it in group:
                    self._run_one(it)
                continue
            if any(o.ndim == 0 or o.shape[0] != total for o in outs):
                for it in group:  # outputs are not batch-major: cannot split, run one by one
                    self._run_one(it)
                continue
            if self._on_batch is not None:
                self._on_batch(len(group))
            start = 0
            for (feeds_i, done), n in zip(group, sizes):
                _deliver(done, [o[start:start + n] for o in outs], None)
                start += n


def get_nowait(q: queue.SimpleQueue) -> Any:
    return q.get_nowait()


def _deliver(done: Done, out: Any, exc: BaseException | None) -> None:
    try:
        done(out, exc)
    except Exception:
        import logging

        logging.getLogger("paddlehot.batcher").exception("completion callback failed")
