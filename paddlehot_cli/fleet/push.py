"""`paddlehot push`: one published version (and its plugins) -> one OCI artifact under its version
tag; `--tag` labels move to it. Blobs the registry already has are not uploaded again.

Its precision variants travel as artifacts of their own under their keys (`1.2.0-int8`), never
as layers of the version's: see docs/variants.md ("Registries") for why."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME, Manifest, read_verified, sha256_file
from paddlehot_cli.core.plugin_identity import plugin_arch
from paddlehot_cli.core.repository import resolve_version
from paddlehot_cli.core.variants import FP32, variant_dir, variant_key, variant_precisions
from paddlehot_cli.fleet import artifact, media
from paddlehot_cli.fleet.client import RegistryClient, sha256_digest
from paddlehot_cli.fleet.errors import BadReference, FleetError, RegistryHTTPError
from paddlehot_cli.fleet.push_plan import Conflict, Entries, merge
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
    added: list[str] = field(default_factory=list)  # to a version already in the registry
    labels_followed: list[str] = field(default_factory=list)  # labels moved along with `added`
    name: str = ""  # the package's model name
    variants: list[PushResult] = field(default_factory=list)  # pushed with the version
    body: bytes | None = field(default=None, repr=False)  # the tag's manifest, when unchanged


def _plugin_blob(path: Path, manifest: Manifest) -> tuple[str, artifact.Blob]:
    """(arch, blob) of a plugin built from exactly this version; refuses any other .so."""
    arch = plugin_arch(Path(path), manifest.name, manifest.version, manifest.precision)
    return arch, artifact.Blob(media.PLUGIN, "sha256:" + sha256_file(path), path.stat().st_size,
                               media.PLUGIN_FILE, path)


def _package_blobs(vdir: Path, manifest: Manifest) -> tuple[artifact.Blob, list[artifact.Blob]]:
    config_bytes = (vdir / MANIFEST_NAME).read_bytes()
    config = artifact.Blob(media.CONFIG, sha256_digest(config_bytes), len(config_bytes),
                           source=config_bytes)
    layers = [artifact.Blob(media.media_type(f, manifest.format), "sha256:" + info["sha256"],
                            info["bytes"], f, vdir / f)
              for f, info in sorted(manifest.files.items())]
    return config, layers


def _signature_blobs(vdir: Path, builds: dict[str, artifact.Blob]) -> Entries:
    """The version's signature files as layers: manifest signatures for every entry, a plugin's
    signatures for its arch's entry (only those that sign the very bytes pushed)."""
    from paddlehot_cli.core.signatures import Signature, read_signatures

    out: Entries = {arch: [] for arch in builds} or {"": []}
    for name, sig in read_signatures(vdir):
        if not isinstance(sig, Signature):
            raise FleetError(f"{vdir}/signatures/{name}: {sig}")
        data = (vdir / "signatures" / name).read_bytes()
        blob = artifact.Blob(media.SIGNATURE, sha256_digest(data), len(data), name, data)
        for arch, plugin in builds.items() if builds else [("", None)]:
            if sig.subject.kind == "manifest" or (
                    plugin is not None and "sha256:" + sig.subject.sha256 == plugin.digest):
                out[arch].append(blob)
    return out


def _wanted(layers: list[artifact.Blob], builds: dict[str, artifact.Blob],
            sigs: Entries) -> Entries:
    if not builds:
        return {"": [*layers, *sigs[""]]}
    return {arch: [*layers, plugin, *sigs[arch]] for arch, plugin in builds.items()}


def _existing(client: RegistryClient, repo: str, tag: str) -> tuple[str, bytes] | None:
    try:
        _, body, digest = client.get_manifest(repo, tag)
    except RegistryHTTPError as exc:
        if exc.status == 404:
            return None
        raise
    return digest, body


def _read_entries(client: RegistryClient, repo: str, body: bytes, where: str
                  ) -> tuple[str, dict[str, str], Entries]:
    """(config digest, annotations, entries) of an artifact already in the registry."""
    kind, doc = artifact.kind_of("", body, where)
    docs = {"": doc}
    if kind == "index":
        docs = {}
        for raw in doc.get("manifests") or []:
            entry = artifact.descriptor(raw, where)
            plat = raw.get("platform") or {}
            arch = media.ELF_ARCH.get(plat.get("architecture"), str(plat.get("architecture")))
            _, mbody, _ = client.get_manifest(repo, entry.digest)
            docs[arch] = artifact.kind_of("", mbody, where)[1]
    configs = {(d.get("config") or {}).get("digest") for d in docs.values()}
    entries = {arch: [artifact.descriptor(raw, where) for raw in d.get("layers") or []]
               for arch, d in docs.items()}
    notes = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    return (configs.pop() if len(configs) == 1 else ""), notes, entries


def push_version(spec: str, target: Reference, *, plugins: list[Path] = (), tags: list[str] = (),
                 insecure: bool = False, force: bool = False, sign_key: Path | None = None,
                 on_total: Callable[[int], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> PushResult:
    """Push a version and, under their own tags (VERSION-PRECISION, docs/variants.md), each of
    its precision variants; or one variant when `spec` names it (REPO:NAME@1.2.0-int8)."""
    start = time.perf_counter()
    if target.range or target.digest:
        raise BadReference(f"push to {target.base}, not to a range or digest")
    vdir = resolve_version(spec)
    manifest = read_verified(vdir)
    key = variant_key(manifest.version, manifest.precision)
    if target.tag and target.tag != key:
        raise BadReference(f"the tag of a pushed version is its version ({key}), "
                           f"not '{target.tag}'", hint="use --tag LABEL to move a label")
    for tag in tags:
        if not is_label(check_tag(tag, "--tag")):
            raise BadReference(f"--tag {tag}: version tags are immutable; move a label instead",
                               hint="--tag stable")
    variants = [] if manifest.precision != FP32 else [
        variant_dir(vdir, p) for p in variant_precisions(vdir)]
    variant_manifests = [read_verified(v) for v in variants]  # all whole before any upload
    if sign_key is not None:
        from paddlehot_cli.core.signatures import sign_version

        sign_version(vdir, sign_key, [Path(p) for p in plugins])
        for v in variants:
            sign_version(v, sign_key)
    with RegistryClient(target.registry, insecure=insecure) as client:
        client.ping()
        result = _push_one(client, target, vdir, manifest, [Path(p) for p in plugins], force,
                           on_total, progress)
        for v, vm in zip(variants, variant_manifests, strict=True):
            result.variants.append(_push_one(client, target, v, vm, [], force, None, None))
        for tag in tags:
            _retag(client, target.repository, result.digest, result.body, tag)
        result.tags += list(tags)
    result.seconds = time.perf_counter() - start
    return result


def _push_one(client: RegistryClient, target: Reference, vdir: Path, manifest: Manifest,
              plugins: list[Path], force: bool, on_total: Callable[[int], None] | None,
              progress: Callable[[int], None] | None) -> PushResult:
    """One artifact: a version (or a variant) and its plugins under its immutable tag."""
    key = variant_key(manifest.version, manifest.precision)
    config, layers = _package_blobs(vdir, manifest)
    builds: dict[str, artifact.Blob] = {}
    candidates = ([vdir / media.PLUGIN_FILE] if (vdir / media.PLUGIN_FILE).is_file() else [])
    for path in [*candidates, *plugins]:
        arch, blob = _plugin_blob(Path(path), manifest)
        if arch in builds and builds[arch].digest != blob.digest:
            raise FleetError(f"two different {arch} plugins given ({builds[arch].source}, {path})")
        builds[arch] = blob
    wanted = _wanted(layers, builds, _signature_blobs(vdir, builds))
    repo = target.repository
    result = PushResult(f"{target.base}:{key}", key, "", sorted(builds), tags=[key],
                        name=manifest.name)
    notes = {media.CREATED: artifact.now_rfc3339(), media.VERSION: manifest.version,
             media.MODEL_NAME: manifest.name}
    if manifest.precision != FP32:  # the puller reads it before any layer (and the config)
        notes[media.PRECISION] = manifest.precision
    existing = _existing(client, repo, key)
    if existing is not None and not force:
        config_digest, old_notes, old = _read_entries(client, repo, existing[1], result.reference)
        if config_digest != config.digest:
            raise Conflict(
                f"{result.reference} already exists with different content (another "
                f"{MANIFEST_NAME}); a published version is never modified",
                hint="bump the version, or pass --force to replace the tag")
        wanted, result.added = merge(old, wanted, result.reference)
        notes = {**old_notes, **{k: v for k, v in notes.items() if k not in old_notes}}
        if not result.added:
            result.digest, result.already_there, result.body = existing[0], True, existing[1]
    if result.body is None:
        result.platforms = sorted(a for a in wanted if a)
        result.digest = _upload(client, repo, key, config, wanted, notes, result, on_total,
                                progress)
        if existing is not None and result.added:
            result.labels_followed = _move_labels(client, repo, existing[0], result.digest)
    return result


def _move_labels(client: RegistryClient, repo: str, old: str, new: str) -> list[str]:
    """Labels that named the version's artifact before this push added to it (an architecture,
    signatures) now name the new one: a label names a version, and boxes following it must see
    what was added (an aarch64 box following `stable` gets the aarch64 plugin pushed later).
    Only additions move labels; a --force replacement leaves them where they were."""
    moved = []
    for tag in client.list_tags(repo):
        if is_label(tag) and client.get_manifest(repo, tag)[2] == old:
            _retag(client, repo, new, None, tag)
            moved.append(tag)
    return moved


def _upload(client: RegistryClient, repo: str, version: str, config: artifact.Blob,
            entries: Entries, notes: dict[str, str], result: PushResult,
            on_total: Callable[[int], None] | None, progress: Callable[[int], None] | None) -> str:
    blobs = list({b.digest: b for b in [config, *(b for ls in entries.values() for b in ls)]}
                 .values())
    missing = [b for b in blobs if not client.blob_exists(repo, b.digest)]
    result.skipped_bytes = sum(b.size for b in blobs if b not in missing)
    if on_total is not None:
        on_total(sum(b.size for b in missing))
    for blob in missing:
        if blob.source is None:
            raise FleetError(f"blob {blob.digest[:19]} ('{blob.title}') is listed in the registry's "
                             "artifact but missing from it", hint="push with --force")
        client.upload_blob(repo, blob.digest, blob.size, blob.source, progress)
        result.uploaded_bytes += blob.size
    if list(entries) == [""]:
        body = artifact.image_manifest(config, entries[""], notes)
        return client.put_manifest(repo, version, body, media.OCI_MANIFEST)
    refs = []
    for arch, layers in sorted(entries.items()):
        body = artifact.image_manifest(config, layers, {**notes, media.PLUGIN_ARCH: arch})
        digest = client.put_manifest(repo, sha256_digest(body), body, media.OCI_MANIFEST)
        refs.append((digest, len(body), arch))
    index = artifact.image_index(refs, notes)
    return client.put_manifest(repo, version, index, media.OCI_INDEX)


def _retag(client: RegistryClient, repo: str, digest: str, body: bytes | None, tag: str) -> None:
    """Point `tag` at the artifact `digest` (re-PUT the same bytes under the new tag)."""
    if body is None:
        _, body, _ = client.get_manifest(repo, digest)
    kind, _ = artifact.kind_of("", body, repo)
    client.put_manifest(repo, tag, body, media.OCI_INDEX if kind == "index" else media.OCI_MANIFEST)
