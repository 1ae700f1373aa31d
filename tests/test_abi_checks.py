"""abi-check plugin checks on real gcc-built shared objects: each variant breaks one rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from abi_fixtures import helpers as h

from paddlehot_cli.abi import runtime as abi_runtime
from paddlehot_cli.abi.context import ABI_NODE
from paddlehot_cli.abi.findings import CATALOG
from paddlehot_cli.abi.policy import available_policies, load_policy
from paddlehot_cli.abi.runner import run_abi_check
from paddlehot_cli.errors import UserError

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")


def check(target, *, runtime=None, **kw):
    dirs = [h.stub_dir()] if runtime is None else runtime
    return run_abi_check(str(target), runtime_dirs=dirs, **kw)


def failing(report) -> set[str]:
    return {f.id for f in report.findings if f.status == "fail"}


def test_good_plugin_passes_every_check():
    report = check(h.good_plugin(debug=True), glibc="2.17")  # DWARF: PH115 compares too
    assert failing(report) == set(), [f.message for f in report.findings if not f.ok]
    assert report.exit_code == 0
    ids = [f.id for f in report.findings]
    assert ids == [i for i in CATALOG if i.startswith("PH1") and not i.startswith("PH14")]
    # PH123 needs the runtime's Paddle version, which a plain library dir does not tell; PH124
    # looks into pdcapi, and the stub C API here is not pdcapi.
    assert all(f.status == "pass" for f in report.findings if f.id not in ("PH123", "PH124"))


VARIANTS = {
    "extra exported helper": (
        {"defines": ("EXTRA_HELPER",), "extra_globals": ("phot_leaked_helper",)},
        {},
        "PH111",
        "phot_leaked_helper",
    ),
    "C++ export": ({"cxx": True, "extra_globals": ("_Z15phot_cxx_helperi",)}, {}, "PH111", "C++"),
    "weak export": ({"defines": ("WEAK_EXPORT",)}, {}, "PH112", "phot_mlp_v1_0_0_close"),
    "no version script": ({"version_script": False}, {}, "PH114", "unversioned"),
    "missing export": ({"defines": ("DROP_LAST_ERROR",)}, {}, "PH110", "last_error"),
    "missing import": (
        {"defines": ("MISSING_IMPORT",), "zdefs": False},
        {},
        "PH120",
        "phot_not_provided_anywhere",
    ),
    "newer glibc": (
        {"defines": ("NEWER_GLIBC",)},
        {"glibc": "2.17"},
        "PH122",
        "dlerror@GLIBC_2.34",
    ),
    "libstdc++ needed": (
        {"extra_ldflags": ("-Wl,--no-as-needed", "-lstdc++")},
        {},
        "PH121",
        "libstdc++",
    ),
    "lazy binding": (
        {"ldflags": ("-Wl,-z,relro", "-Wl,-z,lazy", "-Wl,-z,noexecstack")},
        {},
        "PH130",
        "BIND_NOW",
    ),
    "executable stack": (
        {"ldflags": ("-Wl,-z,relro,-z,now", "-Wl,-z,execstack")},
        {},
        "PH131",
        "executable",
    ),
    "text relocations": (
        {"cflags": ("-fno-pic", "-mcmodel=large"), "extra_ldflags": ("-Wl,-z,notext",)},
        {},
        "PH132",
        "TEXTREL",
    ),
    "absolute rpath": (
        {"extra_ldflags": ("-Wl,-rpath,/opt/paddle/lib",)},
        {},
        "PH133",
        "/opt/paddle/lib",
    ),
    "no manifest section": ({"manifest": False}, {}, "PH101", ".paddlehot.manifest"),
    "embedded params corrupted": ({"corrupt_params": True}, {}, "PH102", "model.pdiparams"),
    "protected export": ({"defines": ("PROTECTED_EXPORT",)}, {}, "PH113", "STV_PROTECTED"),
    "wrong symbol prefix in manifest": (
        {"plugin_patch": {"symbol_prefix": "phot_mlp_"}},
        {},
        "PH103",
        "symbol_prefix",
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_broken_rule_is_caught_by_its_check_only(variant):
    build, args, check_id, needle = VARIANTS[variant]
    report = check(h.build_plugin(**build), **args)
    assert failing(report) == {check_id}, [(f.id, f.message) for f in report.findings if not f.ok]
    finding = next(f for f in report.findings if f.id == check_id)
    assert needle in finding.message
    assert finding.hint and finding.severity == "error"
    assert report.exit_code == 1


def test_cxx_policy_allows_libstdcxx():
    so = h.build_plugin(extra_ldflags=("-Wl,--no-as-needed", "-lstdc++"))
    assert failing(check(so, policy="cxx")) == set()


def test_aarch64_plugin_uses_manifest_target_and_cross_runtime():
    if not h.available("aarch64-linux-gnu-gcc"):
        pytest.skip("needs aarch64-linux-gnu-gcc")
    so = h.build_plugin(arch="aarch64")
    report = check(so, runtime=[h.stub_dir("aarch64")])
    assert report.arch == "aarch64"
    assert failing(report) == set(), [(f.id, f.message) for f in report.findings if not f.ok]
    wrong = check(so, runtime=[h.stub_dir("aarch64")], arch="x86_64")
    assert failing(wrong) == {"PH100"}
    assert "aarch64" in next(f for f in wrong.findings if f.id == "PH100").message


def test_missing_c_api_library_falls_back_to_headers(monkeypatch, tmp_path):
    so = h.good_plugin()
    include = tmp_path / "native" / "pdcapi" / "include"
    include.mkdir(parents=True)
    (include / "pd_config.h").write_text(
        "PD_Config* PD_ConfigCreate(void);\nvoid PD_ConfigDestroy(PD_Config* c);\n"
    )
    monkeypatch.setattr(abi_runtime, "native_dir", lambda: tmp_path / "native")
    monkeypatch.setattr(abi_runtime, "cached_pdcapi_dir", lambda: None)
    report = check(so, runtime=[])
    assert failing(report) == set()
    assert "native/pdcapi/include" in next(f for f in report.findings if f.id == "PH121").message
    assert report.runtime["c_api_from_headers"] is True


def test_missing_c_api_library_without_headers_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(abi_runtime, "native_dir", lambda: tmp_path / "nothing")
    monkeypatch.setattr(abi_runtime, "cached_pdcapi_dir", lambda: None)
    report = check(h.good_plugin(), runtime=[])
    assert failing(report) == {"PH120", "PH121"}
    ph121 = next(f for f in report.findings if f.id == "PH121")
    assert "libpaddle_inference_c.so not found" in ph121.message
    assert "--runtime DIR" in ph121.hint
    assert "PD_ConfigCreate" in next(f for f in report.findings if f.id == "PH120").message


def test_runtime_library_lacking_a_symbol_names_it():
    report = check(h.good_plugin(), runtime=[h.stub_dir(source="pd_stub_partial.c")])
    assert failing(report) == {"PH120"}
    assert "PD_ConfigDestroy" in next(f for f in report.findings if f.id == "PH120").message


def test_package_dir_and_repository_spec(tmp_path):
    so = h.good_plugin()
    repo = tmp_path / "repo"
    for version in ("1.0.0", "0.9.0"):
        shutil.copytree(so.parent, repo / "mlp" / version)
    report = check(f"{repo}:mlp")
    assert report.kind == "package+plugin"
    assert report.subject.package_dir == repo / "mlp" / "1.0.0"
    assert failing(report) == set()
    assert {"PH140", "PH141"} <= {f.id for f in report.findings}
    # 0.9.0 holds a copy of the 1.0.0 build: its plugin.so does not match paddlehot.json
    manifest = json.loads((repo / "mlp" / "0.9.0" / "paddlehot.json").read_text())
    manifest["version"] = "0.9.0"
    (repo / "mlp" / "0.9.0" / "paddlehot.json").write_text(json.dumps(manifest))
    report = check(f"{repo}:mlp@0.9.0")
    assert failing(report) == {"PH141"}
    # a package whose file was modified after publishing
    (repo / "mlp" / "1.0.0" / "model.json").write_bytes(b"{}")
    assert failing(check(repo / "mlp" / "1.0.0")) == {"PH140"}


def test_package_without_plugin_runs_package_checks_only(tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(h.good_plugin().parent, pkg)
    (pkg / "plugin.so").unlink()
    report = check(pkg)
    assert report.kind == "package"
    assert [f.id for f in report.findings] == ["PH140", "PH141", "PH142"]
    assert report.exit_code == 0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("/nonexistent/plugin.so", "no such file or directory"),
        ("{tmp}", "is not a model package"),
        ("{tmp}/notelf.so", "not an ELF file"),
        ("{tmp}:nomodel", "has no published version of 'nomodel'"),
    ],
)
def test_bad_targets_are_one_line_user_errors(tmp_path, spec, message):
    (tmp_path / "notelf.so").write_text("hello")
    with pytest.raises(UserError) as info:
        check(spec.format(tmp=tmp_path))
    assert message in info.value.message and "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_bad_options_are_user_errors():
    so = h.good_plugin()
    for kw in ({"arch": "sparc"}, {"glibc": "two"}, {"policy": "nosuchpolicy"}):
        with pytest.raises(UserError):
            check(so, **kw)
    with pytest.raises(UserError, match="not a directory"):
        check(so, runtime=[Path("/nonexistent")])


def test_policies_are_data_and_user_policies_merge(tmp_path):
    assert {"default", "strict", "cxx"} <= set(available_policies())
    for name in available_policies():
        load_policy(name)
    user = tmp_path / "p.json"
    user.write_text(json.dumps({"glibc_floor": {"x86_64": "2.1"}}))
    pol = load_policy(str(user))
    assert pol.glibc_floor == {"x86_64": "2.1", "aarch64": "2.28"}
    report = check(h.good_plugin(), policy=str(user))
    assert failing(report) == {"PH122"}  # snprintf@GLIBC_2.2.5 is above 2.1
    for bad in ({"glibc_floor": "2.28"}, {"allow_libstdcxx": "yes"}, {"nope": 1}, [1]):
        user.write_text(json.dumps(bad))
        with pytest.raises(UserError):
            load_policy(str(user))


def test_policy_can_switch_hardening_off(tmp_path):
    user = tmp_path / "p.json"
    user.write_text(json.dumps({"hardening": {"rpath_origin_only": False}}))
    so = h.build_plugin(extra_ldflags=("-Wl,-rpath,/opt/paddle/lib",))
    report = check(so, policy=str(user))
    assert failing(report) == set()
    assert next(f for f in report.findings if f.id == "PH133").status == "skip"


def test_origin_rpath_is_fine():
    so = h.build_plugin(extra_ldflags=("-Wl,-rpath,$ORIGIN/../lib",))
    assert failing(check(so)) == set()


def test_abi_node_matches_plugin_h():
    assert f'#define PHOT_ABI_NODE "{ABI_NODE}"' in h.PLUGIN_H.read_text()


def test_host_paddle_version_is_what_importlib_metadata_says():
    """PH123's host Paddle comes from the dist-info directory name (importlib.metadata's import
    is too slow for abi-check's start-up); both must agree."""
    from importlib.metadata import PackageNotFoundError, version

    from paddlehot_cli.abi.runtime import _host_paddle

    try:
        want = version("paddlepaddle")
    except PackageNotFoundError:
        want = None
    assert _host_paddle() == want


def test_pdcapi_imports_are_checked_against_the_runtime_libpaddle(tmp_path):
    """abi-check --runtime knows the native runtime: paddlehot's pdcapi is C++ over
    paddlepaddle's libpaddle.so, so every Paddle C++ symbol it uses must be in the runtime's."""
    import os
    import shutil
    import subprocess

    from paddlehot_cli.core.paddle_wheel import wheel_libpaddle
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    plugin = h.good_plugin()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    shutil.copy(build_pdcapi(), runtime / "libpaddle_inference_c.so")

    def ph124(report):
        return next(f for f in report.findings if f.id == "PH124")

    finding = ph124(check(plugin, runtime=[runtime]))
    assert finding.status == "fail" and "no libpaddle.so" in finding.message
    os.symlink(wheel_libpaddle(), runtime / "libpaddle.so")
    finding = ph124(check(plugin, runtime=[runtime]))
    assert finding.status == "pass", finding.message
    (runtime / "libpaddle.so").unlink()  # another "Paddle" that lacks what pdcapi uses
    src = tmp_path / "empty.c"
    src.write_text("int paddle_is_elsewhere(void) { return 0; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(runtime / "libpaddle.so"), str(src)],
                   check=True)
    finding = ph124(check(plugin, runtime=[runtime]))
    assert finding.status == "fail" and "lacks" in finding.message
    assert "paddle_infer::" in finding.message or "paddle::" in finding.message, finding.message
