"""Hardening checks: RELRO + BIND_NOW (PH130), no exec stack (PH131), no TEXTREL (PH132),
$ORIGIN-only RPATH/RUNPATH (PH133). A policy may switch any of them off."""

from __future__ import annotations

from paddlehot_cli.abi.context import Context
from paddlehot_cli.abi.findings import Finding, failed, names, passed, skipped
from paddlehot_cli.core.elf_facts import DF_1_NOW, DF_BIND_NOW, DF_TEXTREL

PF_X = 0x1


def _off(ctx: Context, check_id: str, key: str) -> Finding | None:
    if not ctx.policy.hardening.get(key, True):
        return skipped(check_id, f"switched off by policy '{ctx.policy.name}'")
    return None


def check_relro(ctx: Context) -> Finding:
    if (off := _off(ctx, "PH130", "relro_bind_now")) is not None:
        return off
    elf = ctx.subject.elf
    relro = any(t == "PT_GNU_RELRO" for t, _ in elf.segments)
    now = bool(elf.dt_flags & DF_BIND_NOW or elf.dt_flags_1 & DF_1_NOW or elf.has_dt_bind_now)
    missing = [x for x, ok in (("GNU_RELRO", relro), ("BIND_NOW", now)) if not ok]
    if missing:
        why = "" if now else ": lazy binding keeps the GOT writable"
        return failed("PH130", "no " + " and no ".join(missing) + why)
    return passed("PH130", "full RELRO (GNU_RELRO + BIND_NOW)")


def check_stack(ctx: Context) -> Finding:
    if (off := _off(ctx, "PH131", "noexecstack")) is not None:
        return off
    stack = [flags for t, flags in ctx.subject.elf.segments if t == "PT_GNU_STACK"]
    if not stack:
        return failed("PH131", "no PT_GNU_STACK segment: loaders assume an executable stack")
    if stack[0] & PF_X:
        return failed(
            "PH131", "PT_GNU_STACK is executable: loading it makes every thread's stack executable"
        )
    return passed("PH131", "stack is not executable")


def check_textrel(ctx: Context) -> Finding:
    if (off := _off(ctx, "PH132", "no_textrel")) is not None:
        return off
    elf = ctx.subject.elf
    if elf.has_dt_textrel or elf.dt_flags & DF_TEXTREL:
        return failed("PH132", "has text relocations (DT_TEXTREL): code pages are patched at load")
    return passed("PH132", "no text relocations")


def _origin_relative(entry: str) -> bool:
    return entry.startswith(("$ORIGIN", "${ORIGIN}"))


def check_rpath(ctx: Context) -> Finding:
    if (off := _off(ctx, "PH133", "rpath_origin_only")) is not None:
        return off
    elf = ctx.subject.elf
    bad = [f"RPATH {e}" for e in elf.rpath if not _origin_relative(e)]
    bad += [f"RUNPATH {e}" for e in elf.runpath if not _origin_relative(e)]
    if bad:
        return failed("PH133", f"search path outside the package: {names(bad)}", bad)
    entries = elf.rpath + elf.runpath
    return passed("PH133", "RPATH/RUNPATH: " + (names(entries) if entries else "none"))


HARDENING_CHECKS = (check_relro, check_stack, check_textrel, check_rpath)
