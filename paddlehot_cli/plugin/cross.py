"""pdcapi for a foreign arch: native/pdcapi cross-compiled against a rootfs (the libpaddle.so of
its venv's paddlepaddle wheel, and its libpython, which libpaddle.so needs loadable), so a
cross-built plugin links a real libpaddle_inference_c.so, not a stub.

It is cached per (arch, Paddle version, libpaddle build id, sources, flags) next to the host
builds; the rootfs is only read. The symbol check runs as for a host build, against the
rootfs' libpaddle.so; the self-test (every supported dtype and a dynamic shape) runs inside the
rootfs under qemu, and a mismatch fails the build as on x86_64: nothing is cached.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from paddlehot_cli.core.plugin_abi import host_arch
from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin import pdcapi
from paddlehot_cli.plugin.libpaddle import LibPaddle, describe
from paddlehot_cli.plugin.rootfs import Bind, Rootfs, guest_command, open_rootfs, require_runnable

QEMU_SELFTEST_TIMEOUT_S = 600  # loading libpaddle.so under qemu on a busy 2-core box

if TYPE_CHECKING:
    from paddlehot_cli.plugin.c_api_choice import CApi


def _libpaddle(rootfs: Rootfs) -> LibPaddle:
    lib = rootfs.site_packages() / "paddle" / "base" / "libpaddle.so"
    if not lib.is_file():
        raise UserError(f"--sysroot {rootfs.path}: no paddlepaddle in its venv ({lib} is missing)",
                        hint="build the rootfs with native/edge/build-rootfs.sh")
    return describe(lib, rootfs.paddle_version() or "none", rootfs.arch)


def _python_ldflags(rootfs: Rootfs) -> list[str]:
    ver = rootfs.python_version
    libpython = rootfs.path / "usr" / "lib" / rootfs.triplet / f"libpython{ver}.so"
    if not libpython.exists():
        raise UserError(
            f"--sysroot {rootfs.path}: no {libpython.relative_to(rootfs.path)}",
            hint=f"install libpython{ver}-dev in the rootfs",
        )
    rpath_link = ":".join(str(d) for d in rootfs.lib_dirs)
    # libpython by path, not -L: the rootfs' libc.so is a linker script with absolute paths that
    # would replace the cross toolchain's libc.
    return [str(libpython.resolve()), f"-Wl,-rpath-link,{rpath_link}"]


def _plan(rootfs: Rootfs, cc: str) -> tuple[LibPaddle, list[str], list[str], Path]:
    lib = _libpaddle(rootfs)
    flags = pdcapi.common_flags()
    # at run time libpaddle.so is where the device (the rootfs under qemu) has it, not here
    on_device = Path("/") / lib.path.parent.resolve().relative_to(rootfs.path.resolve())
    ldflags = pdcapi.link_flags(lib.path, _python_ldflags(rootfs), rpath=on_device)
    key = pdcapi.cache_key(lib, [Path(cc).name, Path(pdcapi.cxx_for(cc)).name], flags + ldflags)
    return lib, flags, ldflags, pdcapi.cache_root() / key / pdcapi.SONAME


def find_cached_cross_pdcapi(rootfs: Rootfs, cc: str) -> Path | None:
    """The cached cross build for this rootfs, or None; never builds."""
    try:
        *_, path = _plan(rootfs, cc)
    except UserError:
        return None
    return path if path.is_file() else None


def build_cross_pdcapi(rootfs: Rootfs, cc: str, force: bool = False) -> Path:
    """Build (or reuse) libpaddle_inference_c.so for rootfs.arch with the cross compiler cc (and
    its C++ driver beside it)."""
    lib, flags, ldflags, target = _plan(rootfs, cc)
    if target.is_file() and not force:
        return target
    cc_path = pdcapi._require_cc(cc)
    cxx_path = pdcapi._require_cc(pdcapi.cxx_for(cc), f"C++ cross compiler for {rootfs.arch}")
    with pdcapi.staging(target) as tmp:
        built = pdcapi.compile_and_link(tmp, cc_path, cxx_path, flags, ldflags,
                                        f"{pdcapi.SONAME} for {rootfs.arch}")
        pdcapi.check_symbols(built, lib.path)
        self_test_under_qemu(rootfs, built, cc_path)
        os.replace(built, target)
    return target


def self_test_under_qemu(rootfs: Rootfs, bridge: Path, cc: str) -> None:
    """pdcapi's self-test cross-compiled and run inside the rootfs (the device's libpaddle.so
    and libpython), under qemu; UserError on a mismatch or when it cannot run."""
    require_runnable(rootfs)
    rpath_link = ":".join(str(d) for d in [*rootfs.lib_dirs, _libpaddle(rootfs).path.parent,
                                          rootfs.site_packages() / "paddle" / "libs"])
    exe = pdcapi.compile_self_test(bridge, cc, [f"-Wl,-rpath-link,{rpath_link}"])
    binds = [Bind(bridge.parent, "pdcapi"), Bind(pdcapi.selftest_dir(), "selftest")]
    argv = [f"{binds[0].guest}/{exe.name}",
            *(f"{binds[1].guest}/{m.name}" for m in pdcapi.self_test_models())]
    env = {"LD_LIBRARY_PATH": binds[0].guest, "GLOG_minloglevel": "2"}
    pdcapi.run_self_test(guest_command(rootfs, argv, binds, env), env=None,
                         timeout=QEMU_SELFTEST_TIMEOUT_S, where=f" under qemu ({rootfs.arch})")


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
                f"needs paddlepaddle's libpaddle.so ({paddle} in {sysroot}) and "
                f"libpython{rootfs.python_version} (loaded, never started)")


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


def _main(argv: list[str]) -> int:
    """python -m paddlehot_cli.plugin.cross ROOTFS: build (or find) pdcapi for the aarch64
    rootfs ROOTFS and print its path."""
    import sys

    from paddlehot_cli.plugin.c_api_choice import CROSS_CC

    if len(argv) != 1:
        print("error: usage: python -m paddlehot_cli.plugin.cross ROOTFS", file=sys.stderr)
        return 2
    try:
        print(build_cross_pdcapi(open_rootfs(Path(argv[0]), "aarch64"), CROSS_CC["aarch64"]))
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
