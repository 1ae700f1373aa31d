"""The core: loading, serving and swapping model versions. Never imports cli, serve or rich."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from paddlehot_cli.errors import PackageError


def load(
    path: str | Path, *, threads: int = 1, pool_min: int = 1, pool_max: int | None = None,
    c_api: Callable[[], str | Path] | None = None,
    paddle_options: Any = None, idle_s: float = 30.0,
) -> Any:
    """Load a model package directory or a plugin (.so) into a servable.

    The servable has `.manifest`, `.infer(dict[str, ndarray]) -> dict[str, ndarray]` and
    `.close()`. Checksums are verified before anything is loaded. `threads` is the intra-op thread
    count per predictor; `pool_min`/`pool_max` size the pool of predictors serving concurrent calls
(grown in the background, shrunk back to `pool_min` after `idle_s` seconds idle: core/pool.py).
    `c_api` provides libpaddle_inference_c.so for a plugin when the process cannot resolve it
    (serve, bench and the CLI pass plugin.pdcapi.build_pdcapi, which builds on first use; core
    never imports it); without it, the newest prebuilt pdcapi for this Paddle is used
    (core.pdcapi_locator), so `load("x.so")` needs no argument once pdcapi was built.
    `paddle_options` (core.paddle_runtime.PaddleOptions: oneDNN, IR and memory optimisation,
    oneDNN cache capacity) apply to packages; a plugin builds its own config through the C API.
    """
    target = Path(path)
    if target.is_dir():
        from paddlehot_cli.core.package_loader import load_package

        return load_package(target, threads=threads, pool_min=pool_min, pool_max=pool_max,
                            paddle_options=paddle_options, idle_s=idle_s)
    if target.suffix == ".so" and target.is_file():
        from paddlehot_cli.core.plugin_loader import load_plugin

        return load_plugin(target, threads=threads, pool_min=pool_min, pool_max=pool_max,
                           c_api=c_api, idle_s=idle_s)
    if not target.exists():
        raise PackageError(f"no such package or plugin: {target}")
    raise PackageError(f"{target} is neither a package directory nor a plugin (.so)")


__all__ = ["load"]
