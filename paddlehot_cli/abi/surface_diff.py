"""Diff two C ABI surfaces (abi.dwarf_types): function signatures, exported variables and the
types they reach, each change breaking or compatible for a caller built against the old header.

Layout is what a caller relies on, so records are compared by layout: fields pair by bit offset
(a rename with the same place and type is a note), unions by member, sizes and alignments as
numbers. The one rule of our own comes from plugin.h: a struct may grow at the end only where
the new plugin's ABI record declares that its runtime takes the caller's struct_size for it
(`enum phot_abi_growth`), and only if the size really grew with nothing landing in what was
padding (abi.growth).
"""

from __future__ import annotations

from dataclasses import dataclass

from paddlehot_cli.abi.dwarf_types import Enum, Field, Function, Record, Surface, TypeInfo
from paddlehot_cli.abi.growth import Growth, growth_rules


@dataclass(frozen=True)
class Change:
    breaking: bool
    what: str
    symbol: str | None = None  # the export it concerns (prefix stripped), for suppressions
    type: str | None = None  # the type it concerns, for suppressions


def _show(a: TypeInfo, b: TypeInfo) -> str:
    if a.text == b.text:  # a typedef retargeted: show what it resolves to
        return f"'{a.text}' ('{a.canon}' -> '{b.canon}')"
    return f"'{a.text}' -> '{b.text}'"


def _pointee_const(pa: TypeInfo, pb: TypeInfo) -> str | None:
    """'added' / 'removed' when the pointees differ only by a top-level const."""
    if pb.unqualified is not None and pb.canon == f"const {pa.canon}":
        return "added"
    if pa.unqualified is not None and pa.canon == f"const {pb.canon}":
        return "removed"
    return None


def compare_types(a: TypeInfo, b: TypeInfo, returned: bool = False) -> tuple[bool, str] | None:
    """(breaking, why) when a caller would see `a` change into `b`; None when it is the same.
    Data flows into the plugin through parameters (a pointee may gain const: the plugin
    promises more) and out through return values (a pointee may lose const: the caller may
    only read it, and still can); `returned` picks the direction."""
    a, b = a.bare(), b.bare()  # a by-value copy's own qualifiers are not ABI
    if a.canon == b.canon:
        return None
    if a.kind != b.kind:
        return True, f"was {a.kind} '{a.text}', now {b.kind} '{b.text}'"
    if a.size != b.size:
        return True, f"{_show(a, b)}: size changed from {a.size} to {b.size} bytes"
    if a.kind == "pointer" and a.pointee is not None and b.pointee is not None:
        const = _pointee_const(a.pointee, b.pointee)
        if const is not None:
            safe = (const == "removed") if returned else (const == "added")
            side = "the returned pointee" if returned else "the pointee"
            return (
                not safe,
                f"{_show(a, b)}: {side} {'became' if const == 'added' else 'lost'} const",
            )
        inner = compare_types(a.pointee, b.pointee, returned)
        why = inner[1] if inner else "pointee changed"
        return True, f"{_show(a, b)}: {why}"
    if a.kind in ("base", "enum") and a.encoding != b.encoding:
        return True, f"{_show(a, b)}: {a.encoding} became {b.encoding}"
    return True, _show(a, b)


def diff_functions(
    old: dict[str, Function], new: dict[str, Function], key: dict[str, str]
) -> list[Change]:
    """Signature changes of the exports present on both sides (`key`: symbol -> export key)."""
    changes: list[Change] = []
    for sym, fa in sorted(old.items()):
        fb = new.get(sym)
        if fb is not None:
            name = key.get(sym, sym)
            changes += [
                Change(brk, f"{name}(): {what}", symbol=name)
                for brk, what in _diff_function(fa, fb)
            ]
    return changes


def _diff_function(fa: Function, fb: Function) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    if fa.ret.kind == "void" and fb.ret.kind != "void":
        out.append((False, f"return type void -> '{fb.ret.text}' (old callers ignore it)"))
    elif (d := compare_types(fa.ret, fb.ret, returned=True)) is not None:
        out.append((d[0], f"return type {d[1]}"))
    for i, ((pname, ta), (_, tb)) in enumerate(zip(fa.params, fb.params), 1):
        if (d := compare_types(ta, tb)) is not None:
            out.append((d[0], f"parameter {i} '{pname}' {d[1]}"))
    for i in range(len(fb.params), len(fa.params)):
        out.append(
            (True, f"parameter {i + 1} '{fa.params[i][0]}' ({fa.params[i][1].text}) removed")
        )
    for i in range(len(fa.params), len(fb.params)):
        out.append((True, f"parameter {i + 1} '{fb.params[i][0]}' ({fb.params[i][1].text}) added"))
    if fa.variadic != fb.variadic:
        out.append((True, "became variadic" if fb.variadic else "is no longer variadic"))
    return out


def diff_variables(old: Surface, new: Surface, key: dict[str, str]) -> list[Change]:
    """Exported data: callers read and write it in place, so any change of its type breaks."""
    changes = []
    for sym, va in sorted(old.variables.items()):
        vb = new.variables.get(sym)
        if vb is None:
            continue
        name = key.get(sym, sym)
        d = compare_types(va.type, vb.type)
        if d is not None:
            changes.append(Change(True, f"variable {name}: {d[1]}", symbol=name))
    return changes


def _field_change(name: str, fa: Field, fb: Field) -> list[tuple[bool, str]]:
    out = []
    if fa.bit_size != fb.bit_size:
        out.append(
            (
                True,
                f"{fa.name} is {fb.bit_size or 'not a'} bit(s) wide, was {fa.bit_size or 'not a bit field'}",
            )
        )
    if (d := compare_types(fa.type, fb.type)) is not None:
        out.append((d[0], f"{fa.name} retyped: {d[1]}"))
    if fa.name != fb.name and not out:
        out.append((False, f"{fa.name} renamed to {fb.name} (same place and type)"))
    return [(brk, f"{name}.{what}") for brk, what in out]


def _where(f: Field) -> str:
    if f.bit_size:
        return f"bit {f.bit_offset} ({f.bit_size} bits)"
    return f"offset {f.offset}"


def _diff_struct(a: Record, b: Record, growth: Growth) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    at = {f.bit_offset: f for f in b.fields}
    by_name = {f.name: f for f in b.fields}
    paired: set[int] = set()
    for fa in a.fields:
        fb = at.get(fa.bit_offset)
        if fb is not None and (fb.name == fa.name or fa.name not in by_name):
            paired.add(fb.bit_offset)
            out += _field_change(a.name, fa, fb)
        elif fa.name in by_name:
            out.append(
                (True, f"{a.name}.{fa.name} moved from {_where(fa)} to {_where(by_name[fa.name])}")
            )
            paired.add(by_name[fa.name].bit_offset)
        else:
            out.append((True, f"{a.name}.{fa.name} removed"))
    new_fields = [f for f in b.fields if f.bit_offset not in paired]
    out += growth.judge(a, b, new_fields)
    return out


def _diff_union(a: Record, b: Record) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    by_name = {f.name: f for f in b.fields}
    left = [f for f in b.fields if f.name not in {x.name for x in a.fields}]
    for fa in a.fields:
        fb = by_name.get(fa.name)
        if fb is None:  # a rename: the same type under another name
            fb = next((f for f in left if compare_types(fa.type, f.type) is None), None)
            if fb is not None:
                left.remove(fb)
        if fb is None:
            out.append((True, f"{a.name}.{fa.name} removed"))
        else:
            out += _field_change(a.name, fa, fb)
    for fb in left:
        out.append((False, f"{a.name}.{fb.name} added (a union member: every member starts at 0)"))
    if a.size != b.size:
        out.append((True, f"{a.name} size changed from {a.size} to {b.size} bytes"))
    return out


def _diff_record(a: Record, b: Record, growth: Growth) -> list[tuple[bool, str]]:
    if a.kind != b.kind:
        return [(True, f"{a.name} was a {a.kind}, now a {b.kind}")]
    out = _diff_union(a, b) if a.kind == "union" else _diff_struct(a, b, growth)
    if b.align > a.align:
        out.append(
            (
                True,
                (
                    f"{a.name} alignment grew from {a.align} to {b.align} bytes (callers' "
                    "copies and arrays of it are less aligned than the plugin assumes)"
                ),
            )
        )
    elif b.align < a.align:
        out.append((False, f"{a.name} alignment shrank from {a.align} to {b.align} bytes"))
    return out


ABI_MINOR = "PHOT_ABI_MINOR_VALUE"  # plugin.h enum phot_abi_limit


def _diff_enum(a: Enum, b: Enum) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    vb = dict(b.values)
    old_values = {v for _, v in a.values}
    for ename, value in a.values:
        if ename not in vb:
            out.append((True, f"enum {a.name}: {ename} (= {value}) removed"))
        elif ename == ABI_MINOR and vb[ename] != value:
            # a later revision only appends (plugin.h, Growth): what it added is judged on its own
            up = vb[ename] > value
            out.append((not up, f"plugin ABI revision's minor {'raised' if up else 'lowered'} from "
                                f"{value} to {vb[ename]}" + ("" if up else ": callers built "
                                "against the newer header lose what it added")))
        elif vb[ename] != value:
            out.append((True, f"enum {a.name}: {ename} changed value from {value} to {vb[ename]}"))
    known = dict(a.values)
    for ename, value in b.values:
        if ename not in known:
            clash = value in old_values
            out.append(
                (
                    clash,
                    f"enum {a.name}: {ename} = {value} added"
                    + (" with a value an existing enumerator had" if clash else ""),
                )
            )
    if a.size != b.size:
        out.append((True, f"enum {a.name} size changed from {a.size} to {b.size} bytes"))
    return out


def diff_types(old: Surface, new: Surface) -> list[Change]:
    """Changes of every named type reachable from the exports on both sides (and of the ABI
    record's constants). Growth is judged by the new side's rules: its runtime is the one that
    must accept what old callers pass."""
    growth = growth_rules(new)
    changes = [Change(True, problem, type="phot_abi_growth") for problem in growth.problems]
    anchors = {old.record, new.record}  # the record's own struct is no caller's type
    for name in sorted((set(old.records) & set(new.records)) - anchors):
        changes += [
            Change(brk, what, type=name)
            for brk, what in _diff_record(old.records[name], new.records[name], growth)
        ]
    for name in sorted(set(old.enums) & set(new.enums)):
        changes += [
            Change(brk, what, type=name)
            for brk, what in _diff_enum(old.enums[name], new.enums[name])
        ]
    for name in sorted(set(old.enums) - set(new.enums)):
        if old.record is not None and new.record is not None:  # an ABI constant table dropped
            changes.append(Change(True, f"enum {name} (ABI constants) removed", type=name))
    for name in sorted(set(old.typedefs) & set(new.typedefs)):
        d = compare_types(old.typedefs[name], new.typedefs[name])
        if d is not None:
            changes.append(Change(d[0], f"typedef {name} retargeted: {d[1]}", type=name))
    return changes
