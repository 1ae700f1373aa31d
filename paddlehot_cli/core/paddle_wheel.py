"""The installed paddlepaddle wheel's native library (paddle/base/libpaddle.so), found and
described without importing paddle: importing it costs seconds and ~300 MB, and a process whose
versions are all plugins never needs it."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

from paddlehot_cli.core.elf_facts import open_elf
from paddlehot_cli.errors import UserError


def paddle_version() -> str:
    """The installed paddlepaddle version, or "none"."""
    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "none"


def wheel_libpaddle() -> Path:
    """paddle/base/libpaddle.so of the installed wheel; UserError when there is none."""
    spec = importlib.util.find_spec("paddle")  # finds the package; runs none of it
    lib = Path(spec.origin).parent / "base" / "libpaddle.so" if spec and spec.origin else None
    if lib is None or not lib.is_file():
        raise UserError("paddlepaddle is not installed: pdcapi is built over its libpaddle.so",
                        hint="pip install paddlepaddle")
    return lib


def build_id(path: Path) -> str:
    """The GNU build id (hex), or "nobuildid" when the file has none.

    Read from the PT_NOTE segments, not the section table: naming sections makes pyelftools
    parse every section, libpaddle's huge GNU hash table among them (~80 ms of each abi-check).
    """
    elf, fh, _ = open_elf(path)
    try:
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_NOTE":
                continue
            for note in seg.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return str(note["n_desc"])
    finally:
        fh.close()
    return "nobuildid"
