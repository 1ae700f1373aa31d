"""The soak model of `paddlehot bench --swap-every`: Linear 256 -> 4096 -> 2048 -> 10, about 9.5 M
float32 parameters (~38 MB), big enough that a version left in memory shows in RSS at once."""

from paddle import nn


def make():
    return nn.Sequential(nn.Linear(256, 4096), nn.ReLU(), nn.Linear(4096, 2048), nn.ReLU(),
                         nn.Linear(2048, 10))
