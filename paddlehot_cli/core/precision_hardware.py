"""What a precision needs from the CPU and the Paddle build, and whether this box has it.

Two halves: `cpu_refusal` reads /proc/cpuinfo only (the repository watcher and abi-check run it
without paddle); `paddle_refusal` asks the imported Paddle itself (core.supports_*), because a
build without oneDNN accepts `enable_mkldnn_bfloat16()` and silently runs fp32 (the aarch64
3.2.2 wheel). A variant that cannot really run at its precision is refused, never served slowly
or silently at fp32.
"""

from __future__ import annotations

import platform
from typing import Any

# Per precision and machine: the CPU must have every flag of `all` and one of `any`; the
# Paddle build must have each feature of `paddle`. (x86 flag names are /proc/cpuinfo's.)
REQUIREMENTS: dict[str, dict[str, dict[str, list[str]]]] = {
    "bf16": {
        "x86_64": {"all": [], "any": ["avx512_bf16", "amx_bf16"],
                   "paddle": ["onednn", "bfloat16"]},
        "aarch64": {"all": ["bf16"], "any": [], "paddle": ["onednn", "bfloat16"]},
    },
    "int8": {
        # oneDNN's int8 kernels run from AVX2 on (jit_uni_int8:avx2); VNNI/AMX make them fast
        "x86_64": {"all": ["avx2"], "any": [], "paddle": ["onednn", "int8"]},
        "aarch64": {"all": ["asimddp"], "any": [], "paddle": ["onednn", "int8"]},
    },
}
FAST_WITH = {"bf16": ["avx512_bf16", "amx_bf16"], "int8": ["avx512_vnni", "avx_vnni", "amx_int8"]}


def machine() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU flags of this box (x86 `flags`, Arm `Features`), from /proc/cpuinfo."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def requirements(precision: str, arch: str | None = None) -> dict[str, list[str]] | None:
    """What `precision` needs on `arch` (None: nothing, fp32); {} when it cannot run there."""
    if precision == "fp32":
        return None
    return REQUIREMENTS.get(precision, {}).get(arch or machine(), {})


def cpu_refusal(needs: dict[str, Any] | None, precision: str, flags: set[str] | None = None,
                arch: str | None = None) -> str | None:
    """Why this CPU cannot run a `precision` variant needing `needs` (a manifest's `requires`),
    or None. `needs` None means fp32."""
    if needs is None:
        return None
    arch = arch or machine()
    have = cpu_flags() if flags is None else flags
    wanted_arch = needs.get("arch")
    if wanted_arch and wanted_arch != arch:
        return f"a {precision} variant made for {wanted_arch} cannot run on this {arch} CPU"
    missing = [f for f in needs.get("cpu_flags_all", []) if f not in have]
    if missing:
        return f"{precision} needs CPU flags {', '.join(missing)}, which this CPU lacks"
    any_of = needs.get("cpu_flags_any", [])
    if any_of and not have.intersection(any_of):
        return (f"{precision} needs a CPU with {' or '.join(any_of)}; this CPU has none of them "
                "(a slow or silent fp32 fallback is refused)")
    return None


def needs_for(precision: str, arch: str | None = None) -> dict[str, Any]:
    """The manifest's `requires` section for a variant made here at `precision`."""
    arch = arch or machine()
    req = requirements(precision, arch) or {}
    return {"arch": arch, "cpu_flags_all": list(req.get("all", [])),
            "cpu_flags_any": list(req.get("any", [])),
            "paddle": list(req.get("paddle", [])), "fast_with": FAST_WITH.get(precision, [])}


def paddle_features(core: Any) -> set[str]:
    """What this Paddle build says it can do (`paddle.base.core`)."""
    def ask(name: str) -> bool:
        fn = getattr(core, name, None)
        try:
            return bool(fn()) if fn is not None else False
        except Exception:  # noqa: BLE001 - an old build without the query cannot do it
            return False

    found = set()
    if ask("is_compiled_with_mkldnn"):
        found.add("onednn")
        # a build without oneDNN has no bf16/int8 CPU kernels, whatever the CPU says
        if ask("supports_bfloat16"):
            found.add("bfloat16")
        if ask("supports_int8"):
            found.add("int8")
    return found


def paddle_refusal(needs: dict[str, Any] | None, precision: str, core: Any) -> str | None:
    """Why the imported Paddle cannot run this variant, or None."""
    if needs is None:
        return None
    have = paddle_features(core)
    missing = [f for f in needs.get("paddle", []) if f not in have]
    if not missing:
        return None
    what = {"onednn": "oneDNN (this wheel was built without it)",
            "bfloat16": "bfloat16 kernels (core.supports_bfloat16() is False on this CPU/build)",
            "int8": "int8 kernels (core.supports_int8() is False on this CPU/build)"}
    return f"{precision} needs a Paddle with " + " and ".join(what.get(m, m) for m in missing)
