"""The Python host: core.load("x.so") with no extra argument (a prebuilt pdcapi, found without
importing paddle or compiling), errors that name the user's file, and no paddle Python package in
a process that only runs plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from paddlehot_cli.core import load
from tests.plugin_fixtures.helpers import build

LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from paddlehot_cli.core import load
    m = load(sys.argv[1])  # no c_api: the prebuilt pdcapi
    x = np.arange(32, dtype=np.float32).reshape(2, 16) / 32
    y = m.infer({"x": x})
    m.close()
    print(json.dumps({"y": {k: v.tolist() for k, v in y.items()},
                      "paddle_imported": "paddle" in sys.modules}))
    """
)


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD_SCRIPT, *args], capture_output=True, check=False,
                          text=True, timeout=300,
                          env={**os.environ, "GLOG_minloglevel": "2", **(env or {})})


def test_core_load_of_a_plugin_needs_no_argument_and_no_paddle_import(exported):
    pkg = exported("demo:mlp")
    plugin = build(pkg)  # builds (and caches) pdcapi, as build-plugin does
    proc = _run(str(plugin))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["paddle_imported"] is False
    x = np.arange(32, dtype=np.float32).reshape(2, 16) / 32
    with load(pkg) as package:
        want = package.infer({"x": x})
    for name, value in want.items():
        np.testing.assert_allclose(np.array(out["y"][name], np.float32), value, atol=1e-6)


def test_without_a_prebuilt_pdcapi_the_error_names_the_users_file(exported, tmp_path):
    plugin = build(exported("demo:mlp"))
    mine = tmp_path / "my-model.so"
    mine.write_bytes(Path(plugin).read_bytes())
    proc = _run(str(mine), env={"PADDLEHOT_CACHE": str(tmp_path / "empty-cache")})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert str(mine) in last and "no pdcapi is built for this Paddle" in last, last
    assert "/proc/self/fd" not in proc.stderr
