"""A lean KServe v2 / Triton gRPC client for the load generator: one channel per worker thread,
tensors as raw_input_contents (what tritonclient sends), outputs decoded from
raw_output_contents. It uses the generated stub directly: building tritonclient's InferInput
objects per request would cost the client more CPU than the server spends on a small model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from paddlehot_cli.bench.oip_client import NUMPY_DTYPES, OIP_DTYPES, RequestFailed
from paddlehot_cli.errors import UserError

_FORM = "write grpc://HOST:PORT/MODEL[/VERSION]"


@dataclass(frozen=True)
class GrpcEndpoint:
    host: str
    port: int
    model: str
    version: str = ""

    @classmethod
    def parse(cls, url: str) -> GrpcEndpoint:
        parts = urlsplit(url)
        if parts.scheme != "grpc" or not parts.hostname or not parts.port:
            raise UserError(f"malformed gRPC URL '{url}'", hint=_FORM)
        segments = [s for s in parts.path.split("/") if s]
        if not 1 <= len(segments) <= 2:
            raise UserError(f"URL '{url}' does not name a model", hint=_FORM)
        return cls(parts.hostname, parts.port, segments[0],
                   segments[1] if len(segments) == 2 else "")

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class GrpcClient:
    """One channel (one HTTP/2 connection) per client, like one kept-alive HTTP connection."""

    def __init__(self, endpoint: GrpcEndpoint, timeout: float = 30.0):
        import grpc
        from tritonclient.grpc import service_pb2 as pb
        from tritonclient.grpc import service_pb2_grpc as pb_grpc

        self.endpoint, self.timeout = endpoint, timeout
        self._pb, self._error = pb, grpc.RpcError
        self._channel = grpc.insecure_channel(endpoint.address, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except self._error as exc:
            raise RequestFailed(f"gRPC {exc.code().name}: {exc.details()}") from None

    def metadata(self) -> Any:
        return self._call("ModelMetadata", self._pb.ModelMetadataRequest(
            name=self.endpoint.model, version=self.endpoint.version))

    def infer(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
        """Run one inference; return (outputs, the model_version the server names)."""
        request = self._pb.ModelInferRequest(model_name=self.endpoint.model,
                                             model_version=self.endpoint.version)
        for name, arr in inputs.items():
            request.inputs.add(name=name, datatype=OIP_DTYPES[str(arr.dtype)], shape=arr.shape)
            request.raw_input_contents.append(np.ascontiguousarray(arr).tobytes())
        response = self._call("ModelInfer", request)
        outputs = {
            out.name: np.frombuffer(raw, dtype=NUMPY_DTYPES.get(out.datatype, "float32"))
            .reshape(tuple(out.shape))
            for out, raw in zip(response.outputs, response.raw_output_contents)
        }
        return outputs, response.model_version
