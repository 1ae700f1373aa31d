"""Swap policies: given a snapshot of a model's versions, the next action for the Manager.

- `AvailabilityPreservingPolicy` (default): load the new version before the old one goes.
- `ResourcePreservingPolicy`: unload first (for boxes that cannot hold two versions).
"""

from __future__ import annotations

from paddlehot_cli.core.policies.actions import Action, Load, Unload, VersionSnapshot
from paddlehot_cli.core.policies.availability_preserving import AvailabilityPreservingPolicy
from paddlehot_cli.core.policies.resource_preserving import ResourcePreservingPolicy

__all__ = [
    "Action", "AvailabilityPreservingPolicy", "Load", "ResourcePreservingPolicy", "Unload",
    "VersionSnapshot",
]
