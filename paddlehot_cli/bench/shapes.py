"""Random-shape request payloads: every request draws new sizes for the dynamic dims.

Dynamic traffic (text of any length, any batch) is what makes oneDNN's per-shape kernel cache
grow. Feeds are made on demand from (seed, request number), never held in a list: 10,000 stored
requests would themselves be the memory being measured.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.errors import UserError
from paddlehot_cli.export.validate import random_tensor

PREFIX = "random-shapes"
DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_LEN = 512


class RandomShapeFeeds(Sequence):
    """feeds[n]: one request; dynamic dim k of every input gets the same size (axis 0 in
    [1, max_batch], other axes in [1, max_len]), so inputs that must agree (ids and mask) do."""

    def __init__(self, inputs: Sequence[TensorSpec], max_batch: int = DEFAULT_MAX_BATCH,
                 max_len: int = DEFAULT_MAX_LEN, seed: int = 0, count: int = 1 << 30):
        if not any(-1 in spec.shape for spec in inputs):
            raise UserError("--input-data random-shapes needs a model with a dynamic dim",
                            hint="every input of this model has a fixed shape")
        self.inputs, self.max_batch, self.max_len = list(inputs), max_batch, max_len
        self.seed, self.count = seed, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, n: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        rng = np.random.default_rng((self.seed, n))
        rank = max(len(spec.shape) for spec in self.inputs)
        sizes = [int(rng.integers(1, (self.max_batch if axis == 0 else self.max_len) + 1))
                 for axis in range(rank)]
        return {spec.name: random_tensor(rng, spec.dtype, tuple(
                    sizes[axis] if d == -1 else d for axis, d in enumerate(spec.shape)))
                for spec in self.inputs}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (self[n] for n in range(self.count))


def parse_spec(text: str) -> tuple[int, int] | None:
    """`random-shapes[:MAX_BATCH,MAX_LEN]` -> (max_batch, max_len); None for other --input-data."""
    if not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX):]
    if not rest:
        return DEFAULT_MAX_BATCH, DEFAULT_MAX_LEN
    try:
        if not rest.startswith(":"):
            raise ValueError
        batch, length = (int(p) for p in rest[1:].split(","))
        if batch < 1 or length < 1:
            raise ValueError
    except ValueError:
        raise UserError(f"malformed --input-data '{text}'",
                        hint="write random-shapes or random-shapes:MAX_BATCH,MAX_LEN "
                        "(e.g. random-shapes:8,512)") from None
    return batch, length
