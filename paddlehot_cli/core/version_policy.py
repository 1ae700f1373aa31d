"""Which available versions of a model should be loaded: the latest N, or a listed set.

`keep_previous` also keeps the newest version below the served ones loaded and warm, so that an
open breaker on the newest version rolls traffic back at once instead of after a reload.
Versions that failed to load (or were rejected) never count, so the last good one stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
        good = sorted((v for v in set(available) if v not in bad), key=sort_key, reverse=True)
        if self.versions is not None:
            chosen = [v for v in good if v in set(self.versions)]
            want = set(chosen)
        else:
            chosen = good[: self.latest]
            want = set(chosen)
            if self.keep_previous and len(good) > len(chosen):
                want.add(good[len(chosen)])
        want.update(v for v in pinned if v in good)
        return want

    def describe(self) -> str:
        if self.versions is not None:
            return "versions " + ", ".join(self.versions)
        return f"latest {self.latest}" + (" (+ previous, warm)" if self.keep_previous else "")
