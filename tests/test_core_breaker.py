from __future__ import annotations

from paddlehot_cli.core.breaker import CLOSED, HALF_OPEN, OPEN, Breaker


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_consecutive_failures_open_then_half_open_then_close():
    clock, changes = Clock(), []
    b = Breaker(failures=3, cooldown_s=10, clock=clock, on_change=lambda o, n: changes.append(n))
    for _ in range(2):
        b.record(False)
    b.record(True)
    assert b.state == CLOSED
    for _ in range(3):
        b.record(False)
    assert b.state == OPEN and not b.allow() and not b.healthy()
    clock.t = 11
    assert b.state == HALF_OPEN
    assert b.allow() and not b.allow()  # one trial at a time
    b.record(False, trial=True)
    assert b.state == OPEN
    clock.t = 22
    assert b.allow()
    b.record(True, trial=True)
    assert b.state == CLOSED and b.allow()
    assert changes == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_error_rate_opens():
    b = Breaker(failures=100, error_rate=0.5, window=10, min_calls=10)
    for i in range(10):
        b.record(i % 2 == 0)
    assert b.state == OPEN


def test_a_trial_without_a_verdict_gives_the_slot_back():
    # the old bug: a trial that ended as a client error kept the slot, half-open forever
    clock = Clock()
    b = Breaker(failures=1, cooldown_s=5, clock=clock)
    b.record(False)
    clock.t = 6
    assert b.admit() == "trial" and b.admit() is None
    b.release_trial()  # client error / cancelled / exception before the call
    assert b.admit() == "trial"
    b.record(True, trial=True)
    assert b.state == CLOSED and b.admit() == "pass"


def test_only_the_trial_decides_while_half_open():
    clock = Clock()
    b = Breaker(failures=1, cooldown_s=5, clock=clock)
    b.record(False)
    clock.t = 6
    assert b.admit() == "trial"
    b.record(True)  # a straggler admitted before the breaker opened
    assert b.state == HALF_OPEN
    b.record(False, trial=True)
    assert b.state == OPEN
