"""Threads that run several predictors and exit: their successors (which get the same pthread_t)
must never meet the dead thread's oneDNN kernels (core/onednn_threads.py,
native/pdcapi/src/thread_runs.cc). Before the fix one of the two predictors failed every call
of such a successor with a bare std::exception."""

from __future__ import annotations

import threading
from collections.abc import Callable

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
