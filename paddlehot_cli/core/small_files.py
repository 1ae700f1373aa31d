"""Read the small control files of a repository (labels.json, serving.json, paddlehot.json)
without being blocked or fooled by what an attacker or a careless copy put there: regular files
only (a FIFO would block the scanner forever), no symlink followed, a size cap."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_CONTROL_BYTES = 1 << 20  # 1 MiB: these files are a few KB


class NotRegular(OSError):
    """The path exists but is not a plain file we may read (symlink, FIFO, device, too big)."""


def read_control_file(path: Path, cap: int = MAX_CONTROL_BYTES) -> bytes:
    """The file's bytes. FileNotFoundError when it is missing; NotRegular for a symlink, a FIFO,
    a device, a directory or a file over `cap` bytes; other OSErrors as the system gives them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise NotRegular(exc.errno, "is a symbolic link", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(0, "is not a regular file", str(path))
        if st.st_size > cap:
            raise NotRegular(0, f"is larger than {cap} bytes", str(path))
        data = os.read(fd, cap + 1)
        if len(data) > cap:
            raise NotRegular(0, f"is larger than {cap} bytes", str(path))
        return data
    finally:
        os.close(fd)
