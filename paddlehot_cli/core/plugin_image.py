"""A private, sealed copy of a plugin file: what the loader verifies and dlopens.

Writing over a published plugin.so in place (`dd conv=notrunc`) changes the pages of every
mapping of that file, so a process that dlopened it crashes. The loader therefore copies the file
once into a memfd (hashing it on the way), seals the memfd against any change, checks the copy,
and dlopens `/proc/self/fd/N`: what runs is exactly what was verified, whatever happens to the
file on disk afterwards. The memfd is closed when the plugin is unloaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from paddlehot_cli.core.plugin_abi import DIGEST_SUFFIX
from paddlehot_cli.errors import PackageError

_CHUNK = 1 << 20
# fcntl's F_ADD_SEALS and F_SEAL_* (Linux), spelled out for Pythons whose fcntl lacks them.
_F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
_SEAL_SIZE = 0x2 | 0x4  # F_SEAL_SHRINK | F_SEAL_GROW: at once
_SEAL_ALL = 0x1 | 0x8  # F_SEAL_SEAL | F_SEAL_WRITE: once the model ranges are given back
_FALLOC_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def read_digest(plugin: Path) -> str | None:
    """The sha256 build-plugin recorded beside `plugin` (PLUGIN.sha256, sha256sum format), or
    None when there is no such file."""
    side = plugin.with_name(plugin.name + DIGEST_SUFFIX)
    try:
        text = side.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PackageError(f"cannot read {side}: {exc.strerror}") from None
    word = text.split()[0] if text.split() else ""
    if len(word) != 64 or any(c not in "0123456789abcdef" for c in word):
        raise PackageError(f"{side} does not hold a sha256 (64 hex digits)")
    return word


def digest_line(sha256: str, plugin_name: str) -> str:
    """The sidecar's text: `sha256sum -c` reads it too."""
    return f"{sha256}  {plugin_name}\n"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class PrivateImage:
    """A sealed memfd holding one plugin file as it was read, and its sha256."""

    def __init__(self, source: Path, label: str):
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise PackageError(f"cannot read plugin {source}: {exc.strerror}") from None
        self.fd = -1
        try:
            self.fd = os.memfd_create(f"paddlehot-plugin:{label}"[:240],
                                      os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except OSError as exc:
            os.close(src)
            raise PackageError(f"cannot make a private copy of {source}: {exc.strerror}") from None
        h = hashlib.sha256()
        try:
            while chunk := os.read(src, _CHUNK):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view):]
        except OSError as exc:
            self.close()
            raise PackageError(f"cannot copy plugin {source}: {exc.strerror}") from None
        finally:
            os.close(src)
        self.sha256 = h.hexdigest()
        fcntl.fcntl(self.fd, _F_ADD_SEALS, _SEAL_SIZE)

    @property
    def path(self) -> Path:
        """What dlopen and the ELF reader are given; the plugin reads its own sections from it."""
        return Path(f"/proc/self/fd/{self.fd}")

    def drop_ranges(self, ranges: list[tuple[int, int]]) -> None:
        """Give back the memory of file ranges nothing will read again (the embedded model once
        open() has handed it to Paddle); then seal the image against any change."""
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        for offset, size in ranges:
            libc.fallocate(self.fd, _FALLOC_PUNCH_HOLE, offset, size)  # best effort
        try:
            fcntl.fcntl(self.fd, _F_ADD_SEALS, _SEAL_ALL)
        except OSError:  # defence in depth only: the copy is private to this process anyway
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
