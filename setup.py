"""Ship native/ and templates/ inside the wheel (as paddlehot_cli/_data/), so build-plugin and
pdcapi work from a regular install; an editable install reads them from the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# .cc, .map: pdcapi (C++, its export list); .json, .pdiparams, .py: its self-test model and script;
# .go, .mod: the Go host module (native/host-go) docs/go-host.md builds
SOURCE_SUFFIXES = {".h", ".c", ".cc", ".S", ".in", ".txt", ".service", ".yaml", ".lua", ".md", ".sh",
                   ".map", ".json", ".pdiparams", ".py", ".go", ".mod"}


def _sources_only(directory: str, names: list[str]) -> list[str]:
    """Ignore build products (objects, libraries, the compiled host)."""
    ignored = []
    for name in names:
        path = Path(directory) / name
        product = path.is_file() and path.suffix not in SOURCE_SUFFIXES and name != "Makefile"
        if product or (path.is_dir() and name in ("__pycache__", "build")):
            ignored.append(name)
    return ignored


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in ("native", "templates"):
            target = Path(self.build_lib) / "paddlehot_cli" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target, ignore=_sources_only)


setup(cmdclass={"build_py": BuildPyWithData})
