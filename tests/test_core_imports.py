"""Dependencies point one way: core never imports cli, serve, plugin or rich; demo never imports
cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "paddlehot_cli"


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package, forbidden", [
    # plugin too: loading a plugin never compiles C behind the caller's back (c_api= is passed in)
    ("core", ("paddlehot_cli.cli", "paddlehot_cli.serve", "paddlehot_cli.plugin", "rich")),
    ("demo", ("paddlehot_cli.cli",)),
])
def test_layering(package, forbidden):
    bad = {f"{p.relative_to(PKG)}: {name}"
           for p in (PKG / package).rglob("*.py") for name in imported(p)
           if any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert not bad, sorted(bad)
