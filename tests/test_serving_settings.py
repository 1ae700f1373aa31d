"""REPO/NAME/serving.json: validated when read, written atomically, applied by serve per model
under the command-line flags; a malformed file is an error in the log and the index, and the
model is served with the defaults."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from paddlehot_cli.core import paddle_runtime
from paddlehot_cli.core.serving_settings import (
    SETTINGS_FILE,
    ServingSettings,
    SettingsError,
    SettingsResolver,
    read_settings,
    write_settings,
)
from tests.conftest import ROOT
from tests.serve_fixtures.helpers import (
    free_port,
    publish_copy,
    serve_argv,
    start_runtime,
    wait_for,
)


def _doc(**settings) -> str:
    return json.dumps({"schema": "paddlehot.serving/1", "settings": settings})


def test_write_then_read_round_trips_and_leaves_no_temp_file(tmp_path):
    s = ServingSettings(threads=2, batch_size=4, batch_delay_ms=2, onednn=False)
    path = write_settings(tmp_path, s, {"by": "test"})
    assert path == tmp_path / SETTINGS_FILE
    assert read_settings(tmp_path) == ServingSettings(threads=2, batch_size=4, batch_delay_ms=2.0,
                                                      onednn=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SETTINGS_FILE]
    assert read_settings(tmp_path / "nothing-here") is None


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    (json.dumps({"settings": {}}), "'schema'"),
    (_doc(threads=0), "'threads' must be an integer >= 1"),
    (_doc(threads=True), "'threads' must be"),
    (_doc(onednn=1), "'onednn' must be true or false"),
    (_doc(batch_delay_ms=-1), "'batch_delay_ms'"),
    (_doc(turbo=True), "unknown setting 'turbo'"),
    (json.dumps({"schema": "paddlehot.serving/1", "extra": 1}), "unknown key"),
], ids=["not-json", "no-schema", "threads-zero", "threads-bool", "onednn-int", "delay-negative",
        "unknown-setting", "unknown-key"])  # plain ids: JSON in a node id breaks re-selection
def test_malformed_files_are_one_clear_error(tmp_path, text, needle):
    (tmp_path / SETTINGS_FILE).write_text(text)
    with pytest.raises(SettingsError) as info:
        read_settings(tmp_path)
    assert needle in info.value.message and str(tmp_path) in info.value.message


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(_doc(threads=2, pool_max=3, memory_optim=True))
    resolved = SettingsResolver(ServingSettings(threads=1, batch_size=8),
                                ServingSettings(pool_max=1)).resolve(tmp_path)
    s = resolved.settings
    assert (s.threads, s.pool_max, s.batch_size, s.memory_optim) == (2, 1, 8, True)
    assert s.onednn_cache_capacity == paddle_runtime.DEFAULT_ONEDNN_CACHE_CAPACITY
    assert set(resolved.from_file) == {"threads", "memory_optim"}
    assert resolved.from_flags == ("pool_max",)


def test_pdcapi_bounds_the_onednn_primitive_cache_like_core():
    header = (ROOT / "native/pdcapi/src/internal.h").read_text()
    value = re.search(r'#define PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE "(\d+)"', header)
    assert value and int(value.group(1)) == paddle_runtime.DEFAULT_ONEDNN_PRIMITIVE_CACHE


@pytest.fixture(scope="module")
def repo(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("settings") / "repo"
    pkg = exported("demo:mlp")
    publish_copy(pkg, repo, "tuned", "1.0.0")
    publish_copy(pkg, repo, "broken", "1.0.0")
    (repo / "tuned" / SETTINGS_FILE).write_text(
        _doc(threads=2, batch_size=4, batch_delay_ms=3, onednn_cache_capacity=3))
    (repo / "broken" / SETTINGS_FILE).write_text(_doc(threads="many"))
    return repo


def test_serve_applies_serving_json_per_model(repo):
    rt = start_runtime(repo)
    try:
        tuned = rt.manager.servable("tuned")
        assert tuned.threads == 2
        assert tuned.paddle_options.onednn_cache_capacity == 3
        ref = next(r for r in rt.manager.loaded_refs() if r.model == "tuned")
        batcher = ref.batcher
        assert (batcher.max_batch, batcher.max_delay_s) == (4, 0.003)
        broken = rt.manager.servable("broken")
        assert broken.threads == 1
        assert rt.manager.settings("broken", "1.0.0")["serving_json_error"]
    finally:
        rt.stop_thread()


def test_serve_flags_override_and_metadata_and_index_show_it(repo):
    port = free_port()
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.Popen(serve_argv(repo, "--port", port, "--batch-size", "2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), timeout=120, what="serve ready")
        meta = httpx.get(f"{base}/v2/models/tuned").json()["parameters"]["serving"]
        assert meta["settings"]["threads"] == 2 and meta["settings"]["batch_size"] == 2
        assert "threads" in meta["from_serving_json"] and meta["from_flags"] == ["batch_size"]
        assert meta["serving_json_error"] is None
        broken = httpx.get(f"{base}/v2/models/broken").json()["parameters"]["serving"]
        assert broken["settings"]["threads"] == 1 and "'threads' must be" in broken["serving_json_error"]
        x = {"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": [0.0] * 16}]}
        assert httpx.post(f"{base}/v2/models/broken/infer", json=x).status_code == 200
        rows = httpx.post(f"{base}/v2/repository/index").json()
        row = next(r for r in rows if r["name"] == "broken")
        assert row["state"] == "READY" and "'threads' must be" in row["serving_json_error"]
        assert "serving_json_error" not in next(r for r in rows if r["name"] == "tuned")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert re.search(r"ERROR paddlehot.settings: .*broken/serving.json: 'threads' must be", err), err


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


ONEDNN_CAPACITY = """
import ctypes, glob, os, sys
import numpy as np
os.environ.pop("ONEDNN_PRIMITIVE_CACHE_CAPACITY", None)
pkg, lib = sys.argv[1], sys.argv[2]
if lib == "-":
    from paddlehot_cli.core import load
    with load(pkg) as model:
        model.infer({"x": np.zeros((1, 16), "float32")})
else:
    api = ctypes.CDLL(lib)
    api.PD_ConfigCreate.restype = ctypes.c_void_p
    api.PD_ConfigSetModel.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    api.PD_ConfigSetMkldnnCacheCapacity.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    api.PD_PredictorCreate.argtypes = [ctypes.c_void_p]
    api.PD_PredictorCreate.restype = ctypes.c_void_p
    cfg = api.PD_ConfigCreate()
    api.PD_ConfigSetModel(cfg, f"{pkg}/model.json".encode(), f"{pkg}/model.pdiparams".encode())
    api.PD_ConfigSetMkldnnCacheCapacity(cfg, 4)
    assert api.PD_PredictorCreate(cfg)
import paddle
dnnl = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(paddle.__file__), "libs", "libdnnl.so*"))[0])
capacity = ctypes.c_int(-1)
assert dnnl.dnnl_get_primitive_cache_capacity(ctypes.byref(capacity)) == 0  # dnnl_success
print(capacity.value)
"""


@pytest.mark.parametrize("host", ["core.load", "pdcapi"])
def test_onednn_primitive_cache_is_bounded_in_core_and_pdcapi(exported, host):
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    lib = str(build_pdcapi()) if host == "pdcapi" else "-"
    pkg = exported("demo:mlp")
    proc = subprocess.run([sys.executable, "-c", ONEDNN_CAPACITY, str(pkg), lib],
                          check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) == paddle_runtime.DEFAULT_ONEDNN_PRIMITIVE_CACHE
