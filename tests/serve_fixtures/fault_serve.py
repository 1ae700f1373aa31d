"""`paddlehot serve` with one fault that a real package cannot produce on demand: a slow load.

`PADDLEHOT_TEST_SLOW_LOAD="MODEL/VERSION=SECONDS,..."` sleeps before the real loader runs for
that version (the package itself is real and loads normally afterwards). Everything else is the
real CLI: `python -m tests.serve_fixtures.fault_serve serve REPO ...`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from paddlehot_cli.serve import runtime


def _delays() -> dict[str, float]:
    out = {}
    for item in filter(None, os.environ.get("PADDLEHOT_TEST_SLOW_LOAD", "").split(",")):
        key, _, seconds = item.partition("=")
        out[key.strip()] = float(seconds)
    return out


_real_make_loader = runtime.make_loader


def _slow_make_loader(cfg):
    inner, delays = _real_make_loader(cfg), _delays()

    def loader(path: Path):
        delay = delays.get(f"{path.parent.name}/{path.name}")
        if delay:
            time.sleep(delay)
        return inner(path)

    return loader


runtime.make_loader = _slow_make_loader

if __name__ == "__main__":
    from paddlehot_cli.cli.main import run

    sys.argv[0] = "paddlehot"
    run()
