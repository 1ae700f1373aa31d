"""Run `paddlehot serve` inside a foreign-arch rootfs under qemu, answering on the host's
127.0.0.1 (the rootfs shares the host's network).

The rootfs venv's own `paddlehot` serves (native/edge/build-rootfs.sh --project installs it);
the repository is bound read-only (read-write with --follow, which pulls into it), so versions
published on the host appear inside at once; host files named by --trust, --registry-ca,
--tls-cert, --tls-key and --state-dir are bound in too; the pdcapi cross-built for the rootfs is
on LD_LIBRARY_PATH, as the device's C API would be.

    python -m paddlehot_cli.plugin.qemu_serve ROOTFS REPO [-- SERVE OPTIONS]

serves in the foreground until Ctrl-C; measure it with `paddlehot bench http://127.0.0.1:PORT/M`.
Latencies are emulated ones (qemu-user on this CPU), not a device's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin.rootfs import GUEST_VENV, Bind, Rootfs, guest_command, require_runnable


def serve_command(rootfs: Rootfs, repo: Path, serve_args: list[str]) -> list[str]:
    """The host command running `paddlehot serve REPO serve_args...` inside the rootfs."""
    from paddlehot_cli.plugin.c_api_choice import CROSS_CC
    from paddlehot_cli.plugin.cross import build_cross_pdcapi

    require_runnable(rootfs)
    paddlehot = f"{GUEST_VENV}/bin/paddlehot"
    if not (rootfs.path / paddlehot.lstrip("/")).exists():
        raise UserError(f"{rootfs.path}: paddlehot is not installed in {GUEST_VENV}",
                        hint="native/edge/build-rootfs.sh --project CHECKOUT installs it")
    if not Path(repo).is_dir():
        raise UserError(f"{repo}: not a directory")
    capi = build_cross_pdcapi(rootfs, CROSS_CC[rootfs.arch])
    args, binds = guest_serve_args(Path(repo), serve_args)
    binds.append(Bind(capi.parent, "capi"))
    env = {"LD_LIBRARY_PATH": binds[-1].guest, "GLOG_minloglevel": "2",
           "PYTHONUNBUFFERED": "1"}
    return guest_command(rootfs, [paddlehot, "serve", *args], binds, env)


# serve options naming a host path: the guest sees only what is bound in (True: written to)
HOST_PATH_OPTIONS = {"--trust": False, "--registry-ca": False, "--tls-cert": False,
                     "--tls-key": False, "--state-dir": True}


def guest_serve_args(repo: Path, serve_args: list[str]) -> tuple[list[str], list[Bind]]:
    """`serve` arguments as the guest must see them, and the binds that make them true: REPO
    (writable when --follow pulls into it) and each existing host path an option names (a
    missing one is passed as is: serve inside says what is wrong with it)."""
    serve_args = [str(a) for a in serve_args]
    follow = any(a == "--follow" or a.startswith("--follow=") for a in serve_args)
    binds = [Bind(repo, "repo", writable=follow)]

    def bound(option: str, value: str) -> str:
        if not Path(value).exists():
            return value
        binds.append(Bind(Path(value), f"arg{len(binds)}/{Path(value).name}",
                          writable=HOST_PATH_OPTIONS[option]))
        return binds[-1].guest

    args: list[str] = [binds[0].guest]
    pending: str | None = None  # an option whose value is the next argument
    for arg in serve_args:
        option, eq, value = arg.partition("=")
        if pending is not None:
            arg, pending = bound(pending, arg), None
        elif option in HOST_PATH_OPTIONS:
            if eq:
                arg = f"{option}={bound(option, value)}"
            else:
                pending = option
        args.append(arg)
    return args, binds


def start(rootfs: Rootfs, repo: Path, serve_args: list[str], **popen: object) -> subprocess.Popen:
    """Start serving in its own process group (stop() signals the whole group)."""
    return subprocess.Popen(serve_command(rootfs, repo, serve_args), start_new_session=True,
                            **popen)  # type: ignore[call-overload]


def stop(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGTERM (serve drains and exits 0), then SIGKILL after `timeout`."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def main(argv: list[str]) -> int:
    from paddlehot_cli.plugin.rootfs import open_rootfs

    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    serve_args = argv[3:] if argv[2:3] == ["--"] else argv[2:]
    try:
        proc = start(open_rootfs(Path(argv[0]), "aarch64"), Path(argv[1]), serve_args)
    except UserError as exc:
        print(f"error: {exc}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C or SIGTERM here drains the server in the rootfs (its own process group).
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return stop(proc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
