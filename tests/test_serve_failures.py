"""Corrupt and partial versions never replace the serving one; a failing version trips its
breaker and traffic rolls back to the previous version."""

from __future__ import annotations

import json
import os

import httpx
import numpy as np

from tests.conftest import cli
from tests.serve_fixtures.clients import Clients
from tests.serve_fixtures.helpers import (
    copy_unpublished,
    metric,
    publish_copy,
    start_runtime,
    wait_for,
)

X = np.random.default_rng(2).standard_normal((2, 16)).astype("float32")
BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 16], "data": X.ravel().tolist()}]}
BODY_BYTES = json.dumps(BODY).encode()
FIXTURE = os.path.join(os.path.dirname(__file__), "serve_fixtures", "batch1_mlp.py")


def test_corrupt_and_partial_versions_leave_serving_version(tmp_path, exported):
    good = exported("demo:mlp")
    repo = tmp_path / "repo"
    publish_copy(good, repo, "mlp", "1.0.0")
    rt = start_runtime(repo, poll_interval=0.2)
    base = f"http://127.0.0.1:{rt.port}"
    clients = Clients(f"{base}/v2/models/mlp/infer", lambda: BODY_BYTES, n=2).__enter__()
    try:
        mdir = repo / "mlp"
        bad = copy_unpublished(good, mdir / "1.1.0", "mlp", "1.1.0")  # bad checksum
        data = bytearray((bad / "model.pdiparams").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bad / "model.pdiparams").write_bytes(bytes(data))
        trunc = copy_unpublished(good, mdir / "1.2.0", "mlp", "1.2.0")  # truncated params
        (trunc / "model.pdiparams").write_bytes((trunc / "model.pdiparams").read_bytes()[:100])
        missing = copy_unpublished(good, mdir / "1.3.0", "mlp", "1.3.0")  # missing file
        (missing / "model.json").unlink()
        partial = mdir / "1.4.0"  # a copy in progress: no manifest yet
        partial.mkdir()
        (partial / "model.json").write_bytes((good / "model.json").read_bytes())
        (mdir / ".1.5.0.tmp-abc").mkdir()  # a staging dir: ignored
        text = lambda: httpx.get(f"{base}/metrics").text
        wait_for(lambda: all(metric(text(), "paddlehot_invalid_versions_total", version=v) >= 1
                             for v in ("1.1.0", "1.2.0", "1.3.0")), 15, what="invalid versions")
        # checksums that match but bytes paddle cannot load: the load fails, nothing changes
        garbage = copy_unpublished(good, tmp_path / "garbage", "mlp", "1.6.0")
        (garbage / "model.pdiparams").write_bytes(b"\0" * 64)
        from paddlehot_cli.core.manifest import file_entry

        man = json.loads((garbage / "paddlehot.json").read_text())
        man["files"]["model.pdiparams"] = file_entry(garbage / "model.pdiparams")
        (garbage / "paddlehot.json").write_text(json.dumps(man))
        os.rename(garbage, mdir / "1.6.0")
        wait_for(lambda: metric(text(), "paddlehot_load_failures_total", version="1.6.0") >= 1, 15,
                 what="load failure")
        assert rt.manager.loaded_versions("mlp") == ["1.0.0"]
        index = {r["version"]: r for r in httpx.post(f"{base}/v2/repository/index").json()}
        assert index["1.6.0"]["state"] == "UNAVAILABLE" and "paddle" in index["1.6.0"]["reason"]
        # the copy in progress completes: now it is served
        os.rename(partial, tmp_path / "gone")
        publish_copy(good, repo, "mlp", "1.4.0")
        wait_for(lambda: rt.manager.loaded_versions("mlp")[:1] == ["1.4.0"], 15, what="1.4.0")
    finally:
        clients.stop()  # asserts every client thread finished without crashing
        rt.stop_thread()
    assert clients.outcomes and not clients.failed(), clients.failed()[:3]
    assert set(clients.by_version()) <= {"1.0.0", "1.4.0"}


def test_failing_version_trips_breaker_and_rolls_back(fresh_mlp_repo):
    repo = fresh_mlp_repo
    rt = start_runtime(repo, poll_interval=0.2, breaker={"failures": 3, "cooldown_s": 600})
    base = f"http://127.0.0.1:{rt.port}"
    try:
        # a real model with a real bug: hard-coded batch 1; warm-up (batch 1) passes
        proc = cli("export", f"{FIXTURE}:Batch1MLP", "--input", "x:float32:[-1,16]", "--name", "mlp",
                   "--repo", repo, "--version", "1.1.0", "--no-validate", "--dim-sizes", "1")
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: rt.manager.loaded_versions("mlp")[:1] == ["1.1.0"], 20, what="1.1.0")
        with httpx.Client(base_url=base) as c:
            seen = [c.post("/v2/models/mlp/infer", json=BODY) for _ in range(10)]
        codes = [(r.status_code, r.json().get("model_version")) for r in seen]
        assert [s for s, _ in codes[:3]] == [500, 500, 500], codes
        assert "inference failed" in seen[0].json()["error"]
        assert codes[3:] == [(200, "1.0.0")] * 7, codes  # rolled back
        text = httpx.get(f"{base}/metrics").text
        assert metric(text, "paddlehot_rollbacks_total", version="1.1.0") == 1
        assert metric(text, "paddlehot_breaker_state", version="1.1.0") == 2
        r = httpx.post(f"{base}/v2/models/mlp/versions/1.1.0/infer", json=BODY)
        assert r.status_code == 503 and "breaker open" in r.json()["error"]
        assert httpx.get(f"{base}/v2/health/ready").status_code == 200
    finally:
        rt.stop_thread()
