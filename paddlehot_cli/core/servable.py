"""The Servable protocol: what every loaded version (package or plugin) offers the Manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Servable(Protocol):
    """A loaded model version. `manifest` names it (name, version, inputs, outputs, validation);
    `run_checked` runs inputs already checked against `manifest.inputs` and returns the outputs
    in manifest order; `close` frees everything (for a plugin: ends in dlclose). `kind` is
    "package" or "plugin"; `pool_size` is how many predictors it holds now, `pool` the core Pool
    that holds them (None for a servable without one: it neither grows nor shrinks). `gil_bound`
    says a run holds Python's GIL and computes on the calling thread alone (a package version with one
    intra-op thread): its worker may share the event loop's CPU."""

    manifest: Any
    kind: str
    gil_bound: bool

    @property
    def pool_size(self) -> int: ...

    @property
    def pool(self) -> Any: ...  # a core.pool.Pool, or None

    def run_checked(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...
