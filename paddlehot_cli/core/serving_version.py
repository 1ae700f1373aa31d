"""What the Manager keeps for one loaded version: typed, instead of a dict of attachments."""

from __future__ import annotations

from collections.abc import Callable

from paddlehot_cli.core.batcher import Batcher
from paddlehot_cli.core.breaker import TRIAL, Breaker
from paddlehot_cli.core.handles import Handle, VersionRef
from paddlehot_cli.core.servable import Servable


class ServingVersion(VersionRef):
    """A loaded, warmed version: its servable, its worker queue (batcher) and its breaker.

    Handles come from `open_handle`; a handle that holds the breaker's trial gives the trial
    back when it is released without a verdict (see breaker.py's contract).
    """

    def __init__(self, model: str, version: str, servable: Servable, batcher: Batcher,
                 breaker: Breaker, on_release: Callable[[VersionRef], None]):
        super().__init__(model, version, servable, on_release)
        self.batcher = batcher
        self.breaker = breaker
        self.finalized = False

    def open_handle(self, grant: str) -> Handle | None:
        """A handle for one request admitted by the breaker with `grant` (PASS or TRIAL)."""
        handle = self.acquire()
        if handle is None:
            if grant == TRIAL:
                self.breaker.release_trial()
            return None
        if grant == TRIAL:
            handle.on_release = self.breaker.release_trial
        return handle

    @staticmethod
    def holds_trial(handle: Handle) -> bool:
        return handle.on_release is not None
