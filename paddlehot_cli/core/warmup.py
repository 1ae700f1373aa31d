"""Warm-up: replay a package's validation inputs on a freshly loaded version, check the outputs.

A version whose outputs differ from the recorded (eager) outputs never takes traffic. The
cases run on the version's own worker thread(s), so per-thread caches are warm at the flip.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core.batcher import Batcher
from paddlehot_cli.core.servable import Servable
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.core.validation_data import load_cases
from paddlehot_cli.errors import UserError


def warm(servable: Servable, path: Path, batcher: Batcher, *, cases: int = 1,
         atol: float = 1e-4, rtol: float = 1e-3, timeout_s: float = 120.0) -> None:
    """Run the `cases` smallest validation cases (0 = all); raise UserError on a mismatch.

    Larger batches cost CPU (and the GIL) inside the swap window and leave their activation
    memory behind, so one small case is the default.
    """
    validation = servable.manifest.validation
    atol = float(validation.get("atol", atol))
    rtol = float(validation.get("rtol", rtol))
    names = [s.name for s in servable.manifest.outputs]
    specs = servable.manifest.inputs
    todo = load_cases(path)
    if cases > 0:
        todo = sorted(todo, key=lambda case: sum(int(a.size) for a in case[0].values()))[:cases]
    for i, (inputs, expected) in enumerate(todo):
        got = dict(zip(names, _run(batcher, check_inputs(specs, inputs), timeout_s, path, i)))
        for name in names:
            if name not in expected or name not in got:
                continue
            a, e = got[name], expected[name]
            if a.shape != e.shape or not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
                raise UserError(f"{path}: warm-up case {i}: output '{name}' differs from the "
                                "package's validation outputs")


def _run(batcher: Batcher, feeds: dict, timeout_s: float, path: Path, i: int) -> Any:
    box: dict[str, Any] = {}
    ev = threading.Event()
    batcher.submit(feeds, lambda out, exc: (box.update(out=out, exc=exc), ev.set()), force=True)
    if not ev.wait(timeout_s):
        raise UserError(f"{path}: warm-up case {i} timed out")
    if box["exc"] is not None:
        raise box["exc"]
    return box["out"]
