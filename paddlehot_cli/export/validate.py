"""Validation: run the eager Layer and the exported model on the same seeded inputs and compare.

Every dynamic dim is tried at sizes 1, 3 and 8 by default (1, a small prime, a larger value), and
once more with a different size per axis when an input has several dynamic dims.
A case passes when every element satisfies |exported - eager| <= atol + rtol * |eager|
(numpy.allclose). max_rel_err is reported over elements whose |eager| > atol, so values near zero
do not drown it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from paddlehot_cli.core.signature import TensorSpec

DEFAULT_SIZES = (1, 3, 8)
MIXED_SIZES = (3, 5, 7, 11, 13, 2)
INT_RANGE = (0, 10)


def case_shapes(
    inputs: Sequence[TensorSpec], sizes: Sequence[int] = DEFAULT_SIZES
) -> list[dict[str, tuple[int, ...]]]:
    """Concrete shapes for each validation case."""
    cases = [
        {s.name: tuple(size if d == -1 else d for d in s.shape) for s in inputs} for size in sizes
    ]
    if any(sum(d == -1 for d in s.shape) > 1 for s in inputs):
        cases.append(
            {
                s.name: tuple(MIXED_SIZES[i % len(MIXED_SIZES)] if d == -1 else d
                              for i, d in enumerate(s.shape))
                for s in inputs
            }
        )
    if not any(-1 in s.shape for s in inputs):
        cases = cases[:1]
    return cases


def random_tensor(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype == "int8":
        return rng.integers(-128, 128, shape, dtype=np.int8)
    return rng.integers(*INT_RANGE, shape).astype(dtype)


def make_cases(
    inputs: Sequence[TensorSpec], seed: int, sizes: Sequence[int] = DEFAULT_SIZES
) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    specs = {s.name: s for s in inputs}
    return [
        {name: random_tensor(rng, specs[name].dtype, shape) for name, shape in case.items()}
        for case in case_shapes(inputs, sizes)
    ]


@dataclass
class OutputCheck:
    case: int
    shape_desc: str
    name: str
    eager_shape: tuple[int, ...]
    exported_shape: tuple[int, ...]
    eager_dtype: str
    exported_dtype: str
    max_abs_err: float
    max_rel_err: float
    passed: bool
    problem: str = ""


@dataclass
class ValidationReport:
    atol: float
    rtol: float
    checks: list[OutputCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cases: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.checks)

    @property
    def max_abs_err(self) -> float:
        return max((c.max_abs_err for c in self.checks), default=0.0)

    @property
    def max_rel_err(self) -> float:
        return max((c.max_rel_err for c in self.checks), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "cases": self.cases, "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err, "atol": self.atol, "rtol": self.rtol,
        }


def compare_outputs(
    eager: Sequence[np.ndarray], exported: Sequence[np.ndarray], names: Sequence[str],
    atol: float, rtol: float, case: int, shape_desc: str,
) -> list[OutputCheck]:
    checks = []
    for name, want, got in zip(names, eager, exported):
        check = OutputCheck(
            case, shape_desc, name, tuple(want.shape), tuple(got.shape), str(want.dtype),
            str(got.dtype), float("nan"), float("nan"), False,
        )
        if want.shape != got.shape:
            check.problem = "shape differs"
        elif want.dtype != got.dtype:
            check.problem = "dtype differs"
        else:
            a = want.astype(np.float64)
            b = got.astype(np.float64)
            diff = np.abs(a - b)
            check.max_abs_err = float(diff.max()) if diff.size else 0.0
            big = np.abs(a) > atol
            check.max_rel_err = float((diff[big] / np.abs(a[big])).max()) if big.any() else 0.0
            bad_nan = np.isnan(a) != np.isnan(b)
            check.passed = bool(
                not bad_nan.any() and np.allclose(b, a, rtol=rtol, atol=atol, equal_nan=True)
            )
            if not check.passed:
                check.problem = "values differ"
        checks.append(check)
    return checks


def validate(
    run_eager: Callable[[Mapping[str, np.ndarray]], list[np.ndarray]],
    run_exported: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]],
    output_names: Sequence[str],
    cases: Sequence[Mapping[str, np.ndarray]],
    atol: float,
    rtol: float,
) -> tuple[ValidationReport, list[list[np.ndarray]]]:
    """Compare eager and exported outputs on every case; also return the eager outputs."""
    report = ValidationReport(atol=atol, rtol=rtol, cases=len(cases))
    eager_all = []
    for index, case in enumerate(cases):
        shape_desc = " ".join(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in case.items())
        eager = run_eager(case)
        eager_all.append(eager)
        exported = run_exported(case)
        if len(eager) != len(exported):
            report.problems.append(
                f"case {index + 1}: eager returns {len(eager)} outputs, the exported model "
                f"{len(exported)}"
            )
            continue
        got = [exported[n] for n in output_names]
        report.checks.extend(
            compare_outputs(eager, got, output_names, atol, rtol, index + 1, shape_desc)
        )
    return report, eager_all
