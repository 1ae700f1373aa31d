"""Disk space on the pulling box: look before downloading, and say "disk full" when it fills
anyway (another writer got there first) instead of an internal error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from paddlehot_cli.fleet.errors import FleetError, NoSpace

RESERVE = 1 << 20  # leave a MiB for the manifest, signatures, the .sha256 record, the rename


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def check_free_space(where: Path, needed: int, what: str) -> None:
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if needed + RESERVE > free:
        raise NoSpace(f"not enough free space for {what} in {where.parent}: it needs "
                      f"{_mib(needed)} to download, {_mib(free)} free",
                      hint="free some space or pull into another --repo")


def disk_error(exc: OSError, what: str, where: Path) -> FleetError:
    """The one-line error for a failed write while pulling."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(f"disk full while writing {what} into {where}: {exc.strerror}; "
                       "nothing was installed", hint="free some space and pull again")
    return FleetError(f"cannot write {what} into {where}: {exc.strerror or exc}")
