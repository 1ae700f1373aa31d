"""Plugin checks on the ELF file: basics (PH100), manifest (PH101-103), exports (PH110-114)."""

from __future__ import annotations

from paddlehot_cli.abi.context import (
    ABI_NODE,
    ARCHES,
    C_APIS,
    Context,
    designed_exports,
    symbol_prefix,
)
from paddlehot_cli.abi.findings import Finding, failed, names, passed, skipped
from paddlehot_cli.abi.target import MANIFEST_SECTION
from paddlehot_cli.core.elf_facts import DF_1_PIE


def check_elf_basics(ctx: Context) -> Finding:
    elf = ctx.subject.elf
    assert elf is not None
    problems = []
    if elf.elfclass != 64:
        problems.append(f"a {elf.elfclass}-bit ELF, not 64-bit")
    if elf.e_type != "ET_DYN":
        problems.append(f"type {elf.e_type}, not a shared object (ET_DYN)")
    elif elf.has_interp or elf.dt_flags_1 & DF_1_PIE:
        problems.append("a position-independent executable, not a shared library")
    if elf.machine != ctx.arch:
        problems.append(f"built for {elf.machine}, the target arch is {ctx.arch}")
    if problems:
        return failed("PH100", f"{elf.path.name} is " + "; ".join(problems))
    return passed("PH100", f"64-bit shared object for {ctx.arch}")


def check_manifest_section(ctx: Context) -> Finding:
    s = ctx.subject
    if s.plugin is None:
        return failed("PH101", f"no {MANIFEST_SECTION} section: the plugin does not say what it is")
    m = s.plugin
    return passed(
        "PH101",
        f"manifest for {m.name} {m.version} ({len(m.inputs)} inputs, {len(m.outputs)} outputs)",
    )


def check_embedded_files(ctx: Context) -> Finding:
    s = ctx.subject
    if s.plugin is None or s.plugin_meta is None or s.elf is None:
        return skipped("PH102", "no manifest to read the embedded files from")
    embedded = s.plugin_meta.get("embedded_files") or {}
    if not embedded:
        return passed("PH102", "no embedded model files (built with --no-embed-model)")
    problems = []
    for fname, info in embedded.items():
        section, digest, nbytes = info["section"], info["sha256"], info["bytes"]
        if section not in s.elf.sections:
            problems.append(f"{fname}: section {section} is missing")
            continue
        size = s.elf.sections[section][1]
        got = s.elf.hash_section(section, nbytes)
        if got is None:
            problems.append(
                f"{fname}: section {section} has {size} bytes, the manifest says {nbytes}"
            )
        elif got != digest:
            problems.append(f"{fname}: section {section} does not match its sha256")
        for where, manifest in (("plugin manifest", s.plugin), ("package manifest", s.package)):
            if manifest is None:
                continue
            # a bf16 variant lists the fp32 files it runs under shared_files (by sha256)
            entry = manifest.files.get(fname) or manifest.shared_files.get(fname)
            if entry is None:
                problems.append(f"{fname}: not listed in the {where}'s files")
            elif entry.get("sha256") != digest or entry.get("bytes") != nbytes:
                problems.append(f"{fname}: embedded copy differs from the {where}'s files entry")
    if problems:
        return failed(
            "PH102",
            problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
            problems,
        )
    return passed(
        "PH102", f"{len(embedded)} embedded files match their sha256: " + names(sorted(embedded))
    )


def check_plugin_meta(ctx: Context) -> Finding:
    s = ctx.subject
    if s.plugin is None or s.plugin_meta is None:
        return skipped("PH103", "no manifest")
    meta, problems = s.plugin_meta, []
    if meta["abi_node"] != ABI_NODE:
        problems.append(
            f"plugin.abi_node is {meta['abi_node']!r}, this paddlehot speaks {ABI_NODE}"
        )
    want = symbol_prefix(s.plugin.name, s.plugin.version, s.plugin.precision)
    if meta["symbol_prefix"] != want:
        problems.append(f"plugin.symbol_prefix is {meta['symbol_prefix']!r}, expected {want!r}")
    if meta["target"] not in ARCHES:
        problems.append(f"plugin.target {meta['target']!r} is not one of {', '.join(ARCHES)}")
    elif s.elf is not None and meta["target"] != s.elf.machine:
        problems.append(f"plugin.target is {meta['target']} but the ELF is {s.elf.machine}")
    if meta["c_api"] not in C_APIS:
        problems.append(f"plugin.c_api {meta['c_api']!r} is not one of {', '.join(C_APIS)}")
    if problems:
        return failed("PH103", problems[0], problems)
    return passed(
        "PH103", f"{ABI_NODE}, prefix {want}, target {meta['target']}, c_api {meta['c_api']}"
    )


def _designed(ctx: Context) -> list[str] | None:
    m = ctx.subject.plugin
    return designed_exports(m.name, m.version, m.precision) if m is not None else None


def check_exports_present(ctx: Context) -> Finding:
    designed = _designed(ctx)
    if designed is None:
        return skipped("PH110", "no manifest: the designed export names are unknown")
    have = {s.name for s in ctx.subject.elf.exports()}
    missing = [n for n in designed if n not in have]
    if missing:
        return failed(
            "PH110", f"missing export{'s' if len(missing) > 1 else ''}: {names(missing)}", missing
        )
    m = ctx.subject.plugin
    prefix = symbol_prefix(m.name, m.version, m.precision)
    return passed(
        "PH110",
        f"all {len(designed)} designed exports present: {prefix}{{"
        + ",".join(d[len(prefix) :] for d in designed)
        + "}",
    )


def check_no_extra_exports(ctx: Context) -> Finding:
    designed = _designed(ctx)
    if designed is None:
        return skipped("PH111", "no manifest: the designed export set is unknown")
    extra = sorted(s.name for s in ctx.subject.elf.exports() if s.name not in designed)
    if extra:
        cxx = [n for n in extra if n.startswith("_Z")]
        what = f"{len(extra)} export{'s' if len(extra) > 1 else ''} beyond the designed set"
        if cxx:
            what += f" ({len(cxx)} C++ mangled)"
        return failed("PH111", f"{what}: {names(extra)}", extra)
    return passed("PH111", "no other defined dynamic symbol")


def check_binding(ctx: Context) -> Finding:
    bad = [
        f"{s.name} ({s.bind_name})"
        for s in ctx.subject.elf.exports()
        if s.bind_name in ("STB_WEAK", "STB_GNU_UNIQUE")
    ]
    if bad:
        return failed(
            "PH112", f"weak or unique export{'s' if len(bad) > 1 else ''}: {names(bad)}", bad
        )
    return passed("PH112", "every export is STB_GLOBAL")


def check_kind_visibility(ctx: Context) -> Finding:
    bad = []
    for s in ctx.subject.elf.exports():
        if s.type != "STT_FUNC":
            bad.append(f"{s.name} is {s.type_name}, not a function")
        if s.visibility != "STV_DEFAULT":
            bad.append(f"{s.name} has {s.visibility}")
    if bad:
        return failed("PH113", names(bad, 4), bad)
    return passed("PH113", "every export is a function with default visibility")


def check_version_node(ctx: Context) -> Finding:
    node = ABI_NODE
    bad = []
    for s in ctx.subject.elf.exports():
        if s.version != node:
            bad.append(f"{s.name} ({'unversioned' if s.version is None else s.version})")
        elif s.version_hidden:
            bad.append(f"{s.name}@{node} is not the default version (@@)")
    if bad:
        return failed("PH114", f"not bound to {node}: {names(bad)}", bad)
    return passed("PH114", f"every export is bound to {node}")


PLUGIN_CHECKS = (
    check_elf_basics,
    check_manifest_section,
    check_embedded_files,
    check_plugin_meta,
    check_exports_present,
    check_no_extra_exports,
    check_binding,
    check_kind_visibility,
    check_version_node,
)
