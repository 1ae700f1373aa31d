"""Shared rendering for verbs: a stderr console and timed steps with a spinner."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while a step runs, then a check mark (or a cross) and its duration."""
    start = time.perf_counter()
    try:
        with console.status(f"{title} ..."):
            yield
    except BaseException:
        console.print(f"[red]✗[/red] {title} ({time.perf_counter() - start:.1f} s)")
        raise
    console.print(f"[green]✓[/green] {title} ({time.perf_counter() - start:.1f} s)")


@contextmanager
def transfer(title: str) -> Iterator[tuple]:
    """A byte progress bar for uploads and downloads: yields (set_total, advance)."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(title, total=None)
        yield (lambda total: bar.update(task, total=total),
               lambda n: bar.advance(task, n))


def human_bytes(n: float) -> str:
    """A size people read at a glance: '44 KiB', '3.2 MiB', '1.1 GiB' (never '0.0 MB')."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
