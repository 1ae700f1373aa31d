"""What the Manager knows about one model: what is on disk, what is loaded, what failed, its
labels, and the routing table that requests read.

Mutated only by the Manager, under its lock; `table` is immutable and replaced whole on every
flip, so the request path reads it without a lock.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.core.policies import VersionSnapshot
from paddlehot_cli.core.router import Labels
from paddlehot_cli.core.serving_version import ServingVersion
from paddlehot_cli.core.source import stat_key
from paddlehot_cli.core.version_policy import VersionPolicy
from paddlehot_cli.core.versions import sort_key

log = logging.getLogger("paddlehot.manager")


@dataclass(frozen=True)
class RoutingTable:
    """What routing reads: versions newest first, their refs, the labels."""

    ordered: list[str]
    refs: Mapping[str, ServingVersion]
    labels: Labels


EMPTY_TABLE = RoutingTable([], {}, Labels())


def path_signature(path: Path) -> str:
    """Changes when the version dir's files change (a failed version is retried then)."""
    try:
        entries = sorted((e.name, stat_key(e.stat())) for e in os.scandir(path))
    except OSError:
        return str(path)
    return f"{path}:{entries}"


class ModelState:
    def __init__(self, name: str):
        self.name = name
        self.enabled = True
        self.available: dict[str, Path] = {}
        self.failed: dict[str, tuple[str, str]] = {}  # version -> (path signature, reason)
        self.invalid: dict[str, str] = {}  # version -> why the Source rejected it
        self.file_labels = Labels()
        self.admin_labels: Labels | None = None
        self.loaded: dict[str, ServingVersion] = {}
        self.loading: str | None = None
        self.table: RoutingTable = EMPTY_TABLE
        self.newest: str | None = None

    @property
    def labels(self) -> Labels:
        return self.admin_labels if self.admin_labels is not None else self.file_labels

    def set_file_labels(self, doc: object) -> None:
        """REPO/NAME/labels.json as the Source read it (None: no file); a bad one is ignored."""
        if doc is None:
            self.file_labels = Labels()
            return
        try:
            self.file_labels = Labels.from_json(doc, f"{self.name}/labels.json")
        except ValueError as exc:
            log.warning("ignoring labels: %s", exc)
            self.file_labels = Labels()

    def retry_blocked(self) -> set[str]:
        """Versions whose last load failed and whose files have not changed since."""
        return {v for v, (sig, _) in self.failed.items()
                if v in self.available and sig == path_signature(self.available[v])}

    def snapshot(self, policy: VersionPolicy) -> list[VersionSnapshot]:
        """What the swap policy decides from: each aspired or loaded version, newest first."""
        aspired = policy.aspired(self.available, self.retry_blocked(),
                                 set(self.labels.labels.values())) if self.enabled else set()
        versions = sorted(aspired | set(self.loaded), key=sort_key, reverse=True)
        return [VersionSnapshot(v, v in aspired, v in self.loaded,
                                v in self.loaded and self.loaded[v].breaker.healthy())
                for v in versions]

    def flip(self) -> str | None:
        """Publish a new routing table; return the newest version it serves."""
        ordered = sorted(self.loaded if self.enabled else (), key=sort_key, reverse=True)
        self.table = RoutingTable(ordered, {v: self.loaded[v] for v in ordered}, self.labels)
        return ordered[0] if ordered else None
