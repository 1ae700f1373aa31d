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
        "signature",
        "changes",
    }
    for f in data["findings"]:
        assert set(f) == {"id", "title", "status", "ok", "severity", "message", "hint", "details"}
        assert f["id"] in CATALOG and f["status"] in ("pass", "fail", "skip")
        assert f["severity"] in ("error", "warning", "info")
    assert [f["id"] for f in data["findings"] if not f["ok"]] == ["PH200"]


def test_junit_one_testcase_per_check():
    res = invoke(
        h.build_plugin(defines=("WEAK_EXPORT",)), "--runtime", h.stub_dir(), "--format", "junit"
    )
    assert res.exit_code == 1
    root = ET.fromstring(res.stdout)
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 16 and len({c.get("name") for c in cases}) == 16
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
    ],
)
def test_usage_and_input_errors_exit_2_with_one_line(tmp_path, args):
    notelf = tmp_path / "x.so"
    notelf.write_bytes(b"\x7fELF" + b"\0" * 10)
    argv = [a.format(good=h.good_plugin(), notelf=notelf, dir=tmp_path) for a in args]
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
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['paddlehot', 'abi-check', {str(h.good_plugin())!r}, '--runtime', "
        f"{str(h.stub_dir())!r}, '-f', 'json', '-o', '/dev/null']\n"
        "from abi_fixtures import cli_app\n"
        "try:\n    cli_app.app()\nexcept SystemExit:\n    pass\n"
        "assert 'paddle' not in sys.modules, 'paddle was imported'\n"
        "assert 'rich' not in sys.modules, 'rich imported outside the text path'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=h.REPO / "tests",
    )
    assert proc.returncode == 0, proc.stderr
