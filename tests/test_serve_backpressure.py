"""Backpressure and hygiene of the request path, over real HTTP with a real package:
bounded queues (503 + Retry-After), bodies decoded off the event loop, every body bounded,
every acquired handle released."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import orjson
import pytest

from tests.serve_fixtures.helpers import hold_worker, metric, start_runtime, wait_for

X = np.random.default_rng(3).standard_normal((2, 16)).astype("float32")
BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 16], "data": X.ravel().tolist()}]}


@pytest.fixture()
def served(fresh_mlp_repo):
    repo = fresh_mlp_repo
    runtimes = []

    def start(**kwargs):
        rt = start_runtime(repo, **kwargs)
        runtimes.append(rt)
        return rt, f"http://127.0.0.1:{rt.port}"

    yield start
    for rt in runtimes:
        rt.stop_thread()


def test_full_queue_answers_503_with_retry_after(served):
    rt, base = served(max_queue=1, pool_max=1)
    sv = rt.manager.serving_versions()[0]
    gate, running = hold_worker(sv)  # inside a real inference call
    results: list = []
    errors: list = []

    def post():
        try:
            results.append(httpx.post(f"{base}/v2/models/mlp/infer", json=BODY, timeout=30))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    first = threading.Thread(target=post)
    first.start()
    assert running.wait(10)
    second = threading.Thread(target=post)  # waits in the queue (1 slot)
    second.start()
    wait_for(lambda: sv.batcher.waiting == 1, 10, what="a queued request")
    r = httpx.post(f"{base}/v2/models/mlp/infer", json=BODY)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "overloaded" in r.json()["error"]
    gate.set()
    for t in (first, second):
        t.join(30)
        assert not t.is_alive()
    assert not errors and [x.status_code for x in results] == [200, 200]
    text = httpx.get(f"{base}/metrics").text
    assert metric(text, "paddlehot_rejected_requests_total", reason="queue_full") == 1
    assert sv.refs == 0  # the rejected request's handle was released


def test_exception_between_acquire_and_submit_releases_the_handle(served, monkeypatch):
    rt, base = served()
    from paddlehot_cli.serve import infer as infer_module

    def boom(*a, **k):
        raise RuntimeError("injected between acquire and submit")

    monkeypatch.setattr(infer_module, "check_inputs", boom)
    r = httpx.post(f"{base}/v2/models/mlp/infer", json=BODY)
    assert r.status_code == 500
    monkeypatch.undo()
    assert httpx.post(f"{base}/v2/repository/models/mlp/unload").status_code == 200
    # a leaked handle would keep 1.0.0 alive forever: it must be released now
    wait_for(lambda: metric(httpx.get(f"{base}/metrics").text, "paddlehot_unloads_total",
                            model="mlp") == 1, 10, what="1.0.0 released")
    assert not rt.manager.serving_versions()


def test_every_endpoint_honours_max_body(served):
    rt, base = served(max_body_mb=1)
    big = b'{"ready": false, "pad": "' + b"x" * (3 << 20) + b'"}'
    assert httpx.post(f"{base}/v2/repository/index", content=big).status_code == 413
    r = httpx.put(f"{base}/v2/repository/models/mlp/labels", content=big)
    assert r.status_code == 413
    assert httpx.post(f"{base}/v2/models/mlp/infer", content=big).status_code == 413
    assert httpx.post(f"{base}/v2/repository/index").status_code == 200


def test_health_answers_within_50ms_while_a_64mb_body_decodes(served):
    rt, base = served(max_body_mb=100)
    rows = 210_000  # x:[rows,17] as JSON text: ~64 MB; 17 columns -> 400 after decoding
    data = np.random.default_rng(0).standard_normal((rows, 17)).astype("float32")
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 17],
                                     "data": data.ravel().tolist()}]})
    assert len(body) > 64 << 20
    del data
    with httpx.Client(base_url=base) as c:
        c.get("/v2/health/live")
        done = threading.Event()
        box: dict = {}

        def big():
            try:
                box["r"] = httpx.post(f"{base}/v2/models/mlp/infer", content=body, timeout=120)
            finally:
                done.set()

        t = threading.Thread(target=big)
        t.start()
        latencies = []
        while not done.is_set():
            t0 = time.perf_counter()
            assert c.get("/v2/health/live").status_code == 200
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.01)
        t.join(120)
        assert not t.is_alive()
    assert box["r"].status_code == 400, box["r"].text  # decoded, then the shape is rejected
    # Decoded on the event loop, no probe would be answered for the whole decode (1-6 s here).
    # The bound is on the 75th percentile: this box is shared (load ~8 per core), and an idle
    # server's probes there already spike to ~0.8 s now and then (scheduler, not the GIL).
    lat = sorted(latencies)
    print(f"\nhealth during a {len(body) >> 20} MB decode: {len(lat)} probes, p50 "
          f"{lat[len(lat) // 2] * 1e3:.1f} ms, p75 {lat[int(0.75 * len(lat))] * 1e3:.1f} ms, "
          f"p90 {lat[int(0.9 * len(lat))] * 1e3:.1f} ms, max {lat[-1] * 1e3:.1f} ms")
    assert len(lat) >= 10, lat  # the decode took a while: probes ran meanwhile
    assert lat[int(0.75 * len(lat))] < 0.05, lat
