"""`paddlehot bench`'s options as given, checked into one plan: a plain run (levels, --compare,
--swap-every, --calibrate), a --tune search or a --shape-memory study. Which options combine
with which lives here, once; cli/bench.py only parses and renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from paddlehot_cli.bench.runner import BenchConfig, cpu_count
from paddlehot_cli.bench.tuning.settings import PADDLE_AXES, AxisText
from paddlehot_cli.bench.tuning.target import LoadSpec
from paddlehot_cli.errors import UserError

if TYPE_CHECKING:
    from paddlehot_cli.bench.tuning.search import TunePlan
    from paddlehot_cli.bench.tuning.shape_memory import ShapeMemoryPlan


@dataclass
class BenchRequest:
    """The options as typed (None: not given). `axes.threads` is --threads for every mode."""

    target: str | None = None
    concurrency: str | None = None
    duration: float | None = None
    requests: int | None = None
    warmup: float = 1.0
    batch: int = 1
    input_data: str = "random"
    rate: float | None = None
    swap_every: float | None = None
    swap_repo: Path | None = None
    compare: str | None = None
    timeout: float = 30.0
    pid: int | None = None
    calibrate: bool = False
    tune: bool = False
    shape_memory: bool = False
    slo_p99: float | None = None
    objective: str = "throughput"
    write: bool = False
    primitive_cache: str | None = None
    axes: AxisText = field(default_factory=AxisText)


@dataclass
class RunPlan:
    """A plain run; target None: --calibrate (the trivial endpoint stands in)."""

    target: str | None
    cfg: BenchConfig
    threads: int
    timeout: float
    pid: int | None = None
    compare: str | None = None
    swap_repo: Path | None = None


def ints(text: str, option: str) -> list[int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UserError(f"malformed {option} '{text}'", hint="write e.g. 1,2,4,8") from None
    if not values:
        raise UserError(f"{option} is empty")
    return values


Plan = Union[RunPlan, "TunePlan", "ShapeMemoryPlan"]


def check(req: BenchRequest) -> Plan:
    """The request as one plan; every misuse is one UserError."""
    if req.tune or req.shape_memory:
        return _tuning(req)
    axes = req.axes
    tuning_only = {"--write": req.write or None,
                   "--primitive-cache": req.primitive_cache}
    given = (["--slo-p99"] * (req.slo_p99 is not None)
             + axes.given("pool_max", "batch_size", "batch_delay_ms", *PADDLE_AXES)
             + [name for name, value in tuning_only.items() if value is not None])
    if given:
        raise UserError(f"{', '.join(given)} only work with --tune or --shape-memory")
    threads = _one_thread_count(axes.threads, "--threads takes one number (a list is for --tune)")
    cfg = BenchConfig(
        concurrency=ints(req.concurrency or "1", "--concurrency"),
        duration=None if req.requests is not None else (10.0 if req.duration is None
                                                         else req.duration),
        requests=req.requests, warmup=req.warmup, batch=req.batch, input_data=req.input_data,
        rate=req.rate, swap_every=req.swap_every,
    )
    cfg.check()
    if req.calibrate:
        if req.target or req.compare or req.swap_every:
            raise UserError("--calibrate takes no TARGET, --compare or --swap-every")
        return RunPlan(None, cfg, threads, req.timeout, req.pid)
    if not req.target:
        raise UserError("missing TARGET", hint="see paddlehot bench --help")
    if req.compare and req.swap_every:
        raise UserError("--compare and --swap-every cannot be combined")
    return RunPlan(req.target, cfg, threads, req.timeout, req.pid, req.compare, req.swap_repo)


def _one_thread_count(text: str | None, message: str) -> int:
    values = ints(text or "1", "--threads")
    if len(values) != 1:
        raise UserError(message)
    return values[0]


def _tuning(req: BenchRequest) -> Plan:
    from paddlehot_cli.bench.tuning import search, shape_memory

    if req.tune and req.shape_memory:
        raise UserError("--tune and --shape-memory are separate runs: pick one")
    if not req.target:
        raise UserError("missing TARGET", hint="a package dir, a plugin .so or REPO:NAME")
    for flag, value in (("--compare", req.compare), ("--swap-every", req.swap_every),
                        ("--calibrate", req.calibrate or None)):
        if value is not None:
            raise UserError(f"{flag} does not combine with --tune / --shape-memory")
    conc = ints(req.concurrency, "--concurrency") if req.concurrency else None
    if conc is not None and len(conc) != 1:
        raise UserError("--tune measures every setting at one load: give one --concurrency")
    if req.duration is not None and req.duration <= 0:
        raise UserError("--duration must be > 0")
    if req.batch < 1 or req.warmup < 0 or (req.rate is not None and req.rate <= 0):
        raise UserError("--batch must be >= 1, --warmup >= 0, --rate > 0")
    if req.tune:
        if req.primitive_cache is not None:
            raise UserError("--primitive-cache belongs to --shape-memory (it is process-wide: "
                            "set ONEDNN_PRIMITIVE_CACHE_CAPACITY for serve)")
        if req.requests is not None:
            raise UserError("--tune measures each setting for --duration seconds, not -n requests")
        load = LoadSpec(concurrency=conc[0] if conc else 2 * cpu_count(),
                        duration=2.0 if req.duration is None else req.duration,
                        warmup=min(req.warmup, 0.5), batch=req.batch, input_data=req.input_data,
                        rate=req.rate)
        return search.plan(req.target, req.axes, load, req.objective, req.slo_p99, req.write)
    if req.write or req.slo_p99 is not None or req.objective != "throughput":
        raise UserError("--write, --slo-p99 and --objective belong to --tune")
    extra = req.axes.given("pool_max", "batch_size", "batch_delay_ms", "onednn", "ir_optim",
                           "memory_optim")
    if extra:
        raise UserError(f"{', '.join(extra)} belong to --tune")
    threads = _one_thread_count(req.axes.threads, "--shape-memory takes one --threads value")
    if req.requests is not None and req.requests < 1:
        raise UserError("--requests must be >= 1")
    load = LoadSpec(concurrency=conc[0] if conc else 1,
                    duration=6.0 if req.duration is None else req.duration, warmup=0.5,
                    batch=req.batch)
    return shape_memory.plan(req.target, req.primitive_cache, req.axes.onednn_cache_capacity,
                             req.requests or 10_000, req.input_data, threads, load)
