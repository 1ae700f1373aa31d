"""Repository hygiene over real HTTP: rejected versions are listed with a reason (no server
paths for non-admin callers), symlinks out of the repository are refused, names match in
full, the token-less admin API is for this host only, labels persist with --state-dir."""

from __future__ import annotations

import os

import httpx
import pytest

from paddlehot_cli.core.versions import check_model_name, is_semver
from paddlehot_cli.errors import UserError
from tests.serve_fixtures.helpers import copy_unpublished, publish_copy, start_runtime, wait_for


@pytest.fixture()
def pkg(exported):
    return exported("demo:mlp")


def index(base, **headers):
    return {r["version"]: r for r in httpx.post(f"{base}/v2/repository/index", headers=headers).json()}


def test_rejected_and_escaping_versions_listed_with_reasons_without_paths(tmp_path, pkg):
    repo = tmp_path / "repo"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    bad = copy_unpublished(pkg, repo / "mlp" / "1.1.0", "mlp", "1.1.0")
    (bad / "model.pdiparams").write_bytes(b"\0" * 64)  # checksum mismatch
    outside = publish_copy(pkg, tmp_path / "elsewhere", "mlp", "1.2.0")
    os.symlink(outside, repo / "mlp" / "1.2.0")  # a version dir that leads out of the repo
    linked = copy_unpublished(pkg, repo / "mlp" / "1.3.0", "mlp", "1.3.0")
    real = tmp_path / "params-outside"
    (linked / "model.pdiparams").rename(real)
    os.symlink(real, linked / "model.pdiparams")  # one file that leads out
    rt = start_runtime(repo, admin_token="secret")
    base = f"http://127.0.0.1:{rt.port}"
    try:
        assert rt.manager.loaded_versions("mlp") == ["1.0.0"]
        public = index(base)
        for v in ("1.1.0", "1.2.0", "1.3.0"):
            assert public[v]["state"] == "UNAVAILABLE", public[v]
        assert "symlink" in public["1.2.0"]["reason"] and "symlink" in public["1.3.0"]["reason"]
        assert "mlp/1.1.0" in public["1.1.0"]["reason"]
        assert not any(str(tmp_path) in r["reason"] for r in public.values()), public
        admin = index(base, authorization="Bearer secret")
        assert admin["1.1.0"]["reason"]
        # the bad version is replaced by a good one: it leaves the list of rejections
        import shutil

        shutil.rmtree(bad)
        publish_copy(pkg, repo, "mlp", "1.1.0")
        wait_for(lambda: index(base).get("1.1.0", {}).get("state") == "READY", 20, what="1.1.0")
    finally:
        rt.stop_thread()


def test_tokenless_admin_only_for_this_host_and_full_match_names(tmp_path, pkg):
    repo = tmp_path / "repo"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    rt = start_runtime(repo)
    base = f"http://127.0.0.1:{rt.port}"
    try:
        url = f"{base}/v2/repository/models/mlp/unload"
        r = httpx.post(url, headers={"origin": "http://evil.example"})  # a cross-site form POST
        assert r.status_code == 403 and "loopback" in r.json()["error"]
        r = httpx.post(url, headers={"host": "evil.example:8000"})  # DNS rebinding
        assert r.status_code == 403
        # names that only look like loopback: parsed, never prefix-matched
        for host in ("127.x.attacker.example", "127.0.0.1.attacker.example:80", "localhost.evil",
                     "127.0.0.1@evil.example", "localhost:80/x", "127.0.0.1:port"):
            assert httpx.post(url, headers={"host": host}).status_code == 403, host
        for origin in ("http://127.x.attacker.example", "http://127.0.0.1.nip.example:8000",
                       "null", "file://localhost", "http://localhost.evil"):
            assert httpx.post(url, headers={"origin": origin}).status_code == 403, origin
        assert rt.manager.loaded_versions("mlp") == ["1.0.0"]
        assert httpx.post(url, headers={"origin": f"http://localhost:{rt.port}"}).status_code == 200
        assert httpx.post(f"{base}/v2/repository/models/mlp/load").status_code == 200
        r = httpx.put(f"{base}/v2/repository/models/mlp/labels", json={"stable\n": "1.0.0"})
        assert r.status_code == 400 and "invalid label name" in r.json()["error"]
        r = httpx.put(f"{base}/v2/repository/models/mlp/labels", json={"stable": "1.0.0\n"})
        assert r.status_code == 400
    finally:
        rt.stop_thread()
    assert not is_semver("1.0.0\n")
    with pytest.raises(UserError):
        check_model_name("mlp\n")


def test_labels_survive_a_restart_with_state_dir(tmp_path, pkg):
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish_copy(pkg, repo, "mlp", "1.0.0")
    publish_copy(pkg, repo, "mlp", "1.1.0")
    os.chmod(repo / "mlp", 0o555)  # the repository may be read-only
    doc = {"labels": {"stable": "1.0.0", "canary": "1.1.0"}, "canary_weight": 10.0}
    rt = start_runtime(repo, state_dir=state)
    try:
        r = httpx.put(f"http://127.0.0.1:{rt.port}/v2/repository/models/mlp/labels", json=doc)
        assert r.status_code == 200, r.text
    finally:
        rt.stop_thread()
    assert sorted(p.name for p in state.iterdir()) == ["mlp.labels.json"]  # no temp file left
    rt = start_runtime(repo, state_dir=state)
    try:
        base = f"http://127.0.0.1:{rt.port}"
        assert httpx.get(f"{base}/v2/repository/models/mlp/labels").json() == doc
        assert httpx.delete(f"{base}/v2/repository/models/mlp/labels").status_code == 200
        assert not (state / "mlp.labels.json").exists()
    finally:
        rt.stop_thread()
        os.chmod(repo / "mlp", 0o755)
