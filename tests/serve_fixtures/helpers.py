"""Helpers for the serve tests: publish versions cheaply, run a server on a free port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_SERVE = (
    "import sys; from paddlehot_cli.cli.main import app; from paddlehot_cli.cli.serve import serve; "
    "app.command('serve')(serve); sys.argv[0] = 'paddlehot'; app()"
)


def serve_argv(*args: str) -> list[str]:
    """argv running `paddlehot serve ARGS` (whether or not main.py registers the verb yet)."""
    return [sys.executable, "-c", RUN_SERVE, "serve", *map(str, args)]


def publish_copy(src: Path, repo: Path, name: str, version: str) -> Path:
    """Publish a copy of package `src` as REPO/NAME/VERSION atomically (hidden dir + rename),
    rewriting only the manifest's version (checksums cover the other files)."""
    mdir = repo / name
    mdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=mdir))
    for f in Path(src).iterdir():
        if f.is_file():  # not signatures/: they sign the source version, not this one
            shutil.copy2(f, tmp / f.name)
    manifest = json.loads((tmp / "paddlehot.json").read_text())
    manifest["version"] = version
    manifest["name"] = name
    (tmp / "paddlehot.json").write_text(json.dumps(manifest, indent=2))
    final = mdir / version
    os.rename(tmp, final)
    return final


def copy_unpublished(src: Path, dst: Path, name: str, version: str) -> Path:
    """A plain (non-atomic) copy with the manifest rewritten: used to build corrupt versions."""
    dst.mkdir(parents=True)
    for f in Path(src).iterdir():
        shutil.copy2(f, dst / f.name)
    manifest = json.loads((dst / "paddlehot.json").read_text())
    manifest["version"], manifest["name"] = version, name
    (dst / "paddlehot.json").write_text(json.dumps(manifest, indent=2))
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float = 20.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def start_runtime(repo: Path, follow: list[str] | None = None, follow_interval: float = 30.0,
                  insecure: bool = False, keep_alive: float | None = None, **kwargs):
    """A server on a free port in this process; `follow` wires serve --follow as cli does,
    `keep_alive` sets uvicorn's keep-alive timeout (seconds)."""
    from paddlehot_cli.serve.runtime import Runtime, ServeConfig

    kwargs.setdefault("poll_interval", 0.3)
    extensions = []
    if follow:
        from paddlehot_cli.fleet.follower import follower_for

        extensions.append(follower_for(follow, follow_interval, insecure))
    rt = Runtime(ServeConfig(repo=Path(repo), port=0, **kwargs), extensions)
    rt.bind()
    rt.start_core()
    if keep_alive is not None:
        rt.make_uvicorn().config.timeout_keep_alive = keep_alive
    rt.start_in_thread()
    return rt


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample's values whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            metric_name, _, rest = head.partition("{")
            if metric_name != name:
                continue
            pairs = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if "=" in p)
            if any(pairs.get(k) != f'"{v}"' for k, v in labels.items()):
                continue
        elif head != name or labels:
            continue
        total += float(value)
    return total


def hold_worker(serving_version) -> tuple:
    """Hold a version's worker inside a real inference call until `gate` is set; `running` is
    set once it is held there. Returns (gate, running)."""
    import threading

    gate, running = threading.Event(), threading.Event()
    real_run = serving_version.batcher._run

    def gated(feeds):
        running.set()
        assert gate.wait(20)
        return real_run(feeds)

    serving_version.batcher._run = gated
    return gate, running


def publish_swaps(rt, repo: Path, pkgs: list, swaps: int, which: dict) -> None:
    """Publish 1.0.1 .. 1.0.SWAPS of "mlp", cycling through `pkgs` (consecutive versions differ
    in weights; `which` records each version's package index), each served before the next."""
    for i in range(1, swaps + 1):
        version = f"1.0.{i}"
        which[version] = i % len(pkgs)
        publish_copy(pkgs[i % len(pkgs)], repo, "mlp", version)
        wait_for(lambda v=version: rt.manager.loaded_versions("mlp")[:1] == [v], 20,
                 what=f"{version} to serve")


def publish_built_plugin(repo: Path, name: str, version: str, built: Path) -> Path:
    """Publish what abi_fixtures.build_plugin built (package files + plugin.so + its sha256) as
    REPO/NAME/VERSION, renamed into place as export would."""
    from paddlehot_cli.core.plugin_image import digest_line, file_sha256

    final = repo / name / version
    staged = repo / name / f".{version}.tmp"
    staged.mkdir(parents=True)
    for f in ("paddlehot.json", "model.json", "model.pdiparams", "plugin.so"):
        shutil.copy2(built / f, staged / f)
    (staged / "plugin.so.sha256").write_text(digest_line(file_sha256(staged / "plugin.so"),
                                                          "plugin.so"))
    os.rename(staged, final)
    return final
