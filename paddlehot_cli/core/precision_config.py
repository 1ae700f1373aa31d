"""The Paddle Inference settings of a variant's precision, applied to a predictor's Config.

Refuses (PackageError) where this CPU or Paddle build cannot really run the precision
(precision_hardware): Paddle itself would silently fall back to fp32.
"""

from __future__ import annotations

from typing import Any

from paddlehot_cli.core.manifest import Manifest
from paddlehot_cli.core.precision_hardware import cpu_refusal, paddle_refusal
from paddlehot_cli.errors import PackageError


def configure_precision(config: Any, manifest: Manifest) -> Any:
    precision = manifest.precision
    if precision == "fp32":
        return config
    why = refusal_here(manifest.requires, precision)
    if why is not None:
        raise PackageError(f"{manifest.name} {manifest.version} {precision}: {why}")
    config.enable_mkldnn()
    if precision == "bf16":
        # unverified on a box without bf16 units: see docs/variants.md
        config.enable_mkldnn_bfloat16()
    elif precision == "int8":
        # the quantized legacy program's scales select oneDNN's s8 kernels
        config.enable_mkldnn_int8()
    return config


def refusal_here(needs: dict[str, Any] | None, precision: str) -> str | None:
    """Both checks on this box (imports paddle only when the CPU passes)."""
    why = cpu_refusal(needs, precision)
    if why is not None or needs is None:
        return why
    from paddlehot_cli.core.paddle_runtime import import_paddle

    return paddle_refusal(needs, precision, import_paddle().base.core)
