"""Which available versions of a model should be loaded: the latest N, or a listed set.

`keep_previous` also keeps the newest version below the served ones loaded and warm, so that an
open breaker on the newest version rolls traffic back at once instead of after a reload.
Versions that failed to load (or were rejected) never count, so the last good one stays.
A precision variant (`1.2.0-int8`, docs/variants.md) is aspired with its version, and never
counts as one of the latest N.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from paddlehot_cli.core.variants import base_version, is_variant_key
from paddlehot_cli.core.versions import is_semver, sort_key
from paddlehot_cli.errors import UserError


@dataclass(frozen=True)
class VersionPolicy:
    latest: int = 1
    versions: tuple[str, ...] | None = None  # listed versions instead of the latest N
    keep_previous: bool = True

    def __post_init__(self) -> None:
        if self.latest < 1:
            raise UserError("--max-versions must be at least 1")
        for v in self.versions or ():
            if not is_semver(v):
                raise UserError(f"invalid version '{v}' in --versions", hint="use MAJOR.MINOR.PATCH")

    def aspired(self, available: Iterable[str], failed: Iterable[str] = (),
                pinned: Iterable[str] = ()) -> set[str]:
        """The versions to have loaded, given what is on disk, what failed, and label pins."""
        bad = set(failed)
        available = set(available)
        variants = {v for v in available if is_variant_key(v) and v not in bad}
        good = sorted((v for v in available - variants if v not in bad), key=sort_key,
                      reverse=True)
        if self.versions is not None:
            chosen = [v for v in good if v in set(self.versions)]
            want = set(chosen)
        else:
            chosen = good[: self.latest]
            want = set(chosen)
            if self.keep_previous and len(good) > len(chosen):
                want.add(good[len(chosen)])
        want.update(v for v in pinned if v in good or v in variants)
        want.update(v for v in variants if base_version(v) in want)
        return want

    def describe(self) -> str:
        if self.versions is not None:
            return "versions " + ", ".join(self.versions)
        return f"latest {self.latest}" + (" (+ previous, warm)" if self.keep_previous else "")
