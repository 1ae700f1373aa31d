"""The mutation corpus (tests/abi_fixtures/corpus.py): each case is one small, real change to the
plugin C ABI, grouped by class, compiled with gcc -g for x86_64 and aarch64. For each, abidiff
(libabigail, run live) and `abi-check --baseline` must reach the same verdict (breaking /
compatible / none), except where the case names abidiff's other verdict and why ours is right;
docs/abi-check.md carries that table (a test keeps it equal to the corpus)."""

from __future__ import annotations

import re
import subprocess

import pytest
from abi_fixtures import helpers as h
from abi_fixtures.corpus import CASES, agreement_table, by_name

from paddlehot_cli.abi.runner import run_abi_check

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")

SUMMARY = re.compile(
    r"(Functions|Variables) changes summary: (\d+) Removed, (\d+) Changed"
    r"(?: \((\d+) filtered out\))?, (\d+) Added"
)


def abidiff(old, new) -> tuple[str, int, str]:
    """abidiff's verdict, read from its exit bits and its report (functions and variables):
    bit 8 (incompatible: a symbol removed) is breaking; bit 4 with a changed function or
    variable (a parameter, return or reachable type changed under a caller compiled against the
    old header) is breaking, with only added symbols compatible; a change it filtered out as
    harmless (e.g. an enumerator added) is compatible; nothing else is none."""
    proc = subprocess.run(
        ["abidiff", str(old), str(new)], check=False, capture_output=True, text=True
    )
    assert proc.returncode & 3 == 0, proc.stderr  # 1 = abidiff's error, 2 = usage error
    counts = [tuple(int(x or 0) for x in m.groups()[1:]) for m in SUMMARY.finditer(proc.stdout)]
    if not counts:  # abidiff prints nothing at all when it sees no change
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout
        return "none", 0, ""
    removed, changed, filtered, added = (sum(c[i] for c in counts) for i in range(4))
    if proc.returncode & 8:
        assert removed, proc.stdout
        return "breaking", proc.returncode, proc.stdout
    if proc.returncode & 4:
        if changed or removed:
            return "breaking", proc.returncode, proc.stdout
        assert added, proc.stdout
        return "compatible", proc.returncode, proc.stdout
    return ("compatible" if filtered else "none"), proc.returncode, proc.stdout


def ours(old, new, arch="x86_64"):
    report = run_abi_check(str(new), baseline=str(old), runtime_dirs=[h.stub_dir(arch)])
    return h.VERDICT[report.baseline["c_abi"]], report


def _toolchain(arch: str) -> None:
    if not h.available(h.cc(arch)):
        pytest.skip(f"needs {h.cc(arch)}")


PARAMS = [
    pytest.param(c.name, arch, id=f"{arch}:{c.cls}:{c.name}") for c in CASES for arch in c.arches
]


@pytest.mark.skipif(not h.available("abidiff"), reason="needs abigail-tools")
@pytest.mark.parametrize("case, arch", PARAMS)
def test_corpus_case_agrees_with_abidiff(case, arch):
    c = by_name()[case]
    _toolchain(arch)
    old = h.build_plugin(debug=True, arch=arch, **c.old)
    new = h.build_plugin(debug=True, arch=arch, **c.new)
    verdict, report = ours(old, new, arch)
    changes = report.baseline["changes"]
    assert verdict == c.ours, (case, changes)
    # same name and version on both sides: a compatible change warns (no MINOR bump)
    finding = next(f for f in report.findings if f.id == c.check)
    assert (finding.status, finding.severity) == h.STATUS[c.ours], (case, finding)
    theirs, code, text = abidiff(old, new)
    assert theirs == (c.abidiff or verdict), (case, code, text, changes)


def test_corpus_covers_every_class():
    classes = {}
    for c in CASES:
        classes.setdefault(c.cls, []).append(c)
    assert len(CASES) >= 40
    assert all(len(cases) >= 2 for cases in classes.values()), {
        k: len(v) for k, v in classes.items()
    }
    for c in CASES:
        assert c.abidiff is None or (c.abidiff != c.ours and len(c.why) > 40), c.name


def test_docs_carry_the_agreement_table():
    """docs/abi-check.md shows the corpus as it is: every class, case and both verdicts."""
    docs = (h.REPO / "docs" / "abi-check.md").read_text()
    assert agreement_table() in docs


def test_the_issue_case_names_the_parameter():
    """size_t -> uint32_t for infer's n_inputs: the change abidiff saw and PH201 waved through."""
    after = by_name()["param narrowed (size_t -> uint32_t)"].new
    old = h.build_plugin(debug=True)
    new = h.build_plugin(debug=True, version="1.0.1", **after)
    report = run_abi_check(str(new), baseline=str(old), runtime_dirs=[h.stub_dir()])
    assert report.exit_code == 1
    f = next(f for f in report.findings if f.id == "PH204")
    assert f.status == "fail" and f.severity == "error"
    assert "infer(): parameter 3 'n_inputs'" in f.message and "8 to 4 bytes" in f.message
    # 12: a breaking C ABI change; | 1: PH115 also failed (infer no longer matches phot_infer_fn)
    assert report.abidiff_exit_code == 13
    ph115 = next(f for f in report.findings if f.id == "PH115")
    assert ph115.status == "fail" and ph115.message.startswith("infer(): the export is")


def test_without_dwarf_signatures_are_not_compared():
    after = by_name()["param narrowed (size_t -> uint32_t)"].new
    report = run_abi_check(
        str(h.build_plugin(version="1.0.1", **after)),
        baseline=str(h.build_plugin()),
        runtime_dirs=[h.stub_dir()],
    )
    for check_id in ("PH202", "PH204"):
        f = next(f for f in report.findings if f.id == check_id)
        assert (f.status, f.severity, f.not_compared) == ("fail", "warning", True)
        assert f.message.startswith("not compared: no DWARF")
    assert report.baseline["c_abi"] == "not-compared"
    assert report.baseline["c_abi_scope"] == "exports"


def test_export_without_dwarf_on_one_side_is_not_compared(tmp_path):
    """One export's object built without -g: its signature change is not seen, and the verdict
    says so instead of 'unchanged'."""
    (tmp_path / "a.c").write_text(
        '#include <stddef.h>\n__attribute__((visibility("default"))) int f_one(size_t n) '
        "{ return (int)n; }\n"
    )
    sos = []
    for side, param in (("old", "unsigned"), ("new", "unsigned long")):
        (tmp_path / "b.c").write_text(
            f'__attribute__((visibility("default"))) int f_two({param} n) {{ return (int)n; }}\n'
        )
        h.run(["gcc", "-c", "-fPIC", "-g", str(tmp_path / "a.c"), "-o", str(tmp_path / "a.o")])
        h.run(["gcc", "-c", "-fPIC", str(tmp_path / "b.c"), "-o", str(tmp_path / "b.o")])
        so = tmp_path / f"{side}.so"
        h.run(["gcc", "-shared", str(tmp_path / "a.o"), str(tmp_path / "b.o"), "-o", str(so)])
        sos.append(so)
    report = run_abi_check(str(sos[1]), baseline=str(sos[0]))
    f = next(f for f in report.findings if f.id == "PH204")
    assert f.details == ["not compared (no DWARF for it on one side): f_two()"]
    assert f.message == "1 export(s) not compared: f_two()"
    assert (f.status, f.severity, f.not_compared) == ("fail", "warning", True)
    assert report.baseline["c_abi"] == "not-compared"
    assert report.baseline["c_abi_scope"] == "exports+partial-dwarf"
    strict = run_abi_check(str(sos[1]), baseline=str(sos[0]), require_dwarf=True)
    assert strict.exit_code & 16
