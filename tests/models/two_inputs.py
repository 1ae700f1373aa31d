"""A user model with two inputs (float32 features, int64 token ids) and two dynamic dims."""

import paddle
from paddle import nn


class TwoInputs(nn.Layer):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.proj = nn.Linear(4, 8)

    def forward(self, feats, ids):
        pooled = self.embed(ids).mean(axis=1)  # [batch, seq] -> [batch, 8]
        return self.proj(feats) + pooled, ids * 2


def make():
    return TwoInputs()


class FrozenFlag(nn.Layer):
    """forward branches on Python-side state: to_static freezes the branch taken at trace time."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            return self.fc(x) * 2.0
        return self.fc(x)


class NeedsArgs(nn.Layer):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)


def broken_factory():
    raise RuntimeError("weights server unreachable")


NOT_A_LAYER = 42


def not_a_layer_factory():
    return "hello"


class DataDependent(nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        # stands for an eager-only custom op: it cannot be traced into a static graph
        if not paddle.in_dynamic_mode():
            raise NotImplementedError("eager-only op 'fancy_gather'")
        return self.fc(x)
