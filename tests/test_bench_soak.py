"""The soak figures of `bench --swap-every`: the RSS slope per swap sees a leak of one model per
swap and not a flat server, and process_facts counts mapped plugin files and fds from /proc."""

from __future__ import annotations

import mmap
import os

from paddlehot_cli.bench.resources import process_facts
from paddlehot_cli.bench.swap_stats import SwapEvent, rss_slope_mb_per_swap

MB = 2**20


def _run(leak_mb: float, swaps: int = 20) -> float | None:
    events = [SwapEvent(at=2.0 * (k + 1), version=f"1.0.{k}") for k in range(swaps)]
    trace = []
    for i in range(4 * (swaps + 1)):  # one sample every 0.5 s, noise of +-3 MB
        t = 0.5 * i
        done = sum(e.at < t for e in events)
        trace.append((t, (500 + leak_mb * done + (3 if i % 2 else -3)) * MB))
    return rss_slope_mb_per_swap(events, trace, trace[-1][1])


def test_slope_sees_one_model_per_swap_and_not_a_flat_server():
    assert abs(_run(38.0) - 38.0) < 1.0
    assert abs(_run(0.0)) < 0.5
    failed = [SwapEvent(1.0, "?", error="disk full")]
    assert rss_slope_mb_per_swap(failed, [(0.0, MB)], MB) is None  # too few points


def test_process_facts_count_plugin_mappings_and_fds():
    before = process_facts(os.getpid())
    fd = os.memfd_create("paddlehot-plugin:test-1.0.0-plugin.so")
    os.ftruncate(fd, 4096)
    view = mmap.mmap(fd, 4096, prot=mmap.PROT_READ)
    during = process_facts(os.getpid())
    assert during["plugin_mappings"] == before["plugin_mappings"] + 1
    assert during["open_fds"] >= before["open_fds"] + 1  # (Python's mmap holds a dup too)
    view.close()
    os.close(fd)
    after = process_facts(os.getpid())
    assert (after["plugin_mappings"], after["open_fds"]) == (before["plugin_mappings"],
                                                            before["open_fds"])
    assert process_facts(2**22 + 12345) is None  # no such process
