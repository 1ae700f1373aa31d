"""`paddlehot bench`'s tables: levels (split in two when the terminal is narrow), --compare
ratios, the --swap-every / soak summary, and the progress bar's per-level ticks."""

from __future__ import annotations

from typing import Any, Optional

from paddlehot_cli.bench.text_chart import timeline_chart
from paddlehot_cli.cli.render import out


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


LATENCY_COLUMNS = ("conc", "requests", "errors", "req/s", "p50", "p90", "p99", "p99.9", "max")
RESOURCE_COLUMNS = ("CPU %", "peak RSS MB", "client µs/req")


def _table(title: str, columns: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from rich import box
    from rich.table import Table

    # no cell padding: the box's column separator is the one space between columns
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0),
                  pad_edge=False)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    return table


def _render_timelines(report) -> None:  # type: ignore[no-untyped-def]
    """Pool size and RSS over time, per level, when the pool changed size (a breathing pool):
    a text chart here, every sample in the JSON report."""
    for level in report.levels:
        sizes = {pool for _, _, pool in level.timeline if pool is not None}
        if len(sizes) < 2:
            continue
        out.print(f"[bold]pool[/bold] at concurrency {level.concurrency}, over the level:",
                  highlight=False)
        for row in timeline_chart(level.timeline, width=min(60, max(20, out.width - 24))):
            out.print("  " + row, highlight=False, soft_wrap=True)


def render_levels(report, title: str) -> None:  # type: ignore[no-untyped-def]
    """One table when it fits the terminal, else latency and resources as two tables: every
    number is printed whole, never cut to 'req…' at 80 columns."""
    rows = []
    for level in report.levels:
        lat = level.latency_ms()
        errors = f"[red]{level.errors}[/red]" if level.errors else "0"
        rows.append((
            [str(level.concurrency), str(len(level.samples)), errors, _fmt(level.throughput, 1),
             _fmt(lat["p50"]), _fmt(lat["p90"]), _fmt(lat["p99"]), _fmt(lat["p99.9"]),
             _fmt(lat["max"])],
            [_fmt(level.cpu_percent, 0), _fmt(level.peak_rss_mb, 0),
             _fmt(level.client_cpu_us_per_request, 0)],
        ))
    one = _table(f"{title} (latency in ms)", LATENCY_COLUMNS + RESOURCE_COLUMNS)
    for latency, resources in rows:
        one.add_row(*latency, *resources)
    natural = out.measure(one, options=out.options.update_width(10_000)).maximum
    if natural <= out.width:
        out.print(one)
    else:
        latency_table = _table(f"{title} (latency in ms)", LATENCY_COLUMNS)
        resource_table = _table(f"{title} (resources)", ("conc", *RESOURCE_COLUMNS))
        for latency, resources in rows:
            latency_table.add_row(*latency)
            resource_table.add_row(latency[0], *resources)
        out.print(latency_table)
        out.print(resource_table)
    _render_timelines(report)
    for level in report.levels:
        for kind, count in level.error_kinds().items():
            out.print(f"  [red]{count} x[/red] {kind}")


def render_ratios(ratios: list[dict]) -> None:
    table = _table("B relative to A", ("conc", "req/s B/A", "p50 B/A", "p99 B/A",
                                       "mean latency B-A µs"))
    for row in ratios:
        table.add_row(str(row["concurrency"]), _fmt(row["throughput_ratio"], 3),
                      _fmt(row["p50_ratio"], 3), _fmt(row["p99_ratio"], 3),
                      _fmt(row["mean_delta_us"], 1))
    out.print(table)


def render_swap(swap: dict) -> None:
    delay = swap["publish_to_first_response_s"]
    out.print(
        f"[bold]swaps[/bold]: {swap['swaps']} published, {swap['swaps_seen']} seen in responses; "
        f"publish -> first new response mean {_fmt(delay['mean'], 3)} s, max "
        f"{_fmt(delay['max'], 3)} s; p99 in swap windows {_fmt(swap['swap_window_p99_ms'])} ms vs "
        f"steady {_fmt(swap['steady_p99_ms'])} ms (x{_fmt(swap['p99_ratio'])}); "
        f"failed requests: {swap['failed_requests']}"
    )
    soak = swap.get("soak")
    if soak:
        fds, maps = soak["open_fds"], soak["plugin_mappings"]
        out.print(
            f"[bold]soak[/bold]: RSS slope {_fmt(soak['rss_slope_mb_per_swap'], 3)} MB/swap "
            f"({_fmt(soak['rss_start_mb'])} -> {_fmt(soak['rss_end_mb'])} MB, peak "
            f"{_fmt(soak['peak_rss_mb'])} MB); open fds {_fmt(fds['start'], 0)} -> "
            f"{_fmt(fds['end'], 0)}; plugin mappings {_fmt(maps['start'], 0)} -> "
            f"{_fmt(maps['end'], 0)}"
        )


def progress_factory(progress):  # type: ignore[no-untyped-def]
    def factory(label: str, concurrency: int, total: Optional[int], duration: Optional[float]):
        task = progress.add_task(f"{label} c={concurrency}", total=total)

        def tick(n: int) -> None:
            progress.advance(task, n)

        return tick

    return factory
