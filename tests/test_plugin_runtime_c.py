"""native/runtime compiles on its own with strict warnings, and its model-independent parts work
without a model: tests/native/runtime_test.c (memfd helper, ELF section reader, call checks)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from paddlehot_cli.plugin.pdcapi import build_pdcapi, pdcapi_include_dir

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "native" / "runtime"


def test_runtime_alone(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    lib = build_pdcapi()
    exe = tmp_path / "runtime_test"
    cmd = [cc, "-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
           f"-I{RUNTIME}", f"-I{ROOT / 'native' / 'include'}", f"-I{pdcapi_include_dir()}",
           str(ROOT / "tests/native/runtime_test.c"), *map(str, sorted(RUNTIME.glob("*.c"))),
           f"-L{lib.parent}", "-lpaddle_inference_c", "-lpthread", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib.parent))
    proc = subprocess.run([str(exe), str(work)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["ok", "memfiles", "ok", "sections", "ok", "checks"]
