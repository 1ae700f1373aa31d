"""`paddlehot bench TARGET --tune` and `--shape-memory`: run the sweep or the memory study with a
progress bar, render the ranked table and the serve flags, write JSON / serving.json / a plot."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paddlehot_cli.cli.render import console, out

if TYPE_CHECKING:
    from paddlehot_cli.bench.tuning.search import TunePlan
    from paddlehot_cli.bench.tuning.shape_memory import ShapeMemoryPlan


def _progress():  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def run_tune(plan: TunePlan, json_out: Path | None, plot: Path | None) -> None:
    from paddlehot_cli.bench.report import write_json
    from paddlehot_cli.bench.text_chart import timeline_chart
    from paddlehot_cli.bench.tuning import search
    from paddlehot_cli.bench.tuning.report import (
        breathing_line,
        breathing_summary,
        final_table,
        results_table,
        serve_command,
        tune_json,
        write_tune_plot,
    )
    from paddlehot_cli.errors import UserError

    target, load, settings = plan.target, plan.load, plan.settings
    objective, slo = plan.objective, plan.slo_p99_ms
    console.print(f"tuning {target.name} {target.version} ({target.kind}): {len(settings)} "
                  f"settings x {load.duration:g} s at c={load.concurrency}"
                  + (f", rate {load.rate:g}/s" if load.rate else "") + f", then the best "
                  f"{plan.finalists} and the defaults again, interleaved")
    with _progress() as progress:
        task = progress.add_task("starting", total=len(settings) + 1)

        def on_progress(label: str, n: int) -> None:
            if n == 0:
                progress.advance(task)
            progress.update(task, description=label)

        outcome = search.search(plan, on_progress)
        progress.advance(task)
    run, winner = outcome.run, outcome.winner
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
        if plan.write:
            written = search.save_winner(plan, outcome)
            out.print(f"wrote {written} (serve applies it to {target.name}; flags override it)")
        out.print(serve_command(run, winner.setting), soft_wrap=True, highlight=False)
        breathing = breathing_summary(run, winner)
        if breathing is not None:
            out.print(breathing_line(breathing), soft_wrap=True, highlight=False)
            for row in timeline_chart([(p["t_s"], p["rss_mb"], p["pool_size"])
                                       for p in breathing.get("timeline", [])]):
                out.print("  " + row, highlight=False, soft_wrap=True)
    out.print("[dim]one run on this box; on a shared machine rankings within a few % are noise[/dim]")
    if json_out:
        write_json(json_out, tune_json(run, asdict(plan.grid), objective, slo, winner, written))
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


def _say_winner(run: Any, winner: Any, objective: str, slo: float | None) -> None:
    from paddlehot_cli.bench.tuning.settings import default_setting

    goal = f"best {objective}" + (f" with p99 <= {slo:g} ms" if slo is not None else "")
    f = run.final
    if f and "error" not in f and winner.setting == default_setting():
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


def run_shape_memory(plan: ShapeMemoryPlan, target_spec: str, json_out: Path | None,
                     plot: Path | None) -> None:
    from paddlehot_cli.bench.report import write_json
    from paddlehot_cli.bench.tuning import shape_memory
    from paddlehot_cli.bench.tuning.report import shapes_table, write_shapes_plot

    load = plan.load
    with _progress() as progress:
        task = progress.add_task("starting", total=None)

        def on_progress(label: str, n: int) -> None:
            progress.update(task, description=label, advance=n)

        summary = shape_memory.run_plan(plan, on_progress)
    out.print(shapes_table(summary))
    out.print("[dim]growth: RSS at the end of the random-shape phase - at its start (JSON: "
              "late_growth_mb, the second half alone); fixed-shape load: interleaved rounds, "
              f"c={load.concurrency}; one run on this box[/dim]")
    if json_out:
        write_json(json_out, {"schema": shape_memory.SCHEMA, "target": target_spec, **summary})
        console.print(f"wrote {json_out}")
    if plot:
        write_shapes_plot(plot, summary)
        console.print(f"wrote {plot}")
