"""The settings `bench --tune` measures: one Setting (a point), a Grid (the axes) and the
axis options as typed on the command line (AxisText, build_grid)."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from paddlehot_cli.core.paddle_runtime import PaddleOptions
from paddlehot_cli.core.serving_settings import ServingSettings, builtin_defaults
from paddlehot_cli.errors import UserError


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
    # pool_min and pool_idle_s are no grid axes: pool_choice chooses them for the winner alone
    return Setting(**{k: v for k, v in asdict(d).items() if k in Setting.__dataclass_fields__})


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


@dataclass
class AxisText:
    """The --tune axis options as typed (None: the default grid's axis)."""

    threads: str | None = None
    pool_max: str | None = None
    batch_size: str | None = None
    batch_delay_ms: str | None = None
    onednn: str | None = None
    ir_optim: str | None = None
    memory_optim: str | None = None
    onednn_cache_capacity: str | None = None

    def given(self, *names: str) -> list[str]:
        """The options among `names` (field names) that were given, as flags."""
        return [_FLAG[n] for n in names if getattr(self, n) is not None]


_AXES = (("threads", int), ("pool_max", int), ("batch_size", int), ("batch_delay_ms", float),
         ("onednn", bool), ("ir_optim", bool), ("memory_optim", bool),
         ("onednn_cache_capacity", int))
_FLAG = {name: "--" + name.replace("_", "-") for name, _ in _AXES}
# a plugin builds its own Paddle config through the C API: these axes do not reach it
PADDLE_AXES = ("onednn", "ir_optim", "memory_optim", "onednn_cache_capacity")


def build_grid(axes: AxisText, kind: str, model_format: str = "pir") -> Grid:
    """The default grid for this target on this box, with every given axis replacing its own."""
    from paddlehot_cli.bench.runner import cpu_count
    from paddlehot_cli.core.paddle_runtime import has_onednn

    onednn = has_onednn() if kind == "package" else False
    grid = default_grid(cpu_count(), kind, onednn, model_format)
    for name, typ in _AXES:
        text = getattr(axes, name)
        if text is None:
            continue
        if kind == "plugin" and name in PADDLE_AXES:
            raise UserError(f"{_FLAG[name]} applies to packages: a plugin builds its own Paddle "
                            "config through the C API")
        values = parse_axis(text, _FLAG[name], typ)
        if name == "onednn" and True in values and not onednn:
            raise UserError("this paddle wheel has no oneDNN", hint="use --onednn off")
        setattr(grid, name, values)
    return grid
