"""Load a model package directory into a servable backed by paddle.inference predictors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping

import numpy as np

from paddlehot_cli.core import paddle_runtime
from paddlehot_cli.core.manifest import Manifest, read_verified
from paddlehot_cli.core.signature import check_inputs
from paddlehot_cli.errors import PackageError, short_error


class PackageServable:
    """One model version: a manifest and a predictor that checks inputs before Paddle sees them.

    infer() is safe to call from several threads; calls on one predictor are serialised (the
    wheel's Predictor.run holds the GIL anyway, so a lock costs nothing here).
    """

    kind = "package"

    def __init__(
        self, path: Path, manifest: Manifest, threads: int = 1, check_outputs: bool = True
    ):
        self.path = path
        self.manifest = manifest
        model_name, params_name = manifest.model_files
        config = paddle_runtime.make_config(path / model_name, path / params_name, threads)
        try:
            self._predictor = paddle_runtime.create_predictor(config)
        except Exception as exc:  # paddle raises RuntimeError/ValueError/OSError variously
            raise PackageError(f"{path}: paddle could not load the model: {short_error(exc)}") from None
        self._inputs = {n: self._predictor.get_input_handle(n) for n in self._predictor.get_input_names()}
        self._output_names = list(self._predictor.get_output_names())
        self._outputs = [self._predictor.get_output_handle(n) for n in self._output_names]
        expected = [s.name for s in manifest.inputs]
        if sorted(self._inputs) != sorted(expected):
            raise PackageError(
                f"{path}: the model takes inputs {sorted(self._inputs)}, "
                f"the manifest says {expected}"
            )
        if check_outputs and len(self._output_names) != len(manifest.outputs):
            raise PackageError(
                f"{path}: the model has {len(self._output_names)} outputs, "
                f"the manifest lists {len(manifest.outputs)}"
            )
        self._lock = threading.Lock()
        self._closed = False

    @property
    def paddle_output_names(self) -> list[str]:
        return list(self._output_names)

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.manifest.outputs]

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.infer_raw(inputs)))

    def infer_raw(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in the predictor's order (used while a manifest is still being written)."""
        feeds = check_inputs(self.manifest.inputs, inputs)
        with self._lock:
            if self._closed:
                raise PackageError(f"{self.manifest.name} {self.manifest.version} is closed")
            for name, arr in feeds.items():
                self._inputs[name].copy_from_cpu(arr)
            self._predictor.run()
            return [h.copy_to_cpu() for h in self._outputs]

    def close(self) -> None:
        with self._lock:  # waits for the call in flight
            self._closed = True
            self._inputs.clear()
            self._outputs.clear()
            self._predictor = None

    def __enter__(self) -> "PackageServable":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_package(
    path: str | Path,
    threads: int = 1,
    pool_min: int = 1,
    pool_max: int | None = None,
    check_outputs: bool = True,
) -> PackageServable:
    # pool_min/pool_max: one predictor for now; the serve work adds the pool of clones.
    root = Path(path)
    manifest = read_verified(root)
    return PackageServable(root, manifest, threads, check_outputs)
