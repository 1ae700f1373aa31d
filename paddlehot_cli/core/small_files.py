"""Read the small control files of a repository (labels.json, serving.json, paddlehot.json)
without being blocked or fooled by what an attacker or a careless copy put there: regular files
only (a FIFO would block the scanner forever), no symlink followed, a size cap. And write small
state files durably (the old content or the new, even across a crash)."""

from __future__ import annotations

import json
import os
import stat
import tempfile
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


def write_durably(path: Path, doc: object) -> None:
    """Replace `path` with `doc` as JSON: the old content or the new, even across a crash."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_dir(path.parent)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
