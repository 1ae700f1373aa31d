"""Baseline comparison: version bump (PH200), C ABI exports (PH201), the types reachable from
them (PH202, DWARF), model signature (PH203), exported function signatures (PH204, DWARF).

Rules: a breaking change without a MAJOR bump is an error; a compatible change without at least a
MINOR bump is a warning. `diff_signatures` works on two Manifests, so packages without plugins
follow the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from paddlehot_cli.abi.findings import (
    ERROR,
    PASS,
    SKIP,
    WARNING,
    Finding,
    failed,
    passed,
    skipped,
)
from paddlehot_cli.abi.suppressions import Suppression, split
from paddlehot_cli.abi.surface_diff import Change
from paddlehot_cli.abi.surfaces import export_keys, surface_of
from paddlehot_cli.abi.target import Subject

if TYPE_CHECKING:
    from paddlehot_cli.abi.dwarf_types import Surface
from paddlehot_cli.core.manifest import Manifest
from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.core.versions import parse_semver

MAJOR, MINOR, PATCH, SAME, OLDER = "major", "minor", "patch", "same", "older"


def bump_level(old: str, new: str) -> str:
    a, b = parse_semver(old), parse_semver(new)
    if b == a:
        return SAME
    if b < a:
        return OLDER
    if b[0] > a[0]:
        return MAJOR
    if b[1] > a[1]:
        return MINOR
    return PATCH


def verdict(changes: Sequence[Change]) -> str:
    if any(c.breaking for c in changes):
        return "breaking"
    return "compatible" if changes else "unchanged"


def _diff_spec(kind: str, a: TensorSpec, b: TensorSpec) -> list[Change]:
    out = []
    if a.dtype != b.dtype:
        out.append(Change(True, f"{kind} '{a.name}' dtype changed from {a.dtype} to {b.dtype}"))
    if len(a.shape) != len(b.shape):
        out.append(
            Change(
                True,
                f"{kind} '{a.name}' rank changed from {len(a.shape)} to "
                f"{len(b.shape)} ({list(a.shape)} -> {list(b.shape)})",
            )
        )
        return out
    for axis, (da, db) in enumerate(zip(a.shape, b.shape)):
        if da == db:
            continue
        if da == -1:
            out.append(Change(True, f"{kind} '{a.name}' dim {axis} made fixed ({db}), was dynamic"))
        elif db == -1:
            out.append(Change(False, f"{kind} '{a.name}' dim {axis} made dynamic, was {da}"))
        else:
            out.append(Change(True, f"{kind} '{a.name}' dim {axis} changed from {da} to {db}"))
    return out


def diff_signatures(old: Manifest, new: Manifest) -> list[Change]:
    """Every signature change from `old` to `new`, each marked breaking or compatible."""
    changes: list[Change] = []
    new_in = {s.name: s for s in new.inputs}
    for spec in old.inputs:
        if spec.name not in new_in:
            changes.append(Change(True, f"input '{spec.name}' removed or renamed"))
        else:
            changes.extend(_diff_spec("input", spec, new_in[spec.name]))
    old_in = {s.name for s in old.inputs}
    for spec in new.inputs:
        if spec.name not in old_in:
            changes.append(Change(True, f"input '{spec.name}' added (callers do not send it)"))
    new_out = {s.name: s for s in new.outputs}
    new_pos = {s.name: i for i, s in enumerate(new.outputs)}
    for i, spec in enumerate(old.outputs):
        if spec.name not in new_out:
            changes.append(Change(True, f"output '{spec.name}' removed or renamed"))
            continue
        changes.extend(_diff_spec("output", spec, new_out[spec.name]))
        if new_pos[spec.name] != i:
            changes.append(
                Change(
                    True,
                    f"output '{spec.name}' moved from position {i} to "
                    f"{new_pos[spec.name]} (hosts may take outputs in order)",
                )
            )
    old_out = {s.name for s in old.outputs}
    for spec in new.outputs:
        if spec.name not in old_out:
            changes.append(Change(False, f"output '{spec.name}' added"))
    return changes


def _export_set(subject: Subject) -> set[tuple[str, str | None, bool]]:
    """(export key, version node, default?) of every export: what a caller binds to is the
    name at a node, so the set is compared, never the symbol table's order."""
    keys = export_keys(subject)
    assert subject.elf is not None
    return {(keys[s.name], s.version, not s.version_hidden) for s in subject.elf.exports()}


def diff_exports(old: Subject, new: Subject) -> list[Change]:
    a, b = _export_set(old), _export_set(new)
    b_nodes = {(k, v): d for k, v, d in b}
    changes = []
    for key, node, default in sorted(a, key=str):
        if (key, node) in b_nodes:
            if default and not b_nodes[(key, node)]:
                now = sorted(str(v) for k, v, d in b if k == key and d)
                changes.append(
                    Change(
                        False,
                        f"export '{key}@{node}' kept, no longer the default "
                        f"(new links bind to {', '.join(now) or 'none'})",
                        symbol=key,
                    )
                )
            continue
        elsewhere = sorted(str(v) for k, v, _ in b if k == key)
        what = (
            f"moved from version node {node} to {', '.join(elsewhere)}"
            if elsewhere
            else "removed or renamed"
        )
        changes.append(Change(True, f"export '{key}' {what}", symbol=key))
    old_keys = {k for k, _, _ in a}
    for key, node, _ in sorted(b - a, key=str):
        if (key, node) in {(k, v) for k, v, _ in a}:
            continue  # the same node, now the default: old callers bind as before
        added = f"export '{key}' added" if key not in old_keys else f"export '{key}@{node}' added"
        changes.append(Change(False, added, symbol=key))
    return changes


def apply_bump_rule(
    check_id: str,
    changes: Sequence[Change],
    bump: str,
    what: str,
    notes: Sequence[str] = (),
) -> Finding:
    """`notes`: what was left out (suppressed changes, exports not compared), one line each."""
    details = [("breaking: " if c.breaking else "compatible: ") + c.what for c in changes]
    details += list(notes)
    breaking = [c for c in changes if c.breaking]
    if breaking:
        if bump == MAJOR:
            return passed(
                check_id,
                f"{len(breaking)} breaking {what} change(s), allowed by the MAJOR bump",
                details,
            )
        return failed(
            check_id,
            f"breaking {what} change without a MAJOR bump ({bump}): "
            f"{breaking[0].what}" + (f" (+{len(breaking) - 1} more)" if len(breaking) > 1 else ""),
            details,
        )
    if changes:
        if bump in (MAJOR, MINOR):
            return passed(
                check_id, f"{len(changes)} compatible {what} change(s) with a {bump} bump", details
            )
        return failed(
            check_id,
            f"compatible {what} change without at least a MINOR bump ({bump}): {changes[0].what}",
            details,
            severity=WARNING,
        )
    hidden = sum(1 for n in notes if n.startswith("suppressed"))
    blind = len(notes) - hidden
    tail = ", ".join(
        ([f"{hidden} suppressed"] if hidden else []) + ([f"{blind} not compared"] if blind else [])
    )
    return passed(check_id, f"{what} unchanged" + (f" ({tail})" if tail else ""), details)


@dataclass
class BaselineResult:
    findings: list[Finding]
    bump: str | None
    c_abi: str  # breaking | compatible | unchanged | not-compared
    signature: str  # breaking | compatible | unchanged | not-compared
    c_abi_changes: list[Change]
    signature_changes: list[Change]
    c_abi_scope: str = "none"  # none | exports | exports+dwarf
    suppressed: list[str] = field(default_factory=list)


def compare(
    old: Subject,
    new: Subject,
    suppressions: Sequence[Suppression] = (),
    require_dwarf: bool = False,
) -> BaselineResult:
    """`require_dwarf`: a C ABI that cannot be compared through DWARF on both sides is an error
    (exit bit 16), not a warning."""
    findings: list[Finding] = []
    mo, mn = old.manifest, new.manifest
    bump = None
    if mo is None or mn is None:
        findings.append(skipped("PH200", "no manifest on one side: name and version unknown"))
    else:
        bump = bump_level(mo.version, mn.version)
        if mo.name != mn.name:
            findings.append(
                failed("PH200", f"baseline is model '{mo.name}', target is '{mn.name}'")
            )
        elif bump in (SAME, OLDER):
            word = "the same as" if bump == SAME else "older than"
            findings.append(
                failed(
                    "PH200",
                    f"version {mn.version} is {word} the baseline's {mo.version}",
                    hint="bump the version (SemVer)",
                )
            )
        else:
            findings.append(
                passed("PH200", f"{mn.name} {mo.version} -> {mn.version} ({bump} bump)")
            )
    rule_bump = bump or SAME

    abi_changes: list[Change] = []
    hidden: list[str] = []
    c_abi, scope = "not-compared", "none"
    if old.elf is None or new.elf is None:
        for check_id in ("PH201", "PH204", "PH202"):
            findings.append(skipped(check_id, "not compared: both sides need a plugin .so"))
    else:
        exports, gone = split(diff_exports(old, new), suppressions)
        findings.append(apply_bump_rule("PH201", exports, rule_bump, "C ABI export", gone))
        dwarf_findings, dwarf_changes, dwarf_gone = _compare_dwarf(
            old, new, rule_bump, suppressions
        )
        findings += dwarf_findings
        abi_changes = exports + (dwarf_changes or [])
        hidden = [n for n in gone + dwarf_gone if n.startswith("suppressed")]
        blind = [n for n in dwarf_gone if not n.startswith("suppressed")]
        scope = "exports+dwarf" if dwarf_changes is not None else "exports"
        if blind:
            scope = "exports+partial-dwarf"
        c_abi = verdict(abi_changes)
        if scope != "exports+dwarf" and c_abi == "unchanged":
            c_abi = "not-compared"  # same names say nothing about the signatures behind them
        if scope != "exports+dwarf":
            findings = [_blind(f, require_dwarf) for f in findings]

    sig_changes: list[Change] = []
    signature = "not-compared"
    if mo is None or mn is None:
        findings.append(skipped("PH203", "no manifest on one side"))
    else:
        sig_changes = diff_signatures(mo, mn)
        findings.append(apply_bump_rule("PH203", sig_changes, rule_bump, "model signature"))
        signature = verdict(sig_changes)
    findings.sort(key=lambda f: f.id)  # PH200..PH204 in order, whatever found them first
    return BaselineResult(findings, bump, c_abi, signature, abi_changes, sig_changes, scope, hidden)


NOT_COMPARED_HINT = (
    "build both sides with build-plugin --debug; --require-dwarf (or the policy's "
    "require_dwarf) makes this an error with exit bit 16"
)


def _blind(f: Finding, required: bool) -> Finding:
    """PH202/PH204 when DWARF was missing on a side, or for some export: never a silent pass.
    A warning (the gate passes unless warnings fail), or with `required` an error."""
    if f.id not in ("PH202", "PH204"):
        return f
    blind = [d for d in f.details if d.startswith("not compared")]
    if f.status == SKIP:
        message = f.message
    elif blind and f.status == PASS:
        message = f"{len(blind)} export(s) not compared: " + blind[0].rpartition(": ")[2]
    else:
        return f  # a real verdict (a failure), or nothing left unseen by this check
    return replace(
        failed(f.id, message, f.details, severity=ERROR if required else WARNING),
        hint=NOT_COMPARED_HINT,
        not_compared=True,
    )


def _compare_dwarf(
    old: Subject, new: Subject, bump: str, suppressions: Sequence[Suppression]
) -> tuple[list[Finding], list[Change] | None, list[str]]:
    """PH204 (function signatures, variable types) and PH202 (reachable types, ABI record):
    (findings, changes or None when not compared at all, one note per change suppressed or
    export not compared)."""
    from paddlehot_cli.abi.surface_diff import diff_functions, diff_types, diff_variables

    reads = [surface_of(old, "baseline"), surface_of(new, "target")]
    why = next((r.why_not for r in reads if r.why_not is not None), None)
    if why is not None:
        note = f"not compared: {why}"
        return [skipped("PH204", note), skipped("PH202", note)], None, []
    a, b = reads[0].surface, reads[1].surface
    assert a is not None and b is not None
    keys = {**export_keys(old), **export_keys(new)}
    b = _rekey(b, old, new)
    funcs, funcs_gone = split(
        diff_functions(a.functions, b.functions, keys) + diff_variables(a, b, keys), suppressions
    )
    types, types_gone = split(diff_types(a, b), suppressions)
    # an export on both sides whose DWARF one side lacks (e.g. from an object built without -g)
    seen_a = set(a.functions) | set(a.variables)
    seen_b = set(b.functions) | set(b.variables)
    new_keys = set(export_keys(new).values())
    blind = [
        f"not compared (no DWARF for it on one side): {key}()"
        for sym, key in sorted(export_keys(old).items())
        if key in new_keys and (sym not in seen_a or sym not in seen_b)
    ]
    return (
        [
            apply_bump_rule("PH204", funcs, bump, "C ABI function signature", funcs_gone + blind),
            apply_bump_rule("PH202", types, bump, "C ABI type", types_gone),
        ],
        funcs + types,
        funcs_gone + types_gone + blind,
    )


def _rekey(surface: Surface, old: Subject, new: Subject) -> Surface:
    """The target's exports under the baseline's ELF names (pairs them across a version bump:
    phot_mlp_v1_0_0_infer and phot_mlp_v1_1_0_infer are the same export)."""
    by_key = {k: s for s, k in export_keys(old).items()}
    new_keys = export_keys(new)

    def rename(items: dict) -> dict:  # type: ignore[type-arg]
        return {by_key.get(new_keys.get(sym, sym), sym): v for sym, v in items.items()}

    return replace(
        surface, functions=rename(surface.functions), variables=rename(surface.variables)
    )
