from __future__ import annotations

import threading

import numpy as np
import pytest

from paddlehot_cli.core import load
from paddlehot_cli.core.pool import Pool, PoolClosed


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_pool_grows_to_max_and_reclaims_idle():
    made, dead, clock = [], [], Clock()
    pool = Pool(lambda: made.append(len(made)) or made[-1], min_size=1, max_size=3, idle_s=10,
                destroy=dead.append, clock=clock)
    a, b, c = pool.acquire(), pool.acquire(), pool.acquire()
    assert pool.size == 3 and pool.in_use == 3
    with pytest.raises(TimeoutError):
        pool.acquire(timeout=0.01)
    for item in (a, b, c):
        pool.release(item)
    clock.t = 11
    assert pool.reclaim() == 2 and pool.size == 1 and len(dead) == 2
    pool.close()
    assert pool.size == 0
    with pytest.raises(PoolClosed):
        pool.acquire()


def test_pool_close_waits_for_leases():
    pool = Pool(object, min_size=1, max_size=1)
    item = pool.acquire()
    threading.Timer(0.1, pool.release, args=(item,)).start()
    pool.close(timeout=5)
    assert pool.size == 0


def test_package_pool_of_clones(exported):
    with load(exported("demo:mlp"), pool_min=1, pool_max=3) as s:
        x = np.ones((2, 16), "float32")
        want = next(iter(s.infer({"x": x}).values()))
        outs = []
        threads = [threading.Thread(target=lambda: outs.append(next(iter(s.infer({"x": x}).values()))))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
            assert not t.is_alive()
        assert len(outs) == 6  # a thread that raised appended nothing
        assert 1 <= s.pool_size <= 3
        for o in outs:
            np.testing.assert_allclose(o, want)
