"""python -m paddlehot_cli.plugin.pdcapi_tool [--sysroot ROOTFS]: build (or find) pdcapi for this
host, or for the aarch64 rootfs ROOTFS, and print its path (what docs/go-host.md links against).

Its own module: the aarch64 build lives in plugin/cross.py, which builds on plugin/pdcapi.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin.pdcapi import build_pdcapi

USAGE = "usage: python -m paddlehot_cli.plugin.pdcapi_tool [--sysroot ROOTFS]"


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["--sysroot"] and len(argv) == 2:
            from paddlehot_cli.plugin.c_api_choice import CROSS_CC
            from paddlehot_cli.plugin.cross import build_cross_pdcapi
            from paddlehot_cli.plugin.rootfs import open_rootfs

            print(build_cross_pdcapi(open_rootfs(Path(argv[1]), "aarch64"), CROSS_CC["aarch64"]))
        elif not argv:
            print(build_pdcapi())
        else:
            print(f"error: {USAGE}", file=sys.stderr)
            return 2
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
