"""One memory budget for the whole process (serve --memory-budget): every version, every pool,
the version kept warm for rollback, and later precision variants live within it.

What is measured is the process's resident set (/proc/self/statm), not a sum of estimates: it
counts what Paddle really holds. What is estimated is the cost of the next thing to admit:
- one more predictor: the RSS growth its pool measured when it created its first predictor;
- a version's load: twice its parameters file (the weights, plus the graph and the buffers Paddle
  allocates around them), until a predictor of it was measured.
A growth the budget refuses is counted by the pool (paddlehot_pool_refused_total) and retried
later. A load that does not fit first shrinks every pool's idle predictors down to its `min`
(and trims the heap); it is refused only if that is not enough.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from paddlehot_cli.errors import UserError

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


class BudgetRefused(UserError):
    """A load does not fit in the memory budget, even with every pool shrunk to its minimum."""


def parse_size(text: str) -> int:
    """'1.5G', '800M', '512K' or a number of bytes (binary units) -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"--memory-budget must be a size such as 1.5G or 800M, not '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def load_estimate(package: Path, params_name: str) -> int:
    try:
        return 2 * (package / params_name).stat().st_size
    except OSError:
        return 0


class MemoryBudget:
    def __init__(self, limit_bytes: int | None = None):
        self.limit = limit_bytes
        self.refused_loads = 0
        self._lock = threading.Lock()

    def fits(self, cost: int) -> bool:
        return self.limit is None or rss_bytes() + max(0, cost) <= self.limit

    def admit_load(self, cost: int, what: str) -> None:
        """Make room for a load of about `cost` bytes or raise BudgetRefused."""
        if self.fits(cost):
            return
        from paddlehot_cli.core.pool_keeper import shared_keeper

        shared_keeper().shrink_all()
        if self.fits(cost):
            return
        with self._lock:
            self.refused_loads += 1
        mib = 1024 * 1024
        raise BudgetRefused(
            f"{what}: the memory budget ({self.limit // mib} MiB) has no room for it "
            f"(the process holds {rss_bytes() // mib} MiB, the load needs about {cost // mib} MiB)",
            hint="raise --memory-budget, lower --pool-min of other models, or unload a version")


_budget = MemoryBudget()


def configure(limit_bytes: int | None) -> MemoryBudget:
    """Set the process's budget (None: no limit); returns it."""
    _budget.limit = limit_bytes
    return _budget


def budget() -> MemoryBudget:
    return _budget
