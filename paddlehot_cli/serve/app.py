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
Inference runs on each version's worker thread, never on the event loop. Every body is limited
to --max-body-mb. Infer requests are served by the infer service (infer.py) through REST's
adapter (rest_infer.py): from serve's own HTTP protocol (http_protocol.py), or from a direct
ASGI path (fast_infer.py) under any other ASGI server, never through Starlette's routing (the
HTTP path is the whole cost of a tiny model). This module holds the other routes.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paddlehot_cli import __version__
from paddlehot_cli.core.router import Labels, RouteError
from paddlehot_cli.serve import checks, protocol
from paddlehot_cli.serve.body_decoder import BodyDecoder
from paddlehot_cli.serve.client_limits import ClientLimits
from paddlehot_cli.serve.fast_infer import InferFastPath
from paddlehot_cli.serve.infer import InferService
from paddlehot_cli.serve.metrics import Metrics
from paddlehot_cli.serve.refusals import Rejected, internal, rejected
from paddlehot_cli.serve.rest_edge import JSON, path_segments, read_body, refuse_encoding
from paddlehot_cli.serve.rest_infer import RestInfer

log = logging.getLogger("paddlehot.serve")


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
    limits: ClientLimits = field(default_factory=ClientLimits)  # connections, body bytes


def _json(doc: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(protocol.dumps(doc), status_code=status, media_type=JSON, headers=headers)


def _error(message: str, status: int, headers: dict | None = None) -> Response:
    return _json({"error": message}, status, headers)


def _segments(request: Request, prefix: str) -> list[str]:
    return path_segments(request.scope.get("raw_path") or request.url.path.encode(), prefix)


class Server:
    """Holds the manager, metrics and options; builds the Starlette app."""

    def __init__(self, manager: Any, metrics: Metrics | None = None,
                 options: ServeOptions | None = None):
        self.manager = manager
        self.metrics = metrics or Metrics()
        self.options = options or ServeOptions()
        self.index_hooks: list[Any] = []  # rows -> rows, e.g. serve --follow's remote state
        limits = self.options.limits
        limits.max_buffered_per_client = max(limits.max_buffered_bytes // 4,
                                             self.options.max_body_bytes + (64 << 10))
        self.service = InferService(manager, self.metrics, self.options.retry_after_s)
        self.rest_infer = RestInfer(self.service, self.options.decoder,
                                    self.options.max_body_bytes, self.options.limits)
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
        self.app = InferFastPath(self.rest_infer, self.starlette)  # infer requests skip Starlette

    # -- handlers --------------------------------------------------------------------------

    async def _http_exc(self, request: Request, exc: HTTPException) -> Response:
        return _error(exc.detail or "not found", exc.status_code)

    async def _internal(self, request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return _error(internal(exc).message, 500)

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
                raise Rejected(404, "no model name in the path")
            name = checks.model_name(segs[0])
            version = None
            rest = segs[1:]
            if len(rest) >= 2 and rest[0] == "versions":
                version = checks.selector(rest[1])
                rest = rest[2:]
            action = rest[0] if len(rest) == 1 else None
            if len(rest) > 1 or (rest and action not in ("ready", "infer")):
                raise Rejected(404, f"no such endpoint: {request.url.path}")
            if action == "infer":
                if request.method != "POST":
                    raise Rejected(405, "infer needs POST")
                return await self.infer(request, name, version)
            if request.method != "GET":
                raise Rejected(405, "use GET")
            if action == "ready":
                return self.model_ready(name, version)
            return self.model_metadata(name, version)
        except (Rejected, RouteError) as exc:
            refusal = self.service.refused(rejected(exc))
            return _error(refusal.message, refusal.status, refusal.headers)

    def _resolve_version(self, name: str, selector: str | None) -> str:
        """The version a metadata/ready request talks about (no breaker trial consumed)."""
        return checks.resolve_version(self.manager, name, selector)

    def model_ready(self, name: str, selector: str | None) -> Response:
        try:
            self._resolve_version(name, selector)
        except (Rejected, RouteError) as exc:
            return _error(exc.message, 400)
        return _json({"name": name, "ready": True})

    def model_metadata(self, name: str, selector: str | None) -> Response:
        version = self._resolve_version(name, selector)
        servable = self.manager.servable(name, version)
        manifest = servable.manifest
        return _json({
            "name": name,
            "versions": self.manager.loaded_versions(name),
            "platform": "paddlehot_plugin" if servable.kind == "plugin" else self.options.platform,
            "inputs": protocol.tensor_metadata(manifest.inputs),
            "outputs": protocol.tensor_metadata(manifest.outputs),
            # serving.json hook (issue 13): the settings this version runs with, and their source
            "parameters": {"version": version, "precision": manifest.precision,
                           "serving": self.manager.settings(name, version),
                           "quarantined": self.manager.quarantined(name)},
        })

    async def _body(self, request: Request, inflate_later: bool = False) -> bytes:
        if not inflate_later:
            refuse_encoding(request.headers.get("content-encoding"))
        return await read_body(request.stream(), request.headers.get("content-length"),
                               self.options.max_body_bytes)

    async def infer(self, request: Request, name: str, selector: str | None) -> Response:
        body = await self._body(request, inflate_later=True)
        status, payload, media, headers = await self.rest_infer.reply(
            name, selector, body, request.headers.get("inference-header-content-length"),
            request.headers.get("content-encoding"))
        return Response(payload, status_code=status, media_type=media,
                        headers={k.decode(): v.decode() for k, v in headers})

    # -- repository extension --------------------------------------------------------------

    def _check_admin(self, request: Request) -> None:
        token = self.options.admin_token
        if token:
            given = request.headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else request.headers.get("x-admin-token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Rejected(401, "admin endpoint: missing or wrong token (Authorization: Bearer TOKEN)")
            return
        if not self.options.admin_open:
            raise Rejected(403, "admin endpoints are disabled: the server listens beyond loopback "
                                  "and was started without --admin-token")
        origin = request.headers.get("origin")
        if not checks.loopback_host(request.headers.get("host", "")) or (
                origin is not None and not checks.loopback_origin(origin)):
            raise Rejected(403, "admin endpoint without --admin-token: only for clients on this "
                                  "host (Host and Origin must be loopback)")

    def _is_admin(self, request: Request) -> bool:
        try:
            self._check_admin(request)
        except Rejected:
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
        except Rejected as exc:
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
                raise Rejected(404, f"no such endpoint: {request.url.path}")
            name, action = checks.model_name(segs[0]), segs[1]
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
                    raise Rejected(400, "malformed JSON body") from None
                except ValueError as exc:
                    raise Rejected(400, str(exc)) from None
                self.manager.set_labels(name, labels)
                self._labels_changed(name, labels)
                return _json(labels.to_json())
            raise Rejected(404, f"no such endpoint: {request.method} {request.url.path}")
        except Rejected as exc:
            return _error(exc.message, exc.status)
        except RouteError as exc:
            return _error(exc.message, 400 if exc.status == 503 else exc.status)
