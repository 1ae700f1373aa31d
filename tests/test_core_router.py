from __future__ import annotations

import pytest
from packaging.version import Version

from paddlehot_cli.core.router import Labels, NotLoaded, Unavailable, parse_range, select
from paddlehot_cli.core.version_policy import VersionPolicy

V = ["2.0.0", "1.3.1", "1.2.0", "0.2.5"]  # newest first
yes = lambda v: True


def pick(sel, labels=Labels(), bad=(), rnd=0.5):
    return select(V, sel, labels, allow=lambda v: v not in bad, healthy=lambda v: v not in bad, rnd=rnd)


@pytest.mark.parametrize("rng, inside, outside", [
    ("^1.2", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.9"]),
    ("^0.2", ["0.2.5"], ["0.3.0"]),
    ("~1.2", ["1.2.9"], ["1.3.0"]),
    (">=1.2,<2", ["1.5.0"], ["2.0.0"]),
    ("1.*", ["1.0.0"], ["2.0.0"]),
])
def test_ranges(rng, inside, outside):
    spec = parse_range(rng)
    assert all(Version(v) in spec for v in inside) and not any(Version(v) in spec for v in outside)


def test_select_exact_label_range_default():
    assert pick(None) == "2.0.0"
    assert pick("1.2.0") == "1.2.0"
    assert pick("^1.2") == "1.3.1"
    assert pick(None, bad={"2.0.0"}) == "1.3.1"  # rollback past an open breaker
    assert pick("^1", bad={"1.3.1"}) == "1.2.0"
    labels = Labels({"stable": "1.2.0", "canary": "1.3.1"}, canary_weight=20)
    assert pick(None, labels, rnd=0.1) == "1.3.1"
    assert pick(None, labels, rnd=0.5) == "1.2.0"
    assert pick("stable", labels) == "1.2.0"
    with pytest.raises(NotLoaded):
        pick("9.9.9")
    with pytest.raises(NotLoaded):
        pick("nolabel", labels)
    with pytest.raises(Unavailable):
        pick("2.0.0", bad={"2.0.0"})
    with pytest.raises(Unavailable):
        select([], None, Labels(), yes, yes, 0.5)


def test_labels_json():
    assert Labels.from_json({"stable": "1.0.0"}).labels == {"stable": "1.0.0"}
    for bad in ({"labels": {"s": "1.0"}}, {"canary_weight": 120}, [], {"labels": {"..": "1.0.0"}}):
        with pytest.raises(ValueError):
            Labels.from_json(bad)


def test_version_policy():
    avail = ["1.0.0", "1.1.0", "1.2.0", "1.10.0"]
    assert VersionPolicy(latest=1).aspired(avail) == {"1.10.0", "1.2.0"}
    assert VersionPolicy(latest=1, keep_previous=False).aspired(avail) == {"1.10.0"}
    assert VersionPolicy(latest=2).aspired(avail, failed={"1.10.0"}) == {"1.2.0", "1.1.0", "1.0.0"}
    assert VersionPolicy(versions=("1.0.0",)).aspired(avail, pinned={"1.1.0"}) == {"1.0.0", "1.1.0"}
