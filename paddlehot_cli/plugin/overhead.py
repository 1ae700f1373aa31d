"""What a plugin call costs over core.load(package) on the same inputs, measured side by side.

Both servables are loaded into one process with one intra-op thread each; the calls are
interleaved (package, plugin, plugin, package, ...) so drift in CPU frequency or cache state hits
both alike. Reports per-call wall time (median, mean, p90) in microseconds and the overhead of the
plugin path, absolute and relative to the package path's median.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def _inputs(manifest: Any, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in manifest.inputs:
        shape = [batch if (d == -1 and i == 0) else (1 if d == -1 else d)
                 for i, d in enumerate(spec.shape)]
        if spec.dtype.startswith("float"):
            feeds[spec.name] = rng.random(shape).astype(spec.dtype)
        else:
            feeds[spec.name] = rng.integers(0, 10, shape).astype(spec.dtype)
    return feeds


def _stats(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e6
    return {"median_us": float(np.median(arr)), "mean_us": float(arr.mean()),
            "p90_us": float(np.percentile(arr, 90)), "min_us": float(arr.min())}


def measure_overhead(package_dir: str | Path, plugin_path: str | Path, calls: int = 1000,
                     batch: int = 1, warmup: int = 20, threads: int = 1) -> dict[str, Any]:
    """Time `calls` interleaved calls of the package and the plugin on one input of `batch`.

    Returns {"package": stats, "plugin": stats, "overhead_us": median difference,
    "overhead_pct": that over the package median, "max_abs_diff": between outputs, ...}.
    """
    from paddlehot_cli.core import load
    from paddlehot_cli.core.plugin_loader import load_plugin
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    clock = time.perf_counter
    pkg_t: list[float] = []
    plug_t: list[float] = []
    with load(package_dir, threads=threads) as pkg, load_plugin(
            plugin_path, threads=threads, c_api=build_pdcapi) as plug:
        feeds = _inputs(pkg.manifest, batch)
        for _ in range(warmup):
            pkg.infer(feeds)
            plug.infer(feeds)
        ref, got = pkg.infer(feeds), plug.infer(feeds)
        diff = max(float(np.max(np.abs(got[k].astype("float64") - ref[k]))) for k in ref)
        for i in range(calls):
            order = (pkg, plug) if i % 2 == 0 else (plug, pkg)
            for servable in order:
                t0 = clock()
                servable.infer(feeds)
                dt = clock() - t0
                (pkg_t if servable is pkg else plug_t).append(dt)
    p, q = _stats(pkg_t), _stats(plug_t)
    over = q["median_us"] - p["median_us"]
    return {
        "model": f"{pkg.manifest.name} {pkg.manifest.version}",
        "batch": batch, "calls": calls, "threads": threads,
        "package": p, "plugin": q,
        "overhead_us": over,
        "overhead_pct": 100.0 * over / p["median_us"] if p["median_us"] else 0.0,
        "max_abs_diff": diff,
    }


def main(argv: list[str] | None = None) -> None:  # python -m paddlehot_cli.plugin.overhead
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package")
    ap.add_argument("plugin")
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args(argv)
    print(json.dumps(measure_overhead(args.package, args.plugin, args.calls, args.batch), indent=2))


if __name__ == "__main__":
    main()
