"""Fixtures running a real OCI registry (fleet.local_registry: Debian's docker-registry on
127.0.0.1, a free port, a temporary store). A missing binary is a failure: CI installs it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import httpx
import pytest

from paddlehot_cli.fleet.client import RegistryClient, sha256_digest
from paddlehot_cli.fleet.local_registry import BINARY, LocalRegistry
from paddlehot_cli.fleet.media import ACCEPT, OCI_MANIFEST


class Registry(LocalRegistry):
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
        r = httpx.get(f"http://{self.host}/v2/{repository}/manifests/{ref}",
                      headers={"Accept": ACCEPT}, timeout=10)
        r.raise_for_status()
        return json.loads(r.content)

    def push_raw(self, repository: str, tag: str, config: bytes, config_type: str) -> None:
        """An artifact written by some other tool (what `oras push` makes), not by paddlehot."""
        with RegistryClient(self.host, insecure=True) as c:
            digest = sha256_digest(config)
            c.upload_blob(repository, digest, len(config), config)
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": config_type, "digest": digest,
                                          "size": len(config)}, "layers": []}).encode()
            c.put_manifest(repository, tag, body, OCI_MANIFEST)


def running(root: Path, users: dict[str, str] | None = None):
    if shutil.which(BINARY) is None:
        pytest.fail(f"{BINARY} is not installed (apt-get install docker-registry; .ci/run does)")
    reg = Registry(root, users)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()



def publish_ci(repo: Path, exported, versions: tuple[str, ...]) -> Path:
    """What CI built: these versions of the demo MLP, each with its own weights (seed 21, 22...)."""
    from tests.serve_fixtures.helpers import publish_copy

    for i, version in enumerate(versions):
        publish_copy(exported("demo:mlp", "pir", "1.0.0", 21 + i), repo, "mlp", version)
    return repo
