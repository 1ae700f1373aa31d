"""Per-model serving settings: REPO/NAME/serving.json, beside labels.json, never inside a version.

`paddlehot bench --tune --write` writes it; `paddlehot serve` applies it to every version of the
model it loads, under the command-line flags (a flag given wins) and over the built-in defaults.
Every key is optional: a file may set only `threads`. A malformed file is an error the reader
reports (serve logs it, shows it in the repository index and goes on with its defaults); it
never stops a model from being served.

    {"schema": "paddlehot.serving/1",
     "settings": {"threads": 2, "pool_min": 1, "pool_max": 2, "pool_idle_s": 30.0,
                  "batch_size": 4, "batch_delay_ms": 2.0,
                  "onednn": true, "ir_optim": true, "memory_optim": false,
                  "onednn_cache_capacity": 10},
     "tuned": {...}}          # optional, informational: what measured these settings
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from paddlehot_cli.core.paddle_runtime import PaddleOptions
from paddlehot_cli.core.publish import shared_mode
from paddlehot_cli.core.small_files import read_control_file
from paddlehot_cli.errors import UserError

log = logging.getLogger("paddlehot.settings")
SETTINGS_FILE = "serving.json"
SCHEMA = "paddlehot.serving/1"


class SettingsError(UserError):
    """serving.json is unreadable, not JSON, or has an unknown key or a bad value."""


@dataclass(frozen=True)
class ServingSettings:
    """None means "not set here": the next layer (defaults < serving.json < flags) decides."""

    threads: int | None = None
    pool_min: int | None = None  # predictors kept however idle (see builtin_defaults)
    pool_max: int | None = None
    pool_idle_s: float | None = None  # seconds idle before a predictor above pool_min goes
    batch_size: int | None = None
    batch_delay_ms: float | None = None
    onednn: bool | None = None
    ir_optim: bool | None = None
    memory_optim: bool | None = None
    onednn_cache_capacity: int | None = None

    def over(self, base: ServingSettings) -> ServingSettings:
        """These settings where set, `base` elsewhere."""
        given = {k: v for k, v in asdict(self).items() if v is not None}
        return replace(base, **given)

    def pool_bounds(self) -> tuple[int, int]:
        """(min, max) of the pool; a min above the max (from different layers) lifts the max."""
        low = 1 if self.pool_min is None else self.pool_min
        return low, max(low, 1 if self.pool_max is None else self.pool_max)

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def paddle_options(self) -> PaddleOptions:
        base = PaddleOptions()
        return PaddleOptions(
            onednn=base.onednn if self.onednn is None else self.onednn,
            ir_optim=base.ir_optim if self.ir_optim is None else self.ir_optim,
            memory_optim=base.memory_optim if self.memory_optim is None else self.memory_optim,
            onednn_cache_capacity=(base.onednn_cache_capacity if self.onednn_cache_capacity is None
                                   else self.onednn_cache_capacity),
        )


def builtin_defaults() -> ServingSettings:
    """What serve uses when neither serving.json nor a flag says otherwise.

    Pools for a 2-4 core box: pool_min 1 keeps one warm predictor per version, so no request
    ever waits for one to be created (resnet18: 1.3-1.8 s); pool_max 1 because a package
    predictor holds the GIL while it runs (more help plugins, and `bench --tune` measures how
    many); pool_idle_s 30: regrowing costs one core for ~1.5 s, so a predictor is worth keeping
    through pauses of up to ~20 times that, and 30 s still returns the memory of a burst well
    within a minute."""
    opts = PaddleOptions()
    return ServingSettings(threads=1, pool_min=1, pool_max=1, pool_idle_s=30.0, batch_size=1,
                           batch_delay_ms=0.0,
                           onednn=opts.onednn, ir_optim=opts.ir_optim,
                           memory_optim=opts.memory_optim,
                           onednn_cache_capacity=opts.onednn_cache_capacity)


# key -> (accepted types, check, what a valid value is)
_RULES: dict[str, tuple[tuple[type, ...], Any, str]] = {
    "threads": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "pool_min": ((int,), lambda v: v >= 0, "an integer >= 0"),
    "pool_max": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "pool_idle_s": ((int, float), lambda v: 0 < v <= 86_400, "seconds in (0, 86400]"),
    "batch_size": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "batch_delay_ms": ((int, float), lambda v: 0 <= v <= 10_000, "milliseconds in [0, 10000]"),
    "onednn": ((bool,), lambda v: True, "true or false"),
    "ir_optim": ((bool,), lambda v: True, "true or false"),
    "memory_optim": ((bool,), lambda v: True, "true or false"),
    "onednn_cache_capacity": ((int,), lambda v: v >= 0, "an integer >= 0 (0 = unbounded)"),
}


def parse_settings(data: Any, where: str) -> ServingSettings:
    """Validate the `settings` object of a serving.json (or anything shaped like it)."""
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: 'settings' must be a JSON object")
    values: dict[str, Any] = {}
    for key, value in data.items():
        rule = _RULES.get(key)
        if rule is None:
            raise SettingsError(f"{where}: unknown setting '{key}'",
                                hint="known: " + ", ".join(_RULES))
        types, ok, what = rule
        # JSON true is a Python bool, which is also an int: never accept it as a number
        is_bool = isinstance(value, bool)
        if (is_bool and bool not in types) or not isinstance(value, types) or not ok(value):
            raise SettingsError(f"{where}: '{key}' must be {what}, not {json.dumps(value)}")
        values[key] = float(value) if key in ("batch_delay_ms", "pool_idle_s") else value
    if values.get("pool_min", 0) > values.get("pool_max", values.get("pool_min", 0)):
        raise SettingsError(f"{where}: 'pool_min' ({values['pool_min']}) is above 'pool_max' "
                            f"({values['pool_max']})")
    return ServingSettings(**values)


def parse_file_doc(doc: Any, where: str) -> ServingSettings:
    if not isinstance(doc, dict):
        raise SettingsError(f"{where}: must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise SettingsError(f"{where}: 'schema' must be \"{SCHEMA}\", not "
                            f"{json.dumps(doc.get('schema'))}")
    unknown = set(doc) - {"schema", "settings", "tuned"}
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "tuned" in doc and not isinstance(doc["tuned"], dict):
        raise SettingsError(f"{where}: 'tuned' must be a JSON object")
    return parse_settings(doc.get("settings", {}), where)


def read_settings(model_dir: str | Path) -> ServingSettings | None:
    """The settings in MODEL_DIR/serving.json; None when there is no such file."""
    path = Path(model_dir) / SETTINGS_FILE
    try:
        text = read_control_file(path).decode()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") \
            from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from None
    return parse_file_doc(doc, str(path))


def write_settings(model_dir: str | Path, settings: ServingSettings,
                   tuned: dict[str, Any] | None = None) -> Path:
    """Write MODEL_DIR/serving.json atomically (temp file + rename): serve never reads half."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise SettingsError(f"no such model directory: {model_dir}")
    doc: dict[str, Any] = {"schema": SCHEMA, "settings": settings.given()}
    if tuned:
        doc["tuned"] = tuned
    parse_file_doc(json.loads(json.dumps(doc)), "the settings to write")  # never write a bad file
    path = model_dir / SETTINGS_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{SETTINGS_FILE}.", dir=model_dir)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        shared_mode(Path(tmp), 0o666)  # mkstemp's 0600 would hide it from a service user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class Resolved:
    """The settings a version is served with, and where they came from (for /v2/models/NAME)."""

    settings: ServingSettings
    from_file: tuple[str, ...]
    from_flags: tuple[str, ...]
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings), "from_serving_json": list(self.from_file),
                "from_flags": list(self.from_flags), "serving_json_error": self.error}


class SettingsResolver:
    """defaults < REPO/NAME/serving.json < flags, per model; the file is re-read when it changes
    and a malformed one is logged once per change."""

    def __init__(self, defaults: ServingSettings | None = None,
                 flags: ServingSettings | None = None):
        base = builtin_defaults()
        self.defaults = base if defaults is None else defaults.over(base)
        self.flags = flags or ServingSettings()
        self._cache: dict[Path, tuple[tuple, ServingSettings | None, str | None]] = {}
        self._lock = threading.Lock()  # the manager's load thread and the HTTP index both read

    def _file(self, model_dir: Path) -> tuple[ServingSettings | None, str | None]:
        with self._lock:
            return self._file_locked(model_dir)

    def _file_locked(self, model_dir: Path) -> tuple[ServingSettings | None, str | None]:
        path = model_dir / SETTINGS_FILE
        try:
            st = path.stat()
            sig: tuple = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            sig = ()
        cached = self._cache.get(model_dir)
        if cached is not None and cached[0] == sig:
            return cached[1], cached[2]
        try:
            found, error = read_settings(model_dir), None
        except SettingsError as exc:
            log.error("%s; serving %s with the defaults and flags", exc.message, model_dir.name)
            # what HTTP callers see names the file within the repository, not the server's path
            found, error = None, exc.message.replace(str(model_dir), model_dir.name)
        self._cache[model_dir] = (sig, found, error)
        return found, error

    def resolve(self, model_dir: str | Path) -> Resolved:
        found, error = self._file(Path(model_dir))
        file_settings = found or ServingSettings()
        settings = self.flags.over(file_settings.over(self.defaults))
        flagged = set(self.flags.given())
        from_file = tuple(k for k in file_settings.given() if k not in flagged)
        return Resolved(settings, from_file, tuple(sorted(flagged)), error)

    def error(self, model_dir: str | Path) -> str | None:
        return self._file(Path(model_dir))[1]


def setting_names() -> list[str]:
    return [f.name for f in fields(ServingSettings)]
