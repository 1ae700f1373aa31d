"""The Python host: core.load("x.so") with no extra argument (a prebuilt pdcapi, found without
importing paddle or compiling), errors that name the user's file, and no paddle Python package in
a process that only runs plugins."""

from __future__ import annotations

import ctypes
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


def holds_gil(fn) -> bool:
    """A ctypes function of a PyDLL: the GIL stays held through the call."""
    return bool(fn._flags_ & ctypes._FUNCFLAG_PYTHONAPI)


def test_one_predictor_short_calls_keep_the_gil_pools_release_it(exported):
    """A one-predictor version whose calls on zeros at load are short uses GIL-held calls from
    the start (and says gil_bound before serve's harness pins its workers beside the event
    loop); a pool never does. Answers are the same either way."""
    so = build(exported("demo:mlp"))
    x = {"x": np.random.default_rng(5).standard_normal((2, 16)).astype("float32")}
    with load(so, pool_max=1) as one, load(so, pool_max=2) as pool:
        assert one.gil_bound and holds_gil(one._infer)  # decided at load
        assert not pool.gil_bound and not holds_gil(pool._infer)
        want = pool.infer(x)["logits"]
        for _ in range(3):
            np.testing.assert_array_equal(one.infer(x)["logits"], want)


def test_one_predictor_slow_calls_release_the_gil(exported, monkeypatch):
    from paddlehot_cli.core import plugin_loader

    calls = []
    real = plugin_loader.PluginServable._call
    monkeypatch.setattr(plugin_loader, "HOLD_GIL_BELOW_S", 0.0)  # every call counts as slow
    monkeypatch.setattr(plugin_loader.PluginServable, "_call",
                        lambda self, *a: calls.append(1) or real(self, *a))
    with load(build(exported("demo:mlp")), pool_max=1) as one:
        assert len(calls) == 2  # the first call (Paddle builds its kernels) and one more
        assert not one.gil_bound and not holds_gil(one._infer)
        np.testing.assert_array_equal(one.infer({"x": np.ones((1, 16), "float32")})["logits"],
                                      one.infer({"x": np.ones((1, 16), "float32")})["logits"])


STEADY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from paddlehot_cli.core import load
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096
    m = load(sys.argv[1])
    x = {"x": np.ones((1, 16), np.float32)}
    for _ in range(2000):
        m.infer(x)
    before = rss()
    for _ in range(20000):
        m.infer(x)
    print(json.dumps({"growth": rss() - before}))
    """
)


def test_steady_calls_hold_no_more_memory(exported):
    """20,000 calls of one shape after a warm-up add nothing to RSS: Paddle's garbage, batched by
    pdcapi, waits in small amounts (at a 1 MiB batch the MLP's RSS grew by 24 MB)."""
    so = build(exported("demo:mlp"))
    proc = subprocess.run([sys.executable, "-c", STEADY_SCRIPT, str(so)], capture_output=True,
                          check=False, text=True, timeout=300,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0, proc.stderr
    growth = json.loads(proc.stdout.strip().splitlines()[-1])["growth"]
    assert growth < 4 << 20, f"RSS grew by {growth / 2**20:.1f} MB"


SHAPE_CACHE_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from paddlehot_cli.core import load
    from paddlehot_cli.core.paddle_runtime import PaddleOptions
    from paddlehot_cli.errors import PackageError
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    pkg, so, first = sys.argv[1:4]
    cached = PaddleOptions(onednn_cache_capacity=10)
    if first == "package":
        load(pkg, paddle_options=cached).close()
        try:
            load(so)
        except PackageError as exc:
            print("refused:", exc)
    else:
        plugin = load(so)
        load(pkg, paddle_options=cached).close()
        plugin.close()
        print("loaded both")
    """
)


def test_a_shape_cached_package_and_a_plugin_never_share_a_process(exported):
    """Paddle's shape cache walks its kernel map unlocked after every run; a plugin's parallel
    runs change that map. Whichever comes first wins: a plugin after a shape-cached package is
    refused with one line; a package asking for it after a plugin gets 0, said in the log."""
    pkg = exported("demo:mlp")
    so = build(pkg)
    env = {**os.environ, "GLOG_minloglevel": "2"}
    after_package = subprocess.run([sys.executable, "-c", SHAPE_CACHE_SCRIPT, str(pkg), str(so),
                                    "package"], capture_output=True, text=True, timeout=300, env=env,
                                   check=False)
    assert after_package.returncode == 0, after_package.stderr
    assert "refused:" in after_package.stdout and "onednn_cache_capacity 10" in after_package.stdout
    after_plugin = subprocess.run([sys.executable, "-c", SHAPE_CACHE_SCRIPT, str(pkg), str(so),
                                   "plugin"], capture_output=True, text=True, timeout=300, env=env,
                                  check=False)
    assert after_plugin.returncode == 0, after_plugin.stderr
    assert "loaded both" in after_plugin.stdout
    assert "onednn_cache_capacity 10 ignored (0 used)" in after_plugin.stderr


def test_core_load_gives_a_plugin_its_pool_settings(exported):
    """core.load passes every pool setting to a plugin as to a package (idle_s was dropped)."""
    so = build(exported("demo:mlp"))
    with load(so, pool_min=1, pool_max=3, idle_s=7.5) as plugin:
        pool = plugin.pool.describe()
    assert (pool["min"], pool["max"], pool["idle_s"]) == (1, 3, 7.5)
