"""Load a plugin (.so built by `paddlehot build-plugin`) into a servable, through its C ABI.

The servable has the interface of PackageServable: `.manifest`, `.infer(dict) -> dict`,
`.run_checked`, `.close()`, context manager, `.kind == "plugin"`.

What is loaded is a private sealed copy of the file (core.plugin_image), checked before dlopen:
its sha256 against the one build-plugin recorded (when asked), its embedded manifest's name and
version against what the caller expects, its machine against this host. Overwriting the file on
disk later changes nothing in this process.

How the plugin finds libpaddle_inference_c.so (its NEEDED entry): if the dynamic loader can
resolve it (LD_LIBRARY_PATH, ld.so.cache, or a copy already loaded into the process), that one is
used. Otherwise the caller's C-API provider (serve, bench and the CLI pass
plugin.pdcapi.build_pdcapi, which builds on first use; core never imports it) gives a library,
and without a provider the newest prebuilt pdcapi for this Paddle (core.pdcapi_locator; never a
compiler run). That library is loaded RTLD_GLOBAL first. The plugin itself is loaded
RTLD_LOCAL; its five functions are resolved by name.

Calls go through ctypes.CDLL, which releases the GIL for the duration of each foreign call, and
pdcapi runs Paddle's C++ API without any Python: the predictors of a plugin's pool run in
parallel. A one-predictor version with short calls keeps the GIL instead (_choose_gil: the
handoffs cost more than they free).

The pool: each predictor is one handle of the plugin (open() with a pool of exactly one), kept
in a core.pool.Pool like a package's predictors, so a plugin version breathes the same way:
grown in the background by the pool keeper, warmed there with the last inputs served, closed
after its idle timeout, admitted by the memory budget. A pool that can grow keeps the embedded
model bytes of its private copy (a new handle reads them); a fixed pool drops them after open.

close() ends in dlclose: once the last call has returned and the plugin's close() is done, the
function pointers are dropped and the library (with its copy) leaves the process.
"""

from __future__ import annotations

import _ctypes
import ctypes
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core import memory_budget, shape_cache_guard
from paddlehot_cli.core.elf_facts import read_elf
from paddlehot_cli.core.manifest import MAX_MANIFEST_BYTES, Manifest, loads_manifest
from paddlehot_cli.core.pdcapi_locator import prebuilt_pdcapi
from paddlehot_cli.core.plugin_abi import (
    C_API_SONAME,
    CODE_NAMES,
    E_CLOSED,
    E_DTYPE,
    E_MISSING,
    E_RUNTIME,
    E_SHAPE,
    E_UNKNOWN,
    FUNCTIONS,
    MANIFEST_SECTION,
    MODEL_SECTIONS,
    OK,
    PhotOpenOptions,
    PhotTensor,
    host_arch,
    symbol_prefix,
)
from paddlehot_cli.core.plugin_calls import Frames
from paddlehot_cli.core.plugin_image import PrivateImage, read_digest
from paddlehot_cli.core.pool import Pool, PoolClosed
from paddlehot_cli.core.signature import check_inputs, zero_inputs
from paddlehot_cli.core.variants import variant_key
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


# ---------------------------------------------------------------- the C API the plugin needs

CApiProvider = Callable[[], "str | Path"]


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


def ensure_c_api(plugin: Path, provider: CApiProvider | None = None,
                 shown: str | Path | None = None) -> str | None:
    """Make the plugin's NEEDED libpaddle_inference_c.so resolvable; returns the path loaded
    here (from `provider`, e.g. plugin.pdcapi.build_pdcapi, else a prebuilt pdcapi), or None
    when the process or the system already resolves it. pdcapi stays loaded: every plugin
    shares it. `shown` names the plugin in messages (default: `plugin`)."""
    if C_API_SONAME not in needed(plugin):
        return None
    shape_cache_guard.claim_for_plugin(shown or plugin)
    with _capi_lock:
        if _c_api_resolvable():
            return None
        try:  # the system's copy (LD_LIBRARY_PATH, ld.so.cache), as a C host would get it
            ctypes.CDLL(C_API_SONAME, mode=ctypes.RTLD_GLOBAL)
            return None
        except OSError:
            pass
        lib = str(provider()) if provider is not None else prebuilt_pdcapi()
        if lib is None:
            raise PackageError(
                f"{shown or plugin} needs {C_API_SONAME}, and no pdcapi is built for this Paddle",
                hint="build it once: `python -m paddlehot_cli.plugin.pdcapi` (build-plugin, "
                "serve and bench do it too), or put the official library on LD_LIBRARY_PATH")
        try:
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise PackageError(f"cannot load {lib} for {shown or plugin}: {exc}") from None
        return str(lib)


def read_plugin_manifest(path: str | Path, shown: str | Path | None = None
                         ) -> tuple[Manifest, dict[str, Any]]:
    """The embedded manifest of the plugin at `path` (`shown` names it in messages)."""
    shown = shown or path
    raw = read_manifest_section(path)
    if raw is None:
        raise PackageError(f"{shown} is not a paddlehot plugin: it has no .paddlehot.manifest")
    manifest = loads_manifest(raw, f"{shown} [.paddlehot.manifest]")
    meta = manifest.raw.get("plugin")
    if not isinstance(meta, dict) or not isinstance(meta.get("symbol_prefix"), str):
        raise PackageError(f"{shown}: the manifest has no 'plugin' object")
    return manifest, meta


# A one-predictor version with a call shorter than this among its first calls on zeros, at load,
# keeps the GIL through its calls (PluginServable._choose_gil).
HOLD_GIL_BELOW_S = 0.002
FIRST_CALLS = 3


class PluginServable:
    """One model version served by a plugin .so through its C ABI (ctypes)."""

    kind = "plugin"
    gil_bound = False  # ctypes releases the GIL for the call (see _choose_gil for the exception)

    def __init__(self, path: Path, threads: int = 1, pool_min: int = 1,
                 pool_max: int | None = None, model_dir: str | Path | None = None,
                 c_api: CApiProvider | None = None, expect: tuple[str, str] | None = None,
                 sha256: str | None = None, idle_s: float = 30.0):
        self.path = Path(path)
        self._image: PrivateImage | None = None
        self._handle_lib: int | None = None
        self._f: dict[str, Any] = {}
        self._pool: Pool[ctypes.c_void_p] | None = None
        self._closed = True  # until open() succeeded
        try:
            self._load(threads, pool_min, pool_max, model_dir, c_api, expect, sha256, idle_s)
        except BaseException:
            if self._pool is not None:
                self._pool.close()
            self._unload()
            raise

    def _load(self, threads: int, pool_min: int, pool_max: int | None,
              model_dir: str | Path | None, c_api: CApiProvider | None,
              expect: tuple[str, str] | None, sha256: str | None, idle_s: float) -> None:
        label = "-".join(self.path.resolve().parts[-3:-1] + (self.path.name,))  # model-ver-file
        image = self._image = PrivateImage(self.path, label)
        if sha256 is not None and image.sha256 != sha256:
            raise PackageError(f"{self.path}: sha256 is {image.sha256[:16]}..., build-plugin "
                               f"recorded {sha256[:16]}...: the file changed since it was built")
        self.manifest, self.plugin_meta = read_plugin_manifest(image.path, self.path)
        name, precision = self.manifest.name, self.manifest.precision
        version = variant_key(self.manifest.version, precision)  # 1.2.0-int8 for a variant
        if expect is not None and (name, version) != tuple(expect):
            raise PackageError(f"{self.path} is the plugin of {name} {version}, not of "
                               f"{expect[0]} {expect[1]}")
        arch, host = machine(image.path), host_arch()
        if arch != host:
            raise PackageError(f"{self.path} is a {arch} plugin; this host is {host}")
        self.c_api_loaded = ensure_c_api(image.path, c_api, shown=self.path)
        try:
            lib = ctypes.CDLL(str(image.path), mode=ctypes.RTLD_LOCAL)
        except OSError as exc:  # the loader names the private copy: name the user's file
            why = str(exc).replace(f"{image.path}: ", "").replace(str(image.path), str(self.path))
            raise PackageError(f"cannot load plugin {self.path}: {why}") from None
        self._handle_lib = lib._handle
        prefix = symbol_prefix(name, self.manifest.version, precision)
        try:
            f = {n: getattr(lib, prefix + n) for n in FUNCTIONS}
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
        # The call path's own pointer, without argtypes: frames pass objects of the exact C
        # types (c_void_p, phot_tensor arrays, c_size_t), so ctypes converts nothing (~0.5 us).
        self._infer = lib[prefix + "infer"]
        self._infer.restype = ctypes.c_int32
        self.output_names = [s.name for s in self.manifest.outputs]
        embedded = bool(self.plugin_meta.get("embedded_files"))
        if model_dir is None and not embedded:
            model_dir = self.path.parent  # the files beside the .so, not beside the copy
        # one predictor per handle: the pool of handles grows and shrinks (see the module doc)
        opts = PhotOpenOptions(ctypes.sizeof(PhotOpenOptions), 1, 1, max(1, threads),
                               str(model_dir).encode() if model_dir is not None else None)
        pool_min = max(0, int(pool_min))
        pool_max = max(1, pool_min, int(pool_max or 1))
        budget = memory_budget.budget()
        budget.admit_load(2 * os.fstat(image.fd).st_size if embedded else 0, f"{name} {version}")

        def open_handle() -> ctypes.c_void_p:
            handle = ctypes.c_void_p()
            if f["open"](ctypes.byref(opts), ctypes.byref(handle)) != OK:
                raise PackageError(f"{self.path}: open failed: {self.last_error()}")
            return handle

        rss_before = memory_budget.rss_bytes()
        first = [open_handle()]
        self.predictor_cost = max(0, memory_budget.rss_bytes() - rss_before)
        self._close_lock = threading.Lock()
        self._last_feeds: Mapping[str, np.ndarray] | None = None
        self._pool = Pool(lambda: first.pop() if first else open_handle(), min_size=pool_min,
                          initial=max(1, pool_min), max_size=pool_max, idle_s=idle_s,
                          destroy=lambda h: f["close"](h), warm=self._warm,
                          admit=lambda: budget.fits(self.predictor_cost),
                          name=f"{name} {version} (plugin)")
        self._closed = False
        self._frames = Frames(self.manifest.outputs)
        if pool_max == 1:
            # the same function through ctypes.PyDLL: the GIL stays held through the call
            held = ctypes.PyDLL(str(image.path), handle=lib._handle)[prefix + "infer"]
            held.restype = ctypes.c_int32
            handle = self._pool.acquire()
            try:
                self._choose_gil(held, handle)
            finally:
                self._pool.release(handle)
        # Paddle holds the model now: unless the pool may open another handle, the copy's
        # embedded model ranges are never read again.
        sections = read_elf(image.path).sections
        image.drop_ranges([] if pool_max > pool_min else
                          [sections[n][:2] for n in MODEL_SECTIONS.values() if n in sections])

    def _unload(self) -> None:
        """Drop every function pointer, dlclose, close the private copy."""
        self._f = {}
        self._infer = None
        if self._handle_lib is not None:
            _ctypes.dlclose(self._handle_lib)
            self._handle_lib = None
        if self._image is not None:
            self._image.close()
            self._image = None

    # -- the C ABI, thinly
    def last_error(self) -> str:
        fn = self._f.get("last_error")
        msg = fn() if fn is not None else b""
        return msg.decode("utf-8", "replace") if msg else ""

    def manifest_text(self) -> str:
        if not self._f:
            raise PluginError(f"{self.path} is closed", E_CLOSED)
        return self._f["manifest"]().decode()

    @property
    def pool_size(self) -> int:
        return 0 if self._pool is None else self._pool.size

    @property
    def pool(self) -> Pool[ctypes.c_void_p] | None:
        return self._pool

    def _warm(self, handle: ctypes.c_void_p) -> None:
        """A new handle's first call, on the pool keeper's thread (see core.pool_keeper)."""
        self._call(self._last_feeds or zero_inputs(self.manifest.inputs), handle)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_inputs(self.manifest.inputs, inputs)
        return dict(zip(self.output_names, self.run_checked(feeds)))

    def run_checked(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in manifest order for inputs that already passed check_inputs (serve's
        batcher checks each request once), as PackageServable.run_checked."""
        try:
            handle = self._pool.acquire()
        except PoolClosed:
            raise PluginError(f"{self.manifest.name} {self.manifest.version} is closed",
                              E_CLOSED) from None
        try:
            out = self._call(feeds, handle)
            self._last_feeds = feeds  # warm-up inputs for the next handle the pool grows
            return out
        finally:
            self._pool.release(handle)

    def _call(self, feeds: Mapping[str, np.ndarray], handle: ctypes.c_void_p
              ) -> list[np.ndarray]:
        """One infer on `handle` through this thread's frame for these inputs (plugin_calls)."""
        rc, out = self._frames.call(self._infer, handle, feeds)
        if out is None:
            self._fail(rc)
        return out

    def _fail(self, rc: int) -> None:
        msg = self.last_error()
        if rc in (E_UNKNOWN, E_MISSING, E_DTYPE, E_SHAPE):
            raise InputMismatch(msg)
        raise PluginError(f"{CODE_NAMES.get(rc, rc)}: {msg}", rc)

    def _choose_gil(self, held: Any, handle: ctypes.c_void_p) -> None:
        """A one-predictor version whose calls are short keeps the GIL through them. Releasing
        it costs two GIL handoffs per call between the batcher's worker and serve's event loop,
        on different CPUs: on the demo MLP (~60 us in Paddle) ~70 us of CPU per request, 0.8x
        package mode's throughput. Held (and the worker pinned beside the loop, as package
        workers are: gil_bound), it runs like package mode. Decided here, at load, from up to
        FIRST_CALLS calls on zeros (the first one builds Paddle's kernels: it never counts as
        slow), so that the harness sees gil_bound before it pins the version's workers; a pool
        of several predictors always releases the GIL, so its predictors run in parallel."""
        for i in range(FIRST_CALLS):
            began = time.perf_counter()
            try:
                self._call(zero_inputs(self.manifest.inputs), handle)
            except (InputMismatch, PluginError):  # zeros are no input for this model: the
                return  # warm-up with real inputs says whether it works
            if time.perf_counter() - began < HOLD_GIL_BELOW_S:
                self._infer = held
                self.gil_bound = True
                return
            if i >= 1:  # a second slow call: this model is not one whose calls are short
                return

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        # Refuses new calls, then waits - however long - for every handle to come back (calls
        # in flight, a growth being warmed) and closes them all: only then may dlclose run.
        self._pool.close(timeout=None)
        self._unload()

    def __enter__(self) -> PluginServable:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def load_plugin(path: str | Path, threads: int = 1, pool_min: int = 1,
                pool_max: int | None = None, model_dir: str | Path | None = None,
                c_api: CApiProvider | None = None, idle_s: float = 30.0) -> PluginServable:
    """Load a plugin .so; `model_dir` is where the model files are for a plugin built with
    --no-embed-model (default: beside the .so), or to override the embedded ones. `c_api` gives
    libpaddle_inference_c.so when the process cannot resolve it; without one, a prebuilt pdcapi
    for this Paddle is used (see ensure_c_api)."""
    p = Path(path)
    if not p.is_file():
        raise PackageError(f"no such plugin: {p}")
    return PluginServable(p, threads=threads, pool_min=pool_min, pool_max=pool_max,
                          model_dir=model_dir, c_api=c_api, idle_s=idle_s)


def load_published_plugin(package: Path, threads: int = 1, pool_min: int = 1,
                          pool_max: int | None = None, c_api: CApiProvider | None = None,
                          idle_s: float = 30.0) -> PluginServable:
    """The plugin.so of a published version (or variant: VERSION/variants/PRECISION), trusted
    only if it is the file build-plugin made for this very version and precision: its sha256
    matches plugin.so.sha256 (written by build-plugin beside it, before the version was renamed
    into place) and its embedded manifest names the package's model, version and precision.
    Any mismatch is a PackageError and nothing is dlopened."""
    from paddlehot_cli.core.manifest import read_verified

    manifest = read_verified(package)
    so = package / "plugin.so"
    if not so.is_file():
        raise PackageError(f"{package} has no plugin.so")
    digest = read_digest(so)
    if digest is None:
        raise PackageError(f"{so} has no {so.name}.sha256 beside it (build-plugin writes it); "
                           "not loading an unverified plugin")
    return PluginServable(so, threads=threads, pool_min=pool_min, pool_max=pool_max,
                          c_api=c_api, sha256=digest,
                          expect=(manifest.name, variant_key(manifest.version, manifest.precision)),
                          idle_s=idle_s)


def manifest_json(path: str | Path) -> dict[str, Any]:
    manifest, _ = read_plugin_manifest(path)
    return json.loads(json.dumps(manifest.raw))
