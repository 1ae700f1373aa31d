"""`bench --tune`: measure a grid of serve settings on this box and pick the best one.

Axes: intra-op threads, predictors per version (pool_max, also the batcher's worker count),
dynamic batching (batch size, max delay) and the Paddle CPU options the wheel has (oneDNN, IR
optimisation, memory optimisation, oneDNN cache capacity). Every setting is loaded as serve
loads it (servable + core Batcher), its outputs are checked against the package's validation
outputs with the package's tolerances, then one load level is measured. Settings that share
Paddle options share a child process (options apply at predictor creation; RSS is per process);
each child measures its settings in turn, releasing the previous one first.

After the sweep the winner and serve's defaults are measured again, interleaved (A B A B), so
the "tuned vs default" ratio does not depend on which minute of a shared box each ran in.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from paddlehot_cli.core.paddle_runtime import PaddleOptions
from paddlehot_cli.core.serving_settings import ServingSettings, builtin_defaults
from paddlehot_cli.errors import UserError

OBJECTIVES = ("throughput", "latency", "memory")


@dataclass(frozen=True)
class Setting:
    threads: int = 1
    pool_max: int = 1
    batch_size: int = 1
    batch_delay_ms: float = 0.0
    onednn: bool = True
    ir_optim: bool = True
    memory_optim: bool = False
    onednn_cache_capacity: int = PaddleOptions().onednn_cache_capacity

    def paddle_key(self) -> tuple:
        return (self.onednn, self.ir_optim, self.memory_optim, self.onednn_cache_capacity)

    def to_settings(self) -> ServingSettings:
        return ServingSettings(**asdict(self))

    def label(self) -> str:
        batch = f"b{self.batch_size}" + (f"@{self.batch_delay_ms:g}ms" if self.batch_size > 1 else "")
        paddle = "+".join(name for name, on in (
            ("dnn", self.onednn), ("ir", self.ir_optim), ("mem", self.memory_optim)) if on)
        cache = f" c{self.onednn_cache_capacity}" if self.onednn and self.onednn_cache_capacity else ""
        return f"t{self.threads} p{self.pool_max} {batch} {paddle or '-'}{cache}"

    def serve_flags(self, paddle_options: bool = True) -> list[str]:
        """The `paddlehot serve` flags that give this setting (only those off the defaults)."""
        default = default_setting()
        flags = [f"--threads {self.threads}", f"--pool-max {self.pool_max}",
                 f"--batch-size {self.batch_size}"]
        if self.batch_size > 1:
            flags.append(f"--batch-delay-ms {self.batch_delay_ms:g}")
        if not paddle_options:
            return flags
        for name, flag in (("onednn", "onednn"), ("ir_optim", "ir-optim"),
                           ("memory_optim", "memory-optim")):
            value = getattr(self, name)
            if value != getattr(default, name):
                flags.append(f"--{flag}" if value else f"--no-{flag}")
        if self.onednn and self.onednn_cache_capacity != default.onednn_cache_capacity:
            flags.append(f"--onednn-cache-capacity {self.onednn_cache_capacity}")
        return flags


def default_setting() -> Setting:
    """serve's built-in defaults, as a Setting: the baseline every sweep includes."""
    d = builtin_defaults()
    return Setting(**{k: v for k, v in asdict(d).items()})


@dataclass
class Grid:
    threads: list[int]
    pool_max: list[int]
    batch_size: list[int]
    batch_delay_ms: list[float]
    onednn: list[bool]
    ir_optim: list[bool]
    memory_optim: list[bool]
    onednn_cache_capacity: list[int]

    def settings(self) -> list[Setting]:
        """The cross product, without duplicates (a delay means nothing without batching), with
        serve's defaults always included; grouped by Paddle options, cheapest first."""
        out: dict[Setting, None] = {default_setting(): None}
        for t, p, b, d, dnn, ir, mem, cap in itertools.product(
                self.threads, self.pool_max, self.batch_size, self.batch_delay_ms, self.onednn,
                self.ir_optim, self.memory_optim, self.onednn_cache_capacity):
            out[Setting(t, p, b, d if b > 1 else 0.0, dnn, ir, mem, cap if dnn else 0)] = None
        return sorted(out, key=lambda s: (s.paddle_key() != default_setting().paddle_key(),
                                          s.paddle_key(), s.pool_max, s.threads, s.batch_size,
                                          s.batch_delay_ms))


def default_grid(cores: int, kind: str, onednn_available: bool, model_format: str = "pir") -> Grid:
    """A grid that fits the 3-minute budget for a small CNN on 2 cores: threads 1..cores (at
    most 4 values), one or two predictors, batching off or 4 requests within 2 ms, oneDNN on and
    off, memory optimisation off and on. IR optimisation off and other cache capacities are
    rarely better; ask for them with --ir-optim on,off / --onednn-cache-capacity. Settings are
    measured in 2-second slots, so the best 3 go to a final round (final_round)."""
    threads = sorted({1, cores} | ({2} if cores >= 4 else set()) | ({cores // 2} if cores >= 6 else set()))
    default = default_setting()
    paddle = kind == "package"  # a plugin builds its own Paddle config through the C API
    # Paddle 3's memory_optimize_pass does not exist for PIR programs ("Not find ... pass_name
    # memory_optimize_pass"): only legacy programs get the axis by default
    memory = paddle and model_format == "legacy"
    return Grid(
        threads=threads, pool_max=[1, 2], batch_size=[1, 4], batch_delay_ms=[2.0],
        # without oneDNN (a plugin, an aarch64 wheel) the option is moot: keep serve's default
        onednn=[True, False] if paddle and onednn_available else [default.onednn],
        ir_optim=[True], memory_optim=[False, True] if memory else [False],
        onednn_cache_capacity=[default.onednn_cache_capacity],
    )


def parse_axis(text: str, option: str, kind: type) -> list:
    """`1,2,4` / `on,off` / `2.5` -> a list of values of `kind`."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"{option} is empty")
    values: list = []
    for part in parts:
        try:
            if kind is bool:
                if part.lower() not in ("on", "off", "true", "false", "1", "0"):
                    raise ValueError
                values.append(part.lower() in ("on", "true", "1"))
            else:
                value = kind(part)
                if value < 0 or (kind is int and value < 1 and option != "--onednn-cache-capacity"):
                    raise ValueError
                values.append(value)
        except ValueError:
            example = {bool: "on,off", int: "1,2,4", float: "0,2,5"}[kind]
            raise UserError(f"malformed {option} '{text}'", hint=f"write e.g. {example}") from None
    return list(dict.fromkeys(values))


# -- the child processes -------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """A tune_worker child: one JSON command in, progress lines and one JSON answer out."""

    def __init__(self, env_extra: dict[str, str] | None = None):
        env = dict(os.environ)
        env.setdefault("KMP_BLOCKTIME", "0")  # as serve sets it
        env.update(env_extra or {})
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paddlehot_cli.bench.tune_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)

    def call(self, doc: dict, on_progress: Callable[[int], None] = lambda n: None) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(doc) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(self._death()) from None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise WorkerError(self._death())
            answer = json.loads(line)
            if "progress" in answer:
                on_progress(int(answer["progress"]))
                continue
            if not answer.get("ok"):
                raise WorkerError(answer.get("error") or "failed")
            return answer

    def _death(self) -> str:
        code = self.proc.wait(timeout=30)
        self._log.seek(0)
        lines = [ln for ln in self._log.read().splitlines() if ln.strip()]
        tail = lines[-1][:300] if lines else ""
        return f"the measuring process died (exit {code})" + (f": {tail}" if tail else "")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- the sweep ----------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    """The traffic every setting is measured under."""

    concurrency: int = 4
    duration: float = 2.0
    warmup: float = 0.5
    batch: int = 1
    input_data: str = "random"
    rate: float | None = None

    def command(self) -> dict:
        return {"cmd": "measure", "concurrency": self.concurrency, "duration": self.duration,
                "warmup": self.warmup, "batch": self.batch, "input_data": self.input_data,
                "rate": self.rate}


@dataclass
class Result:
    setting: Setting
    level: dict[str, Any] | None = None
    check: dict[str, Any] | None = None
    load_s: float | None = None
    error: str | None = None
    rank: int | None = None
    meets_slo: bool | None = None

    @property
    def drift(self) -> bool:
        return bool(self.check and self.check.get("checked") and not self.check.get("passed"))

    @property
    def usable(self) -> bool:
        """Measured without errors and computing what the package computes."""
        return (self.error is None and self.level is not None and not self.drift
                and self.level["errors"] == 0 and self.level["ok"] > 0)

    def throughput(self) -> float:
        return self.level["throughput_rps"] if self.level else 0.0

    def p99(self) -> float | None:
        return self.level["latency_ms"]["p99"] if self.level else None

    def to_json(self) -> dict[str, Any]:
        return {"setting": asdict(self.setting), "label": self.setting.label(),
                "rank": self.rank, "meets_slo": self.meets_slo, "usable": self.usable,
                "drift": self.drift, "check": self.check, "load_s": self.load_s,
                "error": self.error, "level": self.level}


@dataclass
class TuneTarget:
    """What is tuned: the version dir (or .so) loaded, and where its validation outputs are."""

    spec: str
    path: Path
    kind: str  # package | plugin
    validation_dir: Path
    model_dir: Path | None  # REPO/NAME for --write (REPO:NAME targets)
    name: str
    version: str
    model_format: str = "pir"


def resolve_target(spec: str) -> TuneTarget:
    from paddlehot_cli.core.manifest import read_manifest
    from paddlehot_cli.core.repository import resolve_version

    path = Path(spec)
    model_dir = None
    if spec.startswith(("http://", "https://")):
        raise UserError("--tune measures settings in-process: give a package dir, a plugin .so "
                        "or REPO:NAME, not a URL")
    if ":" in spec and not path.exists():
        path = resolve_version(spec)
        if "@" not in spec.rpartition(":")[2]:
            model_dir = path.parent
    if not path.exists():
        raise UserError(f"no such target: {spec}",
                        hint="give a package dir, a plugin .so or REPO:NAME")
    if path.suffix == ".so" and path.is_file():
        from paddlehot_cli.core.plugin_loader import read_plugin_manifest

        manifest = read_plugin_manifest(path)[0]
        return TuneTarget(spec, path, "plugin", path.parent, model_dir, manifest.name,
                          manifest.version)
    if not path.is_dir():
        raise UserError(f"{spec} is not a package directory, a plugin .so or REPO:NAME")
    manifest = read_manifest(path)
    return TuneTarget(spec, path, "package", path, model_dir, manifest.name, manifest.version,
                      manifest.format)


ProgressFn = Callable[[str, int], None]  # (what is being measured, requests done)


@dataclass
class TuneRun:
    target: TuneTarget
    load: LoadSpec
    results: list[Result] = field(default_factory=list)
    final: dict[str, Any] | None = None


def _open(worker: WorkerProcess, target: TuneTarget, setting: Setting) -> dict:
    return worker.call({"cmd": "open", "path": str(target.path), "setting": asdict(setting),
                        "validation_dir": str(target.validation_dir), "label": setting.label()})


def sweep(target: TuneTarget, settings: Sequence[Setting], load: LoadSpec,
          progress: ProgressFn = lambda what, n: None) -> TuneRun:
    run = TuneRun(target, load)
    groups: dict[tuple, list[Setting]] = {}
    for s in settings:
        groups.setdefault(s.paddle_key(), []).append(s)
    for group in groups.values():
        worker = WorkerProcess()
        try:
            unloadable = None
            for setting in group:
                if unloadable:  # these Paddle options do not load this model: skip the rest
                    run.results.append(Result(setting, error=unloadable))
                    progress(setting.label(), 0)
                    continue
                result = _measure_one(worker, target, setting, load, progress)
                run.results.append(result)
                if result.error and result.load_s is None and "could not load" in result.error:
                    unloadable = result.error
                elif result.error and worker.proc.poll() is not None:
                    worker.close()
                    worker = WorkerProcess()  # a crash costs one setting, not the group
        finally:
            worker.close()
    return run


def _measure_one(worker: WorkerProcess, target: TuneTarget, setting: Setting, load: LoadSpec,
                 progress: ProgressFn) -> Result:
    result = Result(setting)
    label = setting.label()
    try:
        opened = _open(worker, target, setting)
        result.check, result.load_s = opened["check"], opened["load_s"]
        # a drifting setting is measured anyway (the table shows what it would have bought) but
        # never ranked
        answer = worker.call(load.command(), lambda n: progress(label, n))
        result.level = answer["level"]
        worker.call({"cmd": "close"})
    except WorkerError as exc:
        result.error = str(exc)
    progress(label, 0)
    return result


def final_round(target: TuneTarget, finalists: Sequence[Result], load: LoadSpec,
                rounds: int = 3, progress: ProgressFn = lambda what, n: None) -> dict[str, Any]:
    """The best few settings and serve's defaults measured again, each in its own process, in
    interleaved rounds (A B C D, then D C B A, ...): on a shared box a 2-second sweep slot can
    catch a quiet or a busy moment; here every finalist sees the same ones."""
    baseline = default_setting()
    settings = list(dict.fromkeys([r.setting for r in finalists] + [baseline]))
    workers: dict[Setting, WorkerProcess] = {}
    levels: dict[Setting, list[dict]] = {s: [] for s in settings}
    try:
        for setting in settings:
            workers[setting] = WorkerProcess()
            _open(workers[setting], target, setting)
        per_round = replace(load, duration=max(load.duration / 2, 0.5), warmup=0.3)
        for index in range(rounds):
            order = settings if index % 2 == 0 else settings[::-1]
            for setting in order:
                answer = workers[setting].call(
                    per_round.command(), lambda n, s=setting: progress(f"final {s.label()}", n))
                levels[setting].append(answer["level"])
    except WorkerError as exc:
        return {"error": str(exc)}
    finally:
        for worker in workers.values():
            worker.close()
    return {"rounds": rounds, "settings": settings,
            "merged": {s: _merge_levels(levels[s]) for s in settings}}


def pick_final(final: dict[str, Any], objective: str, slo_p99_ms: float | None) -> dict[str, Any]:
    """The winner of the final round by the same rules as rank(), and its ratios to the
    defaults measured in the same rounds."""
    merged: dict[Setting, dict] = final["merged"]
    baseline = default_setting()

    def ok(s: Setting) -> bool:
        m = merged[s]
        return m["errors"] == 0 and (slo_p99_ms is None or (m["p99_ms"] or 1e18) <= slo_p99_ms)

    def key(s: Setting) -> tuple:
        m = merged[s]
        p99 = m["p99_ms"] or float("inf")
        if objective == "latency":
            return (p99, -m["throughput_rps"])
        if objective == "memory":
            return (m["peak_rss_mb"] or float("inf"), -m["throughput_rps"])
        return (-m["throughput_rps"], p99)

    candidates = sorted((s for s in merged if ok(s)), key=key)
    winner = candidates[0] if candidates else None
    d = merged[baseline]
    t = merged[winner] if winner else None
    return {
        "rounds": final["rounds"], "winner": asdict(winner) if winner else None,
        "finalists": [{"setting": asdict(s), "label": s.label(), **merged[s]} for s in merged],
        "default": d, "tuned": t,
        "throughput_ratio": _ratio(t["throughput_rps"], d["throughput_rps"]) if t else None,
        "p99_ratio": _ratio(t["p99_ms"], d["p99_ms"]) if t else None,
        "_winner": winner,
    }


def _merge_levels(levels: Sequence[dict]) -> dict[str, Any]:
    """Throughput over all rounds; p99 as the median of the rounds' p99 (samples are not kept)."""
    ok = sum(lv["ok"] for lv in levels)
    seconds = sum(lv["duration_s"] for lv in levels)
    p99s = sorted(lv["latency_ms"]["p99"] for lv in levels if lv["latency_ms"]["p99"] is not None)
    p50s = sorted(lv["latency_ms"]["p50"] for lv in levels if lv["latency_ms"]["p50"] is not None)
    rss = [lv["peak_rss_mb"] for lv in levels if lv.get("peak_rss_mb")]
    return {"requests": ok, "throughput_rps": round(ok / seconds, 2) if seconds else 0.0,
            "p50_ms": p50s[len(p50s) // 2] if p50s else None,
            "p99_ms": p99s[len(p99s) // 2] if p99s else None,
            "peak_rss_mb": max(rss) if rss else None,
            "errors": sum(lv["errors"] for lv in levels)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


# -- choosing -----------------------------------------------------------------------------------


def rank(results: Sequence[Result], objective: str, slo_p99_ms: float | None) -> Result | None:
    """Rank usable results by the objective (1 = best); return the winner: the best usable
    result that meets the SLO, or None when none does. Drifting or failing settings get no rank.
    """
    if objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, not '{objective}'")
    usable = [r for r in results if r.usable]
    for r in results:
        p99 = r.p99()
        r.meets_slo = (None if slo_p99_ms is None or not r.usable
                       else p99 is not None and p99 <= slo_p99_ms)

    def key(r: Result) -> tuple:
        p99 = r.p99() if r.p99() is not None else float("inf")
        rss = r.level.get("peak_rss_mb") or float("inf")  # type: ignore[union-attr]
        if objective == "latency":
            return (p99, -r.throughput())
        if objective == "memory":
            return (rss, -r.throughput())
        return (-r.throughput(), p99)

    # settings that meet the SLO rank above those that miss it
    ordered = sorted(usable, key=lambda r: (r.meets_slo is False, key(r)))
    for index, r in enumerate(ordered, 1):
        r.rank = index
    best = ordered[0] if ordered else None
    return best if best is not None and best.meets_slo is not False else None
