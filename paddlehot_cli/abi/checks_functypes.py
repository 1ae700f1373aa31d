"""PH115: each export matches plugin.h's function type for it (phot_<fn>_fn), read from the
plugin's DWARF (the typedefs reach it through plugin.h's static phot_abi_record)."""

from __future__ import annotations

from paddlehot_cli.abi.context import Context
from paddlehot_cli.abi.findings import Finding, failed, names, passed, skipped
from paddlehot_cli.abi.suppressions import split
from paddlehot_cli.abi.surface_diff import Change
from paddlehot_cli.abi.surfaces import export_keys, surface_of


def _typedef_function(surface, key: str):  # type: ignore[no-untyped-def]
    """plugin.h's function type for export `key` (the typedef points to it), or None."""
    td = surface.typedefs.get(f"phot_{key}_fn")
    if td is None or td.kind != "pointer" or td.pointee is None:
        return None
    return td.pointee if td.pointee.kind == "function" else None


def check_function_types(ctx: Context) -> Finding:
    from paddlehot_cli.abi.dwarf_types import signature

    read = surface_of(ctx.subject)
    if read.surface is None:
        return skipped("PH115", f"not compared: {read.why_not}")
    surface = read.surface
    if surface.record is None:
        return skipped("PH115", "not compared: no phot_abi_record in the DWARF (an older plugin.h)")
    keys = export_keys(ctx.subject)
    changes, seen = [], 0
    for sym, fn in sorted(surface.functions.items()):
        want = _typedef_function(surface, keys[sym])
        if want is None:
            continue  # not one of plugin.h's functions: PH111 reports extra exports
        seen += 1
        params = [t for _, t in fn.params]
        if signature(fn.ret, params) != want.canon:
            got = f"{fn.ret.text} (" + ", ".join(t.text for t in params) + ")"
            what = f"{keys[sym]}(): the export is {got}, phot_{keys[sym]}_fn is {want.text}"
            changes.append(Change(True, what, symbol=keys[sym]))
    bad, gone = split(changes, ctx.suppressions)
    tail = f" ({len(gone)} suppressed)" if gone else ""
    if bad:
        return failed("PH115", names([c.what for c in bad], 2), [c.what for c in bad] + gone)
    return passed("PH115", f"{seen} export(s) match plugin.h's function types{tail}", gone)
