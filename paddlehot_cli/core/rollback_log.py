"""What a breaker's change means for routing, said in the log and as events: a failing newest
version rolls traffic back to the previous healthy one; a passed trial brings it back. The
router acts on breakers by itself (it skips open ones); this only reports it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from paddlehot_cli.core.breaker import CLOSED, HALF_OPEN, OPEN
from paddlehot_cli.core.model_state import RoutingTable

log = logging.getLogger("paddlehot.manager")


def breaker_changed(table: RoutingTable, model: str, version: str, old: str, new: str,
                    on_event: Callable[[str, str, str | None, dict], None]) -> None:
    log.warning("breaker of %s %s: %s -> %s", model, version, old, new)
    on_event("breaker", model, version, {"from": old, "to": new})
    if not table.ordered or table.ordered[0] != version:
        return
    if new == OPEN and old == CLOSED:
        fallback = next((v for v in table.ordered[1:] if table.refs[v].breaker.healthy()), None)
        log.warning("rollback: %s %s is failing; traffic goes to %s until a trial succeeds "
                    "(one per %.0f s)", model, version, fallback or "nothing (no healthy version)",
                    table.refs[version].breaker.cooldown_s)
        on_event("rollback", model, version, {"to": fallback})
    elif new == CLOSED and old == HALF_OPEN:
        log.warning("recovery: %s %s passed its trial; traffic returns to it", model, version)
        on_event("recovered", model, version, {})
