from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, cli

from paddlehot_cli.bench.runner import BenchConfig, run_bench
from paddlehot_cli.bench.targets import open_target

PERCENTILE_KEYS = ["p50", "p90", "p99", "p99.9", "max"]


def _check_level(level: dict, requests: int | None = None) -> None:
    assert level["ok"] + level["errors"] == level["requests"]
    if requests is not None:
        assert level["requests"] == requests
    lat = level["latency_ms"]
    values = [lat[k] for k in PERCENTILE_KEYS]
    assert values == sorted(values) and values[0] > 0
    assert level["throughput_rps"] > 0


def test_in_process_report_structure(exported, tmp_path):
    pkg = exported("demo:mlp")
    out = tmp_path / "report.json"
    png = tmp_path / "plot.png"
    proc = cli("bench", pkg, "-c", "1,2", "-n", "300", "--warmup", "0.2", "--json", out,
               "--plot", png)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["schema"] == "paddlehot.bench/1"
    assert report["kind"] == "package"
    assert [lv["concurrency"] for lv in report["levels"]] == [1, 2]
    for level in report["levels"]:
        _check_level(level, requests=300)
        assert level["errors"] == 0
        assert level["peak_rss_mb"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "p99" in proc.stdout


def test_open_loop_counts(exported):
    target = open_target(str(exported("demo:mlp")))
    try:
        report = run_bench(target, BenchConfig(concurrency=[2], duration=1.0, warmup=0,
                                               rate=200.0))
    finally:
        target.close()
    level = report.levels[0]
    assert 150 <= len(level.samples) <= 200  # 200 requests scheduled over one second
    _check_level(level.to_json())


def test_batch_and_npz_input(exported, tmp_path):
    import numpy as np

    data = tmp_path / "in.npz"
    np.savez(data, x=np.ones((4, 16), "float32"))
    target = open_target(str(exported("demo:mlp")))
    try:
        report = run_bench(target, BenchConfig(concurrency=[1], requests=50, warmup=0,
                                               input_data=str(data), batch=4))
    finally:
        target.close()
    assert report.levels[0].to_json()["items_per_s"] == pytest.approx(
        4 * report.levels[0].throughput, rel=1e-2)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["/nonexistent/pkg"], "no such target"),
        (["http://127.0.0.1:9/mlp", "--timeout", "2"], "cannot read model metadata"),
        (["http://127.0.0.1"], "does not name a model"),
        (["{pkg}", "-c", "0"], "--concurrency"),
        (["{pkg}", "-c", "a,b"], "malformed --concurrency"),
        (["{pkg}", "--input-data", "/nonexistent.npz"], "no such input data file"),
        (["{pkg}", "--swap-every", "1"], "--swap-every"),
    ],
)
def test_bad_input(exported, args, needle, tmp_path):
    pkg = str(exported("demo:mlp"))
    proc = cli("bench", *[a.replace("{pkg}", pkg) for a in args], "-n", "5")
    assert_one_line_error(proc, 2, needle)


def test_not_a_target(tmp_path):
    stray = tmp_path / "notes.txt"
    stray.write_text("hello")
    assert_one_line_error(cli("bench", stray), 2, "not a package directory")
    assert_one_line_error(cli("bench", tmp_path), 2, "not a model package")
