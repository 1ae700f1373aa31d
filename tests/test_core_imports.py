"""The layering rules of docs/architecture.md, enforced. Imports are read from the source (ast),
inside functions too: a lazy import is still a dependency.

- core is the bottom: it imports no other paddlehot package and not rich;
- nothing imports cli (only cli itself and `python -m paddlehot_cli`);
- serve and fleet never import each other: `serve --follow` is an extension cli wires
  (serve/extensions.py);
- abi never imports paddle (CI runs abi-check without it);
- no import cycle between any two modules of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "paddlehot_cli"


def _module(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module `path` imports, anywhere in it, relative imports resolved. With `modules`
    (the package's), `from pkg import mod` counts as importing mod, not pkg."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names}
            names.update(subs)
            if not subs & modules:
                names.add(base)
    return names


def _sources() -> dict[str, Path]:
    return {_module(p): p for p in PKG.rglob("*.py") if "_data" not in p.parts}


@pytest.mark.parametrize("package, forbidden", [
    ("core", tuple(f"paddlehot_cli.{p}" for p in (
        "cli", "serve", "plugin", "fleet", "bench", "export", "abi", "demo")) + ("rich",)),
    ("serve", ("paddlehot_cli.cli", "paddlehot_cli.fleet")),
    ("fleet", ("paddlehot_cli.cli", "paddlehot_cli.serve")),
    ("abi", ("paddlehot_cli.cli", "paddle")),
    ("export", ("paddlehot_cli.cli",)),
    ("plugin", ("paddlehot_cli.cli",)),
    ("bench", ("paddlehot_cli.cli",)),
    ("demo", ("paddlehot_cli.cli",)),
])
def test_layering(package, forbidden):
    bad = {f"{p.relative_to(PKG)}: {name}"
           for p in (PKG / package).rglob("*.py") for name in imported(p)
           if any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert not bad, sorted(bad)


def test_no_import_cycles():
    sources = _sources()
    graph = {m: {n for n in imported(p, set(sources)) if n in sources and n != m}
             for m, p in sources.items()}
    cycles, seen, stack, on_stack = [], set(), [], set()

    def visit(m: str) -> None:  # depth-first; a back edge closes a cycle
        seen.add(m)
        stack.append(m)
        on_stack.add(m)
        for n in sorted(graph[m]):
            if n in on_stack:
                cycles.append(" -> ".join([*stack[stack.index(n):], n]))
            elif n not in seen:
                visit(n)
        stack.pop()
        on_stack.discard(m)

    for m in sorted(graph):
        if m not in seen:
            visit(m)
    assert not cycles, cycles


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The reader sees a lazy, relative import inside a function (where every cycle hid)."""
    mod = PKG / "core" / "_probe_for_layering_test.py"
    mod.write_text("def f():\n    from ..serve import app\n    return app\n")
    try:
        assert "paddlehot_cli.serve.app" in imported(mod)
    finally:
        mod.unlink()


def test_servables_are_read_through_their_protocol_not_getattr():
    """core/servable.py's Servable declares what callers use (issue 25): a getattr with a default
    on a servable would hide a member that one kind lacks until it is served."""
    import re

    pattern = re.compile(r"getattr\(\s*[\w.]*servable\b")
    hits = [f"{p.relative_to(PKG.parent)}:{n}" for p in sorted(PKG.rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == [], hits
