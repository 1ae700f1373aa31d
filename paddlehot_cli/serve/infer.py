"""The infer service: route -> check -> submit -> outcome, for every protocol front end.

KServe's data plane in paddlehot's terms. REST (serve's own HTTP protocol, the ASGI fast path,
Starlette: all through rest_infer.py) and gRPC (grpc_server.py) decode their request into named
arrays, call `InferService.submit`, and encode the `Outcome` it hands back; none of them
touches the Manager, the signature check or the queue-full mapping itself.

Contract of `submit`: it raises `Rejected` when the request is refused before any version runs
(unknown model or version, wrong inputs, a full queue: 503 with Retry-After); otherwise
`finish(outcome)` is called exactly once, on the caller's event loop. The handle acquired for
the request is released on every path (submit takes it over, else it is dropped here).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from paddlehot_cli.core.batcher import BatcherStopped, QueueFull
from paddlehot_cli.core.router import RouteError
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.errors import InputMismatch, short_error
from paddlehot_cli.serve.refusals import Rejected

log = logging.getLogger("paddlehot.serve")


@dataclass
class Outcome:
    """A request its version has answered (`outputs`, in manifest order) or failed (`error`)."""

    name: str
    version: str
    out_names: list[str]
    outputs: list[np.ndarray] | None
    error: Rejected | None
    started: float  # time.perf_counter() when the request arrived


class InferService:
    def __init__(self, manager: Any, metrics: Any, retry_after_s: int = 1):
        self.manager, self.metrics, self.retry_after_s = manager, metrics, retry_after_s

    def refused(self, exc: Rejected) -> Rejected:
        """Count a request turned away (paddlehot_rejected_requests_total); a 500 is not a
        refusal but a failure, counted as an outcome or logged as a bug."""
        if exc.status != 500:
            self.metrics.rejected.labels(exc.reason).inc()
        return exc

    def observe(self, outcome: Outcome, result: str, front: str) -> None:
        self.metrics.observe(outcome.name, outcome.version, result,
                             time.perf_counter() - outcome.started, front)

    def submit(self, name: str, selector: str | None, inputs: Mapping[str, np.ndarray],
               finish: Callable[[Outcome], None], loop: asyncio.AbstractEventLoop,
               front: str = "http", started: float | None = None) -> None:
        """Route, check and submit one request (see the module's contract). `name` and
        `selector` are already checked for shape (serve.checks)."""
        started = time.perf_counter() if started is None else started
        try:
            handle = self.manager.acquire(name, selector)
        except RouteError as exc:
            raise Rejected(exc.status, exc.message) from None
        version = handle.version
        try:  # every path releases the handle: submit takes it over, else finally drops it
            manifest = handle.servable.manifest
            out_names = [s.name for s in manifest.outputs]
            try:
                feeds = check_inputs(manifest.inputs, inputs)
            except InputMismatch as exc:
                self.metrics.observe(name, version, "bad_input", time.perf_counter() - started,
                                     front)
                raise Rejected(400, exc.message) from None

            def settle(outputs: Any, exc: BaseException | None) -> None:  # on the loop
                finish(self._outcome(name, version, out_names, outputs, exc, started, front))

            def done(outputs: Any, exc: BaseException | None) -> None:  # on the worker thread
                loop.call_soon_threadsafe(settle, outputs, exc)

            try:
                self.manager.submit(handle, feeds, done)
            except QueueFull as exc:
                raise Rejected(503, f"model '{name}' version {version} is overloaded ({exc}); "
                                    "retry later", reason="queue_full",
                               headers={"Retry-After": str(self.retry_after_s)}) from None
            except BatcherStopped as exc:
                raise Rejected(503, f"version {version} of model '{name}' is unavailable: "
                                    f"{exc}") from None
        finally:
            handle.release()

    def _outcome(self, name: str, version: str, out_names: list[str], outputs: Any,
                 exc: BaseException | None, started: float, front: str) -> Outcome:
        if exc is None:
            return Outcome(name, version, out_names, list(outputs), None, started)
        seconds = time.perf_counter() - started
        if isinstance(exc, InputMismatch):  # the version itself refused the tensors
            self.metrics.observe(name, version, "bad_input", seconds, front)
            return Outcome(name, version, out_names, None, Rejected(400, exc.message), started)
        self.metrics.observe(name, version, "error", seconds, front)
        log.warning("inference on %s %s failed: %s", name, version, short_error(exc))
        return Outcome(name, version, out_names, None,
                       Rejected(500, f"inference failed on {name} {version}: {short_error(exc)}"),
                       started)
