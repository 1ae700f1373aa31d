"""What serve lets others plug in, so serve never imports them: a remote source such as
`serve --follow` (fleet/follower.py), wired by cli.

An extension is built from the running Runtime by a factory the caller passes in
(`Runtime(cfg, extensions=[factory])`); serve then adds its index rows to
/v2/repository/index, gives it every Manager event, and starts and stops it with the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class ServeExtension(Protocol):
    # it may fill an empty repository: serve then waits (not ready) instead of exiting
    brings_models: bool

    def sync_once(self) -> None:
        """Before the first repository scan (e.g. pull what is missing)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def index_rows(self, rows: list[dict]) -> list[dict]:
        """The repository index's rows, with this extension's own state added."""

    def on_event(self, kind: str, model: str, version: str | None, info: dict) -> None:
        """A Manager event (loaded, swap, unloaded, ...)."""


ExtensionFactory = Callable[[Any], ServeExtension]  # Runtime -> extension
