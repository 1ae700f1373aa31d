"""The ABI grows by appending: a host built with a phot_tensor that has one more field (a later
plugin.h) and a host built with plugin.h 1.0 exactly both pass two inputs and two outputs in one
array each and get the package's results; the plugin writes nothing into the appended field.
A struct_size below 1.0 is refused with PHOT_E_INVALID_ARGUMENT."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import MODELS, cli
from plugin_fixtures.helpers import C_API, Raw, build, manifest_of, tensor

from paddlehot_cli.core import load

ROOT = Path(__file__).resolve().parents[1]
CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    out = tmp_path_factory.mktemp("two") / "pkg"
    proc = cli("export", f"{MODELS / 'two_inputs.py'}:make", "--name", "two",
               "--input", "feats:float32:[-1,4]", "--input", "ids:int64:[-1,-1]", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out, build(out, name="two")


def _host(tmp_path: Path, extended: int) -> Path:
    exe = tmp_path / f"host{extended}"
    cmd = [CC, "-O1", "-Wall", "-Werror", "-std=gnu11", f"-DEXTENDED={extended}",
           f"-I{ROOT / 'native' / 'include'}", str(ROOT / "tests/native/abi_growth_host.c"),
           "-o", str(exe), "-ldl"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


def _parse(stdout: str) -> dict[str, list[str]]:
    return {ln.split()[0]: ln.split()[1:] for ln in stdout.splitlines() if ln.strip()}


@pytest.mark.parametrize("extended,size", [(0, 104), (1, 112)])
def test_hosts_of_two_header_revisions_get_correct_results(two, tmp_path, extended, size):
    pkg, so = two
    env = dict(os.environ, LD_LIBRARY_PATH=str(C_API().parent), GLOG_minloglevel="2")
    prefix = manifest_of(so)["plugin"]["symbol_prefix"]
    proc = subprocess.run([str(_host(tmp_path, extended)), str(so), prefix], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # 3: the appended field was written
    got = _parse(proc.stdout)
    assert got["struct_size"] == [str(size)]
    feats = np.array([[1, 2, 3, 4], [-1, 0.5, 2, -3]], "float32")
    ids = np.array([[1, 2, 3], [4, 5, 9]], "int64")
    with load(pkg) as ref:
        want = list(ref.infer({"feats": feats, "ids": ids}).values())
    np.testing.assert_allclose(np.array(got["y"], "float32").reshape(want[0].shape), want[0],
                               rtol=1e-5, atol=1e-6)
    assert [int(v) for v in got["ids2"]] == want[1].ravel().tolist()


def test_struct_size_rules_through_the_raw_abi(two):
    _, so = two
    r = Raw(so)
    h = r.open_handle()
    feats = np.ones((1, 4), "float32")
    ids = np.ones((1, 2), "int64")
    ins = (type(tensor("x")) * 2)(tensor("feats", feats), tensor("ids", ids, dtype=5))
    y, i2 = np.empty((1, 8), "float32"), np.empty((1, 2), "int64")
    outs = (type(tensor("x")) * 2)(tensor(None, y), tensor(None, i2))

    def call() -> tuple[int, str]:
        rc = r.infer(h, ctypes.byref(ins), 2, ctypes.byref(outs), 2)
        return rc, r.last_error().decode()

    assert call()[0] == 0
    ins[1].struct_size = 112  # elements of one array must agree
    rc, msg = call()
    assert rc == -1 and "inputs[1].struct_size is 112" in msg
    ins[0].struct_size = ins[1].struct_size = 96  # smaller than 1.0
    rc, msg = call()
    assert rc == -1 and ">= 104" in msg
    ins[0].struct_size = ins[1].struct_size = 104
    outs[0].struct_size = 100  # not a multiple of the alignment
    assert call()[0] == -1
    assert r.infer(h, None, 2, ctypes.byref(outs), 2) == -1  # NULL array, n > 0
    assert r.close(h) == 0
