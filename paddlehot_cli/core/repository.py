"""A model repository on disk: REPO/NAME/VERSION/ with SemVer version dirs.

Hidden dirs (a publish in progress) are never versions; a version is published once its manifest
is present (readers that serve it still verify every checksum).
"""

from __future__ import annotations

from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME
from paddlehot_cli.core.variants import split_key, variant_dir
from paddlehot_cli.core.versions import check_model_name, is_semver, sort_key
from paddlehot_cli.errors import PackageError, UserError


def published_versions(model_dir: Path) -> list[str]:
    """SemVer version dirs with a manifest, oldest first."""
    if not model_dir.is_dir():
        return []
    versions = [p.name for p in model_dir.iterdir()
                if p.is_dir() and is_semver(p.name) and (p / MANIFEST_NAME).is_file()]
    return sorted(versions, key=sort_key)


def resolve_version(spec: str) -> Path:
    """`REPO:NAME[@VERSION]` -> the version dir (the latest SemVer one without @VERSION);
    `@1.2.0-int8` -> that version's int8 variant dir."""
    repo_text, _, ref = spec.rpartition(":")
    name, _, version = ref.partition("@")
    repo = Path(repo_text)
    if not repo.is_dir():
        raise UserError(f"no such repository directory: {repo}")
    if not name:
        raise UserError(f"malformed target '{spec}'", hint="write REPO:NAME or REPO:NAME@VERSION")
    check_model_name(name)
    parts = split_key(version) if version else None
    if version and parts is None:
        raise UserError(f"invalid version '{version}' in '{spec}'",
                        hint="use MAJOR.MINOR.PATCH, or MAJOR.MINOR.PATCH-PRECISION for a variant")
    versions = published_versions(repo / name)
    if not versions:
        raise PackageError(f"repository {repo} has no published version of '{name}'")
    if parts is None:
        return repo / name / versions[-1]
    version, precision = parts
    if version not in versions:
        raise PackageError(f"repository {repo} has no version {version} of '{name}'",
                           hint="published: " + ", ".join(versions))
    found = variant_dir(repo / name / version, precision)
    if not (found / MANIFEST_NAME).is_file():
        raise PackageError(f"version {version} of '{name}' has no {precision} variant",
                           hint="derive one with `paddlehot variant`")
    return found
