"""CPU and RSS of the process under test: /proc sampling for a local pid, or a Prometheus
/metrics endpoint (process_cpu_seconds_total, process_resident_memory_bytes) for a server."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_reader(pid: int) -> Callable[[], tuple[float, float] | None]:
    """Return a function giving (cpu_seconds, rss_bytes) of `pid`, or None once it is gone."""
    page = os.sysconf("SC_PAGE_SIZE")

    def read() -> tuple[float, float] | None:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/statm") as fh:
                rss_pages = int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            return None
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        return cpu, rss_pages * page

    return read


def metrics_reader(fetch_text: Callable[[], str]) -> Callable[[], tuple[float, float] | None]:
    def read() -> tuple[float, float] | None:
        try:
            text = fetch_text()
        except Exception:
            return None
        cpu = rss = None
        for line in text.splitlines():
            if line.startswith("process_cpu_seconds_total "):
                cpu = float(line.split()[1])
            elif line.startswith("process_resident_memory_bytes "):
                rss = float(line.split()[1])
        if cpu is None or rss is None:
            return None
        return cpu, rss

    return read


class ResourceSampler:
    """Samples a reader every `interval` seconds in a named thread; keeps CPU delta and peak RSS."""

    def __init__(self, reader: Callable[[], tuple[float, float] | None], interval: float = 0.05,
                 pool: Callable[[], int | None] | None = None):
        self._reader = reader
        self._pool = pool  # predictors in the pool under test, sampled with the RSS
        self.pool_trace: list[int | None] = []  # one per rss_trace entry
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss = 0.0
        self.rss_trace: list[tuple[float, float]] = []
        self._cpu0: float | None = None
        self._cpu1: float | None = None
        self._t0 = self._t1 = 0.0

    def __enter__(self) -> "ResourceSampler":
        first = self._reader()
        self._t0 = time.perf_counter()
        if first is not None:
            self._cpu0, self.peak_rss = first
        self._thread = threading.Thread(target=self._run, name="bench-resources", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        value = self._reader()
        if value is not None:
            self._cpu1 = value[0]
            self.peak_rss = max(self.peak_rss, value[1])
            self.rss_trace.append((time.perf_counter(), value[1]))
            self.pool_trace.append(self._pool() if self._pool is not None else None)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self._t1 = time.perf_counter()

    @property
    def cpu_percent(self) -> float | None:
        if self._cpu0 is None or self._cpu1 is None or self._t1 <= self._t0:
            return None
        return round(100.0 * (self._cpu1 - self._cpu0) / (self._t1 - self._t0), 1)

    def timeline(self, t0: float, every: float = 1.0) -> list[tuple[float, float, int | None]]:
        """(seconds since t0, RSS MB, pool size) about every `every` seconds."""
        out: list[tuple[float, float, int | None]] = []
        for (t, rss), pool in zip(self.rss_trace, self.pool_trace):
            if not out or t - t0 - out[-1][0] >= every:
                out.append((round(t - t0, 2), round(rss / 2**20, 1), pool))
        return out

    @property
    def peak_rss_mb(self) -> float | None:
        return round(self.peak_rss / 2**20, 1) if self.peak_rss else None


def _is_plugin_file(path: str) -> bool:
    return "paddlehot-plugin" in path or (path.endswith(".so") and "plugin" in Path(path).name)


def process_facts(pid: int) -> dict[str, int] | None:
    """What a leak would grow in process `pid`: open fds (sockets counted apart), and distinct
    mapped plugin files
    (plugin .so files and the loader's private copies, /memfd:paddlehot-plugin:...). None when
    /proc/PID is not readable (another host, or the process is gone)."""
    try:
        links = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:  # closed meanwhile
                pass
        with open(f"/proc/{pid}/maps") as fh:
            files = {line.split(maxsplit=5)[5].strip() for line in fh
                     if len(line.split(maxsplit=5)) == 6}
    except OSError:
        return None
    sockets = sum(link.startswith("socket:") for link in links)
    # sockets apart: clients' keep-alive connections come and go, a leak is in the rest
    return {"open_fds": len(links) - sockets, "sockets": sockets,
            "plugin_mappings": sum(_is_plugin_file(f) for f in files),
            "mapped_files": len(files)}
