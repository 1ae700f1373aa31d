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

from paddlehot_cli.core.plugin_abi import (
    C_API_SONAME,
    CODE_DTYPES,
    DTYPE_CODES,
    OK,
    PhotOpenOptions,
    PhotTensor,
    symbol_prefix,
)
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
        self._out_cap = 1 << 20  # bytes per output buffer: a classifier's logits fit

    @property
    def pool_size(self) -> int:
        return int(self._alive())

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        ins = (PhotTensor * len(feeds))()
        for t, (name, arr) in zip(ins, feeds.items()):
            t.struct_size, t.dtype, t.name = ctypes.sizeof(PhotTensor), DTYPE_CODES[
                arr.dtype.name], name.encode()
            t.rank, t.data, t.byte_size = arr.ndim, arr.ctypes.data, arr.nbytes
            t.shape[: arr.ndim] = arr.shape
        bufs = [np.empty(self._out_cap, np.uint8) for _ in self._outs]
        outs = (PhotTensor * len(self._outs))()
        for t, name, buf in zip(outs, self._outs, bufs):
            t.struct_size, t.name = ctypes.sizeof(PhotTensor), name.encode()
            t.data, t.byte_size = buf.ctypes.data, buf.nbytes
        rc = self._infer(self._handle, ins, len(feeds), outs, len(self._outs))
        if rc != OK:
            raise PackageError(f"infer failed ({rc}): {self._last_error().decode()}")
        return {name: buf[: t.byte_size].view(CODE_DTYPES[t.dtype]) for name, buf, t in
                zip(self._outs, bufs, outs)}

    def close(self) -> None:
        self._close(self._handle)
