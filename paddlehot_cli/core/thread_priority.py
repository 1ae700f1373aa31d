"""Loads run at a lower CPU priority than serving (Linux, per thread), and give memory back.

Building a predictor (graph passes, weight loading) should take CPU from serving as little as
possible. Threads created by a niced thread inherit its nice value, and the OpenMP pool
(libiomp5) is process-wide: a pool thread first started by a load would serve every later
request at the low priority. So a load is niced only while something is serving (the first
load fills the pool at normal priority) and only if the threads it started can be set back
to normal afterwards (root, CAP_SYS_NICE or RLIMIT_NICE >= 20).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def can_unnice() -> bool:
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


def run_niced(fn: Callable[[], Any], nice: int, name: str) -> Any:
    """Run `fn` on a short-lived named thread at `nice` (0 = normal); re-raise its error here.
    Threads it started and left running are set back to normal priority."""
    result: dict[str, Any] = {}
    before = _thread_ids()

    def target() -> None:
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except OSError:
                pass
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            result["error"] = exc

    t = threading.Thread(target=target, name=name)
    t.start()
    t.join()
    if nice:
        _unnice_new_threads(before, nice)
    if "error" in result:
        raise result["error"]
    return result["value"]


@contextmanager
def niced_here(nice: int) -> Iterator[None]:
    """Run a block at `nice` on this (long-lived) thread, then set it and the threads the block
    started back to normal; does nothing unless both can be undone (can_unnice)."""
    if not nice or not can_unnice():
        yield
        return
    tid = threading.get_native_id()
    before, base = _thread_ids(), os.getpriority(os.PRIO_PROCESS, tid)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        pass
    try:
        yield
    finally:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, base)
        except OSError:
            pass
        _unnice_new_threads(before, nice)


def trim_heap() -> None:
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
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for tid in _thread_ids() - before:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) == nice:
                os.setpriority(os.PRIO_PROCESS, tid, base)
        except OSError:
            pass
