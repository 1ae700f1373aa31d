"""`paddlehot bench TARGET --tune` and `--shape-memory`: run the sweep or the memory study with a
progress bar, render the ranked table and the serve flags, write JSON / serving.json / a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paddlehot_cli.cli.render import console, out


@dataclass
class AxisText:
    """The --tune axis options as typed (None: the default grid's axis)."""

    threads: str | None = None
    pool_max: str | None = None
    batch_size: str | None = None
    batch_delay_ms: str | None = None
    onednn: str | None = None
    ir_optim: str | None = None
    memory_optim: str | None = None
    onednn_cache_capacity: str | None = None


_AXES = (("threads", "--threads", int), ("pool_max", "--pool-max", int),
         ("batch_size", "--batch-size", int), ("batch_delay_ms", "--batch-delay-ms", float),
         ("onednn", "--onednn", bool), ("ir_optim", "--ir-optim", bool),
         ("memory_optim", "--memory-optim", bool),
         ("onednn_cache_capacity", "--onednn-cache-capacity", int))


def build_grid(axes: AxisText, kind: str, model_format: str = "pir") -> Any:
    from paddlehot_cli.bench.runner import _cpu_count
    from paddlehot_cli.bench.tune import default_grid, parse_axis
    from paddlehot_cli.core.paddle_runtime import has_onednn
    from paddlehot_cli.errors import UserError

    onednn = has_onednn() if kind == "package" else False
    grid = default_grid(_cpu_count(), kind, onednn, model_format)
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
             write: bool, json_out: Path | None, plot: Path | None, finalists: int = 3) -> None:
    from paddlehot_cli.bench import tune
    from paddlehot_cli.bench.report import write_json
    from paddlehot_cli.bench.tune_report import (
        final_table,
        results_table,
        serve_command,
        tune_json,
        tuned_provenance,
        write_tune_plot,
    )
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
    grid = build_grid(axes, target.kind, target.model_format)
    settings = grid.settings()
    console.print(f"tuning {target.name} {target.version} ({target.kind}): {len(settings)} "
                  f"settings x {load.duration:g} s at c={load.concurrency}"
                  + (f", rate {load.rate:g}/s" if load.rate else "") + f", then the best "
                  f"{finalists} and the defaults again, interleaved")
    with _progress() as progress:
        task = progress.add_task("starting", total=len(settings) + 1)

        def on_progress(label: str, n: int) -> None:
            if n == 0:
                progress.advance(task)
            progress.update(task, description=label)

        run = tune.sweep(target, settings, load, on_progress)
        winner = tune.rank(run.results, objective, slo)
        if winner is not None:
            best = [r for r in run.results if r.rank and r.rank <= finalists
                    and r.meets_slo is not False]
            final = tune.final_round(target, best, load, progress=on_progress)
            if "error" in final:
                run.final = final
            else:
                run.final = tune.pick_final(final, objective, slo)
                chosen = run.final.pop("_winner")
                winner = next((r for r in run.results if r.setting == chosen), None)
        progress.advance(task)
    out.print(results_table(run, winner))
    _say_problems(run)
    written = None
    if run.final and "error" not in run.final:
        out.print(final_table(run.final, winner))
    elif run.final:
        out.print(f"[yellow]final round failed ({run.final['error']}): the sweep's best "
                  "is recommended[/yellow]", soft_wrap=True)
    if winner is None:
        usable = [r.p99() for r in run.results if r.usable and r.p99() is not None]
        message = (f"no setting meets p99 <= {slo:g} ms (lowest p99: {min(usable):.1f} ms)"
                   if slo is not None and usable else "no setting ran cleanly")
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


def _say_problems(run: Any) -> None:
    """Failures and drift below the table, one line per distinct message."""
    seen: dict[str, list[str]] = {}
    for r in run.results:
        if r.error:
            seen.setdefault(f"[red]error[/red]: {r.error}", []).append(r.setting.label())
        elif r.drift:
            seen.setdefault(f"[red]drift[/red] (never recommended): {r.check.get('problem')}",
                            []).append(r.setting.label())
    for message, labels in seen.items():
        who = labels[0] if len(labels) == 1 else f"{len(labels)} settings ({labels[0]}, ...)"
        out.print(f"  {who}: {message}", soft_wrap=True, highlight=False)
    if any(r.check and not r.check.get("checked") for r in run.results):
        out.print("  [yellow]?[/yellow] outputs not checked: no validation.npz beside the target")


def tune_default() -> Any:
    from paddlehot_cli.bench.tune import default_setting

    return default_setting()


def _say_winner(run: Any, winner: Any, objective: str, slo: float | None) -> None:
    goal = f"best {objective}" + (f" with p99 <= {slo:g} ms" if slo is not None else "")
    f = run.final
    if f and "error" not in f and winner.setting == tune_default():
        others = [row for row in f["finalists"] if row["label"] != winner.setting.label()]
        best = max(others, key=lambda row: row["throughput_rps"], default=None)
        out.print(f"[bold green]{goal}[/bold green]: serve's defaults ({winner.setting.label()})"
                  + (f"; the next best, {best['label']}, gave x"
                     f"{best['throughput_rps'] / f['default']['throughput_rps']:.3f} throughput "
                     f"in the same {f['rounds']} rounds" if best and f['default']['throughput_rps']
                     else ""), soft_wrap=True)
    elif f and "error" not in f:
        t, d = f["tuned"], f["default"]
        out.print(f"[bold green]{goal}[/bold green]: {winner.setting.label()}; vs serve's "
                  f"defaults in the same {f['rounds']} rounds: throughput x{f['throughput_ratio']} "
                  f"({t['throughput_rps']:.1f} vs {d['throughput_rps']:.1f} req/s), p99 "
                  f"x{f['p99_ratio']} ({t['p99_ms']:.1f} vs {d['p99_ms']:.1f} ms)", soft_wrap=True)
    else:
        level = winner.level
        out.print(f"[bold green]{goal}[/bold green]: {winner.setting.label()}  "
                  f"{level['throughput_rps']:.1f} req/s, p99 {level['latency_ms']['p99']:.1f} ms",
                  soft_wrap=True)


def run_shape_memory(target_spec: str, primitive_text: str | None, shape_text: str | None,
                     requests: int, input_data: str, threads: int, load: Any,
                     json_out: Path | None, plot: Path | None) -> None:
    from paddlehot_cli.bench import shape_memory, shapes, tune
    from paddlehot_cli.bench.report import write_json
    from paddlehot_cli.bench.tune_report import SHAPES_SCHEMA, shapes_table, write_shapes_plot
    from paddlehot_cli.core.paddle_runtime import (
        DEFAULT_ONEDNN_CACHE_CAPACITY,
        DEFAULT_ONEDNN_PRIMITIVE_CACHE,
        has_onednn,
    )
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
    out.print("[dim]growth: RSS at the end of the random-shape phase - at its start (JSON: "
              "late_growth_mb, the second half alone); fixed-shape load: interleaved rounds, "
              f"c={load.concurrency}; one run on this box[/dim]")
    if json_out:
        write_json(json_out, {"schema": SHAPES_SCHEMA, "target": target_spec, **summary})
        console.print(f"wrote {json_out}")
    if plot:
        write_shapes_plot(plot, summary)
        console.print(f"wrote {plot}")
