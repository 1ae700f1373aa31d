"""A direct ASGI path for `POST /v2/models/{m}[/versions/{v}]/infer`, in front of Starlette.

serve itself answers infer requests in its own HTTP protocol (http_protocol.py) before ASGI;
this path serves the app under any other ASGI server (uvicorn without httptools, a test client).

For a tiny model the HTTP path is the whole cost of a request, and Starlette's middleware
stack, router, Request and Response objects were a fifth of the event loop's time (py-spy,
issue 17). Infer requests are answered here through REST's infer adapter (rest_infer.py), as
every HTTP front end answers them; every other request, and any infer path this does not
recognise exactly, goes on to Starlette unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from paddlehot_cli.serve import checks
from paddlehot_cli.serve.rest_edge import path_segments, read_body
from paddlehot_cli.serve.rest_infer import RestInfer

log = logging.getLogger("paddlehot.serve")
_PREFIX = "/v2/models"
_WANTED = {b"content-length", b"content-encoding", b"inference-header-content-length"}


def infer_target(raw: bytes) -> tuple[str, str | None] | None:
    """(model text, version text) when `raw` is exactly an infer path, else None."""
    segs = path_segments(raw, _PREFIX)
    if len(segs) == 2 and segs[1] == "infer":
        return segs[0], None
    if len(segs) == 4 and segs[1] == "versions" and segs[3] == "infer":
        return segs[0], segs[2]
    return None


class InferFastPath:
    def __init__(self, infer: RestInfer, app: Any):
        self.infer = infer
        self.app = app  # everything else: the Starlette app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        raw = scope.get("raw_path") or scope["path"].encode()
        target = infer_target(raw) if raw.startswith(b"/v2/models/") else None
        if target is None:
            return await self.app(scope, receive, send)
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:  # lower-cased by the server; the first one counts
            if key in _WANTED and key not in headers:
                headers[key] = value
        started = False

        async def reply(status: int, payload: bytes, media: str, extra: list) -> None:
            nonlocal started
            started = True
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-length", str(len(payload)).encode()),
                (b"content-type", media.encode()), *extra]})
            await send({"type": "http.response.body", "body": payload})

        try:
            name = checks.model_name(target[0])
            selector = None if target[1] is None else checks.selector(target[1])
            body = await read_body(_chunks(receive), _text(headers.get(b"content-length")),
                                   self.infer.limit)
            await reply(*await self.infer.reply(
                name, selector, body, _text(headers.get(b"inference-header-content-length")),
                _text(headers.get(b"content-encoding"))))
        except _ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 - every failure is answered (500: logged)
            if started:
                log.exception("internal error on %s after its reply started", scope["path"])
                raise
            await reply(*self.infer.refusal(exc))


class _ClientGone(Exception):
    pass


async def _chunks(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
