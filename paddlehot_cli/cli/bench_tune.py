"""`paddlehot bench TARGET --tune` and `--shape-memory`: run the sweep or the memory study with a
progress bar, render the ranked table and the serve flags, write JSON / serving.json / a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from paddlehot_cli.cli.render import console, out


@dataclass
class AxisText:
    """The --tune axis options as typed (None: the default grid's axis)."""

    threads: Optional[str] = None
    pool_max: Optional[str] = None
    batch_size: Optional[str] = None
    batch_delay_ms: Optional[str] = None
    onednn: Optional[str] = None
    ir_optim: Optional[str] = None
    memory_optim: Optional[str] = None
    onednn_cache_capacity: Optional[str] = None


_AXES = (("threads", "--threads", int), ("pool_max", "--pool-max", int),
         ("batch_size", "--batch-size", int), ("batch_delay_ms", "--batch-delay-ms", float),
         ("onednn", "--onednn", bool), ("ir_optim", "--ir-optim", bool),
         ("memory_optim", "--memory-optim", bool),
         ("onednn_cache_capacity", "--onednn-cache-capacity", int))


def build_grid(axes: AxisText, kind: str) -> Any:
    from paddlehot_cli.bench.runner import _cpu_count
    from paddlehot_cli.bench.tune import default_grid, parse_axis
    from paddlehot_cli.core.paddle_runtime import has_onednn
    from paddlehot_cli.errors import UserError

    onednn = has_onednn() if kind == "package" else False
    grid = default_grid(_cpu_count(), kind, onednn)
    for name, option, typ in _AXES:
        text = getattr(axes, name)
        if text is None:
            continue
        if kind == "plugin" and name in ("onednn", "ir_optim", "memory_optim",
                                         "onednn_cache_capacity"):
            raise UserError(f"{option} applies to packages: a plugin builds its own Paddle config "
                            "through the C API")
        values = parse_axis(text, option, typ)
        if name == "onednn" and True in values and not onednn:
            raise UserError("this paddle wheel has no oneDNN", hint="use --onednn off")
        setattr(grid, name, values)
    return grid


def _progress():  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def run_tune(target_spec: str, axes: AxisText, load: Any, objective: str, slo: float | None,
             write: bool, json_out: Path | None, plot: Path | None, confirm_rounds: int = 3) -> None:
    from paddlehot_cli.bench import tune
    from paddlehot_cli.bench.report import write_json
    from paddlehot_cli.bench.tune_report import (results_table, serve_command, tune_json,
                                                 tuned_provenance, write_tune_plot)
    from paddlehot_cli.core.serving_settings import write_settings
    from paddlehot_cli.errors import UserError

    if objective not in tune.OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(tune.OBJECTIVES)}, not '{objective}'")
    if slo is not None and slo <= 0:
        raise UserError("--slo-p99 must be > 0 milliseconds")
    target = tune.resolve_target(target_spec)
    if write and target.model_dir is None:
        raise UserError("--write saves REPO/NAME/serving.json: give the target as REPO:NAME",
                        hint="serving settings belong to a model, not to one version or a file")
    grid = build_grid(axes, target.kind)
    settings = grid.settings()
    console.print(f"tuning {target.name} {target.version} ({target.kind}): {len(settings)} "
                  f"settings x {load.duration:g} s at c={load.concurrency}"
                  + (f", rate {load.rate:g}/s" if load.rate else ""))
    with _progress() as progress:
        task = progress.add_task("starting", total=len(settings) + (1 if confirm_rounds else 0))

        def on_progress(label: str, n: int) -> None:
            if n == 0:
                progress.advance(task)
            progress.update(task, description=label)

        run = tune.sweep(target, settings, load, on_progress)
        winner = tune.rank(run.results, objective, slo)
        if winner is not None and confirm_rounds and winner.setting != tune.default_setting():
            run.confirm = tune.confirm(target, winner.setting, tune.default_setting(), load,
                                       confirm_rounds, on_progress)
        progress.advance(task)
    out.print(results_table(run, winner))
    for r in run.results:
        if r.error:
            out.print(f"  [red]error[/red] {r.setting.label()}: {r.error}", soft_wrap=True)
        elif r.drift:
            out.print(f"  [red]drift[/red] {r.setting.label()}: {r.check.get('problem')} "  # type: ignore[union-attr]
                      "(never recommended)", soft_wrap=True)
    if any(r.check and not r.check.get("checked") for r in run.results):
        out.print("  [yellow]?[/yellow] outputs not checked: no validation.npz beside the target")
    written = None
    if winner is None:
        best = min((r.p99() for r in run.results if r.usable and r.p99() is not None), default=None)
        message = (f"no setting meets p99 <= {slo:g} ms (lowest p99: {best:.1f} ms)"
                   if slo is not None and best is not None else "no setting ran cleanly")
        out.print(f"[red]{message}[/red]", soft_wrap=True)
    else:
        _say_winner(run, winner, objective, slo)
        if write:
            assert target.model_dir is not None
            written = write_settings(target.model_dir, winner.setting.to_settings(),
                                     tuned_provenance(run, winner, objective, slo))
            out.print(f"wrote {written} (serve applies it to {target.name}; flags override it)")
        out.print(serve_command(run, winner.setting), soft_wrap=True, highlight=False)
    out.print("[dim]one run on this box; on a shared machine rankings within a few % are noise[/dim]")
    if json_out:
        write_json(json_out, tune_json(run, asdict(grid), objective, slo, winner, written))
        console.print(f"wrote {json_out}")
    if plot:
        write_tune_plot(plot, run.results, winner)
        console.print(f"wrote {plot}")
    if winner is None:
        raise UserError("no setting to recommend", exit_code=1)


def _say_winner(run: Any, winner: Any, objective: str, slo: float | None) -> None:
    level = winner.level
    goal = f"best {objective}" + (f" with p99 <= {slo:g} ms" if slo is not None else "")
    out.print(f"[bold green]{goal}[/bold green]: {winner.setting.label()}  "
              f"{level['throughput_rps']:.1f} req/s, p99 {level['latency_ms']['p99']:.1f} ms",
              soft_wrap=True)
    c = run.confirm
    if c and "error" not in c:
        out.print(f"tuned vs default, {c['rounds']} interleaved rounds: throughput "
                  f"x{c['throughput_ratio']} ({c['tuned']['throughput_rps']:.1f} vs "
                  f"{c['default']['throughput_rps']:.1f} req/s), p99 x{c['p99_ratio']} "
                  f"({c['tuned']['p99_ms']:.1f} vs {c['default']['p99_ms']:.1f} ms)", soft_wrap=True)
    elif c:
        out.print(f"[yellow]confirmation run failed: {c['error']}[/yellow]")
    else:
        out.print("serve's defaults are already the best setting")


def run_shape_memory(target_spec: str, primitive_text: Optional[str], shape_text: Optional[str],
                     requests: int, input_data: str, threads: int, load: Any,
                     json_out: Path | None, plot: Path | None) -> None:
    from paddlehot_cli.bench import shape_memory, shapes, tune
    from paddlehot_cli.bench.report import write_json
    from paddlehot_cli.bench.tune_report import SHAPES_SCHEMA, shapes_table, write_shapes_plot
    from paddlehot_cli.core.paddle_runtime import (DEFAULT_ONEDNN_CACHE_CAPACITY,
                                                   DEFAULT_ONEDNN_PRIMITIVE_CACHE, has_onednn)
    from paddlehot_cli.errors import UserError

    limits = shapes.parse_spec(input_data if input_data != "random" else shapes.PREFIX)
    if limits is None:
        raise UserError("--shape-memory draws its own inputs: --input-data random-shapes[:B,L]")
    primitive = (tune.parse_axis(primitive_text, "--primitive-cache", int) if primitive_text
                 else [shape_memory.ONEDNN_DEFAULT_PRIMITIVE_CACHE, DEFAULT_ONEDNN_PRIMITIVE_CACHE])
    shape = (tune.parse_axis(shape_text, "--onednn-cache-capacity", int) if shape_text
             else [DEFAULT_ONEDNN_CACHE_CAPACITY])
    target = tune.resolve_target(target_spec)
    if not has_onednn():
        raise UserError("this paddle wheel has no oneDNN: there is no oneDNN cache to bound")
    every = max(1, requests // 100)
    with _progress() as progress:
        task = progress.add_task("starting", total=None)

        def on_progress(label: str, n: int) -> None:
            progress.update(task, description=label, advance=n)

        summary = shape_memory.run_shape_memory(
            target, primitive, shape, requests, every, limits[0], limits[1], threads, load,
            progress=on_progress)
    out.print(shapes_table(summary))
    out.print("[dim]growth: RSS at the end of the random-shape phase - at its start; 2nd half: "
              "end - halfway; fixed req/s: interleaved rounds at one fixed shape, "
              f"c={load.concurrency}; one run on this box[/dim]")
    if json_out:
        write_json(json_out, {"schema": SHAPES_SCHEMA, "target": target_spec, **summary})
        console.print(f"wrote {json_out}")
    if plot:
        write_shapes_plot(plot, summary)
        console.print(f"wrote {plot}")
