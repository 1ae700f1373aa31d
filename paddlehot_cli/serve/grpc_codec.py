"""KServe v2 / Triton gRPC messages <-> numpy, kept apart from the servicer like protocol.py is
from the REST app.

The messages are the ones tritonclient[grpc] ships (`service_pb2`, `model_config_pb2`): the same
definitions Triton and KServe serve, so nothing here is hand-written wire format.

Inputs come either all as `raw_input_contents` (little-endian, row-major bytes, one entry per
input, in input order; what tritonclient sends) or all as typed `contents`. The response answers
in kind: raw outputs for a raw request, typed contents otherwise (FP16 has no typed field, so an
FP16 output makes the whole response raw).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

from paddlehot_cli.serve.protocol import DATATYPES, ProtocolError, checked_shape, datatype_of

# datatype -> the InferTensorContents field holding its values (FP16 travels raw only)
CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents",
}


def _dtype(name: str, datatype: str) -> np.dtype:
    if datatype == "BYTES":
        raise ProtocolError(f"input '{name}': datatype BYTES is not supported by paddlehot models")
    if datatype not in DATATYPES:
        raise ProtocolError(f"input '{name}': unknown datatype {datatype!r}")
    return np.dtype(DATATYPES[datatype])


def _from_raw(name: str, datatype: str, dtype: np.dtype, shape: tuple[int, ...], count: int,
              raw: bytes) -> np.ndarray:
    want = count * dtype.itemsize
    if len(raw) != want:
        raise ProtocolError(f"input '{name}': raw_input_contents has {len(raw)} bytes, but shape "
                            f"{list(shape)} of {datatype} needs {want}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)


def _from_contents(name: str, datatype: str, dtype: np.dtype, shape: tuple[int, ...], count: int,
                   contents: Any) -> np.ndarray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise ProtocolError(f"input '{name}': {datatype} has no typed contents field; "
                            "send it in raw_input_contents")
    stray = [f.name for f, _ in contents.ListFields() if f.name != field]
    if stray:
        raise ProtocolError(f"input '{name}': {datatype} values belong in contents.{field}, "
                            f"not contents.{stray[0]}")
    values = getattr(contents, field)
    if len(values) != count:
        raise ProtocolError(f"input '{name}': contents.{field} has {len(values)} elements, "
                            f"shape {list(shape)} needs {count}")
    wide = np.asarray(values, dtype=np.float64 if dtype.kind == "f" else
                      np.uint64 if dtype.kind == "u" else np.int64 if dtype.kind == "i" else bool)
    if dtype.kind in "iu" and wide.size:
        info = np.iinfo(dtype)
        if wide.min() < info.min or wide.max() > info.max:
            raise ProtocolError(f"input '{name}': a value is out of range for {datatype}")
    return wide.astype(dtype, copy=False).reshape(shape)


def decode_inputs(request: Any) -> dict[str, np.ndarray]:
    """The request's input tensors by name. Raises ProtocolError naming the first problem."""
    raw = request.raw_input_contents
    if not request.inputs:
        raise ProtocolError("'inputs' must be a non-empty list")
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(f"raw_input_contents has {len(raw)} entries for "
                            f"{len(request.inputs)} inputs; give one per input, or none")
    tensors: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
        name = tensor.name
        if not name:
            raise ProtocolError("an input has no 'name'")
        if name in tensors:
            raise ProtocolError(f"input '{name}' is given twice")
        dtype = _dtype(name, tensor.datatype)
        shape, count = checked_shape(name, list(tensor.shape))
        if raw:
            if tensor.HasField("contents"):
                raise ProtocolError(f"input '{name}' has contents, but the request uses "
                                    "raw_input_contents (use one or the other for all inputs)")
            tensors[name] = _from_raw(name, tensor.datatype, dtype, shape, count, raw[index])
        else:
            tensors[name] = _from_contents(name, tensor.datatype, dtype, shape, count,
                                           tensor.contents)
    return tensors


def requested_outputs(request: Any, names: Sequence[str]) -> list[str]:
    """The outputs to return, in the order asked (all, in model order, when none are named)."""
    if not request.outputs:
        return list(names)
    wanted = [o.name for o in request.outputs]
    for n in wanted:
        if n not in names:
            raise ProtocolError(f"unknown output '{n}'; the model has: {', '.join(names)}")
    return wanted


def encode_response(model: str, version: str, request_id: str, names: Sequence[str],
                    values: Sequence[np.ndarray], raw: bool) -> Any:
    response = pb.ModelInferResponse(model_name=model, model_version=version, id=request_id)
    datatypes = [datatype_of(v.dtype) for v in values]
    raw = raw or any(dt not in CONTENTS_FIELD for dt in datatypes)
    for name, arr, datatype in zip(names, values, datatypes):
        out = response.outputs.add(name=name, datatype=datatype, shape=arr.shape)
        if raw:
            response.raw_output_contents.append(
                np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
        else:
            getattr(out.contents, CONTENTS_FIELD[datatype]).extend(arr.reshape(-1).tolist())
    return response


def tensor_metadata(specs: Sequence[Any]) -> list[Any]:
    return [pb.ModelMetadataResponse.TensorMetadata(name=s.name, datatype=datatype_of(s.dtype),
                                                    shape=s.shape) for s in specs]


def model_config(name: str, platform: str, manifest: Any) -> Any:
    """A minimal Triton ModelConfig (what perf_analyzer and get_model_config read): no batching
    dimension is implied (max_batch_size 0), dims carry -1 for dynamic axes."""

    def io(spec: Any, cls: Any) -> Any:
        return cls(name=spec.name, data_type=mc.DataType.Value(f"TYPE_{datatype_of(spec.dtype)}"),
                   dims=spec.shape)

    return mc.ModelConfig(
        name=name, platform=platform, max_batch_size=0,
        input=[io(s, mc.ModelInput) for s in manifest.inputs],
        output=[io(s, mc.ModelOutput) for s in manifest.outputs],
    )
