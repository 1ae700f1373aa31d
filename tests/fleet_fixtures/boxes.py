"""Boxes for the release rehearsal: `paddlehot serve` as a user starts it (a subprocess of
`python -m paddlehot_cli serve`, or the rootfs' own paddlehot under qemu), its log in a file,
its index and metrics over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serve_fixtures.helpers import free_port


class Box:
    """One serving process; `restart()` starts the same command again, as systemd would."""

    def __init__(self, name: str, log: Path, port: int | None = None):
        self.name, self.log_path = name, log
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = log.open("a+")  # O_APPEND: reading never moves serve's writes

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Box:
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.env())
        return self

    def env(self) -> dict[str, str]:
        return dict(os.environ, GLOG_minloglevel="2", PYTHONUNBUFFERED="1", COLUMNS="160")

    def alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
        return True

    def ready(self) -> bool:
        self.alive()
        try:
            return httpx.get(f"{self.base}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def rows(self) -> list[dict]:
        return httpx.post(f"{self.base}/v2/repository/index", timeout=10).json()

    def metrics(self) -> str:
        return httpx.get(f"{self.base}/metrics", timeout=10).text

    def tail(self, lines: int = 40) -> str:
        self.log.flush()
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-lines:])

    def text(self) -> str:
        return self.tail(lines=1_000_000)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM to the process group (serve drains and exits 0), SIGKILL after `timeout`."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


class HostBox(Box):
    """`python -m paddlehot_cli serve REPO ARGS` on this machine."""

    def __init__(self, name: str, repo: Path, args: list[str], log: Path):
        super().__init__(name, log)
        self.repo, self.args = repo, args

    def command(self) -> list[str]:
        return [sys.executable, "-m", "paddlehot_cli", "serve", str(self.repo), "--port",
                str(self.port), *map(str, self.args)]


class QemuBox(Box):
    """The rootfs' paddlehot serving REPO under qemu (plugin.qemu_serve), on the host's
    127.0.0.1 (the rootfs shares the host's network)."""

    def __init__(self, name: str, rootfs: Path, repo: Path, args: list[str], log: Path):
        super().__init__(name, log)
        self.rootfs, self.repo, self.args = rootfs, repo, args

    def command(self) -> list[str]:
        from paddlehot_cli.plugin import qemu_serve
        from paddlehot_cli.plugin.rootfs import open_rootfs

        return qemu_serve.serve_command(open_rootfs(self.rootfs, "aarch64"), self.repo,
                                        ["--port", str(self.port), *map(str, self.args)])
