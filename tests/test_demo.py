from __future__ import annotations

import re
from pathlib import Path

from conftest import cli


def test_demo_tells_the_whole_story():
    proc = cli("demo", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for step in ("export 1.0.0", "build-plugin", "abi-check", "serve", "hot swap", "bench",
                 "shutdown"):
        assert step in text, text
    swap = re.search(r"(\d+) requests, (\d+) failed", text)
    assert swap and int(swap[1]) > 0 and int(swap[2]) == 0, text
    assert "now serving 1.1.0" in text
    assert "drained, exit 0" in text
    workdir = re.search(r"story in (\S+)", proc.stderr + text)
    assert workdir and not Path(workdir[1]).exists()  # the temporary directory is cleaned up
