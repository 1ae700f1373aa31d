"""Resolve an export SOURCE (`file.py:NAME`, `package.module:NAME`, `demo:mlp`) to a Layer."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.errors import UserError, short_error
from paddlehot_cli.export.demo_models import DEMO_INPUTS


@dataclass
class ResolvedSource:
    layer: Any
    default_name: str
    default_inputs: tuple[TensorSpec, ...] | None
    description: str
    default_outputs: tuple[str, ...] = ()


def split_source(spec: str) -> tuple[str, str]:
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not attr or not attr.isidentifier():
        raise UserError(
            f"malformed SOURCE '{spec}'",
            hint="write path/to/file.py:NAME, package.module:NAME, demo:mlp or demo:cnn",
        )
    return module, attr


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    mod_name = "paddlehot_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # to_static reads the source through the module
    # As `python file.py` does: the file's own directory comes first, so it imports its
    # neighbours (also lazily, while forward is traced).
    here = str(path.resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserError(f"importing {path} failed: {short_error(exc)}") from None
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"unknown module '{name}' ({exc.msg})",
            hint="for a file, write path/to/file.py:NAME",
        ) from None
    except Exception as exc:
        raise UserError(f"importing module '{name}' failed: {short_error(exc)}") from None


def resolve(spec: str) -> ResolvedSource:
    """Import SOURCE and build the Layer (paddle must be importable)."""
    import paddle

    module_part, attr = split_source(spec)
    if module_part == "demo":
        if attr not in DEMO_INPUTS:
            raise UserError(
                f"unknown demo model '{attr}'", hint="use demo:" + " or demo:".join(DEMO_INPUTS)
            )
        from paddlehot_cli.export import demo_models

        return ResolvedSource(demo_models.build(attr), attr, DEMO_INPUTS[attr], spec,
                              demo_models.DEMO_OUTPUTS[attr])
    if module_part.endswith(".py") or "/" in module_part:
        module = _import_file(Path(module_part))
    else:
        module = _import_module(module_part)
    if not hasattr(module, attr):
        raise UserError(f"'{module_part}' has no attribute '{attr}'")
    obj = getattr(module, attr)
    if isinstance(obj, paddle.nn.Layer):
        layer = obj
    elif callable(obj):
        kind = "Layer subclass" if inspect.isclass(obj) else "factory"
        try:
            layer = obj()
        except Exception as exc:
            raise UserError(
                f"{kind} '{attr}' raised while building the model: {short_error(exc)}",
                hint="NAME must take no arguments",
            ) from None
    else:
        raise UserError(f"'{attr}' is a {type(obj).__name__}, not a paddle.nn.Layer or factory")
    if not isinstance(layer, paddle.nn.Layer):
        raise UserError(
            f"'{attr}' returned a {type(layer).__name__}, not a paddle.nn.Layer"
        )
    default_name = re.sub(r"[^a-z0-9_.-]", "_", attr.lower())
    return ResolvedSource(layer, default_name, None, spec)


def count_forward_inputs(layer: Any) -> tuple[int, int]:
    """(required, total) positional tensor parameters of layer.forward."""
    try:
        params = list(inspect.signature(layer.forward).parameters.values())
    except (TypeError, ValueError):
        return (0, 1 << 30)
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return (len([p for p in positional if p.default is p.empty]), 1 << 30)
    required = [p for p in positional if p.default is p.empty]
    return (len(required), len(positional))
