"""push -> a real registry -> pull: byte-identical versions, blob reuse, and refusals of bad input
(each one error line, nothing half-written in REPO)."""

from __future__ import annotations

import filecmp
import hashlib
import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, cli

from paddlehot_cli.core.manifest import read_verified
from paddlehot_cli.fleet import media
from paddlehot_cli.fleet.pull import pull_version
from paddlehot_cli.fleet.push import push_version
from paddlehot_cli.fleet.reference import parse_reference
from tests.fleet_fixtures.registry import running
from tests.serve_fixtures.helpers import free_port, publish_copy


@pytest.fixture
def registry(tmp_path):
    yield from running(tmp_path / "registry")


@pytest.fixture
def private_registry(tmp_path):
    """The registry asking for Basic auth: user `ci`, password `s3cret`."""
    yield from running(tmp_path / "private-registry", {"ci": "s3cret"})


def _repo_entries(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ci_repo(fresh_mlp_repo):
    return fresh_mlp_repo


def test_round_trip_is_byte_identical_with_equal_digests(registry, ci_repo, tmp_path):
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", registry.url("models/mlp"), "--insecure",
               "--tag", "stable")
    assert proc.returncode == 0, proc.stderr
    assert "pushed" in proc.stdout and "stable" in proc.stdout
    doc = registry.manifest("models/mlp", "1.0.0")
    assert doc["config"]["mediaType"] == media.CONFIG
    src = ci_repo / "mlp" / "1.0.0"
    assert doc["config"]["digest"] == _sha(src / "paddlehot.json")
    for layer in doc["layers"]:  # every layer digest is the file's sha256 the package records
        assert layer["digest"] == _sha(src / layer["annotations"][media.TITLE])
    assert registry.manifest("models/mlp", "stable") == doc

    box = tmp_path / "box"
    box.mkdir()
    proc = cli("pull", registry.url("models/mlp:stable"), "--repo", box, "--insecure")
    assert proc.returncode == 0, proc.stderr
    pulled = box / "mlp" / "1.0.0"
    cmp = filecmp.dircmp(src, pulled)
    assert not cmp.left_only and not cmp.right_only
    assert filecmp.cmpfiles(src, pulled, cmp.common_files, shallow=False)[0] == sorted(cmp.common_files)
    assert read_verified(pulled).files == read_verified(src).files
    assert _repo_entries(box) == ["mlp", "mlp/1.0.0", *(f"mlp/1.0.0/{f}" for f in sorted(cmp.common_files))]


def test_unchanged_params_are_not_downloaded_again(registry, ci_repo, tmp_path):
    ref = parse_reference(registry.url("models/mlp"))
    first = push_version(f"{ci_repo}:mlp@1.0.0", ref, insecure=True)
    # 1.1.0: the same model files, only paddlehot.json (its version) differs
    publish_copy(ci_repo / "mlp" / "1.0.0", ci_repo, "mlp", "1.1.0")
    second = push_version(f"{ci_repo}:mlp@1.1.0", ref, insecure=True)
    config = (ci_repo / "mlp" / "1.1.0" / "paddlehot.json").stat().st_size
    assert second.uploaded_bytes == config and second.skipped_bytes == first.uploaded_bytes - (
        (ci_repo / "mlp" / "1.0.0" / "paddlehot.json").stat().st_size)

    box = tmp_path / "box"
    box.mkdir()
    pull_version(parse_reference(registry.url("models/mlp:1.0.0")), box, insecure=True)
    again = pull_version(parse_reference(registry.url("models/mlp:1.1.0")), box, insecure=True)
    files = read_verified(box / "mlp" / "1.1.0").files
    assert again.downloaded_bytes == config  # the manifest only
    assert again.reused_bytes == sum(info["bytes"] for info in files.values())
    assert filecmp.cmp(box / "mlp" / "1.1.0" / "model.pdiparams",
                       ci_repo / "mlp" / "1.1.0" / "model.pdiparams", shallow=False)


def test_version_tags_are_immutable_and_labels_move(registry, ci_repo, exported):
    ref = parse_reference(registry.url("models/mlp"))
    push_version(f"{ci_repo}:mlp@1.0.0", ref, insecure=True)
    again = push_version(f"{ci_repo}:mlp@1.0.0", ref, tags=["stable"], insecure=True)
    assert again.already_there and registry.manifest("models/mlp", "stable")
    other = ci_repo.parent / "other"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 5), other, "mlp", "1.0.0")
    proc = cli("push", f"{other}:mlp@1.0.0", registry.url("models/mlp"), "--insecure")
    assert_one_line_error(proc, 2, "already exists with different content")
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", registry.url("models/mlp"), "--insecure",
               "--tag", "2.0.0")
    assert_one_line_error(proc, 2, "version tags are immutable")


def test_tampered_blob_is_refused_and_nothing_is_written(registry, ci_repo, tmp_path):
    ref = parse_reference(registry.url("models/mlp"))
    push_version(f"{ci_repo}:mlp@1.0.0", ref, insecure=True)
    params = registry.manifest("models/mlp", "1.0.0")["layers"]
    digest = next(x["digest"] for x in params if x["annotations"][media.TITLE] == "model.pdiparams")
    registry.tamper(digest)
    box = tmp_path / "box"
    box.mkdir()
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", box, "--insecure")
    assert_one_line_error(proc, 2, "digest mismatch", "model.pdiparams")
    assert _repo_entries(box) in ([], ["mlp"])  # no version, no staging dir left behind


def test_bad_input_gives_one_line_and_leaves_repo_untouched(registry, tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    registry.push_raw("models/notours", "1.0.0", b"{}", "application/vnd.oci.image.config.v1+json")
    # a package manifest of 5 MB: refused before it is downloaded
    registry.push_raw("models/huge", "1.0.0", b" " * (5 * 1024 * 1024), media.CONFIG)
    cases = [
        (registry.url("models/notours:1.0.0"), "is not a paddlehot package"),
        (registry.url("models/huge:1.0.0"), "more than the"),
        (registry.url("models/mlp:1.2"), "neither a SemVer version nor a label"),
        (registry.url("models/absent:1.0.0"), "answered 404"),
        (f"oci://127.0.0.1:{free_port()}/models/mlp:1.0.0", "cannot reach registry"),
        ("oci://127.0.0.1/Models/mlp", "invalid repository path"),
        ("https://127.0.0.1/models/mlp", "not an OCI reference"),
    ]
    for ref, needle in cases:
        proc = cli("pull", ref, "--repo", box, "--insecure")
        assert_one_line_error(proc, 2, needle)
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", box)  # TLS by default
    assert_one_line_error(proc, 2, "TLS", "--insecure")
    assert _repo_entries(box) == []


def test_two_arch_push_each_box_gets_its_own_plugin(registry, ci_repo, tmp_path):
    from paddlehot_cli.core.elf_facts import read_elf
    from paddlehot_cli.fleet.client import RegistryClient
    from paddlehot_cli.fleet.pull import pull_resolved, resolve
    from tests.plugin_fixtures.helpers import run_build

    vdir = ci_repo / "mlp" / "1.0.0"
    proc = run_build(vdir, "-o", vdir / "plugin.so", "--no-embed-model", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    arm = tmp_path / "mlp-aarch64.so"
    proc = run_build(vdir, "-o", arm, "--target", "aarch64", "--no-embed-model")
    assert proc.returncode == 0, proc.stderr
    assert read_elf(arm).machine == "aarch64"
    # x86_64 first, labelled; a label on something else (the amd64 manifest alone) too
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", registry.url("models/mlp"), "--insecure",
               "--tag", "stable")
    assert proc.returncode == 0, proc.stderr
    amd64 = registry.manifest("models/mlp", "1.0.0")["manifests"][0]["digest"]
    with RegistryClient(registry.host, insecure=True) as c:
        _, body, _ = c.get_manifest("models/mlp", amd64)
        c.put_manifest("models/mlp", "x86-only", body, media.OCI_MANIFEST)
    # then its aarch64 plugin joins the version: `stable` named the version, so it follows
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", registry.url("models/mlp"), "--insecure",
               "--plugin", arm)
    assert proc.returncode == 0, proc.stderr
    assert "added aarch64 plugin" in proc.stdout and "labels stable moved along" in proc.stdout
    index = registry.manifest("models/mlp", "1.0.0")
    assert index["mediaType"] == media.OCI_INDEX
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    assert registry.manifest("models/mlp", "stable") == index
    with RegistryClient(registry.host, insecure=True) as c:
        assert c.get_manifest("models/mlp", "x86-only")[2] == amd64  # left where it was

    box = tmp_path / "box"  # this box (x86_64): the CLI picks the host's plugin
    box.mkdir()
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", box, "--insecure")
    assert proc.returncode == 0, proc.stderr
    assert filecmp.cmp(box / "mlp/1.0.0/plugin.so", vdir / "plugin.so", shallow=False)
    # trusted plugins: the pulled plugin's digest is recorded for serve --prefer plugin
    from paddlehot_cli.core.plugin_image import file_sha256, read_digest

    assert read_digest(box / "mlp/1.0.0/plugin.so") == file_sha256(vdir / "plugin.so")
    arm_box = tmp_path / "arm-box"  # an aarch64 box resolves the same tag to its own entry
    arm_box.mkdir()
    ref = parse_reference(registry.url("models/mlp:1.0.0"))
    with RegistryClient(registry.host, insecure=True) as c:
        got = pull_resolved(c, ref, resolve(c, ref, "1.0.0", arch="aarch64"), arm_box)
    assert got.plugin_arch == "aarch64"
    assert filecmp.cmp(arm_box / "mlp/1.0.0/plugin.so", arm, shallow=False)
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", registry.url("models/other"), "--insecure",
               "--plugin", vdir / "plugin.so", "--plugin", tmp_path / "missing.so")
    assert_one_line_error(proc, 2, "no such plugin file")


def test_private_registry_credentials_from_env_and_docker_config(private_registry, ci_repo,
                                                                  tmp_path):
    import base64

    docker = tmp_path / "docker"
    docker.mkdir()
    anonymous = {"DOCKER_CONFIG": str(docker), "PADDLEHOT_REGISTRY_USERNAME": ""}
    target = private_registry.url("models/mlp")
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", target, "--insecure", env=anonymous)
    assert_one_line_error(proc, 2, "answered 401", "docker login")
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", target, "--insecure",
               env={**anonymous, "PADDLEHOT_REGISTRY_USERNAME": "ci",
                    "PADDLEHOT_REGISTRY_PASSWORD": "s3cret"})
    assert proc.returncode == 0, proc.stderr
    auth = base64.b64encode(b"ci:s3cret").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {private_registry.host: {"auth": auth}}}))
    box = tmp_path / "box"
    box.mkdir()
    proc = cli("pull", f"{target}:1.0.0", "--repo", box, "--insecure", env=anonymous)
    assert proc.returncode == 0, proc.stderr
    assert read_verified(box / "mlp" / "1.0.0").version == "1.0.0"
