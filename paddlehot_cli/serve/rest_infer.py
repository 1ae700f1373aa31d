"""REST's infer adapter: a body (JSON or Triton's binary tensors) -> InferService -> a reply.

Every HTTP front end answers infer requests through `RestInfer.call` (serve's own protocol),
or `RestInfer.reply` (its coroutine form, for the ASGI fast path and Starlette), so a client
gets the same checks, limits, metrics and error bodies whichever path its request took.

Small JSON and binary bodies are parsed inline. A compressed body is inflated, and a large JSON
body decoded (in a helper process, body_decoder.py), on the body threads of ClientLimits: never
on the event loop, never on the executor the index and admin routes use; at most
`max_body_jobs` such bodies are in work or waiting at once (503 + Retry-After beyond).
"""

from __future__ import annotations

import asyncio
import logging
import time

from paddlehot_cli.serve import checks, protocol
from paddlehot_cli.serve.body_decoder import BodyDecoder
from paddlehot_cli.serve.client_limits import ClientLimits
from paddlehot_cli.serve.infer import InferService, Outcome
from paddlehot_cli.serve.protocol import ProtocolError
from paddlehot_cli.serve.refusals import Rejected, rejected
from paddlehot_cli.serve.rest_edge import JSON, Reply, ReplyTuple, decompressed, reply_of

log = logging.getLogger("paddlehot.serve")


class RestInfer:
    def __init__(self, service: InferService, decoder: BodyDecoder, max_body_bytes: int,
                 limits: ClientLimits | None = None):
        self.service, self.decoder, self.limit = service, decoder, max_body_bytes
        self.limits = limits or ClientLimits()
        self._tasks: set[asyncio.Task] = set()  # large bodies being decoded (kept referenced)

    def refusal(self, exc: Exception) -> ReplyTuple:
        """Any failure as its reply, counted (a 500 is logged: it is our bug)."""
        refusal = rejected(exc)
        if refusal.status == 500 and not isinstance(exc, Rejected):
            log.error("internal error on an infer request", exc_info=exc)
        return reply_of(self.service.refused(refusal))

    async def reply(self, name: str, selector: str | None, body: bytes,
                    header_length: str | None, encoding: str | None = None) -> ReplyTuple:
        """`call` as a coroutine."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.call(name, selector, body, header_length,
                  lambda *reply: fut.done() or fut.set_result(reply), loop, encoding)
        return await fut

    def call(self, name: str, selector: str | None, body: bytes | list[bytes],
             header_length: str | None, reply: Reply, loop: asyncio.AbstractEventLoop,
             encoding: str | None = None) -> None:
        """Decode, run and encode one infer request; call on the event loop. `reply(status,
        body, media type, extra headers)` is called exactly once, on this loop: at once for a
        refusal, else when the version is done. `loop` is passed in: get_running_loop() costs a
        getpid() system call, a visible share of a tiny model's event-loop time."""
        start = time.perf_counter()
        try:
            if isinstance(body, list) or encoding or not self.decoder.inline(body, header_length):
                if not self.limits.begin_body_job():
                    raise Rejected(503, f"{self.limits.max_body_jobs} large or compressed request "
                                        "bodies are being decoded; retry later", reason="body_jobs",
                                   headers={"Retry-After": str(self.service.retry_after_s)})
                task = loop.create_task(self._decode_then_run(
                    name, selector, body, header_length, encoding, reply, start, loop))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            req = protocol.parse_infer_request(body, header_length)
            self._run(name, selector, req, reply, loop, start)
        except Exception as exc:  # noqa: BLE001 - every failure is answered
            reply(*self.refusal(exc))

    async def _decode_then_run(self, name: str, selector: str | None, body: bytes | list[bytes],
                               header_length: str | None, encoding: str | None, reply: Reply,
                               start: float, loop: asyncio.AbstractEventLoop) -> None:
        inflated = [0]  # bytes inflated and held against ClientLimits until decoded

        def reserve(n: int) -> bool:
            ok = self.limits.hold(n)
            inflated[0] += n if ok else 0
            return ok

        try:
            pool = self.limits.executor
            if isinstance(body, list) and (encoding or header_length is not None):
                body = await loop.run_in_executor(pool, b"".join, body)  # must be contiguous
            if encoding:
                body = await loop.run_in_executor(pool, decompressed, body, encoding, self.limit,
                                                  reserve)
            req = await loop.run_in_executor(pool, self.decoder.decode, body, header_length)
            del body
            self._run(name, selector, req, reply, loop, start)
        except Exception as exc:  # noqa: BLE001 - every failure is answered
            reply(*self.refusal(exc))
        finally:
            self.limits.drop(inflated[0])
            self.limits.end_body_job()

    def _run(self, name: str, selector: str | None, req: protocol.InferRequest, reply: Reply,
             loop: asyncio.AbstractEventLoop, start: float) -> None:
        def finish(outcome: Outcome) -> None:
            try:
                result = self._encoded(outcome, req)
            except Exception as exc:  # noqa: BLE001 - e.g. an output the codec cannot encode
                log.exception("internal error encoding the reply of %s %s", name, outcome.version)
                result = reply_of(Rejected(500, f"internal error encoding the reply: "
                                                f"{type(exc).__name__}: {exc}"))
            reply(*result)

        selector = checks.precision_selector(selector, req.parameters.get("precision"))
        self.service.submit(name, selector, req.inputs, finish, loop, "http", start)

    def _encoded(self, outcome: Outcome, req: protocol.InferRequest) -> ReplyTuple:
        if outcome.error is not None:
            return reply_of(self.service.refused(outcome.error))
        try:
            payload, hlen = protocol.encode_infer_response(
                outcome.name, outcome.version, req, outcome.out_names, outcome.outputs)
        except ProtocolError as exc:
            return reply_of(self.service.refused(Rejected(400, str(exc))))
        self.service.observe(outcome, "ok", "http")
        if hlen is None:
            return 200, payload, JSON, []
        return (200, payload, "application/octet-stream",
                [(b"inference-header-content-length", str(hlen).encode())])

