from __future__ import annotations

from paddlehot_cli.cli.main import run

if __name__ == "__main__":
    run()
