"""`paddlehot bench`: latency, throughput, swap impact and memory of a package, a plugin, a
repository model or any Open Inference Protocol v2 server. Parses the options; bench/request.py
checks them, bench/session.py and bench/tuning/ run them, bench_render.py and bench_tune.py
render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import console

if TYPE_CHECKING:
    from paddlehot_cli.bench.request import RunPlan

@user_errors
def bench(
    target: Optional[str] = typer.Argument(
        None, help="A package dir, a plugin .so, REPO:NAME (served in-process by the core Manager, "
        "swaps included), REPO:NAME@VERSION, http://HOST:PORT/NAME "
        "(any Open Inference Protocol v2 server: paddlehot, Triton, KServe) or grpc://HOST:PORT/NAME "
        "(the same over KServe v2 / Triton gRPC).",
    ),
    concurrency: Optional[str] = typer.Option(
        None, "--concurrency", "-c", metavar="N[,N...]",
        help="Concurrent clients; a comma list is a sweep: 1,2,4,8 (default 1; --tune: 2 x cores)."),
    duration: Optional[float] = typer.Option(
        None, "--duration", "-d", metavar="SECONDS", help="Seconds per level (default 10; --tune: 2 per setting)."),
    requests: Optional[int] = typer.Option(
        None, "--requests", "-n", metavar="N", help="Requests per level (instead of --duration)."),
    warmup: float = typer.Option(1.0, "--warmup", metavar="SECONDS", help="Seconds of unmeasured warm-up."),
    batch: Optional[int] = typer.Option(
        None, "--batch", metavar="N", help="Rows in every request (its batch dimension).  "
        "[default: 1]"),
    batch_old: Optional[int] = typer.Option(None, "-b", hidden=True),
    threads: Optional[str] = typer.Option(
        None, "--threads", metavar="N[,N...]", help="Intra-op threads (in-process targets; default 1). With --tune a "
        "comma list to sweep (default 1..cores)."),
    input_data: str = typer.Option(
        "random", "--input-data", metavar="random|FILE.npz|random-shapes[:B,L]",
        help="random, FILE.npz with one array per input, or random-shapes[:MAX_BATCH,MAX_LEN]: "
        "new sizes for the dynamic dims on every request (default 8,512)."),
    rate: Optional[float] = typer.Option(
        None, "--rate", metavar="REQ/S", help="Open loop at R requests/s (default: closed loop)."),
    swap_every: Optional[float] = typer.Option(
        None, "--swap-every", metavar="SECONDS", help="Publish a new version every S seconds during the run."),
    swap_repo: Optional[Path] = typer.Option(
        None, "--swap-repo", metavar="REPO", help="Repository the server watches (for --swap-every over HTTP)."),
    compare: Optional[str] = typer.Option(
        None, "--compare", metavar="TARGET", help="A second target, run interleaved with TARGET (A B A B ...)."),
    timeout: float = typer.Option(30.0, "--timeout", metavar="SECONDS", help="Seconds before a request fails."),
    pid: Optional[int] = typer.Option(
        None, "--pid", metavar="PID", help="PID of the server under test, for CPU and RSS over HTTP or gRPC."),
    calibrate: bool = typer.Option(
        False, "--calibrate",
        help="Bench a trivial endpoint instead of TARGET: what the load generator itself can "
        "drive and costs per request."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write the report as JSON."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", metavar="FILE.png", help="Write a PNG: latency/throughput; with --tune throughput vs p99 per "
        "setting; with --shape-memory the RSS curves."),
    tune: bool = typer.Option(
        False, "--tune", help="Sweep serve settings (threads, pool, batching, Paddle CPU options), "
        "check each one's outputs, rank them, print the `paddlehot serve` flags of the best.",
        rich_help_panel="Tuning"),
    slo_p99: Optional[float] = typer.Option(
        None, "--slo-p99", metavar="MS", help="--tune: only settings with p99 <= MS can win.",
        rich_help_panel="Tuning"),
    objective: str = typer.Option(
        "throughput", "--objective", metavar="throughput|latency|memory",
        help="--tune: what the winner is best at: throughput, latency (p99) or memory (peak RSS).",
        rich_help_panel="Tuning"),
    pool_max: Optional[str] = typer.Option(
        None, "--pool-max", metavar="N[,N...]", help="--tune axis: predictors (and workers) per version: 1,2.",
        rich_help_panel="Tuning"),
    batch_size: Optional[str] = typer.Option(
        None, "--batch-size", metavar="N[,N...]", help="--tune axis: dynamic batching max batch: 1,4.",
        rich_help_panel="Tuning"),
    batch_delay_ms: Optional[str] = typer.Option(
        None, "--batch-delay-ms", metavar="MS[,MS...]", help="--tune axis: batching max delay in ms: 2.",
        rich_help_panel="Tuning"),
    onednn: Optional[str] = typer.Option(
        None, "--onednn", metavar="on|off[,...]", help="--tune axis: oneDNN on,off.", rich_help_panel="Tuning"),
    ir_optim: Optional[str] = typer.Option(
        None, "--ir-optim", metavar="on|off[,...]", help="--tune axis: IR optimisation on (default) or on,off.",
        rich_help_panel="Tuning"),
    memory_optim: Optional[str] = typer.Option(
        None, "--memory-optim", metavar="on|off[,...]", help="--tune axis: memory optimisation off,on.",
        rich_help_panel="Tuning"),
    onednn_cache_capacity: Optional[str] = typer.Option(
        None, "--onednn-cache-capacity", metavar="N[,N...]",
        help="--tune axis / --shape-memory values: Paddle's per-predictor oneDNN cache of input "
        "shapes, in shapes; 0 = off (Paddle's default: kernels stay only in oneDNN's "
        "process-wide primitive cache).", rich_help_panel="Tuning"),
    write: bool = typer.Option(
        False, "--write", help="--tune: save the winner, with the pool_min and idle timeout chosen "
        "for it, to REPO/NAME/serving.json (TARGET REPO:NAME); serve applies it, command-line "
        "flags override it.", rich_help_panel="Tuning"),
    shape_memory: bool = typer.Option(
        False, "--shape-memory", help="RSS over --requests (10000) random-shape requests per "
        "oneDNN cache bound, and each bound's fixed-shape throughput (package targets).",
        rich_help_panel="Tuning"),
    primitive_cache: Optional[str] = typer.Option(
        None, "--primitive-cache", metavar="N[,N...]", help="--shape-memory: oneDNN primitive cache capacities to "
        "compare (default 1024,256: oneDNN's and paddlehot's).", rich_help_panel="Tuning"),
    variants: bool = typer.Option(
        False, "--variants", help="REPO:NAME[@VERSION]: fp32 and its precision variants side by "
        "side (latency, throughput, peak RSS, max error vs fp32; docs/variants.md)."),
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
    from paddlehot_cli.bench.request import BenchRequest, RunPlan, check
    from paddlehot_cli.bench.tuning.search import TunePlan
    from paddlehot_cli.bench.tuning.settings import AxisText
    from paddlehot_cli.cli import bench_tune
    from paddlehot_cli.cli.deprecated import renamed

    batch = renamed(batch, batch_old, "--batch", "-b")
    if variants:
        from paddlehot_cli.cli.bench_variants import run_variants

        return run_variants(target, requests, 1 if batch is None else batch, threads, input_data,
                            json_out)
    plan = check(BenchRequest(
        target=target, concurrency=concurrency, duration=duration, requests=requests,
        warmup=warmup, batch=1 if batch is None else batch, input_data=input_data, rate=rate, swap_every=swap_every,
        swap_repo=swap_repo, compare=compare, timeout=timeout, pid=pid, calibrate=calibrate,
        tune=tune, shape_memory=shape_memory, slo_p99=slo_p99, objective=objective, write=write,
        primitive_cache=primitive_cache,
        axes=AxisText(threads, pool_max, batch_size, batch_delay_ms, onednn, ir_optim,
                      memory_optim, onednn_cache_capacity)))
    if isinstance(plan, RunPlan):
        _run(plan, json_out, plot)
    elif isinstance(plan, TunePlan):
        bench_tune.run_tune(plan, json_out, plot)
    else:
        bench_tune.run_shape_memory(plan, target, json_out, plot)


def _run(plan: RunPlan, json_out: Optional[Path], plot: Optional[Path]) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from paddlehot_cli.bench import report as report_mod
    from paddlehot_cli.bench import session
    from paddlehot_cli.cli.bench_render import (
        progress_factory,
        render_levels,
        render_ratios,
        render_swap,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        outcome = session.run(plan, progress_factory(progress))
    reports = outcome.reports
    for index, rep in enumerate(reports):
        render_levels(rep, f"{'AB'[index] + ': ' if len(reports) > 1 else ''}{rep.target}")
    if outcome.ratios:
        render_ratios(outcome.ratios)
    if reports[0].swap is not None:
        render_swap(reports[0].swap)
    if json_out:
        report_mod.write_json(json_out, outcome.to_json())
        console.print(f"wrote {json_out}")
    if plot:
        report_mod.write_plot(plot, reports)
        console.print(f"wrote {plot}")
