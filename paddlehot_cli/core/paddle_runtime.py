"""Import paddle quietly and build paddle.inference configs. The only place core touches paddle."""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddlehot_cli.core import shape_cache_guard
from paddlehot_cli.errors import UserError


def import_paddle() -> Any:
    """Import paddle with its logs and import-time warnings kept out of the user's terminal, and
    oneDNN's primitive cache bounded (see DEFAULT_ONEDNN_PRIMITIVE_CACHE)."""
    bound_onednn_primitive_cache()
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("FLAGS_call_stack_level", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import paddle
        except ImportError as exc:
            raise UserError(
                f"cannot import paddle ({exc})", hint="pip install 'paddlepaddle>=3.0'"
            ) from None
    return paddle


def paddle_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paddlepaddle")
    except PackageNotFoundError:
        return str(getattr(import_paddle(), "__version__", "unknown"))


# oneDNN keeps the kernels (primitives) it creates in one process-wide LRU cache, 1024 entries
# by default; every new input shape adds a few per op, so with dynamic shapes RSS grows by tens to
# hundreds of MB before the LRU bounds it. paddlehot bounds it lower, unless the user's
# environment sets ONEDNN_PRIMITIVE_CACHE_CAPACITY: enough entries for a fixed-shape model's
# forward pass (no cost there), few enough to bound growth. Measured with
# `paddlehot bench PKG --shape-memory` (README: bounded memory for dynamic shapes).
ONEDNN_PRIMITIVE_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_ONEDNN_PRIMITIVE_CACHE = 256
# Paddle's own shape cache (Config.set_mkldnn_cache_capacity; 0 = off). Paddle 3.3.1's default is
# 10, not off, and with any capacity above 0 every run walks Paddle's process-wide oneDNN kernel
# map without its lock: another thread changing that map meanwhile (a plugin pool's runs, a
# predictor created in the background) crashes the process (native/pdcapi/src/thread_runs.cc).
# So paddlehot sets 0 explicitly; serving.json / --tune can still set a capacity.
DEFAULT_ONEDNN_CACHE_CAPACITY = 0


def bound_onednn_primitive_cache() -> None:
    """oneDNN reads the variable when it creates its first kernel: call before any inference."""
    os.environ.setdefault(ONEDNN_PRIMITIVE_CACHE_ENV, str(DEFAULT_ONEDNN_PRIMITIVE_CACHE))


@dataclass(frozen=True)
class PaddleOptions:
    """Paddle Inference CPU options applied when a predictor is created (not per request)."""

    onednn: bool = True  # Paddle's CPU default where the wheel has oneDNN
    ir_optim: bool = True
    memory_optim: bool = False
    onednn_cache_capacity: int = DEFAULT_ONEDNN_CACHE_CAPACITY


def has_onednn() -> bool:
    """Whether this paddle wheel was built with oneDNN (x86_64 wheels are, aarch64 ones are not)."""
    paddle = import_paddle()
    try:
        return bool(paddle.base.core.is_compiled_with_mkldnn())
    except AttributeError:
        return False


def make_config(model_file: Path, params_file: Path, threads: int = 1,
                options: PaddleOptions | None = None) -> Any:
    """A CPU inference Config for one model, quiet, with `threads` intra-op threads."""
    import_paddle()
    from paddle import inference

    opts = options or PaddleOptions()
    config = inference.Config(str(model_file), str(params_file))
    config.disable_gpu()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(max(1, int(threads)))
    config.switch_ir_optim(opts.ir_optim)
    if opts.memory_optim:
        config.enable_memory_optim()
    if not opts.onednn:
        config.disable_mkldnn()
    elif has_onednn():
        config.enable_mkldnn()
        # 0 too: Paddle's own default is 10, not off (see DEFAULT_ONEDNN_CACHE_CAPACITY);
        # not set_mkldnn_cache_capacity: the same, with a deprecation warning in the log
        config.set_onednn_cache_capacity(shape_cache_guard.package_capacity(
            int(opts.onednn_cache_capacity), str(Path(model_file).parent)))
    return config


# Paddle's predictor construction and teardown touch process-wide state (program and pass
# registries, oneDNN's primitive cache, flags, allocator tables): one at a time in the process, as
# pdcapi does (native/pdcapi/src/lifecycle.cc). Runs need no lock.
_LIFECYCLE = threading.Lock()


def lifecycle_lock() -> threading.Lock:
    """Held around every predictor creation and release in this process."""
    return _LIFECYCLE


def create_predictor(config: Any) -> Any:
    from paddle import inference

    with _LIFECYCLE:
        return inference.create_predictor(config)
