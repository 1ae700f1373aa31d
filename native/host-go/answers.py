"""Inputs and expected answers for phot-host / host: `python native/host-go/answers.py IN.bin
PKG...` writes a seeded float32 input for the first package's first input (batch 3: a -1 dim is
3) to IN.bin and, for each package PKG, its first output for that input to PKG_expected.bin
(computed by core.load with this machine's Paddle)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from paddlehot_cli.core import load


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("error: usage: answers.py IN.bin PKG [PKG...]", file=sys.stderr)
        return 2
    x = None
    for pkg in argv[1:]:
        with load(pkg) as servable:
            if x is None:
                shape = tuple(3 if d == -1 else d for d in servable.manifest.inputs[0].shape)
                x = np.random.default_rng(0).random(shape).astype("float32")
                x.tofile(argv[0])
            out = servable.infer({servable.manifest.inputs[0].name: x})
            first = out[servable.manifest.outputs[0].name]
            first.astype("float32").tofile(f"{Path(pkg)}_expected.bin")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
