from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import cli

from paddlehot_cli import __version__


def test_help_does_not_import_paddle():
    code = (
        "import sys\n"
        "from paddlehot_cli.cli.main import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('PADDLE' if 'paddle' in sys.modules else 'CLEAN')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip().endswith("CLEAN"), proc.stdout + proc.stderr


def test_help_lists_verbs_and_is_quick():
    start = time.perf_counter()
    proc = cli("--help")
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0
    for verb in ("export", "demo"):
        assert verb in proc.stdout
    assert elapsed < 5  # a loose bound: the 0.5 s figure is measured by hand, not in a test


def test_version_flag():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"paddlehot {__version__}"


def test_unknown_verb_is_usage_error():
    proc = cli("frobnicate")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_built_package_carries_native_sources_and_templates(tmp_path):
    # build-plugin and pdcapi must work from a regular (non-editable) install too: the build
    # step a wheel runs copies native/ and templates/ into paddlehot_cli/_data/
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr
    built = tmp_path / "paddlehot_cli"
    for needed in ("_data/native/include/paddlehot/plugin.h", "_data/native/pdcapi/src/predictor.cc",
                   "_data/native/pdcapi/exports.map", "_data/native/pdcapi/selftest/model.json",
                   "_data/native/pdcapi/selftest/model.pdiparams",
                   "_data/templates/plugin/plugin.c.in", "abi/policies/default.json"):
        assert (built / needed).is_file(), needed
    assert not [p for p in (built / "_data").rglob("*") if p.suffix in (".o", ".so")]


def test_a_bad_parameter_raised_inside_a_verb_stays_a_usage_error():
    # typer vendors click: its BadParameter is not the click package's ClickException, and must
    # still reach typer as a usage error (exit 2), not become "internal error" (exit 1)
    import typer
    from typer.testing import CliRunner

    from paddlehot_cli.cli.errors import user_errors

    app = typer.Typer()

    @app.command()
    @user_errors
    def verb(size: int = 1) -> None:
        raise typer.BadParameter(f"size {size} is not allowed")

    result = CliRunner().invoke(app, ["--size", "3"])
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "size 3 is not allowed" in result.output
