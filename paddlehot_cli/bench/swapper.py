"""Make swaps happen during a benchmark: publish a new version into the repository the server
(or the in-process Manager) watches. Each new version copies the weights of the previous-but-one
version, so consecutive versions differ and every response names the version that computed it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from paddlehot_cli.core.publish import publish_copy
from paddlehot_cli.core.repository import published_versions
from paddlehot_cli.core.versions import parse_semver
from paddlehot_cli.errors import UserError


class RepoPublisher:
    """`finish(staged)` completes each new version before its rename; the CLI passes a plugin
    build when the published versions carry plugin.so (so plugin mode is soaked too)."""

    def __init__(self, repo: Path, name: str, finish: Callable[[Path], object] | None = None):
        self.repo = repo
        self.name = name
        self.finish = finish
        versions = published_versions(repo / name)
        if not versions:
            raise UserError(f"--swap-repo {repo} has no published version of '{name}'")
        self._sources = [repo / name / v for v in versions[-2:]]
        self._latest = parse_semver(versions[-1])
        self._turn = 0

    def __call__(self) -> str:
        major, minor, patch = self._latest
        self._latest = (major, minor, patch + 1)
        version = "{}.{}.{}".format(*self._latest)
        source = self._sources[self._turn % len(self._sources)]
        self._turn += 1
        publish_copy(source, self.repo, version, self.finish)
        return version
