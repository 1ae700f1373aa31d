"""Open Inference Protocol v2 request/response bodies, with Triton's binary tensor extension.

Binary extension: the body is a JSON header of `Inference-Header-Content-Length` bytes followed
by raw little-endian, row-major tensor bytes, in input order, for every input whose
`parameters.binary_data_size` is set. Outputs are returned the same way when the request sets
`parameters.binary_data_output` or an output's `parameters.binary_data`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

DATATYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64",
}
TO_DATATYPE = {np.dtype(v): k for k, v in DATATYPES.items()}
_NP = {k: np.dtype(v) for k, v in DATATYPES.items()}
MAX_ELEMENTS = 1 << 28
MAX_RANK = 32  # Paddle's kernels stop at 9; numpy at 64
MAX_DIM = (1 << 31) - 1  # Paddle Inference's C API carries dims as int32


class ProtocolError(ValueError):
    """A malformed request: answered with 400 and {"error": message}."""


def datatype_of(dtype: str | np.dtype) -> str:
    return TO_DATATYPE[np.dtype(dtype)]


_INFLATE_STEP = 1 << 20


def decompress(body: bytes, encoding: str | None, limit: int,
               reserve: Callable[[int], bool] | None = None) -> bytes:
    """The body inflated, within `limit` bytes (BodyTooLarge beyond). `reserve(n)` is asked
    for every MiB produced, before it is kept: False stops here (MemoryBudget)."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise ProtocolError(f"unsupported Content-Encoding '{encoding}'")
    d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    out = bytearray()
    pending = body
    try:
        while len(out) <= limit:
            piece = d.decompress(pending, min(_INFLATE_STEP, limit + 1 - len(out)))
            pending = d.unconsumed_tail
            if not piece:
                break
            if reserve is not None and not reserve(len(piece)):
                raise MemoryBudget("the server holds as many request bytes as it may; retry later")
            out += piece
    except zlib.error as exc:
        raise ProtocolError(f"body is not valid {encoding} data ({exc})") from None
    if len(out) > limit:
        raise BodyTooLarge(f"decompressed body is larger than {limit} bytes")
    return bytes(out) if len(out) < _INFLATE_STEP else out


class MemoryBudget(RuntimeError):
    """A server-wide memory bound would be exceeded: a 503, not the client's fault."""


class BodyTooLarge(ValueError):
    pass


class InferRequest:
    __slots__ = ("binary_default", "id", "inputs", "outputs", "parameters")

    def __init__(self) -> None:
        self.id: Any = None
        self.inputs: dict[str, np.ndarray] = {}
        self.outputs: list[tuple[str, bool | None]] | None = None  # (name, binary) requested
        self.binary_default = False
        self.parameters: dict = {}


def checked_shape(name: str, dims: Any) -> tuple[tuple[int, ...], int]:
    """(shape, element count) of an input's declared shape, or ProtocolError (a 400 on every
    front end): non-negative integers, at most MAX_RANK of them, each at most MAX_DIM, and at
    most MAX_ELEMENTS elements."""
    if not isinstance(dims, (list, tuple)) or not all(type(d) is int and 0 <= d for d in dims):
        raise ProtocolError(f"input '{name}': 'shape' must be a list of non-negative integers")
    if len(dims) > MAX_RANK:
        raise ProtocolError(f"input '{name}': shape has {len(dims)} dimensions, at most "
                            f"{MAX_RANK} are supported")
    if any(d > MAX_DIM for d in dims):
        raise ProtocolError(f"input '{name}': shape {list(dims)} has a dimension over {MAX_DIM}")
    count = 1
    for d in dims:
        count *= d
    if count > MAX_ELEMENTS:
        raise ProtocolError(f"input '{name}': shape {list(dims)} is too large")
    return tuple(dims), count


def _flat(params: Any, where: str) -> dict:
    """A `parameters` object: the protocol's values are strings, numbers and booleans, so a
    nested one (hundreds of levels deep, say) is refused here instead of echoed back."""
    if not isinstance(params, dict):
        raise ProtocolError(f"{where}'parameters' must be an object")
    for key, value in params.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ProtocolError(f"{where}parameter '{key[:64]}' must be a string, number or "
                                "boolean")
    return params


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    if header_length is not None:
        try:
            hlen = int(header_length)
        except ValueError:
            raise ProtocolError("Inference-Header-Content-Length must be an integer") from None
        if not 0 < hlen <= len(body):
            raise ProtocolError(
                f"Inference-Header-Content-Length is {hlen} but the body has {len(body)} bytes"
            )
        header, binary = memoryview(body)[:hlen], memoryview(body)[hlen:]
    else:
        header, binary = body, memoryview(b"")
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"malformed JSON body: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("the request body must be a JSON object")
    req = InferRequest()
    req.id = doc.get("id")
    if req.id is not None and not isinstance(req.id, (str, int, float)):
        raise ProtocolError("'id' must be a string")
    params = _flat(doc.get("parameters") or {}, "")
    req.parameters = params
    req.binary_default = bool(params.get("binary_data_output", False))
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("'inputs' must be a non-empty list")
    offset = 0
    for item in inputs:
        if not isinstance(item, dict):
            raise ProtocolError("each input must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError("an input has no 'name'")
        if name in req.inputs:
            raise ProtocolError(f"input '{name}' is given twice")
        datatype = item.get("datatype")
        dtype = _NP.get(datatype) if isinstance(datatype, str) else None
        if dtype is None:
            if datatype == "BYTES":
                raise ProtocolError(f"input '{name}': datatype BYTES is not supported by paddlehot models")
            raise ProtocolError(f"input '{name}': unknown datatype {datatype!r}")
        shape, count = checked_shape(name, item.get("shape"))
        iparams = _flat(item.get("parameters") or {}, f"input '{name}': ")
        size = iparams.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0:
                raise ProtocolError(f"input '{name}': binary_data_size must be a non-negative integer")
            if "data" in item:
                raise ProtocolError(f"input '{name}' has both 'data' and binary_data_size")
            want = count * dtype.itemsize
            if size != want:
                raise ProtocolError(
                    f"input '{name}': binary_data_size is {size} bytes, but shape {list(shape)} "
                    f"of {datatype} needs {want}"
                )
            if offset + size > len(binary):
                raise ProtocolError(
                    f"input '{name}': binary data ends at byte {offset + size}, the body has "
                    f"only {len(binary)} binary bytes"
                )
            arr = np.frombuffer(binary[offset:offset + size], dtype=dtype.newbyteorder("<")).reshape(shape)
            offset += size
        else:
            data = item.get("data")
            if data is None:
                raise ProtocolError(f"input '{name}' has neither 'data' nor binary_data_size")
            try:
                arr = np.array(data, dtype=dtype)
            except (ValueError, TypeError, OverflowError):
                raise ProtocolError(f"input '{name}': 'data' is not a list of {datatype} values") from None
            if arr.size != count:
                raise ProtocolError(
                    f"input '{name}': 'data' has {arr.size} elements, shape {list(shape)} needs {count}"
                )
            if datatype == "BOOL" and not _all_bool(data):
                raise ProtocolError(f"input '{name}': BOOL data must be true/false")
            arr = arr.reshape(shape)
        req.inputs[name] = arr
    if offset != len(binary):
        raise ProtocolError(
            f"the body has {len(binary)} bytes of binary data, the inputs declare {offset}"
        )
    outs = doc.get("outputs")
    if outs is not None:
        if not isinstance(outs, list):
            raise ProtocolError("'outputs' must be a list")
        req.outputs = []
        for o in outs:
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise ProtocolError("each requested output must be an object with a 'name'")
            op = _flat(o.get("parameters") or {}, f"output '{o['name'][:64]}': ")
            b = op.get("binary_data")
            req.outputs.append((o["name"], None if b is None else bool(b)))
    return req


def _all_bool(data: Any) -> bool:
    if isinstance(data, list):
        return all(_all_bool(x) for x in data)
    return isinstance(data, bool)


def encode_infer_response(
    model: str,
    version: str,
    request: InferRequest,
    names: Sequence[str],
    values: Sequence[np.ndarray],
) -> tuple[bytes, int | None]:
    """(body, json header length or None). Raises ProtocolError for an unknown requested output."""
    by_name = dict(zip(names, values))
    if request.outputs is None:
        wanted = [(n, None) for n in names]
    else:
        wanted = request.outputs
        for n, _ in wanted:
            if n not in by_name:
                raise ProtocolError(f"unknown output '{n}'; the model has: {', '.join(names)}")
    outputs = []
    blobs: list[bytes] = []
    for n, binary in wanted:
        arr = by_name[n]
        if binary is None:
            binary = request.binary_default
        dt = arr.dtype
        entry: dict[str, Any] = {"name": n, "datatype": TO_DATATYPE[dt], "shape": list(arr.shape)}
        if binary:
            raw = np.ascontiguousarray(arr, dtype=dt.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            flat = np.ascontiguousarray(arr).reshape(-1)
            entry["data"] = flat.tolist() if dt == np.float16 else flat
        outputs.append(entry)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": outputs}
    if request.id is not None:
        doc["id"] = request.id
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def tensor_metadata(specs: Sequence[Any]) -> list[dict]:
    return [{"name": s.name, "datatype": datatype_of(s.dtype), "shape": list(s.shape)} for s in specs]


def dumps(doc: Mapping[str, Any] | list) -> bytes:
    return orjson.dumps(doc)
