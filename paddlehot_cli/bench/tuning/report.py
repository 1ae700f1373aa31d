"""`bench --tune` and `bench --shape-memory` reports: the ranked table (80 columns), the serve
command to use, the JSON document and the RSS plot."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paddlehot_cli.bench.tuning.pool_choice import fixed_reference, judge, served_settings
from paddlehot_cli.bench.tuning.settings import Setting, default_setting
from paddlehot_cli.bench.tuning.sweep import Result, TuneRun

SCHEMA = "paddlehot.bench-tune/1"


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def check_cell(result: Result) -> str:
    if result.error:
        return "[red]error[/red]"
    check = result.check or {}
    if not check.get("checked"):
        return "[yellow]?[/yellow]"
    if result.drift:
        return "[red]drift[/red]"  # the error itself is listed under the table
    return "ok"


def results_table(run: TuneRun, winner: Result | None, limit: int | None = None) -> Any:
    """Ranked first (best first), then the unranked: drifting or failing settings. Fits 80
    columns; `*` marks serve's defaults."""
    from rich import box
    from rich.table import Table

    default = default_setting()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), title_justify="left",
                  title=f"{run.target.name} {run.target.version}: {len(run.results)} settings, "
                        f"c={run.load.concurrency}" + (f", rate {run.load.rate:g}/s"
                                                       if run.load.rate else ""))
    for col in ("#", "thr", "pool", "batch", "paddle", "req/s", "p50", "p99", "CPU%", "RSS",
                "check"):
        table.add_column(col, justify="left" if col in ("batch", "paddle", "check") else "right",
                         no_wrap=True)
    ordered = sorted(run.results, key=lambda r: (r.rank is None, r.rank or 0, -r.throughput()))
    for r in ordered[:limit] if limit else ordered:
        s = r.setting
        level = r.level or {}
        lat = level.get("latency_ms") or {}
        style = "bold green" if r is winner else ("dim" if r.rank is None else None)
        p99 = _f(lat.get("p99"))
        if r.meets_slo is False:
            p99 = f"[red]{p99}[/red]"
        table.add_row(
            f"{r.rank or '-'}{'*' if s == default else ''}", str(s.threads), str(s.pool_max),
            str(s.batch_size) + (f"/{s.batch_delay_ms:g}ms" if s.batch_size > 1 else ""),
            paddle_cell(s) if run.target.kind == "package" else "(plugin)",
            _f(level.get("throughput_rps")), _f(lat.get("p50")), p99,
            _f(level.get("cpu_percent"), 0), _f(level.get("peak_rss_mb"), 0), check_cell(r),
            style=style)
    table.caption = "* serve's defaults; latency in ms, RSS in MB (peak of the measuring process)"
    return table


def paddle_cell(s: Setting) -> str:
    parts = [name for name, on in (("dnn", s.onednn), ("ir", s.ir_optim), ("mem", s.memory_optim))
             if on]
    if s.onednn and s.onednn_cache_capacity:
        parts.append(f"c{s.onednn_cache_capacity}")
    return " ".join(parts) or "-"


def final_table(final: dict[str, Any], winner: Result | None) -> Any:
    """The finalists and serve's defaults, re-measured in interleaved rounds."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
                  title_justify="left",
                  title=f"final round: {final['rounds']} interleaved rounds per setting")
    for col in ("setting", "req/s", "p50", "p99", "RSS", "x default"):
        table.add_column(col, justify="left" if col == "setting" else "right", no_wrap=True)
    base = final["default"]["throughput_rps"]
    default = default_setting()
    for row in final["finalists"]:
        setting = Setting(**row["setting"])
        label = row["label"] + (" *" if setting == default else "")
        style = "bold green" if winner is not None and setting == winner.setting else None
        table.add_row(label, _f(row["throughput_rps"]), _f(row["p50_ms"]), _f(row["p99_ms"]),
                      _f(row["peak_rss_mb"], 0),
                      _f(row["throughput_rps"] / base, 3) if base else "-", style=style)
    return table


def breathing_summary(run: TuneRun, winner: Result | None) -> dict[str, Any] | None:
    """What the terminal shows of the pool serve will run: the last breathing round (see
    round_summary) and the pool_min / pool_idle_s chosen (`pool`, pool_choice.choose)."""
    if winner is None:
        return None
    summary = round_summary(run, winner)
    if summary is None and run.pool is None:
        return None
    return {**(summary or {}), "pool": run.pool}


def round_summary(run: TuneRun, winner: Result | None) -> dict[str, Any] | None:
    """The winner as serve runs it (from pool_min, growing) beside the same setting held at its
    max: throughput and p99 ratios, when the pool reached its max, RSS at pool_min vs fixed."""
    b = run.breathing
    if b is None or winner is None or "error" in b:
        return b
    fixed, wl = fixed_reference(run.final, winner), winner.level or {}
    trial = judge(b, fixed)
    return {**{k: b[k] for k in ("pool_min", "pool_max", "pool_idle_s")},
            **{k: trial[k] for k in ("throughput_rps", "p99_ms", "throughput_vs_fixed",
                                     "p99_vs_fixed", "pool_full_after_s")},
            "seconds": b["level"]["duration_s"], "rss_at_min_mb": b["idle_rss_mb"],
            "rss_fixed_mb": wl.get("rss_after_mb"), "timeline": b["level"]["timeline"]}


def breathing_line(summary: dict[str, Any]) -> str:
    """The pool chosen, then the breathing rounds behind it: earlier ones in brief, the last in
    full (the text chart printed under it is the last round's)."""
    pool = summary.get("pool")
    lines = [pool_line(pool)] if pool is not None else []
    lines += [_trial_line(t) for t in (pool or {}).get("trials", [])[:-1]]
    if "error" in summary:
        lines.append("as serve runs it (breathing from pool_min): not measured "
                     f"({summary['error']})")
    elif "throughput_rps" in summary:
        lines.append(_round_line(summary))
    return "\n".join(lines)


def _trial_line(t: dict[str, Any]) -> str:
    if "throughput_vs_fixed" not in t:
        return f"breathing from {t['pool_min']}: {'; '.join(t['failed'])}"
    return (f"breathing from {t['pool_min']}: throughput x{t['throughput_vs_fixed']}, p99 "
            f"x{t['p99_vs_fixed']} of the fixed pool: "
            + ("meets the targets" if t["passed"] else "; ".join(t["failed"])))


def _round_line(summary: dict[str, Any]) -> str:
    full = summary["pool_full_after_s"]
    return (f"as serve runs it, breathing (pool {summary['pool_min']}..{summary['pool_max']}, "
            f"idle {summary['pool_idle_s']:g} s), from {summary['pool_min']} predictor under the "
            f"same load: {summary['throughput_rps']:.1f} req/s (x{summary['throughput_vs_fixed']}"
            f" of the fixed pool), p99 {summary['p99_ms']:.1f} ms (x{summary['p99_vs_fixed']}), "
            + (f"pool full after {full:g} s" if full is not None else
               f"the pool did not reach {summary['pool_max']} within {summary['seconds']:.0f} s")
            + f"; RSS at pool_min {_f(summary['rss_at_min_mb'], 0)} MiB vs "
            f"{_f(summary['rss_fixed_mb'], 0)} MiB fixed")


def pool_line(pool: dict[str, Any]) -> str:
    """pool_min and pool_idle_s chosen, with why (the targets, the creation time measured)."""
    idle, rounds = pool["idle"], pool["breathing_rounds"]
    return (f"pool_min {pool['pool_min']} ({pool['pool_min_reason']}; {rounds} breathing "
            f"round{'s' if rounds != 1 else ''}); pool_idle_s {pool['pool_idle_s']:g} "
            f"({idle['reason']}; rule {idle['rule']})")


def serve_command(run: TuneRun, setting: Setting) -> str:
    repo = str(run.target.model_dir.parent) if run.target.model_dir else "REPO"
    flags = setting.serve_flags(paddle_options=run.target.kind == "package")
    if run.pool is not None and setting.pool_max > 1:
        flags += [f"--pool-min {run.pool['pool_min']}", f"--pool-idle-s {run.pool['pool_idle_s']:g}"]
    if run.target.kind == "plugin":
        flags.append("--prefer plugin")
    return " ".join(["paddlehot serve", repo, *flags])


def tune_json(run: TuneRun, grid: dict[str, Any], objective: str, slo: float | None,
              winner: Result | None, written: Path | None) -> dict[str, Any]:
    from paddlehot_cli.bench.runner import cpu_count

    return {
        "schema": SCHEMA,
        "target": run.target.spec, "kind": run.target.kind, "name": run.target.name,
        "version": run.target.version,
        "machine": {"cpus": cpu_count(), "arch": platform.machine(),
                    "python": platform.python_version()},
        "load": {"concurrency": run.load.concurrency, "duration_s": run.load.duration,
                 "warmup_s": run.load.warmup, "batch": run.load.batch,
                 "input_data": run.load.input_data, "rate": run.load.rate},
        "objective": objective, "slo_p99_ms": slo, "grid": grid,
        "results": [r.to_json() for r in sorted(
            run.results, key=lambda r: (r.rank is None, r.rank or 0))],
        "winner": None if winner is None else {
            "label": winner.setting.label(),
            "settings": served_settings(winner, run.pool).given(),
            "serve_command": serve_command(run, winner.setting)},
        "default": default_setting().to_settings().given(),
        "final": run.final,
        "breathing": round_summary(run, winner),
        "pool": run.pool,
        "written": str(written) if written else None,
    }


def tuned_provenance(run: TuneRun, winner: Result, objective: str,
                     slo: float | None) -> dict[str, Any]:
    """The `tuned` object of serving.json: what measured these settings, on what."""
    import datetime

    from paddlehot_cli.bench.runner import cpu_count

    level = winner.level or {}
    return {
        "by": "paddlehot bench --tune", "version": run.target.version,
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "objective": objective, "slo_p99_ms": slo, "concurrency": run.load.concurrency,
        "throughput_rps": level.get("throughput_rps"),
        "p99_ms": (level.get("latency_ms") or {}).get("p99"),
        "machine": {"cpus": cpu_count(), "arch": platform.machine()},
        "pool": None if run.pool is None else {
            "pool_min_reason": run.pool["pool_min_reason"],
            "breathing_rounds": run.pool["breathing_rounds"],
            "trials": [{k: t.get(k) for k in ("pool_min", "throughput_vs_fixed", "p99_vs_fixed",
                                              "passed")} for t in run.pool["trials"]],
            "creation_s": run.pool["idle"]["creation_s"], "idle_rule": run.pool["idle"]["rule"]},
    }


def shapes_table(summary: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
                  title_justify="left",
                  title=f"RSS over {summary['requests']} random-shape requests "
                        f"(batch 1..{summary['max_batch']}, length 1..{summary['max_len']})")
    for col in ("prim.", "shape", "median", "end MB", "growth", "rand/s", "fixed/s", "CPU ms",
                "ratio"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in summary["variants"]:
        table.add_row(
            str(row["primitive_cache"]), str(row["onednn_cache_capacity"] or "off"),
            _f(row["rss_median_mb"], 0), _f(row["rss_end_mb"], 0), f"{row['growth_mb']:+.0f}",
            _f(row["random_shape_rps"]),
            _f(row["fixed_throughput_rps"]), _f(row["fixed_cpu_ms_per_request"], 3),
            _f(row["fixed_cpu_vs_first"], 3))
    table.caption = ("prim.: oneDNN primitive cache (kernels, process-wide); shape: Paddle's "
                     "per-predictor shape cache; median: RSS over the last 90% of the "
                     "random-shape requests, MB; rand/s: requests/s in the random-shape phase; "
                     "fixed/s, CPU ms: requests/s and CPU per request at one fixed shape; ratio: "
                     "CPU per request vs the first row (steadier than req/s on a shared box)")
    return table


def write_shapes_plot(path: Path, summary: dict[str, Any]) -> None:
    from paddlehot_cli.bench.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for row in summary["variants"]:
        xs, ys = zip(*row["curve"])
        shape = row["onednn_cache_capacity"]
        ax.plot(xs, ys, label=f"oneDNN primitive cache {row['primitive_cache']}"
                + (f", Paddle shape cache {shape}" if shape else ""))
    ax.set(xlabel="random-shape requests", ylabel="RSS (MB)",
           title=f"RSS under dynamic shapes (batch 1..{summary['max_batch']}, "
                 f"length 1..{summary['max_len']})")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def write_tune_plot(path: Path, results: Sequence[Result], winner: Result | None) -> None:
    """Throughput vs p99 per setting: the frontier a p99 target cuts through."""
    from paddlehot_cli.bench.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for r in results:
        if r.level is None or r.p99() is None:
            continue
        color = "red" if r.drift else ("green" if r is winner else "tab:blue")
        ax.scatter([r.p99()], [r.throughput()], color=color, s=18)
        ax.annotate(r.setting.label(), (r.p99(), r.throughput()), fontsize=6)
    ax.set(xlabel="p99 latency (ms)", ylabel="requests/s", title="Settings: throughput vs p99")
    ax.grid(alpha=0.3)
    save_figure(fig, path)
