"""What a swap policy sees (a snapshot per version) and what it may ask for (an action)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VersionSnapshot:
    """One version of one model, as the policy sees it."""

    version: str
    aspired: bool  # the version policy (latest N, pins, labels) wants it loaded
    loaded: bool  # loaded, warmed and routable
    healthy: bool = False  # loaded and its breaker is closed


@dataclass(frozen=True)
class Load:
    """Load and warm `version`; the Manager flips routing to it once it is warm."""

    version: str


@dataclass(frozen=True)
class Unload:
    """Take `version` out of routing and release it after its last request. `drain=True`:
    wait for that release before the next action (its memory is needed for a load)."""

    version: str
    drain: bool = False


Action = Load | Unload


class SwapPolicy(Protocol):
    def next_action(self, versions: Sequence[VersionSnapshot]) -> Action | None:
        """Pure: the next step toward the aspired state, or None when there is nothing to do.
        `versions` are sorted newest first."""
        ...


def split(
    versions: Sequence[VersionSnapshot],
) -> tuple[list[VersionSnapshot], list[VersionSnapshot]]:
    """(to load: aspired, not loaded; leaving: loaded, not aspired), newest first."""
    to_load = [s for s in versions if s.aspired and not s.loaded]
    leaving = [s for s in versions if s.loaded and not s.aspired]
    return to_load, leaving
