"""The Paddle library pdcapi is built over, and the check of the bridge's imports against it.

A pdcapi build is tied to one libpaddle.so: its C++ declarations were checked against that
file's symbol table and self-test, so the cache key holds the arch, the Paddle version and the
library's GNU build id (core.paddle_wheel finds and describes it without importing paddle).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.core.elf_facts import Library, read_elf
from paddlehot_cli.core.paddle_wheel import build_id, paddle_version, wheel_libpaddle

__all__ = ["LibPaddle", "build_id", "demangle", "describe", "missing_symbols", "paddle_imports",
           "paddle_version", "wheel_libpaddle"]

# The bridge's imports that must come from libpaddle.so: anything in Paddle's namespaces, and
# std:: templates instantiated over Paddle's types (e.g. unique_ptr<paddle::ZeroCopyTensor>).
_PADDLE_MANGLED = ("6paddle", "12paddle_infer")


@dataclass(frozen=True)
class LibPaddle:
    path: Path
    version: str
    build_id: str
    arch: str


def describe(path: Path, version: str, arch: str) -> LibPaddle:
    """Cheap (a few header reads): never walks the 170,000-symbol table."""
    return LibPaddle(path, version, build_id(path), arch)


def paddle_imports(bridge: Path) -> list[str]:
    """The bridge's undefined dynamic symbols that name Paddle types or functions and that it
    needs (a weak one, used only where the library has it, is not)."""
    return sorted(s.name for s in read_elf(bridge).imports()
                  if s.bind != "STB_WEAK" and s.name.startswith("_Z")
                  and any(m in s.name for m in _PADDLE_MANGLED))


def missing_symbols(bridge: Path, libpaddle: Path) -> list[str]:
    """The bridge's Paddle imports that `libpaddle` does not define (mangled names)."""
    lib = Library(libpaddle)
    try:
        return [name for name in paddle_imports(bridge) if not lib.defines(name)]
    finally:
        lib.close()


def demangle(names: list[str]) -> list[str]:
    """C++ names for messages (c++filt when present, else the mangled ones)."""
    tool = shutil.which("c++filt")
    if not tool or not names:
        return names
    proc = subprocess.run([tool], check=False, input="\n".join(names), capture_output=True, text=True)
    out = proc.stdout.splitlines()
    return out if proc.returncode == 0 and len(out) == len(names) else names
