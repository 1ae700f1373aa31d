"""A circuit breaker per version: closed -> open on failures -> half-open after a cooldown.

It opens on `failures` consecutive failures, or when the error rate over the last `window`
calls reaches `error_rate` (once at least `min_calls` were seen). Open: no traffic. After
`cooldown_s` it is half-open: one trial call at a time; a success closes it, a failure opens it
again. Only server-side inference failures are recorded, never a client's bad input.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_CODE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


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

    def healthy(self) -> bool:
        """True when closed (routing may prefer it); no trial is consumed."""
        return self._state == CLOSED

    def allow(self) -> bool:
        """May a call go through now? In half-open state, only one trial at a time."""
        change = None
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.cooldown_s:
                    return False
                change = (OPEN, HALF_OPEN)
                self._state, self._trial = HALF_OPEN, False
            if self._trial:
                allowed = False
            else:
                self._trial = allowed = True
        if change:
            self._notify(*change)
        return allowed

    def record(self, ok: bool) -> None:
        change = None
        with self._lock:
            self._recent.append(ok)
            if ok:
                self._consecutive = 0
                if self._state == HALF_OPEN:
                    change = (HALF_OPEN, CLOSED)
                    self._state, self._trial = CLOSED, False
                    self._recent.clear()
            else:
                self._consecutive += 1
                if self._state == HALF_OPEN:
                    change = (HALF_OPEN, OPEN)
                elif self._state == CLOSED and self._tripped():
                    change = (CLOSED, OPEN)
                if change:
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
