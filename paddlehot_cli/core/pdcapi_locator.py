"""Find a prebuilt pdcapi (libpaddle_inference_c.so) for this process's Paddle; never builds.

plugin.pdcapi builds the library and caches it under cache_root() in a directory named
<arch>-paddle<version>-<libpaddle build id, 12 hex>-<digest of sources and flags>. Any build for
this very libpaddle.so implements the same C API, so the newest one serves: that is what
core.load uses for a plugin when the process cannot resolve the library otherwise. Building
(a compiler run, tens of seconds) stays an explicit step: build-plugin, serve and bench do it.
"""

from __future__ import annotations

import os
from pathlib import Path

from paddlehot_cli.core.paddle_wheel import build_id, paddle_version, wheel_libpaddle
from paddlehot_cli.core.plugin_abi import C_API_SONAME, host_arch
from paddlehot_cli.errors import UserError


def cache_root() -> Path:
    """Where pdcapi builds are cached ($PADDLEHOT_CACHE/pdcapi, else ~/.cache/paddlehot/pdcapi)."""
    base = os.environ.get("PADDLEHOT_CACHE") or str(Path.home() / ".cache" / "paddlehot")
    return Path(base) / "pdcapi"


def key_prefix(arch: str, version: str, libpaddle_build_id: str) -> str:
    """The part of a cache directory's name that ties a build to one libpaddle.so."""
    return f"{arch}-paddle{version}-{libpaddle_build_id[:12]}-"


def prebuilt_pdcapi() -> Path | None:
    """The newest cached pdcapi built over this process's libpaddle.so, or None."""
    try:
        lib = wheel_libpaddle()
    except UserError:
        return None
    prefix = key_prefix(host_arch(), paddle_version(), build_id(lib))
    found = [d / C_API_SONAME for d in cache_root().glob(prefix + "*")
             if (d / C_API_SONAME).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
