"""Per-call overhead of the Go host against the C host (native/host) on the demo MLP.

    PYTHONPATH=. python native/host-go/bench_overhead.py [--rounds 3] [--calls 4000]

Exports two versions of demo:mlp and builds their plugins with the paddlehot CLI, then:
1. `go test -bench OverheadVersusC`: in one process on one plugin handle, blocks of calls through
   the Go host's InferInto interleaved with blocks from a C loop doing what native/host's workers
   do; the median of the per-round differences is the Go host's cost per call (target: 10 us).
2. Both commands end to end, interleaved (C, Go, C, Go, ...), one thread, same plugins, input,
   calls and swap: median wall time per run (startup, two loads, the calls).
The machine may be shared: quote the figures of one interleaved run, with the load at the time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GO_ENV = {"GOTOOLCHAIN": "local", "GOPROXY": "off", "GLOG_minloglevel": "2"}


def cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "paddlehot_cli", *args],
        check=True,
        capture_output=True,
        env=dict(os.environ, **GO_ENV),
    )


def build_plugins(tmp: Path) -> list[dict]:
    from paddlehot_cli.core import load

    x = np.random.default_rng(0).random((3, 16)).astype("float32")
    x.tofile(tmp / "in.bin")
    versions = []
    for version, seed in (("1.0.0", "0"), ("1.1.0", "1")):
        pkg, so = tmp / f"pkg-{version}", tmp / f"mlp-{version}.so"
        cli("export", "demo:mlp", "--version", version, "--seed", seed, "-o", str(pkg))
        cli("build-plugin", str(pkg), "-o", str(so))
        with load(pkg) as ref:
            ref.infer({"x": x})["logits"].astype("float32").tofile(tmp / f"{version}.bin")
        prefix = "phot_mlp_v" + version.replace(".", "_") + "_"
        versions += [str(so), prefix, str(tmp / f"{version}.bin")]
    return versions


def build_hosts(tmp: Path) -> tuple[Path, Path]:
    c_host, go_host = tmp / "host", tmp / "phot-host"
    subprocess.run(["make", "-s", "-C", str(ROOT / "native" / "host"), f"OUT={c_host}"], check=True)
    subprocess.run(
        ["go", "build", "-o", str(go_host), "./cmd/phot-host"],
        check=True,
        cwd=ROOT / "native" / "host-go",
        env=dict(os.environ, **GO_ENV),
    )
    return c_host, go_host


def timed(cmd: list[str], env: dict) -> float:
    """Wall seconds of one successful host run."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: {cmd[0]} failed: {proc.stderr.strip()[-400:]}")
    return wall


def go_overhead(fixtures: Path) -> str:
    proc = subprocess.run(
        ["go", "test", "-run", "^$", "-bench", "OverheadVersusC", "-benchtime", "1x", "./phot"],
        cwd=ROOT / "native" / "host-go",
        check=False,
        capture_output=True,
        text=True,
        env=dict(os.environ, PHOT_TEST_FIXTURES=str(fixtures), **GO_ENV),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("Benchmark")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"error: go test -bench failed: {(proc.stdout + proc.stderr)[-400:]}")
    metrics = {unit: float(value) for value, unit in re.findall(r"(-?[\d.]+) (\S+/call)", lines[0])}
    return (
        f"Go host {metrics['go-us/call']:.1f} us/call, C loop {metrics['c-us/call']:.1f} us/call, "
        f"Go - C (median of paired rounds) {metrics['overhead-us/call']:+.1f} us"
    )


def write_fixtures(tmp: Path, capi: Path, versions: list[str]) -> Path:
    path = tmp / "fixtures.json"
    input_spec = {"name": "x", "dtype": "float32", "shape": [3, 16], "file": str(tmp / "in.bin")}
    path.write_text(
        json.dumps(
            {
                "capi": str(capi),
                "input": input_spec,
                "versions": [
                    {"so": versions[0], "version": "1.0.0", "expected": versions[2]},
                    {"so": versions[3], "version": "1.1.0", "expected": versions[5]},
                ],
            }
        )
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="end-to-end runs of each host")
    ap.add_argument("--calls", type=int, default=4000, help="calls per end-to-end run")
    args = ap.parse_args()
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    capi = build_pdcapi()
    with tempfile.TemporaryDirectory(prefix="phot-bench-") as d:
        tmp = Path(d)
        versions = build_plugins(tmp)
        c_host, go_host = build_hosts(tmp)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        print("in-process:", go_overhead(write_fixtures(tmp, capi, versions)), flush=True)
        spec = ["-t", "1", "-n", str(args.calls), "-i", f"x:float32:3,16:{tmp / 'in.bin'}"]
        env = dict(os.environ, LD_LIBRARY_PATH=str(capi.parent), **GO_ENV)
        walls: dict[str, list[float]] = {"C host": [], "Go host": []}
        for _ in range(args.rounds):
            for name, exe in (("C host", c_host), ("Go host", go_host)):
                walls[name].append(timed([str(exe), *spec, *versions], env))
        med = {k: statistics.median(v) for k, v in walls.items()}
    print(
        f"end to end, median of {args.rounds} interleaved runs of {args.calls} calls: "
        f"C host {med['C host']:.2f} s, Go host {med['Go host']:.2f} s "
        f"(Go/C {med['Go host'] / med['C host']:.2f})"
    )


if __name__ == "__main__":
    main()
