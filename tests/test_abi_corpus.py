"""The mutation corpus: each case is one small, real change to the plugin C ABI, compiled with
gcc -g (tests/abi_fixtures/plugin.c + plugin.h variants). For each, libabigail's abidiff and
`abi-check --baseline` must reach the same verdict (breaking / compatible / none), except where
the table below names the case and why we legitimately differ."""

from __future__ import annotations

import re
import subprocess

import pytest
from abi_fixtures import helpers as h

from paddlehot_cli.abi.runner import run_abi_check

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")

FNS_RENAMED = ("open", "infer", "close", "manifest_json", "last_error")

# case: (baseline build, changed build, our verdict, the check id that reports it)
CORPUS: dict[str, tuple[dict, dict, str, str]] = {
    "rebuild, other params": ({}, {"params_bytes": 4097}, "none", "PH204"),
    "param narrowed (size_t -> uint32_t)": (
        {},
        {"defines": ("N_INPUTS_T=uint32_t",)},
        "breaking",
        "PH204",
    ),
    "param widened (uint32_t -> size_t)": (
        {"defines": ("N_INPUTS_T=uint32_t",)},
        {},
        "breaking",
        "PH204",
    ),
    "param signedness (size_t -> ssize_t)": (
        {},
        {"defines": ("N_INPUTS_T=ssize_t",)},
        "breaking",
        "PH204",
    ),
    "param added": ({}, {"defines": ("EXTRA_INFER_PARAM",)}, "breaking", "PH204"),
    "param removed": ({"defines": ("EXTRA_INFER_PARAM",)}, {}, "breaking", "PH204"),
    "pointee made const": (
        {},
        {"defines": ("CLOSE_ARG_CONST=const",)},
        "compatible",
        "PH204",
    ),
    "return type changed": ({}, {"defines": ("CLOSE_RET_T=int64_t",)}, "breaking", "PH204"),
    "struct field inserted": ({}, {"header": "insert"}, "breaking", "PH202"),
    "struct field appended": ({}, {"header": "append"}, "compatible", "PH202"),
    "struct field retyped": ({}, {"header": "retype"}, "breaking", "PH202"),
    "struct field removed": ({}, {"header": "remove"}, "breaking", "PH202"),
    "enum value changed": ({"header": "enum"}, {"header": "enum_changed"}, "breaking", "PH202"),
    "enum value appended": ({"header": "enum"}, {"header": "enum_appended"}, "compatible", "PH202"),
    "typedef retargeted (int32_t -> int64_t)": ({}, {"header": "dtype64"}, "breaking", "PH202"),
    "typedef retargeted (int32_t -> uint32_t)": (
        {},
        {"header": "dtype_unsigned"},
        "breaking",
        "PH202",
    ),
    "private struct grew (opaque phot_model)": (
        {},
        {"defines": ("PRIVATE_GROWN",)},
        "none",
        "PH202",
    ),
    "export removed": ({}, {"defines": ("DROP_LAST_ERROR",)}, "breaking", "PH201"),
    "export added": (
        {},
        {"defines": ("EXTRA_HELPER",), "extra_globals": ("phot_leaked_helper",)},
        "compatible",
        "PH201",
    ),
    "export renamed": (
        {},
        {"defines": ("MANIFEST_FN=manifest_json",), "fns": FNS_RENAMED},
        "breaking",
        "PH201",
    ),
    "symbol version node changed": ({}, {"node": "PADDLEHOT_2.0"}, "breaking", "PH201"),
}

# Where abidiff and abi-check legitimately differ: case -> (abidiff's verdict, why).
DIFFERENCES = {
    "struct field appended": (
        "breaking",
        (
            "abidiff sees phot_open_options grow; plugin.h's rule is that structs starting with "
            "struct_size grow at the end, and the plugin reads only the fields that fit in the "
            "caller's struct_size and walks caller arrays by it, so old hosts keep working"
        ),
    ),
    "private struct grew (opaque phot_model)": (
        "breaking",
        (
            "abidiff follows phot_model* into the plugin's own struct; plugin.h declares it "
            "opaque (hosts only hold the pointer), and a struct defined in a .c file is no "
            "host's ABI"
        ),
    ),
}

SUMMARY = re.compile(
    r"Functions changes summary: (\d+) Removed, (\d+) Changed(?: \((\d+) filtered out\))?, "
    r"(\d+) Added"
)


def abidiff(old, new) -> tuple[str, int, str]:
    """abidiff's verdict, read from its exit bits and its report: bit 8 (incompatible: a symbol
    removed) is breaking; bit 4 with a changed function (a parameter, return or reachable type
    changed under a caller compiled against the old header) is breaking, with only added
    functions compatible; a change it filtered out as harmless (e.g. an enumerator added) is
    compatible; nothing else is none."""
    proc = subprocess.run(
        ["abidiff", str(old), str(new)], check=False, capture_output=True, text=True
    )
    assert proc.returncode & 3 == 0, proc.stderr  # 1 = abidiff's error, 2 = usage error
    m = SUMMARY.search(proc.stdout)
    if m is None:  # abidiff prints nothing at all when it sees no change
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout
        return "none", 0, ""
    removed, changed, filtered, added = (int(x or 0) for x in m.groups())
    if proc.returncode & 8:
        assert removed, proc.stdout
        return "breaking", proc.returncode, proc.stdout
    if proc.returncode & 4:
        if changed or removed:
            return "breaking", proc.returncode, proc.stdout
        assert added, proc.stdout
        return "compatible", proc.returncode, proc.stdout
    return ("compatible" if filtered else "none"), proc.returncode, proc.stdout


def ours(old, new):
    report = run_abi_check(str(new), baseline=str(old), runtime_dirs=[h.stub_dir()])
    return h.VERDICT[report.baseline["c_abi"]], report


@pytest.mark.skipif(not h.available("abidiff"), reason="needs abigail-tools")
@pytest.mark.parametrize("case", list(CORPUS))
def test_corpus_case_agrees_with_abidiff(case):
    before, after, expected, check_id = CORPUS[case]
    old = h.build_plugin(debug=True, **before)
    new = h.build_plugin(debug=True, **after)
    verdict, report = ours(old, new)
    changes = report.baseline["changes"]
    assert verdict == expected, (case, changes)
    # same name and version on both sides: a compatible change warns (no MINOR bump)
    finding = next(f for f in report.findings if f.id == check_id)
    assert (finding.status, finding.severity) == h.STATUS[expected], (case, finding)
    theirs, code, text = abidiff(old, new)
    if case in DIFFERENCES:
        assert theirs == DIFFERENCES[case][0], (case, code, text)
        assert theirs != verdict
    else:
        assert theirs == verdict, (case, code, text, changes)


def test_the_issue_case_names_the_parameter():
    """size_t -> uint32_t for infer's n_inputs: the change abidiff saw and PH201 waved through."""
    _, after, _, _ = CORPUS["param narrowed (size_t -> uint32_t)"]
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
    _, after, _, _ = CORPUS["param narrowed (size_t -> uint32_t)"]
    report = run_abi_check(
        str(h.build_plugin(version="1.0.1", **after)),
        baseline=str(h.build_plugin()),
        runtime_dirs=[h.stub_dir()],
    )
    for check_id in ("PH202", "PH204"):
        f = next(f for f in report.findings if f.id == check_id)
        assert f.status == "skip" and f.message.startswith("not compared: no DWARF")
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
    assert "1 not compared" in f.message
    assert report.baseline["c_abi"] == "not-compared"
    assert report.baseline["c_abi_scope"] == "exports+partial-dwarf"
