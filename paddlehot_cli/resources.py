"""Where the native sources and templates are: beside the package in a source checkout (editable
install), or inside it as `_data/` in a built wheel (setup.py copies them there)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    bundled = _PACKAGE / "_data" / name
    return bundled if bundled.is_dir() else _PACKAGE.parent / name


def native_dir() -> Path:
    """native/: plugin.h, pdcapi sources and headers, the reference C host."""
    return _find("native")


def templates_dir() -> Path:
    """templates/: the plugin wrapper and the deployment files."""
    return _find("templates")
