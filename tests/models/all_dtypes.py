"""Every dtype the plugin runtime copies (float32, int32, int64, uint8, int8) in and out, a dynamic
batch on all of them, a second dynamic dim (an output whose size the manifest cannot tell) and an
output whose shape depends on the values (nonzero): what a plugin host must marshal right."""

import paddle
from paddle import nn


class AllDtypes(nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, f32, i32, i64, u8, i8):
        # maximum(x, x - 5) is x: without an op before it, `x + 1` makes Paddle 3.3.1 give the
        # output its input's name (as in native/pdcapi/selftest/make_model.py)
        return (self.fc(f32),
                paddle.maximum(i32, i32 - 5) + 1,
                paddle.maximum(i64, i64 - 5) * 3,
                paddle.cast(paddle.cast(u8, "int32") + 1, "uint8"),
                paddle.cast(paddle.cast(i8, "int32") - 1, "int8"),
                paddle.nonzero(i32 > 5))


def make():
    return AllDtypes()
