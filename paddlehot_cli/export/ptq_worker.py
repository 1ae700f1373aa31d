"""Post-training int8 quantisation of a legacy program, in a child process of its own.

Paddle 3.3.1's PIR quantisation does not produce a program Paddle Inference can run
(docs/variants.md); its legacy static PTQ does, and oneDNN then runs s8 kernels. That needs
the legacy (non-PIR) API and static mode for the whole process, hence a child:

    python -m paddlehot_cli.export.ptq_worker MODEL_DIR CALIBRATION.npz OUT_DIR

The calibration file was checked by the parent (export/calibration.py). Exit 0 on success;
otherwise one line on stderr.
"""

from __future__ import annotations

import os
import sys


def quantize(model_dir: str, calibration: str, out_dir: str) -> None:
    import numpy as np

    from paddlehot_cli.core.paddle_runtime import import_paddle
    from paddlehot_cli.export.calibration import batches

    paddle = import_paddle()
    paddle.enable_static()
    from paddle.static.quantization import PostTrainingQuantization

    with np.load(calibration, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    feeds = batches(arrays)
    ptq = PostTrainingQuantization(
        executor=paddle.static.Executor(paddle.CPUPlace()), model_dir=model_dir,
        model_filename="model.pdmodel", params_filename="model.pdiparams",
        data_loader=lambda: iter(feeds), batch_nums=len(feeds), algo="abs_max",
        onnx_format=True)
    ptq.quantize()
    ptq.save_quantized_model(out_dir, model_filename="model.pdmodel",
                             params_filename="model.pdiparams")


def main(argv: list[str]) -> int:
    os.environ["FLAGS_enable_pir_api"] = "0"  # before paddle is imported
    try:
        quantize(*argv)
    except Exception as exc:  # noqa: BLE001 - the parent turns this line into the user's error
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        print(f"{type(exc).__name__}: {lines[-1] if lines else exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
