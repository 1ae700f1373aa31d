"""The Go host (native/host-go) against real plugins: two versions of demo:mlp exported and built
by the CLI, then `go vet`, `go test` (plain, -race, GODEBUG=cgocheck=2), the phot-host command,
and its arm64 cross-build (ELF facts, and a run under qemu-user)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from plugin_fixtures.helpers import build, manifest_of

from paddlehot_cli.abi.policy import glibc_key
from paddlehot_cli.core import load
from paddlehot_cli.core.elf_facts import read_elf

ROOT = Path(__file__).resolve().parents[1]
GO_DIR = ROOT / "native" / "host-go"
WIDE_MODEL = ROOT / "tests" / "models" / "wide_mlp.py"  # ~17 MB of weights per version
ARM64_SYSROOT = Path("/usr/aarch64-linux-gnu")  # libc6-dev-arm64-cross (for qemu -L)
# The host's own floor: Go's runtime/cgo needs the glibc 2.34 pthread symbols in libc.so.6.
GO_HOST_GLIBC_FLOOR = (2, 34)

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")


def go(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="", GLOG_minloglevel="2")
    full.update(env or {})
    return subprocess.run(
        ["go", *args],
        cwd=GO_DIR,
        env=full,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def plugins(exported, tmp_path_factory) -> dict:
    """Two versions of demo:mlp and two of a wide MLP as plugins, one input, each version's
    expected output."""
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    tmp = tmp_path_factory.mktemp("host-go")
    x = np.random.default_rng(0).random((3, 16)).astype("float32")
    x.tofile(tmp / "in.bin")
    versions = []
    for version, seed in (("1.0.0", 0), ("1.1.0", 1)):
        pkg = exported("demo:mlp", "pir", version, seed)
        so = build(pkg, name=f"go-v{version}")
        with load(pkg) as ref:
            ref.infer({"x": x})["logits"].astype("float32").tofile(tmp / f"{version}.bin")
        versions.append(
            {
                "so": str(so),
                "version": version,
                "expected": str(tmp / f"{version}.bin"),
                "prefix": manifest_of(so)["plugin"]["symbol_prefix"],
            }
        )
    wide = []
    for version, seed in (("2.0.0", "0"), ("2.1.0", "1")):
        pkg = tmp / f"wide-{version}"
        proc = cli(
            "export",
            f"{WIDE_MODEL}:make",
            "--input",
            "x:float32:[-1,16]",
            "--name",
            "wide",
            "--version",
            version,
            "--seed",
            seed,
            "-o",
            pkg,
        )
        assert proc.returncode == 0, proc.stderr
        so = build(pkg, name=f"go-wide-{version}")
        with load(pkg) as ref:
            ref.infer({"x": x}).popitem()[1].astype("float32").tofile(tmp / f"{version}.bin")
        wide.append({"so": str(so), "version": version, "expected": str(tmp / f"{version}.bin")})
    fixtures = {
        "wide": wide,
        "capi": str(build_pdcapi()),
        "input": {"name": "x", "dtype": "float32", "shape": [3, 16], "file": str(tmp / "in.bin")},
        "versions": versions,
    }
    (tmp / "fixtures.json").write_text(json.dumps(fixtures))
    return {"dir": tmp, "file": str(tmp / "fixtures.json"), **fixtures}


def run_go_tests(plugins: dict, *flags: str, env: dict | None = None) -> str:
    # A fixed mmap threshold returns freed weights to the system (see TestFiftySwapsReleasePlugins)
    fixed_mmap = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}
    proc = go(
        "test",
        "-count=1",
        "-v",
        *flags,
        "./...",
        env={"PHOT_TEST_FIXTURES": plugins["file"], **fixed_mmap, **(env or {})},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "--- SKIP" not in out, out  # with fixtures, every test runs
    assert "--- PASS: TestSwapUnderTraffic" in out
    return out


def test_go_vet():
    proc = go("vet", "./...")
    assert proc.returncode == 0, proc.stderr


def test_go_tests_pass_with_real_plugins(plugins):
    out = run_go_tests(plugins)
    swap = re.search(r"swap test: 8 goroutines, 20 swaps, (\d+) calls .*, (\d+) failed", out)
    assert swap and int(swap[1]) > 0 and swap[2] == "0", out
    release = re.search(r"release test: 50 swaps .* released plugins still mapped: 0", out)
    assert release, out
    print("\n".join(line for line in out.splitlines() if "test:" in line))  # figures, with -s


def test_go_tests_pass_under_race_detector_and_cgocheck2(plugins):
    # Fewer swaps: the point is the detectors watching every path, not the counts again.
    fast = {"PHOT_TEST_SWAPS": "6", "PHOT_TEST_RELEASE_SWAPS": "6"}
    run_go_tests(plugins, "-race", env=fast)
    run_go_tests(plugins, env={**fast, "GODEBUG": "cgocheck=2"})


@pytest.fixture(scope="module")
def host_command(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phot-host") / "phot-host"
    proc = go("build", "-o", str(out), "./cmd/phot-host")
    assert proc.returncode == 0, proc.stderr
    return out


def host_args(plugins: dict, expected: list[str] | None = None) -> list[str]:
    args = []
    for v, exp in zip(
        plugins["versions"], expected or [v["expected"] for v in plugins["versions"]]
    ):
        args += [v["so"], v["prefix"], exp]
    return ["-i", f"x:float32:3,16:{plugins['input']['file']}", *args]


def test_phot_host_swaps_under_load_and_checks_every_result(plugins, host_command):
    env = dict(os.environ, GLOG_minloglevel="2")
    cmd = [
        str(host_command),
        "-t",
        "8",
        "-n",
        "2000",
        "-swaps",
        "5",
        "-capi",
        plugins["capi"],
        "-json",
        *host_args(plugins),
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["failed"] == 0 and report["swaps"] == 5 and report["threads"] == 8
    assert report["calls_per_version"]["v1"] > 0 and report["calls_per_version"]["v2"] > 0
    assert report["latency_us"]["p50"] > 0
    # It notices wrong results: v1 is expected to answer v2's outputs (warm-up refuses it).
    swapped = [plugins["versions"][1]["expected"], plugins["versions"][0]["expected"]]
    bad = [
        str(host_command),
        "-t",
        "2",
        "-n",
        "50",
        "-capi",
        plugins["capi"],
        *host_args(plugins, swapped),
    ]
    proc = subprocess.run(bad, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1 and "error:" in proc.stderr, proc.stdout + proc.stderr
    # Usage mistakes: exit 2 and one error line.
    proc = subprocess.run(
        [str(host_command), "-t", "2"], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error:")


def test_arm64_cross_build(tmp_path):
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc is not installed")
    out = tmp_path / "phot-host-arm64"
    proc = go(
        "build",
        "-o",
        str(out),
        "./cmd/phot-host",
        env={"CGO_ENABLED": "1", "GOARCH": "arm64", "CC": "aarch64-linux-gnu-gcc"},
    )
    assert proc.returncode == 0, proc.stderr
    elf = read_elf(out)
    assert elf.machine == "aarch64" and elf.elfclass == 64
    assert elf.needed == ["libc.so.6"]  # no Paddle, no Python: those come with the plugins
    glibc = [v for vs in elf.version_needs.values() for v in vs if glibc_key(v)]
    floor = max(glibc, key=glibc_key)
    assert glibc_key(floor) <= GO_HOST_GLIBC_FLOOR, floor
    # It runs on arm64 (qemu-user, the cross libc): usage error, then a refused non-plugin file.
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if qemu is None or not ARM64_SYSROOT.is_dir():
        pytest.skip("qemu-aarch64 or the arm64 cross libc is not installed")
    run = [qemu, "-L", str(ARM64_SYSROOT), str(out)]
    proc = subprocess.run(
        [*run, "-t", "1"], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "usage: phot-host" in proc.stderr, proc.stderr
    (tmp_path / "in.bin").write_bytes(b"\0" * 4)
    (tmp_path / "e.bin").write_bytes(b"\0" * 4)
    bogus = [str(out), "p", str(tmp_path / "e.bin")] * 2  # the binary itself is no plugin
    proc = subprocess.run(
        [*run, "-i", f"x:float32:1:{tmp_path / 'in.bin'}", *bogus],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "is not a paddlehot plugin" in proc.stderr, proc.stderr
