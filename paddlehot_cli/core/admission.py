"""The request path on a routing table: admit a request (router + breaker) and run it (the
breaker records the verdict). No lock: the table is immutable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from paddlehot_cli.core import router
from paddlehot_cli.core.breaker import TRIAL
from paddlehot_cli.core.handles import Handle
from paddlehot_cli.core.model_state import RoutingTable
from paddlehot_cli.core.router import Unavailable
from paddlehot_cli.core.serving_version import ServingVersion
from paddlehot_cli.errors import InputMismatch


def admit(current: Callable[[], RoutingTable], model: str, selector: str | None,
          rnd: float) -> Handle:
    """A handle on the version that serves this request (see Manager.acquire). `current`
    returns the model's table now: a swap between routing and the handle retries on the new."""
    for _ in range(5):
        table = current()
        refs = table.refs
        grants: dict[str, str] = {}

        def allow(v: str) -> bool:
            grant = refs[v].breaker.admit()
            if grant is not None:
                grants[v] = grant
            return grant is not None

        version = None
        try:
            version = router.select(
                table.ordered, selector, table.labels, allow=allow,
                healthy=lambda v: refs[v].breaker.healthy(), rnd=rnd, model=model,
            )
        finally:
            for v, grant in grants.items():  # a trial granted but not used goes back
                if grant == TRIAL and v != version:
                    refs[v].breaker.release_trial()
        handle = refs[version].open_handle(grants[version])
        if handle is not None:
            return handle
    raise Unavailable(f"model '{model}' is being swapped; retry")


def run_admitted(handle: Handle, feeds: Mapping[str, np.ndarray],
                 done: Callable[[Any, BaseException | None], None]) -> None:
    """Run checked inputs on the handle's version (see Manager.submit)."""
    ref: ServingVersion = handle.ref  # type: ignore[assignment]
    breaker = ref.breaker
    trial = ServingVersion.holds_trial(handle)
    held = handle.transfer()

    def finish(out: Any, exc: BaseException | None) -> None:
        try:
            if not isinstance(exc, InputMismatch):
                held.on_release = None  # a verdict: the trial ends here
                breaker.record(exc is None, trial=trial)
            done(out, exc)
        finally:
            held.release()

    try:
        ref.batcher.submit(feeds, finish)
    except BaseException:
        held.release()
        raise
