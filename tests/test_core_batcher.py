from __future__ import annotations

import threading

import numpy as np

from paddlehot_cli.core.batcher import Batcher


def test_batches_concatenate_and_split():
    calls = []

    def run(feeds):
        calls.append(feeds["x"].shape[0])
        return [feeds["x"] * 2]

    b = Batcher(run, ["x"], max_batch=8, max_delay_s=0.05, name="t-batch")
    results, done = {}, threading.Event()

    def cb(i):
        def f(out, exc):
            results[i] = (out, exc)
            if len(results) == 5:
                done.set()
        return f

    for i in range(5):
        b.submit({"x": np.full((i + 1, 3), i, "float32")}, cb(i))
    assert done.wait(5)
    b.stop()
    assert max(calls) > 1  # batched
    for i in range(5):
        out, exc = results[i]
        assert exc is None and out[0].shape == (i + 1, 3) and (out[0] == 2 * i).all()


def test_failure_is_delivered_and_batch_retried_one_by_one():
    def run(feeds):
        if feeds["x"].shape[0] > 1:
            raise RuntimeError("batch>1 unsupported")
        if feeds["x"][0, 0] < 0:
            raise RuntimeError("bad")
        return [feeds["x"]]

    b = Batcher(run, ["x"], max_batch=4, max_delay_s=0.05)
    got, ev = [], threading.Event()

    def cb(out, exc):
        got.append(exc is None)
        if len(got) == 3:
            ev.set()

    for v in (1.0, -1.0, 2.0):
        b.submit({"x": np.full((1, 2), v, "float32")}, cb)
    assert ev.wait(5)
    b.stop()
    assert sorted(got) == [False, True, True]


def test_stop_drains_queue():
    out = []
    b = Batcher(lambda f: [f["x"]], ["x"], name="t-drain")
    for i in range(20):
        b.submit({"x": np.zeros((1, 1))}, lambda o, e: out.append(e))
    b.stop()
    assert out == [None] * 20
    assert not any(t.name.startswith("t-drain") for t in threading.enumerate())
