"""Trusted plugins, against a real `paddlehot serve --prefer plugin`: overwriting the serving
plugin.so in place changes nothing in the server (it runs a private sealed copy); a plugin whose
bytes differ from build-plugin's recorded sha256, or whose embedded manifest names another
version, is never dlopened and its version is not served."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import numpy as np
import pytest

from tests.conftest import cli
from tests.serve_fixtures.helpers import free_port, metric, publish_copy, serve_argv, wait_for


def _build(version_dir):
    proc = cli("build-plugin", version_dir, "-o", version_dir / "plugin.so", "--no-verify")
    assert proc.returncode == 0, proc.stderr


def _body(x: np.ndarray) -> dict:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                        "data": x.ravel().tolist()}]}


@pytest.fixture()
def server(exported, tmp_path):
    pkg = exported("demo:mlp", "pir", "1.0.0", 71)
    repo = tmp_path / "repo"
    _build(publish_copy(pkg, repo, "mlp", "1.0.0"))
    port = free_port()
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.Popen(serve_argv(repo, "--port", str(port), "--prefer", "plugin",
                                       "--poll-interval", "0.2"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, proc.stdout.read()
        try:
            return httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 120, 0.2, "server ready")
    yield proc, base, repo, pkg
    proc.terminate()
    proc.wait(timeout=60)


def test_overwriting_plugin_in_place_cannot_crash_the_server(server):
    proc, base, repo, _ = server
    x = np.random.default_rng(1).random((2, 16)).astype("float32")
    first = httpx.post(f"{base}/v2/models/mlp/infer", json=_body(x), timeout=30)
    assert first.status_code == 200, first.text
    so = repo / "mlp" / "1.0.0" / "plugin.so"
    # as in the report: 16 KB of random bytes over the start of the serving file, same inode
    subprocess.run(["dd", "if=/dev/urandom", f"of={so}", "bs=16k", "count=1", "conv=notrunc"],
                   check=True, capture_output=True)
    for _ in range(3):
        r = httpx.post(f"{base}/v2/models/mlp/infer", json=_body(x), timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == first.json()["outputs"][0]["data"]
    assert proc.poll() is None


def test_unverified_plugins_are_not_loaded(server, tmp_path):
    proc, base, repo, pkg = server
    # 1.1.0: its plugin.so differs from the recorded sha256 (one flipped byte at the end)
    bad = publish_copy(pkg, tmp_path / "staging", "mlp", "1.1.0")
    _build(bad)
    with open(bad / "plugin.so", "r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([last[0] ^ 0xFF]))
    os.rename(bad, repo / "mlp" / "1.1.0")
    # 1.2.0: a valid plugin with a valid digest, but built for 1.0.0
    other = publish_copy(pkg, tmp_path / "staging", "mlp", "1.2.0")
    for name in ("plugin.so", "plugin.so.sha256"):
        shutil.copy(repo / "mlp" / "1.0.0" / name, other / name)
    os.rename(other, repo / "mlp" / "1.2.0")

    def failures() -> float:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        return sum(metric(text, "paddlehot_load_failures_total", version=v)
                   for v in ("1.1.0", "1.2.0"))

    wait_for(lambda: failures() >= 2, 60, 0.2, "both load failures")
    x = np.random.default_rng(1).random((1, 16)).astype("float32")
    r = httpx.post(f"{base}/v2/models/mlp/infer", json=_body(x), timeout=30)
    assert r.status_code == 200 and r.json()["model_version"] == "1.0.0"
    assert proc.poll() is None
