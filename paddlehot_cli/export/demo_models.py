"""Built-in demo models: small, deterministic, each with its own input spec.

Imported only after paddle is; weights are random but seeded (`--seed`), so the same seed gives
the same package bytes and different seeds give different versions of the same model.
"""

from __future__ import annotations

from typing import Any

from paddlehot_cli.core.signature import TensorSpec

DEMO_INPUTS: dict[str, tuple[TensorSpec, ...]] = {
    "mlp": (TensorSpec("x", "float32", (-1, 16)),),
    "cnn": (TensorSpec("image", "float32", (-1, 3, 32, 32)),),
}
DEMO_OUTPUTS: dict[str, tuple[str, ...]] = {"mlp": ("logits",), "cnn": ("logits",)}


def build(name: str) -> Any:
    import paddle
    from paddle import nn

    class DemoMLP(nn.Layer):
        """16 -> 64 -> 4: the tiny model of the serving benchmarks."""

        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(16, 64)
            self.fc2 = nn.Linear(64, 4)

        def forward(self, x):
            return self.fc2(nn.functional.relu(self.fc1(x)))

    class DemoCNN(nn.Layer):
        """Three conv blocks and a classifier over 32x32 RGB images."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2D(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
                nn.Conv2D(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
                nn.Conv2D(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2D(1),
            )
            self.head = nn.Linear(64, 10)

        def forward(self, image):
            return self.head(paddle.flatten(self.features(image), 1))

    builders = {"mlp": DemoMLP, "cnn": DemoCNN}
    return builders[name]()
