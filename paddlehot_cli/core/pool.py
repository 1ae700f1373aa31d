"""A bounded pool of reusable objects (paddle.inference predictors) that breathes: it grows in the
background under load and shrinks back to `min` when idle, even without traffic.

`acquire()` hands out a free item or waits for one. It never creates one itself while another
item exists: the growth rule is "a caller found every item busy" - the pool then asks the
process-wide keeper (pool_keeper.py) for one more item, and the caller takes whichever item is
free first, the new one or one coming back. Waiting callers are served first come, first served:
an item released while callers wait is handed to the oldest of them, never left for whoever
asks next (the releasing thread itself, which still holds the GIL and always won that race: a
waiter then waited for the item being created, the whole growth). Only an empty pool (`min` 0, nothing left) creates
on the caller's thread, since nothing else could serve it. The keeper creates one item at a
time, warms it (`warm`) on its own long-lived thread, and grows again while callers still wait.
A caller's wait keeps growth wanted for a second (`_DEMAND_S`): with a fast model callers wait
only while another's run lasts, and the niced keeper, scheduled mostly when the request threads
are not running, could otherwise find nobody waiting at every look and never grow (a flaky
`bench --tune` breathing round showed it). A growth done clears that until a caller waits again.
Items above `min` idle longer than `idle_s` are destroyed by the keeper's timer. With
`min == max` nothing ever grows or shrinks: a fixed pool. A caller gets back the item its thread
used last when that one is free: Paddle keeps oneDNN kernels and reordered weights per thread
and predictor (resnet18: ~49 MB for each thread that ran a predictor, and a first run that
costs two), so threads that stick to their predictor keep the process smaller and faster.
Items that went stale (`stale`; a package's predictor after a thread that ran it and another
one exited: onednn_threads.py) are renewed (`renew`) by the keeper while they are free, so no
request waits for that creation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


_DEMAND_S = 1.0  # how long one caller's wait keeps growth wanted

class PoolClosed(RuntimeError):
    pass


@dataclass
class PoolCounters:
    """What the pool did since it was made (metrics: growth, reclaim, refused growth)."""

    grown: int = 0  # items the keeper added
    reclaimed: int = 0  # idle items destroyed (timer, shrink)
    refused: int = 0  # growths the memory budget refused
    failed: int = 0  # growths whose factory or warm-up failed
    renewed: int = 0  # stale items the keeper renewed while they were free


class _Waiter:
    """One caller waiting in acquire(): woken alone when an item is handed to it."""

    __slots__ = ("cond", "item", "served")

    def __init__(self, lock: threading.Lock):
        self.cond = threading.Condition(lock)
        self.item, self.served = None, False


class Pool(Generic[T]):
    def __init__(
        self,
        factory: Callable[[], T],
        *,
        min_size: int = 1,
        max_size: int = 1,
        idle_s: float = 30.0,
        destroy: Callable[[T], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        warm: Callable[[T], None] | None = None,
        admit: Callable[[], bool] | None = None,
        name: str = "pool",
        keeper: object | None = None,
        initial: int | None = None,
        stale: Callable[[T], bool] | None = None,
        renew: Callable[[T], None] | None = None,
    ):
        if min_size < 0 or max_size < 1 or min_size > max_size:
            raise ValueError(f"pool sizes must satisfy 0 <= min ({min_size}) <= max ({max_size}), max >= 1")
        if idle_s <= 0:
            raise ValueError(f"the idle timeout must be > 0 seconds, not {idle_s}")
        self._factory = factory
        self._destroy = destroy or (lambda item: None)
        self._warm = warm
        self._stale, self._renew = stale, renew
        self._renew_after = 0.0  # a renewal failed: the next try waits (monotonic)
        self.admit = admit  # None: always; the memory budget says no -> counted, retried later
        self.name = name
        self.min_size, self.max_size, self.idle_s = min_size, max_size, idle_s
        self.counters = PoolCounters()
        self._clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # close() and destroys wait on it
        self._waiters: deque[_Waiter] = deque()  # callers waiting, oldest first
        self._free: list[tuple[T, float]] = []  # (item, time it was returned), LIFO
        self._mine = threading.local()  # id() of the item this thread used last
        self._size = 0  # items created and not destroyed (free + in use)
        self._growing = 0  # items the keeper is creating
        self._destroying = 0  # items taken out to be destroyed, not yet destroyed
        self._draining = False  # returned items above `min` are destroyed at once
        self._resting = False  # kept for rollback: a growth under way is dropped, see rest()
        self._closed = False
        # a caller waited recently (monotonic deadline): growth stays wanted that long, so the
        # keeper grows even when it runs at an instant nobody waits - a fast model's callers
        # wait only while the other's run lasts, and a niced keeper is scheduled mostly then
        self._demand_until = 0.0
        for _ in range(min_size if initial is None else max(min_size, initial)):
            self._free.append((factory(), clock()))
            self._size += 1
        if keeper is None and (max_size > min_size or renew is not None):
            from paddlehot_cli.core.pool_keeper import shared_keeper

            keeper = shared_keeper()
        self._keeper = keeper
        if keeper is not None:
            keeper.register(self)

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_use(self) -> int:
        return self._size - len(self._free)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _reclaim_locked(self, idle_s: float | None = None) -> list[T]:
        now, limit = self._clock(), self.idle_s if idle_s is None else idle_s
        dead: list[T] = []
        # oldest-returned items sit at the front (LIFO reuse keeps hot items at the back)
        while self._free and self._size > self.min_size and now - self._free[0][1] >= limit:
            dead.append(self._free.pop(0)[0])
            self._size -= 1
        self.counters.reclaimed += len(dead)
        self._destroying += len(dead)
        return dead

    def _wants_growth_locked(self) -> bool:
        demand = bool(self._waiters) or time.monotonic() < self._demand_until
        return (not self._closed and not self._draining and demand
                and self._growing == 0 and self._size < self.max_size)

    def _hand_out_locked(self, item: T) -> None:
        """An item is free: to the oldest waiting caller, else on the free list."""
        if self._waiters:
            w = self._waiters.popleft()
            w.item, w.served = item, True
            w.cond.notify()
        else:
            self._free.append((item, self._clock()))

    def _wake_all_locked(self) -> None:
        for w in self._waiters:
            w.cond.notify()
        self._cond.notify_all()

    def acquire(self, timeout: float | None = None) -> T:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                raise PoolClosed("pool is closed")
            if self._free and not self._waiters:
                return self._take_free_locked()
            if not self._creatable_locked():
                w = _Waiter(self._lock)
                self._waiters.append(w)
                self._resting = False  # traffic is back (a rollback): growth is wanted again
                self._demand_until = time.monotonic() + _DEMAND_S
                try:
                    if self._keeper is not None and self._wants_growth_locked():
                        self._keeper.request_growth(self)
                    while not w.served:
                        if self._closed:
                            raise PoolClosed("pool is closed")
                        if self._waiters[0] is w and self._creatable_locked():
                            break  # the pool emptied (a creation failed): create below
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise TimeoutError("no free item in the pool")
                        w.cond.wait(remaining)
                finally:
                    if not w.served:
                        self._waiters.remove(w)
                        if self._waiters and self._creatable_locked():
                            self._waiters[0].cond.notify()  # now first: it may create
                if w.served:
                    self._mine.item = id(w.item)
                    return w.item
            self._size += 1  # nothing could serve this caller: create here
        try:
            return self._factory()
        except BaseException:
            with self._lock:
                self._size -= 1
                if self._waiters:
                    self._waiters[0].cond.notify()  # it may create now
            raise

    def _take_free_locked(self) -> T:
        """The item this thread used last if it is free, else the one returned last."""
        mine = getattr(self._mine, "item", None)
        at = len(self._free) - 1
        if mine is not None:
            at = next((i for i in range(at, -1, -1) if id(self._free[i][0]) == mine), at)
        item = self._free.pop(at)[0]
        self._mine.item = id(item)
        return item

    def _creatable_locked(self) -> bool:
        return self._size == 0 and self._growing == 0

    def release(self, item: T) -> None:
        with self._lock:
            if self._closed or (self._draining and self._size > self.min_size
                                and not self._waiters):
                self._size -= 1
                dead = [item]
                self._cond.notify_all()
            else:
                self._hand_out_locked(item)
                dead = []
        for d in dead:
            self._destroy(d)

    @contextmanager
    def lease(self, timeout: float | None = None) -> Iterator[T]:
        item = self.acquire(timeout)
        try:
            yield item
        finally:
            self.release(item)

    # -- the keeper's side (pool_keeper.py), also usable directly
    def grow_once(self) -> bool:
        """Create and warm one item if callers still wait and there is room (the keeper's
        thread). True if an item was added; a factory or warm-up error propagates."""
        with self._cond:
            if not self._wants_growth_locked():
                return False
            if self.admit is not None and not self.admit():
                self.counters.refused += 1
                raise GrowthRefused(f"{self.name}: the memory budget has no room for another "
                                    "predictor")
            self._growing += 1
        item, ok = None, False
        try:
            item = self._factory()
            if self._warm is not None:
                self._warm(item)
            ok = True
        finally:
            with self._cond:
                self._growing -= 1
                if ok and not (self._closed or self._draining or self._resting):
                    self._size += 1
                    self.counters.grown += 1
                    self._demand_until = 0.0  # more only if a caller has to wait again
                    self._hand_out_locked(item)
                    item = None
                elif not ok:
                    self.counters.failed += 1
                if item is not None:
                    self._destroying += 1  # close() waits for it (see reclaim)
                self._cond.notify_all()
            if item is not None:
                try:
                    self._destroy(item)
                finally:
                    with self._cond:
                        self._destroying -= 1
                        self._cond.notify_all()
        return ok

    def has_stale(self) -> bool:
        """A free item went stale and may be renewed now (checked every keeper tick, before
        anything is niced or renewed)."""
        if self._stale is None or self._renew is None:
            return False
        with self._cond:
            return (not self._closed and time.monotonic() >= self._renew_after
                    and any(self._stale(item) for item, _ in self._free))

    def renew_stale(self) -> int:
        """Renew and warm each free item that went stale, out of the pool meanwhile (the
        keeper's thread), so no request pays for it; a request that meets one first still renews
        it itself. A failure is retried after 30 s and propagates. Returns how many."""
        done = 0
        while self._renew is not None and self._stale is not None:
            with self._cond:
                if self._closed or time.monotonic() < self._renew_after:
                    return done
                at = next((i for i, (item, _) in enumerate(self._free) if self._stale(item)),
                          None)
                if at is None:
                    return done
                item = self._free.pop(at)[0]  # in use until released below (close waits)
            try:
                self._renew(item)
                if self._warm is not None:
                    self._warm(item)
                with self._cond:
                    self.counters.renewed += 1
                done += 1
            except BaseException:
                self._renew_after = time.monotonic() + 30.0
                raise
            finally:
                self.release(item)
        return done

    def wants_growth(self) -> bool:
        with self._cond:
            return self._wants_growth_locked()

    def reclaim(self, idle_s: float | None = None) -> int:
        """Destroy free items idle for `idle_s` (default: the pool's timeout) down to `min`."""
        with self._cond:
            dead = self._reclaim_locked(idle_s)
        try:
            for d in dead:
                self._destroy(d)
        finally:
            with self._cond:  # close() waits for these: a plugin's library must outlive them
                self._destroying -= len(dead)
                self._cond.notify_all()
        return len(dead)

    def shrink_to_min(self) -> int:
        """Destroy every free item above `min` now (a version kept warm for rollback, the memory
        budget making room for a load)."""
        return self.reclaim(idle_s=float("-inf"))

    def rest(self) -> int:
        """A version kept loaded but out of the traffic (warm for rollback): down to `min` now,
        and a growth under way is dropped, until a caller has to wait again."""
        with self._cond:
            self._resting, self._demand_until = True, 0.0
        return self.shrink_to_min()

    def drain(self) -> int:
        """A version leaving: no more growth, free items above `min` go now, leased ones as they
        come back."""
        with self._cond:
            self._draining = True
        return self.shrink_to_min()

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new acquires, wait for leased items to come back, destroy everything."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._wake_all_locked()
            while self._size > len(self._free) or self._growing or self._destroying:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            dead = [item for item, _ in self._free]
            self._size -= len(dead)
            self._free.clear()
        for d in dead:
            self._destroy(d)
        if self._keeper is not None:
            self._keeper.unregister(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def describe(self) -> dict:
        """For the model metadata endpoint: size now, bounds, timeout, what it did."""
        return {"size": self._size, "in_use": self.in_use, "min": self.min_size,
                "max": self.max_size, "idle_s": self.idle_s, **vars(self.counters)}


class GrowthRefused(RuntimeError):
    """The memory budget refused one more item (counted; the keeper retries later)."""
