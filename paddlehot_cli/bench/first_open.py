"""First plugin open in a fresh process: dlopen to first answer, per run in a new interpreter.

    python -m paddlehot_cli.bench.first_open PLUGIN.so [--runs 5] [--json OUT]

Each run starts a new Python, builds or finds pdcapi first (not timed), then times
load_plugin(PLUGIN) plus one inference on ones of the manifest's shapes, and reports that time,
the process's RSS afterwards and whether the paddle Python package got imported. Prints the
median over the runs. Only the standard library is imported here (the child does the work), so
this file also measures another checkout: PYTHONPATH=OTHER python first_open.py PLUGIN.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from paddlehot_cli.core.plugin_loader import load_plugin, read_plugin_manifest
from paddlehot_cli.plugin.pdcapi import build_pdcapi
build_pdcapi()  # built or found before the clock starts
manifest, _ = read_plugin_manifest(sys.argv[1])
feeds = {s.name: np.ones([1 if d == -1 else d for d in s.shape], s.dtype)
         for s in manifest.inputs}
t0 = time.perf_counter()
plugin = load_plugin(sys.argv[1], c_api=build_pdcapi)
plugin.infer(feeds)
t1 = time.perf_counter()
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(json.dumps({"first_open_s": t1 - t0, "rss_mb": rss / 1024,
                  "paddle_imported": "paddle" in sys.modules}))
"""


def measure(plugin: str, runs: int = 5) -> dict:
    env = {**os.environ, "GLOG_minloglevel": "2"}
    samples = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", CHILD, plugin], capture_output=True,
                              text=True, env=env, timeout=600, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise SystemExit(f"first_open: a run failed: {tail[0]}")
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "plugin": plugin,
        "runs": runs,
        "first_open_s_median": statistics.median(s["first_open_s"] for s in samples),
        "rss_mb_median": statistics.median(s["rss_mb"] for s in samples),
        "paddle_imported": any(s["paddle_imported"] for s in samples),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plugin")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", help="write the result here too")
    args = ap.parse_args(argv)
    result = measure(args.plugin, args.runs)
    print(f"first open (dlopen to first answer), median of {result['runs']}: "
          f"{result['first_open_s_median'] * 1000:.0f} ms; RSS {result['rss_mb_median']:.0f} MB; "
          f"paddle imported: {result['paddle_imported']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
