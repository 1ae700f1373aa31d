"""Load generation: closed loop (N clients back to back) or open loop (fixed arrival rate).

Each worker thread owns its caller (its own keep-alive connection over HTTP). Latency in the open
loop is measured from the scheduled send time, so a slow server cannot hide queueing delay
(no coordinated omission).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from typing import Callable, Mapping, Sequence

import numpy as np

from paddlehot_cli.bench.stats import Sample
from paddlehot_cli.bench.targets import Target

Feeds = Mapping[str, np.ndarray]


def _record(call: Callable[[Feeds], str | None], feeds: Feeds, t0: float,
            scheduled: float | None = None) -> Sample:
    start = time.perf_counter()
    try:
        version = call(feeds)
        ok, error = True, None
    except Exception as exc:  # every failure is counted, never raised out of a worker
        version, ok, error = None, False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    end = time.perf_counter()
    began = scheduled if scheduled is not None else start
    return Sample(began - t0, end - began, ok, version, error)


def run_closed(
    target: Target, feeds: Sequence[Feeds], concurrency: int, t0: float,
    duration: float | None, requests: int | None, on_done: Callable[[int], None] = lambda n: None,
) -> list[Sample]:
    stop_at = time.perf_counter() + duration if duration is not None else float("inf")
    counter = itertools.count()
    results: list[list[Sample]] = [[] for _ in range(concurrency)]

    def worker(index: int) -> None:
        call, cleanup = target.new_caller()
        mine = results[index]
        try:
            for n in counter:
                if (requests is not None and n >= requests) or time.perf_counter() >= stop_at:
                    break
                mine.append(_record(call, feeds[n % len(feeds)], t0))
                on_done(1)
        finally:
            cleanup()

    _run_threads(worker, concurrency)
    return [s for r in results for s in r]


def run_open(
    target: Target, feeds: Sequence[Feeds], concurrency: int, t0: float, rate: float,
    duration: float | None, requests: int | None, on_done: Callable[[int], None] = lambda n: None,
) -> list[Sample]:
    total = requests if requests is not None else int(rate * (duration or 0))
    tasks: queue.Queue = queue.Queue()
    results: list[list[Sample]] = [[] for _ in range(concurrency)]
    begin = time.perf_counter()
    deadline = begin + total / rate + 30.0  # a stuck server cannot hold the run forever

    def worker(index: int) -> None:
        call, cleanup = target.new_caller()
        try:
            while True:
                item = tasks.get()
                if item is None:
                    return
                n, scheduled = item
                if time.perf_counter() > deadline:
                    results[index].append(Sample(scheduled - t0, 0.0, False, None, "dropped"))
                    continue
                results[index].append(_record(call, feeds[n % len(feeds)], t0, scheduled))
                on_done(1)
        finally:
            cleanup()

    def dispatch() -> None:
        for n in range(total):
            scheduled = begin + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            tasks.put((n, scheduled))
        for _ in range(concurrency):
            tasks.put(None)

    dispatcher = threading.Thread(target=dispatch, name="bench-dispatch", daemon=True)
    dispatcher.start()
    _run_threads(worker, concurrency)
    dispatcher.join()
    return [s for r in results for s in r]


def _run_threads(worker: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=worker, args=(i,), name=f"bench-client-{i}", daemon=True)
               for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
