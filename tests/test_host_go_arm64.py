"""The Go host's swap test on aarch64, under qemu: two versions of demo:mlp cross-built by
`build-plugin --target aarch64 --sysroot ROOTFS`, phot-host cross-built for arm64, run inside the
rootfs (plugin.rootfs.guest_command) with the cross pdcapi as -capi and no Python interpreter
started (tests/native/python_never_started.c preloaded): goroutines call infer while
the host swaps versions, and every result must equal the answering version's output as this
x86_64 host's Paddle computes it (phot-host's tolerance, 1e-5 + 1e-4 |want|).

Needs the rootfs of native/edge/build-rootfs.sh. Without one the module is skipped, unless
PADDLEHOT_EDGE_REQUIRED=1 (CI), where a missing rootfs is a failure. Latency under qemu is
emulated: it says nothing about a real arm64 device.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from paddlehot_cli.core import load
from paddlehot_cli.core.elf_facts import read_elf
from tests.conftest import ROOT, cli
from tests.plugin_fixtures.helpers import manifest_of
from tests.test_host_go_no_python import assert_never_started, build_witness

SCRIPT = ROOT / "native" / "edge" / "build-rootfs.sh"
GO_DIR = ROOT / "native" / "host-go"
X = np.random.default_rng(3).random((3, 16)).astype("float32")

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")


@pytest.fixture(scope="module")
def rootfs():
    """The cached aarch64 rootfs (only its libs, venv and paddle are used: nothing refreshed)."""
    from paddlehot_cli.plugin.rootfs import binfmt_problem, open_rootfs

    check = subprocess.run([SCRIPT, "--check"], capture_output=True, text=True, check=False)
    why = None
    if check.returncode != 0:
        why = f"no aarch64 rootfs ({check.stderr.strip()}): build it with `{SCRIPT}` (as root, or through sudo)"
    elif binfmt_problem("aarch64"):
        why = f"cannot run aarch64 code: {binfmt_problem('aarch64')}"
    if why:
        if os.environ.get("PADDLEHOT_EDGE_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
    proc = subprocess.run([SCRIPT, "--print-path"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return open_rootfs(Path(proc.stdout.strip()), "aarch64")


def cross_build_host(out: Path) -> None:
    env = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="", CGO_ENABLED="1",
               GOARCH="arm64", CC="aarch64-linux-gnu-gcc")
    proc = subprocess.run(["go", "build", "-o", str(out), "./cmd/phot-host"], cwd=GO_DIR,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert read_elf(out).machine == "aarch64"


def test_go_swap_test_on_aarch64_plugins_under_qemu(rootfs, exported, tmp_path):
    from paddlehot_cli.plugin.c_api_choice import CROSS_CC
    from paddlehot_cli.plugin.cross import build_cross_pdcapi
    from paddlehot_cli.plugin.rootfs import Bind, guest_command

    work = tmp_path / "work"  # everything the guest reads, bound read-only
    work.mkdir()
    X.tofile(work / "in.bin")
    for version, seed in (("1.0.0", 0), ("1.1.0", 1)):
        pkg = exported("demo:mlp", "pir", version, seed)
        so = work / f"mlp-{version}.so"
        # No --verify here: phot-host checks every one of its calls against x86_64 outputs.
        proc = cli("build-plugin", pkg, "-o", so, "--target", "aarch64", "--sysroot",
                   rootfs.path, "--no-verify", timeout=600)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        elf = read_elf(so)
        assert elf.machine == "aarch64", elf.machine
        with load(pkg) as ref:
            ref.infer({"x": X})["logits"].astype("float32").tofile(work / f"{version}.bin")
    v1, v2 = (np.fromfile(work / f"{v}.bin", dtype="float32") for v in ("1.0.0", "1.1.0"))
    assert not np.allclose(v1, v2, atol=1e-3)  # a swap is visible in the outputs
    cross_build_host(work / "phot-host")
    build_witness(work / "witness.so", CROSS_CC["aarch64"])
    capi = build_cross_pdcapi(rootfs, CROSS_CC["aarch64"])

    binds = [Bind(work, "work"), Bind(capi.parent, "capi")]
    w = binds[0].guest
    plugins = ["mlp-1.0.0.so", "mlp-1.1.0.so"]

    def run_guest(expected: list[str], *flags: str) -> subprocess.CompletedProcess:
        argv = [f"{w}/phot-host", *flags, "-capi", f"{binds[1].guest}/{capi.name}",
                "-i", f"x:float32:3,16:{w}/in.bin"]
        for so_name, exp in zip(plugins, expected):
            argv += [f"{w}/{so_name}", symbol_prefix(work / so_name), f"{w}/{exp}"]
        # No PADDLEHOT_PYTHON, no venv: the witness shows no interpreter is ever started.
        env = {"LD_PRELOAD": f"{w}/witness.so", "GLOG_minloglevel": "2"}
        return subprocess.run(guest_command(rootfs, argv, binds, env), capture_output=True,
                              text=True, timeout=600, check=False)

    proc = run_guest(["1.0.0.bin", "1.1.0.bin"], "-t", "2", "-n", "200", "-swaps", "4", "-json")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert report["failed"] == 0 and report["swaps"] == 4 and report["threads"] == 2, report
    assert report["calls"] >= 200, report  # -n is a floor: calls go on while a swap warms up
    assert report["calls_per_version"]["v1"] > 0 and report["calls_per_version"]["v2"] > 0
    assert_never_started(proc.stderr)
    print(f"\narm64 phot-host under qemu (emulated): {json.dumps(report)}")  # figures, with -s
    # It notices wrong aarch64 results: v1 expected to answer v2's outputs is refused.
    proc = run_guest(["1.1.0.bin", "1.0.0.bin"], "-t", "2", "-n", "20")
    assert proc.returncode == 1 and "error:" in proc.stderr, proc.stdout + proc.stderr[-4000:]
    assert "warm-up of" in proc.stderr and ", expected " in proc.stderr, proc.stderr[-4000:]


def symbol_prefix(so: Path) -> str:
    return manifest_of(so)["plugin"]["symbol_prefix"]
