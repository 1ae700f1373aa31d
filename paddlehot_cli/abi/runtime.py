"""The runtime a plugin will be loaded into: library search dirs, and who provides which symbol.

Search order: the --runtime dirs, then paddlehot's own cached pdcapi library (when no --runtime
dir is given), then the system C library dirs for the arch. When libpaddle_inference_c.so is
nowhere, the Paddle Inference C API *as declared* in native/pdcapi/include/pd_*.h stands in.

A --runtime dir that is a whole rootfs of the arch (native/edge/build-rootfs.sh) stands for its
library dirs plus the pdcapi build-plugin --sysroot cached for it, and the host's dirs are not
searched; its venv's Paddle is the runtime's Paddle version (PH123).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from paddlehot_cli.core.elf_facts import Library
from paddlehot_cli.core.plugin_abi import host_arch
from paddlehot_cli.errors import PackageError
from paddlehot_cli.resources import native_dir

C_API_LIB = "libpaddle_inference_c.so"
SYSTEM_DIRS = {
    "x86_64": (
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ),
    "aarch64": (
        "/usr/aarch64-linux-gnu/lib",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ),
}
_PROTO_RE = re.compile(r"\b(PD_[A-Za-z0-9_]+)\s*\(")


def declared_c_api(include_dir: Path | None = None) -> set[str]:
    """PD_* function names declared in the pdcapi headers (empty when they are not there)."""
    inc = include_dir or native_dir() / "pdcapi" / "include"
    names: set[str] = set()
    if inc.is_dir():
        for header in sorted(inc.glob("pd_*.h")):
            try:
                text = header.read_text(errors="replace")
            except OSError:
                continue
            names.update(_PROTO_RE.findall(text))
    return names


def cached_pdcapi_dir() -> Path | None:
    """The directory of the pdcapi build a plugin would use on this host (what core.load uses):
    found by core's locator, which never builds and imports nothing of plugin/ (~30 ms)."""
    try:
        from paddlehot_cli.core.pdcapi_locator import prebuilt_pdcapi

        found = prebuilt_pdcapi()
    except Exception:  # noqa: BLE001 - an optional helper must never break abi-check
        return None
    return found.parent if found is not None else None


@dataclass
class Runtime:
    arch: str
    dirs: list[Path]
    libraries: dict[str, Library] = field(default_factory=dict)  # NEEDED name -> Library
    missing: list[str] = field(default_factory=list)
    wrong_arch: dict[str, list[str]] = field(default_factory=dict)
    header_api: set[str] | None = None  # set when the C API comes from the headers
    paddle_version: str | None = None  # see runtime_paddle()
    libpaddle: Path | None = None  # the paddlepaddle wheel's libpaddle.so there (PH124)
    given: bool = False  # --runtime dirs were given (else: this host, its cached pdcapi)

    def provider(self, name: str, version: str | None, vfile: str | None) -> str | None:
        """Which NEEDED library provides this symbol (None if none does)."""
        order = list(self.libraries.items())
        if vfile:
            order.sort(key=lambda item: item[0] != vfile)
        for lib_name, lib in order:
            if lib.defines(name, version if lib_name == vfile else None):
                return lib_name
        if self.header_api is not None and name in self.header_api:
            return f"{C_API_LIB} (declared in native/pdcapi/include)"
        return None

    def close(self) -> None:
        for lib in self.libraries.values():
            lib.close()


def _rootfs_dirs(arch: str, root: Path) -> tuple[list[Path], str | None] | None:
    """(library dirs, Paddle version) of a rootfs of `arch`; None when root is not one."""
    if not (root / "etc").is_dir():
        return None  # a plain library dir (the common case): no need to load the plugin package
    try:
        from paddlehot_cli.plugin.cross import rootfs_runtime
    except ImportError:  # abi-check without the plugin package
        return None
    return rootfs_runtime(root, arch)


def _host_paddle() -> str | None:
    """This interpreter's paddlepaddle version: from its dist-info directory's name (PEP 427:
    NAME-VERSION.dist-info) when one is on sys.path, else from importlib.metadata, whose
    import alone costs abi-check's start-up ~20 ms."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("paddlepaddle-") and name.endswith(".dist-info"):
                return name.removeprefix("paddlepaddle-").removesuffix(".dist-info")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paddlepaddle")
    except PackageNotFoundError:
        return None


def default_dirs(arch: str, user_dirs: list[Path]) -> list[Path]:
    dirs: list[Path] = []
    rootfs_given = False
    for d in user_dirs:
        found = _rootfs_dirs(arch, d)
        rootfs_given |= found is not None
        dirs.extend(found[0] if found else [d])
    if not user_dirs:
        cached = cached_pdcapi_dir()
        if cached is not None:
            dirs.append(cached)
    if not rootfs_given:
        dirs.extend(Path(d) for d in SYSTEM_DIRS.get(arch, ()))
    return dirs


def runtime_paddle(arch: str, user_dirs: list[Path]) -> str | None:
    """The Paddle the plugin will run on: a --runtime rootfs venv's, or with no --runtime on
    this host's arch this host's (the cached pdcapi drives it); None when unknown."""
    for d in user_dirs:
        found = _rootfs_dirs(arch, d)
        if found and found[1]:
            return found[1]
    return _host_paddle() if not user_dirs and arch == host_arch() else None


def runtime_libpaddle(arch: str, user_dirs: list[Path]) -> Path | None:
    """The libpaddle.so pdcapi would run over: in a --runtime rootfs its venv's wheel, in a plain
    --runtime dir a libpaddle.so placed there; None when there is none."""
    for d in user_dirs:
        candidates = [d / "libpaddle.so"]
        if (d / "etc").is_dir():
            try:
                from paddlehot_cli.plugin.rootfs import Rootfs

                candidates.insert(0, Rootfs(d.resolve(), arch).site_packages() / "paddle" / "base"
                                  / "libpaddle.so")
            except Exception:  # noqa: BLE001 - not a rootfs we can read: no libpaddle there
                pass
        for path in candidates:
            if path.is_file():
                return path
    return None


def resolve_runtime(needed: list[str], arch: str, elfclass: int, user_dirs: list[Path]) -> Runtime:
    for d in user_dirs:
        if not d.is_dir():
            raise PackageError(f"--runtime {d}: not a directory")
    runtime = Runtime(arch, default_dirs(arch, user_dirs))
    runtime.paddle_version = runtime_paddle(arch, user_dirs)
    runtime.libpaddle = runtime_libpaddle(arch, user_dirs)
    runtime.given = bool(user_dirs)
    for lib_name in needed:
        if "/" in lib_name:
            runtime.missing.append(lib_name)
            continue
        found = None
        for d in runtime.dirs:
            candidate = d / lib_name
            if not candidate.is_file():
                continue
            try:
                lib = Library(candidate)
            except PackageError:
                runtime.wrong_arch.setdefault(lib_name, []).append(f"{candidate} (unreadable)")
                continue
            if lib.machine != arch or lib.elfclass != elfclass:
                runtime.wrong_arch.setdefault(lib_name, []).append(f"{candidate} ({lib.machine})")
                lib.close()
                continue
            found = lib
            break
        if found is not None:
            runtime.libraries[lib_name] = found
        else:
            runtime.missing.append(lib_name)
    if C_API_LIB in runtime.missing:
        api = declared_c_api()
        if api:
            runtime.header_api = api
    return runtime
