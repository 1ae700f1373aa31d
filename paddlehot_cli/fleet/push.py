"""`paddlehot push`: one published version (and its plugins) -> one OCI artifact under its version
tag; `--tag` labels move to it. Blobs the registry already has are not uploaded again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paddlehot_cli.core.elf_facts import read_elf
from paddlehot_cli.core.manifest import MANIFEST_NAME, Manifest, read_verified, sha256_file
from paddlehot_cli.core.plugin_abi import MANIFEST_SECTION
from paddlehot_cli.core.repository import resolve_version
from paddlehot_cli.fleet import artifact, media
from paddlehot_cli.fleet.client import RegistryClient, sha256_digest
from paddlehot_cli.fleet.errors import BadReference, FleetError, RegistryHTTPError
from paddlehot_cli.fleet.reference import Reference, check_tag, is_label


@dataclass
class PushResult:
    reference: str
    version: str
    digest: str
    platforms: list[str]
    uploaded_bytes: int = 0
    skipped_bytes: int = 0  # already in the registry
    seconds: float = 0.0
    tags: list[str] = field(default_factory=list)
    already_there: bool = False


def _plugin_blob(path: Path, manifest: Manifest) -> tuple[str, artifact.Blob]:
    """(arch, blob) of a plugin built from exactly this version; refuses any other .so."""
    if not path.is_file():
        raise FleetError(f"no such plugin file: {path}")
    facts = read_elf(path)
    raw = facts.read_section(MANIFEST_SECTION, 4 * 1024 * 1024)
    try:
        pm = json.loads(raw.rstrip(b"\0")) if raw else None
    except ValueError:
        pm = None
    if not isinstance(pm, dict) or "plugin" not in pm:
        raise FleetError(f"{path} is not a paddlehot plugin (no {MANIFEST_SECTION} section)")
    if (pm.get("name"), pm.get("version")) != (manifest.name, manifest.version):
        raise FleetError(f"{path} was built from {pm.get('name')} {pm.get('version')}, "
                         f"not {manifest.name} {manifest.version}")
    if facts.machine not in media.OCI_ARCH:
        raise FleetError(f"{path}: unsupported architecture {facts.machine}")
    size = path.stat().st_size
    return facts.machine, artifact.Blob(media.PLUGIN, "sha256:" + sha256_file(path), size,
                                        media.PLUGIN_FILE, path)


def _package_blobs(vdir: Path, manifest: Manifest) -> tuple[artifact.Blob, list[artifact.Blob]]:
    config_bytes = (vdir / MANIFEST_NAME).read_bytes()
    config = artifact.Blob(media.CONFIG, sha256_digest(config_bytes), len(config_bytes),
                           source=config_bytes)
    layers = [artifact.Blob(media.media_type(f, manifest.format), "sha256:" + info["sha256"],
                            info["bytes"], f, vdir / f)
              for f, info in sorted(manifest.files.items())]
    return config, layers


def _existing(client: RegistryClient, repo: str, tag: str) -> tuple[str, bytes] | None:
    try:
        _, body, digest = client.get_manifest(repo, tag)
    except RegistryHTTPError as exc:
        if exc.status == 404:
            return None
        raise
    return digest, body


def _same_package(client: RegistryClient, repo: str, body: bytes, config_digest: str) -> bool:
    """Whether an existing artifact carries the same paddlehot.json (hence the same files)."""
    kind, doc = artifact.kind_of("", body, repo)
    if kind == "index":
        first = artifact.descriptor((doc.get("manifests") or [None])[0], repo)
        _, body, _ = client.get_manifest(repo, first.digest)
        kind, doc = artifact.kind_of("", body, repo)
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    return config.get("digest") == config_digest


def push_version(spec: str, target: Reference, *, plugins: list[Path] = (), tags: list[str] = (),
                 insecure: bool = False, force: bool = False,
                 on_total: Callable[[int], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> PushResult:
    start = time.perf_counter()
    if target.range or target.digest:
        raise BadReference(f"push to {target.base}, not to a range or digest")
    vdir = resolve_version(spec)
    manifest = read_verified(vdir)
    if target.tag and target.tag != manifest.version:
        raise BadReference(f"the tag of a pushed version is its version ({manifest.version}), "
                           f"not '{target.tag}'", hint="use --tag LABEL to move a label")
    for tag in tags:
        if not is_label(check_tag(tag, "--tag")):
            raise BadReference(f"--tag {tag}: version tags are immutable; move a label instead",
                               hint="--tag stable")
    config, layers = _package_blobs(vdir, manifest)
    builds: dict[str, artifact.Blob] = {}
    candidates = ([vdir / media.PLUGIN_FILE] if (vdir / media.PLUGIN_FILE).is_file() else [])
    for path in [*candidates, *plugins]:
        arch, blob = _plugin_blob(Path(path), manifest)
        if arch in builds and builds[arch].digest != blob.digest:
            raise FleetError(f"two different {arch} plugins given ({builds[arch].source}, {path})")
        builds[arch] = blob
    repo = target.repository
    result = PushResult(f"{target.base}:{manifest.version}", manifest.version, "",
                        sorted(builds), tags=[manifest.version, *tags])
    with RegistryClient(target.registry, insecure=insecure) as client:
        client.ping()
        existing = _existing(client, repo, manifest.version)
        if existing is not None and not force:
            if not _same_package(client, repo, existing[1], config.digest):
                raise FleetError(
                    f"{result.reference} already exists with different content; "
                    "a published version is never modified",
                    hint="bump the version, or pass --force to replace the tag")
            result.digest, result.already_there = existing[0], True
        else:
            result.digest = _upload(client, repo, manifest, config, layers, builds, result,
                                    on_total, progress)
        body = existing[1] if result.already_there else None
        for tag in tags:
            _retag(client, repo, result.digest, body, tag)
    result.seconds = time.perf_counter() - start
    return result


def _upload(client: RegistryClient, repo: str, manifest: Manifest, config: artifact.Blob,
            layers: list[artifact.Blob], builds: dict[str, artifact.Blob], result: PushResult,
            on_total: Callable[[int], None] | None, progress: Callable[[int], None] | None) -> str:
    blobs = [config, *layers, *builds.values()]
    missing = [b for b in blobs if not client.blob_exists(repo, b.digest)]
    result.skipped_bytes = sum(b.size for b in blobs if b not in missing)
    if on_total is not None:
        on_total(sum(b.size for b in missing))
    for blob in missing:
        client.upload_blob(repo, blob.digest, blob.size, blob.source, progress)
        result.uploaded_bytes += blob.size
    notes = {media.CREATED: artifact.now_rfc3339(), media.VERSION: manifest.version,
             "vnd.paddlehot.model": manifest.name}
    if not builds:
        body = artifact.image_manifest(config, layers, notes)
        return client.put_manifest(repo, manifest.version, body, media.OCI_MANIFEST)
    entries = []
    for arch, plugin in sorted(builds.items()):
        body = artifact.image_manifest(config, [*layers, plugin],
                                       {**notes, "vnd.paddlehot.plugin.arch": arch})
        digest = client.put_manifest(repo, sha256_digest(body), body, media.OCI_MANIFEST)
        entries.append((digest, len(body), arch))
    index = artifact.image_index(entries, notes)
    return client.put_manifest(repo, manifest.version, index, media.OCI_INDEX)


def _retag(client: RegistryClient, repo: str, digest: str, body: bytes | None, tag: str) -> None:
    """Point `tag` at the artifact `digest` (re-PUT the same bytes under the new tag)."""
    if body is None:
        _, body, _ = client.get_manifest(repo, digest)
    kind, _ = artifact.kind_of("", body, repo)
    client.put_manifest(repo, tag, body, media.OCI_INDEX if kind == "index" else media.OCI_MANIFEST)
