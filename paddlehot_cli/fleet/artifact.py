"""The OCI documents of one version: build them from a package (push), read them back (pull).

Layout: the config blob is the package's paddlehot.json (media type CONFIG); one layer per file
it lists (model, params, validation: their digests are the sha256 the package already records);
a version with plugins is an image index with one manifest per platform, each carrying the
package layers plus that architecture's plugin.so. Layers are shared, so a second architecture
costs one plugin upload.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME, Manifest, loads_manifest
from paddlehot_cli.core.signatures import is_signature_name
from paddlehot_cli.errors import PackageError
from paddlehot_cli.fleet import media
from paddlehot_cli.fleet.errors import NotAPackage

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


@dataclass(frozen=True)
class Blob:
    """A descriptor plus where its bytes are (a file on the pushing side)."""

    media_type: str
    digest: str
    size: int
    title: str = ""
    source: Path | bytes | None = None

    def descriptor(self) -> dict:
        doc: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.title:
            doc["annotations"] = {media.TITLE: self.title}
        return doc


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def image_manifest(config: Blob, layers: list[Blob], annotations: dict[str, str]) -> bytes:
    return _dumps({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "artifactType": media.ARTIFACT_TYPE,
        "config": config.descriptor(), "layers": [b.descriptor() for b in layers],
        "annotations": annotations,
    })


def image_index(entries: list[tuple[str, int, str]], annotations: dict[str, str]) -> bytes:
    """entries: (manifest digest, size, ELF arch)."""
    return _dumps({
        "schemaVersion": 2, "mediaType": media.OCI_INDEX, "artifactType": media.ARTIFACT_TYPE,
        "manifests": [{"mediaType": media.OCI_MANIFEST, "digest": d, "size": n,
                       "platform": {"os": "linux",
                                    "architecture": media.OCI_ARCH.get(arch, arch)}}
                      for d, n, arch in entries],
        "annotations": annotations,
    })


# -- reading ---------------------------------------------------------------------------------


def _doc(body: bytes, where: str) -> dict:
    try:
        doc = json.loads(body)
    except ValueError:
        raise NotAPackage(f"{where}: the manifest is not JSON") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise NotAPackage(f"{where}: not an OCI manifest (schemaVersion 2)")
    return doc


def kind_of(media_type: str, body: bytes, where: str) -> tuple[str, dict]:
    """('index' | 'manifest', document)."""
    doc = _doc(body, where)
    kind = doc.get("mediaType") or media_type
    if kind in (media.OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
        return "index", doc
    if kind in (media.OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"):
        return "manifest", doc
    raise NotAPackage(f"{where}: unsupported manifest media type '{kind}'")


def descriptor(raw: object, where: str) -> Blob:
    if not isinstance(raw, dict):
        raise NotAPackage(f"{where}: a descriptor is not an object")
    digest, size, mtype = raw.get("digest"), raw.get("size"), raw.get("mediaType")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise NotAPackage(f"{where}: descriptor digest {str(digest)[:80]!r} is not sha256")
    if not isinstance(size, int) or size < 0 or not isinstance(mtype, str):
        raise NotAPackage(f"{where}: descriptor {digest[:19]} has no valid size or media type")
    annotations = raw.get("annotations") if isinstance(raw.get("annotations"), dict) else {}
    return Blob(mtype, digest, size, str(annotations.get(media.TITLE, "")))


def pick_platform(index: dict, arch: str, where: str) -> Blob | None:
    """The index entry for linux/`arch`, or None when the version has no build for it."""
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise NotAPackage(f"{where}: the image index lists no manifests")
    want = media.OCI_ARCH.get(arch, arch)
    for raw in entries:
        plat = raw.get("platform") if isinstance(raw, dict) else None
        if isinstance(plat, dict) and plat.get("os") == "linux" and plat.get("architecture") == want:
            return descriptor(raw, where)
    return None


def package_layers(doc: dict, where: str) -> tuple[Blob, list[Blob]]:
    """(config, layers) of a paddlehot image manifest; refuses anything else."""
    config = descriptor(doc.get("config"), where)
    if config.media_type != media.CONFIG:
        raise NotAPackage(f"{where} is not a paddlehot package (config media type "
                          f"'{config.media_type[:80]}')",
                          hint="push versions with `paddlehot push`")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise NotAPackage(f"{where}: 'layers' is not a list")
    out = [descriptor(raw, where) for raw in layers]
    titles = [b.title for b in out]
    for title in titles:
        if not _FILE_RE.match(title) or title == MANIFEST_NAME:
            raise NotAPackage(f"{where}: layer file name {title[:80]!r} is not a plain file name")
    if len(set(titles)) != len(titles):
        raise NotAPackage(f"{where}: two layers have the same file name")
    return config, out


def read_package_manifest(config_bytes: bytes, where: str) -> Manifest:
    try:
        return loads_manifest(config_bytes, f"{where} ({MANIFEST_NAME})")
    except PackageError as exc:  # the config is not a valid paddlehot.json
        raise NotAPackage(exc.message) from None


def check_layers(manifest: Manifest, layers: list[Blob], where: str) -> None:
    """Every file the package lists is a layer with the digest and size the package records;
    the only other layer allowed is the plugin."""
    by_title = {b.title: b for b in layers}
    for fname, info in manifest.files.items():
        blob = by_title.get(fname)
        if blob is None:
            raise NotAPackage(f"{where}: the package lists '{fname}' but no layer carries it")
        if blob.digest != "sha256:" + info["sha256"] or blob.size != info["bytes"]:
            raise NotAPackage(f"{where}: layer '{fname}' ({blob.digest[:19]}, {blob.size} bytes) "
                              "does not match the package checksums")
    extra = [t for t, b in by_title.items() if t not in manifest.files and t != media.PLUGIN_FILE
             and not (b.media_type == media.SIGNATURE and is_signature_name(t))]
    if extra:
        raise NotAPackage(f"{where}: layer '{extra[0]}' is not part of the package")


def check_annotations(manifest: Manifest, docs: list[dict], model: str, where: str) -> None:
    """The package is the model the box asked for, and the version the artifact says it is:
    a repository cannot hand a box another model, nor a tag another version."""
    if manifest.name != model:
        raise NotAPackage(f"{where} holds a package named '{manifest.name}', not '{model}': "
                          "refused", hint=f"to install it as another model say so: "
                                          f"{manifest.name}=oci://...")
    said = [d["annotations"].get(media.VERSION) for d in docs
            if isinstance(d.get("annotations"), dict)]
    said = [v for v in said if v is not None]
    if not said or any(v != manifest.version for v in said):
        raise NotAPackage(f"{where}: the artifact says version {said[0] if said else '(none)'}, "
                          f"its {MANIFEST_NAME} says {manifest.version}: refused")
