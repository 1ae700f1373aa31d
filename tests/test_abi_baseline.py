"""abi-check --baseline: version bump, C ABI (exports + DWARF structs), model signature rules.
Agreement with libabigail's abidiff: test_abi_corpus.py."""

from __future__ import annotations

import json
import shutil

import pytest
from abi_fixtures import helpers as h

from paddlehot_cli.abi.baseline import bump_level, diff_signatures
from paddlehot_cli.abi.runner import run_abi_check
from paddlehot_cli.abi.target import resolve
from paddlehot_cli.core.manifest import parse_manifest

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")

X = {"name": "x", "dtype": "float32", "shape": [-1, 16]}
Y = {"name": "y", "dtype": "float32", "shape": [-1, 4]}
Z = {"name": "z", "dtype": "int64", "shape": [-1]}


def manifest(version="1.0.0", inputs=(X,), outputs=(Y,)):
    data = h.package_manifest(
        "mlp", version, h.model_files(), inputs=list(inputs), outputs=list(outputs)
    )
    return parse_manifest(data)


def compare(old, new, **kw):
    report = run_abi_check(str(new), baseline=str(old), runtime_dirs=[h.stub_dir()], **kw)
    status = {f.id: (f.status, f.severity) for f in report.findings}
    return report, status


def test_bump_levels():
    assert bump_level("1.0.0", "2.0.0") == "major"
    assert bump_level("1.0.0", "1.1.0") == "minor"
    assert bump_level("1.0.0", "1.0.1") == "patch"
    assert bump_level("1.0.0", "1.0.0") == "same"
    assert bump_level("1.2.0", "1.1.9") == "older"


@pytest.mark.parametrize(
    "new_inputs, new_outputs, breaking",
    [
        ((X,), (Y, Z), False),  # output appended
        (({**X, "shape": [-1, -1]},), (Y,), False),  # fixed dim made dynamic
        (({**X, "dtype": "float16"},), (Y,), True),  # dtype changed
        (({**X, "shape": [-1, 16, 1]},), (Y,), True),  # rank changed
        (({**X, "shape": [-1, 32]},), (Y,), True),  # fixed dim changed
        (({**X, "shape": [8, 16]},), (Y,), True),  # dynamic dim made fixed
        (({**X, "name": "features"},), (Y,), True),  # input renamed
        ((X, {"name": "mask", "dtype": "bool", "shape": [-1]}), (Y,), True),  # input added
        ((X,), (Z,), True),  # output removed
        ((X,), (Z, Y), True),  # output moved (hosts may take outputs in order)
        ((X,), ({**Y, "dtype": "float64"},), True),
    ],
)
def test_signature_rules(new_inputs, new_outputs, breaking):
    changes = diff_signatures(manifest(), manifest("1.1.0", new_inputs, new_outputs))
    assert changes
    assert any(c.breaking for c in changes) is breaking


def test_unchanged_signature_has_no_changes():
    assert diff_signatures(manifest(), manifest("1.0.1")) == []


def test_appended_output_with_minor_bump_passes():
    old = h.build_plugin()
    new = h.build_plugin(version="1.1.0", outputs=[Y, Z])
    report, status = compare(old, new)
    assert report.exit_code == 0
    assert status["PH200"][0] == status["PH201"][0] == status["PH203"][0] == "pass"
    assert report.baseline["signature"] == "compatible"
    # no DWARF: the export names match, but what is behind them was not compared
    assert report.baseline["c_abi"] == "not-compared"


def test_changed_dtype_with_minor_bump_fails():
    old = h.build_plugin()
    new = h.build_plugin(version="1.1.0", inputs=[{**X, "dtype": "float16"}])
    report, status = compare(old, new)
    assert report.exit_code == 1
    assert status["PH203"] == ("fail", "error")
    assert {i for i, (s, sev) in status.items() if (s, sev) == ("fail", "error")} == {"PH203"}
    assert "dtype" in next(f for f in report.findings if f.id == "PH203").message


def test_breaking_change_with_major_bump_passes():
    old = h.build_plugin()
    new = h.build_plugin(version="2.0.0", inputs=[{**X, "dtype": "float16"}])
    report, status = compare(old, new)
    assert report.exit_code == 0 and status["PH203"][0] == "pass"


def test_compatible_change_without_minor_bump_warns():
    old = h.build_plugin(debug=True)  # DWARF: the strict policy also requires the C ABI compared
    new = h.build_plugin(debug=True, version="1.0.1", outputs=[Y, Z])
    report, status = compare(old, new)
    assert status["PH203"] == ("fail", "warning")
    assert report.exit_code == 0
    strict, _ = compare(old, new, policy="strict")
    assert strict.exit_code == 1


def test_name_and_version_order_are_checked():
    old = h.build_plugin(version="1.1.0")
    _, status = compare(old, h.build_plugin(version="1.0.0"))
    assert status["PH200"][0] == "fail"
    _, status = compare(h.build_plugin(name="other"), h.build_plugin(version="1.1.0"))
    assert status["PH200"][0] == "fail"


def test_struct_field_inserted_in_the_middle_fails():
    old = h.build_plugin(debug=True)
    new = h.build_plugin(debug=True, version="1.1.0", header="insert")
    report, status = compare(old, new)
    assert status["PH202"] == ("fail", "error")
    assert {i for i, (s, _) in status.items() if s == "fail"} == {"PH202"}
    msg = next(f for f in report.findings if f.id == "PH202").message
    assert "phot_open_options.pool_max" in msg and "moved" in msg
    assert report.baseline["c_abi"] == "breaking"


def test_struct_field_appended_with_minor_bump_passes():
    old = h.build_plugin(debug=True)
    new = h.build_plugin(debug=True, version="1.1.0", header="append")
    report, status = compare(old, new)
    assert status["PH202"][0] == "pass" and report.exit_code == 0
    assert report.baseline["c_abi"] == "compatible"


def test_struct_comparison_without_dwarf_is_never_a_silent_pass():
    """A breaking struct change behind unchanged export names: without DWARF it cannot be seen,
    so the gate warns (exit 0), and with --require-dwarf fails with the not-compared bit (16)."""
    old, new = h.build_plugin(), h.build_plugin(version="1.1.0", header="insert")
    report, status = compare(old, new)
    assert status["PH202"] == status["PH204"] == ("fail", "warning")
    assert report.exit_code == 0 and report.baseline["c_abi"] == "not-compared"
    report, status = compare(old, new, require_dwarf=True)
    assert status["PH202"] == status["PH204"] == ("fail", "error")
    assert report.exit_code == 16 and report.abidiff_exit_code == 16
    assert report.to_json()["summary"]["not_compared"] is True
    report, _ = compare(old, new, policy="strict")  # require_dwarf is a policy key too
    assert report.exit_code == 16
    # another violation as well: both bits
    report, _ = compare(old, h.build_plugin(version="1.0.0", header="insert"), require_dwarf=True)
    assert report.exit_code == 17


def test_removed_export_is_breaking():
    old = h.build_plugin()
    new = h.build_plugin(version="1.1.0", defines=("DROP_LAST_ERROR",))
    report, status = compare(old, new)
    assert status["PH201"] == ("fail", "error")
    assert "last_error" in next(f for f in report.findings if f.id == "PH201").message


def test_packages_without_plugins_follow_the_same_rules(tmp_path):
    def package(version, **kw):
        src = h.build_plugin(version=version, **kw).parent
        dst = tmp_path / version
        shutil.copytree(src, dst)
        (dst / "plugin.so").unlink()
        return dst

    old = package("1.0.0")
    report, status = compare(old, package("1.1.0", outputs=[Y, Z]))
    assert report.exit_code == 0 and status["PH201"][0] == "skip"
    report, status = compare(old, package("1.0.1", inputs=[{**X, "shape": [-1, 8]}]))
    assert status["PH203"] == ("fail", "error") and report.exit_code == 1


def test_baseline_side_loads_like_target():
    s = resolve(str(h.build_plugin(debug=True)))
    assert s.elf is not None and s.elf.has_debug_info and s.plugin is not None
    assert json.loads(json.dumps(s.plugin.raw))["plugin"]["abi_node"] == "PADDLEHOT_1.0"


def test_real_build_plugin_debug_pair_is_compared_through_dwarf(exported):
    """Two plugins from `paddlehot build-plugin --debug` (the real template, real paddle): every
    export's signature and both plugin.h structs are read, and nothing differs."""
    from plugin_fixtures.helpers import build

    from paddlehot_cli.abi.dwarf_types import read_surface
    from paddlehot_cli.core.elf_facts import read_elf

    flags = ("--debug", "--no-embed-model", "--no-verify")
    old = build(exported("demo:mlp"), *flags, name="mlp_dbg")
    new = build(exported("demo:mlp", "pir", "1.1.0"), *flags, name="mlp_dbg")
    report = run_abi_check(str(new), baseline=str(old))
    status = {f.id: f.status for f in report.findings}
    assert status["PH204"] == status["PH202"] == "pass"
    assert report.baseline["c_abi"] == "unchanged"
    assert report.baseline["c_abi_scope"] == "exports+dwarf"
    surface = read_surface(new, {s.name for s in read_elf(new).exports()})
    assert sorted(surface.functions) == sorted(f"phot_mlp_v1_1_0_{fn}" for fn in h.FNS)
    sizes = resolve(str(new)).plugin_meta["struct_sizes"]
    assert {n: surface.records[n].size for n in sizes} == sizes
    infer = surface.functions["phot_mlp_v1_1_0_infer"]
    # size_t n_inputs: spelled as written, compared by encoding and size (not by spelling)
    assert [(t.text, t.canon) for _, t in infer.params][2] == ("size_t", "<unsigned64>")
    # plugin.h's ABI record is in the real template's DWARF, and each export matches its type
    assert surface.record == "phot_abi_record"
    assert surface.enums["phot_abi_growth"].values == (
        ("PHOT_GROWS_phot_open_options", 1),
        ("PHOT_GROWS_phot_tensor", 2),
    )
    assert status["PH115"] == "pass"
    assert "phot_model" not in surface.records  # opaque in plugin.h
