"""abi-check through its CLI: exit codes, text/JSON/JUnit output, paddle unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from abi_fixtures import cli_app
from abi_fixtures import helpers as h
from typer.testing import CliRunner

from paddlehot_cli.abi.findings import CATALOG

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")
runner = (
    CliRunner(mix_stderr=False)
    if "mix_stderr" in CliRunner.__init__.__code__.co_varnames
    else CliRunner()
)
MAIN = h.REPO / "paddlehot_cli" / "cli" / "main.py"


def cli_argv() -> list[str]:
    """`python -m paddlehot_cli abi-check` once cli/main.py registers it, else the stand-in app."""
    if "abi_check" in MAIN.read_text():
        return [sys.executable, "-m", "paddlehot_cli", "abi-check"]
    return [sys.executable, str(Path(cli_app.__file__)), "abi-check"]


def invoke(*args: str):
    return runner.invoke(cli_app.app, ["abi-check", *map(str, args)])


def test_text_output_and_exit_0():
    res = invoke(h.good_plugin(), "--runtime", h.stub_dir())
    assert res.exit_code == 0, res.output
    for check_id in ("PH100", "PH114", "PH133"):
        assert check_id in res.stdout
    assert "16 passed, 0 failed" in res.stdout


def test_violation_exit_1_with_hint():
    so = h.build_plugin(extra_ldflags=("-Wl,-rpath,/opt/paddle/lib",))
    res = invoke(so, "--runtime", h.stub_dir())
    assert res.exit_code == 1
    assert "PH133" in res.stdout and "FAIL" in res.stdout and "fix:" in res.stdout


def test_json_schema(tmp_path):
    out = tmp_path / "r.json"
    res = invoke(
        h.good_plugin(),
        "--runtime",
        h.stub_dir(),
        "--format",
        "json",
        "-o",
        out,
        "--baseline",
        h.good_plugin(),
    )
    assert res.exit_code == 1  # same version as the baseline: PH200 fails
    data = json.loads(out.read_text())
    assert data["schema"] == "paddlehot.abi-check/1"
    assert set(data) == {
        "schema",
        "tool",
        "target",
        "signed",
        "arch",
        "policy",
        "glibc_floor",
        "runtime",
        "baseline",
        "summary",
        "ok",
        "findings",
    }
    assert data["target"]["kind"] == "plugin" and data["target"]["name"] == "mlp"
    assert data["summary"]["exit_code"] == 1 and data["ok"] is False
    assert set(data["baseline"]) == {
        "spec",
        "name",
        "version",
        "bump",
        "c_abi",
        "c_abi_scope",
        "signature",
        "suppressed",
        "changes",
    }
    for f in data["findings"]:
        assert set(f) == {
            "id",
            "title",
            "status",
            "ok",
            "severity",
            "message",
            "hint",
            "details",
            "not_compared",
        }
        assert f["id"] in CATALOG and f["status"] in ("pass", "fail", "skip")
        assert f["severity"] in ("error", "warning", "info")
    assert [f["id"] for f in data["findings"] if not f["ok"]] == ["PH200", "PH202", "PH204"]
    # no DWARF: the C ABI was not compared, a warning (not a silent pass), not the exit bit
    blind = [f["id"] for f in data["findings"] if f["not_compared"]]
    assert blind == ["PH202", "PH204"] and data["summary"]["not_compared"] is False


def test_junit_one_testcase_per_check():
    res = invoke(
        h.build_plugin(defines=("WEAK_EXPORT",)), "--runtime", h.stub_dir(), "--format", "junit"
    )
    assert res.exit_code == 1
    root = ET.fromstring(res.stdout)
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 19 and len({c.get("name") for c in cases}) == 19
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0].startswith("PH112")
    assert root.get("failures") == "1"


@pytest.mark.parametrize(
    "args",
    [
        ["/nonexistent.so"],
        ["{good}", "--format", "yaml"],
        ["{good}", "--arch", "mips"],
        ["{good}", "--policy", "/nonexistent.json"],
        ["{notelf}"],
        ["{dir}"],
        ["{good}", "--exit-code", "abigail"],
        ["{good}", "--suppressions", "/nonexistent.json"],
        ["{good}", "--suppressions", "{nosupreason}"],
        ["{good}", "--suppressions", "{supextra}"],
        ["{good}", "--policy", "{badrequire}"],
    ],
)
def test_usage_and_input_errors_exit_2_with_one_line(tmp_path, args):
    notelf = tmp_path / "x.so"
    notelf.write_bytes(b"\x7fELF" + b"\0" * 10)
    nosupreason = tmp_path / "s1.json"
    nosupreason.write_text('{"suppressions": [{"symbol": "infer"}]}')
    supextra = tmp_path / "s2.json"
    supextra.write_text('{"suppressions": [], "glibc_floor": {}}')
    badrequire = tmp_path / "p.json"
    badrequire.write_text('{"require_dwarf": "yes"}')
    files = {
        "notelf": notelf,
        "dir": tmp_path,
        "nosupreason": nosupreason,
        "supextra": supextra,
        "badrequire": badrequire,
    }
    argv = [a.format(good=h.good_plugin(), **files) for a in args]
    res = invoke(*argv)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in res.output


def test_runs_with_paddle_unimportable(tmp_path):
    env = h.env_without_paddle(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", "import paddle"], check=False, env=env, capture_output=True
    )
    assert probe.returncode != 0
    cmd = [*cli_argv(), str(h.good_plugin()), "--runtime", str(h.stub_dir()), "-f", "json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, cwd=h.REPO)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert "paddle" not in proc.stderr
    assert elapsed < 10  # generous: a loaded CI box; the real figure is in notes/abi.md


def test_paddle_is_never_imported():
    """Nor numpy, crypto or the server: the abi-check path, with a DWARF baseline comparison,
    imports what it reads ELF and DWARF with, and nothing else heavy (start-up is its cost)."""
    new, old = h.build_plugin(debug=True, version="1.0.1"), h.build_plugin(debug=True)
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['paddlehot', 'abi-check', {str(new)!r}, '--baseline', {str(old)!r}, "
        f"'--runtime', {str(h.stub_dir())!r}, '-f', 'json', '-o', '/dev/null']\n"
        "from abi_fixtures import cli_app\n"
        "try:\n    cli_app.app()\nexcept SystemExit:\n    pass\n"
        "assert 'paddle' not in sys.modules, 'paddle was imported'\n"
        "assert 'rich' not in sys.modules, 'rich imported outside the text path'\n"
        "heavy = ('numpy', 'cryptography', 'paddlehot_cli.serve', 'starlette', 'grpc')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy))\n"
        "assert not bad, bad\n"
        "assert 'elftools.dwarf.dwarfinfo' in sys.modules  # the baseline was compared\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=h.REPO / "tests",
    )
    assert proc.returncode == 0, proc.stderr


NARROWED = ("N_INPUTS_T=uint32_t",)


@pytest.mark.parametrize(
    "new_kw, code",
    [
        ({"version": "1.0.1"}, 0),  # rebuilt, nothing changed
        ({"version": "1.1.0", "header": "append"}, 4),  # compatible C ABI change
        ({"version": "1.0.1", "header": "insert"}, 12),  # breaking: 4 | 8
        ({"version": "2.0.0", "header": "insert"}, 12),  # abidiff's bits know no SemVer
        ({"version": "2.0.0", "defines": NARROWED}, 13),  # | 1: PH115 (infer vs phot_infer_fn)
        ({"version": "1.0.0", "defines": ("EXTRA_INFER_PARAM",)}, 13),  # | 1: PH200 failed
    ],
)
def test_exit_code_follows_abidiff_bits(new_kw, code):
    old = h.build_plugin(debug=True)
    new = h.build_plugin(debug=True, **new_kw)
    res = invoke(new, "-b", old, "--runtime", h.stub_dir(), "--exit-code", "abidiff")
    assert res.exit_code == code, res.output


@pytest.mark.parametrize("exit_code", ["paddlehot", "abidiff"])
def test_require_dwarf_fails_a_blind_gate_with_bit_16(exit_code):
    """The issue's case: a breaking signature change without DWARF. By default a warning says
    the C ABI was not compared; --require-dwarf makes it exit 16 (nothing else failed)."""
    old = h.build_plugin()
    new = h.build_plugin(version="1.0.1", defines=NARROWED)
    base = [new, "-b", old, "--runtime", h.stub_dir(), "--exit-code", exit_code]
    res = invoke(*base)
    assert res.exit_code == 0, res.output
    assert "not compared: no DWARF" in res.stdout
    res = invoke(*base, "--require-dwarf")
    assert res.exit_code == 16, res.output
    assert "not compared: no DWARF" in res.stdout and "Traceback" not in res.output
    with_dwarf = [h.build_plugin(debug=True, version="1.0.1", defines=NARROWED), "-b"]
    res = invoke(
        *with_dwarf, h.build_plugin(debug=True), "--runtime", h.stub_dir(), "--require-dwarf"
    )
    assert res.exit_code == 1, res.output  # compared: the break itself fails, no bit 16


def test_suppressions_file_accepts_a_known_change(tmp_path):
    old = h.build_plugin(debug=True)
    new = h.build_plugin(debug=True, version="1.0.1", defines=NARROWED)
    base = ["-b", old, "--runtime", h.stub_dir(), "-f", "json"]
    assert invoke(new, *base).exit_code == 1
    sup = tmp_path / "accepted.json"
    sup.write_text(
        json.dumps(
            {
                "suppressions": [
                    {"symbol": "inf*", "reason": "every host passes n_inputs < 2**32 (review #42)"}
                ]
            }
        )
    )
    res = invoke(new, *base, "--suppressions", sup)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    ph204 = next(f for f in report["findings"] if f["id"] == "PH204")
    assert ph204["status"] == "pass" and "1 suppressed" in ph204["message"]
    assert report["baseline"]["c_abi"] == "unchanged"
    assert "review #42" in report["baseline"]["suppressed"][0]


def test_policy_suppresses_by_type_name(tmp_path):
    old = h.build_plugin(debug=True)
    new = h.build_plugin(debug=True, version="1.0.1", header="insert")
    pol = tmp_path / "pol.json"
    pol.write_text(
        json.dumps(
            {
                "suppressions": [
                    {"type": "phot_open_options", "reason": "only our own host calls open"}
                ]
            }
        )
    )
    base = ["-b", old, "--runtime", h.stub_dir()]
    assert invoke(new, *base).exit_code == 1
    res = invoke(new, *base, "--policy", pol)
    assert res.exit_code == 0, res.output
    res = invoke(new, *base, "--policy", pol, "--exit-code", "abidiff")
    assert res.exit_code == 0, res.output  # suppressed changes are no change at all
