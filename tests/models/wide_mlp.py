"""An MLP with ~17 MB of weights: big enough that one version's memory stands out from the C
allocators' noise (the Go host's release test bounds RSS growth by one version)."""

from paddle import nn


class WideMLP(nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 2048)
        self.fc2 = nn.Linear(2048, 2048)
        self.fc3 = nn.Linear(2048, 4)

    def forward(self, x):
        return self.fc3(nn.functional.relu(self.fc2(nn.functional.relu(self.fc1(x)))))


def make():
    return WideMLP()
