"""Detached Ed25519 signatures (core/signatures.py, `paddlehot sign`, `serve --trust`): every
way an attacker or a careless operator could get an unsigned or altered version served is
refused with its reason; rotation and append-only signing keep working versions working."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat

import pytest
from conftest import assert_one_line_error, cli

from paddlehot_cli.core.signatures import SIG_DIR, Trust, sign_version
from paddlehot_cli.core.signing_keys import generate_key
from tests.serve_fixtures.helpers import publish_copy


@pytest.fixture
def keys(tmp_path):
    out = {}
    for name in ("release", "next", "stranger"):
        path = tmp_path / "keys" / name
        path.parent.mkdir(exist_ok=True)
        generate_key(path)
        out[name] = path
    return out


@pytest.fixture
def version(tmp_path, exported):
    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 0), repo, "mlp", "1.0.0")
    return repo / "mlp" / "1.0.0"


def _trust(*paths) -> Trust:
    return Trust.from_files([p.with_name(p.name + ".pub") for p in paths])


def test_keygen_private_key_is_0600_and_never_overwritten(keys, tmp_path):
    assert stat.S_IMODE(os.stat(keys["release"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(f"{keys['release']}.pub").st_mode) == 0o644
    proc = cli("sign", "--new-key", keys["release"])
    assert_one_line_error(proc, 2, "already exists")


def test_keygen_makes_the_key_directory(tmp_path):
    # the documented first step on a fresh checkout; before: "cannot create ...: No such file"
    proc = cli("sign", "--new-key", tmp_path / "keys" / "release.key")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert (tmp_path / "keys" / "release.key.pub").is_file()
    (tmp_path / "file").write_text("")
    proc = cli("sign", "--new-key", tmp_path / "file" / "release.key")
    assert_one_line_error(proc, 2, "file is not a directory")


def test_signed_version_verifies_and_every_tampering_is_refused(keys, version):
    trust = _trust(keys["release"])
    assert trust.check_version(version, "mlp", "1.0.0").startswith("paddlehot.json unsigned")
    proc = cli("sign", f"{version.parent.parent}:mlp@1.0.0", "--key", keys["release"])
    assert proc.returncode == 0, proc.stderr
    assert trust.check_version(version, "mlp", "1.0.0") is None
    # an untrusted key: valid signature, unknown key
    assert "unknown key" in _trust(keys["stranger"]).check_version(version, "mlp", "1.0.0")
    # the manifest edited (e.g. a file's sha256 swapped): the signature no longer covers it
    manifest = version / "paddlehot.json"
    original = manifest.read_bytes()
    doc = json.loads(original)
    doc["validation"]["note"] = "edited"
    manifest.write_text(json.dumps(doc))
    assert "invalid" in trust.check_version(version, "mlp", "1.0.0")
    manifest.write_bytes(original)
    # signature bytes flipped
    sig = next((version / SIG_DIR).iterdir())
    data = json.loads(sig.read_text())
    raw = bytearray(base64.b64decode(data["signature"]))
    raw[5] ^= 1
    data["signature"] = base64.b64encode(bytes(raw)).decode()
    good = sig.read_bytes()
    sig.write_text(json.dumps(data))
    assert "does not verify" in trust.check_version(version, "mlp", "1.0.0")
    # a signature carried over from another version of the same model
    sig.write_bytes(good)
    other = version.parent / "2.0.0"
    publish_copy(version, version.parent.parent, "mlp", "2.0.0")
    shutil.copytree(version / SIG_DIR, other / SIG_DIR)
    assert "signs mlp 1.0.0" in trust.check_version(other, "mlp", "2.0.0")
    assert trust.check_version(version, "mlp", "1.0.0") is None


def test_rotation_appends_and_keeps_old_signatures(keys, version):
    sign_version(version, keys["release"])
    first = sorted(p.name for p in (version / SIG_DIR).iterdir())
    before = {p.name: p.read_bytes() for p in (version / SIG_DIR).iterdir()}
    assert sign_version(version, keys["release"]) == []  # idempotent
    sign_version(version, keys["next"])
    now = {p.name: p.read_bytes() for p in (version / SIG_DIR).iterdir()}
    assert len(now) == 2 and all(now[n] == before[n] for n in first)
    assert _trust(keys["next"]).check_version(version, "mlp", "1.0.0") is None
    assert _trust(keys["stranger"], keys["release"]).check_version(version, "mlp", "1.0.0") is None


@pytest.mark.native
def test_plugin_signature_tampering_and_absence(keys, version):
    from paddlehot_cli.core.plugin_image import digest_line, file_sha256
    from tests.plugin_fixtures.helpers import run_build

    proc = run_build(version, "-o", version / "plugin.so", "--no-embed-model", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    trust = _trust(keys["release"])
    sign_version(version, keys["release"])
    assert trust.check_version(version, "mlp", "1.0.0") is None
    plugin = version / "plugin.so"
    side = version / "plugin.so.sha256"
    data = bytearray(plugin.read_bytes())
    data[-1] ^= 0xFF  # one byte of the plugin changed after signing, its .sha256 record too
    plugin.write_bytes(bytes(data))
    recorded = side.read_text()
    side.write_text(digest_line(file_sha256(plugin), "plugin.so"))
    assert trust.check_version(version, "mlp", "1.0.0").startswith("plugin.so unsigned")
    side.unlink()  # no record: the file itself is hashed
    assert trust.check_version(version, "mlp", "1.0.0").startswith("plugin.so unsigned")
    # (bytes changed but the record kept: the loader dlopens only a sealed copy that hashes
    # to the record, tests/test_plugin_trust.py)
    data[-1] ^= 0xFF
    plugin.write_bytes(bytes(data))
    side.write_text(recorded)
    assert trust.check_version(version, "mlp", "1.0.0") is None
    for p in (version / SIG_DIR).glob("plugin-*"):
        p.unlink()  # the plugin's signature removed, the manifest's kept
    assert trust.check_version(version, "mlp", "1.0.0").startswith("plugin.so unsigned")


def test_serve_trust_refuses_unsigned_and_serves_signed(keys, version, tmp_path):
    import httpx

    from tests.serve_fixtures.helpers import start_runtime, wait_for

    repo = version.parent.parent
    publish_copy(version, repo, "mlp", "1.1.0")  # 1.1.0 unsigned, 1.0.0 signed
    sign_version(version, keys["release"])
    tampered = publish_copy(version, repo, "mlp", "1.2.0")
    sign_version(tampered, keys["release"])  # signed, then a model file changed (same size)
    params = tampered / "model.pdiparams"
    data = bytearray(params.read_bytes())
    data[len(data) // 2] ^= 0xFF
    params.write_bytes(bytes(data))
    rt = start_runtime(repo, trust=_trust(keys["release"]))
    try:
        base = f"http://127.0.0.1:{rt.port}"
        rows = {r["version"]: r for r in httpx.post(f"{base}/v2/repository/index").json()}
        assert rows["1.0.0"]["state"] == "READY", rows
        assert "unsigned" in rows["1.1.0"]["reason"] and "--trust" in rows["1.1.0"]["reason"]
        assert "sha256" in rows["1.2.0"]["reason"] and rows["1.2.0"]["state"] != "READY", rows
        sign_version(repo / "mlp" / "1.1.0", keys["release"])  # signed later: it serves
        wait_for(lambda: {r["version"]: r for r in httpx.post(
            f"{base}/v2/repository/index").json()}["1.1.0"]["state"] == "READY", 30,
            what="1.1.0 once signed")
    finally:
        rt.stop_thread()


def test_abi_check_reports_the_signature(keys, version):
    proc = cli("abi-check", version, "--format", "json")
    assert '"signed"' in proc.stdout and "unsigned" in proc.stdout, proc.stdout
    sign_version(version, keys["release"])
    proc = cli("abi-check", version, "--format", "json", "--trust", f"{keys['release']}.pub")
    assert "valid" in proc.stdout, proc.stdout
    proc = cli("abi-check", version, "--format", "json", "--trust", f"{keys['stranger']}.pub")
    assert "unknown key" in proc.stdout, proc.stdout


def test_export_sign_publishes_a_signed_version_and_bad_keys_are_one_line(keys, tmp_path):
    repo = tmp_path / "signed"
    proc = cli("export", "demo:mlp", "--repo", repo, "--version", "1.0.0", "--no-validate",
               "--sign", keys["release"])
    assert proc.returncode == 0, proc.stderr
    assert _trust(keys["release"]).check_version(repo / "mlp/1.0.0", "mlp", "1.0.0") is None
    proc = cli("sign", f"{repo}:mlp", "--key", f"{keys['release']}.pub")  # a public key
    assert_one_line_error(proc, 2, "not an unencrypted PEM private key")
    proc = cli("serve", repo, "--port", "0", "--trust", tmp_path / "missing.pub")
    assert_one_line_error(proc, 2, "cannot read key")
