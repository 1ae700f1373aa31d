"""Import checks: a provider for every import (PH120), NEEDED libs (PH121), glibc floor (PH122),
Paddle version skew between exporter and runtime (PH123), and when the runtime's C API is
paddlehot's pdcapi, its imports of Paddle's C++ API in the runtime's libpaddle.so (PH124)."""

from __future__ import annotations

from paddlehot_cli.abi.context import Context
from paddlehot_cli.abi.findings import WARNING, Finding, failed, names, passed, skipped
from paddlehot_cli.abi.policy import glibc_key
from paddlehot_cli.abi.runtime import C_API_LIB


def check_imports_resolved(ctx: Context) -> Finding:
    elf, rt = ctx.subject.elf, ctx.runtime
    assert elf is not None and rt is not None
    strong = [s for s in elf.imports() if s.bind != "STB_WEAK"]
    missing = []
    for s in strong:
        if rt.provider(s.name, s.version, s.version_file) is None:
            label = s.name + (f"@{s.version}" if s.version else "")
            missing.append(label)
    if missing:
        why = ""
        if rt.missing:
            why = f" ({names(rt.missing)} not found in the runtime)"
        return failed(
            "PH120",
            f"{len(missing)} unresolved import{'s' if len(missing) > 1 else ''}: "
            f"{names(missing)}{why}",
            missing,
        )
    weak = len(elf.imports()) - len(strong)
    return passed(
        "PH120",
        f"{len(strong)} imports resolved in {len(rt.libraries)} NEEDED libraries"
        + (f" ({weak} weak imports need no provider)" if weak else ""),
    )


def check_needed(ctx: Context) -> Finding:
    elf, rt, policy = ctx.subject.elf, ctx.runtime, ctx.policy
    assert elf is not None and rt is not None
    problems, notes = [], []
    for lib in elf.needed:
        if not policy.needed_allowed(lib):
            if lib.startswith("libstdc++") or lib in policy.libstdcxx_needed:
                problems.append(
                    f"{lib} is NEEDED but policy '{policy.name}' does not allow libstdc++"
                )
            else:
                problems.append(f"{lib} is not allowed by policy '{policy.name}'")
    for lib in rt.missing:
        if lib == C_API_LIB and rt.header_api is not None:
            notes.append(
                f"{lib} not found; its API was taken from native/pdcapi/include "
                f"({len(rt.header_api)} PD_* functions)"
            )
            continue
        where = ", ".join(str(d) for d in rt.dirs[:4]) + (" ..." if len(rt.dirs) > 4 else "")
        other = rt.wrong_arch.get(lib)
        problems.append(
            f"{lib} not found in the runtime dirs ({where})"
            + (f"; only for another arch: {other[0]}" if other else "")
        )
    if problems:
        hint = None
        if any("not found" in p for p in problems):
            hint = (
                f"pass the directory holding it with --runtime DIR (for {C_API_LIB}: the "
                "Paddle Inference C library, or paddlehot's pdcapi build)"
            )
        return failed(
            "PH121",
            problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
            problems + notes,
            hint=hint,
        )
    msg = f"NEEDED: {names(elf.needed) or 'none'}"
    if notes:
        msg += f"; {notes[0]}"
    return passed("PH121", msg, [f"{k} -> {v.path}" for k, v in rt.libraries.items()] + notes)


def check_glibc_floor(ctx: Context) -> Finding:
    elf = ctx.subject.elf
    assert elf is not None
    floor = ctx.glibc_floor
    if floor is None:
        return skipped("PH122", f"policy '{ctx.policy.name}' has no glibc floor for {ctx.arch}")
    floor_key = glibc_key(floor)
    assert floor_key is not None
    required = sorted(
        {v for vs in elf.version_needs.values() for v in vs if v.startswith("GLIBC_")},
        key=lambda v: glibc_key(v) or (999,),
    )
    if not required:
        return passed("PH122", f"no versioned glibc symbols required (floor {floor})")
    private = [s.name for s in elf.imports() if s.version == "GLIBC_PRIVATE"]
    too_new = [
        s
        for s in elf.imports()
        if s.version
        and s.version.startswith("GLIBC_")
        and s.version != "GLIBC_PRIVATE"
        and (glibc_key(s.version) or (0,)) > floor_key
    ]
    highest = max((v for v in required if glibc_key(v)), key=glibc_key, default=None)
    if private:
        return failed("PH122", f"needs GLIBC_PRIVATE symbols: {names(private)}", private)
    if too_new:
        labels = sorted(f"{s.name}@{s.version}" for s in too_new)
        return failed(
            "PH122",
            f"requires {highest}, above the floor {floor}; raised by {names(labels)}",
            labels,
        )
    return passed("PH122", f"highest required {highest} <= floor {floor}")


def check_paddle_skew(ctx: Context) -> Finding:
    from paddlehot_cli.core.paddle_skew import exporter_paddle, older_runtime_warning

    rt = ctx.runtime
    assert rt is not None
    exported = exporter_paddle(ctx.subject.manifest)
    if rt.paddle_version is None or not exported:
        return skipped(
            "PH123",
            "the runtime's Paddle version is unknown (it is known for this "
            "host's paddlepaddle and for a rootfs passed with --runtime)",
        )
    warning = older_runtime_warning(exported, rt.paddle_version)
    if warning:
        return failed("PH123", warning, severity=WARNING)
    return passed("PH123", f"exported with Paddle {exported}, runtime has {rt.paddle_version}")


def check_pdcapi_over_libpaddle(ctx: Context) -> Finding:
    """pdcapi is C++ over the wheel's libpaddle.so: a C++ symbol it uses that this runtime's
    libpaddle lacks (another Paddle release) would fail only at dlopen on the box."""
    from paddlehot_cli.plugin.libpaddle import demangle, missing_symbols, paddle_imports

    rt = ctx.runtime
    assert rt is not None
    if not rt.given:  # its cache key holds the wheel's build id: checked when it was built
        return skipped("PH124", "this host's pdcapi was checked against this host's "
                                "libpaddle.so when it was built; pass --runtime to check another")
    c_api = rt.libraries.get(C_API_LIB)
    if c_api is None:
        return skipped("PH124", f"no {C_API_LIB} in the runtime to look into")
    if not paddle_imports(c_api.path):
        return skipped("PH124", f"{c_api.path} is not paddlehot's pdcapi (it imports no Paddle "
                                "C++ API): the official C library brings its own Paddle")
    if rt.libpaddle is None:
        return failed("PH124", f"{c_api.path} is paddlehot's pdcapi, and the runtime has no "
                               "libpaddle.so (paddlepaddle's paddle/base/libpaddle.so) for it")
    missing = missing_symbols(c_api.path, rt.libpaddle)
    if missing:
        shown = demangle(missing)
        return failed("PH124", f"{rt.libpaddle} lacks {len(missing)} C++ symbol(s) pdcapi uses: "
                               f"{names(shown)}", shown)
    return passed("PH124", f"pdcapi's {len(paddle_imports(c_api.path))} Paddle C++ imports are all "
                           f"in {rt.libpaddle}")


IMPORT_CHECKS = (check_imports_resolved, check_needed, check_glibc_floor, check_paddle_skew,
                 check_pdcapi_over_libpaddle)
