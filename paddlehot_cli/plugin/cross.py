"""pdcapi for a foreign arch: native/pdcapi cross-compiled against a rootfs (its Python headers
and libpython), so a cross-built plugin links a real libpaddle_inference_c.so, not a stub.

The library embeds the rootfs' CPython and drives the paddlepaddle wheel of the rootfs venv, as
the host build does with the host's. It is cached per (arch, Python, paddle, sources, flags) next
to the host builds; the rootfs is only read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from paddlehot_cli.core.plugin_abi import host_arch
from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin import pdcapi
from paddlehot_cli.plugin.rootfs import Rootfs, open_rootfs

if TYPE_CHECKING:
    from paddlehot_cli.plugin.c_api_choice import CApi


def _flags(rootfs: Rootfs) -> tuple[list[str], list[str]]:
    ver = rootfs.python_version
    libpython = rootfs.path / "usr" / "lib" / rootfs.triplet / f"libpython{ver}.so"
    if not libpython.exists():
        raise UserError(
            f"--sysroot {rootfs.path}: no {libpython.relative_to(rootfs.path)}",
            hint=f"install libpython{ver}-dev in the rootfs",
        )
    cflags = [
        "-O2", "-g0", "-std=gnu11", "-fPIC", "-fvisibility=hidden", "-Wall",
        *pdcapi.include_flags(),
        *(f"-I{d}" for d in rootfs.python_include_dirs()),
        # Debian's pyconfig.h includes <TRIPLET/python3.x/pyconfig.h>; searched after the cross
        # toolchain's own headers so its glibc stays the one compiled against.
        f"-idirafter{rootfs.path / 'usr' / 'include'}",
        f'-DPHOT_PYTHON_EXECUTABLE="{rootfs.guest_python}"',
        f'-DPHOT_LIBPYTHON="libpython{ver}.so.1.0"',
    ]
    rpath_link = ":".join(str(d) for d in rootfs.lib_dirs)
    # libpython by path, not -L: the rootfs' libc.so is a linker script with absolute paths that
    # would replace the cross toolchain's libc.
    ldflags = [
        "-shared", f"-Wl,-soname,{pdcapi.SONAME}", "-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack",
        str(libpython.resolve()), f"-Wl,-rpath-link,{rpath_link}", "-ldl", "-lpthread",
    ]
    return cflags, ldflags


def _target_path(rootfs: Rootfs, cc: str) -> tuple[Path, list[str], list[str]]:
    cflags, ldflags = _flags(rootfs)
    parts = [rootfs.arch.encode(), Path(cc).name.encode(), "\0".join(cflags + ldflags).encode()]
    for f in pdcapi._sources():
        parts += [f.name.encode(), f.read_bytes()]
    key = (f"{rootfs.triplet}-cpython-{rootfs.python_version.replace('.', '')}-"
           f"paddle{rootfs.paddle_version() or 'none'}-{pdcapi._digest(parts)}")
    return pdcapi.cache_root() / key / pdcapi.SONAME, cflags, ldflags


def find_cached_cross_pdcapi(rootfs: Rootfs, cc: str) -> Path | None:
    """The cached cross build for this rootfs, or None; never builds."""
    path, _, _ = _target_path(rootfs, cc)
    return path if path.is_file() else None


def build_cross_pdcapi(rootfs: Rootfs, cc: str, force: bool = False) -> Path:
    """Build (or reuse) libpaddle_inference_c.so for rootfs.arch with the cross compiler cc."""
    target, cflags, ldflags = _target_path(rootfs, cc)
    if target.is_file() and not force:
        return target
    pdcapi._compile_into(target, [*cflags, *pdcapi.compile_sources(), *ldflags], cc,
                         f"{pdcapi.SONAME} for {rootfs.arch}")
    return target


def cross_c_api(sysroot: Path, target: str, cc: str) -> CApi:
    """build-plugin --sysroot: the C API to compile and link a `target` plugin against."""
    from paddlehot_cli.plugin.c_api_choice import CApi

    if target == host_arch():
        raise UserError("--sysroot is for cross builds", hint=f"add --target with an arch other "
                        f"than this host's {host_arch()}")
    rootfs = open_rootfs(sysroot, target)
    lib = build_cross_pdcapi(rootfs, cc)
    paddle = rootfs.paddle_version() or "no paddlepaddle in its venv"
    return CApi("pdcapi", pdcapi.pdcapi_include_dir(), lib.parent,
                f"linked against paddlehot's pdcapi for {target} ({lib}); on the device it "
                f"needs Python {rootfs.python_version} with paddlepaddle ({paddle} in {sysroot})")


def rootfs_runtime(root: Path, arch: str) -> tuple[list[Path], str | None] | None:
    """For abi-check --runtime ROOTFS: the rootfs' library dirs plus the pdcapi that
    build-plugin --sysroot cached for it, and its venv's Paddle; None when root is no rootfs."""
    from paddlehot_cli.plugin.c_api_choice import CROSS_CC
    from paddlehot_cli.plugin.rootfs import looks_like_rootfs

    if arch not in CROSS_CC or not looks_like_rootfs(root, arch):
        return None
    rootfs = Rootfs(root.resolve(), arch)
    dirs = list(rootfs.lib_dirs)
    try:
        lib = find_cached_cross_pdcapi(rootfs, CROSS_CC[arch])
    except UserError:  # no Python headers/libpython: nothing was cross-built against it
        lib = None
    if lib is not None:
        dirs.append(lib.parent)
    return dirs, rootfs.paddle_version()
