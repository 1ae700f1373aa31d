"""RSS of the Go host (phot-host) serving the demo CNN as a plugin, against a given pdcapi.

    python -m paddlehot_cli.bench.go_host_rss [--capi LIB]... [--env K=V]... [--calls N]

Exports two versions of demo:cnn, builds their plugins and phot-host, then runs phot-host (one
goroutine, one predictor, N calls, one swap) while sampling its VmRSS every 20 ms: the report is
the peak and the median of the samples taken while it served. Each `--capi` is one
libpaddle_inference_c.so to run with, on the same plugins (default: this Paddle's pdcapi), e.g.
an older build to compare with; `--env` adds what such a library needs (the embedded-CPython
pdcapi needed PADDLEHOT_PYTHON). One JSON line per library, ratios to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paddlehot_cli.resources import native_dir

GO_ENV = {"GOTOOLCHAIN": "local", "GOPROXY": "off", "GLOG_minloglevel": "2"}


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "paddlehot_cli", *args], check=True,
                   capture_output=True, env={**os.environ, **GO_ENV})


def prepare(tmp: Path) -> list[str]:
    """Two demo:cnn plugins, the input and each version's answer: phot-host's positional args."""
    args: list[str] = []
    pkgs = []
    for version, seed in (("1.0.0", "0"), ("1.1.0", "1")):
        pkg, so = tmp / f"cnn-{version}", tmp / f"cnn-{version}.so"
        _cli("export", "demo:cnn", "--version", version, "--seed", seed, "-o", str(pkg))
        _cli("build-plugin", str(pkg), "-o", str(so), "--no-verify")
        pkgs.append(pkg)
        args += [str(so), "phot_cnn_v" + version.replace(".", "_") + "_", f"{pkg}_expected.bin"]
    subprocess.run([sys.executable, str(native_dir() / "host-go" / "answers.py"),
                    str(tmp / "in.bin"), *map(str, pkgs)], check=True, capture_output=True)
    return ["-i", f"image:float32:3,3,32,32:{tmp / 'in.bin'}", *args]


def build_host(tmp: Path) -> Path:
    out = tmp / "phot-host"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/phot-host"],
                   cwd=native_dir() / "host-go", check=True, capture_output=True,
                   env={**os.environ, **GO_ENV})
    return out


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(host: Path, capi: str, args: list[str], calls: int,
            env: dict[str, str]) -> dict[str, float]:
    cmd = [str(host), "-t", "1", "-p", "1", "-n", str(calls), "-swaps", "1", "-capi", capi, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": os.environ.get("PATH", ""), **GO_ENV, **env})
    samples: list[float] = []
    while proc.poll() is None:
        rss = _rss_mb(proc.pid)
        if rss:
            samples.append(rss)
        time.sleep(0.02)
    out, err = proc.communicate()
    if proc.returncode != 0 or not samples:
        raise SystemExit(f"error: phot-host failed ({proc.returncode}): {err.strip()[-400:]}")
    serving = samples[len(samples) // 4:]  # after start-up and the first open
    return {"peak_rss_mb": round(max(samples), 1),
            "median_rss_mb": round(statistics.median(serving), 1),
            "samples": len(samples), "report": out.strip().splitlines()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capi", action="append", default=[],
                    help="libpaddle_inference_c.so (repeatable; default: this Paddle's pdcapi)")
    ap.add_argument("--env", action="append", default=[], help="K=V for phot-host (repeatable)")
    ap.add_argument("--calls", type=int, default=3000)
    opts = ap.parse_args(argv)
    if not opts.capi:
        from paddlehot_cli.plugin.pdcapi import build_pdcapi

        opts.capi = [str(build_pdcapi())]
    env = dict(kv.split("=", 1) for kv in opts.env)
    with tempfile.TemporaryDirectory(prefix="paddlehot-go-rss-") as d:
        tmp = Path(d)
        args, host = prepare(tmp), build_host(tmp)
        first = None
        for capi in opts.capi:
            result = measure(host, capi, args, opts.calls, env)
            first = first or result
            ratio = round(result["median_rss_mb"] / first["median_rss_mb"], 2)
            print(json.dumps({"capi": capi, **result, "median_vs_first": ratio}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
