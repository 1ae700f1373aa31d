"""`paddlehot pull` (and every pull of `serve --follow`): one version from a registry into REPO,
with its precision variants (the registry's VERSION-PRECISION tags, into VERSION/variants/).

The version is written into a hidden staging dir beside its final place; every blob is checked
against its digest while it streams, then the package checksums are verified as a loader would,
and only then is the dir renamed into place (core.publish). Files another local version of the
model already has (same sha256) are copied from disk instead of downloaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paddlehot_cli.core.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    read_manifest,
    read_verified,
)
from paddlehot_cli.core.plugin_abi import DIGEST_SUFFIX, host_arch
from paddlehot_cli.core.plugin_image import digest_line
from paddlehot_cli.core.precision_hardware import cpu_refusal
from paddlehot_cli.core.publish import commit, staging_dir
from paddlehot_cli.core.repository import published_versions
from paddlehot_cli.core.signatures import MAX_SIG_BYTES, SIG_DIR, Trust, add_signature
from paddlehot_cli.core.variants import (
    FP32,
    base_version,
    is_key,
    is_variant_key,
    variant_dir,
    variant_key,
)
from paddlehot_cli.core.versions import is_semver, sort_key
from paddlehot_cli.errors import UserError
from paddlehot_cli.fleet import artifact, media
from paddlehot_cli.fleet.client import CHUNK, RegistryClient
from paddlehot_cli.fleet.disk import check_free_space, disk_error
from paddlehot_cli.fleet.errors import (
    BadReference,
    FleetError,
    NotAPackage,
    RegistryHTTPError,
    TooLarge,
    Untrusted,
)
from paddlehot_cli.fleet.reference import Reference


@dataclass
class PullResult:
    reference: str
    name: str
    version: str
    path: Path
    digest: str  # of the tag's manifest or index
    plugin_arch: str | None  # the plugin that came with it, if any
    downloaded_bytes: int = 0
    reused_bytes: int = 0  # copied from other local versions instead of downloaded
    seconds: float = 0.0
    already_present: bool = False
    created: str = ""  # when push wrote the artifact (RFC 3339)
    note: str = ""
    added: list[str] = field(default_factory=list)  # to a version already here
    precision: str = FP32
    variants: list[PullResult] = field(default_factory=list)  # pulled with the version


@dataclass(frozen=True)
class Resolved:
    """What a tag points at, and the package it holds (no layer downloaded yet)."""

    ref: str  # the tag or digest asked for
    digest: str
    config: artifact.Blob
    config_bytes: bytes
    layers: list[artifact.Blob]
    name: str
    version: str
    plugin_arch: str | None
    created: str
    note: str
    precision: str = FP32  # a variant's (its tag is VERSION-PRECISION)

    @property
    def key(self) -> str:
        return variant_key(self.version, self.precision)


def range_spec(selector: str):
    from paddlehot_cli.core.router import parse_range

    try:
        return parse_range(selector)
    except ValueError as exc:
        raise BadReference(str(exc), hint="ranges look like ^1.2, ~1.2.3, >=1.2,<2 or 1.*") from None


def newest_tag(tags: list[str], selector: str | None = None) -> str | None:
    """The newest SemVer tag, within a SemVer range when one is given."""
    versions = [t for t in tags if is_semver(t)]
    if selector:
        spec = range_spec(selector)
        versions = [v for v in versions if spec.contains(v)]
    return max(versions, key=sort_key) if versions else None


def resolve(client: RegistryClient, ref: Reference, tag: str, arch: str | None = None) -> Resolved:
    """Fetch the manifest (and index) and the package's paddlehot.json for `tag`; refuse
    anything that is not a paddlehot version."""
    where = f"{ref.base}:{tag}" if not tag.startswith("sha256:") else f"{ref.base}@{tag}"
    arch = arch or host_arch()
    media_type, body, digest = client.get_manifest(ref.repository, tag)
    kind, doc = artifact.kind_of(media_type, body, where)
    docs = [doc]  # the index (if any) and the manifest: both must say the same version
    plugin_arch, note = None, ""
    if kind == "index":
        entry = artifact.pick_platform(doc, arch, where)
        if entry is None:  # the package layers are the same in every entry: take them only
            entry = artifact.descriptor(doc["manifests"][0], where)
            note = f"no {arch} plugin in this version: the package only"
        else:
            plugin_arch = arch
        media_type, body, _ = client.get_manifest(ref.repository, entry.digest)
        _, doc = artifact.kind_of(media_type, body, where)
        docs.append(doc)
    config, layers = artifact.package_layers(doc, where)
    if plugin_arch is None:  # neither the plugin nor its signatures
        layers = [b for b in layers if b.title != media.PLUGIN_FILE
                  and not b.title.startswith("plugin-")]
    elif not any(b.title == media.PLUGIN_FILE for b in layers):
        plugin_arch, note = None, f"the {arch} entry carries no plugin"
    config_bytes = client.fetch_blob_bytes(ref.repository, config.digest, config.size,
                                           MAX_MANIFEST_BYTES, f"{where} {MANIFEST_NAME}")
    manifest = artifact.read_package_manifest(config_bytes, where)
    held = variant_key(manifest.version, manifest.precision)
    if is_key(tag) and held != tag:  # nor a variant under its version's tag, or the reverse
        raise NotAPackage(f"{where} holds {manifest.name} {held}, not {tag}: refused")
    artifact.check_annotations(manifest, docs, ref.install_as, where)
    artifact.check_layers(manifest, layers, where)
    for blob in layers:
        if blob.media_type == media.SIGNATURE and blob.size > MAX_SIG_BYTES:
            raise TooLarge(f"{where}: signature '{blob.title}' is {blob.size} bytes, more than "
                           f"the {MAX_SIG_BYTES} allowed")
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    return Resolved(tag, digest, config, config_bytes, layers, manifest.name, manifest.version,
                    plugin_arch, str(annotations.get(media.CREATED, "")), note,
                    manifest.precision)


def _local_files(model_dir: Path) -> dict[str, Path]:
    """sha256 digest -> a file of a published local version (as its manifest records it)."""
    found: dict[str, Path] = {}
    for version in published_versions(model_dir):
        try:
            manifest = read_manifest(model_dir / version)
        except UserError:
            continue
        for fname, info in manifest.files.items():
            found.setdefault("sha256:" + info["sha256"], model_dir / version / fname)
    return found


def _local_plugin(model_dir: Path, blob: artifact.Blob) -> Path | None:
    for version in published_versions(model_dir):
        so = model_dir / version / media.PLUGIN_FILE
        if so.is_file() and so.stat().st_size == blob.size and _hash(so) == blob.digest:
            return so
    return None


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _copy_verified(src: Path, dest: Path, digest: str) -> bool:
    """Copy a local file, hashing while copying; keep it only if it hashes to `digest`."""
    h = hashlib.sha256()
    try:
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            while block := fin.read(CHUNK):
                h.update(block)
                fout.write(block)
    except OSError:
        dest.unlink(missing_ok=True)
        return False
    if "sha256:" + h.hexdigest() == digest:
        return True
    dest.unlink(missing_ok=True)
    return False


def _record_plugin_digest(staged: Path, layers: list) -> None:
    """Plugin hook (trusted plugins): the layer digest is the sha256 of the plugin.so just
    pulled; record it beside the file as build-plugin does, so `serve --prefer plugin` trusts
    exactly these bytes (core.plugin_loader.load_published_plugin)."""
    for blob in layers:
        if blob.title == media.PLUGIN_FILE and blob.digest.startswith("sha256:"):
            side = staged / (blob.title + DIGEST_SUFFIX)
            side.write_text(digest_line(blob.digest.removeprefix("sha256:"), blob.title))


def _layer_path(root: Path, blob: artifact.Blob) -> Path:
    """Where a layer lands in a version dir: signatures under signatures/, files beside the
    manifest (titles were checked to be plain file names)."""
    return root / SIG_DIR / blob.title if blob.media_type == media.SIGNATURE else root / blob.title


def pull_resolved(client: RegistryClient, ref: Reference, got: Resolved, repo: Path, *,
                  trust: Trust | None = None,
                  on_total: Callable[[int], None] | None = None,
                  progress: Callable[[int], None] | None = None) -> PullResult:
    start = time.perf_counter()
    model_dir = Path(repo) / got.name
    final = variant_dir(model_dir / got.version, got.precision)
    at = "@" if got.ref.startswith("sha256:") else ":"
    result = PullResult(f"{ref.base}{at}{got.ref}", got.name, got.version, final, got.digest,
                        got.plugin_arch, created=got.created, note=got.note,
                        downloaded_bytes=len(got.config_bytes),  # fetched by resolve()
                        precision=got.precision)
    if got.precision != FP32:
        _check_variant_base(model_dir / got.version, got, result)
    try:
        if final.exists():
            _check_present(final, got)
            result.added = add_to_present(client, ref, got, final, trust, result)
            result.already_present = not result.added
        else:
            _pull_new(client, ref, got, model_dir, final, trust, result, on_total, progress)
    except OSError as exc:
        raise disk_error(exc, f"{got.name} {got.version}", model_dir) from None
    result.seconds = time.perf_counter() - start
    return result


def _pull_new(client: RegistryClient, ref: Reference, got: Resolved, model_dir: Path,
              final: Path, trust: Trust | None, result: PullResult,
              on_total: Callable[[int], None] | None, progress: Callable[[int], None] | None
              ) -> None:
    local = _local_files(model_dir)
    with staging_dir(final) as staged:
        (staged / MANIFEST_NAME).write_bytes(got.config_bytes)
        if any(b.media_type == media.SIGNATURE for b in got.layers):
            (staged / SIG_DIR).mkdir()
        todo = []
        for blob in got.layers:
            src = local.get(blob.digest) or (
                _local_plugin(model_dir, blob) if blob.title == media.PLUGIN_FILE else None)
            if src is not None and _copy_verified(src, staged / blob.title, blob.digest):
                result.reused_bytes += blob.size
            else:
                todo.append(blob)
        check_free_space(staged, sum(b.size for b in todo), f"{got.name} {got.version}")
        if on_total is not None:
            on_total(sum(b.size for b in todo))
        for blob in todo:
            with open(_layer_path(staged, blob), "wb") as out:
                result.downloaded_bytes += client.fetch_blob(
                    ref.repository, blob.digest, blob.size, out, progress,
                    what=f"'{blob.title}' of {got.name} {got.version}")
        read_verified(staged)  # the package's own checksums, as every loader checks them
        if trust is not None:
            _check_trust(trust, staged, got)
        _record_plugin_digest(staged, got.layers)
        commit(staged, final)


def _check_trust(trust: Trust, vdir: Path, got: Resolved) -> None:
    why = trust.check_version(vdir, got.name, got.version)
    if why is not None:
        raise Untrusted(f"{got.name} {got.version}: {why}")


def add_to_present(client: RegistryClient, ref: Reference, got: Resolved, final: Path,
                   trust: Trust | None, result: PullResult) -> list[str]:
    """A version already here gets what was added to it in the registry since: signatures
    (another key) and this arch's plugin. Signatures go in first, the plugin last (one
    rename), so a verifier never sees the plugin without them; nothing there is rewritten."""
    sig_dir = final / SIG_DIR
    new_sigs = [b for b in got.layers if b.media_type == media.SIGNATURE
                and not (sig_dir / b.title).exists()]
    plugin = next((b for b in got.layers if b.title == media.PLUGIN_FILE), None)
    if plugin is not None and (final / media.PLUGIN_FILE).exists():
        plugin = None
    if not new_sigs and plugin is None:
        return []
    with tempfile.TemporaryDirectory(prefix=".add-", dir=final) as tmp:
        staged = Path(tmp)
        (staged / SIG_DIR).mkdir()
        for blob in [*new_sigs, *([plugin] if plugin else [])]:
            with open(_layer_path(staged, blob), "wb") as out:
                result.downloaded_bytes += client.fetch_blob(
                    ref.repository, blob.digest, blob.size, out,
                    what=f"'{blob.title}' of {got.name} {got.version}")
        if trust is not None and plugin is not None:  # the new plugin with every signature
            for blob in got.layers:
                src = sig_dir / blob.title
                if blob.media_type == media.SIGNATURE and src.is_file():
                    shutil.copyfile(src, staged / SIG_DIR / blob.title)
            shutil.copyfile(final / MANIFEST_NAME, staged / MANIFEST_NAME)
            _check_trust(trust, staged, got)
        for blob in new_sigs:
            add_signature(final, (staged / SIG_DIR / blob.title).read_bytes())
        if plugin is not None:
            _record_plugin_digest(final, [plugin])
            os.replace(staged / media.PLUGIN_FILE, final / media.PLUGIN_FILE)
    return ([f"{got.plugin_arch} plugin"] if plugin else []) + (
        [f"{len(new_sigs)} signature(s)"] if new_sigs else [])


def _check_variant_base(vdir: Path, got: Resolved, result: PullResult) -> None:
    """A variant lands inside its fp32 version (validated against it, bf16 runs its files): that
    version must be here. Says so when this box cannot run the variant (serve refuses it)."""
    if not (vdir / MANIFEST_NAME).is_file():
        raise FleetError(f"{got.name} {got.key} is a variant of {got.version}, which is not in "
                         f"{vdir.parent}", hint=f"pull {got.version} first (it brings its "
                         "variants)")
    why = cpu_refusal(artifact.read_package_manifest(got.config_bytes, got.ref).requires,
                      got.precision)
    if why is not None:
        result.note = f"this box cannot run it ({why}): serve will list it as UNAVAILABLE"


def _check_present(final: Path, got: Resolved) -> None:
    """A version already in REPO must be the one in the registry: never modified in place."""
    try:
        same = (final / MANIFEST_NAME).read_bytes() == got.config_bytes
    except OSError:
        same = False
    if not same:
        raise FleetError(f"{final} already exists and differs from {got.ref} in the registry; "
                         "a published version is never modified",
                         hint="remove the local version first if it is not serving")


def pull_version(ref: Reference, repo: Path, *, insecure: bool = False,
                 trust: Trust | None = None, on_total: Callable[[int], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> PullResult:
    """The `pull` verb: resolve the tag (newest SemVer tag by default), then pull it."""
    try:  # created like export --repo creates it
        Path(repo).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--repo {repo} is not a directory") from None
    except OSError as exc:
        raise UserError(f"cannot create --repo {repo}: {exc.strerror}") from None
    with RegistryClient(ref.registry, insecure=insecure) as client:
        client.ping()
        tag = ref.digest or ref.tag
        tags: list[str] | None = None
        if tag is None:
            try:
                tags = client.list_tags(ref.repository)
            except RegistryHTTPError as exc:
                if exc.status == 404:
                    raise FleetError(f"{ref.base} does not exist in the registry") from None
                raise
            tag = newest_tag(tags, ref.range)
            if tag is None:
                raise FleetError(f"{ref} has no SemVer version tag"
                                 + (f" in range {ref.range}" if ref.range else ""))
        got = resolve(client, ref, tag)
        if got.precision != FP32 and not (Path(repo) / got.name / got.version).is_dir():
            base = resolve(client, ref, got.version)  # a variant alone: its version first
            result = pull_resolved(client, ref, base, repo, trust=trust)
            result.variants.append(pull_resolved(client, ref, got, repo, trust=trust))
            return result
        result = pull_resolved(client, ref, got, repo, trust=trust, on_total=on_total,
                               progress=progress)
        if got.precision == FP32:
            result.variants = pull_variants(client, ref, got, repo, trust, tags)
        return result


def pull_variants(client: RegistryClient, ref: Reference, got: Resolved, repo: Path,
                  trust: Trust | None, tags: list[str] | None = None) -> list[PullResult]:
    """The variants of a version just pulled: the registry's tags VERSION-PRECISION."""
    if tags is None:
        tags = client.list_tags(ref.repository)
    keys = sorted(t for t in tags if is_variant_key(t) and base_version(t) == got.version)
    return [pull_resolved(client, ref, resolve(client, ref, key), repo, trust=trust)
            for key in keys]
