"""--prefer plugin: versions with a plugin.so are served through it; a plugin that fails to load
leaves the serving version untouched."""

from __future__ import annotations

import os
import subprocess

import httpx
import numpy as np
import pytest

from paddlehot_cli.core import load
from tests.conftest import cli
from tests.serve_fixtures.helpers import (
    free_port,
    metric,
    publish_copy,
    serve_argv,
    start_runtime,
    wait_for,
)

pytest.importorskip("paddlehot_cli.core.plugin_loader")


def _build(version_dir):
    proc = cli("build-plugin", version_dir, "-o", version_dir / "plugin.so")
    if proc.returncode != 0 and "compiler" in (proc.stderr or "").lower():
        pytest.skip(f"cannot build plugins here: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr


def test_prefer_plugin_and_broken_plugin(tmp_path, exported):
    pkg = exported("demo:mlp", "pir", "1.0.0", 61)
    repo = tmp_path / "repo"
    v1 = publish_copy(pkg, repo, "mlp", "1.0.0")
    _build(v1)
    rt = start_runtime(repo, prefer="plugin", poll_interval=0.2)
    base = f"http://127.0.0.1:{rt.port}"
    x = np.random.default_rng(3).standard_normal((3, 16)).astype("float32")
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 16], "data": x.ravel().tolist()}]}
    try:
        assert rt.manager.servable("mlp").kind == "plugin"
        assert httpx.get(f"{base}/v2/models/mlp").json()["platform"] == "paddlehot_plugin"
        r = httpx.post(f"{base}/v2/models/mlp/infer", json=body)
        assert r.status_code == 200, r.text
        with load(pkg) as s:
            want = next(iter(s.infer({"x": x}).values()))
        np.testing.assert_allclose(np.array(r.json()["outputs"][0]["data"], "float32").reshape(3, 4),
                                   want, rtol=1e-5, atol=1e-6)
        # a version whose plugin.so is garbage: dlopen fails, 1.0.0 keeps serving
        staged = tmp_path / "broken"
        staged.mkdir()
        v2 = publish_copy(pkg, tmp_path / "staging", "mlp", "1.1.0")
        (v2 / "plugin.so").write_bytes(b"\x7fELF not really")
        v2.rename(repo / "mlp" / "1.1.0")
        wait_for(lambda: metric(httpx.get(f"{base}/metrics").text, "paddlehot_load_failures_total",
                                version="1.1.0") >= 1, 20, what="plugin load failure")
        assert rt.manager.loaded_versions("mlp") == ["1.0.0"]
        assert httpx.post(f"{base}/v2/models/mlp/infer", json=body).json()["model_version"] == "1.0.0"
    finally:
        rt.stop_thread()


def test_all_plugin_serve_never_imports_paddle_until_a_package_loads(tmp_path, exported):
    """A real `paddlehot serve --prefer plugin` process whose versions are all plugins answers
    without the paddle Python package (/metrics says so); a package version brings it in."""
    pkg = exported("demo:mlp", "pir", "1.0.0", 61)
    repo = tmp_path / "repo"
    _build(publish_copy(pkg, repo, "mlp", "1.0.0"))
    port = free_port()
    proc = subprocess.Popen(serve_argv(repo, "--port", port, "--prefer", "plugin",
                                       "--poll-interval", "0.2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "GLOG_minloglevel": "2"})
    base = f"http://127.0.0.1:{port}"

    def imported() -> float:
        return metric(httpx.get(f"{base}/metrics").text, "paddlehot_paddle_python_imported")

    try:
        wait_for(lambda: _ready(base), 60, what="serve ready")
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}]}
        assert httpx.post(f"{base}/v2/models/mlp/infer", json=body).status_code == 200
        assert imported() == 0
        publish_copy(pkg, repo, "other", "1.0.0")  # no plugin.so: served as a package
        wait_for(lambda: httpx.post(f"{base}/v2/models/other/infer", json=body).status_code
                 == 200, 60, what="the package version")
        assert imported() == 1
    finally:
        proc.terminate()
        proc.wait(30)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v2/health/ready").status_code == 200
    except httpx.HTTPError:
        return False
