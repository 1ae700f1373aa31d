"""One check result (Finding) and the catalog of check ids: stable ids, titles, default hints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"
PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    hint: str


_CATALOG = [
    CheckInfo(
        "PH100",
        "ELF basics: 64-bit shared object for the target arch",
        "build with build-plugin for the right --arch (a -shared -fPIC object)",
    ),
    CheckInfo(
        "PH101",
        "manifest section .paddlehot.manifest present",
        "rebuild with paddlehot build-plugin, which embeds the manifest",
    ),
    CheckInfo(
        "PH102",
        "embedded model files match their checksums",
        "rebuild the plugin from an intact package",
    ),
    CheckInfo(
        "PH103",
        "plugin metadata consistent (abi_node, symbol_prefix, target)",
        "rebuild with paddlehot build-plugin; do not edit the manifest by hand",
    ),
    CheckInfo(
        "PH110",
        "all five designed exports present",
        "export open, infer, close, manifest, last_error with the manifest's symbol prefix",
    ),
    CheckInfo(
        "PH111",
        "no exports beyond the designed set (no leaked helpers, no C++ names)",
        "compile with -fvisibility=hidden and list only the five functions in the version "
        "script ('local: *;' for the rest)",
    ),
    CheckInfo(
        "PH112",
        "no STB_WEAK or STB_GNU_UNIQUE exports",
        "drop __attribute__((weak)) from exports; build C++ inline statics with -fno-gnu-unique",
    ),
    CheckInfo(
        "PH113",
        "exports are functions with default visibility",
        'export only functions, with __attribute__((visibility("default")))',
    ),
    CheckInfo(
        "PH114",
        "exports bound to the plugin's version node",
        "link with -Wl,--version-script declaring 'PADDLEHOT_1.0 { global: ...; local: *; };'",
    ),
    CheckInfo(
        "PH115",
        "exports match plugin.h's function types (DWARF)",
        "declare each export exactly as its phot_<fn>_fn in plugin.h (return and parameter "
        "types); rebuild the plugin against the plugin.h it ships for",
    ),
    CheckInfo(
        "PH120",
        "every imported symbol has a provider in the runtime",
        "link against the runtime you deploy on, or pass its directory with --runtime DIR",
    ),
    CheckInfo(
        "PH121",
        "NEEDED libraries found in the runtime and allowed by the policy",
        "pass the directory of the library with --runtime DIR; link only the C API and libc",
    ),
    CheckInfo(
        "PH122",
        "required glibc symbol versions at most the floor",
        "build on an older distribution (or in a manylinux container), or avoid the named symbols",
    ),
    CheckInfo(
        "PH123",
        "runtime Paddle not older than the exporter's",
        "run the package's validation in that runtime (build-plugin --verify, with --sysroot "
        "for a cross target); re-export with the runtime's Paddle if it fails",
    ),
    CheckInfo(
        "PH124",
        "pdcapi's Paddle C++ imports all in the runtime's libpaddle.so",
        "build pdcapi against that runtime's paddlepaddle (build-plugin --sysroot ROOTFS for a "
        "rootfs), or install the Paddle it was built for",
    ),
    CheckInfo("PH130", "GNU_RELRO with BIND_NOW", "link with -Wl,-z,relro,-z,now"),
    CheckInfo("PH131", "non-executable stack", "link with -Wl,-z,noexecstack"),
    CheckInfo("PH132", "no text relocations (TEXTREL)", "compile every object with -fPIC"),
    CheckInfo(
        "PH133",
        "RPATH/RUNPATH only $ORIGIN-relative",
        "drop absolute -Wl,-rpath; use -Wl,-rpath,'$ORIGIN' or pass dirs at deploy time",
    ),
    CheckInfo(
        "PH140",
        "package files match the package manifest",
        "republish the package; a published version is never modified",
    ),
    CheckInfo(
        "PH141",
        "plugin manifest agrees with the package manifest",
        "rebuild plugin.so from this package with paddlehot build-plugin",
    ),
    CheckInfo(
        "PH142",
        "a precision variant runs on the target (CPU flags, Paddle with oneDNN)",
        "serve the fp32 version there, or derive the variant on and for a box that has them "
        "(docs/variants.md)",
    ),
    CheckInfo(
        "PH200",
        "baseline: same model, newer version",
        "compare against an older version of the same model",
    ),
    CheckInfo(
        "PH201",
        "C ABI exports compatible with the baseline",
        "keep every export and its version node; breaking changes need a MAJOR bump",
    ),
    CheckInfo(
        "PH202",
        "C ABI types reachable from the exports compatible with the baseline (DWARF)",
        "only append fields to structs that start with struct_size, only add enumerators; "
        "breaking changes need a MAJOR bump",
    ),
    CheckInfo(
        "PH203",
        "model signature compatible with the baseline",
        "breaking signature changes need a MAJOR bump, compatible ones a MINOR bump",
    ),
    CheckInfo(
        "PH204",
        "C ABI function signatures and exported variables compatible with the baseline (DWARF)",
        "keep every exported function's return and parameter types (size, signedness, "
        "pointee); breaking changes need a MAJOR bump",
    ),
]
CATALOG: dict[str, CheckInfo] = {c.id: c for c in _CATALOG}


@dataclass
class Finding:
    id: str
    status: str  # pass | fail | skip
    severity: str  # error | warning | info
    message: str
    hint: str | None = None
    details: list[str] = field(default_factory=list)
    not_compared: bool = False  # a failure because the C ABI could not be compared (exit bit 16)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    @property
    def title(self) -> str:
        return CATALOG[self.id].title

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "ok": self.ok,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "details": list(self.details),
            "not_compared": self.not_compared,
        }


def passed(check_id: str, message: str, details: list[str] | None = None) -> Finding:
    return Finding(check_id, PASS, INFO, message, None, details or [])


def failed(
    check_id: str,
    message: str,
    details: list[str] | None = None,
    *,
    severity: str = ERROR,
    hint: str | None = None,
) -> Finding:
    return Finding(check_id, FAIL, severity, message, hint or CATALOG[check_id].hint, details or [])


def skipped(check_id: str, message: str) -> Finding:
    return Finding(check_id, SKIP, INFO, message)


def names(items: list[str], limit: int = 8) -> str:
    """'a, b, c' with at most `limit` names, then '(+N more)'."""
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" (+{len(items) - limit} more)"
    return shown
