"""Serving benchmarks (until `paddlehot bench` lands): python -m paddlehot_cli.serve.benchmarks MODE

  cnn   resnet18, batch 1: raw in-process predictor vs HTTP (binary tensors), 4 client threads
  mlp   demo MLP, JSON, wrk with 8 connections (needs wrk)
Each prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUN_SERVE = ("import sys; from paddlehot_cli.cli.main import app; "
             "from paddlehot_cli.cli.serve import serve; app.command('serve')(serve); app()")


def _export(source: str, repo: Path, *extra: str) -> None:
    subprocess.run([sys.executable, "-m", "paddlehot_cli", "export", source, "--repo", str(repo),
                    "--no-validate", *extra], check=True, capture_output=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(repo: Path, *args: str) -> tuple[subprocess.Popen, int]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", RUN_SERVE, "serve", str(repo), "--port",
                             str(port), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not become ready")


def bench_cnn(args: argparse.Namespace) -> dict:
    import tritonclient.http as triton

    from paddlehot_cli.core import load

    repo = Path(args.repo or tempfile.mkdtemp(prefix="ph-bench-cnn-"))
    if not (repo / "resnet18").exists():
        _export("paddle.vision.models:resnet18", repo, "--input", "x:float32:[-1,3,224,224]",
                "--name", "resnet18", "--dim-sizes", "1")
    pkg = sorted((repo / "resnet18").iterdir())[-1]
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype("float32")
    with load(pkg, threads=args.threads) as s:
        for _ in range(5):
            s.infer({"x": x})
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            s.infer({"x": x})
            n += 1
        raw = n / (time.perf_counter() - t0)
    proc, port = _start_server(repo, "--threads", str(args.threads), *args.server_args)
    try:
        count = [0]
        lat: list[float] = []
        stop = threading.Event()

        def client() -> None:
            c = triton.InferenceServerClient(f"127.0.0.1:{port}")
            inp = triton.InferInput("x", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=True)
            out = [triton.InferRequestedOutput(c.get_model_metadata("resnet18")["outputs"][0]["name"],
                                               binary_data=True)]
            while not stop.is_set():
                t = time.perf_counter()
                c.infer("resnet18", [inp], outputs=out)
                lat.append(time.perf_counter() - t)
                count[0] += 1

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(2)  # warm
        c0, t0 = count[0], time.perf_counter()
        time.sleep(args.seconds)
        http = (count[0] - c0) / (time.perf_counter() - t0)
        stop.set()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(30)
    return {"mode": "cnn", "threads": args.threads, "clients": args.clients, "raw_per_s": round(raw, 1),
            "http_per_s": round(http, 1), "ratio": round(http / raw, 3),
            "http_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 2)}


def run_wrk(url: str, seconds: int, connections: int = 8) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(HERE / "wrk_infer.lua"), url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"req_per_s": rps, "p99_ms": round(float(p99.group(1)) * scale, 3),
            "non_2xx": int(errors.group(1)) if errors else 0}


def bench_mlp(args: argparse.Namespace) -> dict:
    repo = Path(args.repo or tempfile.mkdtemp(prefix="ph-bench-mlp-"))
    if not (repo / "mlp").exists():
        _export("demo:mlp", repo)
    proc, port = _start_server(repo, "--threads", "1", *args.server_args)
    try:
        run_wrk(f"http://127.0.0.1:{port}/v2/models/mlp/infer", 2)
        result = run_wrk(f"http://127.0.0.1:{port}/v2/models/mlp/infer", args.seconds)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"mode": "mlp", **result}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["cnn", "mlp"])
    p.add_argument("--repo", default=None, help="reuse a repository (exported once)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("server_args", nargs="*", help="extra `paddlehot serve` options after --")
    args = p.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    result = {"cnn": bench_cnn, "mlp": bench_mlp}[args.mode](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
