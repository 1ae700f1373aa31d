"""A small Open Inference Protocol v2 client: keep-alive, binary tensor extension, timeouts.

One client per thread (http.client connections are not thread-safe). It speaks to paddlehot,
Triton or KServe alike; no third-party dependency so the load generator stays cheap per request.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import numpy as np

from paddlehot_cli.errors import UserError

OIP_DTYPES = {
    "float32": "FP32", "float16": "FP16", "float64": "FP64", "int32": "INT32",
    "int64": "INT64", "uint8": "UINT8", "int8": "INT8", "bool": "BOOL",
}
NUMPY_DTYPES = {v: k for k, v in OIP_DTYPES.items()}


class RequestFailed(Exception):
    """The server answered with an error status, or the connection failed."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    model: str
    version: str | None = None

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UserError(f"malformed URL '{url}'", hint="write http://HOST:PORT/MODEL[/VERSION]")
        segments = [s for s in parts.path.split("/") if s]
        if not segments or len(segments) > 2:
            raise UserError(
                f"URL '{url}' does not name a model", hint="write http://HOST:PORT/MODEL[/VERSION]"
            )
        return cls(parts.hostname, parts.port or 80, segments[0],
                   segments[1] if len(segments) == 2 else None)

    @property
    def model_path(self) -> str:
        base = f"/v2/models/{self.model}"
        return f"{base}/versions/{self.version}" if self.version else base


class OipClient:
    def __init__(self, endpoint: Endpoint, timeout: float = 30.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(
        self, method: str, path: str, body: bytes | tuple | None = None,
        headers: Mapping[str, str] = {},
    ) -> tuple[int, Mapping[str, str], bytes]:
        for attempt in (0, 1):  # one retry when a kept-alive connection was closed by the server
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self.endpoint.host, self.endpoint.port, timeout=self.timeout
                )
            try:
                self._conn.request(method, path, body=body, headers=dict(headers))
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise RequestFailed("connection closed by the server") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                reason = "timed out" if isinstance(exc, socket.timeout) else str(exc)
                raise RequestFailed(
                    f"{self.endpoint.host}:{self.endpoint.port}: {reason or type(exc).__name__}"
                ) from None
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> Any:
        status, _, data = self._request("GET", path)
        if status != 200:
            raise RequestFailed(_error_text(status, data), status)
        return json.loads(data)

    def metadata(self) -> Any:
        return self.get_json(self.endpoint.model_path)

    def post_json(self, path: str, payload: Any) -> Any:
        status, _, data = self._request(
            "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise RequestFailed(_error_text(status, data), status)
        return json.loads(data) if data else {}

    def infer(
        self, inputs: Mapping[str, np.ndarray], binary: bool = True
    ) -> tuple[dict[str, np.ndarray], str | None]:
        """Run one inference; return (outputs, the model_version the server names)."""
        body, headers = encode_request(inputs, binary)
        status, resp_headers, data = self._request(
            "POST", self.endpoint.model_path + "/infer", body, headers
        )
        if status != 200:
            raise RequestFailed(_error_text(status, data), status)
        return decode_response(resp_headers, data)


def _error_text(status: int, data: bytes) -> str:
    try:
        message = json.loads(data).get("error", "")
    except (ValueError, AttributeError):
        message = data[:200].decode("utf-8", "replace")
    return f"HTTP {status}: {message}".strip()


def encode_request(
    inputs: Mapping[str, np.ndarray], binary: bool
) -> tuple[bytes | tuple, dict[str, str]]:
    tensors = []
    blobs = []
    for name, arr in inputs.items():
        entry: dict[str, Any] = {
            "name": name, "shape": list(arr.shape), "datatype": OIP_DTYPES[str(arr.dtype)],
        }
        if binary:
            # a view, not a copy: large tensors go to the socket straight from the array
            blob = memoryview(np.ascontiguousarray(arr)).cast("B")
            entry["parameters"] = {"binary_data_size": blob.nbytes}
            blobs.append(blob)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        tensors.append(entry)
    header: dict[str, Any] = {"inputs": tensors}
    if binary:
        header["parameters"] = {"binary_data_output": True}
        head = json.dumps(header).encode()
        return (head, *blobs), {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(head) + sum(b.nbytes for b in blobs)),
            "Inference-Header-Content-Length": str(len(head)),
        }
    return json.dumps(header).encode(), {"Content-Type": "application/json"}


def decode_response(
    headers: Mapping[str, str], data: bytes
) -> tuple[dict[str, np.ndarray], str | None]:
    head_len = headers.get("inference-header-content-length")
    head = json.loads(data[: int(head_len)] if head_len else data)
    offset = int(head_len) if head_len else 0
    outputs = {}
    for out in head.get("outputs", []):
        dtype = np.dtype(NUMPY_DTYPES.get(out["datatype"], "float32"))
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            arr = np.frombuffer(data, dtype=dtype, count=int(size) // dtype.itemsize, offset=offset)
            offset += int(size)
        else:
            arr = np.asarray(out.get("data", []), dtype=dtype)
        outputs[out["name"]] = arr.reshape(out["shape"])
    return outputs, head.get("model_version")
