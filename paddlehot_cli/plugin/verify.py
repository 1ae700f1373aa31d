"""Verification of a built plugin: the package's validation inputs run through it must give the
recorded outputs and what core.load(package) gives. Here and, for a foreign architecture, inside
its rootfs under qemu (qemu_verify.py runs this same function there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paddlehot_cli.errors import ValidationFailed


def verify_plugin(package: Path, plugin: Path, rtol: float = 1e-3, atol: float = 1e-4,
                  same_engine_tol: float = 1e-6, model_dir: Path | None = None) -> dict[str, Any]:
    """Run the package's validation inputs through the plugin, compare with the recorded outputs
    and with core.load(package) on the same inputs. Raises ValidationFailed on a mismatch."""
    import numpy as np

    from paddlehot_cli.core import load
    from paddlehot_cli.core.plugin_loader import load_plugin
    from paddlehot_cli.core.validation_data import load_cases
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    cases = load_cases(package)
    worst_rec = worst_same = 0.0
    with load_plugin(plugin, model_dir=model_dir, c_api=build_pdcapi) as pl, load(package) as pk:
        if not cases:
            rng = np.random.default_rng(0)
            feeds = {}
            for s in pk.manifest.inputs:
                shape = [1 if d == -1 else d for d in s.shape]
                feeds[s.name] = (rng.random(shape) * 10).astype(s.dtype)
            cases = [(feeds, None)]
        for i, (inputs, expected) in enumerate(cases):
            got = pl.infer(inputs)
            ref = pk.infer(inputs)
            for name, want in ref.items():
                have = got[name]
                if have.shape != want.shape or have.dtype != want.dtype:
                    raise ValidationFailed(
                        f"plugin output '{name}' is {have.dtype}{list(have.shape)}, "
                        f"core.load gives {want.dtype}{list(want.shape)} (case {i})")
                diff = float(np.max(np.abs(have.astype("float64") - want))) if have.size else 0.0
                worst_same = max(worst_same, diff)
                if not np.allclose(have, want, rtol=same_engine_tol, atol=same_engine_tol):
                    raise ValidationFailed(
                        f"plugin output '{name}' differs from core.load by {diff:.3g} (case {i})")
                if expected is not None and name in expected:
                    rec = expected[name]
                    d2 = float(np.max(np.abs(have.astype("float64") - rec))) if have.size else 0.0
                    worst_rec = max(worst_rec, d2)
                    if have.shape != rec.shape or not np.allclose(have, rec, rtol=rtol, atol=atol):
                        raise ValidationFailed(
                            f"plugin output '{name}' differs from the recorded output by "
                            f"{d2:.3g} (case {i}; atol={atol:g} rtol={rtol:g})")
    return {"cases": len(cases), "max_abs_err_recorded": worst_rec,
            "max_abs_err_core": worst_same}
