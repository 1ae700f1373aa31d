"""A variant's outputs against its fp32 version's: per output error within tolerances chosen
for the precision, and agreement of the argmax where the output is a score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Defaults per precision: (atol, rtol, minimum argmax agreement). The user may widen them
# (variant --atol/--rtol/--min-argmax-agreement); the manifest records what was accepted.
DEFAULT_TOLERANCES = {"bf16": (5e-2, 5e-2, 0.99), "int8": (1e-1, 1e-1, 0.99)}


def is_score(out: np.ndarray) -> bool:
    """Scores or logits: floats whose last axis has 2+ classes."""
    return out.dtype.kind == "f" and out.ndim >= 2 and out.shape[-1] >= 2


@dataclass
class OutputError:
    name: str
    max_abs_err: float = 0.0
    max_abs_fp32: float = 0.0  # the scale the error is read against
    max_rel_err: float = 0.0
    within: bool = True
    argmax_same: int = 0
    argmax_total: int = 0

    @property
    def argmax_agreement(self) -> float | None:
        return self.argmax_same / self.argmax_total if self.argmax_total else None


@dataclass
class VariantReport:
    precision: str
    atol: float
    rtol: float
    min_argmax_agreement: float
    cases: int = 0
    outputs: list[OutputError] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.within and (o.argmax_agreement is None
                                 or o.argmax_agreement >= self.min_argmax_agreement)
                   for o in self.outputs)

    def problems(self) -> list[str]:
        out = []
        for o in self.outputs:
            if not o.within:
                out.append(f"output '{o.name}': max |diff| {o.max_abs_err:.3g} (the fp32 output "
                           f"reaches {o.max_abs_fp32:.3g}) exceeds atol={self.atol:g} "
                           f"rtol={self.rtol:g}")
            agree = o.argmax_agreement
            if agree is not None and agree < self.min_argmax_agreement:
                out.append(f"output '{o.name}': argmax agrees with fp32 on {o.argmax_same} of "
                           f"{o.argmax_total} rows ({agree:.0%}, at least "
                           f"{self.min_argmax_agreement:.0%} needed)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "against": "fp32", "cases": self.cases, "atol": self.atol,
            "rtol": self.rtol, "min_argmax_agreement": self.min_argmax_agreement,
            "outputs": {o.name: {"max_abs_err": o.max_abs_err, "max_abs_fp32": o.max_abs_fp32,
                                 "max_rel_err": o.max_rel_err,
                                 "argmax_agreement": o.argmax_agreement}
                        for o in self.outputs},
        }


def compare(report: VariantReport, names: Sequence[str],
            fp32: Sequence[Sequence[np.ndarray]], variant: Sequence[Sequence[np.ndarray]]) -> None:
    """Fold the cases' outputs (fp32 and variant, in `names` order) into `report`."""
    errors = {n: OutputError(n) for n in names}
    for want_case, got_case in zip(fp32, variant):
        report.cases += 1
        for name, want, got in zip(names, want_case, got_case):
            e = errors[name]
            if want.shape != got.shape:
                e.within, e.max_abs_err = False, float("inf")
                continue
            a, b = want.astype(np.float64), got.astype(np.float64)
            diff = np.abs(a - b)
            if diff.size:
                e.max_abs_err = max(e.max_abs_err, float(np.nanmax(diff)))
                e.max_abs_fp32 = max(e.max_abs_fp32, float(np.nanmax(np.abs(a))))
                big = np.abs(a) > report.atol
                if big.any():
                    e.max_rel_err = max(e.max_rel_err, float((diff[big] / np.abs(a[big])).max()))
            e.within = e.within and bool(np.allclose(b, a, atol=report.atol, rtol=report.rtol))
            if is_score(want):
                rows_a = a.reshape(-1, a.shape[-1]).argmax(-1)
                rows_b = b.reshape(-1, b.shape[-1]).argmax(-1)
                e.argmax_same += int((rows_a == rows_b).sum())
                e.argmax_total += int(rows_a.size)
    report.outputs = [errors[n] for n in names]
