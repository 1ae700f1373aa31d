"""The repository index's rows for one model: READY / LOADING / UNAVAILABLE and why."""

from __future__ import annotations

from paddlehot_cli.core.breaker import CLOSED
from paddlehot_cli.core.model_state import ModelState
from paddlehot_cli.core.variants import precision_of
from paddlehot_cli.core.versions import sort_key


def status_rows(m: ModelState) -> list[dict]:
    versions = (set(m.available) | set(m.loaded) | set(m.failed) | set(m.invalid)) - {""}
    if not versions:  # invalid[""]: why the model's directory itself cannot be read
        return [{"name": m.name, "version": "", "state": "UNAVAILABLE",
                 "reason": m.invalid.get("") or "no complete version in the repository"}]
    return [_row(m, v) for v in sorted(versions, key=sort_key, reverse=True)]


def _row(m: ModelState, v: str) -> dict:
    return {**_state(m, v), "precision": precision_of(v)}


def _state(m: ModelState, v: str) -> dict:
    ref = m.loaded.get(v)
    if ref is not None and m.enabled:
        state = ref.breaker.state
        return {"name": m.name, "version": v, "state": "READY", "breaker": state,
                "pool_size": ref.servable.pool_size,
                "reason": "" if state == CLOSED else f"breaker {state}"}
    if m.loading == v:
        return {"name": m.name, "version": v, "state": "LOADING", "reason": ""}
    reason = (m.invalid.get(v) or (m.failed[v][1] if v in m.failed else None)
              or ("unloaded" if not m.enabled else "not selected by the version policy"))
    return {"name": m.name, "version": v, "state": "UNAVAILABLE", "reason": reason}
