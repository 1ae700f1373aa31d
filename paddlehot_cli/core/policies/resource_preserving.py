"""Resource-preserving swap policy: free the old version's memory before loading the new one.

For boxes that cannot hold two versions. Documented downtime: from the moment the old version
leaves until the new one is warm (drain + load + warm-up), requests without an exact version
get 503. If the new version fails to load, the version policy aspires to the old one again
and this policy loads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paddlehot_cli.core.policies.actions import Action, Load, Unload, VersionSnapshot, split


@dataclass(frozen=True)
class ResourcePreservingPolicy:
    def next_action(self, versions: Sequence[VersionSnapshot]) -> Action | None:
        to_load, leaving = split(versions)
        if leaving:
            return Unload(leaving[0].version, drain=True)
        if to_load:
            return Load(to_load[0].version)
        return None
