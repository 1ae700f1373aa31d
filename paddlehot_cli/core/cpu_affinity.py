"""Keep the threads that take turns on Python's GIL on one CPU (Linux).

serve's event loop and the worker thread of a package version with one intra-op thread never
run Python at the same time: every request hands the GIL from the loop to the worker and back.
Spread over two cores, each hand-over wakes a thread on the other core and moves the
interpreter's cache lines with it; on one CPU a tiny model answers markedly more requests for
less CPU each (measure with `paddlehot_cli/bench/wrk_ab.sh` against `serve --loop-cpu off`).
Paddle's intra-op threads (versions with --threads > 1), plugin workers (which release the GIL
with the official C library) and load threads keep every CPU: they are not pinned.

Only threads are pinned (sched_setaffinity on a thread id). A version's workers are pinned after
its warm-up: the OpenMP runtime resets a thread's mask at its first Paddle run, and threads that
Paddle starts then (its executor's pool) inherit the mask and should keep every CPU. A child
process inherits its parent thread's mask, so processes started from a pinned thread get the
full mask back (release()).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("paddlehot.serve")
_ALLOWED: frozenset[int] = frozenset()


def allowed_cpus() -> frozenset[int]:
    """The CPUs this process may use (cpusets and taskset respected), read before any pin."""
    global _ALLOWED
    if not _ALLOWED:
        try:
            _ALLOWED = frozenset(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            _ALLOWED = frozenset()
    return _ALLOWED


def choose(setting: str) -> int | None:
    """The CPU for the GIL's threads: `auto` (the last allowed CPU, when there are two or
    more: CPU 0 usually takes more interrupts), `off`, or a CPU number. Raises ValueError for
    anything else or a CPU this process may not use."""
    text = setting.strip().lower()
    cpus = allowed_cpus()
    if text == "off":
        return None
    if text == "auto":
        return max(cpus) if len(cpus) >= 2 else None
    try:
        cpu = int(text)
    except ValueError:
        raise ValueError(f"--loop-cpu must be auto, off or a CPU number, not {setting!r}") from None
    if cpus and cpu not in cpus:
        raise ValueError(f"--loop-cpu {cpu}: this process may only use CPUs "
                         f"{', '.join(map(str, sorted(cpus)))}")
    return cpu


def pin_this_thread(cpu: int | None) -> bool:
    """Pin the calling thread to `cpu` (None: leave it). False if the system refused."""
    return pin_thread(0, cpu)


def pin_thread(tid: int, cpu: int | None) -> bool:
    """Pin the thread with OS id `tid` (0: the calling thread) to `cpu`."""
    if cpu is None:
        return False
    allowed_cpus()  # read the full mask before the first pin
    try:
        os.sched_setaffinity(tid, {cpu})  # a thread id: only that thread, on Linux
    except (AttributeError, OSError) as exc:
        log.warning("could not keep a serving thread on CPU %s: %s", cpu, exc)
        return False
    return True


def release(pid: int) -> None:
    """Give a child process started from a pinned thread every allowed CPU again."""
    cpus = allowed_cpus()
    if cpus:
        try:
            os.sched_setaffinity(pid, cpus)
        except (AttributeError, OSError):
            pass
