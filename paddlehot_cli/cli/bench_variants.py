"""Renders `paddlehot bench REPO:NAME --variants` (bench/variants.py)."""

from __future__ import annotations

import json
from pathlib import Path

from paddlehot_cli.cli.render import console
from paddlehot_cli.errors import UserError


def run_variants(target: str | None, requests: int | None, batch: int,
                 threads: str | None, input_data: str, json_out: Path | None) -> None:
    from rich.table import Table

    from paddlehot_cli.bench.variants import bench_variants

    if not target or ":" not in target:
        raise UserError("--variants needs a REPO:NAME[@VERSION] target")
    try:
        n_threads = int(threads or 1)
    except ValueError:
        raise UserError(f"--variants takes one --threads value, not '{threads}'") from None
    rows = bench_variants(target, requests or 300, batch, n_threads, input_data)
    table = Table(title=f"{target}: precision variants (1 client, batch {batch}, "
                  f"{n_threads} thread(s))", title_justify="left")
    for col in ("variant", "p50 ms", "p99 ms", "infer/s", "speed vs fp32 (p50)", "peak RSS MB",
                "max err random", "max err user", "argmax agrees"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    base = rows[0].p50_ms or None  # p50: a shared box's noise moves the mean, not the median

    def num(v: float | None, fmt: str = "{:.3g}") -> str:
        return "-" if v is None else fmt.format(v)

    for r in rows:
        if r.refused is not None:
            table.add_row(r.key, f"[yellow]refused: {r.refused}[/yellow]", *[""] * 7)
            continue
        table.add_row(r.key, f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.throughput:.0f}",
                      num(base / r.p50_ms if base and r.p50_ms else None, "{:.2f}x"),
                      f"{r.peak_rss_mb:.0f}", num(r.max_err_random), num(r.max_err_user),
                      num(r.argmax_agreement, "{:.0%}"))
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps({"target": target, "variants": [r.to_json() for r in rows]},
                                       indent=2) + "\n")
        console.print(f"wrote {json_out}")
