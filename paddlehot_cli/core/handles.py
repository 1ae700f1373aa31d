"""Refcounted handles on a loaded version: the servable is released when the last handle is gone.

A request holds one handle from routing until its result is delivered, so a version that is
being swapped out is never released under a running request (no use-after-free, no dlclose
under a call). `retire()` takes the version out of service; the release callback runs exactly
once, when it is retired and no handle is left.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class VersionRef:
    """One loaded version (model, version, servable, ...) and its handle count."""

    def __init__(self, model: str, version: str, servable: Any,
                 on_release: Callable[[VersionRef], None]):
        self.model = model
        self.version = version
        self.servable = servable
        self.attachments: dict[str, Any] = {}  # the manager hangs its batcher/breaker here
        self._on_release = on_release
        self._lock = threading.Lock()
        self._refs = 0
        self._retired = False
        self._released = False

    @property
    def refs(self) -> int:
        return self._refs

    @property
    def retired(self) -> bool:
        return self._retired

    @property
    def released(self) -> bool:
        return self._released

    def acquire(self) -> Handle | None:
        """A new handle, or None once the version has been released."""
        with self._lock:
            if self._released:
                return None
            self._refs += 1
        return Handle(self)

    def _drop(self) -> None:
        with self._lock:
            self._refs -= 1
            fire = self._retired and self._refs == 0 and not self._released
            if fire:
                self._released = True
        if fire:
            self._on_release(self)

    def retire(self) -> None:
        """No new routing; release as soon as the handles in flight are gone (maybe now)."""
        with self._lock:
            self._retired = True
            fire = self._refs == 0 and not self._released
            if fire:
                self._released = True
        if fire:
            self._on_release(self)


class Handle:
    """Held for the duration of one request. release() is idempotent."""

    __slots__ = ("_done", "ref")

    def __init__(self, ref: VersionRef):
        self.ref = ref
        self._done = False

    @property
    def version(self) -> str:
        return self.ref.version

    @property
    def servable(self) -> Any:
        return self.ref.servable

    def release(self) -> None:
        if not self._done:
            self._done = True
            self.ref._drop()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
