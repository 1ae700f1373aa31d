"""The Starlette app: Open Inference Protocol v2 REST (Triton/KServe flavour) over a Manager.

Endpoints
  GET  /v2/health/live | /v2/health/ready | /v2
  GET  /v2/models/{m}[/versions/{v}]            model metadata
  GET  /v2/models/{m}[/versions/{v}]/ready      model readiness (200, or 400 as Triton answers)
  POST /v2/models/{m}[/versions/{v}]/infer      JSON tensors or Triton's binary tensor extension
  POST /v2/repository/index                     Triton repository extension
  POST /v2/repository/models/{m}/load|unload    (admin)
  GET|PUT|DELETE /v2/repository/models/{m}/labels  paddlehot labels and canary weight (admin)
  GET  /metrics                                 Prometheus

`{v}` is an exact SemVer, a label (stable, canary, ...) or a SemVer range (^1.2, ~1.2, >=1.2,<2).
Inference runs on each version's worker thread, never on the event loop; large JSON bodies are
decoded in a helper process (body_decoder.py). Every body is limited to --max-body-mb. A full
version queue answers 503 with Retry-After. Infer requests reach Server.infer_call through
serve's own HTTP protocol (http_protocol.py), or through a direct ASGI path (fast_infer.py)
under any other ASGI server, never through Starlette's routing: the HTTP path is the whole cost
of a tiny model.

Admin endpoints (load, unload, labels) need the bearer token when one is set. Without a token
(loopback only) a request must name a loopback Host and, if it carries an Origin, a loopback
Origin: a web page cannot drive them from the user's browser (cross-site POST, DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paddlehot_cli import __version__
from paddlehot_cli.core.batcher import BatcherStopped, QueueFull
from paddlehot_cli.core.router import Labels, RouteError
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.errors import InputMismatch, short_error
from paddlehot_cli.serve import checks, protocol
from paddlehot_cli.serve.body_decoder import BodyDecoder
from paddlehot_cli.serve.metrics import Metrics
from paddlehot_cli.serve.protocol import BodyTooLarge, ProtocolError

log = logging.getLogger("paddlehot.serve")
JSON = "application/json"
Reply = Callable[[int, bytes, str, list], Any]  # (status, body, media type, extra headers)


@dataclass
class ServeOptions:
    max_body_bytes: int = 64 * 1024 * 1024
    admin_token: str | None = None
    admin_open: bool = True  # loopback without a token: admin endpoints allowed
    platform: str = "paddle_inference"
    repo: Path | None = None  # its path is cut from reasons shown to non-admin callers
    retry_after_s: int = 1  # told to clients turned away by a full queue
    on_labels: Callable[[str, Labels | None], None] | None = None  # e.g. --state-dir persistence
    decoder: BodyDecoder = field(default_factory=BodyDecoder)


def _json(doc: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(protocol.dumps(doc), status_code=status, media_type=JSON, headers=headers)


def _error(message: str, status: int, headers: dict | None = None) -> Response:
    return _json({"error": message}, status, headers)


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None,
                 reason: str | None = None):
        self.status, self.message, self.headers = status, message, headers
        self.reason = reason or str(status)  # the label on paddlehot_rejected_requests_total


def _segments(request: Request, prefix: str) -> list[str]:
    """Path segments after `prefix`, each percent-decoded on its own: an encoded '/' stays inside
    its segment (and is then rejected as an invalid name) instead of changing the route."""
    return path_segments(request.scope.get("raw_path") or request.url.path.encode(), prefix)


def path_segments(raw: bytes, prefix: str) -> list[str]:
    path = raw.decode("latin-1").split("?", 1)[0]
    rest = path.removeprefix(prefix)
    return [unquote(s) for s in rest.strip("/").split("/")] if rest.strip("/") else []


def _checked(check: Callable[..., Any], *args: Any) -> Any:
    """Run a shared request check (serve/checks.py: one rule and message for every front end),
    its refusal as this front end's _HTTPError."""
    try:
        return check(*args)
    except checks.Rejected as exc:
        raise _HTTPError(exc.status, exc.message, reason=exc.reason) from None


def _model_name(text: str) -> str:
    return _checked(checks.model_name, text)


def _selector(text: str) -> str:
    return _checked(checks.selector, text)


async def read_body(chunks: AsyncIterator[bytes], length: str | None, encoding: str | None,
                    limit: int) -> bytes:
    """The whole body, within `limit` bytes before and after Content-Encoding (413 beyond)."""
    if length is not None:
        try:
            if int(length) > limit:
                raise _HTTPError(413, f"request body of {length} bytes is larger than the limit of {limit}")
        except ValueError:
            raise _HTTPError(400, "invalid Content-Length") from None
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _HTTPError(413, f"request body is larger than the limit of {limit} bytes")
        parts.append(chunk)
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    return decompressed(body, encoding, limit) if encoding else body


def decompressed(body: bytes, encoding: str, limit: int) -> bytes:
    """A Content-Encoding'd body, decoded within `limit` bytes (413 beyond, 400 if corrupt)."""
    try:
        return protocol.decompress(body, encoding.strip().lower(), limit)
    except BodyTooLarge as exc:
        raise _HTTPError(413, str(exc)) from None
    except ProtocolError as exc:
        raise _HTTPError(400, str(exc)) from None


class Server:
    """Holds the manager, metrics and options; builds the Starlette app."""

    def __init__(self, manager: Any, metrics: Metrics | None = None,
                 options: ServeOptions | None = None):
        self.manager = manager
        self.metrics = metrics or Metrics()
        self.options = options or ServeOptions()
        self.index_hooks: list[Any] = []  # rows -> rows, e.g. serve --follow's remote state
        self._tasks: set[asyncio.Task] = set()  # large bodies being decoded (kept referenced)
        self.starlette = Starlette(
            routes=[
                Route("/v2/health/live", self.live, methods=["GET"]),
                Route("/v2/health/ready", self.ready, methods=["GET"]),
                Route("/v2", self.server_metadata, methods=["GET"]),
                Route("/v2/models/{rest:path}", self.models, methods=["GET", "POST"]),
                Route("/v2/repository/index", self.repo_index, methods=["POST", "GET"]),
                Route("/v2/repository/models/{rest:path}", self.repo_model,
                      methods=["GET", "POST", "PUT", "DELETE"]),
                Route("/metrics", self.prom, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_exc, Exception: self._internal},
        )
        from paddlehot_cli.serve.fast_infer import InferFastPath  # it builds on this module

        self.app = InferFastPath(self, self.starlette)  # infer requests skip Starlette

    # -- handlers --------------------------------------------------------------------------

    async def _http_exc(self, request: Request, exc: HTTPException) -> Response:
        return _error(exc.detail or "not found", exc.status_code)

    async def _internal(self, request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return _error(f"internal error: {type(exc).__name__}", 500)

    async def live(self, request: Request) -> Response:
        return _json({"live": True})

    async def ready(self, request: Request) -> Response:
        if self.manager.ready():
            return _json({"ready": True})
        return _json({"ready": False, "error": "not every configured model has a version loaded"}, 503)

    async def server_metadata(self, request: Request) -> Response:
        return _json({"name": "paddlehot", "version": __version__,
                      "extensions": ["binary_tensor_data", "model_repository", "paddlehot_labels"]})

    async def prom(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def models(self, request: Request) -> Response:
        try:
            segs = _segments(request, "/v2/models")
            if not segs:
                raise _HTTPError(404, "no model name in the path")
            name = _model_name(segs[0])
            version = None
            rest = segs[1:]
            if len(rest) >= 2 and rest[0] == "versions":
                version = _selector(rest[1])
                rest = rest[2:]
            action = rest[0] if len(rest) == 1 else None
            if len(rest) > 1 or (rest and action not in ("ready", "infer")):
                raise _HTTPError(404, f"no such endpoint: {request.url.path}")
            if action == "infer":
                if request.method != "POST":
                    raise _HTTPError(405, "infer needs POST")
                return await self.infer(request, name, version)
            if request.method != "GET":
                raise _HTTPError(405, "use GET")
            if action == "ready":
                return self.model_ready(name, version)
            return self.model_metadata(name, version)
        except (_HTTPError, RouteError) as exc:
            return _error(*self.refused(exc))

    def refused(self, exc: _HTTPError | RouteError) -> tuple[str, int, dict | None]:
        """Count a request turned away (paddlehot_rejected_requests_total) and say how to answer
        it: (message, status, extra headers). Both HTTP paths (Starlette and fast_infer) use it."""
        reason = exc.reason if isinstance(exc, _HTTPError) else str(exc.status)
        self.metrics.rejected.labels(reason).inc()
        return exc.message, exc.status, getattr(exc, "headers", None)

    def _resolve_version(self, name: str, selector: str | None) -> str:
        """The version a metadata/ready request talks about (no breaker trial consumed)."""
        return _checked(checks.resolve_version, self.manager, name, selector)

    def model_ready(self, name: str, selector: str | None) -> Response:
        try:
            self._resolve_version(name, selector)
        except (_HTTPError, RouteError) as exc:
            return _error(exc.message, 400)
        return _json({"name": name, "ready": True})

    def model_metadata(self, name: str, selector: str | None) -> Response:
        version = self._resolve_version(name, selector)
        servable = self.manager.servable(name, version)
        manifest = servable.manifest
        return _json({
            "name": name,
            "versions": self.manager.loaded_versions(name),
            "platform": "paddlehot_plugin" if getattr(servable, "kind", "") == "plugin" else self.options.platform,
            "inputs": protocol.tensor_metadata(manifest.inputs),
            "outputs": protocol.tensor_metadata(manifest.outputs),
            # serving.json hook (issue 13): the settings this version runs with, and their source
            "parameters": {"version": version, "serving": getattr(servable, "serving", None)},
        })

    async def _body(self, request: Request) -> bytes:
        return await read_body(request.stream(), request.headers.get("content-length"),
                               request.headers.get("content-encoding"),
                               self.options.max_body_bytes)

    async def infer(self, request: Request, name: str, selector: str | None) -> Response:
        body = await self._body(request)
        status, payload, media, headers = await self.infer_reply(
            name, selector, body, request.headers.get("inference-header-content-length"))
        return Response(payload, status_code=status, media_type=media,
                        headers={k.decode(): v.decode() for k, v in headers})

    async def infer_reply(self, name: str, selector: str | None, body: bytes,
                          header_length: str | None) -> tuple[int, bytes, str, list]:
        """infer_call as a coroutine: (status, body, media type, extra headers)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.infer_call(name, selector, body, header_length,
                        lambda *reply: fut.done() or fut.set_result(reply), loop)
        return await fut

    def infer_call(self, name: str, selector: str | None, body: bytes, header_length: str | None,
                   reply: Reply, loop: asyncio.AbstractEventLoop) -> None:
        """Decode, route, check, run and encode one infer request; call on the event loop.

        `reply(status, body, media type, extra headers)` is called exactly once, on this loop
        thread: at once for a refusal, else when the version's worker is done. Refusals are
        counted here (Server.refused); every front end that speaks HTTP (our protocol, the ASGI
        fast path, Starlette) answers through this one function. `loop` is the running loop,
        passed in: asyncio.get_running_loop() costs a getpid() system call, a visible share of
        a tiny model's event-loop time.
        """
        start = time.perf_counter()
        try:
            if not self.options.decoder.inline(body, header_length):  # a large JSON body
                task = loop.create_task(
                    self._decode_then_run(name, selector, body, header_length, reply, start, loop))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            try:
                req = protocol.parse_infer_request(body, header_length)
            except ProtocolError as exc:
                raise _HTTPError(400, str(exc)) from None
            self._run_decoded(name, selector, req, start, reply, loop)
        except (_HTTPError, RouteError) as exc:
            reply(*self.refusal_reply(exc))

    async def _decode_then_run(self, name: str, selector: str | None, body: bytes,
                               header_length: str | None, reply: Reply, start: float,
                               loop: asyncio.AbstractEventLoop) -> None:
        try:
            try:
                req = await self.options.decoder.decode(body, header_length)
            except ProtocolError as exc:
                raise _HTTPError(400, str(exc)) from None
            del body
            self._run_decoded(name, selector, req, start, reply, loop)
        except (_HTTPError, RouteError) as exc:
            reply(*self.refusal_reply(exc))
        except Exception as exc:  # noqa: BLE001 - as the Starlette handler: log, answer 500
            log.exception("internal error decoding a request for %s", name)
            reply(500, protocol.dumps({"error": f"internal error: {type(exc).__name__}"}), JSON, [])

    def _run_decoded(self, name: str, selector: str | None, req: protocol.InferRequest,
                     start: float, reply: Reply, loop: asyncio.AbstractEventLoop) -> None:
        handle = self.manager.acquire(name, selector)  # RouteError -> 404 / 503
        version = handle.version
        try:  # every path releases the handle: submit takes it over, else finally drops it
            try:
                feeds = check_inputs(handle.servable.manifest.inputs, req.inputs)
            except InputMismatch as exc:
                self.metrics.observe(name, version, "bad_input", time.perf_counter() - start)
                raise _HTTPError(400, exc.message) from None
            out_names = [s.name for s in handle.servable.manifest.outputs]

            def finish(outputs: Any, exc: BaseException | None) -> None:
                try:
                    result = self._infer_result(name, version, req, out_names, outputs, exc, start)
                except Exception as err:  # noqa: BLE001 - e.g. an output the codec cannot encode
                    log.exception("internal error encoding the reply of %s %s", name, version)
                    result = (500, protocol.dumps({"error": f"internal error encoding the reply: "
                                                            f"{short_error(err)}"}), JSON, [])
                reply(*result)

            def done(outputs: Any, exc: BaseException | None) -> None:  # on the worker thread
                loop.call_soon_threadsafe(finish, outputs, exc)

            try:
                self.manager.submit(handle, feeds, done)
            except QueueFull as exc:
                raise _HTTPError(503, f"model '{name}' version {version} is overloaded ({exc}); "
                                 "retry later", {"Retry-After": str(self.options.retry_after_s)},
                                 reason="queue_full") from None
            except BatcherStopped as exc:
                raise _HTTPError(503, f"version {version} of model '{name}' is unavailable: "
                                 f"{exc}") from None
        finally:
            handle.release()

    def _infer_result(self, name: str, version: str, req: protocol.InferRequest,
                      out_names: list[str], outputs: Any, exc: BaseException | None,
                      start: float) -> tuple[int, bytes, str, list]:
        """The reply to a request the version has answered (outputs) or failed (exc)."""
        if isinstance(exc, InputMismatch):
            self.metrics.observe(name, version, "bad_input", time.perf_counter() - start)
            return self.refusal_reply(_HTTPError(400, exc.message))
        if exc is not None:  # inference failed on the server side
            self.metrics.observe(name, version, "error", time.perf_counter() - start)
            log.warning("inference on %s %s failed: %s", name, version, short_error(exc))
            return (500, protocol.dumps({"error": f"inference failed on {name} {version}: "
                                                  f"{short_error(exc)}"}), JSON, [])
        try:
            payload, hlen = protocol.encode_infer_response(name, version, req, out_names, outputs)
        except ProtocolError as perr:
            return self.refusal_reply(_HTTPError(400, str(perr)))
        self.metrics.observe(name, version, "ok", time.perf_counter() - start)
        if hlen is None:
            return 200, payload, JSON, []
        return (200, payload, "application/octet-stream",
                [(b"inference-header-content-length", str(hlen).encode())])

    def refusal_reply(self, exc: _HTTPError | RouteError) -> tuple[int, bytes, str, list]:
        """A refused request as a reply tuple (counted by refused())."""
        message, status, headers = self.refused(exc)
        extra = [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
        return status, protocol.dumps({"error": message}), JSON, extra

    # -- repository extension --------------------------------------------------------------

    def _check_admin(self, request: Request) -> None:
        token = self.options.admin_token
        if token:
            given = request.headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else request.headers.get("x-admin-token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise _HTTPError(401, "admin endpoint: missing or wrong token (Authorization: Bearer TOKEN)")
            return
        if not self.options.admin_open:
            raise _HTTPError(403, "admin endpoints are disabled: the server listens beyond loopback "
                                  "and was started without --admin-token")
        origin = request.headers.get("origin")
        if not checks.loopback_host(request.headers.get("host", "")) or (
                origin is not None and not checks.loopback_origin(origin)):
            raise _HTTPError(403, "admin endpoint without --admin-token: only for clients on this "
                                  "host (Host and Origin must be loopback)")

    def _is_admin(self, request: Request) -> bool:
        try:
            self._check_admin(request)
        except _HTTPError:
            return False
        return True

    def _public_reason(self, reason: str) -> str:
        """A reason without the server's file system paths (for non-admin callers)."""
        repo = self.options.repo
        if repo is not None:
            for root in {str(repo), str(repo.resolve())}:
                reason = reason.replace(root.rstrip(os.sep) + os.sep, "")
        return re.sub(r"(?<![\w.])/[^\s:'\"]+", "<path>", reason)

    async def repo_index(self, request: Request) -> Response:
        try:
            body = await self._body(request)
        except _HTTPError as exc:
            return _error(exc.message, exc.status)
        ready_only = False
        if body.strip():
            try:
                doc = protocol.orjson.loads(body)
            except protocol.orjson.JSONDecodeError:
                return _error("malformed JSON body", 400)
            if not isinstance(doc, dict):
                return _error("the request body must be a JSON object", 400)
            ready_only = bool(doc.get("ready", False))
        rows = await asyncio.to_thread(self.manager.status)
        for hook in self.index_hooks:
            rows = hook(rows)
        if ready_only:
            rows = [r for r in rows if r["state"] == "READY"]
        if not self._is_admin(request):
            rows = [{**r, "reason": self._public_reason(r.get("reason", ""))} for r in rows]
        return _json(rows)

    def _labels_changed(self, name: str, labels: Labels | None) -> None:
        if self.options.on_labels is not None:
            self.options.on_labels(name, labels)

    async def repo_model(self, request: Request) -> Response:
        try:
            segs = _segments(request, "/v2/repository/models")
            if len(segs) != 2:
                raise _HTTPError(404, f"no such endpoint: {request.url.path}")
            name, action = _model_name(segs[0]), segs[1]
            if action in ("load", "unload") and request.method == "POST":
                self._check_admin(request)
                if action == "load":
                    await asyncio.to_thread(self.manager.load_model, name)
                else:
                    await asyncio.to_thread(self.manager.unload_model, name)
                return _json({})
            if action == "labels":
                if request.method == "GET":
                    return _json(self.manager.labels(name).to_json())
                self._check_admin(request)
                if request.method == "DELETE":
                    self.manager.set_labels(name, None)
                    self._labels_changed(name, None)
                    return _json({})
                body = await self._body(request)
                try:
                    labels = Labels.from_json(protocol.orjson.loads(body))
                except protocol.orjson.JSONDecodeError:
                    raise _HTTPError(400, "malformed JSON body") from None
                except ValueError as exc:
                    raise _HTTPError(400, str(exc)) from None
                self.manager.set_labels(name, labels)
                self._labels_changed(name, labels)
                return _json(labels.to_json())
            raise _HTTPError(404, f"no such endpoint: {request.method} {request.url.path}")
        except _HTTPError as exc:
            return _error(exc.message, exc.status)
        except RouteError as exc:
            return _error(exc.message, 400 if exc.status == 503 else exc.status)


def _settle(fut: asyncio.Future, out: Any, exc: BaseException | None) -> None:
    if fut.done():  # the client went away
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(out)
