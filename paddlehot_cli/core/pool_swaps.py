"""What a swap does to pools: a new version starts at its `min`, warm (its loader made `min`
predictors, at least one, and warm-up ran them); a version leaving drains (no more growth, its
idle predictors go at once, the busy ones as their requests finish); a version kept loaded but
no longer the newest (the one kept warm for rollback) is shrunk to its `min` - it grows again
only if traffic comes back to it (a rollback)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _pool(servable: Any) -> Any:
    return servable.pool  # Servable.pool: package and plugin servables hold a core Pool


def drain(servable: Any) -> None:
    pool = _pool(servable)
    if pool is not None:
        pool.drain()


def shrink_older(refs: Iterable[Any], newest: str | None) -> None:
    """Every loaded version but the newest down to its `min` (called outside the manager's
    lock: destroying predictors takes time)."""
    for ref in refs:
        pool = _pool(ref.servable)
        if ref.version != newest and pool is not None:
            pool.rest()


def describe(servable: Any) -> dict:
    """The pool as the metadata endpoint shows it (a servable without a core Pool: its size)."""
    pool = _pool(servable)
    return pool.describe() if pool is not None else {"size": servable.pool_size}
