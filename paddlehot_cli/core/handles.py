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
        self._on_release = on_release
        self._lock = threading.Lock()
        self._refs = 0
        self._retired = False
        self._released = False
        self._gone = threading.Event()  # set just before the release callback runs

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
            self._gone.set()
            self._on_release(self)

    def wait_released(self, timeout: float) -> bool:
        """Wait until the last handle is gone after retire(); False on timeout."""
        return self._gone.wait(timeout)

    def retire(self) -> None:
        """No new routing; release as soon as the handles in flight are gone (maybe now)."""
        with self._lock:
            self._retired = True
            fire = self._refs == 0 and not self._released
            if fire:
                self._released = True
        if fire:
            self._gone.set()
            self._on_release(self)


class Handle:
    """Held for the duration of one request. release() is idempotent.

    `on_release` (optional) runs once, just before the hold is dropped: the manager uses it to
    give back a breaker trial that ended without a verdict. `transfer()` moves the hold to a
    new Handle (for the worker that finishes the request), so a caller may always write
    `try: ... submit(handle) ... finally: handle.release()`.
    """

    __slots__ = ("_done", "on_release", "ref")

    def __init__(self, ref: VersionRef, on_release: Callable[[], None] | None = None):
        self.ref = ref
        self.on_release = on_release
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
            hook, self.on_release = self.on_release, None
            try:
                if hook is not None:
                    hook()
            finally:
                self.ref._drop()

    def transfer(self) -> Handle:
        """A new Handle holding what this one held; this one's release() becomes a no-op."""
        if self._done:
            raise RuntimeError("transfer of a released handle")
        self._done = True
        moved = Handle(self.ref, self.on_release)
        self.on_release = None
        return moved

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
