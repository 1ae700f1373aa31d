"""Load a model package directory into a servable backed by a pool of paddle.inference predictors.

The first predictor is created from the package (~0.8 s for resnet18); more are created the same
way, each from its own config, in the background by the pool keeper (core/pool_keeper.py) when
callers find every predictor busy, up to `pool_max`, each warmed on the keeper's thread with the
last inputs served; predictors idle longer than `idle_s` beyond `pool_min` are released on a
timer. Loads and growth are admitted by the process's memory budget (core/memory_budget.py). Not `clone()`: in Paddle 3.3.1 a clone saves neither time nor
memory over a new predictor. (The random failures once blamed on cloning came from threads
exiting: see onednn_threads.) Creation and release go through
paddle_runtime's one process-wide lock. Note: the wheel's `Predictor.run()` holds the GIL, so
several predictors only help when callers overlap in non-Python work; the default pool is 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core import memory_budget, onednn_threads, paddle_runtime
from paddlehot_cli.core.manifest import Manifest, read_verified
from paddlehot_cli.core.pool import Pool, PoolClosed
from paddlehot_cli.core.precision_config import configure_precision
from paddlehot_cli.core.signature import check_inputs, zero_inputs
from paddlehot_cli.errors import PackageError, short_error


class _Bound:
    """One predictor with its input/output handles resolved once; renewed (a new predictor
    from `make`) before its next run once a thread that ran it and another one exited
    (onednn_threads: Paddle's oneDNN cache would hand that thread's successor dead kernels)."""

    __slots__ = ("__weakref__", "inputs", "make", "output_names", "outputs", "predictor",
                 "stale")

    def __init__(self, predictor: Any, output_names: list[str], make: Callable[[], Any]):
        self.make, self.output_names, self.stale = make, output_names, False
        self._bind(predictor)

    def _bind(self, predictor: Any) -> None:
        self.predictor = predictor
        self.inputs = {n: predictor.get_input_handle(n) for n in predictor.get_input_names()}
        self.outputs = [predictor.get_output_handle(n) for n in self.output_names]

    def renew(self) -> None:
        fresh = self.make()  # may fail (the package's files gone): stays stale, tried next call
        with paddle_runtime.lifecycle_lock():  # the old predictor's last reference goes here
            self._bind(fresh)
        self.stale = False

    def release(self) -> None:
        """Drop the handles and the predictor under the lifecycle lock (the last reference)."""
        with paddle_runtime.lifecycle_lock():
            self.inputs, self.outputs, self.predictor = {}, [], None

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if self.stale:  # the pool keeper renews free ones first: only if a request came sooner
            self.renew()
        for name, arr in feeds.items():
            self.inputs[name].copy_from_cpu(arr)
        self.predictor.run()
        onednn_threads.note_run(self)
        return [h.copy_to_cpu() for h in self.outputs]


class PackageServable:
    """One model version: a manifest and a pool of predictors; inputs are checked before Paddle.

    infer() is safe to call from several threads: each call leases one predictor of the pool.
    """

    kind = "package"

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        threads: int = 1,
        check_outputs: bool = True,
        pool_min: int = 1,
        pool_max: int | None = None,
        idle_s: float = 30.0,
        paddle_options: paddle_runtime.PaddleOptions | None = None,
    ):
        self.path = path
        self.manifest = manifest
        self.threads = threads
        self.gil_bound = threads <= 1  # Servable: Paddle's run() holds the GIL, one thread computes
        self.paddle_options = paddle_options or paddle_runtime.PaddleOptions()
        model_file, params_file = manifest.model_paths(path)  # a bf16 variant's are fp32's
        budget = memory_budget.budget()
        budget.admit_load(memory_budget.load_estimate(params_file.parent, params_file.name),
                          f"{manifest.name} {manifest.version}")

        def new_config() -> Any:  # the variant's precision applied (precision_config)
            return configure_precision(paddle_runtime.make_config(
                model_file, params_file, threads, self.paddle_options), manifest)

        config = new_config()
        rss_before = memory_budget.rss_bytes()
        try:
            first = paddle_runtime.create_predictor(config)
        except Exception as exc:  # noqa: BLE001 - RuntimeError/ValueError/OSError variously
            raise PackageError(f"{path}: paddle could not load the model: {short_error(exc)}") from None
        # what one more predictor costs (the memory budget admits growth with it)
        self.predictor_cost = max(0, memory_budget.rss_bytes() - rss_before)
        input_names = list(first.get_input_names())
        self._output_names = list(first.get_output_names())
        expected = [s.name for s in manifest.inputs]
        if sorted(input_names) != sorted(expected):
            raise PackageError(
                f"{path}: the model takes inputs {sorted(input_names)}, the manifest says {expected}"
            )
        if check_outputs and len(self._output_names) != len(manifest.outputs):
            raise PackageError(
                f"{path}: the model has {len(self._output_names)} outputs, "
                f"the manifest lists {len(manifest.outputs)}"
            )
        pool_min = max(0, int(pool_min))
        pool_max = max(1, pool_min, int(pool_max or 1))
        files = (model_file, params_file)
        loaded_as = _identity(files)

        def make() -> Any:
            # Paddle 3.3.1 builds a predictor without its parameters file and computes NaN:
            # a predictor is only made from the very files the first one was made from
            if _identity(files) != loaded_as:
                raise PackageError(f"{path}: the model files changed or went away since the "
                                   "version was loaded; not creating another predictor from them")
            return paddle_runtime.create_predictor(new_config())

        seed = [_Bound(first, self._output_names, make)]

        def factory() -> _Bound:
            return seed.pop() if seed else _Bound(make(), self._output_names, make)

        self._last_feeds: Mapping[str, np.ndarray] | None = None
        self._pool: Pool[_Bound] = Pool(
            factory, min_size=pool_min, initial=1, max_size=pool_max, idle_s=idle_s,
            destroy=_Bound.release, warm=self._warm, stale=lambda b: b.stale, renew=_Bound.renew,
            admit=lambda: budget.fits(self.predictor_cost),
            name=f"{manifest.name} {manifest.version}",
        )
        self._names = [s.name for s in manifest.outputs] if check_outputs else self._output_names
        self._closed = False

    @property
    def paddle_output_names(self) -> list[str]:
        return list(self._output_names)

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.manifest.outputs]

    @property
    def pool_size(self) -> int:
        return self._pool.size

    @property
    def pool(self) -> Pool[_Bound]:
        return self._pool

    def _warm(self, bound: _Bound) -> None:
        """A new predictor's first run, on the pool keeper's thread (it lives as long as any
        pool: see pool_keeper), with the last inputs served, else zeros shaped by the manifest."""
        feeds = self._last_feeds or zero_inputs(self.manifest.inputs)
        bound.run(feeds)

    @property
    def pool_in_use(self) -> int:
        return self._pool.in_use

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.infer_raw(inputs)))

    def infer_raw(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in the predictor's order (used while a manifest is still being written)."""
        feeds = check_inputs(self.manifest.inputs, inputs)
        return self.run_checked(feeds)

    def run_checked(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run inputs that already passed check_inputs (the batcher checks each request once)."""
        try:
            bound = self._pool.acquire()
        except PoolClosed:
            raise PackageError(f"{self.manifest.name} {self.manifest.version} is closed") from None
        try:
            out = bound.run(feeds)
            self._last_feeds = feeds  # warm-up inputs for the next predictor the pool grows
            return out
        finally:
            self._pool.release(bound)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()  # waits for calls in flight

    def __enter__(self) -> PackageServable:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(files: tuple[Path, ...]) -> list[tuple[int, int, int] | None]:
    out: list[tuple[int, int, int] | None] = []
    for f in files:
        try:
            st = f.stat()
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return out



def load_package(
    path: str | Path,
    threads: int = 1,
    pool_min: int = 1,
    pool_max: int | None = None,
    check_outputs: bool = True,
    idle_s: float = 30.0,
    paddle_options: paddle_runtime.PaddleOptions | None = None,
) -> PackageServable:
    root = Path(path)
    manifest = read_verified(root)
    return PackageServable(root, manifest, threads, check_outputs, pool_min, pool_max, idle_s,
                           paddle_options)
