"""`REPO:NAME[@VERSION]` names a version in a repository (the latest SemVer one by default)."""

from __future__ import annotations

from pathlib import Path

from paddlehot_cli.core.manifest import MANIFEST_NAME
from paddlehot_cli.core.versions import check_model_name, is_semver, sort_key
from paddlehot_cli.errors import UserError


def published_versions(model_dir: Path) -> list[str]:
    """SemVer version dirs with a manifest, oldest first; hidden staging dirs are ignored."""
    if not model_dir.is_dir():
        return []
    versions = [p.name for p in model_dir.iterdir()
                if is_semver(p.name) and (p / MANIFEST_NAME).is_file()]
    return sorted(versions, key=sort_key)


def resolve_repo_target(spec: str) -> Path:
    repo_text, _, rest = spec.rpartition(":")
    name, _, version = rest.partition("@")
    repo = Path(repo_text)
    if not repo.is_dir():
        raise UserError(f"no such repository: {repo}")
    check_model_name(name)
    versions = published_versions(repo / name)
    if not versions:
        raise UserError(f"repository {repo} has no published version of '{name}'")
    if version:
        if version not in versions:
            raise UserError(f"'{name}' has no version {version} in {repo}",
                            hint="published: " + ", ".join(versions))
        return repo / name / version
    return repo / name / versions[-1]
