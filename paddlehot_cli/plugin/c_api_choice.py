"""Which Paddle Inference C API a plugin compiles and links against, and the cross compilers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CROSS_CC = {"aarch64": "aarch64-linux-gnu-gcc", "x86_64": "x86_64-linux-gnu-gcc"}


@dataclass
class CApi:
    kind: str  # pdcapi | official | stub
    include: Path
    libdir: Path
    note: str = ""
