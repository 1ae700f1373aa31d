"""Convolutions with batch norm on a tiny image: runs take milliseconds, but creating a predictor
takes about half a second (Paddle 3.3.1 folds each batch norm into its convolution's weights
with oneDNN's reference kernel, ~80% of a resnet18 creation). For tests that must tell a call
that waited for a creation from one that did not."""

from paddle import nn


class SlowCreate(nn.Layer):
    def __init__(self, layers: int = 8, channels: int = 256):
        super().__init__()
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2D(channels, channels, 3, padding=1),
                                                  nn.BatchNorm2D(channels), nn.ReLU())
                                    for _ in range(layers)])

    def forward(self, x):
        return self.body(x).flatten(1)


def make():
    return SlowCreate()
