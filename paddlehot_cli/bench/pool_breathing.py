"""Benchmark: a breathing pool (min 1, max N) against the fixed pool of N, on a burst after idle.

    python -m paddlehot_cli.bench.pool_breathing PACKAGE_DIR|PLUGIN.so [--max 2] [--clients 2]
        [--burst-s 20] [--after-s 60] [--idle-s 30] [--grow-nice 10] [--host python|c]
        [--json PATH]

`--host c` opens a plugin as a C or Go host does: one handle whose own pool grows and
reclaims (bench/c_pool.py); the default is paddlehot's Python host (core.load).

Each side runs in a fresh process (RSS is the process's own). The fixed side: load with
min = max = N, burst. The single side: min = max = 1, the same burst - what the clients wait
for one predictor alone, the least a burst that starts at min 1 can cost before the pool has
grown. The breathing side: load with min 1, a short prelude burst (the pool grows), idle until
the timer reclaimed it back to 1 (the "idle RSS at min 1"), then the measured burst, then
`--after-s` seconds without traffic. Printed: pool size and RSS over time (a text chart; the
samples go to --json), and the ratios of issue 27 - burst throughput breathing/fixed, p99 while
the pool grows / fixed steady p99 (second half of its burst), the same p99 / the single
predictor's p99 and / the breathing run's own steady p99 (the same process a few seconds
later: on a shared box the steadier comparison), RSS `--after-s` after the burst / idle RSS at
min 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from paddlehot_cli.bench.text_chart import timeline_chart

MODES = ("fixed", "single", "breathing")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _p99(values: list[float]) -> float | None:
    return float(np.percentile(values, 99)) if values else None


def closed_loop(call: Callable[[], object], clients: int,
                until: Callable[[], bool]) -> list[tuple[float, float]]:
    """`clients` threads calling back to back (as serve's batcher workers do) until `until()`:
    (start time, latency) of every call. Also the pool tests' load."""
    calls: list[tuple[float, float]] = []

    def client() -> None:
        while not until():
            t = time.monotonic()
            call()
            calls.append((t, time.monotonic() - t))

    threads = [threading.Thread(target=client, name=f"bench-client-{i}") for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return calls


def _burst(servable, feeds, clients: int, seconds: float) -> list[tuple[float, float]]:
    end = time.monotonic() + seconds
    return closed_loop(lambda: servable.infer(feeds), clients, lambda: time.monotonic() >= end)


def child(a: argparse.Namespace) -> dict:
    size = {"fixed": a.max, "single": 1}.get(a.mode)
    if a.host == "c":
        from paddlehot_cli.bench.c_pool import CPoolPlugin

        servable = CPoolPlugin(a.target, size or 1, size or a.max, a.idle_s, a.threads)
    else:
        from paddlehot_cli.core import load
        from paddlehot_cli.core.pool_keeper import shared_keeper

        shared_keeper().nice = a.grow_nice
        servable = load(a.target, pool_min=size or 1, pool_max=size or a.max, idle_s=a.idle_s,
                        threads=a.threads)
    spec = servable.manifest.inputs[0]
    feeds = {spec.name: np.random.default_rng(0).random(
        [1 if d < 0 else d for d in spec.shape]).astype(spec.dtype)}
    servable.infer(feeds)
    t0 = time.monotonic()
    timeline: list[tuple[float, float, int]] = []
    sizes: list[tuple[float, int]] = []  # every 0.1 s: when the pool reached max
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            sizes.append((time.monotonic(), servable.pool_size))
            if len(sizes) % 5 == 0:
                timeline.append((round(time.monotonic() - t0, 1), round(_rss() / 2**20, 1),
                                 servable.pool_size))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out: dict = {"mode": a.mode}
    if size is None:  # grow once, then idle until the timer brought it back to 1
        _burst(servable, feeds, a.clients, 5.0)
        deadline = time.monotonic() + a.idle_s + 60
        while time.monotonic() < deadline and (
                max((n for _, n in sizes), default=0) < 2 or servable.pool_size > 1):
            time.sleep(0.5)
        time.sleep(2.0)
    out["idle_rss_mb"] = _rss() / 2**20
    out["idle_pool"] = servable.pool_size
    start = time.monotonic()
    calls = _burst(servable, feeds, a.clients, a.burst_s)
    out["throughput"] = len(calls) / a.burst_s
    pool = servable.pool
    full_at = next((t for t, n in sizes if t >= start and n >= a.max), start + a.burst_s)
    out["growth_s"] = round(full_at - start, 2)
    out["p99_growth_ms"] = _p99([lat * 1e3 for t, lat in calls if t <= full_at])
    out["p99_steady_ms"] = _p99([lat * 1e3 for t, lat in calls if t >= start + a.burst_s / 2])
    out["p99_all_ms"] = _p99([lat * 1e3 for _, lat in calls])
    out["p50_growth_ms"] = float(np.median([lat * 1e3 for t, lat in calls if t <= full_at]))
    out["p50_steady_ms"] = float(np.median([lat * 1e3 for t, lat in calls
                                            if t >= start + a.burst_s / 2]))
    if size is None:
        time.sleep(a.after_s)
    out["after_rss_mb"] = _rss() / 2**20
    out["after_pool"] = servable.pool_size
    out["counters"] = vars(pool.counters) if pool is not None else {}
    stop.set()
    out["timeline"] = timeline
    servable.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target")
    p.add_argument("--max", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--burst-s", type=float, default=20.0)
    p.add_argument("--after-s", type=float, default=60.0)
    p.add_argument("--idle-s", type=float, default=30.0)
    p.add_argument("--grow-nice", type=int, default=10,
                   help="nice value of the keeper while it grows a pool (serve: 10, as loads)")
    p.add_argument("--host", choices=("python", "c"), default="python",
                   help="python: paddlehot's Python host (core.load); c: a plugin opened as a "
                   "C or Go host opens it, one handle whose own pool breathes")
    p.add_argument("--json", help="write every figure and the timelines to this file")
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.mode:
        print(json.dumps(child(a)))
        return 0
    env = dict(os.environ, KMP_BLOCKTIME="0", GLOG_minloglevel="2")
    results = {}
    for mode in MODES:
        proc = subprocess.run([sys.executable, "-m", "paddlehot_cli.bench.pool_breathing",
                               *(argv if argv is not None else sys.argv[1:]), "--mode", mode],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"error: the {mode} run failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
            return 1
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    fixed, single, breath = (results[m] for m in MODES)
    print("breathing pool, over time (the prelude, the idle reclaim, the burst, the reclaim):")
    for row in timeline_chart(breath["timeline"]):
        print("  " + row)
    for mode, r in results.items():
        print(f"{mode:>9}: {r['throughput']:.1f}/s, p50/p99 growth {r['p50_growth_ms']:.0f}/"
              f"{r['p99_growth_ms']:.0f} ms (pool full after {r['growth_s']} s), p50/p99 steady "
              f"{r['p50_steady_ms']:.0f}/{r['p99_steady_ms']:.0f} ms, "
              f"idle RSS {r['idle_rss_mb']:.0f} MiB (pool {r['idle_pool']}), after "
              f"{r['after_rss_mb']:.0f} MiB (pool {r['after_pool']}) {r['counters']}")
    ratios = {
        "throughput_vs_fixed": breath["throughput"] / fixed["throughput"],
        "p99_growth_vs_fixed_steady": breath["p99_growth_ms"] / fixed["p99_steady_ms"],
        "p99_growth_vs_own_steady": breath["p99_growth_ms"] / breath["p99_steady_ms"],
        "p99_growth_vs_single": breath["p99_growth_ms"] / single["p99_all_ms"],
        "single_p99_vs_fixed_steady": single["p99_all_ms"] / fixed["p99_steady_ms"],
        "rss_after_vs_idle_min": breath["after_rss_mb"] / breath["idle_rss_mb"],
    }
    print(f"throughput breathing/fixed: {ratios['throughput_vs_fixed']:.2f}x (target >= 0.9)")
    print(f"p99 while growing / fixed steady p99: {ratios['p99_growth_vs_fixed_steady']:.2f}x "
          f"(target <= 1.5); one predictor alone for {a.clients} clients is "
          f"{ratios['single_p99_vs_fixed_steady']:.2f}x, so growth itself adds "
          f"{ratios['p99_growth_vs_single']:.2f}x over it; vs the breathing run's own steady "
          f"p99 (same process, the pool at max): {ratios['p99_growth_vs_own_steady']:.2f}x")
    print(f"RSS {a.after_s:g} s after the burst / idle RSS at min 1: "
          f"{ratios['rss_after_vs_idle_min']:.2f}x (target within 1.10); "
          f"the fixed pool keeps {fixed['idle_rss_mb']:.0f} MiB all day")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"command": sys.argv, "ratios": ratios, "runs": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
