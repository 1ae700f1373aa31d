"""Build plugins once per session (keyed by package and options) and drive the C ABI directly."""

from __future__ import annotations

import atexit
import ctypes
import functools
import json
import shutil
import tempfile
from pathlib import Path

from conftest import cli

from paddlehot_cli.core.plugin_abi import PhotOpenOptions, PhotTensor
from paddlehot_cli.core.plugin_loader import ensure_c_api
from paddlehot_cli.plugin.pdcapi import build_pdcapi as C_API

_BASE = Path(tempfile.mkdtemp(prefix="paddlehot-plugin-tests-"))
atexit.register(shutil.rmtree, _BASE, True)
_BUILT: dict[tuple, Path] = {}


def build(package: Path, *extra: str, name: str | None = None) -> Path:
    """`paddlehot build-plugin PACKAGE -o X.so EXTRA...` through the real CLI, once per key."""
    key = (str(package), extra)
    if key not in _BUILT:
        out = _BASE / f"{name or 'plugin'}{len(_BUILT)}.so"
        proc = run_build(package, "-o", out, *extra)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        _BUILT[key] = out
    return _BUILT[key]


def run_build(*args):
    return cli("build-plugin", *args) if _registered() else cli_direct(*args)


@functools.cache
def _registered() -> bool:
    proc = cli("build-plugin", "--help")
    return proc.returncode == 0




def cli_direct(*args):
    """Run the verb through a tiny Typer app while it is not yet registered in cli/main.py."""
    import os
    import subprocess
    import sys

    code = (
        "import typer, sys\n"
        "from paddlehot_cli.cli.build_plugin import build_plugin\n"
        "app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)\n"
        "app.command()(build_plugin)\n"
        "app(prog_name='paddlehot build-plugin')\n"
    )
    env = dict(os.environ, COLUMNS="160", GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def manifest_of(plugin: Path) -> dict:
    from paddlehot_cli.core.plugin_loader import read_manifest_section

    return json.loads(read_manifest_section(plugin))


class Raw:
    """The five functions of a plugin through ctypes, no Python checks in between."""

    def __init__(self, path: Path, mode: int = ctypes.RTLD_LOCAL):
        ensure_c_api(path, C_API)
        self.lib = ctypes.CDLL(str(path), mode=mode)
        prefix = manifest_of(path)["plugin"]["symbol_prefix"]
        self.open = getattr(self.lib, prefix + "open")
        self.open.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.infer = getattr(self.lib, prefix + "infer")
        self.infer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                               ctypes.c_void_p, ctypes.c_size_t]
        self.close = getattr(self.lib, prefix + "close")
        self.close.argtypes = [ctypes.c_void_p]
        self.manifest = getattr(self.lib, prefix + "manifest")
        self.manifest.restype = ctypes.c_char_p
        self.last_error = getattr(self.lib, prefix + "last_error")
        self.last_error.restype = ctypes.c_char_p
        for f in (self.open, self.infer, self.close):
            f.restype = ctypes.c_int32

    def open_handle(self, **kw) -> ctypes.c_void_p:
        opts = PhotOpenOptions(ctypes.sizeof(PhotOpenOptions), kw.get("pool_initial", 1),
                               kw.get("pool_max", 0), kw.get("threads", 1),
                               kw.get("model_dir"), kw.get("pool_idle_ms", 0))
        h = ctypes.c_void_p()
        rc = self.open(ctypes.byref(opts), ctypes.byref(h))
        assert rc == 0, self.last_error()
        return h


def tensor(name: str | None, arr=None, dtype: int = 1, capacity: int = 0) -> PhotTensor:
    t = PhotTensor()
    t.struct_size = ctypes.sizeof(PhotTensor)
    t.name = name.encode() if name is not None else None
    if arr is not None:
        t.dtype = dtype
        t.rank = arr.ndim
        t.shape[: arr.ndim] = arr.shape
        t.data = arr.ctypes.data
        t.byte_size = arr.nbytes
    else:
        t.byte_size = capacity
    return t
