"""Make swaps happen during a benchmark: publish a new version into the repository the server
(or the in-process Manager) watches. Each new version copies the weights of the previous-but-one
version, so consecutive versions differ and every response names the version that computed it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from paddlehot_cli.bench.targets import GrpcTarget, HttpTarget, ManagedTarget, Target
from paddlehot_cli.core.publish import publish_copy
from paddlehot_cli.core.repository import published_versions
from paddlehot_cli.core.versions import parse_semver
from paddlehot_cli.errors import UserError


class RepoPublisher:
    """`finish(staged)` completes each new version before its rename; swapper_for passes a
    plugin build when the published versions carry plugin.so (so plugin mode is soaked too)."""

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


def plugin_finisher(repo: Path, name: str) -> Callable[[Path], None] | None:
    """When the newest published version carries plugin.so, every version the swapper publishes
    gets its own (built in the staging dir, before the rename), so plugin mode is soaked too."""
    versions = published_versions(repo / name)
    if not versions or not (repo / name / versions[-1] / "plugin.so").is_file():
        return None

    def build(staged: Path) -> None:
        from paddlehot_cli.plugin.build import BuildRequest, build_plugin

        # no verification here: serve warms every version with its validation data anyway
        build_plugin(BuildRequest(package=staged, out=staged / "plugin.so", verify=False))

    return build


def swapper_for(target: Target, swap_repo: Path | None) -> RepoPublisher:
    """The publisher for `--swap-every`: into the repository an HTTP/gRPC server watches, or into
    the in-process Manager's."""
    if isinstance(target, (HttpTarget, GrpcTarget)):
        if swap_repo is None:
            raise UserError("--swap-every over HTTP or gRPC needs --swap-repo REPO (the "
                            "repository the server watches)")
        model = target.endpoint.model
        return RepoPublisher(swap_repo, model, plugin_finisher(swap_repo, model))
    if isinstance(target, ManagedTarget):
        return RepoPublisher(target.repo, target.name, plugin_finisher(target.repo, target.name))
    raise UserError("--swap-every needs REPO:NAME (in-process, through the core Manager) or an "
                    "http:// or grpc:// target",
                    hint="a package dir or a plugin has no versions to swap")
