"""Manager with a fake loader: policy, flips, failed loads, draining, resource-preserving."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from paddlehot_cli.core.manager import Manager, ManagerConfig
from paddlehot_cli.core.router import NotLoaded
from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.core.version_policy import VersionPolicy


class FakeManifest:
    def __init__(self, version):
        self.name, self.version = "m", version
        self.inputs = (TensorSpec("x", "float32", (-1, 2)),)
        self.outputs = (TensorSpec("y", "float32", (-1, 2)),)
        self.validation, self.raw, self.precision = {}, {}, "fp32"


class Fake:
    live: set = set()
    kind, gil_bound, pool_size, pool = "fake", False, 1, None

    def __init__(self, version, gate=None):
        self.manifest = FakeManifest(version)
        self.gate = gate
        Fake.live.add(version)

    def infer_raw(self, feeds):
        if self.gate is not None:
            self.gate.wait(5)
        return [feeds["x"] + float(self.manifest.version.split(".")[1])]

    run_checked = infer_raw

    def infer(self, feeds):
        return dict(zip(["y"], self.infer_raw(feeds)))

    def close(self):
        Fake.live.discard(self.manifest.version)


def make(policy=VersionPolicy(latest=1, keep_previous=False), fail=(), gate=None, **cfg):
    events = []

    def loader(path: Path):
        v = path.name
        if v in fail:
            raise RuntimeError(f"cannot load {v}")
        return Fake(v, gate)

    mgr = Manager(loader, ManagerConfig(policy=policy, **cfg),
                  on_event=lambda k, m, v, i: events.append((k, v)))
    return mgr, events


def avail(*versions):
    return {v: Path("/nowhere") / v for v in versions}


def run(mgr, selector=None):
    h = mgr.acquire("m", selector)
    out, ev = {}, threading.Event()
    mgr.submit(h, {"x": np.zeros((1, 2), "float32")},
               lambda o, e: (out.update(o=o, e=e), ev.set()))
    assert ev.wait(5)
    return h.version, out


def test_load_flip_release_and_failed_load_keeps_serving():
    Fake.live = set()
    mgr, events = make(fail={"1.2.0"})
    try:
        mgr.set_available("m", avail("1.0.0"))
        mgr.wait_idle(5)
        assert mgr.ready() and run(mgr)[0] == "1.0.0"
        mgr.set_available("m", avail("1.0.0", "1.1.0"))
        mgr.wait_idle(5)
        assert mgr.loaded_versions("m") == ["1.1.0"] and Fake.live == {"1.1.0"}
        mgr.set_available("m", avail("1.0.0", "1.1.0", "1.2.0"))
        mgr.wait_idle(5)
        assert mgr.loaded_versions("m") == ["1.1.0"]  # failed load never replaces the serving one
        assert ("load_failed", "1.2.0") in events
        rows = {r["version"]: r for r in mgr.status()}
        assert rows["1.2.0"]["state"] == "UNAVAILABLE" and "cannot load" in rows["1.2.0"]["reason"]
        with pytest.raises(NotLoaded):
            mgr.acquire("nope")
    finally:
        mgr.stop()
    assert Fake.live == set()


def test_old_version_released_only_after_in_flight_request():
    Fake.live = set()
    gate = threading.Event()
    mgr, events = make(gate=gate)
    try:
        mgr.set_available("m", avail("1.0.0"))
        mgr.wait_idle(5)
        h = mgr.acquire("m")
        done = threading.Event()
        mgr.submit(h, {"x": np.zeros((1, 2), "float32")}, lambda o, e: done.set())
        mgr.set_available("m", avail("1.0.0", "1.1.0"))
        mgr.wait_idle(0.5)
        assert mgr.loaded_versions("m") == ["1.1.0"]
        assert "1.0.0" in Fake.live  # retired but still running a request
        gate.set()
        assert done.wait(5)
        mgr.wait_idle(5)
        assert "1.0.0" not in Fake.live and ("unloaded", "1.0.0") in events
    finally:
        gate.set()
        mgr.stop()


def test_resource_preserving_unloads_first():
    Fake.live = set()
    order = []
    mgr, events = make(resource_preserving=True)
    try:
        mgr.set_available("m", avail("1.0.0"))
        mgr.wait_idle(5)
        events.clear()
        mgr.set_available("m", avail("1.0.0", "1.1.0"))
        mgr.wait_idle(5)
        kinds = [(k, v) for k, v in events if k in ("unloaded", "loaded")]
        assert kinds == [("unloaded", "1.0.0"), ("loaded", "1.1.0")]
        assert run(mgr)[0] == "1.1.0"
    finally:
        mgr.stop()
    del order


def test_unload_and_load_model():
    Fake.live = set()
    mgr, _ = make()
    try:
        mgr.set_available("m", avail("1.0.0"))
        mgr.wait_idle(5)
        mgr.unload_model("m")
        assert not mgr.ready() and not mgr.model_ready("m")
        mgr.load_model("m")
        assert mgr.ready()
    finally:
        mgr.stop()


def test_keep_previous_retires_the_leaving_version_before_loading_the_new_one():
    # latest + previous warm: publishing 1.2.0 pushes 1.0.0 out; it goes first, so at most one
    # version beyond steady state is ever alive, while 1.1.0 keeps serving throughout.
    Fake.live = set()
    mgr, events = make(policy=VersionPolicy(latest=1, keep_previous=True))
    try:
        mgr.set_available("m", avail("1.0.0"))
        mgr.wait_idle(5)
        mgr.set_available("m", avail("1.0.0", "1.1.0"))
        mgr.wait_idle(5)
        assert Fake.live == {"1.0.0", "1.1.0"}
        events.clear()
        mgr.set_available("m", avail("1.0.0", "1.1.0", "1.2.0"))
        mgr.wait_idle(5)
        kinds = [(k, v) for k, v in events if k in ("unloaded", "loading", "loaded")]
        assert kinds == [("unloaded", "1.0.0"), ("loading", "1.2.0"), ("loaded", "1.2.0")]
        assert Fake.live == {"1.1.0", "1.2.0"}
        assert run(mgr)[0] == "1.2.0"
    finally:
        mgr.stop()


def test_no_early_retire_when_the_staying_version_is_unhealthy():
    Fake.live = set()
    mgr, events = make(policy=VersionPolicy(latest=1, keep_previous=True), fail={"1.2.0"})
    try:
        mgr.set_available("m", avail("1.0.0"))
        mgr.wait_idle(5)
        mgr.set_available("m", avail("1.0.0", "1.1.0"))
        mgr.wait_idle(5)
        breaker = mgr._models["m"].loaded["1.1.0"].breaker
        for _ in range(50):
            breaker.record(False)  # 1.1.0 is failing: 1.0.0 is the fallback, keep it
        assert not breaker.healthy()
        events.clear()
        mgr.set_available("m", avail("1.0.0", "1.1.0", "1.2.0"))
        mgr.wait_idle(5)
        assert ("unloaded", "1.0.0") not in events
        assert "1.0.0" in Fake.live
    finally:
        mgr.stop()
