"""A child process that measures serve settings for `bench --tune` and `bench --shape-memory`.

Some Paddle options only take effect when a predictor is created, and RSS is a per-process
figure, so each Paddle-option combination is measured in its own process. The parent sends one
JSON command per line on stdin; the worker answers one JSON line per command on the protocol
stream (its original stdout; fd 1 is pointed at stderr so that whatever Paddle prints cannot
corrupt the protocol). `{"progress": n}` lines may precede an answer.

Commands: open (load a setting: servable + batcher, check outputs), measure (a load level),
shapes (N random-shape requests, RSS every K), close, quit.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.bench.targets import Call, ThisProcess
from paddlehot_cli.errors import UserError, short_error


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _runtime_in_process(path: Path) -> None:
    """Paddle (a package) or the plugin's C API in this process before an open's clock starts:
    a predictor serve regrows never pays for either, so load_s is the predictors' own cost."""
    if path.suffix == ".so":
        from paddlehot_cli.core.plugin_loader import ensure_c_api
        from paddlehot_cli.plugin.pdcapi import build_pdcapi

        ensure_c_api(path, build_pdcapi)
    else:
        from paddlehot_cli.core.paddle_runtime import import_paddle

        import_paddle()


class BatcherTarget(ThisProcess):
    """One setting as serve runs it: a servable behind the core Batcher, without HTTP."""

    def __init__(self, servable: Any, batcher: Any, label: str):
        self.servable, self.batcher, self.label = servable, batcher, label
        self.kind = servable.kind
        self.inputs = servable.manifest.inputs

    def new_caller(self) -> tuple[Call, Callable[[], None]]:
        batcher, version = self.batcher, self.servable.manifest.version

        def call(feeds: Mapping[str, np.ndarray]) -> str | None:
            box: dict[str, Any] = {}
            done = threading.Event()
            batcher.submit(feeds, lambda out, exc: (box.update(exc=exc), done.set()))
            done.wait()
            if box["exc"] is not None:
                raise box["exc"]
            return version

        return call, lambda: None

    def pool_size(self) -> int | None:
        return self.servable.pool_size


class Worker:
    def __init__(self, emit: Callable[[dict], None]):
        self.emit = emit
        self.target: BatcherTarget | None = None
        self.path: Path | None = None

    def open(self, req: dict) -> dict:
        from paddlehot_cli.core import load
        from paddlehot_cli.core.batcher import Batcher
        from paddlehot_cli.core.paddle_runtime import PaddleOptions
        from paddlehot_cli.plugin.pdcapi import build_pdcapi

        self.close({})
        s = req["setting"]
        self.path = Path(req["path"])
        _runtime_in_process(self.path)
        start = time.perf_counter()
        options = PaddleOptions(onednn=s["onednn"], ir_optim=s["ir_optim"],
                                memory_optim=s["memory_optim"],
                                onednn_cache_capacity=s["onednn_cache_capacity"])
        # the pool at its max from the start: each setting is measured in its steady state;
        # `pool_min` given: the pool breathes from there, as serve runs it (breathing_round)
        servable = load(self.path, threads=s["threads"],
                        pool_min=req.get("pool_min", s["pool_max"]), pool_max=s["pool_max"],
                        idle_s=req.get("pool_idle_s", 30.0),
                        paddle_options=options, c_api=build_pdcapi)
        specs = servable.manifest.inputs
        batchable = all(spec.shape and spec.shape[0] == -1 for spec in specs)
        batcher = Batcher(servable.run_checked, [spec.name for spec in specs], batchable=batchable,
                          max_batch=s["batch_size"], max_delay_s=s["batch_delay_ms"] / 1000.0,
                          workers=s["pool_max"], name="paddlehot-tune-infer")
        self.target = BatcherTarget(servable, batcher, req.get("label", str(self.path)))
        load_s = time.perf_counter() - start
        # predictors made by this open: load_s / predictors is what one more costs (the idle
        # timeout --tune writes is derived from it: pool_choice.idle_timeout)
        predictors = servable.pool_size
        check = self._check_outputs(Path(req.get("validation_dir") or self.path))
        return {"load_s": round(load_s, 3), "predictors": predictors, "check": check,
                "rss_mb": round(_rss_mb(), 1)}

    def _check_outputs(self, package_dir: Path) -> dict:
        """Every validation case at once through the batcher (so batching is part of what is
        checked), against the package's recorded outputs and tolerances."""
        from paddlehot_cli.core.signature import check_inputs
        from paddlehot_cli.core.validation_data import load_cases
        from paddlehot_cli.export.validate import compare_outputs

        assert self.target is not None
        manifest = self.target.servable.manifest
        cases = load_cases(package_dir)
        if not cases:
            return {"checked": False, "passed": None, "cases": 0, "max_abs_err": None,
                    "problem": "no validation.npz: outputs not checked"}
        validation = manifest.validation
        atol, rtol = float(validation.get("atol", 1e-4)), float(validation.get("rtol", 1e-3))
        names = [spec.name for spec in manifest.outputs]
        boxes = [({}, threading.Event()) for _ in cases]
        for (inputs, _), (box, ev) in zip(cases, boxes):
            self.target.batcher.submit(
                check_inputs(manifest.inputs, inputs),
                lambda out, exc, box=box, ev=ev: (box.update(out=out, exc=exc), ev.set()))
        checks, problems = [], []
        for index, ((_, expected), (box, ev)) in enumerate(zip(cases, boxes)):
            ev.wait()
            if box["exc"] is not None:
                problems.append(f"case {index}: {short_error(box['exc'])}")
                continue
            got = dict(zip(names, box["out"]))
            common = [n for n in names if n in expected]
            checks += compare_outputs([expected[n] for n in common], [got[n] for n in common],
                                      common, atol, rtol, index, "")
        problems += [f"case {c.case}: '{c.name}' {c.problem} (max abs err {c.max_abs_err:.3g})"
                     for c in checks if not c.passed]
        errs = [c.max_abs_err for c in checks if c.max_abs_err == c.max_abs_err]
        return {"checked": True, "passed": not problems, "cases": len(cases),
                "max_abs_err": max(errs) if errs else None, "atol": atol, "rtol": rtol,
                "problem": "; ".join(problems)[:300] or None}

    def measure(self, req: dict) -> dict:
        from paddlehot_cli.bench.data import make_feeds
        from paddlehot_cli.bench.runner import BenchConfig, run_level, warm_up

        if self.target is None:
            raise UserError("measure before open")
        cfg = BenchConfig(concurrency=[req["concurrency"]], duration=req["duration"],
                          warmup=req.get("warmup", 0.0), batch=req.get("batch", 1),
                          input_data=req.get("input_data", "random"), rate=req.get("rate"))
        feeds = make_feeds(self.target.inputs, cfg.batch, cfg.input_data)
        warm_up(self.target, feeds, cfg)
        pending = [0]

        def tick(n: int) -> None:
            pending[0] += n
            if pending[0] >= 20:
                self.emit({"progress": pending[0]})
                pending[0] = 0

        level = run_level(self.target, feeds, req["concurrency"], cfg, tick)
        data = level.to_json()
        data["rss_after_mb"] = round(_rss_mb(), 1)
        pool = self.target.servable.pool
        data["pool"] = pool.describe() if pool is not None else None  # grown, reclaimed, ...
        return {"level": data}

    def shapes(self, req: dict) -> dict:
        """`n` random-shape requests one after another; RSS after every `every` of them."""
        from paddlehot_cli.bench.shapes import RandomShapeFeeds

        if self.target is None:
            raise UserError("shapes before open")
        feeds = RandomShapeFeeds(self.target.inputs, req["max_batch"], req["max_len"],
                                 seed=req.get("seed", 0))
        call, _ = self.target.new_caller()
        curve = [(0, round(_rss_mb(), 1))]
        start = time.perf_counter()
        for n in range(req["n"]):
            call(feeds[n])
            if (n + 1) % req["every"] == 0 or n + 1 == req["n"]:
                curve.append((n + 1, round(_rss_mb(), 1)))
                self.emit({"progress": req["every"]})
        return {"curve": curve, "seconds": round(time.perf_counter() - start, 2)}

    def close(self, req: dict) -> dict:
        if self.target is not None:
            self.target.batcher.stop()
            self.target.servable.close()
            self.target = None
            try:  # give freed heap back so the next setting's RSS starts low
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass
        return {}


COMMANDS = ("open", "measure", "shapes", "close")


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else written to stdout (Paddle, C++) lands on stderr
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def emit(doc: dict) -> None:
        with lock:
            proto.write(json.dumps(doc) + "\n")

    worker = Worker(emit)
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req.get("cmd")
        if cmd == "quit":
            worker.close({})
            return
        try:
            if cmd not in COMMANDS:
                raise UserError(f"unknown command {cmd!r}")
            reply = getattr(worker, cmd)(req)
            reply["ok"] = True
        except UserError as exc:
            reply = {"ok": False, "error": exc.message}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which marks the setting
            reply = {"ok": False, "error": short_error(exc)}
        emit(reply)


if __name__ == "__main__":
    main()
