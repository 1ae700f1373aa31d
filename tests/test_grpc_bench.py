"""`paddlehot bench grpc://HOST:PORT/NAME`: a real run against serve's gRPC front end, interleaved
with the same server over HTTP; swaps and errors over gRPC are counted like over HTTP."""

from __future__ import annotations

import json
import os

import pytest

from paddlehot_cli.bench.runner import BenchConfig, run_bench
from paddlehot_cli.bench.targets import GrpcTarget
from tests.conftest import assert_one_line_error, cli
from tests.serve_fixtures.helpers import publish_copy, start_runtime


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("grpc-bench") / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 61), repo, "mlp", "1.0.0")
    rt = start_runtime(repo, grpc_port=0, poll_interval=0.2)
    yield rt, repo
    rt.stop_thread()


def test_grpc_compared_with_http_and_swaps(served, tmp_path):
    rt, repo = served
    grpc_url, http_url = f"grpc://127.0.0.1:{rt.grpc.port}/mlp", f"http://127.0.0.1:{rt.port}/mlp"
    out = tmp_path / "cmp.json"
    proc = cli("bench", grpc_url, "--compare", http_url, "-c", "2", "--duration", "2", "--warmup", "0.2",
               "--pid", os.getpid(), "--json", out)
    assert proc.returncode == 0, proc.stderr
    compare = json.loads(out.read_text())["compare"]
    a, b = compare["a"], compare["b"]
    assert (a["kind"], b["kind"]) == ("grpc", "http")
    for level in (a["levels"][0], b["levels"][0]):
        assert level["ok"] == level["requests"] > 50 and level["errors"] == 0
        assert level["client_cpu_us_per_request"] > 0
    assert a["levels"][0]["peak_rss_mb"] > 0  # the server's RSS through --pid
    assert compare["ratios"][0]["throughput_ratio"] > 0
    swap = tmp_path / "swap.json"
    proc = cli("bench", grpc_url, "-c", "2", "--duration", "3", "--warmup", "0.2",
               "--swap-every", "1", "--swap-repo", repo, "--json", swap)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(swap.read_text())
    assert report["swap"]["swaps_seen"] >= 1 and report["swap"]["failed_requests"] == 0


def test_grpc_errors_are_counted(served):
    rt, _ = served
    # pinned to a version the server never loaded (its metadata would fail up front): every
    # request fails and is counted with its status
    target = GrpcTarget(f"grpc://127.0.0.1:{rt.grpc.port}/mlp", timeout=5)
    target.endpoint = target.endpoint.__class__(target.endpoint.host, target.endpoint.port,
                                                "mlp", "9.9.9")
    level = run_bench(target, BenchConfig(concurrency=[1], requests=20, warmup=0)).levels[0]
    assert level.errors == 20 and len(level.samples) == 20
    assert any("gRPC NOT_FOUND" in kind for kind in level.error_kinds())


@pytest.mark.parametrize("url, needle", [
    ("grpc://127.0.0.1/mlp", "malformed gRPC URL"),
    ("grpc://127.0.0.1:9", "does not name a model"),
    ("grpc://127.0.0.1:{port}/nope", "cannot read model metadata"),
])
def test_bad_grpc_targets_are_one_line(served, url, needle):
    proc = cli("bench", url.format(port=served[0].grpc.port), "-n", "5", "--timeout", "3")
    assert_one_line_error(proc, 2, needle)
