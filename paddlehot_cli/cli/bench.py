"""`paddlehot bench`: latency, throughput, swap impact and memory of a package, a plugin, a
repository model or any Open Inference Protocol v2 server."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer

from paddlehot_cli.cli.bench_tune import AxisText
from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import console, out


def _ints(text: str, option: str) -> list[int]:
    from paddlehot_cli.errors import UserError

    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UserError(f"malformed {option} '{text}'", hint="write e.g. 1,2,4,8") from None
    if not values:
        raise UserError(f"{option} is empty")
    return values


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


def _progress_factory(progress):  # type: ignore[no-untyped-def]
    def factory(label: str, concurrency: int, total: Optional[int], duration: Optional[float]):
        task = progress.add_task(f"{label} c={concurrency}", total=total)

        def tick(n: int) -> None:
            progress.advance(task, n)

        return tick

    return factory


@user_errors
def bench(
    target: Optional[str] = typer.Argument(
        None, help="A package dir, a plugin .so, REPO:NAME (served in-process by the core Manager, "
        "swaps included), REPO:NAME@VERSION, http://HOST:PORT/NAME "
        "(any Open Inference Protocol v2 server: paddlehot, Triton, KServe) or grpc://HOST:PORT/NAME "
        "(the same over KServe v2 / Triton gRPC).",
    ),
    concurrency: Optional[str] = typer.Option(
        None, "--concurrency", "-c",
        help="Concurrent clients; a comma list is a sweep: 1,2,4,8 (default 1; --tune: 2 x cores)."),
    duration: Optional[float] = typer.Option(
        None, "--duration", "-d", help="Seconds per level (default 10; --tune: 2 per setting)."),
    requests: Optional[int] = typer.Option(
        None, "--requests", "-n", help="Requests per level (instead of --duration)."),
    warmup: float = typer.Option(1.0, "--warmup", help="Seconds of unmeasured warm-up."),
    batch: int = typer.Option(1, "--batch", "-b", help="Batch size of every request."),
    threads: Optional[str] = typer.Option(
        None, "--threads", help="Intra-op threads (in-process targets; default 1). With --tune a "
        "comma list to sweep (default 1..cores)."),
    input_data: str = typer.Option(
        "random", "--input-data",
        help="random, FILE.npz with one array per input, or random-shapes[:MAX_BATCH,MAX_LEN]: "
        "new sizes for the dynamic dims on every request (default 8,512)."),
    rate: Optional[float] = typer.Option(
        None, "--rate", help="Open loop at R requests/s (default: closed loop)."),
    swap_every: Optional[float] = typer.Option(
        None, "--swap-every", help="Publish a new version every S seconds during the run."),
    swap_repo: Optional[Path] = typer.Option(
        None, "--swap-repo", help="Repository the server watches (for --swap-every over HTTP)."),
    compare: Optional[str] = typer.Option(
        None, "--compare", help="A second target, run interleaved with TARGET (A B A B ...)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds before a request fails."),
    pid: Optional[int] = typer.Option(
        None, "--pid", help="PID of the server under test, for CPU and RSS over HTTP or gRPC."),
    calibrate: bool = typer.Option(
        False, "--calibrate",
        help="Bench a trivial endpoint instead of TARGET: what the load generator itself can "
        "drive and costs per request."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Write a PNG: latency/throughput; with --tune throughput vs p99 per "
        "setting; with --shape-memory the RSS curves."),
    tune: bool = typer.Option(
        False, "--tune", help="Sweep serve settings (threads, pool, batching, Paddle CPU options), "
        "check each one's outputs, rank them, print the `paddlehot serve` flags of the best.",
        rich_help_panel="Tuning"),
    slo_p99: Optional[float] = typer.Option(
        None, "--slo-p99", metavar="MS", help="--tune: only settings with p99 <= MS can win.",
        rich_help_panel="Tuning"),
    objective: str = typer.Option(
        "throughput", "--objective", help="--tune: throughput | latency (p99) | memory (peak RSS).",
        rich_help_panel="Tuning"),
    pool_max: Optional[str] = typer.Option(
        None, "--pool-max", help="--tune axis: predictors (and workers) per version: 1,2.",
        rich_help_panel="Tuning"),
    batch_size: Optional[str] = typer.Option(
        None, "--batch-size", help="--tune axis: dynamic batching max batch: 1,4.",
        rich_help_panel="Tuning"),
    batch_delay_ms: Optional[str] = typer.Option(
        None, "--batch-delay-ms", help="--tune axis: batching max delay in ms: 2.",
        rich_help_panel="Tuning"),
    onednn: Optional[str] = typer.Option(
        None, "--onednn", help="--tune axis: oneDNN on,off.", rich_help_panel="Tuning"),
    ir_optim: Optional[str] = typer.Option(
        None, "--ir-optim", help="--tune axis: IR optimisation on (default) or on,off.",
        rich_help_panel="Tuning"),
    memory_optim: Optional[str] = typer.Option(
        None, "--memory-optim", help="--tune axis: memory optimisation off,on.",
        rich_help_panel="Tuning"),
    onednn_cache_capacity: Optional[str] = typer.Option(
        None, "--onednn-cache-capacity",
        help="--tune axis / --shape-memory values: input shapes whose oneDNN kernels are kept "
        "(0 = unbounded).", rich_help_panel="Tuning"),
    write: bool = typer.Option(
        False, "--write", help="--tune: save the winner to REPO/NAME/serving.json (TARGET "
        "REPO:NAME); serve applies it, command-line flags override it.", rich_help_panel="Tuning"),
    shape_memory: bool = typer.Option(
        False, "--shape-memory", help="RSS over --requests (10000) random-shape requests per "
        "oneDNN cache bound, and each bound's fixed-shape throughput (package targets).",
        rich_help_panel="Tuning"),
    primitive_cache: Optional[str] = typer.Option(
        None, "--primitive-cache", help="--shape-memory: oneDNN primitive cache capacities to "
        "compare (default 1024,256: oneDNN's and paddlehot's).", rich_help_panel="Tuning"),
) -> None:
    """Measure tail latency, throughput, errors, CPU and peak RSS, per concurrency level.

    Examples:

      paddlehot bench models/resnet18/1.0.0 -c 1,2,4 --threads 2

      paddlehot bench http://127.0.0.1:8000/mlp -c 8 --duration 20 --json out.json

      paddlehot bench http://127.0.0.1:8000/mlp --swap-every 2 --swap-repo models/

      paddlehot bench pkg/ --compare pkg/plugin.so -c 4

      paddlehot bench grpc://127.0.0.1:8001/mlp --compare http://127.0.0.1:8000/mlp -c 4

      paddlehot bench --calibrate -c 4        # the load generator against a trivial endpoint

      paddlehot bench models:cnn --tune --slo-p99 20 --write   # best serve settings, saved

      paddlehot bench pkg/ --shape-memory --plot rss.png      # bounded memory, dynamic shapes
    """
    from paddlehot_cli.bench.runner import BenchConfig
    from paddlehot_cli.errors import UserError

    if tune or shape_memory:
        _tuning(target, tune, shape_memory, concurrency, duration, requests, warmup, batch,
                threads, input_data, rate, compare, swap_every, calibrate, json_out, plot,
                slo_p99, objective, write, primitive_cache, AxisText(threads, pool_max, batch_size, batch_delay_ms,
                                                    onednn, ir_optim, memory_optim,
                                                    onednn_cache_capacity))
        return
    tuning_only = {"--slo-p99": slo_p99, "--pool-max": pool_max, "--batch-size": batch_size,
                   "--batch-delay-ms": batch_delay_ms, "--onednn": onednn, "--ir-optim": ir_optim,
                   "--memory-optim": memory_optim, "--onednn-cache-capacity": onednn_cache_capacity,
                   "--write": write or None, "--primitive-cache": primitive_cache}
    given = [name for name, value in tuning_only.items() if value is not None]
    if given:
        raise UserError(f"{', '.join(given)} only work with --tune or --shape-memory")
    concurrency = concurrency or "1"
    duration = 10.0 if duration is None else duration
    threads_n = _ints(threads or "1", "--threads")
    if len(threads_n) != 1:
        raise UserError("--threads takes one number (a list is for --tune)")
    threads = threads_n[0]  # type: ignore[assignment]
    cfg = BenchConfig(
        concurrency=_ints(concurrency, "--concurrency"),
        duration=None if requests is not None else duration, requests=requests, warmup=warmup,
        batch=batch, input_data=input_data, rate=rate, swap_every=swap_every,
    )
    cfg.check()
    if calibrate:
        if target or compare or swap_every:
            raise UserError("--calibrate takes no TARGET, --compare or --swap-every")
        with trivial_endpoint() as url:
            _run(url, cfg, threads, timeout, pid, None, None, None, json_out, plot)
        return
    if not target:
        raise UserError("missing TARGET", hint="see paddlehot bench --help")
    _run(target, cfg, threads, timeout, pid, compare, swap_every, swap_repo, json_out, plot)


def _tuning(target, tune, shape_memory, concurrency, duration, requests, warmup, batch,  # type: ignore[no-untyped-def]
            threads, input_data, rate, compare, swap_every, calibrate, json_out, plot, slo_p99,
            objective, write, primitive_cache, axes) -> None:
    from paddlehot_cli.bench.runner import _cpu_count
    from paddlehot_cli.bench.tune import LoadSpec
    from paddlehot_cli.cli import bench_tune
    from paddlehot_cli.errors import UserError

    if tune and shape_memory:
        raise UserError("--tune and --shape-memory are separate runs: pick one")
    if not target:
        raise UserError("missing TARGET", hint="a package dir, a plugin .so or REPO:NAME")
    for flag, value in (("--compare", compare), ("--swap-every", swap_every),
                        ("--calibrate", calibrate or None)):
        if value is not None:
            raise UserError(f"{flag} does not combine with --tune / --shape-memory")
    conc = _ints(concurrency, "--concurrency") if concurrency else None
    if conc is not None and len(conc) != 1:
        raise UserError("--tune measures every setting at one load: give one --concurrency")
    if duration is not None and duration <= 0:
        raise UserError("--duration must be > 0")
    if batch < 1 or warmup < 0 or (rate is not None and rate <= 0):
        raise UserError("--batch must be >= 1, --warmup >= 0, --rate > 0")
    if tune:
        if primitive_cache is not None:
            raise UserError("--primitive-cache belongs to --shape-memory (it is process-wide: "
                            "set ONEDNN_PRIMITIVE_CACHE_CAPACITY for serve)")
        if requests is not None:
            raise UserError("--tune measures each setting for --duration seconds, not -n requests")
        load = LoadSpec(concurrency=conc[0] if conc else 2 * _cpu_count(),
                        duration=2.0 if duration is None else duration,
                        warmup=min(warmup, 0.5), batch=batch, input_data=input_data, rate=rate)
        bench_tune.run_tune(target, axes, load, objective, slo_p99, write, json_out, plot)
        return
    if write or slo_p99 is not None or objective != "throughput":
        raise UserError("--write, --slo-p99 and --objective belong to --tune")
    extra = [n for n, v in (("--pool-max", axes.pool_max), ("--batch-size", axes.batch_size),
                            ("--batch-delay-ms", axes.batch_delay_ms), ("--onednn", axes.onednn),
                            ("--ir-optim", axes.ir_optim), ("--memory-optim", axes.memory_optim))
             if v is not None]
    if extra:
        raise UserError(f"{', '.join(extra)} belong to --tune")
    threads_n = _ints(threads or "1", "--threads")
    if len(threads_n) != 1:
        raise UserError("--shape-memory takes one --threads value")
    if requests is not None and requests < 1:
        raise UserError("--requests must be >= 1")
    load = LoadSpec(concurrency=conc[0] if conc else 1,
                    duration=6.0 if duration is None else duration, warmup=0.5, batch=batch)
    bench_tune.run_shape_memory(target, primitive_cache, axes.onednn_cache_capacity,
                                requests or 10_000, input_data, threads_n[0], load, json_out, plot)


def _run(target, cfg, threads, timeout, pid, compare, swap_every, swap_repo, json_out,  # type: ignore[no-untyped-def]
         plot) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from paddlehot_cli.bench import report as report_mod
    from paddlehot_cli.bench.runner import compare_ratios, run_bench, run_compare
    from paddlehot_cli.bench.targets import open_target
    from paddlehot_cli.errors import UserError

    if compare and swap_every:
        raise UserError("--compare and --swap-every cannot be combined")
    pool = max(cfg.concurrency)
    a = open_target(target, threads=threads, pool_max=pool, timeout=timeout, pid=pid)
    targets = [a]
    try:
        swapper = None
        if swap_every:
            swapper = _swapper_for(target, a, swap_repo)
        b = None
        if compare:
            b = open_target(compare, threads=threads, pool_max=pool, timeout=timeout)
            targets.append(b)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            factory = _progress_factory(progress)
            if b is not None:
                ra, rb = run_compare(a, b, cfg, progress=factory)
                reports = [ra, rb]
            else:
                reports = [run_bench(a, cfg, progress=factory, swapper=swapper)]
    finally:
        for t in targets:
            t.close()
    for index, rep in enumerate(reports):
        render_levels(rep, f"{'AB'[index] + ': ' if len(reports) > 1 else ''}{rep.target}")
    data: dict[str, Any] = reports[0].to_json()
    if len(reports) == 2:
        ratios = compare_ratios(*reports)
        render_ratios(ratios)
        data = {"schema": data["schema"], "compare": {
            "a": reports[0].to_json(), "b": reports[1].to_json(),
            "ratios": [{k: v for k, v in r.items() if k not in ("a", "b")} for r in ratios]}}
    if reports[0].swap is not None:
        render_swap(reports[0].swap)
    if json_out:
        report_mod.write_json(json_out, data)
        console.print(f"wrote {json_out}")
    if plot:
        report_mod.write_plot(plot, reports)
        console.print(f"wrote {plot}")


@contextmanager
def trivial_endpoint():  # type: ignore[no-untyped-def]
    """Start bench.trivial_server in a child process; yield its model URL."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "paddlehot_cli.bench.trivial_server"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}/trivial"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _plugin_finisher(repo: Path, name: str):  # type: ignore[no-untyped-def]
    """When the newest published version carries plugin.so, every version the swapper publishes
    gets its own (built in the staging dir, before the rename), so plugin mode is soaked too."""
    from paddlehot_cli.core.repository import published_versions

    versions = published_versions(repo / name)
    if not versions or not (repo / name / versions[-1] / "plugin.so").is_file():
        return None

    def build(staged: Path) -> None:
        from paddlehot_cli.plugin.build import BuildRequest, build_plugin

        # no verification here: serve warms every version with its validation data anyway
        build_plugin(BuildRequest(package=staged, out=staged / "plugin.so", verify=False))

    return build


def _swapper_for(spec: str, target, swap_repo: Optional[Path]):  # type: ignore[no-untyped-def]
    from paddlehot_cli.bench.swapper import RepoPublisher
    from paddlehot_cli.errors import UserError

    if target.remote:
        if swap_repo is None:
            raise UserError("--swap-every over HTTP or gRPC needs --swap-repo REPO (the "
                            "repository the server watches)")
        model = target.endpoint.model
        return RepoPublisher(swap_repo, model, _plugin_finisher(swap_repo, model))
    if target.kind == "manager":
        return RepoPublisher(target.repo, target.name, _plugin_finisher(target.repo, target.name))
    raise UserError("--swap-every needs REPO:NAME (in-process, through the core Manager) or an "
                    "http:// or grpc:// target", hint="a package dir or a plugin has no versions to swap")
