"""Threads that run several predictors and exit: their successors (which get the same pthread_t)
must never meet the dead thread's oneDNN kernels (core/onednn_threads.py,
native/pdcapi/src/thread_runs.cc). Before the fix one of the two predictors failed every call
of such a successor with a bare std::exception."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from paddlehot_cli.core import load

Run = Callable[[], np.ndarray]


def churn_threads(runs: dict[str, Run], rounds: int = 40) -> list[str]:
    """`rounds` short-lived threads, each running every predictor once (the order alternates, so
    each one is sometimes not the last a thread ran) and exiting: every answer must be exact."""
    want = {name: run() for name, run in runs.items()}
    errors: list[str] = []

    def one_thread(order: list[str]) -> None:
        for name in order:
            try:
                got = runs[name]()
            except Exception as exc:  # noqa: BLE001 - the failure under test is any exception
                errors.append(f"{name}: {exc}")
                return
            if not np.array_equal(got, want[name]):
                errors.append(f"{name}: wrong answer")

    names = list(runs)
    for i in range(rounds):
        order = names if i % 2 else names[::-1]
        t = threading.Thread(target=one_thread, args=(order,), name=f"churn-{i}")
        t.start()
        t.join(60)
    return errors


def test_package_predictors_on_threads_that_come_and_go(exported):
    pkg = exported("demo:mlp")
    a, b = load(pkg), load(pkg)
    x = {"x": np.random.default_rng(3).standard_normal((2, 16)).astype("float32")}
    try:
        errors = churn_threads({"a": lambda: a.infer(x)["logits"],
                                "b": lambda: b.infer(x)["logits"]})
    finally:
        a.close()
        b.close()
    assert errors == []


def test_a_stale_predictor_is_renewed_before_a_request_needs_it(exported):
    """A thread that ran two versions' predictors exits (a client pool recycling its threads,
    the prelude of a burst): the pool keeper renews the stale predictor in the background, so the
    next thread's first call pays no creation (it used to renew on that call: a whole creation,
    1.2 s on resnet18), and its answer is exact."""
    slow = str(Path(__file__).parent / "models" / "slow_create.py") + ":make"
    pkg = exported(slow, "pir", "1.0.0", 0, "--input", "x:float32:[-1,256,4,4]")
    a, b = load(pkg), load(pkg)
    x = {"x": np.random.default_rng(3).random((1, 256, 4, 4)).astype("float32")}
    try:
        want = a.infer(x)
        t = threading.Thread(target=lambda: (a.infer(x), b.infer(x)))  # a is not its last
        t.start()
        t.join()
        deadline = time.monotonic() + 30
        while a.pool.counters.renewed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.pool.counters.renewed == 1
        took: list[float] = []
        got: list[dict] = []

        def first_call() -> None:
            start = time.perf_counter()
            got.append(a.infer(x))
            took.append(time.perf_counter() - start)

        t = threading.Thread(target=first_call)  # likely the dead thread's pthread_t again
        t.start()
        t.join()
        with a.pool.lease() as bound:  # what a renewal on the request path costs
            t0 = time.perf_counter()
            bound.renew()
            creation_s = time.perf_counter() - t0  # ~0.5 s; a call takes milliseconds
        assert took[0] < creation_s / 2, (took, creation_s)
        assert all(np.array_equal(got[0][k], want[k]) for k in want)
    finally:
        a.close()
        b.close()
