"""Model signatures: tensor specs, parsing `NAME:DTYPE:SHAPE`, and checking request tensors.

Pure numpy: the serve layer, the plugin loader and abi-check's baseline rules share it. numpy
is imported where arrays are checked, not with the module: abi-check reads specs only, and its
start-up must not pay for numpy (~0.14 s).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paddlehot_cli.errors import InputMismatch, UserError

if TYPE_CHECKING:
    import numpy as np

# The dtypes paddlehot exports; names are numpy's (and the manifest's) spelling.
DTYPES = ("float32", "float16", "float64", "int32", "int64", "uint8", "int8", "bool")

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")  # fullmatch: "$" would accept a trailing newline


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]  # -1 marks a dynamic dim

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: Any) -> TensorSpec:
        if not isinstance(data, Mapping):
            raise UserError(f"tensor spec must be an object, got {type(data).__name__}")
        name, dtype, shape = data.get("name"), data.get("dtype"), data.get("shape")
        if not isinstance(name, str) or not name:
            raise UserError("tensor spec has no valid 'name'")
        if dtype not in DTYPES:
            raise UserError(f"tensor '{name}' has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and (d == -1 or d >= 0) for d in shape
        ):
            raise UserError(f"tensor '{name}' has an invalid shape {shape!r}")
        return cls(name, dtype, tuple(shape))

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.name}:{self.dtype}:[{dims}]"


def parse_dtype(text: str) -> str:
    value = text.strip().lower()
    aliases = {"fp32": "float32", "fp16": "float16", "fp64": "float64", "float": "float32"}
    value = aliases.get(value, value)
    if value not in DTYPES:
        raise UserError(f"unknown dtype '{text}'", hint="one of " + ", ".join(DTYPES))
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise UserError(f"malformed shape '{text}'", hint="write it like [-1,3,224,224]")
    inner = body[1:-1].strip()
    if not inner:
        raise UserError(f"malformed shape '{text}': a model input needs at least one dim")
    dims = []
    for part in inner.split(","):
        part = part.strip()
        try:
            dim = int(part)
        except ValueError:
            raise UserError(
                f"malformed shape '{text}': '{part}' is not an integer",
                hint="use -1 for a dynamic dim",
            ) from None
        if dim == 0 or dim < -1:
            raise UserError(f"malformed shape '{text}': dim {dim} must be -1 or positive")
        dims.append(dim)
    return tuple(dims)


def check_tensor_name(name: str, what: str = "tensor") -> str:
    if not _NAME_RE.fullmatch(name):
        raise UserError(
            f"invalid {what} name '{name}'",
            hint="letters, digits, '_', '.', '-'; starting with a letter or '_'",
        )
    return name


def parse_input_spec(text: str) -> TensorSpec:
    """Parse `NAME:DTYPE:SHAPE`, e.g. `x:float32:[-1,3,224,224]`."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise UserError(
            f"malformed input '{text}'", hint="write NAME:DTYPE:SHAPE, e.g. x:float32:[-1,16]"
        )
    name, dtype, shape = parts
    return TensorSpec(check_tensor_name(name.strip(), "input"), parse_dtype(dtype),
                      parse_shape(shape))


def check_inputs(
    specs: Iterable[TensorSpec], feeds: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Check request tensors against the signature; return them as C-contiguous arrays.

    Raises InputMismatch naming the first problem, before Paddle sees anything.
    """
    import numpy as np  # a dict lookup once imported (see the module docstring)

    specs = list(specs)
    if type(feeds) is not dict and not isinstance(feeds, Mapping):  # typing's check is slow
        raise InputMismatch("inputs must be a mapping of input name to array")
    expected = [s.name for s in specs]
    unknown = [k for k in feeds if k not in expected]
    if unknown:
        raise InputMismatch(
            f"unknown input '{unknown[0]}'; the model takes: {', '.join(expected)}"
        )
    missing = [n for n in expected if n not in feeds]
    if missing:
        raise InputMismatch(f"missing input '{missing[0]}'; the model takes: {', '.join(expected)}")
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        arr = feeds[spec.name]
        if not isinstance(arr, np.ndarray):
            raise InputMismatch(f"input '{spec.name}' must be a numpy array")
        if arr.dtype != np.dtype(spec.dtype):
            raise InputMismatch(
                f"input '{spec.name}' has dtype {arr.dtype}, the model expects {spec.dtype}"
            )
        check_shape(spec, arr.shape)
        out[spec.name] = np.ascontiguousarray(arr)
    return out


def zero_inputs(specs: Iterable[TensorSpec]) -> dict[str, np.ndarray]:
    """Zeros for every input, dynamic dims 1: a first call when no real input was seen yet."""
    import numpy as np

    return {s.name: np.zeros([1 if d < 0 else d for d in s.shape], dtype=s.dtype) for s in specs}


def check_shape(spec: TensorSpec, shape: tuple[int, ...]) -> None:
    if len(shape) != len(spec.shape):
        raise InputMismatch(
            f"input '{spec.name}' has rank {len(shape)} (shape {list(shape)}), "
            f"the model expects rank {len(spec.shape)} {list(spec.shape)}"
        )
    for axis, (got, want) in enumerate(zip(shape, spec.shape)):
        if want != -1 and got != want:
            raise InputMismatch(
                f"input '{spec.name}' has shape {list(shape)}, the model expects "
                f"{list(spec.shape)} (dim {axis} must be {want})"
            )
        if got == 0:
            raise InputMismatch(f"input '{spec.name}' has an empty dim {axis}")
