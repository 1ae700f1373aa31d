"""Struct layouts of plugin.h (phot_tensor, phot_open_options) from DWARF, and their diff.

Only plugins built with debug info (build-plugin --debug) carry DWARF; without it the struct
comparison is skipped. Rule (plugin.h): structs only grow at the end; an existing field never
moves, changes size or changes type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddlehot_cli.core.elf_facts import _guard, open_elf

STRUCTS = ("phot_tensor", "phot_open_options")
MAX_DEPTH = 16


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    type: str  # canonical, typedefs resolved


@dataclass(frozen=True)
class Struct:
    name: str
    size: int
    fields: tuple[Field, ...]


def _attr(die: Any, name: str) -> Any:
    a = die.attributes.get(name)
    return None if a is None else a.value


def _name(die: Any) -> str | None:
    v = _attr(die, "DW_AT_name")
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _type_of(die: Any) -> Any:
    return die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None


def _describe(die: Any, depth: int = 0) -> tuple[str, int]:
    """(canonical type text, byte size) for a type DIE; typedefs resolved."""
    if die is None:
        return "void", 0
    if depth > MAX_DEPTH:
        return "?", 0
    tag = die.tag
    if tag in (
        "DW_TAG_typedef",
        "DW_TAG_volatile_type",
        "DW_TAG_restrict_type",
        "DW_TAG_atomic_type",
    ):
        return _describe(_type_of(die), depth + 1)
    if tag == "DW_TAG_const_type":
        inner, size = _describe(_type_of(die), depth + 1)
        return f"const {inner}", size
    if tag == "DW_TAG_pointer_type":
        inner, _ = _describe(_type_of(die), depth + 1) if depth < 4 else ("...", 0)
        return f"{inner}*", _attr(die, "DW_AT_byte_size") or 8
    if tag == "DW_TAG_array_type":
        inner, esize = _describe(_type_of(die), depth + 1)
        dims = []
        for sub in die.iter_children():
            if sub.tag == "DW_TAG_subrange_type":
                count = _attr(sub, "DW_AT_count")
                if count is None and _attr(sub, "DW_AT_upper_bound") is not None:
                    count = int(_attr(sub, "DW_AT_upper_bound")) + 1
                dims.append(int(count or 0))
        total = esize
        for d in dims:
            total *= d
        return inner + "".join(f"[{d}]" for d in dims), total
    kind = {
        "DW_TAG_structure_type": "struct ",
        "DW_TAG_union_type": "union ",
        "DW_TAG_enumeration_type": "enum ",
    }.get(tag, "")
    return kind + (_name(die) or "<anon>"), int(_attr(die, "DW_AT_byte_size") or 0)


def _struct(die: Any) -> Struct:
    fields = []
    for member in die.iter_children():
        if member.tag != "DW_TAG_member":
            continue
        loc = _attr(member, "DW_AT_data_member_location")
        offset = loc if isinstance(loc, int) else -1
        text, size = _describe(_type_of(member))
        fields.append(Field(_name(member) or "<anon>", offset, size, text))
    return Struct(_name(die) or "", int(_attr(die, "DW_AT_byte_size") or 0), tuple(fields))


def struct_layouts(path: str | Path) -> dict[str, Struct] | None:
    """The plugin.h structs found in the DWARF of `path`; None when it has no DWARF."""
    p = Path(path)
    elf, fh, _ = open_elf(p)
    try:
        return _guard(p, lambda: _layouts(elf))
    finally:
        fh.close()


def _layouts(elf: Any) -> dict[str, Struct] | None:
    if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_info") is None:
        return None
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
    found: dict[str, Struct] = {}
    for cu in dwarf.iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            if die.tag != "DW_TAG_structure_type" or _attr(die, "DW_AT_declaration"):
                continue
            name = _name(die)
            if name in STRUCTS and name not in found:
                found[name] = _struct(die)
        if len(found) == len(STRUCTS):
            break
    return found


def diff_structs(old: dict[str, Struct], new: dict[str, Struct]) -> list[tuple[bool, str]]:
    """[(breaking, description)] for every change between two sets of struct layouts."""
    changes: list[tuple[bool, str]] = []
    for name in STRUCTS:
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            continue  # not referenced in one of the builds: nothing to compare
        nb = {f.name: f for f in b.fields}
        for i, fa in enumerate(a.fields):
            fb = b.fields[i] if i < len(b.fields) else None
            if fb is not None and fb.name == fa.name:
                if fb.offset != fa.offset:
                    changes.append(
                        (True, f"{name}.{fa.name} moved from offset {fa.offset} to {fb.offset}")
                    )
                if fb.size != fa.size:
                    changes.append(
                        (True, f"{name}.{fa.name} resized from {fa.size} to {fb.size} bytes")
                    )
                if fb.type != fa.type:
                    changes.append(
                        (True, f"{name}.{fa.name} retyped from '{fa.type}' to '{fb.type}'")
                    )
                continue
            if fa.name in nb:
                moved = nb[fa.name]
                changes.append(
                    (
                        True,
                        (
                            f"{name}.{fa.name} moved from offset {fa.offset} to "
                            f"{moved.offset} (a field was inserted or removed before it)"
                        ),
                    )
                )
            else:
                changes.append((True, f"{name}.{fa.name} removed or renamed"))
        old_names = {f.name for f in a.fields}
        tail = b.fields[len(a.fields) :]
        for fb in tail:
            if fb.name not in old_names:
                changes.append((False, f"{name}.{fb.name} appended at offset {fb.offset}"))
        for fb in b.fields[: len(a.fields)]:
            if fb.name not in old_names:
                changes.append(
                    (
                        True,
                        f"{name}.{fb.name} inserted at offset {fb.offset}, before existing fields",
                    )
                )
    return changes
