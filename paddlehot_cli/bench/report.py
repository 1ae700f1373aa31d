"""Bench reports as JSON files and PNG plots (matplotlib from the optional `plot` extra)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from paddlehot_cli.bench.runner import BenchReport
from paddlehot_cli.errors import UserError


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or one clear error without the `plot` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib", hint="pip install 'paddlehot[plot]'") from None
    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Save atomically (temp file + rename) and release the figure."""
    plt = pyplot()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_plot(path: Path, reports: Sequence[BenchReport]) -> None:
    plt = pyplot()
    fig, (ax_time, ax_tp) = plt.subplots(1, 2, figsize=(13, 4.8))
    for report in reports:
        samples = [s for level in report.levels for s in level.samples if s.ok]
        ax_time.scatter([s.start for s in samples], [s.latency * 1000 for s in samples], s=2,
                        alpha=0.4, label=report.target)
        ax_tp.plot([lv.concurrency for lv in report.levels],
                   [lv.throughput for lv in report.levels], marker="o", label=report.target)
        for index, event in enumerate(report.swap_events):
            ax_time.axvline(event.at, color="red", linewidth=0.8, alpha=0.6,
                            label="swap" if index == 0 else None)
    ax_time.set(xlabel="time since start (s)", ylabel="latency (ms)", title="Latency over time")
    ax_time.set_yscale("log")
    ax_tp.set(xlabel="concurrency", ylabel="requests/s", title="Throughput vs concurrency")
    for ax in (ax_time, ax_tp):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
