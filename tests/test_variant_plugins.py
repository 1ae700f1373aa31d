"""Plugins of precision variants: built from a variant, configured for its precision by the plugin
runtime through the official C API names, refused where the box cannot run them (docs/variants.md).

On a CPU without bf16 units (the box these were written on) the bf16 tests check the refusals;
int8 runs from AVX2 on, so the int8 plugin is run and compared with the int8 package."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from paddlehot_cli.core import load
from paddlehot_cli.core.manifest import dumps_manifest, read_manifest, read_verified
from paddlehot_cli.core.plugin_loader import load_plugin, load_published_plugin, manifest_json
from paddlehot_cli.core.precision_config import refusal_here
from paddlehot_cli.core.precision_hardware import needs_for
from paddlehot_cli.errors import PackageError
from paddlehot_cli.plugin.pdcapi import build_pdcapi
from tests.conftest import assert_one_line_error, cli
from tests.serve_fixtures.helpers import start_runtime, wait_for
from tests.variant_fixtures.helpers import cnn_with_int8, craft_bf16

BF16_HERE = refusal_here(needs_for("bf16"), "bf16")  # None where this box runs bf16


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """demo:cnn 1.0.0 (legacy), its int8 variant, and the int8 variant's plugin in place."""
    repo = cnn_with_int8(tmp_path_factory.mktemp("variant_plugins"))
    proc = cli("build-plugin", f"{repo}:cnn@1.0.0-int8", "-o",
               repo / "cnn/1.0.0/variants/int8/plugin.so")
    assert proc.returncode == 0, proc.stderr
    assert "cnn 1.0.0-int8" in proc.stdout and "verified: " in proc.stdout
    return repo


def _inputs(batch: int = 4) -> dict[str, np.ndarray]:
    return {"image": np.random.default_rng(7).standard_normal((batch, 3, 32, 32), np.float32)}


def test_int8_plugin_says_what_it_is(repo):
    doc = manifest_json(repo / "cnn/1.0.0/variants/int8/plugin.so")
    assert doc["precision"] == "int8" and doc["version"] == "1.0.0"
    assert doc["requires"]["paddle"] == ["onednn", "int8"]
    meta = doc["plugin"]
    assert meta["precision"] == "int8"
    assert meta["symbol_prefix"] == "phot_cnn_v1_0_0_int8_"  # beside 1.0.0's own plugin
    assert "PD_ConfigEnableMkldnnInt8" in meta["c_api_switches"]


def test_int8_plugin_matches_the_int8_package_not_fp32(repo):
    """The plugin runs the quantized program with int8 kernels: the int8 package's outputs,
    which differ from fp32's (a plugin that silently ran fp32 predictors fails here)."""
    vdir = repo / "cnn/1.0.0/variants/int8"
    feeds = _inputs()
    with load_published_plugin(vdir, c_api=build_pdcapi) as pl, load(vdir) as pk, \
            load(repo / "cnn/1.0.0") as fp32:
        assert pl.kind == "plugin" and pk.manifest.precision == "int8"
        got, want, base = pl.infer(feeds), pk.infer(feeds), fp32.infer(feeds)
    tol = read_verified(vdir).validation
    np.testing.assert_allclose(got["logits"], want["logits"], atol=tol["atol"], rtol=tol["rtol"])
    assert float(np.max(np.abs(got["logits"] - base["logits"]))) > 0.05


def test_int8_plugin_runs_onednn_int8_kernels(repo, tmp_path):
    """ONEDNN_VERBOSE names the kernels the plugin's predictor really runs."""
    script = tmp_path / "run.py"
    script.write_text(
        "import sys, numpy as np\n"
        "from paddlehot_cli.core.plugin_loader import load_plugin\n"
        "from paddlehot_cli.plugin.pdcapi import build_pdcapi\n"
        "with load_plugin(sys.argv[1], c_api=build_pdcapi) as pl:\n"
        "    pl.infer({'image': np.ones((1, 3, 32, 32), np.float32)})\n")
    so = repo / "cnn/1.0.0/variants/int8/plugin.so"
    proc = subprocess.run([sys.executable, str(script), str(so)], check=False,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ONEDNN_VERBOSE": "1"})
    assert proc.returncode == 0, proc.stderr
    convs = [ln for ln in proc.stdout.splitlines() if ",exec,cpu,convolution," in ln]
    assert convs and all("wei:s8" in ln for ln in convs), convs[:2]


def test_a_plugin_of_another_precision_is_refused(repo, tmp_path):
    """The int8 variant's plugin placed in the fp32 version dir is not that version's plugin:
    serve refuses it before dlopen, abi-check says why."""
    version = Path(shutil.copytree(repo / "cnn/1.0.0", tmp_path / "cnn/1.0.0",
                                   ignore=shutil.ignore_patterns("variants")))
    src = repo / "cnn/1.0.0/variants/int8"
    shutil.copy(src / "plugin.so", version / "plugin.so")
    shutil.copy(src / "plugin.so.sha256", version / "plugin.so.sha256")
    with pytest.raises(PackageError, match="plugin of cnn 1.0.0-int8, not of cnn 1.0.0"):
        load_published_plugin(version, c_api=build_pdcapi)
    proc = cli("abi-check", version, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    found = {f["id"]: f for f in json.loads(proc.stdout)["findings"]}
    assert found["PH142"]["status"] == "fail"
    assert "built from the int8 package" in found["PH142"]["message"]


def test_abi_check_names_the_variant_and_passes_it_here(repo):
    proc = cli("abi-check", f"{repo}:cnn@1.0.0-int8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cnn 1.0.0-int8 (package+plugin" in proc.stdout
    proc = cli("abi-check", repo / "cnn/1.0.0/variants/int8/plugin.so", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    doc = json.loads(proc.stdout)
    assert doc["target"]["precision"] == "int8"
    ph142 = [f for f in doc["findings"] if f["id"] == "PH142"]
    assert ph142 and ph142[0]["status"] == "pass"  # checked for a variant's plugin alone too


@pytest.fixture()
def bf16_repo(repo, tmp_path) -> Path:
    out = Path(shutil.copytree(repo, tmp_path / "models",
                               ignore=shutil.ignore_patterns("int8")))
    craft_bf16(out / "cnn/1.0.0")
    return out


def test_bf16_plugin_is_built_for_another_box_and_refused_here(bf16_repo, tmp_path):
    so = tmp_path / "bf16.so"
    proc = cli("build-plugin", f"{bf16_repo}:cnn@1.0.0-bf16", "-o", so)
    if BF16_HERE is None:  # a bf16 box: built and verified like int8
        assert proc.returncode == 0, proc.stderr
        return
    assert_one_line_error(proc, 2, "cannot verify a bf16 plugin on this box", "--no-verify")
    assert not so.exists()
    proc = cli("build-plugin", f"{bf16_repo}:cnn@1.0.0-bf16", "-o", so, "--no-verify")
    assert proc.returncode == 0, proc.stderr
    doc = manifest_json(so)
    assert doc["plugin"]["precision"] == "bf16"
    assert doc["plugin"]["symbol_prefix"] == "phot_cnn_v1_0_0_bf16_"
    fp32 = read_manifest(bf16_repo / "cnn/1.0.0")
    embedded = doc["plugin"]["embedded_files"]  # bf16 runs the fp32 files, shared by sha256
    assert {f: e["sha256"] for f, e in embedded.items()} == \
        {f: fp32.files[f]["sha256"] for f in fp32.model_files}
    with pytest.raises(PackageError, match="bf16 needs a CPU with one of: avx512_bf16 amx_bf16"):
        load_plugin(so, c_api=build_pdcapi)
    proc = cli("abi-check", so, "--format", "json")
    assert proc.returncode == 1
    found = {f["id"]: f for f in json.loads(proc.stdout)["findings"]}
    assert found["PH142"]["status"] == "fail" and "bf16 needs" in found["PH142"]["message"]
    assert all(f["status"] != "fail" for i, f in found.items() if i != "PH142"), found


@pytest.mark.skipif(BF16_HERE is None, reason="this Paddle and CPU run bf16")
def test_bf16_plugin_asks_paddle_even_when_the_manifest_asks_no_cpu_flag(bf16_repo, tmp_path):
    """The runtime's second guard: a manifest that requires no CPU flag still meets Paddle's own
    answer (PD_ConfigMkldnnBfloat16Enabled), which is false on a CPU without bf16 support."""
    from paddlehot_cli.core import paddle_runtime

    if paddle_runtime.import_paddle().base.core.supports_bfloat16():
        pytest.skip("Paddle says this CPU supports bfloat16 (no avx512_bf16, emulated)")
    vdir = bf16_repo / "cnn/1.0.0/variants/bf16"
    doc = json.loads((vdir / "paddlehot.json").read_text())
    doc["requires"]["cpu_flags_any"] = []
    (vdir / "paddlehot.json").write_text(dumps_manifest(doc))
    so = tmp_path / "lying.so"
    proc = cli("build-plugin", vdir, "-o", so, "--no-verify")
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(PackageError, match="PD_ConfigMkldnnBfloat16Enabled is false"):
        load_plugin(so, c_api=build_pdcapi)


def test_pdcapi_precision_queries_tell_what_paddle_does():
    """The official query names answer what Paddle will do with the config on this box: the
    same answers as Paddle's Python API, and false unless asked."""
    from paddlehot_cli.core.paddle_runtime import import_paddle

    core = import_paddle().base.core
    lib = ctypes.CDLL(str(build_pdcapi()), mode=ctypes.RTLD_GLOBAL)
    lib.PD_ConfigCreate.restype = ctypes.c_void_p
    for name in ("PD_ConfigMkldnnEnabled", "PD_ConfigMkldnnInt8Enabled",
                 "PD_ConfigMkldnnBfloat16Enabled"):
        getattr(lib, name).restype = ctypes.c_int8
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("PD_ConfigEnableMKLDNN", "PD_ConfigEnableMkldnnInt8",
                 "PD_ConfigEnableMkldnnBfloat16", "PD_ConfigDestroy"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    cfg = lib.PD_ConfigCreate()
    try:
        assert not lib.PD_ConfigMkldnnEnabled(cfg)
        assert not lib.PD_ConfigMkldnnInt8Enabled(cfg)
        assert not lib.PD_ConfigMkldnnBfloat16Enabled(cfg)
        lib.PD_ConfigEnableMKLDNN(cfg)
        lib.PD_ConfigEnableMkldnnInt8(cfg)
        lib.PD_ConfigEnableMkldnnBfloat16(cfg)
        onednn = bool(core.is_compiled_with_mkldnn())
        assert bool(lib.PD_ConfigMkldnnEnabled(cfg)) == onednn
        assert bool(lib.PD_ConfigMkldnnInt8Enabled(cfg)) == onednn
        assert bool(lib.PD_ConfigMkldnnBfloat16Enabled(cfg)) == (onednn and
                                                                 bool(core.supports_bfloat16()))
    finally:
        lib.PD_ConfigDestroy(cfg)


def test_serve_prefer_plugin_serves_the_variant_from_its_plugin(repo, tmp_path):
    """Like a package variant: its own servable under 1.0.0-int8, here the plugin (fp32 has no
    plugin.so and serves its package)."""
    served = Path(shutil.copytree(repo, tmp_path / "models"))
    rt = start_runtime(served, prefer="plugin")
    base = f"http://127.0.0.1:{rt.port}"
    try:
        wait_for(lambda: {"1.0.0", "1.0.0-int8"} <= set(rt.manager.loaded_versions("cnn")), 90,
                 what="1.0.0 and 1.0.0-int8")
        md = httpx.get(f"{base}/v2/models/cnn/versions/1.0.0-int8").json()
        assert md["platform"] == "paddlehot_plugin" and md["parameters"]["precision"] == "int8"
        assert httpx.get(f"{base}/v2/models/cnn/versions/1.0.0").json()["platform"] \
            != "paddlehot_plugin"
        x = _inputs(1)["image"]
        body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": list(x.shape),
                            "data": x.ravel().tolist()}]}
        got = httpx.post(f"{base}/v2/models/cnn/versions/1.0.0-int8/infer", json=body,
                         timeout=30).json()
        assert got["model_version"] == "1.0.0-int8"
        with load(served / "cnn/1.0.0/variants/int8") as pk:
            want = pk.infer({"image": x})["logits"].ravel()
        np.testing.assert_allclose(got["outputs"][0]["data"], want, atol=0.1, rtol=0)
    finally:
        rt.stop_thread()
