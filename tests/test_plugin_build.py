"""`paddlehot build-plugin`: the built .so (ELF facts, manifest, abi-check), cross builds, and
one-line errors that leave nothing behind. Real paddle, real compiler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from elftools.elf.elffile import ELFFile
from plugin_fixtures.helpers import build, manifest_of, run_build

from paddlehot_cli.core.plugin_loader import defined_exports, needed

FUNCS = ("open", "infer", "close", "manifest", "last_error")


@pytest.fixture(scope="module")
def mlp(exported):
    return exported("demo:mlp")


def test_exports_are_exactly_the_designed_five(mlp):
    so = build(mlp, name="mlp")
    exports = defined_exports(so)
    assert sorted(exports) == sorted((f"phot_mlp_v1_0_0_{f}", "PADDLEHOT_1.0") for f in FUNCS)
    assert "libpaddle_inference_c.so" in needed(so)
    with open(so, "rb") as fh:
        elf = ELFFile(fh)
        dyn = elf.get_section_by_name(".dynamic")
        tags = {t.entry.d_tag for t in dyn.iter_tags()}
        assert "DT_RPATH" not in tags and "DT_RUNPATH" not in tags
        assert "DT_TEXTREL" not in tags
        manifest = elf.get_section_by_name(".paddlehot.manifest")
        assert manifest is not None and manifest["sh_flags"] & 0x2  # SHF_ALLOC: manifest()
        for name in (".paddlehot.model", ".paddlehot.params"):
            sec = elf.get_section_by_name(name)  # in the file, never mapped (open reads it)
            assert sec is not None and not sec["sh_flags"] & 0x2, name
        assert elf.get_section_by_name(".debug_info") is None


def test_manifest_section_is_package_manifest_plus_plugin(mlp):
    so = build(mlp, name="mlp")
    m = manifest_of(so)
    package = json.loads((mlp / "paddlehot.json").read_text())
    plugin = m.pop("plugin")
    assert m == package
    assert plugin["abi_node"] == "PADDLEHOT_1.0" and plugin["abi_version"] == [1, 1]
    assert plugin["symbol_prefix"] == "phot_mlp_v1_0_0_"
    assert plugin["functions"] == list(FUNCS)
    assert plugin["target"] == "x86_64" and plugin["c_api"] == "pdcapi"
    assert plugin["struct_sizes"] == {"phot_tensor": 104, "phot_open_options": 32}
    assert set(plugin["embedded_files"]) == {"model.json", "model.pdiparams"}
    assert plugin["embedded_files"]["model.json"]["sha256"] == package["files"]["model.json"]["sha256"]


def test_abi_check_passes(mlp):
    from paddlehot_cli.abi.runner import run_abi_check

    so = build(mlp, name="mlp")
    report = run_abi_check(str(so))
    bad = [f for f in report.findings if f.status not in ("pass", "skip", "skipped")]
    assert report.exit_code == 0, bad


def test_debug_keeps_dwarf_and_no_embed_is_small(mlp):
    so = build(mlp, "--debug", "--no-embed-model", "--no-verify", name="mlp_dbg")
    with open(so, "rb") as fh:
        elf = ELFFile(fh)
        assert elf.get_section_by_name(".debug_info") is not None
        assert elf.get_section_by_name(".paddlehot.model") is None
    assert manifest_of(so)["plugin"]["embedded_files"] == {}


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                    reason="aarch64-linux-gnu-gcc not installed (apt-get install gcc-aarch64-linux-gnu)")
def test_aarch64_cross_build_against_stub(mlp, tmp_path):
    out = tmp_path / "mlp-arm.so"
    proc = run_build(mlp, "-o", out, "--target", "aarch64")
    assert proc.returncode == 0, proc.stderr
    assert "stub" in proc.stderr + proc.stdout
    with open(out, "rb") as fh:
        assert ELFFile(fh)["e_machine"] == "EM_AARCH64"
    plugin = manifest_of(out)["plugin"]
    assert plugin["target"] == "aarch64" and plugin["c_api"] == "stub"
    assert sorted(n for n, _ in defined_exports(out)) == sorted(f"phot_mlp_v1_0_0_{f}" for f in FUNCS)


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.suffix == ".so" or ".tmp" in p.name)


def test_bad_inputs_one_line_no_half_built_so(mlp, tmp_path):
    out = tmp_path / "x.so"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_build(empty, "-o", out), 2, "paddlehot.json")
    broken = tmp_path / "broken"
    shutil.copytree(mlp, broken)
    with open(broken / "model.pdiparams", "r+b") as fh:
        fh.seek(10)
        fh.write(b"\xff\xfe")
    assert_one_line_error(run_build(broken, "-o", out), 2, "sha256")
    assert_one_line_error(run_build(mlp, "-o", out, "--cc", "no-such-cc-xyz"), 2, "no-such-cc-xyz")
    assert_one_line_error(run_build(mlp, "-o", out, "--target", "mips"), 2, "mips")
    assert_one_line_error(run_build(mlp, "-o", tmp_path / "x.txt"), 2, ".so")
    assert_one_line_error(
        run_build(mlp, "-o", out, "--paddle-inference-dir", tmp_path), 2, "Paddle Inference C SDK")
    assert _leftovers(tmp_path) == []


def test_output_is_required(mlp):
    proc = run_build(mlp)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
