"""The demo story, end to end on the built-in model, in a temporary directory:

export v1 -> build-plugin -> abi-check -> serve in the background -> requests -> publish v2 under
load -> the swap is seen with zero failed requests -> a short bench -> summary -> clean shutdown.
Each step prints the `paddlehot ...` command that does the same by hand, run in the temporary
directory (the repository is models/ there, as in every example of the docs).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from paddlehot_cli.errors import UserError

MODEL = "mlp"
READY_TIMEOUT = 90.0
SWAP_TIMEOUT = 60.0


@dataclass
class Ui:
    """How the story shows itself; the CLI passes its rich consoles in (demo never imports
    cli: it is a library a notebook or another front end can run too)."""

    console: Any  # stderr: rules, progress
    out: Any  # stdout: the summary table
    step: Callable[[str], AbstractContextManager[None]]


@dataclass
class StoryResult:
    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, result: str) -> None:
        self.rows.append((what, result))


def by_hand(console: Any, *commands: str) -> None:
    """The commands that do a step by hand, in the demo's directory."""
    for command in commands:
        console.print(f"  [dim]$ {command}[/dim]", soft_wrap=True, highlight=False)


def try_next(workdir: Path, kept: bool) -> list[str]:
    """What to run after the demo: its repository again (when kept), the tuner, your own model."""
    lines = ([f"cd {workdir} && paddlehot serve models/ --prefer plugin   # the demo's repository"]
             if kept else ["paddlehot demo --keep   # keep models/ and serve.log to look at"])
    return [*lines,
            "paddlehot bench models:mlp --tune   # the best serve settings for this box",
            "your own model in six commands: README, \"Your own model\"; "
            "each step's reference: docs/demo.md",
            "every verb: paddlehot VERB --help"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def background_server(
    repo: Path, port: int, log: Path, *options: str
) -> Iterator[subprocess.Popen]:
    """`paddlehot serve REPO` as a child process; SIGTERM on the way out (it must exit 0)."""
    env = dict(os.environ, GLOG_minloglevel="2")
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paddlehot_cli", "serve", str(repo), "--port", str(port),
             *options],
            stdout=fh, stderr=subprocess.STDOUT, env=env,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(client, proc: subprocess.Popen, log: Path) -> None:  # type: ignore[no-untyped-def]
    from paddlehot_cli.bench.oip_client import RequestFailed

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-400:].strip().splitlines()
            raise UserError(f"the server exited ({proc.returncode}): {tail[-1] if tail else ''}")
        try:
            status, _, _ = client._request("GET", "/v2/health/ready")
            if status == 200:
                return
        except RequestFailed:
            pass
        time.sleep(0.2)
    raise UserError(f"the server was not ready within {READY_TIMEOUT:.0f} s (log: {log})")


def _swap_under_load(client_factory, publish, x: np.ndarray) -> tuple[int, int, float]:  # type: ignore[no-untyped-def]
    """Two clients send requests while `publish` runs; return (ok, failed, publish->first v2 s)."""
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    first_new: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        client = client_factory()
        try:
            while not stop.is_set():
                try:
                    _, version = client.infer({"x": x})
                    with lock:
                        counts["ok"] += 1
                        if version == "1.1.0" and not first_new:
                            first_new.append(time.perf_counter())
                except Exception:
                    with lock:
                        counts["failed"] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, name=f"demo-client-{i}") for i in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        published_at = time.perf_counter()
        publish()
        deadline = time.monotonic() + SWAP_TIMEOUT
        while not first_new and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # keep the load on while v1 drains and is released
    finally:
        stop.set()
        for t in threads:
            t.join()
    if not first_new:
        raise UserError(f"version 1.1.0 did not reach traffic within {SWAP_TIMEOUT:.0f} s")
    return counts["ok"], counts["failed"], first_new[0] - published_at


def run_story(ui: Ui, keep: bool = False) -> None:
    from rich.table import Table

    from paddlehot_cli.abi.runner import run_abi_check
    from paddlehot_cli.bench.oip_client import Endpoint, OipClient
    from paddlehot_cli.bench.runner import BenchConfig, run_bench
    from paddlehot_cli.bench.targets import HttpTarget
    from paddlehot_cli.export.pipeline import ExportRequest, export_package
    from paddlehot_cli.plugin.build import BuildRequest, build_plugin

    console, out, step = ui.console, ui.out, ui.step
    start = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="paddlehot-demo-"))
    repo = workdir / "models"
    story = StoryResult()
    console.print(f"[bold]paddlehot demo[/bold]: the whole story in {workdir} (the repository is "
                  "models/ there; each step shows the command that does it by hand)")
    try:
        console.rule("1. export demo:mlp 1.0.0 (validated against eager)")
        by_hand(console, "paddlehot export demo:mlp --repo models/ --version 1.0.0")
        v1 = export_package(ExportRequest(source="demo:mlp", name=MODEL, version="1.0.0",
                                          repo=repo, seed=0), step=step)
        val = v1.manifest["validation"]
        story.add("export 1.0.0", f"{val['cases']} cases, max abs err {val['max_abs_err']:.1e}")

        console.rule("2. build-plugin (C ABI, model embedded)")
        by_hand(console, f"paddlehot build-plugin models/{MODEL}/1.0.0 "
                f"-o models/{MODEL}/1.0.0/plugin.so")
        plugin = build_plugin(BuildRequest(package=v1.path, out=v1.path / "plugin.so"), step=step)
        story.add("build-plugin", f"{plugin.path.name}: {plugin.path.stat().st_size // 1024} KiB, "
                  f"c_api={plugin.c_api}")

        console.rule("3. abi-check (the CI gate)")
        by_hand(console, f"paddlehot abi-check models/{MODEL}/1.0.0/plugin.so")
        with step("Checking ELF, exports, imports, hardening, manifest"):
            report = run_abi_check(str(plugin.path))
        failed = [f.id for f in report.findings if f.status == "fail"]
        if report.exit_code:
            raise UserError(f"abi-check failed: {', '.join(failed)}")
        story.add("abi-check", f"{report.count('pass')} checks passed, {len(failed)} failed")

        console.rule("4. serve the repository in the background (plugins preferred)")
        port = _free_port()
        log = workdir / "serve.log"
        by_hand(console, f"paddlehot serve models/ --prefer plugin --port {port} &",
                f"curl -s localhost:{port}/v2/models/{MODEL}")
        with background_server(repo, port, log, "--prefer", "plugin") as server:
            endpoint = Endpoint("127.0.0.1", port, MODEL)
            client = OipClient(endpoint, timeout=10.0)
            with step(f"Starting `paddlehot serve` on 127.0.0.1:{port}"):
                _wait_ready(client, server, log)
            x = np.random.default_rng(7).standard_normal((1, 16)).astype("float32")
            with step("Sending requests (binary tensors)"):
                outputs, version = client.infer({"x": x})
            story.add("serve", f"ready; {MODEL} {version} answers through its plugin")

            console.rule("5. publish 1.1.0 (package + plugin) while two clients send requests")
            staged = f"models/{MODEL}/.1.1.0.building"
            by_hand(console, f"paddlehot export demo:mlp --version 1.1.0 --seed 1 -o {staged}",
                    f"paddlehot build-plugin {staged} -o {staged}/plugin.so",
                    f"mv {staged} models/{MODEL}/1.1.0   # one rename: serve sees it whole")

            def publish() -> None:
                # Build the whole version in a hidden dir (serve ignores hidden dirs), then one
                # rename makes it appear complete: package and plugin together.
                building = repo / MODEL / ".1.1.0.building"
                export_package(ExportRequest(source="demo:mlp", name=MODEL, version="1.1.0",
                                             out_dir=building, seed=1))
                build_plugin(BuildRequest(package=building, out=building / "plugin.so"))
                os.rename(building, repo / MODEL / "1.1.0")

            with step("Publishing 1.1.0 under load and waiting for the swap"):
                ok, failed_n, delay = _swap_under_load(
                    lambda: OipClient(endpoint, timeout=10.0), publish, x)
            if failed_n:
                raise UserError(f"{failed_n} requests failed during the swap")
            _, version2 = client.infer({"x": x})
            story.add("hot swap", f"{ok} requests, {failed_n} failed, now serving {version2}")
            story.add("swap delay", f"publish -> first {version2} response {delay:.2f} s")

            console.rule("6. a short bench over HTTP")
            by_hand(console, f"paddlehot bench http://127.0.0.1:{port}/{MODEL} -c 2 "
                    "--duration 3 --warmup 0.5")
            target = HttpTarget(f"http://127.0.0.1:{port}/{MODEL}", timeout=10.0)
            with step("2 clients, 3 s"):
                bench = run_bench(target, BenchConfig(concurrency=[2], duration=3.0, warmup=0.5))
            level = bench.levels[0]
            lat = level.latency_ms()
            story.add("bench", f"{level.throughput:.0f} req/s, p50 {lat['p50']:.2f} ms, "
                      f"p99 {lat['p99']:.2f} ms, {level.errors} errors")
            client.close()
            console.rule("7. shut down")
            by_hand(console, f"kill -TERM {server.pid}   # drains in-flight requests, exits 0")
            with step("SIGTERM: drain and exit"):
                server.send_signal(signal.SIGTERM)
                code = server.wait(timeout=30)
            if code != 0:
                raise UserError(f"the server exited with {code} after SIGTERM (log: {log})")
            story.add("shutdown", "drained, exit 0")

        table = Table(title="paddlehot demo", title_justify="left")
        table.add_column("step", no_wrap=True)
        table.add_column("result", no_wrap=True)  # every row fits 80 columns whole
        for what, result in story.rows:
            table.add_row(what, result)
        out.print(table)
        out.print(f"done in {time.perf_counter() - start:.1f} s")
        out.print("[bold]try next[/bold]:")
        for line in try_next(workdir, keep):
            out.print(f"  {line}", soft_wrap=True, highlight=False)
    finally:
        if keep:
            console.print(f"kept {workdir}: the repository models/ (1.0.0 and 1.1.0, each with "
                          "its plugin.so) and serve.log", soft_wrap=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
