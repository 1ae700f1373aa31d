"""A real model with a real bug: it hard-codes batch size 1 (`reshape([1, 4])`).

Warm-up (validation inputs of batch 1) passes; any request with batch > 1 fails inside
paddle.inference at run time. The serve tests publish it as a new version to trip its breaker.
"""

import paddle
from paddle import nn


class Batch1MLP(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.fc2 = nn.Linear(64, 4)

    def forward(self, x):
        return paddle.reshape(self.fc2(nn.functional.relu(self.fc1(x))), [1, 4])
