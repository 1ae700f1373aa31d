"""Pools that breathe (issue 27): growth in the background, timed reclaim, growth failure, the
memory budget - on a real package (demo:cnn, real Paddle predictors)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from paddlehot_cli.bench.pool_breathing import closed_loop
from paddlehot_cli.core import load, memory_budget
from paddlehot_cli.core.memory_budget import BudgetRefused

X = {"image": np.ones((1, 3, 32, 32), "float32")}


def wait_for(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def cnn(exported):
    return exported("demo:cnn")


def infer_in_thread(s):
    done: dict = {}

    def run():
        done["out"] = s.infer(X)
        done["at"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    return t, done


@contextmanager
def a_call_waiting(s):
    """The one predictor held here while a call waits for it (what asks the keeper to grow);
    on leaving, the predictor goes back and the call finishes. Yields the call's result dict."""
    held = s.pool.acquire()
    t, done = infer_in_thread(s)
    try:
        yield done
    finally:
        s.pool.release(held)
        t.join(30)


def test_growth_never_blocks_a_request(cnn):
    """A request that finds every predictor busy is served by the first one that comes back,
    while the keeper creates the next predictor in the background."""
    with load(cnn, pool_min=1, pool_max=2, idle_s=30) as s:
        want = s.infer(X)["logits"]
        pool = s.pool
        held = pool.acquire()  # the only predictor is busy
        t, done = infer_in_thread(s)
        assert wait_for(lambda: pool._growing == 1, 10), "no growth was started"
        released = time.monotonic()
        pool.release(held)
        t.join(30)
        assert "out" in done
        # served by the predictor that came back, not by the one being created
        assert done["at"] - released < 0.1
        assert pool._growing == 1 or pool.counters.grown == 1
        np.testing.assert_allclose(done["out"]["logits"], want, rtol=1e-5)
        assert wait_for(lambda: pool.size == 2)
        assert pool.counters.grown == 1 and pool.counters.failed == 0


def slow_growth(pool, seconds):
    """The keeper's next creations take `seconds` longer (resnet18's take 1.5 s; the CNN's a few
    ms, too short to see who waits for them)."""
    make = pool._factory

    def factory():
        time.sleep(seconds)
        return make()

    pool._factory = factory


@pytest.mark.parametrize("kind", ["package", "plugin"])
def test_no_call_waits_for_the_predictor_being_created(kind, request):
    """Two clients calling back to back on a pool of one while the keeper creates the second
    predictor: each call waits at most for the other client's call, never for the creation.
    (Before: the client that released took its predictor straight back, so the other one waited
    for the whole creation - p99 16x steady on resnet18.)"""
    from plugin_fixtures.helpers import C_API

    target = request.getfixturevalue("cnn" if kind == "package" else "cnn_so")
    with load(target, pool_min=1, pool_max=2, idle_s=30, c_api=C_API) as s:
        # 64 images: calls of ~10 ms, long enough that the thread that released always came
        # back before the waiter woke (as with resnet18's 50 ms)
        batch = {"image": np.ones((64, 3, 32, 32), "float32")}
        s.infer(batch)
        slow_growth(s.pool, 2.0)
        give_up = time.monotonic() + 60
        calls = closed_loop(lambda: s.infer(batch), 2,
                            lambda: s.pool.size == 2 or time.monotonic() > give_up)
        assert s.pool.counters.grown == 1, "the pool did not grow"
        worst = max(lat for _, lat in calls)
        # 0.75 s is noise on a busy box, the creation takes 2 s
        assert worst < 0.75, f"a call waited {worst:.2f} s while the pool grew"


def test_idle_predictors_are_reclaimed_without_traffic(cnn):
    with load(cnn, pool_min=1, pool_max=2, idle_s=0.5) as s:
        pool = s.pool
        held = pool.acquire()
        t, _ = infer_in_thread(s)
        assert wait_for(lambda: pool.size == 2)
        pool.release(held)
        t.join(30)
        # no call at all from here: only the keeper's timer can shrink the pool
        assert wait_for(lambda: pool.size == 1, 10), "the idle predictor was never reclaimed"
        assert pool.counters.reclaimed == 1
        assert s.infer(X)["logits"].shape == (1, 10)  # the one left still serves


def test_min_equal_max_is_a_fixed_pool(cnn):
    with load(cnn, pool_min=2, pool_max=2, idle_s=0.05) as s:
        # (the keeper still looks after it, only to renew stale predictors: onednn_threads)
        assert s.pool.size == 2 and not s.pool.wants_growth()
        s.infer(X)
        time.sleep(0.3)
        c = s.pool.counters
        assert s.pool.size == 2 and (c.grown, c.reclaimed, c.refused, c.failed) == (0, 0, 0, 0)


def test_failed_growth_keeps_the_version_serving(cnn, tmp_path):
    import shutil

    pkg = tmp_path / "cnn"
    shutil.copytree(cnn, pkg)
    with load(pkg, pool_min=1, pool_max=2, idle_s=30) as s:
        pool = s.pool
        params = pkg / "model.pdiparams"
        params.rename(tmp_path / "away")  # a careless operator cleans up the package dir
        with a_call_waiting(s) as done:
            assert wait_for(lambda: pool.counters.failed >= 1), "growth did not fail"
        assert "out" in done and pool.size == 1
        assert s.infer(X)["logits"].shape == (1, 10)
        (tmp_path / "away").rename(params)  # back: the next growth (after its backoff) works
        with a_call_waiting(s):
            assert wait_for(lambda: pool.size == 2, 20), "growth was not retried"


def test_memory_budget_refuses_growth_and_loads(cnn):
    try:
        with load(cnn, pool_min=1, pool_max=2, idle_s=30) as s:
            pool = s.pool
            memory_budget.configure(memory_budget.rss_bytes() + s.predictor_cost // 4)
            with a_call_waiting(s) as done:
                assert wait_for(lambda: pool.counters.refused >= 1), "growth was not refused"
            assert "out" in done and pool.size == 1
            memory_budget.configure(memory_budget.rss_bytes() // 2)
            with pytest.raises(BudgetRefused, match="memory budget"):
                load(cnn, pool_min=1, pool_max=1)
    finally:
        memory_budget.configure(None)


def test_a_load_shrinks_idle_pools_to_make_room(cnn, exported):
    other = exported("demo:cnn", "pir", "2.0.0")
    try:
        with load(cnn, pool_min=1, pool_max=3, idle_s=300) as s:
            pool = s.pool
            held = [pool.acquire()]
            for _ in range(2):
                t, _ = infer_in_thread(s)
                assert wait_for(lambda n=len(held) + 1: pool.size == n, 20)
                held.append(pool.acquire()) if pool.size < 3 else None
                t.join(30)
            for h in held:
                pool.release(h)
            assert wait_for(lambda: pool.size == 3 and pool.in_use == 0)
            # room for the new version only if the idle predictors go
            memory_budget.configure(memory_budget.rss_bytes() + s.predictor_cost // 2)
            with load(other, pool_min=1, pool_max=1) as s2:
                assert s2.infer(X)["logits"].shape == (1, 10)
            assert pool.size == 1 and pool.counters.reclaimed == 2
    finally:
        memory_budget.configure(None)


@pytest.fixture
def cnn_so(cnn):
    from plugin_fixtures.helpers import build

    return build(cnn, name="cnn")


def test_plugin_pool_grows_in_the_background_and_shrinks_again(cnn_so):
    """A plugin version's pool (one handle per predictor) grows without blocking a request,
    is reclaimed with no traffic, and can grow again after that (its model bytes are kept)."""
    from plugin_fixtures.helpers import C_API

    from paddlehot_cli.core.plugin_loader import load_plugin

    with load(cnn_so, pool_min=1, pool_max=2, c_api=C_API) as ref_s:
        want = ref_s.infer(X)["logits"]
    with load_plugin(cnn_so, pool_min=1, pool_max=2, c_api=C_API, idle_s=0.5) as s:
        pool = s.pool
        for round_ in range(2):  # the second round: regrowth after a reclaim
            held = pool.acquire()
            t, done = infer_in_thread(s)
            assert wait_for(lambda: pool._growing == 1 or pool.size == 2, 10)
            pool.release(held)
            t.join(30)
            np.testing.assert_allclose(done["out"]["logits"], want, rtol=1e-5)
            assert wait_for(lambda: pool.size == 2, 20), f"round {round_}: no growth"
            assert wait_for(lambda: pool.size == 1, 10), f"round {round_}: no reclaim"
        assert pool.counters.grown == 2 and pool.counters.reclaimed == 2
        assert pool.counters.failed == 0
        np.testing.assert_allclose(s.infer(X)["logits"], want, rtol=1e-5)


def test_plugin_growth_refused_by_the_budget_keeps_serving(cnn_so):
    from plugin_fixtures.helpers import C_API

    from paddlehot_cli.core.plugin_loader import load_plugin

    try:
        with load_plugin(cnn_so, pool_min=1, pool_max=2, c_api=C_API) as s:
            memory_budget.configure(memory_budget.rss_bytes() + 1)
            held = s.pool.acquire()
            t, done = infer_in_thread(s)
            assert wait_for(lambda: s.pool.counters.refused >= 1)
            s.pool.release(held)
            t.join(30)
            assert "out" in done and s.pool_size == 1
    finally:
        memory_budget.configure(None)


def test_swap_during_growth(exported, tmp_path):
    """v1 is growing when v2 arrives: v2 starts at its min, warm; v1, kept warm for rollback,
    ends at its min (the growth under way is dropped); once v1 leaves, nothing of it is left."""
    import shutil

    from paddlehot_cli.core.loaded import Batching, Loaded
    from paddlehot_cli.core.manager import Manager, ManagerConfig
    from paddlehot_cli.core.version_policy import VersionPolicy

    for v in ("1.0.0", "2.0.0"):
        shutil.copytree(exported("demo:cnn", "pir", v), tmp_path / "cnn" / v)

    def loader(path):
        return Loaded(load(path, pool_min=1, pool_max=2, idle_s=300), Batching(1, 0.0, 2))

    mgr = Manager(loader, ManagerConfig(policy=VersionPolicy(latest=1, keep_previous=True)))
    try:
        avail = {v: tmp_path / "cnn" / v for v in ("1.0.0", "2.0.0")}
        mgr.set_available("cnn", {"1.0.0": avail["1.0.0"]})
        assert mgr.wait_idle(120)
        (v1,) = [r.servable for r in mgr.serving_versions()]
        held = v1.pool.acquire()
        served = threading.Event()
        mgr.submit(mgr.acquire("cnn"), X, lambda out, err: served.set() if err is None else None)
        assert wait_for(lambda: v1.pool._growing == 1, 10)
        mgr.set_available("cnn", avail)  # v2 loads and takes the traffic while v1 grows
        assert mgr.wait_idle(120)
        v1.pool.release(held)
        assert served.wait(30)
        refs = {r.version: r.servable for r in mgr.serving_versions()}
        assert set(refs) == {"1.0.0", "2.0.0"}
        assert wait_for(lambda: v1.pool._growing == 0)
        assert refs["2.0.0"].pool.size == 1 and v1.pool.size == 1
        mgr.set_available("cnn", {"2.0.0": avail["2.0.0"]})  # v1 leaves
        assert mgr.wait_idle(60)
        assert wait_for(lambda: v1.pool.closed and v1.pool.size == 0, 30)
    finally:
        mgr.stop()


def test_serve_pool_flags_metrics_metadata_and_index(exported, tmp_path):
    """`serve --prefer plugin --pool-min 1 --pool-max 2 --pool-idle-s 1`: two concurrent
    clients grow the pool (seen in /metrics, the metadata and the index), and with no traffic it
    shrinks back. (A plugin's calls release the GIL, so two requests really overlap; a package
    predictor holds it while it runs.)"""
    import json
    import os
    import signal
    import subprocess

    import httpx

    from tests.conftest import cli
    from tests.serve_fixtures.helpers import free_port, publish_copy, serve_argv

    v1 = publish_copy(exported("demo:cnn"), tmp_path / "repo", "cnn", "1.0.0")
    built = cli("build-plugin", v1, "-o", v1 / "plugin.so")
    assert built.returncode == 0, built.stderr
    port = free_port()
    proc = subprocess.Popen(
        serve_argv(tmp_path / "repo", "--port", port, "--prefer", "plugin", "--pool-min", "1",
                   "--pool-max", "2", "--pool-idle-s", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, GLOG_minloglevel="2"))
    base = f"http://127.0.0.1:{port}"
    body = {"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                        "data": [0.5] * (3 * 32 * 32)}]}

    def pool_meta():
        return httpx.get(f"{base}/v2/models/cnn").json()["parameters"]["serving"]["pool"]

    def burst():
        with httpx.Client() as c:
            for _ in range(20):
                assert c.post(f"{base}/v2/models/cnn/infer", json=body).status_code == 200

    try:
        assert wait_for(lambda: _up(base), 120), "serve did not get ready"
        assert pool_meta()["size"] == 1 and pool_meta()["max"] == 2
        # `paddlehot bench` samples the server's pool size with its RSS (--pid: this server)
        report = tmp_path / "bench.json"
        run = cli("bench", f"{base}/cnn", "-c", "2", "-d", "3", "--pid", str(proc.pid),
                  "--json", report)
        assert run.returncode == 0, run.stderr
        timeline = json.loads(report.read_text())["levels"][0]["timeline"]
        assert timeline and all(p["rss_mb"] > 0 for p in timeline)
        assert {p["pool_size"] for p in timeline} <= {1, 2}  # (its warm-up may have grown it)
        if len({p["pool_size"] for p in timeline}) == 2:  # it grew within the level
            assert "pool at concurrency 2" in run.stdout  # the timeline is printed too
        grown = False
        for _ in range(10):  # two clients at once until the keeper grew the pool
            threads = [threading.Thread(target=burst) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            if pool_meta()["grown"] >= 1:
                grown = True
                break
        assert grown, pool_meta()
        metrics = httpx.get(f"{base}/metrics").text
        # the bench's level may have grown it too (then the 1 s timer reclaimed it): the counter
        # says what the pool says
        count = pool_meta()["grown"]
        assert f'paddlehot_pool_grown_total{{model="cnn",version="1.0.0"}} {count:.1f}' in metrics
        # no traffic: the timer brings it back to 1 (index and gauge say so)
        assert wait_for(lambda: pool_meta()["size"] == 1, 15), pool_meta()
        row = next(r for r in httpx.post(f"{base}/v2/repository/index").json()
                   if r["name"] == "cnn")
        assert row["pool_size"] == 1
        assert 'paddlehot_pool_size{model="cnn",version="1.0.0"} 1.0' in \
            httpx.get(f"{base}/metrics").text
        assert pool_meta()["reclaimed"] >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _up(base):
    import httpx

    try:
        return httpx.get(f"{base}/v2/health/ready").status_code == 200
    except httpx.HTTPError:
        return False


def test_c_runtime_grows_from_the_model_files(cnn_so):
    """A C host's handle with pool_max > 1: every predictor serves (no template), and the ones
    created under concurrency from the model files compute the same as a pool of one. (The
    template's memory - twice a predictor at pool_initial 1 - shows with resnet18, not with this
    small model: see the report of issue 27.)"""
    import ctypes

    from plugin_fixtures.helpers import Raw, tensor

    r = Raw(cnn_so)
    one = r.open_handle(pool_max=1)
    grows = r.open_handle(pool_initial=1, pool_max=4)
    x = X["image"]
    outs = [np.empty((1, 10), "float32") for _ in range(8)]

    def call(i):
        rc = r.infer(grows, ctypes.byref(tensor("image", x)), 1,
                     ctypes.byref(tensor(None, outs[i])), 1)
        assert rc == 0, r.last_error()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    want = np.empty((1, 10), "float32")
    assert r.infer(one, ctypes.byref(tensor("image", x)), 1, ctypes.byref(tensor(None, want)),
                   1) == 0
    for o in outs:
        np.testing.assert_allclose(o, want, rtol=1e-5)
    r.close(one)
    r.close(grows)


def test_the_c_host_benchmark_sees_its_pool_breathe(cnn_so):
    """bench/c_pool.py (`pool_breathing --host c`): a plugin opened as a C or Go host opens it,
    one handle of 1..2 with a 0.5 s idle timeout. Its pool size, as pdcapi counts live
    predictors, rises under two clients and falls back with no traffic; answers are the
    package's."""
    from paddlehot_cli.bench.c_pool import CPoolPlugin

    p = CPoolPlugin(cnn_so, 1, 2, idle_s=0.5)
    try:
        base = p.pool_size  # pdcapi counts the whole process: other tests' handles too
        want = p.infer(X)["logits"]
        bad: list = []

        def call() -> None:
            if not np.array_equal(p.infer(X)["logits"], want):
                bad.append(1)

        end = time.monotonic() + 30
        closed_loop(call, 2, lambda: p.pool_size > base or bool(bad) or time.monotonic() > end)
        assert not bad and p.pool_size == base + 1
        assert wait_for(lambda: p.pool_size == base, 15), "the idle predictor was never reclaimed"
    finally:
        p.close()
