"""validation.npz: the inputs a package was validated with and the eager outputs they gave.

export writes it; serve warms new versions with it; build-plugin verifies plugins against it.
Keys are `case<i>:in:<input name>` and `case<i>:out:<output name>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from paddlehot_cli.core.manifest import VALIDATION_FILE

Case = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def save_cases(package_dir: Path, inputs: Sequence[Mapping[str, np.ndarray]],
               outputs: Sequence[Sequence[np.ndarray]], output_names: Sequence[str]) -> None:
    arrays = {}
    for index, (case, result) in enumerate(zip(inputs, outputs)):
        for key, value in case.items():
            arrays[f"case{index}:in:{key}"] = value
        for key, value in zip(output_names, result):
            arrays[f"case{index}:out:{key}"] = value
    with open(Path(package_dir) / VALIDATION_FILE, "wb") as fh:
        np.savez(fh, **arrays)


def load_cases(package_dir: Path) -> list[Case]:
    """The (inputs, expected outputs) cases a package carries, in order; [] when it has none."""
    file = Path(package_dir) / VALIDATION_FILE
    if not file.is_file():
        return []
    cases: dict[int, Case] = {}
    with np.load(file, allow_pickle=False) as data:
        for key in data.files:
            case, kind, name = key.split(":", 2)
            entry = cases.setdefault(int(case[4:]), ({}, {}))
            entry[0 if kind == "in" else 1][name] = data[key]
    return [cases[i] for i in sorted(cases)]
