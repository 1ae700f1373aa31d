"""A real OCI registry for the fleet tests: Debian's docker-registry (CNCF distribution) on
127.0.0.1, a free port and a temporary filesystem store. Missing binary = failure (CI installs it)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.serve_fixtures.helpers import free_port

BINARY = "docker-registry"
CONFIG = """version: 0.1
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


class Registry:
    def __init__(self, root: Path):
        self.root = root
        self.store = root / "store"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = root / "registry.log"

    def url(self, path: str) -> str:
        return f"oci://{self.host}/{path}"

    def start(self) -> None:
        config = self.root / "config.yml"
        config.write_text(CONFIG.format(store=self.store, port=self.port))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def blob_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.store / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def tamper(self, digest: str) -> None:
        """Flip one byte of a stored blob (same size): what a corrupt disk or a hostile mirror
        does. The registry serves it as is; only the puller's digest check can notice."""
        path = self.blob_path(digest)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        assert "sha256:" + hashlib.sha256(data).hexdigest() != digest

    def manifest(self, repository: str, ref: str) -> dict:
        accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
        r = httpx.get(f"http://{self.host}/v2/{repository}/manifests/{ref}",
                      headers={"Accept": accept}, timeout=10)
        r.raise_for_status()
        return json.loads(r.content)


@pytest.fixture
def registry(tmp_path):
    if shutil.which(BINARY) is None:
        pytest.fail(f"{BINARY} is not installed (apt-get install docker-registry; .ci/run does)")
    reg = Registry(tmp_path / "registry")
    reg.root.mkdir()
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()
