"""Keep Paddle's oneDNN cache from serving a dead thread's kernels to its successor.

Root cause of the bare `std::exception` that failed every call of one predictor in one thread
(the flaky in-process bench at concurrency 2). Paddle caches oneDNN kernels and memory objects
in one process-wide map whose keys are (thread id, executor address, op names, shapes); every
thread owns its own oneDNN engine and stream. When a thread exits, Paddle erases only the
entries of the *last* executor that thread ran. So a thread that ran predictor A, then B, and
exits leaves its entries for A behind, bound to its dead engine. Thread ids are pthread_t
values, which the C library reuses at once for the next thread; when that thread runs A it
finds those entries, and oneDNN refuses to execute a kernel of another engine ("could not
execute a primitive"), which Paddle's interpreter rethrows as a bare std::exception - on every
call of A in that thread, until A is destroyed (destroying a predictor erases its entries).
Creating instead of cloning, and the lifecycle lock, never touched it.

The fix here: each thread notes which runners (predictors) it ran; when it exits, every runner
it ran other than the last is marked stale, and a stale runner renews its predictor before its
next call (a new executor: keys no dead thread ever wrote; the old one's entries go with it).
pdcapi does the same natively (native/pdcapi/src/thread_runs.cc). Cost: one predictor creation
per such runner per exiting thread; threads that ran one predictor cost nothing. (A thread that
enters Python from C for each call, e.g. a ctypes callback, drops its thread state after each
call, so a package servable called that way from several predictors renews often: such hosts
should use the plugin, whose pdcapi does this natively.)
"""

from __future__ import annotations

import threading
import weakref
from typing import Protocol


class Renewable(Protocol):
    stale: bool


class _ThreadRuns:
    """Lives in one thread's local storage; dropped (and finalised) when that thread exits."""

    __slots__ = ("last", "ran")

    def __init__(self) -> None:
        self.ran: dict[int, weakref.ref] = {}
        self.last = 0

    def __del__(self) -> None:
        for key, ref in self.ran.items():
            runner = ref()
            if runner is not None and key != self.last:
                runner.stale = True


_local = threading.local()


def note_run(runner: Renewable) -> None:
    """Record that this thread just ran `runner` (call after each run)."""
    runs = getattr(_local, "runs", None)
    if runs is None:
        runs = _local.runs = _ThreadRuns()
    key = id(runner)
    known = runs.ran.get(key)
    if known is None or known() is not runner:  # new, or an id reused after a runner died
        if len(runs.ran) >= 64:  # a long-lived thread (the pool keeper) outlives many runners
            runs.ran = {k: r for k, r in runs.ran.items() if r() is not None}
        runs.ran[key] = weakref.ref(runner)
    runs.last = key
