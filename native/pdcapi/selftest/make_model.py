"""Writes the self-test model (model.json, model.pdiparams) that every pdcapi build runs:
one input and one output of each PD_DataType pdcapi supports, all with a dynamic batch, and one
Linear layer with known weights so parameters are loaded too. Run it again only to change the
model (python native/pdcapi/selftest/make_model.py); selftest.c computes what it must return.

  y_f32 = x_f32 @ W + bias  x_f32: float32[-1, 4], W = 0.5 everywhere, bias = 0.25 -> [-1, 2]
  y_i32 = x_i32 + 1         x_i32: int32[-1, 3]
  y_i64 = x_i64 * 3         x_i64: int64[-1, 3]
  y_u8  = x_u8 + 1 (uint8)  x_u8: uint8[-1, 3]
  y_i8  = x_i8 - 1 (int8)   x_i8: int8[-1, 3]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
import paddle


class AllDtypes(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = paddle.nn.Linear(4, 2)
        self.fc.weight.set_value(paddle.full([4, 2], 0.5, "float32"))
        self.fc.bias.set_value(paddle.full([2], 0.25, "float32"))

    def forward(self, a, b, c, d, e):
        u8 = paddle.cast(paddle.cast(d, "int32") + 1, "uint8")
        i8 = paddle.cast(paddle.cast(e, "int32") - 1, "int8")
        # maximum(x, x - 5) is x; without an op before it, `x + 1` makes Paddle 3.3.1 give the
        # output its input's name ("More than one shadow output named with ...").
        return self.fc(a), paddle.maximum(b, b - 5) + 1, paddle.maximum(c, c - 5) * 3, u8, i8


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    m = AllDtypes()
    m.eval()
    spec = [paddle.static.InputSpec([None, 4], "float32", "x_f32")] + [
        paddle.static.InputSpec([None, 3], dt, name)
        for name, dt in (("x_i32", "int32"), ("x_i64", "int64"), ("x_u8", "uint8"), ("x_i8", "int8"))
    ]
    paddle.jit.save(paddle.jit.to_static(m, input_spec=spec), str(out / "model"))


if __name__ == "__main__":
    main()
