"""Import paddle quietly and build paddle.inference configs. The only place core touches paddle."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from paddlehot_cli.errors import UserError


def import_paddle() -> Any:
    """Import paddle with its logs and import-time warnings kept out of the user's terminal."""
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


def make_config(model_file: Path, params_file: Path, threads: int = 1) -> Any:
    """A CPU inference Config for one model, quiet, with `threads` intra-op threads."""
    import_paddle()
    from paddle import inference

    config = inference.Config(str(model_file), str(params_file))
    config.disable_gpu()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(max(1, int(threads)))
    return config


def create_predictor(config: Any) -> Any:
    from paddle import inference

    return inference.create_predictor(config)
