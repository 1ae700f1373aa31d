"""Which model version and architecture a plugin.so was built for, read from its ELF file
without loading it (push and sign accept only a plugin of the very version they handle)."""

from __future__ import annotations

import json
from pathlib import Path

from paddlehot_cli.core.elf_facts import read_elf
from paddlehot_cli.core.plugin_abi import MANIFEST_SECTION
from paddlehot_cli.core.variants import variant_key
from paddlehot_cli.errors import UserError

ARCHES = ("x86_64", "aarch64")


def plugin_arch(path: Path, name: str, version: str, precision: str = "fp32") -> str:
    """The ELF machine of a plugin built from `name` `version` at `precision` (a variant's plugin
    is not its version's); UserError for any other file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such plugin file: {path}")
    facts = read_elf(path)
    raw = facts.read_section(MANIFEST_SECTION, 4 * 1024 * 1024)
    try:
        pm = json.loads(raw.rstrip(b"\0")) if raw else None
    except ValueError:
        pm = None
    if not isinstance(pm, dict) or "plugin" not in pm:
        raise UserError(f"{path} is not a paddlehot plugin (no {MANIFEST_SECTION} section)")
    built = (pm.get("name"), pm.get("version"), pm.get("precision", "fp32"))
    if built != (name, version, precision):
        raise UserError(f"{path} was built from {built[0]} {variant_key(*map(str, built[1:]))}, "
                        f"not {name} {variant_key(version, precision)}")
    if facts.machine not in ARCHES:
        raise UserError(f"{path}: unsupported architecture {facts.machine}")
    return facts.machine
