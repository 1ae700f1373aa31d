"""A plugin's DWARF surface, read once per Subject (PH115 and the baseline diff share it)."""

from __future__ import annotations

from dataclasses import dataclass

from paddlehot_cli.abi.dwarf_types import Surface
from paddlehot_cli.abi.target import Subject


@dataclass(frozen=True)
class SurfaceRead:
    surface: Surface | None
    why_not: str | None  # set when surface is None: why it could not be read


def export_keys(subject: Subject) -> dict[str, str]:
    """ELF name -> export key (prefix stripped, since the version is in every name)."""
    from paddlehot_cli.abi.context import symbol_prefix

    assert subject.elf is not None
    prefix = None
    if subject.plugin_meta is not None:
        prefix = subject.plugin_meta.get("symbol_prefix")
    elif subject.manifest is not None:
        m = subject.manifest
        prefix = symbol_prefix(m.name, m.version, m.precision)
    return {
        s.name: s.name[len(prefix) :] if prefix and s.name.startswith(prefix) else s.name
        for s in subject.elf.exports()
    }


def surface_of(subject: Subject, side: str = "plugin") -> SurfaceRead:
    if "surface" not in subject.cache:
        subject.cache["surface"] = _read(subject)
    read: SurfaceRead = subject.cache["surface"]
    if read.why_not is None:
        return read
    return SurfaceRead(None, read.why_not.replace("{side}", side))


def _read(subject: Subject) -> SurfaceRead:
    from paddlehot_cli.abi.dwarf_types import DwarfUnreadable, read_surface

    assert subject.elf is not None
    if not subject.elf.has_debug_info:
        return SurfaceRead(None, "no DWARF in the {side} (build both with build-plugin --debug)")
    try:
        surface = read_surface(subject.elf.path, export_keys(subject))
    except DwarfUnreadable as exc:
        return SurfaceRead(None, f"the {{side}}'s DWARF is unreadable ({exc})")
    if surface is None:
        return SurfaceRead(None, "no DWARF in the {side} (build both with build-plugin --debug)")
    if not surface.functions:
        return SurfaceRead(None, "no exported function found in the {side}'s DWARF")
    return SurfaceRead(surface, None)
