"""What a push of a version that is already in the registry adds: pure, no network.

A version's artifact is a set of entries, one per plugin architecture ('' when the version has
no plugin), each a list of layers: the package files, that arch's plugin.so, and signature
layers. A push may only add to it: a new architecture (its plugin and signatures), or new
signatures (another key, a plugin signed later). The package itself and an architecture's plugin
never change under a version tag; a push that would change them is a Conflict.
"""

from __future__ import annotations

from paddlehot_cli.fleet import media
from paddlehot_cli.fleet.artifact import Blob
from paddlehot_cli.fleet.errors import FleetError

Entries = dict[str, list[Blob]]  # ELF arch ('' = no plugin) -> layers after the config


class Conflict(FleetError):
    reason = "conflict"


def _plugin(layers: list[Blob]) -> Blob | None:
    return next((b for b in layers if b.title == media.PLUGIN_FILE), None)


def _manifest_sigs(entries: Entries) -> list[Blob]:
    return [b for layers in entries.values() for b in layers
            if b.media_type == media.SIGNATURE and b.title.startswith("manifest.")]


def _union(first: list[Blob], second: list[Blob], where: str) -> list[Blob]:
    by_title = {b.title: b for b in first}
    out = list(first)
    for blob in second:
        have = by_title.get(blob.title)
        if have is None:
            by_title[blob.title] = blob
            out.append(blob)
        elif have.digest != blob.digest:
            raise Conflict(f"{where}: '{blob.title}' in the registry ({have.digest[:19]}) differs "
                           f"from the one pushed ({blob.digest[:19]}); a published version is "
                           "never modified", hint="pass --force to replace the tag")
    return out


def merge(existing: Entries, wanted: Entries, where: str) -> tuple[Entries, list[str]]:
    """(the entries to publish, what they add to `existing`, e.g. ['aarch64 plugin',
    '1 signature']; empty: nothing). Raises Conflict when an arch's plugin differs. A
    package-only entry ('') gives way to platform entries: each of them carries the package."""
    arches = sorted({a for a in existing if a} | {a for a in wanted if a}) or [""]
    shared = _union(_manifest_sigs(existing), _manifest_sigs(wanted), where)
    merged: Entries = {}
    added: list[str] = []
    for arch in arches:
        old, new = existing.get(arch), wanted.get(arch)
        theirs, ours = _plugin(old or []), _plugin(new or [])
        if theirs is not None and ours is not None and theirs.digest != ours.digest:
            raise Conflict(
                f"{where}: the {arch} plugin in the registry ({theirs.digest[:19]}) differs from "
                f"{ours.source} ({ours.digest[:19]}); a published version is never modified",
                hint="rebuild under a new version, or pass --force to replace the tag")
        if arch and old is None:
            added.append(f"{arch} plugin")
        merged[arch] = _union(_union(old or [], new or [], where), shared, where)
    before = {b.digest for layers in existing.values() for b in layers}
    new_sigs = {b.digest for layers in merged.values() for b in layers
                if b.media_type == media.SIGNATURE} - before
    if new_sigs:
        added.append(f"{len(new_sigs)} signature{'s' if len(new_sigs) > 1 else ''}")
    return merged, added
