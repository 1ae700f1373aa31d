"""A plugin opened as a C or Go host opens it, for the breathing benchmark (pool_breathing.py
`--host c`): one handle whose own pool (native/runtime/runtime.c) grows on its phot-pool thread
and gives idle predictors back after `pool_idle_ms` (ABI 1.1). The pool size is what pdcapi
counts alive (`paddlehot_pdcapi_predictors_alive`): the handle is the only one in the process.
paddlehot's Python host opens one predictor per handle and breathes in core/pool.py instead."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from paddlehot_cli.core.plugin_abi import C_API_SONAME, OK, PhotOpenOptions, symbol_prefix
from paddlehot_cli.core.plugin_calls import Frames
from paddlehot_cli.core.plugin_loader import ensure_c_api, read_plugin_manifest
from paddlehot_cli.errors import PackageError


class CPoolPlugin:
    kind = "plugin (C host pool)"
    pool = None  # no core.pool: the plugin's runtime keeps the pool

    def __init__(self, path: str | Path, pool_min: int, pool_max: int, idle_s: float,
                 threads: int = 1):
        from paddlehot_cli.plugin.pdcapi import build_pdcapi

        path = Path(path)
        self.manifest, _ = read_plugin_manifest(path)
        ensure_c_api(path, build_pdcapi)
        capi = ctypes.CDLL(C_API_SONAME, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)
        try:
            self._alive = capi.paddlehot_pdcapi_predictors_alive
        except AttributeError:
            raise PackageError(f"{C_API_SONAME} is not paddlehot's pdcapi: it cannot count "
                               "the predictors of a C host's pool") from None
        self._alive.restype = ctypes.c_int64
        lib = self._lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
        m = self.manifest
        prefix = symbol_prefix(m.name, m.version, m.precision)
        self._infer, self._close, last_error = (getattr(lib, prefix + n) for n in
                                                ("infer", "close", "last_error"))
        last_error.restype = ctypes.c_char_p
        self._last_error = last_error
        opts = PhotOpenOptions(ctypes.sizeof(PhotOpenOptions), max(1, pool_min), pool_max,
                               threads, None, int(idle_s * 1000))
        self._handle = ctypes.c_void_p()
        if getattr(lib, prefix + "open")(ctypes.byref(opts), ctypes.byref(self._handle)) != OK:
            raise PackageError(f"{path}: open failed: {last_error().decode()}")
        self._outs = [s.name for s in m.outputs]
        self._frames = Frames(m.outputs)  # the Python host's marshalling (plugin_calls)

    @property
    def pool_size(self) -> int:
        return int(self._alive())

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rc, out = self._frames.call(self._infer, self._handle, feeds)
        if out is None:
            raise PackageError(f"infer failed ({rc}): {self._last_error().decode()}")
        return dict(zip(self._outs, out))

    def close(self) -> None:
        self._close(self._handle)
