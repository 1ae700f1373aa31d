"""Hot swaps under load: 8 client threads while 20 versions with different weights are published."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from paddlehot_cli.core import load
from tests.serve_fixtures.helpers import (
    metric, publish_copy, publish_swaps, start_runtime, wait_for,
)

N_SWAPS = 20


@pytest.fixture(scope="module")
def variants(exported):
    """Three weight variants of the demo MLP (different seeds) and their outputs on X."""
    x = np.random.default_rng(0).standard_normal((2, 16)).astype("float32")
    pkgs = [exported("demo:mlp", "pir", "1.0.0", seed) for seed in (11, 12, 13)]
    expected = []
    for pkg in pkgs:
        with load(pkg) as s:
            expected.append(next(iter(s.infer({"x": x}).values())))
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.allclose(expected[a], expected[b], atol=1e-3)
    return pkgs, x, expected


def test_twenty_swaps_under_load_zero_failures(tmp_path, variants):
    pkgs, x, expected = variants
    repo = tmp_path / "repo"
    which = {"1.0.0": 0}
    publish_copy(pkgs[0], repo, "mlp", "1.0.0")
    rt = start_runtime(repo, poll_interval=0.2)
    base = f"http://127.0.0.1:{rt.port}"
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 16], "data": x.ravel().tolist()}]}
    stop = threading.Event()
    results: list[tuple[int, str, object]] = []
    lock = threading.Lock()

    def client() -> None:
        local = []
        with httpx.Client(base_url=base, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v2/models/mlp/infer", json=body)
                    doc = r.json()
                    local.append((r.status_code, doc.get("model_version"), doc))
                except Exception as exc:  # noqa: BLE001 - a transport failure is a failure
                    local.append((-1, None, repr(exc)))
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(8)]
    for t in threads:
        t.start()
    try:
        publish_swaps(rt, repo, pkgs, N_SWAPS, which)
        wait_for(lambda: len(rt.manager.loaded_versions("mlp")) == 2, 10, what="old versions released")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
            assert not t.is_alive(), f"{t.name} did not finish"
    try:
        failures = [r for r in results if r[0] != 200]
        assert not failures, failures[:3]
        assert len(results) > 200
        seen = set()
        for _, version, doc in results:
            seen.add(version)
            out = np.array(doc["outputs"][0]["data"], dtype="float32").reshape(doc["outputs"][0]["shape"])
            np.testing.assert_allclose(out, expected[which[version]], rtol=1e-4, atol=1e-5,
                                       err_msg=f"response of {version}")
        assert len(seen) >= 10, seen  # traffic really moved across versions
        # old versions are released: only the newest and the warm previous one stay loaded
        assert rt.manager.loaded_versions("mlp") == [f"1.0.{N_SWAPS}", f"1.0.{N_SWAPS - 1}"]
        text = httpx.get(f"{base}/metrics").text
        assert metric(text, "paddlehot_swaps_total", model="mlp") >= N_SWAPS
        wait_for(lambda: metric(httpx.get(f"{base}/metrics").text, "paddlehot_unloads_total",
                                model="mlp") >= N_SWAPS - 1, 10, what="unloads")
        assert metric(text, "paddlehot_requests_total", outcome="error") == 0
    finally:
        rt.stop_thread()
    assert not rt.manager.loaded_refs()
