"""A foreign-arch Debian rootfs (native/edge/build-rootfs.sh builds one) seen from the host: where
its Python headers, libpython, venv and paddle are, and how to run a command inside it under qemu.

Commands run in a private mount namespace (`unshare --mount`): /proc, /dev, /sys, a tmpfs on /tmp
and on /mnt, and read-only binds of host files under /mnt/paddlehot exist only for that process.
Nothing is written into the rootfs and nothing stays mounted on the host. The kernel runs the
foreign binaries through qemu-user registered with binfmt_misc (flag F, so no qemu copy is needed
inside the rootfs). Nothing here imports paddle.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.errors import UserError

GUEST_VENV = "/opt/paddlehot"  # where build-rootfs.sh puts the venv with paddlepaddle
GUEST_MNT = "/mnt/paddlehot"  # host files appear under here inside the rootfs
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BUILD_HINT = "build one with `native/edge/build-rootfs.sh` (prints its path with --print-path)"
# ELF e_machine names (core.elf_facts) -> Debian multiarch triplet and qemu binfmt entry.
TRIPLETS = {"aarch64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}


@dataclass(frozen=True)
class Rootfs:
    path: Path
    arch: str

    @property
    def triplet(self) -> str:
        return TRIPLETS[self.arch]

    @property
    def lib_dirs(self) -> list[Path]:
        """Host paths of the rootfs' multiarch library dirs, in the dynamic loader's order."""
        return [self.path / "lib" / self.triplet, self.path / "usr" / "lib" / self.triplet]

    @property
    def python_version(self) -> str:
        """'3.11': the Python whose headers the rootfs holds."""
        found = sorted(
            p.parent.name[len("python"):]
            for p in (self.path / "usr" / "include").glob("python3.*/Python.h")
        )
        if not found:
            raise UserError(
                f"--sysroot {self.path}: no Python headers (usr/include/python3.*/Python.h)",
                hint="install python3-dev in the rootfs, or " + BUILD_HINT,
            )
        return found[-1]

    def python_include_dirs(self) -> list[Path]:
        return [self.path / "usr" / "include" / f"python{self.python_version}"]

    @property
    def guest_python(self) -> str:
        """The interpreter inside the rootfs: the venv's when there is one."""
        venv = f"{GUEST_VENV}/bin/python"
        return venv if (self.path / venv.lstrip("/")).exists() else "/usr/bin/python3"

    def site_packages(self) -> Path:
        return self.path / GUEST_VENV.lstrip("/") / "lib" / f"python{self.python_version}" / (
            "site-packages")

    def paddle_version(self) -> str | None:
        """paddlepaddle's version in the rootfs venv, from its dist-info; None when absent."""
        for info in sorted(self.site_packages().glob("paddlepaddle-*.dist-info")):
            m = re.match(r"paddlepaddle-([^-]+)\.dist-info$", info.name)
            if m:
                return m.group(1)
        return None


def looks_like_rootfs(path: Path, arch: str) -> bool:
    return (path / "usr" / "lib" / TRIPLETS.get(arch, "?")).is_dir() and (path / "etc").is_dir()


def open_rootfs(path: Path, arch: str) -> Rootfs:
    """A rootfs for `arch`, or one clear error saying what is missing."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"--sysroot {path}: not a directory", hint=BUILD_HINT)
    if arch not in TRIPLETS:
        raise UserError(f"--sysroot: no rootfs layout known for {arch}")
    if not looks_like_rootfs(path, arch):
        raise UserError(
            f"--sysroot {path}: not a Debian {arch} rootfs (no usr/lib/{TRIPLETS[arch]})",
            hint=BUILD_HINT,
        )
    return Rootfs(path.resolve(), arch)


# ---------------------------------------------------------------------------------- running


def binfmt_problem(arch: str) -> str | None:
    """Why foreign `arch` binaries cannot run here, or None when they can."""
    entry = BINFMT_DIR / f"qemu-{arch}"
    if not (BINFMT_DIR / "register").exists():
        return f"binfmt_misc is not mounted at {BINFMT_DIR}"
    if not entry.exists():
        return f"qemu-{arch} is not registered with binfmt_misc"
    try:
        if not entry.read_text().startswith("enabled"):
            return f"the binfmt_misc entry qemu-{arch} is disabled"
    except OSError as exc:
        return f"cannot read {entry}: {exc.strerror}"
    return None


def require_runnable(rootfs: Rootfs) -> None:
    problem = binfmt_problem(rootfs.arch)
    if problem:
        raise UserError(
            f"cannot run {rootfs.arch} code here: {problem}",
            hint="run `native/edge/build-rootfs.sh` once: it mounts binfmt_misc and "
            "registers qemu (needs qemu-user-static)",
        )
    if not shutil.which("unshare"):
        raise UserError("`unshare` not found (util-linux): needed to run inside the rootfs")


@dataclass(frozen=True)
class Bind:
    """A host file or directory shown inside the rootfs at GUEST_MNT/name, read-only unless
    `writable` (a repository `serve --follow` pulls into, a --state-dir)."""

    host: Path
    name: str
    writable: bool = False

    @property
    def guest(self) -> str:
        return f"{GUEST_MNT}/{self.name}"


# Runs as root in the new mount namespace: $1 = rootfs, then (host, guest, ro|rw) triples, then
# "--".
_SETUP = r"""
set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=1777 paddlehot-tmp "$root/tmp"
mount -t tmpfs -o mode=755 paddlehot-mnt "$root/mnt"
while [ "$1" != "--" ]; do
  src=$1; dst=$root$2; mode=$3; shift 3
  if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; : > "$dst"; fi
  mount --bind "$src" "$dst"
  mount -o "remount,bind,$mode" "$dst"
done
shift
exec chroot "$root" "$@"
"""


def guest_command(rootfs: Rootfs, argv: list[str], binds: list[Bind] = (),
                  env: dict[str, str] | None = None) -> list[str]:
    """The host command that runs argv inside the rootfs with the binds and only `env` (plus a
    PATH and HOME). Root runs it directly; another user through a user namespace."""
    unshare = ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGTERM"]
    if os.geteuid() != 0:
        unshare[1:1] = ["--user", "--map-root-user", "--pid"]
    guest_env = {"PATH": f"{GUEST_VENV}/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
                 **(env or {})}
    pairs = [x for b in binds
             for x in (str(Path(b.host).resolve()), b.guest, "rw" if b.writable else "ro")]
    return [
        *unshare, "sh", "-c", _SETUP, "paddlehot-rootfs", str(rootfs.path), *pairs, "--",
        "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in guest_env.items()), *argv,
    ]


def source_bind() -> Bind:
    """This paddlehot's own Python package, so guest code runs exactly the host's version."""
    import paddlehot_cli

    return Bind(Path(paddlehot_cli.__file__).resolve().parent, "src/paddlehot_cli")


SOURCE_PYTHONPATH = f"{GUEST_MNT}/src"
