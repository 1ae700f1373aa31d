"""Fleet figures on this box: push/pull times (the demo MLP and a ~40 MB model), bytes pulled
again for a version whose params did not change, and push -> first answer from the new version
on a `serve --follow` box under 4 clients.

    python -m paddlehot_cli.bench.fleet_rollout                  # starts a local docker-registry
    python -m paddlehot_cli.bench.fleet_rollout --registry HOST:PORT [--insecure] --json out.json
    python -m paddlehot_cli.bench.fleet_rollout --moves-only --moves 10   # label move -> answer

Without --registry it runs Debian's `docker-registry` on 127.0.0.1 with a temporary store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIG_MODEL = '''
import paddle.nn as nn


class Big(nn.Layer):
    """~10.3 M float32 parameters: a ~41 MB model.pdiparams."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(16, 3200), nn.Linear(3200, 3200), nn.Linear(3200, 4)

    def forward(self, x):
        return self.c(nn.functional.relu(self.b(nn.functional.relu(self.a(x)))))
'''


class Load:
    """`clients` threads posting one OIP v2 inference after another; every answer recorded as
    (time, HTTP status or -1, model_version)."""

    def __init__(self, port: int, model: str = "mlp", clients: int = 4, features: int = 16):
        data = [0.1 * (i % 7) for i in range(2 * features)]
        self.body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, features],
                                 "data": data}]}
        self.url = f"http://127.0.0.1:{port}/v2/models/{model}/infer"
        self.stop_event = threading.Event()
        self.results: list[tuple[float, int, str | None]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, name=f"load-{i}", daemon=True)
                        for i in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as c:
            while not self.stop_event.is_set():
                try:
                    r = c.post(self.url, json=self.body)
                    row = (time.time(), r.status_code, r.json().get("model_version"))
                except Exception as exc:  # noqa: BLE001 - a transport failure is a failure
                    row = (time.time(), -1, repr(exc))
                with self.lock:
                    self.results.append(row)

    def first(self, version: str) -> float | None:
        with self.lock:
            return next((t for t, _, v in self.results if v == version), None)

    def first_after(self, version: str, since: float) -> float | None:
        """The first answer from `version` at or after `since` (wall clock)."""
        with self.lock:
            return next((t for t, _, v in self.results if v == version and t >= since), None)

    def last_version(self) -> str | None:
        with self.lock:
            return self.results[-1][2] if self.results else None

    def finish(self) -> list[tuple[float, int, str | None]]:
        self.stop_event.set()
        for t in self.threads:
            t.join(60)
        return self.results


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


def _cli(*args: object) -> None:
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.run([sys.executable, "-m", "paddlehot_cli", *map(str, args)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"paddlehot {' '.join(map(str, args[:2]))}: {proc.stderr[-2000:]}")


def push_pull(ci: Path, box: Path, name: str, version: str, target: str, insecure: bool) -> dict:
    from paddlehot_cli.fleet.pull import pull_version
    from paddlehot_cli.fleet.push import push_version
    from paddlehot_cli.fleet.reference import parse_reference

    pushed = push_version(f"{ci}:{name}@{version}", parse_reference(target), insecure=insecure)
    pulled = pull_version(parse_reference(f"{target}:{version}"), box, insecure=insecure)
    return {"version": version, "push_s": round(pushed.seconds, 3),
            "uploaded_bytes": pushed.uploaded_bytes, "pull_s": round(pulled.seconds, 3),
            "downloaded_bytes": pulled.downloaded_bytes, "reused_bytes": pulled.reused_bytes}


def push_to_first_answer(ci: Path, work: Path, target: str, insecure: bool, interval: float,
                         rounds: int) -> dict:
    from paddlehot_cli.fleet.follower import follower_for
    from paddlehot_cli.fleet.push import push_version
    from paddlehot_cli.fleet.reference import parse_reference
    from paddlehot_cli.serve.runtime import Runtime, ServeConfig

    box = work / "follow-box"
    box.mkdir()
    rt = Runtime(ServeConfig(repo=box, port=0),
                 [follower_for([target], interval, insecure)])
    rt.bind()
    rt.start_core()
    rt.start_in_thread()
    load = Load(rt.port)
    times = []
    try:
        _wait(lambda: load.last_version() == "1.0.0", 60, "traffic on 1.0.0")
        for i in range(rounds):
            version = f"1.{i + 1}.0"
            start = time.time()
            push_version(f"{ci}:mlp@{version}", parse_reference(target), insecure=insecure)
            first = _wait(lambda v=version: load.first(v), 120, f"an answer from {version}")
            times.append(first - start)
        results = load.finish()
    finally:
        load.finish()
        rt.stop_thread()
    return {"interval_s": interval, "clients": 4, "rounds": rounds,
            "push_start_to_first_answer_s": {"mean": round(statistics.mean(times), 3),
                                             "max": round(max(times), 3),
                                             "each": [round(t, 3) for t in times]},
            "requests": len(results), "failed": sum(1 for r in results if r[1] != 200)}


def tag_moves(ci: Path, work: Path, target: str, insecure: bool, interval: float,
              moves: int) -> dict:
    """Move the label `stable` back and forth between 1.1.0 and 1.0.0 `moves` times; each time
    from the registry's answer to the tag PUT (the tag move) to the first answer from the
    version it now points at, on a box following `stable` under 4 clients."""
    from paddlehot_cli.fleet.client import RegistryClient
    from paddlehot_cli.fleet.follower import follower_for
    from paddlehot_cli.fleet.media import OCI_INDEX, OCI_MANIFEST
    from paddlehot_cli.fleet.push import push_version
    from paddlehot_cli.fleet.reference import parse_reference
    from paddlehot_cli.serve.runtime import Runtime, ServeConfig

    ref = parse_reference(target)
    push_version(f"{ci}:mlp@1.0.0", ref, tags=["stable"], insecure=insecure)
    push_version(f"{ci}:mlp@1.1.0", ref, insecure=insecure)
    box = work / "label-box"
    box.mkdir()
    rt = Runtime(ServeConfig(repo=box, port=0),
                 [follower_for([f"{target}:stable"], interval, insecure)])
    rt.bind()
    rt.start_core()
    rt.start_in_thread()
    load = Load(rt.port)
    times = []
    client = RegistryClient(ref.registry, insecure=insecure)
    try:
        _wait(lambda: load.last_version() == "1.0.0", 60, "traffic on 1.0.0 via stable")
        for i in range(moves):
            version = "1.1.0" if i % 2 == 0 else "1.0.0"
            media_type, body, _ = client.get_manifest(ref.repository, version)
            kind = OCI_INDEX if b"manifests" in body else OCI_MANIFEST
            client.put_manifest(ref.repository, "stable", body, media_type or kind)
            moved = time.time()  # the registry has answered: the tag has moved
            first = _wait(lambda v=version, t=moved: load.first_after(v, t), 120,
                          f"an answer from {version} after move {i + 1}")
            times.append(first - moved)
            # the next move at a random point of the follower's poll cycle (a fixed pause
            # would lock the moves to its phase and give the same figure every time)
            time.sleep(0.5 + random.uniform(0, interval))
        results = load.finish()
        from prometheus_client import generate_latest

        metrics_text = generate_latest(rt.metrics.registry).decode()
    finally:
        client.close()
        load.finish()
        rt.stop_thread()
    rollbacks = sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
                    if line.startswith("paddlehot_fleet_rollbacks_total{"))
    return {"interval_s": interval, "clients": 4, "moves": moves,
            "tag_move_to_first_answer_s": {"median": round(statistics.median(times), 3),
                                           "max": round(max(times), 3),
                                           "each": [round(t, 3) for t in times]},
            "rollbacks_counted": rollbacks,
            "requests": len(results), "failed": sum(1 for r in results if r[1] != 200)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paddlehot_cli.bench.fleet_rollout",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--registry", help="HOST:PORT (default: start a local docker-registry)")
    ap.add_argument("--insecure", action="store_true", help="plain HTTP (implied for the local one)")
    ap.add_argument("--interval", type=float, default=1.0, help="--follow-interval of the box")
    ap.add_argument("--rounds", type=int, default=3, help="pushes timed on the following box")
    ap.add_argument("--moves", type=int, default=10,
                    help="label moves (rollout, rollback, ...) timed on a box following it")
    ap.add_argument("--moves-only", action="store_true",
                    help="only the label moves (no push/pull figures, no ~40 MB model)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    for name in ("paddlehot", "watchfiles", "httpx"):  # the figures, not every swap's log line
        logging.getLogger(name).setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="paddlehot-fleet-bench-"))
    local_registry = None
    try:
        if args.registry:
            registry, insecure = args.registry, args.insecure
        else:
            from paddlehot_cli.fleet.local_registry import LocalRegistry

            local_registry = LocalRegistry(work / "registry")
            local_registry.start()
            registry, insecure = local_registry.host, True
        ci, box = work / "ci", work / "box"
        box.mkdir(parents=True)
        print("exporting the demo MLP (4 versions) and a ~40 MB model ...", file=sys.stderr)
        for i in range(max(args.rounds, 1) + 1):
            _cli("export", "demo:mlp", "--repo", ci, "--version", f"1.{i}.0", "--seed", i)
        base = f"oci://{registry}/bench"
        if args.moves_only:
            report = {"registry": registry, "machine": {"cpus": os.cpu_count()},
                      "label": tag_moves(ci, work, f"oci://{registry}/labelled/mlp", insecure,
                                         args.interval, args.moves)}
            return _emit(report, args.json)
        (work / "big_model.py").write_text(BIG_MODEL)
        _cli("export", f"{work / 'big_model.py'}:Big", "--input", "x:float32:[-1,16]",
             "--name", "big", "--repo", ci, "--version", "1.0.0", "--no-validate")
        from paddlehot_cli.core.publish import publish_copy

        publish_copy(ci / "big" / "1.0.0", ci, "1.0.1")  # same params, new manifest
        report = {
            "registry": registry, "machine": {"cpus": os.cpu_count()},
            "mlp": push_pull(ci, box, "mlp", "1.0.0", f"oci://{registry}/once/mlp", insecure),
            "big": push_pull(ci, box, "big", "1.0.0", f"{base}/big", insecure),
            "big_unchanged_params": push_pull(ci, box, "big", "1.0.1", f"{base}/big", insecure),
        }
        print("timing push -> first answer on a following box under 4 clients ...", file=sys.stderr)
        from paddlehot_cli.fleet.push import push_version
        from paddlehot_cli.fleet.reference import parse_reference

        push_version(f"{ci}:mlp@1.0.0", parse_reference(f"{base}/mlp"), insecure=insecure)
        report["follow"] = push_to_first_answer(ci, work, f"{base}/mlp", insecure,
                                                args.interval, args.rounds)
        if args.moves:
            report["label"] = tag_moves(ci, work, f"oci://{registry}/labelled/mlp", insecure,
                                        args.interval, args.moves)
    finally:
        if local_registry is not None:
            local_registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return _emit(report, args.json)


def _emit(report: dict, path: Path | None) -> int:
    text = json.dumps(report, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
