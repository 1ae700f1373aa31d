"""Time `paddlehot abi-check NEW --baseline OLD` cold: each run is a fresh interpreter (nothing
kept between runs but the OS page cache). A benchmark, not a test.

    python tests/abi_fixtures/bench_abi_check.py                 # two ~38 MB --debug fixtures
    python tests/abi_fixtures/bench_abi_check.py NEW OLD [--runtime DIR] [--runs 3]

Without NEW and OLD it builds two plugin-shaped .so files with DWARF and a 38 MB embedded
params section (helpers.build_plugin) and a stub libpaddle_inference_c.so for --runtime.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def fixtures(size: int) -> tuple[Path, Path, Path]:
    from abi_fixtures import helpers as h

    old = h.build_plugin(debug=True, params_bytes=size)
    new = h.build_plugin(debug=True, version="1.1.0", params_bytes=size)
    return new, old, h.stub_dir()


def one_run(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("new", nargs="?")
    ap.add_argument("old", nargs="?")
    ap.add_argument("--runtime")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=38_000_000, help="embedded bytes per fixture")
    args = ap.parse_args()
    if args.new and args.old:
        new, old, runtime = Path(args.new), Path(args.old), args.runtime
    else:
        new, old, runtime = fixtures(args.size)
    argv = [sys.executable, "-m", "paddlehot_cli", "abi-check", str(new), "--baseline", str(old)]
    if runtime:
        argv += ["--runtime", str(runtime)]
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))  # this checkout's paddlehot_cli
    print(
        f"{new.name}: {new.stat().st_size / 1e6:.1f} MB, {old.name}: {old.stat().st_size / 1e6:.1f} MB"
    )
    walls = []
    for i in range(args.runs):
        wall, cpu, rc = one_run(argv, env)
        walls.append(wall)
        print(f"run {i + 1}: {wall:.3f} s wall, {cpu:.3f} s cpu, exit {rc}")
    print(f"median {statistics.median(walls):.3f} s wall (load average {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
