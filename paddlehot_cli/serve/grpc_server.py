"""KServe v2 / Triton GRPCInferenceService over the core Manager (`paddlehot serve --grpc-port`).

The servicer subclasses the base class tritonclient[grpc] generates from Triton's
grpc_service.proto, so the method names and messages are Triton's own; the RPCs paddlehot has no
use for (shared memory, tracing, statistics, streaming) keep the base class's UNIMPLEMENTED.

Every check and message is shared with the REST front end: a request runs through the same infer
service (serve/infer.py: route, check the inputs, submit, outcome), and every failure is a
`Rejected` whose HTTP status maps to a gRPC status code in one table (serve/refusals.py).

The server is grpc.aio on its own event loop thread, like the REST app on uvicorn's: a call waits
for its version's worker without holding a thread (the thread-pool server cost ~1.6x the CPU
per request of REST on the demo MLP).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from paddlehot_cli import __version__
from paddlehot_cli.core.router import RouteError, Unavailable
from paddlehot_cli.errors import UserError
from paddlehot_cli.serve import checks, grpc_codec
from paddlehot_cli.serve.infer import InferService, Outcome
from paddlehot_cli.serve.protocol import ProtocolError
from paddlehot_cli.serve.refusals import GRPC_CODES, Rejected, rejected
from paddlehot_cli.serve.tls import ServerTls

log = logging.getLogger("paddlehot.serve")

STATUS_CODES = {status: grpc.StatusCode[name] for status, name in GRPC_CODES.items()}
EXTENSIONS = ["model_repository", "paddlehot_labels"]


def _rpc(method: Callable) -> Callable:
    """Turn Rejected / RouteError / ProtocolError into the mapped status with the same message."""

    @functools.wraps(method)
    async def wrapper(self: InferenceServicer, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except (Rejected, RouteError, ProtocolError) as exc:
            refusal = self.service.refused(rejected(exc))
        except Exception as exc:  # a bug: log it, answer INTERNAL, keep serving
            log.exception("internal error in gRPC %s", method.__name__)
            refusal = rejected(exc)
        await context.abort(STATUS_CODES.get(refusal.status, grpc.StatusCode.INTERNAL),
                            refusal.message)

    return wrapper


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, manager: Any, metrics: Any, options: Any, rest: Any = None):
        self.manager, self.metrics, self.options = manager, metrics, options
        self.service = rest.service if rest is not None else InferService(
            manager, metrics, options.retry_after_s)
        # the REST app (serve/app.py), when there is one: its repository index hooks (e.g.
        # serve --follow's remote state) and its path-free reasons for non-admin callers
        self.rest = rest

    # -- health and metadata ---------------------------------------------------------------

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.manager.ready())

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(name="paddlehot", version=__version__,
                                         extensions=EXTENSIONS)

    def _target(self, name: str, version: str) -> tuple[str, str | None]:
        return checks.model_name(name), checks.selector(version) if version else None

    @_rpc
    async def ModelReady(self, request: Any, context: Any) -> Any:
        name, wanted = self._target(request.name, request.version)
        try:
            checks.resolve_version(self.manager, name, wanted)
        except (Rejected, RouteError):
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    def _platform(self, servable: Any) -> str:
        return "paddlehot_plugin" if servable.kind == "plugin" else self.options.platform

    @_rpc
    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        name, wanted = self._target(request.name, request.version)
        version = checks.resolve_version(self.manager, name, wanted)
        servable = self.manager.servable(name, version)
        return pb.ModelMetadataResponse(
            name=name, versions=self.manager.loaded_versions(name),
            platform=self._platform(servable),
            inputs=grpc_codec.tensor_metadata(servable.manifest.inputs),
            outputs=grpc_codec.tensor_metadata(servable.manifest.outputs))

    @_rpc
    async def ModelConfig(self, request: Any, context: Any) -> Any:
        name, wanted = self._target(request.name, request.version)
        servable = self.manager.servable(name, checks.resolve_version(self.manager, name, wanted))
        return pb.ModelConfigResponse(config=grpc_codec.model_config(
            name, self._platform(servable), servable.manifest))

    # -- inference -------------------------------------------------------------------------

    @_rpc
    async def ModelInfer(self, request: Any, context: Any) -> Any:
        started = time.perf_counter()
        name, wanted = self._target(request.model_name, request.model_version)
        if "precision" in request.parameters:  # a precision variant (docs/variants.md)
            wanted = checks.precision_selector(
                wanted, request.parameters["precision"].string_param)
        tensors = grpc_codec.decode_inputs(request)
        loop = asyncio.get_running_loop()
        settled: asyncio.Future = loop.create_future()
        self.service.submit(name, wanted, tensors, lambda outcome: _settle(settled, outcome),
                            loop, "grpc", started)
        outcome: Outcome = await settled
        if outcome.error is not None:
            raise outcome.error
        try:
            returned = grpc_codec.requested_outputs(request, outcome.out_names)
        except ProtocolError as exc:
            raise Rejected(400, str(exc)) from None
        by_name = dict(zip(outcome.out_names, outcome.outputs))
        response = grpc_codec.encode_response(
            name, outcome.version, request.id, returned, [by_name[n] for n in returned],
            raw=bool(request.raw_input_contents))
        self.service.observe(outcome, "ok", "grpc")
        return response

    # -- repository extension --------------------------------------------------------------

    def _is_admin(self, context: Any) -> bool:
        try:
            self._check_admin(context)
        except Rejected:
            return False
        return True

    def _check_admin(self, context: Any) -> None:
        meta = {k.lower(): v for k, v in context.invocation_metadata()}
        given = checks.bearer_token(meta.get("authorization", "")) or meta.get("x-admin-token", "")
        checks.check_admin(self.options.admin_token, self.options.admin_open, given)

    @_rpc
    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        rows = await asyncio.to_thread(self.manager.status)
        for hook in getattr(self.rest, "index_hooks", ()):
            rows = hook(rows)
        if request.ready:
            rows = [r for r in rows if r["state"] == "READY"]
        if self.rest is not None and not self._is_admin(context):
            rows = [{**r, "reason": self.rest._public_reason(r.get("reason", ""))} for r in rows]
        return pb.RepositoryIndexResponse(models=[
            pb.RepositoryIndexResponse.ModelIndex(name=r["name"], version=r.get("version", ""),
                                                  state=r["state"], reason=r.get("reason", ""))
            for r in rows])

    def _admin_model(self, request: Any, context: Any) -> str:
        self._check_admin(context)
        return checks.model_name(request.model_name)

    @_rpc
    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        name = self._admin_model(request, context)
        if request.parameters:  # Triton's config / file: overrides
            raise Rejected(400, "paddlehot loads versions from its repository; load parameters "
                                f"({', '.join(sorted(request.parameters))}) are not supported")
        try:
            await asyncio.to_thread(self.manager.load_model, name)
        except Unavailable as exc:  # no version loads: a bad request for this model, as over REST
            raise Rejected(400, exc.message) from None
        return pb.RepositoryModelLoadResponse()

    @_rpc
    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        # `unload_dependents` (Triton ensembles) has no meaning here: a model has no dependents
        await asyncio.to_thread(self.manager.unload_model, self._admin_model(request, context))
        return pb.RepositoryModelUnloadResponse()


def connection_bounds(limits: Any) -> list[tuple[str, int]]:
    """What no gRPC client may exceed, as grpc core's server arguments: connections in total
    (more are closed at accept), a handshake deadline (a socket that never sends the HTTP/2
    preface), an idle limit (no call), calls per connection, and keepalive pings no more often
    than every 10 s (a client that pings faster is sent GOAWAY after 2 strikes)."""
    return [
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        ("grpc.server_handshake_timeout_ms", int(limits.head_timeout_s * 1000)),
        ("grpc.max_connection_idle_ms", int(limits.grpc_idle_s * 1000)),
        ("grpc.max_concurrent_streams", limits.grpc_streams),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 0),
    ]


def _can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _settle(fut: asyncio.Future, outcome: Outcome) -> None:
    if not fut.done():  # else the call was cancelled: the handle is released all the same
        fut.set_result(outcome)


class GrpcFrontEnd:
    """The gRPC server on its own event loop thread, with the request size limit of
    --max-body-mb. Inference itself runs on each version's worker, as for REST."""

    def __init__(self, manager: Any, metrics: Any, options: Any, rest: Any = None):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="paddlehot-grpc",
                                        daemon=True)
        self._thread.start()
        servicer = InferenceServicer(manager, metrics, options, rest)

        async def make() -> Any:
            server = grpc.aio.server(options=[
                ("grpc.max_receive_message_length", options.max_body_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),  # a port in use must fail, not be shared
                *connection_bounds(options.limits),
            ])
            pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
            return server

        self._server = self._run(make())
        self.port: int | None = None
        self._stopping: Any = None

    def _run(self, coro: Any, timeout: float | None = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def bind(self, host: str, port: int, tls: ServerTls | None = None) -> int:
        in_use = UserError(f"gRPC port {port} on {host} is already in use or cannot be bound",
                           hint="pick another with --grpc-port")
        if port and not _can_bind(host, port):  # before grpc logs its own multi-line complaint
            raise in_use
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

        async def add() -> int:
            try:
                if tls is not None:
                    creds = grpc.ssl_server_credentials([tls.credentials()])
                    return self._server.add_secure_port(address, creds)
                return self._server.add_insecure_port(address)
            except RuntimeError:  # grpcio >= 1.54 raises where older versions returned 0
                return 0

        bound = self._run(add())
        if not bound:
            raise in_use
        self.port = bound
        return bound

    def start(self) -> None:
        self._run(self._server.start())

    @property
    def loop_thread_id(self) -> int | None:
        """The OS id of the thread running the gRPC event loop (serve pins it: cpu_affinity)."""
        return self._thread.native_id

    def begin_stop(self, grace: float) -> None:
        """Refuse new calls now; calls in flight get `grace` seconds to finish."""
        if self._stopping is None and self._loop.is_running():
            self._stopping = asyncio.run_coroutine_threadsafe(self._server.stop(grace),
                                                              self._loop)

    def stop(self, grace: float) -> None:
        self.begin_stop(grace)
        if self._stopping is not None:
            self._stopping.result(grace + 5)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
