"""The aarch64 tooling's mistakes and refusals, without qemu: one clear line, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from paddlehot_cli.core.paddle_skew import older_runtime_warning
from tests.conftest import ROOT, assert_one_line_error, cli

SCRIPT = ROOT / "native" / "edge" / "build-rootfs.sh"


def test_sysroot_must_be_a_rootfs_of_the_target(exported, tmp_path):
    pkg = exported("demo:mlp")
    out = tmp_path / "arm.so"
    proc = cli("build-plugin", pkg, "-o", out, "--target", "aarch64", "--sysroot", tmp_path / "no")
    assert_one_line_error(proc, 2, "--sysroot", "not a directory")
    (tmp_path / "empty").mkdir()
    proc = cli("build-plugin", pkg, "-o", out, "--target", "aarch64", "--sysroot",
               tmp_path / "empty")
    assert_one_line_error(proc, 2, "not a Debian aarch64 rootfs")
    assert "build-rootfs.sh" in proc.stderr  # the hint says how to get one
    assert not out.exists()


@pytest.mark.parametrize("layout_arch, target, message", [
    ("x86_64", "x86_64", "--sysroot is for cross builds"),  # this host's arch: nothing to cross
    ("aarch64", "aarch64", "no Python headers"),  # a bare layout: pdcapi cannot embed Python
])
def test_sysroot_refusals(exported, tmp_path, layout_arch, target, message):
    root = tmp_path / "rootfs"
    (root / "usr" / "lib" / f"{layout_arch}-linux-gnu").mkdir(parents=True)
    (root / "etc").mkdir()
    proc = cli("build-plugin", exported("demo:mlp"), "-o", tmp_path / "p.so", "--target",
               target, "--sysroot", root)
    assert_one_line_error(proc, 2, message)
    assert not (tmp_path / "p.so").exists()


def test_rootfs_script_usage_and_check(tmp_path):
    env = {**os.environ, "PADDLEHOT_EDGE_DIR": str(tmp_path / "edge")}
    proc = subprocess.run([SCRIPT, "--bogus"], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown argument")
    proc = subprocess.run([SCRIPT, "--check"], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 1 and "no complete rootfs" in proc.stderr
    assert not (tmp_path / "edge").exists()  # --check builds nothing


@pytest.mark.skipif(not shutil.which("setpriv") and os.geteuid() == 0, reason="needs setpriv")
def test_rootfs_script_says_it_needs_root(tmp_path):
    cmd = [str(SCRIPT)]
    if os.geteuid() == 0:  # drop to nobody, as a developer without sudo would run it
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    edge = tmp_path / "edge"
    env = {**os.environ, "PADDLEHOT_EDGE_DIR": str(edge), "HOME": "/nonexistent"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    if shutil.which("sudo") is None:
        assert proc.stderr.strip().splitlines() == [
            ("error: building the arm64 rootfs needs root (debootstrap, chroot, binfmt "
             "registration), and sudo is not installed: run it as root")
        ]
    else:  # it reruns itself through sudo, which cannot ask for a password here: no hang
        assert "not root: running through sudo" in proc.stderr, proc.stderr
    assert not edge.exists()


def test_paddle_skew_warns_only_for_an_older_runtime():
    assert "Paddle 3.2.2 (older)" in older_runtime_warning("3.3.1", "3.2.2")
    assert older_runtime_warning("3.2.2", "3.3.1") is None
    assert older_runtime_warning("3.3.1", "3.3.1") is None
    assert older_runtime_warning(None, "3.2.2") is None
    assert older_runtime_warning("3.3.1", "not-a-version") is None
