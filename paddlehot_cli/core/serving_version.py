"""What the Manager keeps for one loaded version: typed, instead of a dict of attachments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from paddlehot_cli.core.batcher import Batcher
from paddlehot_cli.core.breaker import TRIAL, Breaker
from paddlehot_cli.core.handles import Handle, VersionRef
from paddlehot_cli.core.servable import Servable
from paddlehot_cli.core.thread_priority import trim_heap

log = logging.getLogger("paddlehot.manager")


class ServingVersion(VersionRef):
    """A loaded, warmed version: its servable, its worker queue (batcher) and its breaker.

    Handles come from `open_handle`; a handle that holds the breaker's trial gives the trial
    back when it is released without a verdict (see breaker.py's contract).
    """

    def __init__(self, model: str, version: str, servable: Servable, batcher: Batcher,
                 breaker: Breaker, on_release: Callable[[VersionRef], None],
                 settings: dict[str, Any] | None = None):
        super().__init__(model, version, servable, on_release)
        self.batcher = batcher
        self.breaker = breaker
        self.settings = settings  # what its loader reported (metadata endpoint)
        self.finalized = False

    def finalize(self) -> bool:
        """Stop the worker queue and close the servable, once (False if done already); then
        give the freed memory back to the system."""
        if self.finalized:
            return False
        self.finalized = True
        self.batcher.stop()
        try:
            self.servable.close()
        except Exception:
            log.exception("closing %s %s failed", self.model, self.version)
        self.servable = None
        trim_heap()
        return True

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
