"""Per-call overhead of the Go host (phot-host) against the C host (native/host) on the demo MLP.

    PYTHONPATH=. python native/host-go/bench_overhead.py [--rounds 5] [--calls 20000]

Exports two versions of demo:mlp and builds their plugins with the paddlehot CLI, builds both
hosts, then runs them interleaved (C, Go, C, Go, ...) with one thread, each at --calls and at
--calls/4. Startup (Python, Paddle, two loads) is the same in both runs of a host, so the
difference of wall times over the difference of calls is the cost of one call through that host.
Prints the median per-call time of each host and the Go - C difference, in microseconds, and the
Go benchmark (`go test -bench`) of Plugin.InferInto in-process. The machine may be shared:
quote the ratio of one interleaved run, not absolute numbers.
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


def timed(cmd: list[str], env: dict) -> tuple[float, int]:
    """(wall seconds, calls served) of one host run."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: {cmd[0]} failed: {proc.stderr.strip()[-400:]}")
    v1, v2 = re.search(r"(\d+) calls on v1, (\d+) on v2", proc.stdout).groups()
    return wall, int(v1) + int(v2)


def go_bench(fixtures: Path) -> str:
    proc = subprocess.run(
        ["go", "test", "-run", "^$", "-bench", "InferInto", "-benchtime", "3s", "./phot"],
        cwd=ROOT / "native" / "host-go",
        check=False,
        capture_output=True,
        text=True,
        env=dict(os.environ, PHOT_TEST_FIXTURES=str(fixtures), **GO_ENV),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("Benchmark")]
    return lines[0] if lines else "go bench failed: " + proc.stdout[-300:] + proc.stderr[-300:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    capi = build_pdcapi()
    with tempfile.TemporaryDirectory(prefix="phot-bench-") as d:
        tmp = Path(d)
        versions = build_plugins(tmp)
        c_host, go_host = build_hosts(tmp)
        spec = ["-i", f"x:float32:3,16:{tmp / 'in.bin'}", *versions]
        env = dict(os.environ, LD_LIBRARY_PATH=str(capi.parent), **GO_ENV)
        per_call: dict[str, list[float]] = {"C host": [], "Go host": []}
        for r in range(args.rounds):
            for name, exe in (("C host", c_host), ("Go host", go_host)):
                runs = [
                    timed([str(exe), "-t", "1", "-n", str(n), *spec], env)
                    for n in (args.calls // 4, args.calls)
                ]
                (w0, c0), (w1, c1) = runs
                per_call[name].append((w1 - w0) / (c1 - c0) * 1e6)
            print(
                f"round {r + 1}: C {per_call['C host'][-1]:.1f} us, "
                f"Go {per_call['Go host'][-1]:.1f} us",
                flush=True,
            )
        med = {k: statistics.median(v) for k, v in per_call.items()}
        (tmp / "fixtures.json").write_text(
            json.dumps(
                {
                    "capi": str(capi),
                    "input": {
                        "name": "x",
                        "dtype": "float32",
                        "shape": [3, 16],
                        "file": str(tmp / "in.bin"),
                    },
                    "versions": [
                        {"so": versions[0], "version": "1.0.0", "expected": versions[2]},
                        {"so": versions[3], "version": "1.1.0", "expected": versions[5]},
                    ],
                }
            )
        )
        bench = go_bench(tmp / "fixtures.json")
    print(
        f"median per call over {args.rounds} interleaved rounds: C host {med['C host']:.1f} us, "
        f"Go host {med['Go host']:.1f} us, Go - C {med['Go host'] - med['C host']:+.1f} us"
    )
    print(f"go test -bench (Plugin.InferInto in-process): {bench}")


if __name__ == "__main__":
    main()
