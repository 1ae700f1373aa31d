"""bench's result tables at 80 columns and in a wide terminal: every header and number whole."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from paddlehot_cli.bench.runner import BenchConfig, BenchReport, compare_ratios
from paddlehot_cli.bench.stats import LevelResult, Sample
from paddlehot_cli.cli import bench_render as bench_cli


def _report(target: str, scale: float) -> BenchReport:
    """Numbers as wide as real runs produce: thousands of requests, multi-second tails."""
    report = BenchReport(target, "http", BenchConfig(concurrency=[16]))
    samples = [Sample(i * 1e-4, (0.0021 + (i % 1000) * 0.00123) * scale, True)
               for i in range(123456)]
    samples += [Sample(0.0, 0.01, False, error="HTTP 503: queue full")] * 7
    level = LevelResult(16, 9.87, samples, cpu_percent=187.3, peak_rss_mb=1234.5,
                        client_cpu_us_per_request=345.6)
    report.levels.append(level)
    return report


@pytest.mark.parametrize("width", [80, 200])
def test_compare_tables_fit_and_keep_every_number(monkeypatch, width):
    console = Console(width=width, file=io.StringIO(), record=True, highlight=False)
    monkeypatch.setattr(bench_cli, "out", console)
    a = _report("http://127.0.0.1:8000/resnet18", 1.0)
    b = _report("grpc://127.0.0.1:8001/resnet18", 1.1)
    for index, report in enumerate((a, b)):
        bench_cli.render_levels(report, f"{'AB'[index]}: {report.target}")
    bench_cli.render_ratios(compare_ratios(a, b))
    text = console.export_text()
    assert "…" not in text, text
    assert all(len(line) <= width for line in text.splitlines()), text
    for header in (*bench_cli.LATENCY_COLUMNS, *bench_cli.RESOURCE_COLUMNS, "req/s B/A"):
        assert header in text, header
    lat = a.levels[0].latency_ms()
    for number in ("123463", f"{a.levels[0].throughput:.1f}", f"{lat['p99']:.2f}", f"{lat['max']:.2f}", "1234", "346",
                   "187", "1.100"):
        assert number in text, number
    # one table when it fits, two at 80 columns
    assert text.count("(resources)") == (0 if width == 200 else 2)


@pytest.mark.parametrize("width", [80, 200])
def test_a_breathing_level_is_drawn_as_a_chart_that_fits(monkeypatch, width):
    from paddlehot_cli.bench.text_chart import BARS

    console = Console(width=width, file=io.StringIO(), record=True, highlight=False)
    monkeypatch.setattr(bench_cli, "out", console)
    report = _report("resnet18.so", 1.0)
    report.levels[0].timeline = [(float(t), 350.0 + 90 * (5 <= t < 15), 2 if 5 <= t < 15 else 1)
                                 for t in range(20)]
    fixed = _report("resnet18.so", 1.0)
    fixed.levels[0].timeline = [(float(t), 450.0, 2) for t in range(20)]
    bench_cli.render_levels(report, "breathing")
    bench_cli.render_levels(fixed, "fixed")
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines()), text
    assert text.count("pool at concurrency 16") == 1  # a pool that never changed: no chart
    pool_row = next(line for line in text.splitlines() if line.strip().startswith("pool  "))
    assert "1..2" in pool_row and BARS[-1] in pool_row and BARS[4] in pool_row  # 2 and 1 of 2
