"""Deployment trust against a real registry: signatures travel with a version and a --trust box
refuses what is unsigned; a repository cannot hand a box another model; a push adds an
architecture or refuses differing content; a full disk and refused versions behave as the docs
say."""

from __future__ import annotations

import filecmp
import json
import logging
import os
import subprocess
import time

import pytest
from conftest import assert_one_line_error, cli

from paddlehot_cli.core.signatures import SIG_DIR, Trust, sign_version
from paddlehot_cli.core.signing_keys import generate_key
from paddlehot_cli.fleet import media
from paddlehot_cli.fleet.follower import Follower
from paddlehot_cli.fleet.pull import pull_version
from paddlehot_cli.fleet.push import push_version
from paddlehot_cli.fleet.reference import parse_reference
from tests.fleet_fixtures.registry import publish_ci, running
from tests.serve_fixtures.helpers import publish_copy


@pytest.fixture
def registry(tmp_path):
    yield from running(tmp_path / "registry")


@pytest.fixture
def ci_repo(tmp_path, exported):
    return publish_ci(tmp_path / "ci", exported, ("1.0.0", "1.1.0"))


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "keys" / "release"
    path.parent.mkdir()
    generate_key(path)
    return path


def _trust(key) -> Trust:
    return Trust.from_files([key.with_name(key.name + ".pub")])


def test_signatures_travel_and_a_trusting_box_refuses_unsigned(registry, ci_repo, key, tmp_path):
    url = registry.url("models/mlp")
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", url, "--insecure", "--sign", key)
    assert proc.returncode == 0, proc.stderr
    layers = registry.manifest("models/mlp", "1.0.0")["layers"]
    assert [x["annotations"][media.TITLE] for x in layers if x["mediaType"] == media.SIGNATURE]
    push_version(f"{ci_repo}:mlp@1.1.0", parse_reference(url), insecure=True)  # unsigned
    box = tmp_path / "box"
    box.mkdir()
    pub = f"{key}.pub"
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", box, "--insecure",
               "--trust", pub)
    assert proc.returncode == 0, proc.stderr
    assert list((box / "mlp/1.0.0" / SIG_DIR).iterdir())
    proc = cli("pull", registry.url("models/mlp:1.1.0"), "--repo", box, "--insecure",
               "--trust", pub)
    assert_one_line_error(proc, 2, "unsigned", "--trust")
    assert sorted(p.name for p in (box / "mlp").iterdir()) == ["1.0.0"]
    follower = Follower(box, [parse_reference(url)], interval=0.5, insecure=True, latest=2,
                        trust=_trust(key))
    try:
        follower.sync_once()
    finally:
        follower.stop()
    rows = {r["version"]: r for r in follower.index_rows([])}
    assert "unsigned" in rows["1.1.0"]["reason"], rows


def test_a_signed_plugin_added_later_reaches_a_box_that_has_the_version(registry, ci_repo, key,
                                                                         tmp_path):
    from tests.plugin_fixtures.helpers import run_build

    url = registry.url("models/mlp")
    vdir = ci_repo / "mlp" / "1.0.0"
    sign_version(vdir, key)
    push_version(f"{ci_repo}:mlp@1.0.0", parse_reference(url), insecure=True)  # package only
    box = tmp_path / "box"
    box.mkdir()
    ref = parse_reference(registry.url("models/mlp:1.0.0"))
    pull_version(ref, box, insecure=True, trust=_trust(key))
    assert not (box / "mlp/1.0.0/plugin.so").exists()
    before = {p.name: p.read_bytes() for p in (box / "mlp/1.0.0").iterdir() if p.is_file()}
    so = tmp_path / "mlp-x86_64.so"
    proc = run_build(vdir, "-o", so, "--no-embed-model", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    # old code: "already in the registry", nothing added
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", url, "--insecure", "--plugin", so, "--sign", key)
    assert proc.returncode == 0 and "added x86_64 plugin" in proc.stdout, proc.stdout + proc.stderr
    again = pull_version(ref, box, insecure=True, trust=_trust(key))
    assert again.added and filecmp.cmp(box / "mlp/1.0.0/plugin.so", so, shallow=False)
    assert _trust(key).check_version(box / "mlp/1.0.0", "mlp", "1.0.0") is None
    assert all((box / "mlp/1.0.0" / n).read_bytes() == b for n, b in before.items())
    # a following box that has the version (package only) takes the plugin on its next sync
    followed = tmp_path / "followed"
    followed.mkdir()
    pull_version(ref, followed, insecure=True)
    (followed / "mlp/1.0.0/plugin.so").unlink()
    (followed / "mlp/1.0.0/plugin.so.sha256").unlink()
    follower = Follower(followed, [parse_reference(url)], interval=0.5, insecure=True,
                        trust=_trust(key))
    try:
        follower.sync_once()
    finally:
        follower.stop()
    assert filecmp.cmp(followed / "mlp/1.0.0/plugin.so", so, shallow=False)
    # a different build of the same arch under the same version: refused, exit 2
    other = tmp_path / "other.so"
    proc = run_build(vdir, "-o", other, "--no-embed-model", "--no-verify", "--debug")
    assert proc.returncode == 0, proc.stderr
    proc = cli("push", f"{ci_repo}:mlp@1.0.0", url, "--insecure", "--plugin", other)
    assert_one_line_error(proc, 2, "x86_64 plugin in the registry", "differs")


def test_a_repository_cannot_replace_another_model(registry, exported, tmp_path, caplog):
    ci = tmp_path / "attacker"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 7), ci, "victim", "2.0.0")
    proc = cli("push", f"{ci}:victim@2.0.0", registry.url("models/textclf"), "--insecure")
    assert proc.returncode == 0 and "--follow victim=oci://" in proc.stdout, proc.stdout
    box = tmp_path / "box"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 8), box, "victim", "1.0.0")
    follower = Follower(box, [parse_reference(registry.url("models/textclf"))], interval=0.5,
                        insecure=True)
    with caplog.at_level(logging.WARNING, logger="paddlehot.follow"):
        try:
            follower.sync_once()
        finally:
            follower.stop()
    assert sorted(p.name for p in (box / "victim").iterdir()) == ["1.0.0"]
    rows = follower.index_rows([])
    assert "named 'victim', not 'textclf'" in rows[0]["reason"], rows
    assert any("named 'victim'" in r.getMessage() for r in caplog.records)
    proc = cli("pull", registry.url("models/textclf:2.0.0"), "--repo", box, "--insecure")
    assert_one_line_error(proc, 2, "named 'victim', not 'textclf'")
    # said out loud, it installs as that model
    proc = cli("pull", "victim=" + registry.url("models/textclf:2.0.0"), "--repo", box,
               "--insecure")
    assert proc.returncode == 0, proc.stderr
    assert (box / "victim/2.0.0").is_dir()


def test_refused_versions_are_retried_after_10_intervals(registry, tmp_path):
    from prometheus_client import generate_latest

    from tests.serve_fixtures.helpers import metric

    registry.push_raw("models/mlp", "1.0.0", b"{}", "application/vnd.oci.image.config.v1+json")
    box = tmp_path / "box"
    box.mkdir()
    follower = Follower(box, [parse_reference(registry.url("models/mlp"))], interval=0.2,
                        insecure=True)
    assert follower.refuse_retry_s == pytest.approx(2.0)
    try:
        follower.sync_once()
        follower.sync_once()  # within 10 intervals: not retried
        text = generate_latest(follower.metrics.registry).decode()
        assert metric(text, "paddlehot_fleet_pull_failures_total", reason="not_paddlehot") == 1
        time.sleep(2.2)
        follower.sync_once()
    finally:
        follower.stop()
    text = generate_latest(follower.metrics.registry).decode()
    assert metric(text, "paddlehot_fleet_pull_failures_total", reason="not_paddlehot") == 2


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts = []

    def mount(options: str):
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], check=False)


def test_no_space_is_one_error_line_and_nothing_installed(registry, ci_repo, small_disk):
    push_version(f"{ci_repo}:mlp@1.0.0", parse_reference(registry.url("models/mlp")),
                 insecure=True)
    tiny = small_disk("size=8k")  # smaller than the model: refused before any download
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", tiny, "--insecure")
    assert_one_line_error(proc, 2, "not enough free space")
    assert [p.name for p in (tiny / "mlp").iterdir()] == []
    # the disk fills while writing (no inode left: ENOSPC on the third file)
    full = small_disk("size=8m,nr_inodes=6")
    (full / "mlp").mkdir()
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", full, "--insecure")
    assert_one_line_error(proc, 2, "disk full while writing mlp 1.0.0")
    assert [p.name for p in (full / "mlp").iterdir()] == []


def _push_crafted(registry, vdir, doc: dict, annotations: dict) -> None:
    """A version pushed by some other tool: `doc` as its paddlehot.json, the descriptors saying
    what `doc` says, the blobs what is on disk."""
    from paddlehot_cli.fleet import artifact
    from paddlehot_cli.fleet.client import RegistryClient, sha256_digest

    config = json.dumps(doc).encode()
    with RegistryClient(registry.host, insecure=True) as c:
        c.upload_blob("models/mlp", sha256_digest(config), len(config), config)
        layers = []
        for name, info in doc["files"].items():
            data = (vdir / name).read_bytes()
            c.upload_blob("models/mlp", "sha256:" + info["sha256"], len(data), data)
            layers.append(artifact.Blob(media.media_type(name, "pir"), "sha256:" + info["sha256"],
                                        info["bytes"], name))
        body = artifact.image_manifest(
            artifact.Blob(media.CONFIG, sha256_digest(config), len(config)), layers, annotations)
        c.put_manifest("models/mlp", doc["version"], body, media.OCI_MANIFEST)


def test_an_oversized_layer_names_its_size_not_a_digest(registry, ci_repo, tmp_path):
    # paddlehot.json and the descriptor both say one byte less than the blob has: the registry
    # serves the real blob; the puller stops at the descriptor's size
    vdir = ci_repo / "mlp" / "1.0.0"
    doc = json.loads((vdir / "paddlehot.json").read_text())
    doc["files"]["model.pdiparams"]["bytes"] -= 1
    _push_crafted(registry, vdir, doc, {media.VERSION: "1.0.0"})
    box = tmp_path / "box"
    box.mkdir()
    proc = cli("pull", registry.url("models/mlp:1.0.0"), "--repo", box, "--insecure")
    assert_one_line_error(proc, 2, "'model.pdiparams'", "larger than its descriptor size")
    assert "digest mismatch" not in proc.stderr
    assert list(box.rglob("*")) == [box / "mlp"]


def test_a_version_must_match_the_artifacts_annotation(registry, ci_repo, tmp_path):
    vdir = ci_repo / "mlp" / "1.0.0"
    doc = json.loads((vdir / "paddlehot.json").read_text())
    _push_crafted(registry, vdir, doc, {media.VERSION: "1.1.0"})
    box = tmp_path / "box"
    box.mkdir()
    proc = cli("pull", registry.url("models/mlp"), "--repo", box, "--insecure")
    assert_one_line_error(proc, 2, "the artifact says version 1.1.0", "says 1.0.0")
    assert list(box.rglob("*")) == []
