"""The user's calibration set (`--calibration FILE.npz`): one array per model input, the first
axis is the sample axis. Checked against the version's inputs before any quantisation runs."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.errors import UserError

MIN_SAMPLES = 1
BATCH = 8  # samples per calibration batch


def read_calibration(path: Path, inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """{input name: array of samples}; one UserError naming the first mistake."""
    if not path.is_file():
        raise UserError(f"no such calibration file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path} is not a readable .npz of arrays ({exc})",
                        hint="write it with numpy.savez(path, INPUT_NAME=array, ...)") from None
    want = [s.name for s in inputs]
    missing = [n for n in want if n not in arrays]
    extra = sorted(set(arrays) - set(want))
    if missing or extra:
        detail = f"no array '{missing[0]}'" if missing else f"unknown array '{extra[0]}'"
        raise UserError(f"{path}: {detail}; the model's inputs are {', '.join(want)}")
    counts = set()
    for spec in inputs:
        arr = arrays[spec.name]
        if arr.dtype != np.dtype(spec.dtype):
            raise UserError(f"{path}: '{spec.name}' is {arr.dtype}, the model takes {spec.dtype}")
        if arr.ndim != len(spec.shape) or any(
                d != -1 and d != g for d, g in zip(spec.shape[1:], arr.shape[1:])):
            raise UserError(f"{path}: '{spec.name}' has shape {list(arr.shape)}, the model "
                            f"takes {list(spec.shape)} (first axis: samples)")
        if arr.shape[0] < MIN_SAMPLES:
            raise UserError(f"{path}: '{spec.name}' has no samples")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise UserError(f"{path}: '{spec.name}' holds NaN or infinite values")
        counts.add(arr.shape[0])
    if len(counts) != 1:
        raise UserError(f"{path}: the arrays hold different numbers of samples "
                        f"({', '.join(map(str, sorted(counts)))})")
    return arrays


def batches(arrays: dict[str, np.ndarray], size: int = BATCH) -> list[dict[str, np.ndarray]]:
    n = next(iter(arrays.values())).shape[0]
    return [{k: v[i:i + size] for k, v in arrays.items()} for i in range(0, n, size)]
