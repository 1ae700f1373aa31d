"""The Manager's read side: which models and versions serve, their servables, settings,
labels and the repository index's rows. Reads the routing tables without a lock where it can
(they are immutable); the Manager (manager.py) is the only writer."""

from __future__ import annotations

import threading

from paddlehot_cli.core import pool_swaps
from paddlehot_cli.core.model_state import ModelState
from paddlehot_cli.core.quarantine import Quarantine
from paddlehot_cli.core.router import Labels, NotLoaded
from paddlehot_cli.core.servable import Servable
from paddlehot_cli.core.serving_version import ServingVersion
from paddlehot_cli.core.status_rows import status_rows


class ManagerQueries:
    _models: dict[str, ModelState]
    _lock: threading.RLock
    _scan_error: str | None
    _quarantine: Quarantine

    def _need(self, model: str) -> ModelState:
        m = self._models.get(model)
        if m is None:
            raise NotLoaded(f"unknown model '{model}'")
        return m

    def models(self) -> list[str]:
        return sorted(self._models)

    def ready(self) -> bool:
        with self._lock:
            enabled = [m for m in self._models.values() if m.enabled]
            return bool(enabled) and all(m.table.ordered for m in enabled)

    def model_ready(self, model: str, version: str | None = None) -> bool:
        m = self._models.get(model)
        if m is None or not m.enabled:
            return False
        if version is None:
            return bool(m.table.ordered)
        return version in m.table.refs

    def loaded_versions(self, model: str) -> list[str]:
        m = self._models.get(model)
        return list(m.table.ordered) if m is not None and m.enabled else []

    def servable(self, model: str, version: str | None = None) -> Servable:
        m = self._models.get(model)
        if m is None or not m.enabled or not m.table.ordered:
            raise NotLoaded(f"unknown model '{model}'" if m is None else f"model '{model}' has no version loaded")
        v = version or m.table.ordered[0]
        if v not in m.table.refs:
            raise NotLoaded(f"version '{v}' of model '{model}' is not loaded")
        return m.table.refs[v].servable

    def settings(self, model: str, version: str) -> dict | None:
        """The settings a loaded version runs with, as its loader reported them (or None)."""
        m = self._models.get(model)
        ref = m.table.refs.get(version) if m is not None else None
        if ref is None:
            return None
        return {**(ref.settings or {}), "pool": pool_swaps.describe(ref.servable)}

    def quarantined(self, model: str) -> dict[str, str]:
        """Versions of `model` kept from loading because the process died loading them."""
        return {v: e["reason"] for v, e in self._quarantine.entries.get(model, {}).items()}

    def labels(self, model: str) -> Labels:
        return self._need(model).labels

    def status(self) -> list[dict]:
        """One row per (model, version) known: state READY / LOADING / UNAVAILABLE and reason
        (a version the Source rejected is UNAVAILABLE with its reason)."""
        rows = []
        with self._lock:
            for name in sorted(self._models):
                rows.extend(status_rows(self._models[name]))
        if self._scan_error is not None:
            rows = [{**row, "repository_error": self._scan_error} for row in rows]
        return rows

    def serving_versions(self) -> list[ServingVersion]:
        """Every loaded version (for metrics: breaker state, pool size, handles in flight)."""
        with self._lock:
            return [r for m in self._models.values() for r in m.loaded.values()]

    loaded_refs = serving_versions  # the name bench and older callers use
