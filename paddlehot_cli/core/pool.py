"""A bounded pool of reusable objects (paddle.inference predictor clones) with idle reclaim.

`acquire()` hands out a free item, creates one with `factory()` while the pool is below `max`,
or waits for one to come back. Items above `min` that stayed idle longer than `idle_s` are
released (by `destroy`) on the next acquire/release: no background thread is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class PoolClosed(RuntimeError):
    pass


class Pool(Generic[T]):
    def __init__(
        self,
        factory: Callable[[], T],
        *,
        min_size: int = 1,
        max_size: int = 1,
        idle_s: float = 60.0,
        destroy: Callable[[T], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if min_size < 0 or max_size < 1 or min_size > max_size:
            raise ValueError(f"pool sizes must satisfy 0 <= min ({min_size}) <= max ({max_size}), max >= 1")
        self._factory = factory
        self._destroy = destroy or (lambda item: None)
        self.min_size, self.max_size, self.idle_s = min_size, max_size, idle_s
        self._clock = clock
        self._cond = threading.Condition()
        self._free: list[tuple[T, float]] = []  # (item, time it was returned), LIFO
        self._size = 0  # items created and not destroyed (free + in use)
        self._closed = False
        for _ in range(min_size):
            self._free.append((factory(), clock()))
            self._size += 1

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_use(self) -> int:
        return self._size - len(self._free)

    def _reclaim_locked(self) -> list[T]:
        now = self._clock()
        dead: list[T] = []
        # oldest-returned items sit at the front (LIFO reuse keeps hot items at the back)
        while self._free and self._size > self.min_size and now - self._free[0][1] > self.idle_s:
            dead.append(self._free.pop(0)[0])
            self._size -= 1
        return dead

    def acquire(self, timeout: float | None = None) -> T:
        deadline = None if timeout is None else time.monotonic() + timeout
        create = False
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed("pool is closed")
                if self._free:
                    item = self._free.pop()[0]
                    dead = self._reclaim_locked()
                    break
                if self._size < self.max_size:
                    self._size += 1
                    create, dead = True, []
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no free item in the pool")
                self._cond.wait(remaining)
        for d in dead:
            self._destroy(d)
        if create:
            try:
                item = self._factory()
            except BaseException:
                with self._cond:
                    self._size -= 1
                    self._cond.notify()
                raise
        return item

    def release(self, item: T) -> None:
        with self._cond:
            if self._closed:
                self._size -= 1
                dead = [item]
                self._cond.notify_all()
            else:
                self._free.append((item, self._clock()))
                dead = self._reclaim_locked()
                self._cond.notify()
        for d in dead:
            self._destroy(d)

    @contextmanager
    def lease(self, timeout: float | None = None) -> Iterator[T]:
        item = self.acquire(timeout)
        try:
            yield item
        finally:
            self.release(item)

    def reclaim(self) -> int:
        with self._cond:
            dead = self._reclaim_locked()
        for d in dead:
            self._destroy(d)
        return len(dead)

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new acquires, wait for leased items to come back, destroy everything."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._size > len(self._free):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            dead = [item for item, _ in self._free]
            self._size -= len(dead)
            self._free.clear()
        for d in dead:
            self._destroy(d)
