"""Availability-preserving swap policy (the default): never a moment without a serving version.

Contract: a version leaves only while another healthy aspired version is loaded, or after the
aspired ones are all loaded; the newest aspired version is loaded (and warmed) before the
version it replaces is unloaded. With `unload_leaving_first`, versions that a new one pushes
out of the aspired set go *before* the new one loads (only while a healthy aspired version
keeps serving), so at most one version beyond steady state is alive during a swap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paddlehot_cli.core.policies.actions import Action, Load, Unload, VersionSnapshot, split


@dataclass(frozen=True)
class AvailabilityPreservingPolicy:
    unload_leaving_first: bool = True

    def next_action(self, versions: Sequence[VersionSnapshot]) -> Action | None:
        to_load, leaving = split(versions)
        if to_load:
            still_serving = any(s.loaded and s.aspired and s.healthy for s in versions)
            if self.unload_leaving_first and leaving and still_serving:
                return Unload(leaving[0].version, drain=True)
            return Load(to_load[0].version)
        if leaving:
            return Unload(leaving[0].version, drain=False)
        return None
