"""What `bench --tune` / `--shape-memory` measure (TuneTarget), under what traffic (LoadSpec),
and the child processes that measure it (WorkerProcess: one per Paddle-option combination)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.errors import UserError


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """A bench.tuning.worker child: one JSON command in, progress lines and one JSON answer out."""

    def __init__(self, env_extra: dict[str, str] | None = None):
        env = dict(os.environ)
        env.setdefault("KMP_BLOCKTIME", "0")  # as serve sets it
        env.update(env_extra or {})
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paddlehot_cli.bench.tuning.worker"], stdin=subprocess.PIPE,
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
