"""Serving precision variants: own pools, selection, canary, index rows, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from paddlehot_cli.core.manifest import dumps_manifest
from paddlehot_cli.core.precision_config import refusal_here
from paddlehot_cli.core.precision_hardware import needs_for
from paddlehot_cli.core.router import Labels, NotLoaded, Unavailable, select
from paddlehot_cli.core.version_policy import VersionPolicy
from tests.conftest import cli
from tests.serve_fixtures.helpers import start_runtime, wait_for
from tests.variant_fixtures.helpers import cnn_with_int8, craft_bf16

X = np.random.default_rng(1).standard_normal((1, 3, 32, 32), np.float32)
BODY = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32],
                    "data": X.ravel().tolist()}]}


def _select(versions, selector, labels=None, rnd=1.0):
    return select(versions, selector, labels or Labels(), allow=lambda v: True, healthy=lambda v: True,
                  rnd=rnd, model="cnn")


def test_ranges_labels_and_newest_choose_fp32_unless_asked():
    loaded = ["1.1.0", "1.1.0-int8", "1.0.0", "1.0.0-bf16"]
    assert _select(loaded, None) == "1.1.0"
    assert _select(loaded, "^1.0") == "1.1.0"
    assert _select(loaded, ">=1.0,<1.1") == "1.0.0"
    assert _select(loaded, "1.1.0-int8") == "1.1.0-int8"
    assert _select(loaded, "^1.0-int8") == "1.1.0-int8"
    assert _select(loaded, "-bf16") == "1.0.0-bf16"  # the newest version that has one
    stable = Labels({"stable": "1.0.0"})
    assert _select(loaded, None, stable) == "1.0.0"
    assert _select(loaded, "stable-bf16", stable) == "1.0.0-bf16"
    with pytest.raises(NotLoaded):
        _select(loaded, "stable-int8", stable)  # 1.0.0 has no int8 variant
    canary = Labels({"stable": "1.1.0", "canary": "1.1.0-int8"}, canary_weight=50)
    assert _select(loaded, None, canary, rnd=0.1) == "1.1.0-int8"
    assert _select(loaded, None, canary, rnd=0.9) == "1.1.0"
    with pytest.raises(Unavailable):
        _select(["1.0.0-int8"], None)  # variants never serve unpinned traffic
    with pytest.raises(ValueError):
        Labels.from_json({"stable": "1.0.0+int8"})


def test_a_variant_is_aspired_with_its_version_and_never_counts_as_one():
    policy = VersionPolicy(latest=1, keep_previous=False)
    assert policy.aspired(["1.0.0", "1.0.0-int8", "1.1.0"]) == {"1.1.0"}
    assert policy.aspired(["1.0.0", "1.1.0-int8", "1.1.0"]) == {"1.1.0", "1.1.0-int8"}
    assert policy.aspired(["1.1.0-int8", "1.1.0"], failed=["1.1.0-int8"]) == {"1.1.0"}


@pytest.fixture(scope="module")
def variant_repo(tmp_path_factory) -> Path:
    repo = cnn_with_int8(tmp_path_factory.mktemp("served"))
    craft_bf16(repo / "cnn/1.0.0")
    return repo


def _infer(base: str, path: str, body: dict = BODY) -> httpx.Response:
    return httpx.post(f"{base}/v2/models/cnn{path}/infer", json=body, timeout=30)


def test_variants_serve_from_their_own_pools_chosen_per_request(variant_repo, tmp_path):
    repo = Path(shutil.copytree(variant_repo, tmp_path / "models"))
    rt = start_runtime(repo)
    base = f"http://127.0.0.1:{rt.port}"
    bf16_why = refusal_here(needs_for("bf16"), "bf16")
    try:
        wait_for(lambda: "1.0.0-int8" in rt.manager.loaded_versions("cnn"), 60, what="int8")
        rows = {r["version"]: r for r in httpx.post(f"{base}/v2/repository/index").json()}
        assert rows["1.0.0"]["state"] == "READY" and rows["1.0.0"]["precision"] == "fp32"
        assert rows["1.0.0-int8"]["state"] == "READY" and rows["1.0.0-int8"]["precision"] == "int8"
        if bf16_why is not None:  # this box: said in the index, never loaded, fp32 serves
            assert rows["1.0.0-bf16"]["state"] == "UNAVAILABLE"
            assert "bf16 needs" in rows["1.0.0-bf16"]["reason"], rows["1.0.0-bf16"]
            assert _infer(base, "/versions/1.0.0-bf16").status_code == 404
        else:
            wait_for(lambda: "1.0.0-bf16" in rt.manager.loaded_versions("cnn"), 60, what="bf16")
            assert _infer(base, "/versions/1.0.0-bf16").json()["model_version"] == "1.0.0-bf16"
        fp32 = _infer(base, "").json()
        assert fp32["model_version"] == "1.0.0"
        assert _infer(base, "/versions/%5E1").json()["model_version"] == "1.0.0"
        int8 = _infer(base, "/versions/1.0.0-int8").json()
        assert int8["model_version"] == "1.0.0-int8"
        assert int8["outputs"][0]["data"] != fp32["outputs"][0]["data"]  # really another model
        asked = _infer(base, "", dict(BODY, parameters={"precision": "int8"})).json()
        assert asked["model_version"] == "1.0.0-int8"
        bad = _infer(base, "", dict(BODY, parameters={"precision": "fp8"}))
        assert bad.status_code == 400 and "precision" in bad.json()["error"]
        md = httpx.get(f"{base}/v2/models/cnn/versions/1.0.0-int8").json()
        assert md["parameters"]["precision"] == "int8"
        assert httpx.get(f"{base}/v2/models/cnn").json()["parameters"]["version"] == "1.0.0"
        # a canary between fp32 and its int8 variant
        (repo / "cnn/labels.json").write_text(json.dumps(
            {"stable": "1.0.0", "canary": "1.0.0-int8", "canary_weight": 50}))
        wait_for(lambda: rt.manager.labels("cnn").canary_weight == 50, 20, what="labels")
        seen = {_infer(base, "").json()["model_version"] for _ in range(40)}
        assert seen == {"1.0.0", "1.0.0-int8"}
    finally:
        rt.stop_thread()


def test_bench_variants_side_by_side(variant_repo, tmp_path):
    out = tmp_path / "v.json"
    np.savez(tmp_path / "user.npz",
             image=np.random.default_rng(3).standard_normal((4, 3, 32, 32), np.float32))
    proc = cli("bench", f"{variant_repo}:cnn", "--variants", "--requests", "30",
               "--input-data", tmp_path / "user.npz", "--json", out)
    assert proc.returncode == 0, proc.stderr
    rows = {r["key"]: r for r in json.loads(out.read_text())["variants"]}
    assert rows["1.0.0"]["max_err_random"] == 0 and rows["1.0.0"]["p50_ms"] > 0
    int8 = rows["1.0.0-int8"]
    assert int8["refused"] is None and int8["p50_ms"] > 0 and int8["peak_rss_mb"] > 0
    assert int8["max_err_random"] > 0 and int8["max_err_user"] > 0  # really quantised
    why = refusal_here(needs_for("bf16"), "bf16")
    assert (rows["1.0.0-bf16"]["refused"] is None) == (why is None)
    if why is not None:
        assert "bf16 needs" in rows["1.0.0-bf16"]["refused"]
    bad = cli("bench", f"{variant_repo}:cnn@9.9.9", "--variants")
    assert bad.returncode == 2 and "no version 9.9.9" in bad.stderr


def _ph142(*args) -> tuple[int, dict]:
    proc = cli("abi-check", *args, "--format", "json")
    assert proc.stdout, proc.stderr
    found = [f for f in json.loads(proc.stdout)["findings"] if f["id"] == "PH142"]
    return proc.returncode, found[0]


def test_abi_check_says_whether_a_variant_runs_on_the_target(variant_repo, tmp_path):
    code, f = _ph142(f"{variant_repo}:cnn@1.0.0-int8")
    int8_why = refusal_here(needs_for("int8"), "int8")
    assert (f["status"] == "pass") == (int8_why is None), f
    code, f = _ph142(f"{variant_repo}:cnn@1.0.0-bf16")
    if refusal_here(needs_for("bf16"), "bf16") is None:
        assert f["status"] == "pass" and code == 0, f
    else:  # this box: refused, with the reason, as a failing check
        assert f["status"] == "fail" and code == 1 and "bf16 needs" in f["message"], f
    code, f = _ph142(f"{variant_repo}:cnn@1.0.0")
    assert f["status"] == "pass" and "fp32" in f["message"]


def test_abi_check_refuses_bf16_on_a_paddle_without_onednn(variant_repo, tmp_path):
    """Paddle's aarch64 wheel has no oneDNN: a bf16 variant for aarch64 would silently run
    fp32 there. Needs the cached arm64 rootfs (native/edge/build-rootfs.sh)."""
    rootfs = Path.home() / ".cache/paddlehot/edge/rootfs"
    if not (rootfs / "etc").is_dir():
        pytest.skip("no arm64 rootfs cached (native/edge/build-rootfs.sh)")
    repo = Path(shutil.copytree(variant_repo, tmp_path / "models"))
    vdir = repo / "cnn/1.0.0/variants/bf16"
    doc = json.loads((vdir / "paddlehot.json").read_text())
    doc["requires"] = needs_for("bf16", "aarch64")
    (vdir / "paddlehot.json").write_text(dumps_manifest(doc))
    code, f = _ph142(f"{repo}:cnn@1.0.0-bf16", "--arch", "aarch64", "--runtime", rootfs)
    assert code == 1 and f["status"] == "fail" and "oneDNN" in f["message"], f


def test_a_trusting_server_serves_a_variant_only_with_its_own_signature(variant_repo, tmp_path):
    from paddlehot_cli.core.signatures import Trust

    repo = Path(shutil.copytree(variant_repo, tmp_path / "models"))
    shutil.rmtree(repo / "cnn/1.0.0/variants/bf16")
    key = tmp_path / "release.key"
    assert cli("sign", "--new-key", key).returncode == 0
    assert cli("sign", f"{repo}:cnn@1.0.0", "--key", key).returncode == 0
    rt = start_runtime(repo, trust=Trust.from_files([Path(f"{key}.pub")]))
    base = f"http://127.0.0.1:{rt.port}"
    try:
        wait_for(lambda: "1.0.0" in rt.manager.loaded_versions("cnn"), 60, what="fp32")
        row = {r["version"]: r for r in httpx.post(f"{base}/v2/repository/index").json()}
        assert row["1.0.0-int8"]["state"] == "UNAVAILABLE", row  # unsigned variant
        assert "refused by --trust" in row["1.0.0-int8"]["reason"]
        proc = cli("sign", f"{repo}:cnn@1.0.0-int8", "--key", key)
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: "1.0.0-int8" in rt.manager.loaded_versions("cnn"), 60, what="int8")
        assert _infer(base, "/versions/1.0.0-int8").json()["model_version"] == "1.0.0-int8"
    finally:
        rt.stop_thread()


def test_source_reports_variants_and_refuses_a_manifest_that_lies_about_its_precision(
        variant_repo, tmp_path):
    from paddlehot_cli.core.source import RepositorySource

    repo = Path(shutil.copytree(variant_repo, tmp_path / "models"))
    seen: dict[str, dict] = {}
    src = RepositorySource(repo, lambda m, v, labels: seen.__setitem__(m, dict(v)),
                           use_watchfiles=False)
    src.scan()
    keys = set(seen["cnn"])
    bf16_ok = refusal_here(needs_for("bf16"), "bf16") is None
    assert keys == ({"1.0.0", "1.0.0-int8", "1.0.0-bf16"} if bf16_ok else {"1.0.0", "1.0.0-int8"})
    # an fp32 version dir whose manifest claims to be a variant (shared files would be looked
    # up two levels up, outside the repository): refused before any file it names is read
    vdir = repo / "cnn/1.0.0"
    shutil.copytree(vdir, repo / "cnn/2.0.0", ignore=shutil.ignore_patterns("variants"))
    doc = json.loads((vdir / "variants/int8/paddlehot.json").read_text())
    doc["version"] = "2.0.0"
    doc["shared_files"] = {"secret": doc["files"]["model.pdiparams"]}
    (repo / "cnn/2.0.0/paddlehot.json").write_text(dumps_manifest(doc))
    # a variant dir whose manifest says it is the fp32 version
    lying = vdir / "variants/int8/paddlehot.json"
    lying.write_text((vdir / "paddlehot.json").read_text())
    src.scan(force=True)
    assert "2.0.0" not in seen["cnn"] and "1.0.0-int8" not in seen["cnn"]
    assert "says cnn 2.0.0-int8" in src.invalid[("cnn", "2.0.0")]
    assert "says cnn 1.0.0, the directory is cnn/1.0.0-int8" in src.invalid[("cnn", "1.0.0-int8")]
    assert "1.0.0" in seen["cnn"]  # fp32 keeps serving


def _grpc_infer(url: str, version: str = "", precision: str | None = None) -> str:
    import grpc
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc as pb_grpc

    req = pb.ModelInferRequest(model_name="cnn", model_version=version)
    tensor = req.inputs.add(name="image", datatype="FP32", shape=X.shape)
    tensor.contents.fp32_contents.extend(X.ravel().tolist())
    if precision is not None:
        req.parameters["precision"].string_param = precision
    with grpc.insecure_channel(url) as channel:
        return pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(req).model_version


def test_a_new_version_swaps_in_with_its_variant_over_http_and_grpc(variant_repo, tmp_path):
    repo = Path(shutil.copytree(variant_repo, tmp_path / "models"))
    shutil.rmtree(repo / "cnn/1.0.0/variants/bf16")
    rt = start_runtime(repo, grpc_port=0, policy=VersionPolicy(latest=1, keep_previous=False))
    base, url = f"http://127.0.0.1:{rt.port}", f"127.0.0.1:{rt.grpc.port}"
    try:
        wait_for(lambda: "1.0.0-int8" in rt.manager.loaded_versions("cnn"), 60, what="int8")
        assert _grpc_infer(url, precision="int8") == "1.0.0-int8"
        assert _grpc_infer(url, "1.0.0-int8") == "1.0.0-int8"
        assert _grpc_infer(url) == "1.0.0"
        assert cli("export", "demo:cnn", "--model-format", "legacy", "--repo", repo, "--version",
                   "1.1.0", "--seed", "1").returncode == 0
        wait_for(lambda: rt.manager.loaded_versions("cnn") == ["1.1.0"], 60, what="1.1.0 alone")
        proc = cli("variant", f"{repo}:cnn@1.1.0", "--precision", "int8", "--calibration",
                   variant_repo.parent / "calib.npz", "--atol", "5", "--rtol", "0",
                   "--min-argmax-agreement", "0")
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: rt.manager.loaded_versions("cnn") == ["1.1.0", "1.1.0-int8"], 60,
                 what="1.1.0 and its variant")
        assert _infer(base, "", dict(BODY, parameters={"precision": "int8"})).json()[
            "model_version"] == "1.1.0-int8"
        assert _grpc_infer(url, "^1-int8") == "1.1.0-int8"
    finally:
        rt.stop_thread()
