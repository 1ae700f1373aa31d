"""Trace a Layer with to_static and save it in the PIR or the legacy program format."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

from paddlehot_cli.core.manifest import FORMATS
from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.errors import UserError, short_error

_DTYPE_NAMES = {
    "float32": "float32", "float16": "float16", "float64": "float64", "int32": "int32",
    "int64": "int64", "uint8": "uint8", "int8": "int8", "bool": "bool",
}


def prepare_format(fmt: str) -> None:
    """Select the program format before paddle is imported (Paddle reads the flag only then)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'", hint="use pir or legacy")
    want_pir = fmt == "pir"
    if "paddle" not in sys.modules:
        os.environ["FLAGS_enable_pir_api"] = "1" if want_pir else "0"
        return
    import paddle

    active = bool(paddle.get_flags(["FLAGS_enable_pir_api"])["FLAGS_enable_pir_api"])
    if active != want_pir:
        raise UserError(
            f"this process already imported paddle with the {'pir' if active else 'legacy'} "
            f"program format; export --model-format {fmt} needs a fresh process",
            hint="run `paddlehot export` as its own command",
        )


def _dtype_name(dtype: Any) -> str:
    text = str(dtype).lower()
    for token, name in (
        ("float32", "float32"), ("fp32", "float32"), ("float16", "float16"),
        ("fp16", "float16"), ("float64", "float64"), ("fp64", "float64"), ("int32", "int32"),
        ("int64", "int64"), ("uint8", "uint8"), ("int8", "int8"), ("bool", "bool"),
    ):
        if token in text:
            return name
    return text


def _pir_traces(layer: Any, specs: Sequence[Any]) -> bool:
    """Whether the PIR format traces `layer` (checked in this process: IrGuard switches paddle
    to PIR for one block), written to a temporary directory that is then removed."""
    import tempfile

    import paddle

    try:
        from paddle.pir_utils import IrGuard
    except ImportError:
        return False
    with tempfile.TemporaryDirectory(prefix="paddlehot-pir-check-") as tmp:
        try:
            with IrGuard():
                static = paddle.jit.to_static(layer, input_spec=list(specs), full_graph=True)
                paddle.jit.save(static, str(Path(tmp) / "model"))
        except Exception:  # noqa: BLE001 - PIR cannot trace it either: the general error stands
            return False
    return True


def trace_and_save(
    layer: Any, inputs: Sequence[TensorSpec], out_dir: Path, fmt: str
) -> list[TensorSpec]:
    """Save `layer` as out_dir/model.{json|pdmodel} + model.pdiparams; return output specs
    (names filled in later from the predictor)."""
    import paddle
    from paddle.static import InputSpec

    layer.eval()
    specs = [InputSpec(list(s.shape), _DTYPE_NAMES[s.dtype], s.name) for s in inputs]
    try:
        static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
        paddle.jit.save(static, str(out_dir / "model"))
    except Exception as exc:
        if fmt == "legacy" and _pir_traces(layer, specs):
            raise UserError(
                f"the legacy program format could not trace this model ({short_error(exc)}), "
                "but the PIR format does: export with --model-format pir",
                hint="Paddle 3's legacy tracer lacks some ops PIR has; the legacy format is only "
                "needed for Paddle Inference 2.x SDKs",
            ) from None
        raise UserError(
            f"to_static could not trace the model: {short_error(exc)}",
            hint="forward must be traceable: tensor control flow or plain Python "
            "that does not depend on tensor values",
        ) from None
    wanted = set(FORMATS[fmt])
    for extra in out_dir.iterdir():  # e.g. model.pdiparams.info, not needed for inference
        if extra.name not in wanted:
            extra.unlink()
    missing = wanted - {p.name for p in out_dir.iterdir()}
    if missing:
        raise UserError(f"paddle.jit.save did not write {', '.join(sorted(missing))}")
    outputs = []
    try:
        program = static.forward.concrete_program
        for value in program.outputs:
            outputs.append(TensorSpec("", _dtype_name(value.dtype), tuple(int(d) for d in value.shape)))
    except Exception:
        outputs = []  # shapes then come from the eager run (see pipeline)
    return outputs
