"""`plugin.qemu_serve` hands serve's options to the guest: the guest sees only what is bound in,
so a --follow box needs a writable REPO and --trust/--state-dir & co. their host files (before,
under qemu a follower could not write REPO and `--trust KEY.pub` named a file the guest lacks)."""

from __future__ import annotations

from paddlehot_cli.plugin.qemu_serve import guest_serve_args
from paddlehot_cli.plugin.rootfs import GUEST_MNT


def test_follow_binds_the_repository_writable_and_host_files_in(tmp_path):
    pub, ca, state = tmp_path / "release.key.pub", tmp_path / "ca.pem", tmp_path / "state"
    pub.write_text("k")
    ca.write_text("c")
    state.mkdir()
    args, binds = guest_serve_args(tmp_path / "repo", [
        "--port", "8000", "--follow", "oci://127.0.0.1:5000/models/mlp:stable", "--trust", pub,
        f"--registry-ca={ca}", "--state-dir", state, "--tls-cert", tmp_path / "missing.pem"])
    by_host = {b.host: b for b in binds}
    assert by_host[tmp_path / "repo"].writable and by_host[state].writable
    assert not by_host[pub].writable and not by_host[ca].writable
    assert args == [f"{GUEST_MNT}/repo", "--port", "8000", "--follow",
                    "oci://127.0.0.1:5000/models/mlp:stable", "--trust", by_host[pub].guest,
                    f"--registry-ca={by_host[ca].guest}", "--state-dir", by_host[state].guest,
                    "--tls-cert", str(tmp_path / "missing.pem")]  # serve inside says it is missing
    assert len({b.guest for b in binds}) == len(binds)


def test_without_follow_the_repository_stays_read_only(tmp_path):
    args, binds = guest_serve_args(tmp_path, ["--port", "0", "--prefer", "plugin"])
    assert args == [f"{GUEST_MNT}/repo", "--port", "0", "--prefer", "plugin"]
    assert [(b.host, b.writable) for b in binds] == [(tmp_path, False)]
