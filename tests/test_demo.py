from __future__ import annotations

import re
import shutil
from pathlib import Path

from conftest import cli


def test_demo_tells_the_whole_story():
    proc = cli("demo", "--keep", timeout=240, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for step in ("export 1.0.0", "build-plugin", "abi-check", "serve", "hot swap", "bench",
                 "shutdown"):
        assert step in text, text
    swap = re.search(r"(\d+) requests, (\d+) failed", text)
    assert swap and int(swap[1]) > 0 and int(swap[2]) == 0, text
    assert "now serving 1.1.0" in text
    assert "drained, exit 0" in text
    # every step says how to do it by hand, in the docs' names (the repository is models/)
    for command in ("$ paddlehot export demo:mlp --repo models/ --version 1.0.0",
                    "$ paddlehot build-plugin models/mlp/1.0.0 -o models/mlp/1.0.0/plugin.so",
                    "$ paddlehot abi-check models/mlp/1.0.0/plugin.so",
                    "$ paddlehot serve models/ --prefer plugin", "$ paddlehot bench http://"):
        assert command in proc.stderr, proc.stderr
    assert "try next" in text and "paddlehot bench models:mlp --tune" in text, text
    # at 80 columns no result is wrapped onto a second line or cut
    table = text[text.index("paddlehot demo"):text.index("done in")]
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert len(rows) == 8 and all(row.split("│")[1].strip() for row in rows), table
    assert "…" not in table, table
    # --keep: the directory stays, named in the output, with the repository as the docs name it
    kept = re.search(r"kept (\S+?):", proc.stderr)
    assert kept, proc.stderr
    workdir = Path(kept[1])
    try:
        for version in ("1.0.0", "1.1.0"):
            assert (workdir / "models" / "mlp" / version / "plugin.so").is_file()
        assert (workdir / "serve.log").is_file()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
