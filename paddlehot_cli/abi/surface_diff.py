"""Diff two C ABI surfaces (abi.dwarf_types): function signatures and the types they reach.

Each change is breaking or compatible, as abidiff would judge it for a C caller, with one rule
of our own from plugin.h: a struct that starts with `struct_size` may grow at the end (the plugin
reads only the fields that fit in the caller's struct_size and walks caller arrays by it).
"""

from __future__ import annotations

from dataclasses import dataclass

from paddlehot_cli.abi.dwarf_types import Enum, Function, Record, Surface, TypeInfo

GROWTH_FIELD = "struct_size"


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


def compare_types(a: TypeInfo, b: TypeInfo) -> tuple[bool, str] | None:
    """(breaking, why) when a caller would see `a` change into `b`; None when it is the same."""
    if a.canon == b.canon:
        return None
    if a.kind != b.kind:
        return True, f"was {a.kind} '{a.text}', now {b.kind} '{b.text}'"
    if a.size != b.size:
        return True, f"{_show(a, b)}: size changed from {a.size} to {b.size} bytes"
    if a.kind == "pointer" and a.pointee is not None and b.pointee is not None:
        pa, pb = a.pointee, b.pointee
        if pb.canon == f"const {pa.canon}":
            return False, f"{_show(a, b)}: the pointee became const"
        inner = compare_types(pa, pb)
        why = inner[1] if inner else "pointee changed"
        return True, f"{_show(a, b)}: {why}"
    if a.kind in ("base", "enum") and a.encoding != b.encoding:
        return True, f"{_show(a, b)}: {a.encoding} became {b.encoding}"
    if a.kind == "base" and a.encoding in ("signed", "unsigned"):
        return False, f"{_show(a, b)}: same size and signedness"
    return True, _show(a, b)


def diff_functions(
    old: dict[str, Function], new: dict[str, Function], key: dict[str, str]
) -> list[Change]:
    """Signature changes of the exports present on both sides (`key`: symbol -> export key)."""
    changes: list[Change] = []
    for sym, fa in sorted(old.items()):
        fb = new.get(sym)
        if fb is None:
            continue  # removed exports are PH201's
        name = key.get(sym, sym)

        def add(breaking: bool, what: str, name: str = name) -> None:
            changes.append(Change(breaking, f"{name}(): {what}", symbol=name))

        if fa.ret.kind == "void" and fb.ret.kind != "void":
            add(False, f"return type void -> '{fb.ret.text}' (old callers ignore it)")
        elif (d := compare_types(fa.ret, fb.ret)) is not None:
            add(d[0], f"return type {d[1]}")
        for i, ((pname, ta), (_, tb)) in enumerate(zip(fa.params, fb.params), 1):
            if (d := compare_types(ta, tb)) is not None:
                add(d[0], f"parameter {i} '{pname}' {d[1]}")
        for i in range(len(fb.params), len(fa.params)):
            add(True, f"parameter {i + 1} '{fa.params[i][0]}' ({fa.params[i][1].text}) removed")
        for i in range(len(fa.params), len(fb.params)):
            add(True, f"parameter {i + 1} '{fb.params[i][0]}' ({fb.params[i][1].text}) added")
        if fa.variadic != fb.variadic:
            add(True, "became variadic" if fb.variadic else "is no longer variadic")
    return changes


def _diff_record(a: Record, b: Record) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    name = a.name

    def add(breaking: bool, what: str) -> None:
        out.append((breaking, f"{name}.{what}"))

    nb = {f.name: f for f in b.fields}
    for i, fa in enumerate(a.fields):
        fb = b.fields[i] if i < len(b.fields) else None
        if fb is not None and fb.name == fa.name:
            if fb.offset != fa.offset:
                add(True, f"{fa.name} moved from offset {fa.offset} to {fb.offset}")
            if (d := compare_types(fa.type, fb.type)) is not None:
                add(d[0], f"{fa.name} retyped: {d[1]}")
        elif fa.name in nb:
            add(
                True,
                f"{fa.name} moved from offset {fa.offset} to {nb[fa.name].offset} "
                "(a field was inserted or removed before it)",
            )
        else:
            add(True, f"{fa.name} removed or renamed")
    old_names = {f.name for f in a.fields}
    growable = a.kind == "struct" and bool(a.fields) and a.fields[0].name == GROWTH_FIELD
    for j, fb in enumerate(b.fields):
        if fb.name in old_names:
            continue
        where = f"{fb.name} at offset {fb.offset}"
        if j < len(a.fields):
            add(True, f"{where} inserted before existing fields")
        elif growable:
            add(False, f"{where} appended (struct_size tells the plugin what the caller has)")
        else:
            add(
                True,
                f"{where} appended, but {name} has no {GROWTH_FIELD}: callers' sizeof "
                "and arrays change",
            )
    if a.size != b.size and not any(brk for brk, _ in out) and not (growable and b.size > a.size):
        out.append((True, f"{name} size changed from {a.size} to {b.size} bytes"))
    return out


def _diff_enum(a: Enum, b: Enum) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    vb = dict(b.values)
    old_values = {v for _, v in a.values}
    for ename, value in a.values:
        if ename not in vb:
            out.append((True, f"enum {a.name}: {ename} (= {value}) removed"))
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
    """Changes of every named type reachable from the exports on both sides."""
    changes: list[Change] = []
    for name in sorted(set(old.records) & set(new.records)):
        changes += [
            Change(brk, what, type=name)
            for brk, what in _diff_record(old.records[name], new.records[name])
        ]
    for name in sorted(set(old.enums) & set(new.enums)):
        changes += [
            Change(brk, what, type=name)
            for brk, what in _diff_enum(old.enums[name], new.enums[name])
        ]
    for name in sorted(set(old.typedefs) & set(new.typedefs)):
        d = compare_types(old.typedefs[name], new.typedefs[name])
        if d is not None:
            changes.append(Change(d[0], f"typedef {name} retargeted: {d[1]}", type=name))
    return changes
