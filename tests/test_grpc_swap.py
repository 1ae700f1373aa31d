"""gRPC under hot swaps and failures: 4 tritonclient.grpc clients see every swap with zero failed
requests; a failing version answers INTERNAL, trips its breaker and pinned calls get UNAVAILABLE."""

from __future__ import annotations

import os
import threading

import httpx
import numpy as np
import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException

from paddlehot_cli.core import load
from tests.conftest import cli
from tests.serve_fixtures.helpers import (
    hold_worker, metric, publish_copy, publish_swaps, start_runtime, wait_for,
)

X = np.random.default_rng(5).standard_normal((2, 16)).astype("float32")
N_SWAPS = 10
BATCH1 = os.path.join(os.path.dirname(__file__), "serve_fixtures", "batch1_mlp.py")


def _request() -> list[tg.InferInput]:
    inp = tg.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X)
    return [inp]


def test_hot_swaps_under_four_grpc_clients_zero_failures(tmp_path, exported):
    pkgs = [exported("demo:mlp", "pir", "1.0.0", seed) for seed in (11, 12, 13)]
    expected = []
    for pkg in pkgs:
        with load(pkg) as s:
            expected.append(s.infer({"x": X})["logits"])
    repo = tmp_path / "repo"
    which = {"1.0.0": 0}
    publish_copy(pkgs[0], repo, "mlp", "1.0.0")
    rt = start_runtime(repo, poll_interval=0.2, grpc_port=0)
    url = f"127.0.0.1:{rt.grpc.port}"
    stop = threading.Event()
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def client() -> None:
        local = []
        c = tg.InferenceServerClient(url)
        while not stop.is_set():
            try:
                res = c.infer("mlp", _request())
                local.append((res.get_response().model_version, res.as_numpy("logits")))
            except Exception as exc:  # noqa: BLE001 - any failure is a failed request
                local.append(("failed", repr(exc)))
        c.close()
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=client, name=f"grpc-client-{i}") for i in range(4)]
    for t in threads:
        t.start()
    try:
        publish_swaps(rt, repo, pkgs, N_SWAPS, which)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        failures = [r for r in results if r[0] == "failed"]
        assert not failures, failures[:3]
        assert len(results) > 100
        for version, out in results:
            np.testing.assert_allclose(out, expected[which[version]], rtol=1e-4, atol=1e-5,
                                       err_msg=f"response of {version}")
        assert len({v for v, _ in results}) >= 5  # traffic really moved across versions
        text = httpx.get(f"http://127.0.0.1:{rt.port}/metrics").text
        assert metric(text, "paddlehot_requests_total", protocol="grpc", outcome="ok") == len(results)
    finally:
        rt.stop_thread()
    assert not rt.manager.loaded_refs()


def test_failing_version_internal_then_breaker_unavailable(tmp_path, exported):
    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 41), repo, "mlp", "1.0.0")
    rt = start_runtime(repo, poll_interval=0.2, breaker={"failures": 3, "cooldown_s": 600},
                       grpc_port=0)
    try:
        # a real model with a real bug: hard-coded batch 1; warm-up (batch 1) passes
        proc = cli("export", f"{BATCH1}:Batch1MLP", "--input", "x:float32:[-1,16]", "--name", "mlp",
                   "--repo", repo, "--version", "1.1.0", "--no-validate", "--dim-sizes", "1")
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: rt.manager.loaded_versions("mlp")[:1] == ["1.1.0"], 20, what="1.1.0")
        c = tg.InferenceServerClient(f"127.0.0.1:{rt.grpc.port}")
        seen = []
        for _ in range(8):
            try:
                seen.append(c.infer("mlp", _request()).get_response().model_version)
            except InferenceServerException as exc:
                seen.append((exc.status(), exc.message()))
        for status, message in seen[:3]:
            assert status == "StatusCode.INTERNAL" and "inference failed on mlp 1.1.0" in message
        assert seen[3:] == ["1.0.0"] * 5, seen  # rolled back to the warm previous version
        try:
            c.infer("mlp", _request(), model_version="1.1.0")
            raise AssertionError("a pinned call to an open breaker must fail")
        except InferenceServerException as exc:
            assert exc.status() == "StatusCode.UNAVAILABLE" and "breaker open" in exc.message()
        assert c.is_server_ready()
    finally:
        rt.stop_thread()


def test_full_queue_is_unavailable_and_releases_the_handle(tmp_path, exported):
    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 51), repo, "mlp", "1.0.0")
    rt = start_runtime(repo, max_queue=1, pool_max=1, grpc_port=0)
    try:
        sv = rt.manager.serving_versions()[0]
        gate, running = hold_worker(sv)  # inside a real inference call
        url = f"127.0.0.1:{rt.grpc.port}"
        versions: list = []

        def call() -> None:
            versions.append(tg.InferenceServerClient(url).infer("mlp", _request())
                            .get_response().model_version)

        first = threading.Thread(target=call, name="grpc-first")
        first.start()
        assert running.wait(10)
        second = threading.Thread(target=call, name="grpc-queued")  # the one queue slot
        second.start()
        wait_for(lambda: sv.batcher.waiting == 1, 10, what="a queued request")
        try:
            tg.InferenceServerClient(url).infer("mlp", _request())
            raise AssertionError("a call beyond a full queue must be refused")
        except InferenceServerException as exc:
            assert exc.status() == "StatusCode.UNAVAILABLE" and "overloaded" in exc.message()
        gate.set()
        for t in (first, second):
            t.join(30)
        assert versions == ["1.0.0", "1.0.0"]
        text = httpx.get(f"http://127.0.0.1:{rt.port}/metrics").text
        assert metric(text, "paddlehot_rejected_requests_total", reason="queue_full") == 1
        assert sv.refs == 0  # the refused call's handle was released
    finally:
        rt.stop_thread()
