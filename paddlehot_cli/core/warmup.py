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

# The loosest tolerances a package may ask its warm-up for, per precision. The manifest under
# test sets its own (export's --atol/--rtol), so without a bound a package could declare any
# output "equal". A bf16 variant legitimately needs looser ones than fp32.
TOLERANCE_BOUNDS = {"fp32": (1e-3, 1e-2), "bf16": (5e-2, 5e-2), "int8": (1e-1, 1e-1)}


def warm(servable: Servable, path: Path, batcher: Batcher, *, cases: int = 1,
         atol: float = 1e-4, rtol: float = 1e-3, timeout_s: float = 120.0) -> None:
    """Run the `cases` smallest validation cases (0 = all); raise UserError on a mismatch.

    Every output the manifest declares is checked on every case: its dtype and shape against
    the manifest, its values against the recorded outputs within the package's tolerances
    (bounded by TOLERANCE_BOUNDS for its precision). Larger batches cost CPU (and the GIL)
    inside the swap window and leave their activation memory behind, so one small case is the
    default.
    """
    manifest = servable.manifest
    atol, rtol = _tolerances(manifest, path, atol, rtol)
    specs = manifest.inputs
    todo = load_cases(path)
    if cases > 0:
        todo = sorted(todo, key=lambda case: sum(int(a.size) for a in case[0].values()))[:cases]
    for i, (inputs, expected) in enumerate(todo):
        outputs = _run(batcher, check_inputs(specs, inputs), timeout_s, path, i)
        _check_signature(manifest.outputs, outputs, path, i)
        for spec, got in zip(manifest.outputs, outputs):
            want = expected.get(spec.name)
            if want is None:
                raise UserError(f"{path}: warm-up case {i}: validation.npz has no recorded "
                                f"output '{spec.name}' to compare with")
            if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=rtol,
                                                          equal_nan=True):
                raise UserError(f"{path}: warm-up case {i}: output '{spec.name}' differs from the "
                                "package's validation outputs")


def _tolerances(manifest: Any, path: Path, atol: float, rtol: float) -> tuple[float, float]:
    validation = manifest.validation
    precision = str(manifest.raw.get("precision", "fp32"))
    atol = float(validation.get("atol", atol))
    rtol = float(validation.get("rtol", rtol))
    max_atol, max_rtol = TOLERANCE_BOUNDS.get(precision, TOLERANCE_BOUNDS["fp32"])
    if not (0 <= atol <= max_atol and 0 <= rtol <= max_rtol):
        raise UserError(f"{path}: the manifest asks for warm-up tolerances atol={atol:g} "
                        f"rtol={rtol:g}; {precision} allows at most atol={max_atol:g} "
                        f"rtol={max_rtol:g}")
    return atol, rtol


def _check_signature(declared: Any, outputs: Any, path: Path, i: int) -> None:
    """What the model returns must be what its manifest (and so the metadata endpoint) says."""
    if len(outputs) != len(declared):
        raise UserError(f"{path}: warm-up case {i}: the model returns {len(outputs)} outputs, "
                        f"the manifest declares {len(declared)}")
    for spec, got in zip(declared, outputs):
        shape_ok = len(got.shape) == len(spec.shape) and all(
            d == -1 or d == g for d, g in zip(spec.shape, got.shape))
        if np.dtype(got.dtype) != np.dtype(spec.dtype) or not shape_ok:
            raise UserError(f"{path}: warm-up case {i}: output '{spec.name}' is "
                            f"{got.dtype} {list(got.shape)}, the manifest declares "
                            f"{spec.dtype} {list(spec.shape)}")


def _run(batcher: Batcher, feeds: dict, timeout_s: float, path: Path, i: int) -> Any:
    box: dict[str, Any] = {}
    ev = threading.Event()
    batcher.submit(feeds, lambda out, exc: (box.update(out=out, exc=exc), ev.set()), force=True)
    if not ev.wait(timeout_s):
        raise UserError(f"{path}: warm-up case {i} timed out")
    if box["exc"] is not None:
        raise box["exc"]
    return box["out"]
