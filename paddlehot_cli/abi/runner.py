"""Run every applicable check on TARGET (and the baseline comparison) and collect a Report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paddlehot_cli import __version__
from paddlehot_cli.abi.context import ARCHES, Context, host_arch
from paddlehot_cli.abi.findings import ERROR, FAIL, WARNING, Finding
from paddlehot_cli.abi.policy import Policy, glibc_key, load_policy, load_suppressions
from paddlehot_cli.abi.target import Subject, resolve
from paddlehot_cli.errors import UserError

JSON_SCHEMA_ID = "paddlehot.abi-check/1"
C_ABI_CHECKS = ("PH201", "PH202", "PH204")
# abidiff's exit bits (libabigail's abidiff_status)
ABIDIFF_ERROR, ABIDIFF_USAGE_ERROR, ABIDIFF_ABI_CHANGE, ABIDIFF_ABI_INCOMPATIBLE = 1, 2, 4, 8
# ours, in both conventions: the C ABI could not be compared and the gate requires it
NOT_COMPARED = 16


@dataclass
class Report:
    target: str
    subject: Subject
    arch: str
    policy: Policy
    glibc_floor: str | None
    findings: list[Finding]
    runtime: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    signed: dict[str, str] | None = None  # abi/signed.py: each artifact's signature state

    @property
    def kind(self) -> str:
        s = self.subject
        if s.package is not None:
            return "package+plugin" if s.elf is not None else "package"
        return "plugin"

    def count(self, status: str, severity: str | None = None) -> int:
        return sum(
            1
            for f in self.findings
            if f.status == status and (severity is None or f.severity == severity)
        )

    def _fails(self, f: Finding) -> bool:
        return f.status == FAIL and (
            f.severity == ERROR or (f.severity == WARNING and self.policy.warnings_fail)
        )

    @property
    def not_compared_bit(self) -> int:
        return NOT_COMPARED if any(f.not_compared and self._fails(f) for f in self.findings) else 0

    @property
    def exit_code(self) -> int:
        """0 ok, 1 violations, | 16 the C ABI could not be compared (and that fails the gate)."""
        violations = any(self._fails(f) and not f.not_compared for f in self.findings)
        return int(violations) | self.not_compared_bit

    @property
    def abidiff_exit_code(self) -> int:
        """abidiff's convention: 4 a C ABI change, |8 a breaking one (our verdict, so a narrowed
        parameter is 12 where abidiff says 4), |1 another check failed, |16 not compared. A suppressed change
        clears its bits, as in abidiff; a MAJOR bump does not (abidiff knows no SemVer)."""
        code = 0
        c_abi = (self.baseline or {}).get("c_abi")
        if c_abi in ("compatible", "breaking"):
            code |= ABIDIFF_ABI_CHANGE
        if c_abi == "breaking":
            code |= ABIDIFF_ABI_INCOMPATIBLE
        for f in self.findings:
            if f.id not in C_ABI_CHECKS and self._fails(f):
                code |= ABIDIFF_ERROR
        return code | self.not_compared_bit

    def to_json(self) -> dict[str, Any]:
        m = self.subject.manifest
        return {
            "schema": JSON_SCHEMA_ID,
            "tool": {"name": "paddlehot", "version": __version__},
            "target": {
                "spec": self.target,
                "kind": self.kind,
                "plugin": str(self.subject.so_path) if self.subject.so_path else None,
                "package": str(self.subject.package_dir) if self.subject.package_dir else None,
                "name": m.name if m else None,
                "version": m.version if m else None,
                "precision": m.precision if m else None,  # 1.0.0 + int8: the variant 1.0.0-int8
            },
            "signed": self.signed,
            "arch": self.arch,
            "policy": {"name": self.policy.name, "source": self.policy.source},
            "glibc_floor": self.glibc_floor,
            "runtime": self.runtime,
            "baseline": self.baseline,
            "summary": {
                "passed": self.count("pass"),
                "failed": self.count(FAIL, ERROR),
                "warnings": self.count(FAIL, WARNING),
                "skipped": self.count("skip"),
                "not_compared": bool(self.not_compared_bit),
                "exit_code": self.exit_code,
            },
            "ok": self.exit_code == 0,
            "findings": [f.to_json() for f in self.findings],
        }


def _pick_arch(arch: str | None, subject: Subject) -> str:
    if arch is not None:
        if arch not in ARCHES:
            raise UserError(f"unknown --arch '{arch}'", hint="one of " + ", ".join(ARCHES))
        return arch
    meta = subject.plugin_meta
    if meta is not None and meta.get("target") in ARCHES:
        return meta["target"]
    return host_arch()


def run_abi_check(
    target: str,
    *,
    baseline: str | None = None,
    policy: str | None = None,
    arch: str | None = None,
    glibc: str | None = None,
    runtime_dirs: Sequence[Path] = (),
    suppressions: Sequence[Path] = (),
    require_dwarf: bool = False,
    trust: Sequence[Path] = (),
) -> Report:
    """Check TARGET; raise UserError (exit 2) for unusable input, else return a Report."""
    from paddlehot_cli.abi.checks_functypes import check_function_types
    from paddlehot_cli.abi.checks_hardening import HARDENING_CHECKS
    from paddlehot_cli.abi.checks_imports import IMPORT_CHECKS
    from paddlehot_cli.abi.checks_package import PACKAGE_CHECKS
    from paddlehot_cli.abi.checks_plugin import PLUGIN_CHECKS
    from paddlehot_cli.abi.checks_variant import check_variant_runtime
    from paddlehot_cli.abi.runtime import resolve_runtime

    if glibc is not None and glibc_key(glibc) is None:
        raise UserError(f"invalid --glibc '{glibc}'", hint="write MAJOR.MINOR, e.g. 2.28")
    pol = load_policy(policy)
    rules = list(pol.suppressions)
    for path in suppressions:
        rules += load_suppressions(Path(path))
    subject = resolve(target)
    old = resolve(baseline) if baseline is not None else None
    the_arch = _pick_arch(arch, subject)
    floor = glibc or pol.floor_for(the_arch)
    ctx = Context(subject, the_arch, pol, floor, list(runtime_dirs), suppressions=rules)
    findings: list[Finding] = []
    runtime_json: dict[str, Any] = {}
    if subject.elf is not None:
        elf = subject.elf
        rt_arch = elf.machine if elf.machine in ARCHES else the_arch
        ctx.runtime = resolve_runtime(elf.needed, rt_arch, elf.elfclass, list(runtime_dirs))
        try:
            for check in (*PLUGIN_CHECKS, check_function_types, *IMPORT_CHECKS, *HARDENING_CHECKS):
                findings.append(check(ctx))
        finally:
            ctx.runtime.close()
        runtime_json = {
            "dirs": [str(d) for d in ctx.runtime.dirs],
            "libraries": {k: str(v.path) for k, v in ctx.runtime.libraries.items()},
            "missing": list(ctx.runtime.missing),
            "c_api_from_headers": ctx.runtime.header_api is not None,
        }
    if subject.package is not None:
        findings.extend(check(ctx) for check in (*PACKAGE_CHECKS, check_variant_runtime))
    elif subject.plugin is not None and subject.plugin.precision != "fp32":
        findings.append(check_variant_runtime(ctx))  # a variant's plugin alone: can it run?
    baseline_json = None
    if old is not None:
        from paddlehot_cli.abi.baseline import compare

        result = compare(old, subject, rules, require_dwarf or pol.require_dwarf)
        findings.extend(result.findings)
        om = old.manifest
        baseline_json = {
            "spec": baseline,
            "name": om.name if om else None,
            "version": om.version if om else None,
            "bump": result.bump,
            "c_abi": result.c_abi,
            "signature": result.signature,
            "c_abi_scope": result.c_abi_scope,
            "suppressed": result.suppressed,
            "changes": [
                {
                    "area": area,
                    "breaking": c.breaking,
                    "what": c.what,
                    "symbol": c.symbol,
                    "type": c.type,
                }
                for area, changes in (
                    ("c_abi", result.c_abi_changes),
                    ("signature", result.signature_changes),
                )
                for c in changes
            ],
        }
    signed = None
    if subject.package_dir is not None and subject.package is not None:
        from paddlehot_cli.abi.signed import signature_report

        signed = signature_report(subject.package_dir, subject.package.name,
                                  subject.package.version, list(trust))
    return Report(target, subject, the_arch, pol, floor, findings, runtime_json, baseline_json,
                  signed)
