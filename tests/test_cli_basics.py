from __future__ import annotations

import subprocess
import sys
import time

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
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
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
