"""Request payloads: seeded random tensors for the target's signature, or arrays from an .npz."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from paddlehot_cli.core.signature import TensorSpec, check_inputs
from paddlehot_cli.errors import InputMismatch, UserError
from paddlehot_cli.export.validate import random_tensor

OTHER_DYNAMIC_DIM = 16  # a dynamic dim that is not the leading (batch) one


def make_feeds(inputs: Sequence[TensorSpec], batch: int, source: str = "random",
               variants: int = 8, seed: int = 0) -> Sequence[dict[str, np.ndarray]]:
    if batch < 1:
        raise UserError("--batch must be >= 1")
    from paddlehot_cli.bench.shapes import RandomShapeFeeds, parse_spec

    limits = parse_spec(source)
    if limits is not None:  # a new shape per request: the dynamic-shape memory benchmark
        return RandomShapeFeeds(inputs, *limits, seed=seed)
    if source != "random":
        return [_from_npz(Path(source), inputs)]
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(variants):
        feed = {}
        for spec in inputs:
            shape = tuple(
                (batch if axis == 0 else OTHER_DYNAMIC_DIM) if d == -1 else d
                for axis, d in enumerate(spec.shape)
            )
            feed[spec.name] = random_tensor(rng, spec.dtype, shape)
        feeds.append(feed)
    return feeds


def _from_npz(path: Path, inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"no such input data file: {path}", hint="use random or FILE.npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            feed = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as .npz: {exc}") from None
    try:
        return check_inputs(inputs, feed)
    except InputMismatch as exc:
        raise UserError(f"{path}: {exc.message}") from None
