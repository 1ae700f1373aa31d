"""paddlehot: export, package, check and hot-swap PaddlePaddle models on edge boxes."""

from __future__ import annotations

__version__ = "0.1.0"
