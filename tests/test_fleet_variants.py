"""Precision variants through a real registry: push carries them under their own immutable tags
(VERSION-PRECISION), pull brings them back into VERSION/variants/, and neither a variant nor its
version can pass for the other (docs/variants.md, "Registries")."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, cli

from paddlehot_cli.core.manifest import read_verified
from paddlehot_cli.core.precision_config import refusal_here
from paddlehot_cli.core.precision_hardware import needs_for
from paddlehot_cli.fleet import media
from paddlehot_cli.fleet.client import RegistryClient
from paddlehot_cli.fleet.pull import pull_version
from paddlehot_cli.fleet.reference import parse_reference
from tests.fleet_fixtures.registry import running
from tests.variant_fixtures.helpers import cnn_with_int8, craft_bf16


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """cnn 1.0.0 (legacy) with an int8 variant that has its plugin, and a bf16 variant."""
    repo = cnn_with_int8(tmp_path_factory.mktemp("fleet_variants"))
    proc = cli("build-plugin", f"{repo}:cnn@1.0.0-int8", "-o",
               repo / "cnn/1.0.0/variants/int8/plugin.so", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    craft_bf16(repo / "cnn/1.0.0")
    return repo


@pytest.fixture
def registry(tmp_path):
    yield from running(tmp_path / "registry")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_push_carries_variants_and_pull_brings_them_back(registry, source, tmp_path):
    proc = cli("push", f"{source}:cnn@1.0.0", registry.url("models/cnn"), "--insecure")
    assert proc.returncode == 0, proc.stderr
    assert "variant " + registry.url("models/cnn:1.0.0-int8").removeprefix("oci://") \
        in proc.stdout.replace("oci://", ""), proc.stdout
    version = registry.manifest("models/cnn", "1.0.0")  # the version's artifact: fp32 only
    titles = {la["annotations"][media.TITLE] for la in version["layers"]}
    assert titles == set(read_verified(source / "cnn/1.0.0").files)
    int8 = registry.manifest("models/cnn", "1.0.0-int8")  # an index: it has an x86_64 plugin
    assert int8["mediaType"] == media.OCI_INDEX
    assert int8["annotations"][media.PRECISION] == "int8"
    assert int8["annotations"][media.VERSION] == "1.0.0"
    bf16 = registry.manifest("models/cnn", "1.0.0-bf16")
    assert {la["annotations"][media.TITLE] for la in bf16["layers"]} == {"validation.npz"}

    box = tmp_path / "box"
    proc = cli("pull", registry.url("models/cnn:1.0.0"), "--repo", box, "--insecure")
    assert proc.returncode == 0, proc.stderr
    src, got = source / "cnn/1.0.0", box / "cnn/1.0.0"
    assert _files(got) == _files(src)
    _, diff, err = filecmp.cmpfiles(src, got, _files(src), shallow=False)
    assert not diff and not err
    for precision in ("int8", "bf16"):
        assert read_verified(got / "variants" / precision).precision == precision
    if refusal_here(needs_for("bf16"), "bf16") is not None:  # this box says so, and keeps it
        line = next(ln for ln in proc.stdout.splitlines() if "1.0.0-bf16" in ln)
        assert "this box cannot run it" in line and "bf16 needs" in line, proc.stdout
    again = cli("pull", registry.url("models/cnn:1.0.0"), "--repo", box, "--insecure")
    assert again.returncode == 0 and "already here" in again.stdout


def test_a_variant_derived_later_never_changes_the_version_artifact(registry, source, tmp_path):
    repo = Path(shutil.copytree(source, tmp_path / "models"))
    variants = repo / "cnn/1.0.0/variants"
    shutil.move(variants, tmp_path / "later")
    assert cli("push", f"{repo}:cnn@1.0.0", registry.url("models/cnn"),
               "--insecure").returncode == 0
    before = registry.manifest("models/cnn", "1.0.0")
    shutil.move(tmp_path / "later", variants)  # `paddlehot variant` appends it after the push
    proc = cli("push", f"{repo}:cnn@1.0.0", registry.url("models/cnn"), "--insecure")
    assert proc.returncode == 0, proc.stderr
    assert "already in the registry" in proc.stdout.splitlines()[0]
    assert registry.manifest("models/cnn", "1.0.0") == before  # same bytes, same digest
    assert registry.manifest("models/cnn", "1.0.0-int8")["annotations"][media.PRECISION] == "int8"
    # a different int8 variant under the same tag is refused: variant tags are immutable too
    other = repo / "cnn/1.0.0/variants/int8"
    doc = json.loads((other / "paddlehot.json").read_text())
    doc["validation"]["widened"] = "changed"
    (other / "paddlehot.json").write_text(json.dumps(doc))
    proc = cli("push", f"{repo}:cnn@1.0.0-int8", registry.url("models/cnn"), "--insecure")
    assert_one_line_error(proc, 2, "1.0.0-int8 already exists with different content")


def test_pulling_a_variant_alone_brings_its_version_first(registry, source, tmp_path):
    assert cli("push", f"{source}:cnn@1.0.0", registry.url("models/cnn"),
               "--insecure").returncode == 0
    box = tmp_path / "box"
    r = pull_version(parse_reference(registry.url("models/cnn:1.0.0-int8")), box, insecure=True)
    assert r.precision == "fp32" and [v.precision for v in r.variants] == ["int8"]
    assert read_verified(box / "cnn/1.0.0/variants/int8").precision == "int8"
    assert not (box / "cnn/1.0.0/variants/bf16").exists()  # only what was asked for
    assert (box / "cnn/1.0.0/variants/int8/plugin.so.sha256").is_file()


@pytest.mark.parametrize("held, tag", [("1.0.0-int8", "1.0.0"), ("1.0.0", "1.0.0-int8")])
def test_a_registry_cannot_pass_a_variant_for_its_version_or_back(registry, source, tmp_path,
                                                                 held, tag):
    """The same artifact bytes re-tagged by a hostile or careless registry: refused on pull,
    nothing written."""
    assert cli("push", f"{source}:cnn@1.0.0", registry.url("models/evil"),
               "--insecure").returncode == 0
    with RegistryClient(registry.host, insecure=True) as c:
        kind, body, _ = c.get_manifest("models/evil", held)
        c.put_manifest("models/evil", tag, body, kind)  # blobs and entries are all there
    box = tmp_path / "box"
    proc = cli("pull", registry.url(f"models/evil:{tag}"), "--repo", box, "--insecure")
    assert proc.returncode != 0
    assert f"holds cnn {held}, not {tag}" in proc.stderr, proc.stderr
    assert not (box / "cnn").exists() or not any((box / "cnn").iterdir())


@pytest.mark.parametrize("followed", ["models/cnn", "models/cnn:stable"])
def test_serve_follow_pulls_the_followed_versions_with_their_variants(registry, source,
                                                                     tmp_path, followed):
    from paddlehot_cli.fleet.follower import Follower

    assert cli("push", f"{source}:cnn@1.0.0", registry.url("models/cnn"),
               "--insecure", "--tag", "stable").returncode == 0
    box = tmp_path / "box"
    box.mkdir()
    follower = Follower(box, [parse_reference(registry.url(followed))], interval=30,
                        insecure=True, latest=1)
    try:
        follower.sync_once()
    finally:
        follower.stop()
    for precision in ("int8", "bf16"):
        assert read_verified(box / "cnn/1.0.0/variants" / precision).precision == precision
    assert not [r for r in follower.index_rows([]) if "refused" in str(r.get("reason"))]


def test_a_variant_plugin_is_not_its_versions_plugin_for_push_or_sign(registry, source):
    """Same model and version in its manifest: only the precision tells them apart."""
    from paddlehot_cli.core.plugin_identity import plugin_arch
    from paddlehot_cli.errors import UserError

    so = source / "cnn/1.0.0/variants/int8/plugin.so"
    assert plugin_arch(so, "cnn", "1.0.0", "int8") == "x86_64"
    with pytest.raises(UserError, match="built from cnn 1.0.0-int8, not cnn 1.0.0"):
        plugin_arch(so, "cnn", "1.0.0")
    proc = cli("push", f"{source}:cnn@1.0.0", registry.url("models/cnn"), "--insecure",
               "--plugin", so)
    assert_one_line_error(proc, 2, "built from cnn 1.0.0-int8, not cnn 1.0.0")


def test_signed_variants_travel_and_a_trusting_box_refuses_an_unsigned_one(registry, source,
                                                                           tmp_path):
    from paddlehot_cli.core.signatures import Trust, sign_version
    from paddlehot_cli.core.signing_keys import generate_key

    key = tmp_path / "keys" / "release"
    key.parent.mkdir()
    generate_key(key)
    pub = f"{key}.pub"
    trust = Trust.from_files([Path(pub)])
    # push --sign signs the version and each variant; a trusting box takes all three
    signed = tmp_path / "signed"
    shutil.copytree(source, signed)
    proc = cli("push", f"{signed}:cnn@1.0.0", registry.url("models/cnn"), "--insecure",
               "--sign", key)
    assert proc.returncode == 0, proc.stderr
    box = tmp_path / "box"
    proc = cli("pull", registry.url("models/cnn:1.0.0"), "--repo", box, "--insecure",
               "--trust", pub)
    assert proc.returncode == 0, proc.stderr
    for precision in ("int8", "bf16"):
        vdir = box / "cnn/1.0.0/variants" / precision
        assert trust.check_version(vdir, "cnn", "1.0.0") is None  # its manifest says int8
    # a version signed but its int8 variant not: the trusting box refuses the variant
    half = tmp_path / "half"
    shutil.copytree(source, half)
    sign_version(half / "cnn/1.0.0", key)
    proc = cli("push", f"{half}:cnn@1.0.0", registry.url("other/cnn"), "--insecure")
    assert proc.returncode == 0, proc.stderr
    box2 = tmp_path / "box2"
    proc = cli("pull", registry.url("other/cnn:1.0.0-int8"), "--repo", box2, "--insecure",
               "--trust", pub)
    assert_one_line_error(proc, 2, "unsigned")
    assert not (box2 / "cnn/1.0.0/variants/int8").exists()
