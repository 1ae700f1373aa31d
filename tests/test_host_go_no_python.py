"""The C host (native/host) and the Go host (phot-host) run plugins with no Python interpreter
ever started: no PADDLEHOT_PYTHON, no venv, an empty environment; libpython is only mapped
(libpaddle.so refers to Py* symbols). The witness (tests/native/python_never_started.c,
LD_PRELOADed) aborts on any interpreter start and reports, at each dlclose, the real
Py_IsInitialized(). The aarch64 twin is in test_host_go_arm64.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_host_go import host_args, host_command, plugins  # noqa: F401 - fixtures

WITNESS = ROOT / "tests" / "native" / "python_never_started.c"


def build_witness(out: Path, cc: str = "cc") -> Path:
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", str(WITNESS), "-o", str(out),
                           "-ldl"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return out


def assert_never_started(stderr: str) -> None:
    """The witness's lines: libpython mapped, never initialised, no start attempted."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("python-witness:")]
    assert lines, stderr[-2000:]  # at least one dlclose was seen
    assert not any("STARTED" in ln for ln in lines), lines
    assert all(ln.endswith("initialized=0") for ln in lines), lines
    assert all("libpython=none" not in ln for ln in lines), lines  # present, so the check bites


@pytest.fixture(scope="module")
def witness(tmp_path_factory) -> Path:
    return build_witness(tmp_path_factory.mktemp("witness") / "python_never_started.so")


def test_witness_catches_an_interpreter_start(witness):
    proc = subprocess.run([sys.executable, "-c", "pass"], env={"LD_PRELOAD": str(witness)},
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "python-witness: STARTED by Py_BytesMain" in proc.stderr


def test_go_host_starts_no_python(plugins, host_command, witness):  # noqa: F811
    cmd = [str(host_command), "-t", "2", "-n", "300", "-swaps", "2", "-capi", plugins["capi"],
           *host_args(plugins)]
    proc = subprocess.run(cmd, env={"LD_PRELOAD": str(witness), "GLOG_minloglevel": "2"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "0 failed" in proc.stdout
    assert_never_started(proc.stderr)


def test_c_host_starts_no_python(plugins, witness, tmp_path):  # noqa: F811
    exe = tmp_path / "host"
    make = subprocess.run(["make", "-C", str(ROOT / "native" / "host"), f"OUT={exe}"],
                          capture_output=True, text=True, check=False)
    assert make.returncode == 0, make.stderr
    env = {"LD_PRELOAD": str(witness), "GLOG_minloglevel": "2",
           "LD_LIBRARY_PATH": str(Path(plugins["capi"]).parent)}
    proc = subprocess.run([str(exe), "-t", "2", "-n", "200", *host_args(plugins)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert_never_started(proc.stderr)
