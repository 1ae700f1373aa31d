"""Load a plugin (.so built by `paddlehot build-plugin`) into a servable, through its C ABI.

The servable has the interface of PackageServable: `.manifest`, `.infer(dict) -> dict`,
`.close()`, context manager, `.kind == "plugin"`.

How the plugin finds libpaddle_inference_c.so (its NEEDED entry): if the dynamic loader can
resolve it (LD_LIBRARY_PATH, ld.so.cache, or a copy already loaded into the process), that one is
used. Otherwise this loader loads paddlehot's cached pdcapi build (plugin.pdcapi.build_pdcapi,
built on first use) with RTLD_GLOBAL first, so the plugin's NEEDED entry resolves to it. The
plugin itself is loaded RTLD_LOCAL; its five functions are resolved by name from the manifest's
model name and version. Paddle-free (pdcapi uses the paddle wheel of this interpreter).
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core.elf_facts import read_elf
from paddlehot_cli.core.manifest import MAX_MANIFEST_BYTES, Manifest, loads_manifest
from paddlehot_cli.core.plugin_abi import FUNCTIONS, MANIFEST_SECTION, host_arch, symbol_prefix
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.errors import InputMismatch, PackageError

# ---------------------------------------------------------------- ELF reads (pyelftools)


def read_manifest_section(path: str | Path) -> bytes | None:
    """The bytes of .paddlehot.manifest without the trailing NUL, or None if absent."""
    raw = read_elf(path).read_section(MANIFEST_SECTION, MAX_MANIFEST_BYTES + 1)
    if raw is not None and len(raw) > MAX_MANIFEST_BYTES:
        raise PackageError(f"{path}: {MANIFEST_SECTION} is larger than {MAX_MANIFEST_BYTES}")
    return None if raw is None else raw.rstrip(b"\0")


def defined_exports(path: str | Path) -> list[tuple[str, str | None]]:
    """(name, version node or None) of every exported symbol."""
    return [(s.name, s.version) for s in read_elf(path).exports()]


def needed(path: str | Path) -> list[str]:
    return read_elf(path).needed


def machine(path: str | Path) -> str:
    return read_elf(path).machine


# ---------------------------------------------------------------- the C ABI

C_API_SONAME = "libpaddle_inference_c.so"
MAX_RANK = 8

OK, E_INVALID, E_UNKNOWN, E_MISSING, E_DTYPE, E_SHAPE, E_SMALL, E_RUNTIME, E_CLOSED = (
    0, -1, -2, -3, -4, -5, -6, -7, -8,
)
CODE_NAMES = {
    -1: "PHOT_E_INVALID_ARGUMENT", -2: "PHOT_E_UNKNOWN_INPUT", -3: "PHOT_E_MISSING_INPUT",
    -4: "PHOT_E_DTYPE_MISMATCH", -5: "PHOT_E_SHAPE_MISMATCH", -6: "PHOT_E_BUFFER_TOO_SMALL",
    -7: "PHOT_E_RUNTIME", -8: "PHOT_E_CLOSED",
}
DTYPE_CODES = {
    "float32": 1, "float16": 2, "float64": 3, "int32": 4, "int64": 5, "uint8": 6, "int8": 7,
    "bool": 8,
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}


class PhotTensor(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("dtype", ctypes.c_int32),
        ("name", ctypes.c_char_p),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
        ("data", ctypes.c_void_p),
        ("byte_size", ctypes.c_uint64),
    ]


class PhotOpenOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("pool_initial", ctypes.c_int32),
        ("pool_max", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("model_dir", ctypes.c_char_p),
    ]


class PluginError(PackageError):
    """A plugin call returned an error code (the code is in .code)."""

    def __init__(self, message: str, code: int = E_RUNTIME):
        super().__init__(message)
        self.code = code


_capi_lock = threading.Lock()


def _c_api_resolvable() -> bool:
    try:
        ctypes.CDLL(C_API_SONAME, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)
        return True  # already in the process
    except OSError:
        return False


def ensure_c_api(plugin: Path) -> str | None:
    """Make the plugin's NEEDED libpaddle_inference_c.so resolvable; returns the path loaded
    here (the cached pdcapi), or None when the system already resolves it."""
    if C_API_SONAME not in needed(plugin):
        return None
    with _capi_lock:
        if _c_api_resolvable():
            return None
        try:  # the system's copy (LD_LIBRARY_PATH, ld.so.cache), as a C host would get it
            ctypes.CDLL(C_API_SONAME, mode=ctypes.RTLD_GLOBAL)
            return None
        except OSError:
            pass
        from paddlehot_cli.plugin.pdcapi import build_pdcapi

        lib = build_pdcapi()
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        return str(lib)


def read_plugin_manifest(path: str | Path) -> tuple[Manifest, dict[str, Any]]:
    raw = read_manifest_section(path)
    if raw is None:
        raise PackageError(f"{path} is not a paddlehot plugin: it has no .paddlehot.manifest")
    manifest = loads_manifest(raw, f"{path} [.paddlehot.manifest]")
    meta = manifest.raw.get("plugin")
    if not isinstance(meta, dict) or not isinstance(meta.get("symbol_prefix"), str):
        raise PackageError(f"{path}: the manifest has no 'plugin' object")
    return manifest, meta


class PluginServable:
    """One model version served by a plugin .so through its C ABI (ctypes)."""

    kind = "plugin"

    def __init__(self, path: Path, threads: int = 1, pool_min: int = 1,
                 pool_max: int | None = None, model_dir: str | Path | None = None):
        self.path = Path(path)
        self.manifest, self.plugin_meta = read_plugin_manifest(self.path)
        arch, host = machine(self.path), host_arch()
        if arch != host:
            raise PackageError(f"{self.path} is a {arch} plugin; this host is {host}")
        self.c_api_loaded = ensure_c_api(self.path)
        try:
            self._lib = ctypes.CDLL(str(self.path.resolve()), mode=ctypes.RTLD_LOCAL)
        except OSError as exc:
            raise PackageError(f"cannot load plugin {self.path}: {exc}") from None
        prefix = symbol_prefix(self.manifest.name, self.manifest.version)
        try:
            f = {n: getattr(self._lib, prefix + n)
                 for n in FUNCTIONS}
        except AttributeError as exc:
            raise PackageError(f"{self.path}: missing export ({exc})") from None
        f["open"].argtypes = [ctypes.POINTER(PhotOpenOptions), ctypes.POINTER(ctypes.c_void_p)]
        f["open"].restype = ctypes.c_int32
        f["infer"].argtypes = [ctypes.c_void_p, ctypes.POINTER(PhotTensor), ctypes.c_size_t,
                               ctypes.POINTER(PhotTensor), ctypes.c_size_t]
        f["infer"].restype = ctypes.c_int32
        f["close"].argtypes = [ctypes.c_void_p]
        f["close"].restype = ctypes.c_int32
        f["manifest"].restype = ctypes.c_char_p
        f["last_error"].restype = ctypes.c_char_p
        self._f = f
        self._infer = f["infer"]
        self.output_names = [s.name for s in self.manifest.outputs]
        self._out_specs = list(self.manifest.outputs)
        opts = PhotOpenOptions(
            ctypes.sizeof(PhotOpenOptions), max(1, pool_min),
            max(max(1, pool_min), pool_max or max(1, pool_min)), max(1, threads),
            str(model_dir).encode() if model_dir is not None else None,
        )
        handle = ctypes.c_void_p()
        rc = f["open"](ctypes.byref(opts), ctypes.byref(handle))
        if rc != OK:
            raise PackageError(f"{self.path}: open failed: {self.last_error()}")
        self._handle = handle
        self._cv = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._out_cache: dict[int, list[tuple[tuple[int, ...], str]]] = {}

    # -- the C ABI, thinly
    def last_error(self) -> str:
        msg = self._f["last_error"]()
        return msg.decode("utf-8", "replace") if msg else ""

    def manifest_text(self) -> str:
        return self._f["manifest"]().decode()

    def _enter(self) -> None:
        with self._cv:
            if self._closed:
                raise PluginError(
                    f"{self.manifest.name} {self.manifest.version} is closed", E_CLOSED)
            self._in_flight += 1

    def _leave(self) -> None:
        with self._cv:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._cv.notify_all()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_inputs(self.manifest.inputs, inputs)
        self._enter()
        try:
            return self._call(feeds)
        finally:
            self._leave()

    def run_checked(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in manifest order for inputs that already passed check_inputs (serve's
        batcher checks each request once), as PackageServable.run_checked."""
        self._enter()
        try:
            out = self._call(feeds)
        finally:
            self._leave()
        return [out[s.name] for s in self.manifest.outputs]

    def _out_guess(self, feeds: Mapping[str, np.ndarray]) -> list[tuple[tuple[int, ...], str]]:
        # Output shapes from the manifest, dynamic dims from the first input's batch (or the
        # last seen shapes for this batch); a wrong guess costs one retry.
        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        known = self._out_cache.get(batch)
        if known is not None:
            return known
        return [(tuple(batch if (d == -1 and i == 0) else (1 if d == -1 else d)
                       for i, d in enumerate(s.shape)), s.dtype) for s in self._out_specs]

    def _call(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        n_in = len(feeds)
        ins = (PhotTensor * n_in)()
        keep = []
        for t, (name, arr) in zip(ins, feeds.items()):
            bname = name.encode()
            keep.append(bname)
            t.struct_size = ctypes.sizeof(PhotTensor)
            t.dtype = DTYPE_CODES[arr.dtype.name]
            t.name = bname
            t.rank = arr.ndim
            t.shape[: arr.ndim] = arr.shape
            t.data = arr.ctypes.data
            t.byte_size = arr.nbytes
        guess = self._out_guess(feeds)
        n_out = len(guess)
        for attempt in (0, 1):
            outs = (PhotTensor * n_out)()
            arrays = []
            for t, (shape, dtype) in zip(outs, guess):
                arr = np.empty(shape, dtype=dtype)
                arrays.append(arr)
                t.struct_size = ctypes.sizeof(PhotTensor)
                t.data = arr.ctypes.data
                t.byte_size = arr.nbytes
            rc = self._infer(self._handle, ins, n_in, outs, n_out)
            if rc == E_SMALL and attempt == 0:
                guess = [(tuple(t.shape[: t.rank]), CODE_DTYPES.get(t.dtype, "float32"))
                         for t in outs]
                continue
            break
        if rc != OK:
            msg = self.last_error()
            if rc in (E_UNKNOWN, E_MISSING, E_DTYPE, E_SHAPE):
                raise InputMismatch(msg)
            raise PluginError(f"{CODE_NAMES.get(rc, rc)}: {msg}", rc)
        result = {}
        final = []
        for name, t, arr in zip(self.output_names, outs, arrays):
            shape = tuple(t.shape[: t.rank])
            dtype = CODE_DTYPES.get(t.dtype, arr.dtype.name)
            final.append((shape, dtype))
            if arr.shape != shape or arr.dtype.name != dtype:
                arr = arr.reshape(-1).view(dtype)[: int(np.prod(shape))].reshape(shape)
            result[name] = arr
        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        if len(self._out_cache) < 64:
            self._out_cache[batch] = final
        return result

    def close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            while self._in_flight:
                self._cv.wait()
        self._f["close"](self._handle)  # the plugin also waits for its calls in flight
        # The library stays mapped (ctypes never dlcloses): a tombstone handle stays valid.

    def __enter__(self) -> PluginServable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_plugin(path: str | Path, threads: int = 1, pool_min: int = 1,
                pool_max: int | None = None, model_dir: str | Path | None = None
                ) -> PluginServable:
    """Load a plugin .so; `model_dir` is where the model files are for a plugin built with
    --no-embed-model (default: beside the .so), or to override the embedded ones."""
    p = Path(path)
    if not p.is_file():
        raise PackageError(f"no such plugin: {p}")
    return PluginServable(p, threads=threads, pool_min=pool_min, pool_max=pool_max,
                          model_dir=model_dir)


def manifest_json(path: str | Path) -> dict[str, Any]:
    manifest, _ = read_plugin_manifest(path)
    return json.loads(json.dumps(manifest.raw))
