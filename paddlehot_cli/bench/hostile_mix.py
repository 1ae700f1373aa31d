"""The hostile-client benchmark (issue 22's targets): `paddlehot serve` on the demo MLP, 4 honest
clients on keep-alive connections from 127.0.0.1 opened first, then a mix of every attack class
(serve/…/hostile_requests.py) plus fuzzed requests from one other source address, as fast as
one client on this box can send them, for --minutes.

    python -m paddlehot_cli.bench.hostile_mix --minutes 10 [--json out.json]

Measured, on the server process: honest requests failed, /v2/health/live latency (p50, p99,
max) during the attack, fds and RSS (baseline, peak, end), whether the version stayed loaded on
every check (every 2 s), and the replies each attack class got.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from paddlehot_cli.bench.hostile_requests import attacks, fuzz_case, infer_body, seeds

ATTACKERS = 96  # connections the attacker keeps busy at once (beyond the per-client cap)


def _proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _KeepAlive:
    """One honest client: a keep-alive connection from 127.0.0.1, one request at a time."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def call(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        status = int(self.file.readline().split()[1])
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, self.file.read(length)


def _honest(port: int, stop: threading.Event, out: Counter, errors: list[str],
            rate: float) -> None:
    body = infer_body()
    raw = (b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    client = _KeepAlive(port)
    while not stop.wait(1.0 / rate if rate > 0 else 0):
        try:
            status, reply = client.call(raw)
            ok = status == 200 and len(json.loads(reply)["outputs"][0]["data"]) == 4
        except Exception as exc:  # noqa: BLE001 - counted: the target is 0
            ok = False
            errors.append(repr(exc)[:200])
            client = _KeepAlive(port)
        out["ok" if ok else "failed"] += 1


def _prober(port: int, stop: threading.Event, latencies: list[float]) -> None:
    client = _KeepAlive(port)
    raw = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    while not stop.wait(0.05):
        t0 = time.perf_counter()
        try:
            client.call(raw)
        except OSError:
            client = _KeepAlive(port)
            continue
        latencies.append((time.perf_counter() - t0) * 1000)


def _watch(pid: int, port: int, stop: threading.Event, seen: dict) -> None:
    client, last_index = _KeepAlive(port), 0.0
    while not stop.wait(0.5):
        seen["fds_peak"] = max(seen["fds_peak"], _proc_fds(pid))
        seen["rss_peak"] = max(seen["rss_peak"], _proc_rss_mb(pid))
        if time.monotonic() - last_index > 2:
            last_index = time.monotonic()
            try:
                _, reply = client.call(b"POST /v2/repository/index HTTP/1.1\r\nHost: 127.0.0.1"
                                       b"\r\nContent-Length: 0\r\n\r\n")
                ready = any(r["state"] == "READY" for r in json.loads(reply))
            except (OSError, ValueError):
                client, ready = _KeepAlive(port), False
            seen["checks"] += 1
            seen["unloaded_checks"] += 0 if ready else 1


async def _attack_one(port: int, source: str, name: str, payload: bytes, silent: bool,
                      replies: dict[str, Counter]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(source, 0))
    except OSError:
        replies[name]["connect-refused"] += 1
        return
    try:
        if payload:
            writer.write(payload)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(256), 60)
        status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/1.1 ") else (
            "closed" if not data else "other")
        replies[name][status] += 1
        while await asyncio.wait_for(reader.read(65536), 60):
            pass
    except (asyncio.TimeoutError, TimeoutError):
        replies[name]["held-open"] += 1
    except OSError:
        replies[name]["reset"] += 1
    finally:
        writer.close()


async def _attacker(port: int, source: str, seconds: float, max_body: int,
                    replies: dict[str, Counter]) -> int:
    rng = random.Random(22)
    classes, corpus = attacks(max_body), seeds()
    stop, sent, running = time.monotonic() + seconds, 0, set()
    while time.monotonic() < stop:
        while len(running) < ATTACKERS:
            if rng.random() < 0.3:
                name, payload, silent = "fuzz", fuzz_case(rng, corpus), False
            else:
                name, payload, silent = classes[sent % len(classes)]
            running.add(asyncio.ensure_future(
                _attack_one(port, source, name, payload, silent, replies)))
            sent += 1
        done, running = await asyncio.wait(running, timeout=0.5,
                                           return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*running)
    return sent


def _serve(repo: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "paddlehot_cli", "serve", str(repo),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if _KeepAlive(port).call(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"serve did not become ready: {log.read_text()[-2000:]}")


def _role(name: str, port: int, seconds: float, attacker: str, rate: float = 0) -> dict:
    """One side of the benchmark in its own process, so that no side's Python (GIL) skews
    another's timings: 'honest' (4 clients), 'probe' (health latency), 'attack'."""
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    if name == "honest":
        out, errors = Counter(), []
        threads = [threading.Thread(target=_honest, args=(port, stop, out, errors, rate))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"ok": out["ok"], "failed": out["failed"], "errors": errors[:5]}
    if name == "probe" or attacker == "none":
        latencies: list[float] = []
        _prober(port, stop, latencies)
        return {"latencies": latencies}
    replies = {n: Counter() for n, _, _ in attacks(64 << 20)} | {"fuzz": Counter()}
    sent = asyncio.run(_attacker(port, attacker, seconds, 64 << 20, replies))
    return {"sent": sent, "replies": {k: dict(v) for k, v in replies.items()}}


def _start_role(name: str, port: int, seconds: float, attacker: str,
                rate: float = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "paddlehot_cli.bench.hostile_mix", "--role",
                             name, "--port", str(port), "--seconds", str(seconds),
                             "--attacker", attacker, "--honest-rate", str(rate)],
                            stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=900)
    return json.loads(out.strip().splitlines()[-1])


def run(minutes: float, attacker: str, rate: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="paddlehot-hostile-"))
    repo = work / "repo"
    subprocess.run([sys.executable, "-m", "paddlehot_cli", "export", "demo:mlp", "--repo",
                    str(repo), "--version", "1.0.0"], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = work / "serve.log"
    proc = _serve(repo, port, log)
    seconds = minutes * 60
    try:
        honest = _start_role("honest", port, seconds + 70, attacker, rate)  # first, kept after
        time.sleep(3)  # warm: the honest connections and the server's lazy fds exist
        base_fds, base_rss = _proc_fds(proc.pid), _proc_rss_mb(proc.pid)
        seen = {"fds_peak": base_fds, "rss_peak": base_rss, "checks": 0, "unloaded_checks": 0}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(proc.pid, port, stop, seen), daemon=True)
        watcher.start()
        probe = _start_role("probe", port, seconds, attacker)
        attack = _start_role("attack", port, seconds, attacker)
        attacked = _result(attack)
        attacked = attacked if "sent" in attacked else {"sent": 0, "replies": {}}
        during = _result(probe)["latencies"]
        time.sleep(45)  # the server's deadlines (body 30 s, keep-alive 5 s, linger 2 s)
        stop.set()
        watcher.join(30)
        calm = _result(honest)
        end_fds = _proc_fds(proc.pid)
        q = statistics.quantiles(during, n=100) if len(during) > 1 else [0.0] * 99
        return {
            "minutes": round(seconds / 60, 2), "attack_requests": attacked["sent"],
            "attack_rate_per_s": round(attacked["sent"] / seconds, 1),
            "honest_rate_per_client": rate,
            "honest_ok": calm["ok"], "honest_failed": calm["failed"],
            "honest_errors": calm["errors"],
            "health_ms": {"p50": round(q[49], 2), "p99": round(q[98], 2),
                          "max": round(max(during or [0]), 2), "n": len(during)},
            "fds": {"baseline": base_fds, "peak": seen["fds_peak"], "end": end_fds},
            "rss_mb": {"baseline": round(base_rss, 1), "peak": round(seen["rss_peak"], 1),
                       "end": round(_proc_rss_mb(proc.pid), 1)},
            "index_checks": seen["checks"],
            "checks_without_a_loaded_version": seen["unloaded_checks"],
            "replies": attacked["replies"],
            "serve_log": str(log),
            "serve_log_errors": sum(" ERROR " in line for line in log.read_text().splitlines()),
        }
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m paddlehot_cli.bench.hostile_mix",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--attacker", default="127.0.0.2",
                    help="the attacker's source address ('none': the same run without attack)")
    ap.add_argument("--honest-rate", type=float, default=50.0,
                    help="requests per second of each honest client (0: as fast as it can)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--role", choices=["honest", "probe", "attack"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:
        print(json.dumps(_role(args.role, args.port, args.seconds, args.attacker,
                               args.honest_rate)))
        return
    result = run(args.minutes, args.attacker, args.honest_rate)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
