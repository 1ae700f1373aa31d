"""A circuit breaker per version: closed -> open on failures -> half-open after a cooldown.

It opens on `failures` consecutive failures, or when the error rate over the last `window`
calls reaches `error_rate` (once at least `min_calls` were seen). Open: no traffic. After
`cooldown_s` it is half-open: `admit()` hands out one TRIAL at a time; the trial's verdict
closes it (success) or opens it again for another cooldown (server error).

Contract: whoever is admitted with TRIAL ends it exactly once, on every path: `record(ok,
trial=True)` when the call gave a verdict, `release_trial()` when it did not (client error,
cancellation, an exception before the call ran). A trial slot is never lost, so a half-open
breaker can always be tried again. Only server-side inference failures are recorded, never a
client's bad input.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_CODE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
PASS, TRIAL = "pass", "trial"  # what admit() grants


class Breaker:
    def __init__(
        self,
        *,
        failures: int = 5,
        error_rate: float = 0.5,
        window: int = 20,
        min_calls: int = 10,
        cooldown_s: float = 30.0,
        on_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.failures, self.error_rate = failures, error_rate
        self.min_calls, self.cooldown_s = min_calls, cooldown_s
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._consecutive = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=window)
        self._opened_at = 0.0
        self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
                return HALF_OPEN
            return self._state

    @property
    def trial_in_flight(self) -> bool:
        return self._trial

    def healthy(self) -> bool:
        """True when closed (routing may prefer it); no trial is consumed."""
        return self._state == CLOSED

    def admit(self) -> str | None:
        """PASS (closed), TRIAL (half-open and the trial slot was free: now it is taken) or None."""
        change = None
        with self._lock:
            if self._state == CLOSED:
                return PASS
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.cooldown_s:
                    return None
                change = (OPEN, HALF_OPEN)
                self._state, self._trial = HALF_OPEN, False
            if self._trial:
                granted = None
            else:
                self._trial, granted = True, TRIAL
        if change:
            self._notify(*change)
        return granted

    def allow(self) -> bool:
        return self.admit() is not None

    def release_trial(self) -> None:
        """The trial ended without a verdict: the next caller may try."""
        with self._lock:
            self._trial = False

    def record(self, ok: bool, trial: bool = False) -> None:
        """One server-side outcome. While half-open only the trial's outcome counts (a request
        admitted before the breaker opened must not close it)."""
        change = None
        with self._lock:
            self._recent.append(ok)
            self._consecutive = 0 if ok else self._consecutive + 1
            if self._state == HALF_OPEN and trial:
                self._trial = False
                if ok:
                    change = (HALF_OPEN, CLOSED)
                    self._state = CLOSED
                    self._recent.clear()
                else:
                    change = (HALF_OPEN, OPEN)
            elif self._state == CLOSED and not ok and self._tripped():
                change = (CLOSED, OPEN)
            elif trial:
                self._trial = False
            if change and change[1] == OPEN:
                self._state, self._trial = OPEN, False
                self._opened_at = self._clock()
        if change:
            self._notify(*change)

    def _tripped(self) -> bool:
        if self._consecutive >= self.failures:
            return True
        n = len(self._recent)
        return n >= self.min_calls and self._recent.count(False) / n >= self.error_rate

    def _notify(self, old: str, new: str) -> None:
        if self._on_change is not None:
            self._on_change(old, new)
