"""The breaker heals through the Manager: rollback, one trial per cooldown, recovery; a trial
that ends without a verdict (client error, exception before submit) never blocks the next."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from paddlehot_cli.core.manager import Manager, ManagerConfig
from paddlehot_cli.core.version_policy import VersionPolicy
from paddlehot_cli.errors import InputMismatch
from tests.test_core_manager import Fake, avail

GOOD = {"x": np.zeros((1, 2), "float32")}


class Flaky(Fake):
    """A real-shaped servable wrapper whose inference fails while `broken` is set."""

    broken = threading.Event()

    def run_checked(self, feeds):
        if self.manifest.version == "1.1.0" and Flaky.broken.is_set():
            raise RuntimeError("injected inference failure")
        if feeds["x"].shape[1] != 2:
            raise InputMismatch("x must have 2 columns")
        return self.infer_raw(feeds)


def call(mgr, feeds=GOOD):
    h = mgr.acquire("m")
    box, ev = {}, threading.Event()
    mgr.submit(h, feeds, lambda o, e: (box.update(e=e), ev.set()))
    assert ev.wait(5)
    return h.version, box["e"]


@pytest.fixture()
def healing():
    Fake.live = set()
    Flaky.broken.clear()
    events = []
    mgr = Manager(lambda p: Flaky(Path(p).name),
                  ManagerConfig(policy=VersionPolicy(latest=1, keep_previous=True),
                                breaker={"failures": 2, "cooldown_s": 0.3}),
                  on_event=lambda k, m, v, i: events.append((k, v)))
    mgr.set_available("m", avail("1.0.0", "1.1.0"))
    assert mgr.wait_idle(5) and mgr.loaded_versions("m") == ["1.1.0", "1.0.0"]
    yield mgr, events
    mgr.stop()


def test_rollback_then_recovery_without_restart(healing):
    mgr, events = healing
    Flaky.broken.set()
    assert [call(mgr)[0] for _ in range(2)] == ["1.1.0", "1.1.0"]  # two failures: open
    assert ("rollback", "1.1.0") in events
    assert {call(mgr)[0] for _ in range(5)} == {"1.0.0"}  # rolled back
    time.sleep(0.35)
    version, exc = call(mgr)  # one trial after the cooldown: still failing
    assert version == "1.1.0" and exc is not None
    assert {call(mgr)[0] for _ in range(5)} == {"1.0.0"}
    Flaky.broken.clear()  # the fault goes away
    time.sleep(0.35)
    assert call(mgr) == ("1.1.0", None)  # the trial succeeds: recovered
    assert ("recovered", "1.1.0") in events
    assert {call(mgr)[0] for _ in range(5)} == {"1.1.0"}


def test_trial_ending_as_client_error_or_exception_gives_the_slot_back(healing):
    mgr, events = healing
    Flaky.broken.set()
    call(mgr), call(mgr)
    Flaky.broken.clear()
    time.sleep(0.35)
    version, exc = call(mgr, {"x": np.zeros((1, 3), "float32")})  # the trial: a client error
    assert version == "1.1.0" and isinstance(exc, InputMismatch)
    h = mgr.acquire("m")  # the next trial, abandoned between acquire and submit
    assert h.version == "1.1.0"
    h.release()
    assert call(mgr) == ("1.1.0", None)  # a third trial is still possible, and heals
    assert ("recovered", "1.1.0") in events
