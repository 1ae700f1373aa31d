"""One named thread that runs the Manager's tasks in order, and a way to wait until it is idle.

A task is `(kind, arg)`. A task given a `key` is queued at most once while it waits (a burst of
changes to one model is one reconcile). `wait_idle` returns when every queued task has run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("paddlehot.manager")


class TaskThread:
    def __init__(self, name: str, run: Callable[[str, Any], None],
                 lock: threading.RLock | None = None):
        self._run = run
        self._lock = lock or threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.Queue = queue.Queue()
        self._pending: set[Hashable] = set()
        self._busy = 0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def put(self, kind: str, arg: Any, key: Hashable | None = None) -> None:
        with self._lock:
            if key is not None:
                if key in self._pending:
                    return
                self._pending.add(key)
            self._busy += 1
        self._queue.put((kind, arg, key))

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self, timeout: float) -> None:
        self._queue.put(("stop", None, None))
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            kind, arg, key = self._queue.get()
            if kind == "stop":
                return
            try:
                if key is not None:
                    with self._lock:
                        self._pending.discard(key)
                self._run(kind, arg)
            except Exception:
                log.exception("manager task %s %s failed", kind, arg)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
