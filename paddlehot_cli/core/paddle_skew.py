"""Exporter vs runtime Paddle version: a package exported by a newer Paddle than the one that
runs it may use operators or program features the older one lacks. That is a warning, not an
error: the package's validation outputs decide whether it is fit."""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version


def older_runtime_warning(exported: str | None, runtime: str | None) -> str | None:
    """One sentence when `runtime` is older than `exported`; None when not (or unknown)."""
    if not exported or not runtime:
        return None
    try:
        older = Version(runtime) < Version(exported)
    except InvalidVersion:
        return None
    if not older:
        return None
    return (f"exported with Paddle {exported}, runs on Paddle {runtime} (older): "
            "its validation outputs decide whether it is fit")


def exporter_paddle(manifest: Any) -> str | None:
    """The Paddle version a package was exported with (manifest `paddle_version`), if recorded."""
    value = manifest.raw.get("paddle_version") if manifest is not None else None
    return value if isinstance(value, str) and value else None
