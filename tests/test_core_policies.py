"""The swap policies are pure: a snapshot of versions in, the next action out."""

from __future__ import annotations

from paddlehot_cli.core.policies import (
    AvailabilityPreservingPolicy,
    Load,
    ResourcePreservingPolicy,
    Unload,
    VersionSnapshot,
)


def snap(*rows):
    """rows: (version, aspired, loaded, healthy), newest first."""
    return [VersionSnapshot(*r) for r in rows]


def test_availability_preserving_loads_before_the_old_version_leaves():
    p = AvailabilityPreservingPolicy(unload_leaving_first=False)
    s = snap(("1.1.0", True, False, False), ("1.0.0", False, True, True))
    assert p.next_action(s) == Load("1.1.0")
    s = snap(("1.1.0", True, True, True), ("1.0.0", False, True, True))
    assert p.next_action(s) == Unload("1.0.0", drain=False)
    assert p.next_action(snap(("1.1.0", True, True, True))) is None


def test_availability_preserving_unloads_a_leaving_version_first_only_while_one_serves():
    p = AvailabilityPreservingPolicy()
    # latest + previous: 1.2.0 arrives, 1.0.0 leaves, 1.1.0 (healthy, aspired) keeps serving
    s = snap(("1.2.0", True, False, False), ("1.1.0", True, True, True), ("1.0.0", False, True, True))
    assert p.next_action(s) == Unload("1.0.0", drain=True)
    # 1.1.0's breaker is open: 1.0.0 is the only healthy fallback, so load first
    s = snap(("1.2.0", True, False, False), ("1.1.0", True, True, False), ("1.0.0", False, True, True))
    assert p.next_action(s) == Load("1.2.0")


def test_resource_preserving_unloads_first_and_waits():
    p = ResourcePreservingPolicy()
    s = snap(("1.1.0", True, False, False), ("1.0.0", False, True, True))
    assert p.next_action(s) == Unload("1.0.0", drain=True)
    assert p.next_action(snap(("1.1.0", True, False, False))) == Load("1.1.0")
    assert p.next_action(snap(("1.1.0", True, True, True))) is None
