"""What a loader hands the Manager: a servable and the settings it runs with (typed, instead of
attributes set on the servable from outside)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paddlehot_cli.core.servable import Servable


@dataclass(frozen=True)
class Batching:
    """How a version's requests are queued and run. Names and units are the ones every config
    uses (serve flags, serving.json, `bench --tune`): batch_size, batch_delay_ms, pool_max."""

    batch_size: int = 1
    batch_delay_ms: float = 0.0
    pool_max: int = 1

    def queue_limit(self, max_queue: int = 0) -> int:
        """Requests that may wait beyond those running: `max_queue`, or when 0, 32 per worker
        and batch slot."""
        return max_queue if max_queue > 0 else 32 * max(1, self.pool_max) * max(1, self.batch_size)


@dataclass(frozen=True)
class Loaded:
    """A loaded version: its servable, its batching (None: the Manager's defaults), and the
    settings the metadata endpoint shows (e.g. serving.json's resolution; None: nothing)."""

    servable: Servable
    batching: Batching | None = None
    settings: dict[str, Any] | None = None
