"""A throwaway OCI registry for tests and benchmarks: Debian's `docker-registry` (the CNCF
distribution registry) on 127.0.0.1, a free port and a filesystem store under `root`,
optionally asking for Basic auth (htpasswd, bcrypt through the system's libcrypt)."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

BINARY = "docker-registry"
_CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {store}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""
_TLS = """  tls:
    certificate: {cert}
    key: {key}
"""
_AUTH = """auth:
  htpasswd:
    realm: paddlehot-local
    path: {htpasswd}
"""


def bcrypt(password: str) -> str:
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    alphabet = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt = bytes(alphabet[b % 64] for b in os.urandom(22))
    return lib.crypt(password.encode(), b"$2y$05$" + salt).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    def __init__(self, root: Path, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None):
        self.root = Path(root)
        self.store = self.root / "store"
        self.users = users or {}
        self.tls = tls  # (certificate, key) PEM files: serve HTTPS
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = self.root / "registry.log"
        self.proc: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        return f"oci://{self.host}/{path}"

    def start(self, timeout: float = 20.0) -> None:
        """Start (or restart, same port and store) and wait until it answers /v2/."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = _CONFIG.format(store=self.store, port=self.port)
        if self.tls is not None:
            text += _TLS.format(cert=self.tls[0], key=self.tls[1])
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt(p)}\n" for u, p in self.users.items()))
            text += _AUTH.format(htpasswd=htpasswd)
        config = self.root / "config.yml"
        config.write_text(text)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                scheme = "https" if self.tls is not None else "http"
                answer = httpx.get(f"{scheme}://{self.host}/v2/", timeout=1, verify=False)
                if answer.status_code in (200, 401):
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{BINARY} did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
