"""The plugin contract as Python sees it (mirrors native/include/paddlehot/plugin.h): exported
function names, the symbol version node, the ELF sections, the supported targets.

One place, shared by build-plugin (writes it), core's plugin loader (calls it) and abi-check
(checks it).
"""

from __future__ import annotations

import platform

from paddlehot_cli.core.versions import c_identifier, parse_semver

ABI_NODE = "PADDLEHOT_1.0"  # PHOT_ABI_NODE
ABI_VERSION = (1, 0)  # PHOT_ABI_MAJOR, PHOT_ABI_MINOR
FUNCTIONS = ("open", "infer", "close", "manifest", "last_error")
TARGETS = ("x86_64", "aarch64")
C_APIS = ("pdcapi", "official", "stub")
MANIFEST_SECTION = ".paddlehot.manifest"
MODEL_SECTIONS = {"model": ".paddlehot.model", "params": ".paddlehot.params"}


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def symbol_prefix(name: str, version: str) -> str:
    """`phot_<model>_v<MAJOR>_<MINOR>_<PATCH>_`: every exported name starts with it."""
    major, minor, patch = parse_semver(version)
    return f"phot_{c_identifier(name)}_v{major}_{minor}_{patch}_"


def designed_exports(name: str, version: str) -> list[str]:
    prefix = symbol_prefix(name, version)
    return [prefix + fn for fn in FUNCTIONS]
