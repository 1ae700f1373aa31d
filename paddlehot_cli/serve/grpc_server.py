"""KServe v2 / Triton GRPCInferenceService over the core Manager (`paddlehot serve --grpc-port`).

The servicer subclasses the base class tritonclient[grpc] generates from Triton's
grpc_service.proto, so the method names and messages are Triton's own; the RPCs paddlehot has no
use for (shared memory, tracing, statistics, streaming) keep the base class's UNIMPLEMENTED.

Every check and message is shared with the REST front end (serve.checks, core.signature,
serve.protocol); failures carry an HTTP status, mapped to a gRPC status code in STATUS_CODES.
A request runs exactly as over REST: acquire a handle (routing: version, label, SemVer range,
breaker), check the inputs against the signature, submit to the version's worker, answer.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from paddlehot_cli import __version__
from paddlehot_cli.core.router import RouteError, Unavailable
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.errors import InputMismatch, UserError, short_error
from paddlehot_cli.serve import checks, grpc_codec
from paddlehot_cli.serve.checks import Rejected
from paddlehot_cli.serve.protocol import ProtocolError

log = logging.getLogger("paddlehot.serve")

# The one place an HTTP status becomes a gRPC status code.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.UNAVAILABLE,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}
EXTENSIONS = ["model_repository", "paddlehot_labels"]


def _rpc(method: Callable) -> Callable:
    """Turn Rejected / RouteError / ProtocolError into the mapped status with the same message."""

    @functools.wraps(method)
    def wrapper(self: InferenceServicer, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Rejected as exc:
            status, message = exc.status, exc.message
        except RouteError as exc:
            status, message = exc.status, exc.message
        except ProtocolError as exc:
            status, message = 400, str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: log it, answer INTERNAL, keep serving
            log.exception("internal error in gRPC %s", method.__name__)
            status, message = 500, f"internal error: {type(exc).__name__}"
        if status != 500:  # a failed inference ran: it is counted as an outcome, not a rejection
            self.metrics.rejected.labels(str(status)).inc()
        context.abort(STATUS_CODES.get(status, grpc.StatusCode.INTERNAL), message)

    return wrapper


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, manager: Any, metrics: Any, options: Any):
        self.manager, self.metrics, self.options = manager, metrics, options

    # -- health and metadata ---------------------------------------------------------------

    def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.manager.ready())

    def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(name="paddlehot", version=__version__,
                                         extensions=EXTENSIONS)

    def _target(self, name: str, version: str) -> tuple[str, str | None]:
        return checks.model_name(name), checks.selector(version) if version else None

    @_rpc
    def ModelReady(self, request: Any, context: Any) -> Any:
        name, wanted = self._target(request.name, request.version)
        try:
            checks.resolve_version(self.manager, name, wanted)
        except (Rejected, RouteError):
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    def _platform(self, servable: Any) -> str:
        return "paddlehot_plugin" if getattr(servable, "kind", "") == "plugin" \
            else self.options.platform

    @_rpc
    def ModelMetadata(self, request: Any, context: Any) -> Any:
        name, wanted = self._target(request.name, request.version)
        version = checks.resolve_version(self.manager, name, wanted)
        servable = self.manager.servable(name, version)
        return pb.ModelMetadataResponse(
            name=name, versions=self.manager.loaded_versions(name),
            platform=self._platform(servable),
            inputs=grpc_codec.tensor_metadata(servable.manifest.inputs),
            outputs=grpc_codec.tensor_metadata(servable.manifest.outputs))

    @_rpc
    def ModelConfig(self, request: Any, context: Any) -> Any:
        name, wanted = self._target(request.name, request.version)
        servable = self.manager.servable(name, checks.resolve_version(self.manager, name, wanted))
        return pb.ModelConfigResponse(config=grpc_codec.model_config(
            name, self._platform(servable), servable.manifest))

    # -- inference -------------------------------------------------------------------------

    @_rpc
    def ModelInfer(self, request: Any, context: Any) -> Any:
        start = time.perf_counter()
        name, wanted = self._target(request.model_name, request.model_version)
        tensors = grpc_codec.decode_inputs(request)
        handle = self.manager.acquire(name, wanted)  # RouteError: 404 / 503
        version, manifest = handle.version, handle.servable.manifest
        out_names = [s.name for s in manifest.outputs]
        try:
            feeds = check_inputs(manifest.inputs, tensors)
            returned = grpc_codec.requested_outputs(request, out_names)
        except (InputMismatch, ProtocolError) as exc:
            handle.release()
            self.metrics.observe(name, version, "bad_input", time.perf_counter() - start, "grpc")
            raise Rejected(400, str(exc)) from None
        finished = threading.Event()
        result: list = [None, None]

        def done(out: Any, exc: BaseException | None) -> None:
            result[0], result[1] = out, exc
            finished.set()

        try:
            self.manager.submit(handle, feeds, done)  # the handle is released after `done`
        except Exception as exc:  # noqa: BLE001 - the version is shutting down or its queue is full
            raise Rejected(503, f"version {version} of model '{name}' is unavailable: "
                                f"{short_error(exc)}") from None
        finished.wait()
        outputs, error = result
        if isinstance(error, InputMismatch):
            self.metrics.observe(name, version, "bad_input", time.perf_counter() - start, "grpc")
            raise Rejected(400, error.message)
        if error is not None:
            self.metrics.observe(name, version, "error", time.perf_counter() - start, "grpc")
            log.warning("inference on %s %s failed: %s", name, version, short_error(error))
            raise Rejected(500, f"inference failed on {name} {version}: {short_error(error)}")
        by_name = dict(zip(out_names, outputs))
        response = grpc_codec.encode_response(
            name, version, request.id, returned, [by_name[n] for n in returned],
            raw=bool(request.raw_input_contents))
        self.metrics.observe(name, version, "ok", time.perf_counter() - start, "grpc")
        return response

    # -- repository extension --------------------------------------------------------------

    def _check_admin(self, context: Any) -> None:
        meta = {k.lower(): v for k, v in context.invocation_metadata()}
        given = checks.bearer_token(meta.get("authorization", "")) or meta.get("x-admin-token", "")
        checks.check_admin(self.options.admin_token, self.options.admin_open, given)

    @_rpc
    def RepositoryIndex(self, request: Any, context: Any) -> Any:
        rows = self.manager.status()
        if request.ready:
            rows = [r for r in rows if r["state"] == "READY"]
        return pb.RepositoryIndexResponse(models=[
            pb.RepositoryIndexResponse.ModelIndex(name=r["name"], version=r["version"],
                                                  state=r["state"], reason=r["reason"])
            for r in rows])

    def _admin_model(self, request: Any, context: Any) -> str:
        self._check_admin(context)
        return checks.model_name(request.model_name)

    @_rpc
    def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        name = self._admin_model(request, context)
        if request.parameters:  # Triton's config / file: overrides
            raise Rejected(400, "paddlehot loads versions from its repository; load parameters "
                                f"({', '.join(sorted(request.parameters))}) are not supported")
        try:
            self.manager.load_model(name)
        except Unavailable as exc:  # no version loads: a bad request for this model, as over REST
            raise Rejected(400, exc.message) from None
        return pb.RepositoryModelLoadResponse()

    @_rpc
    def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        # `unload_dependents` (Triton ensembles) has no meaning here: a model has no dependents
        self.manager.unload_model(self._admin_model(request, context))
        return pb.RepositoryModelUnloadResponse()


def _can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class GrpcFrontEnd:
    """The gRPC server: its own worker threads (one per in-flight call; inference itself runs on
    each version's worker, as for REST) and the request size limit of --max-body-mb."""

    def __init__(self, manager: Any, metrics: Any, options: Any, workers: int = 16):
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="paddlehot-grpc")
        self._server = grpc.server(self._executor, options=[
            ("grpc.max_receive_message_length", options.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # a port in use must fail, not be shared
        ])
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(manager, metrics, options), self._server)
        self.port: int | None = None
        self._stopped: threading.Event | None = None

    def bind(self, host: str, port: int) -> int:
        in_use = UserError(f"gRPC port {port} on {host} is already in use or cannot be bound",
                           hint="pick another with --grpc-port")
        if port and not _can_bind(host, port):  # before grpc logs its own multi-line complaint
            raise in_use
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError:  # grpcio >= 1.54 raises where older versions returned 0
            bound = 0
        if not bound:
            raise in_use
        self.port = bound
        return bound

    def start(self) -> None:
        self._server.start()

    def begin_stop(self, grace: float) -> None:
        """Refuse new calls now; calls in flight get `grace` seconds to finish."""
        if self._stopped is None:
            self._stopped = self._server.stop(grace)

    def stop(self, grace: float) -> None:
        self.begin_stop(grace)
        assert self._stopped is not None
        self._stopped.wait(grace + 5)
        self._executor.shutdown(wait=False, cancel_futures=True)
