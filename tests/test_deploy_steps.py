"""Every README step as written (issue 24 item 9): a non-editable install ships what the docs
name (the wrk scripts, the Go module sources); `build-plugin -o DIR/x.so` creates DIR like
export does (and leaves nothing behind when it fails); `serve` without REPO removes its temp
repository however it ends, SIGTERM included; `serve --grpc-port` without grpcio says so."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, assert_one_line_error, cli
from tests.serve_fixtures.helpers import free_port, serve_argv, wait_for


def pip_install(site: Path, work: Path) -> None:
    """`pip install .` (not editable) of this checkout into `site`, built from a copy of the
    sources so that the build leaves no build/ dir in the checkout."""
    src = work / "src"
    src.mkdir(parents=True)
    for name in ("paddlehot_cli", "native", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                          "--no-build-isolation", "-q", "--target", str(site), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    shutil.rmtree(src)


def test_pip_install_ships_the_bench_scripts_and_the_go_module(tmp_path):
    site = tmp_path / "site"
    pip_install(site, tmp_path)
    pkg = site / "paddlehot_cli"
    for rel in ("bench/wrk_ab.sh", "bench/wrk_infer.lua", "bench/wrk_body.lua",
                "_data/native/host-go/go.mod", "_data/native/host-go/cmd/phot-host/main.go",
                "_data/native/host-go/phot/swapper.go", "_data/native/host-go/phot/cabi.c",
                "_data/native/edge/build-rootfs.sh", "_data/templates/deploy/paddlehot-serve.service"):
        assert (pkg / rel).is_file(), rel
    go_sources = {p.name for p in (ROOT / "native/host-go").rglob("*.go")}
    shipped = {p.name for p in (pkg / "_data/native/host-go").rglob("*.go")}
    assert go_sources == shipped


def test_build_plugin_creates_the_output_directory(tmp_path, exported):
    pkg = exported("demo:mlp", "pir", "1.0.0", 9)
    out = tmp_path / "new" / "dir" / "mlp.so"
    # aarch64: the link-only stub, no pdcapi build and no run here: fast, and real gcc
    proc = cli("build-plugin", pkg, "-o", out, "--target", "aarch64")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert out.is_file() and out.with_name("mlp.so.sha256").is_file()
    failed = tmp_path / "other" / "mlp.so"
    proc = cli("build-plugin", tmp_path / "not-a-package", "-o", failed, "--target", "aarch64")
    assert proc.returncode != 0
    assert not (tmp_path / "other").exists()  # nothing half-made
    proc = cli("build-plugin", pkg, "-o", out / "x.so", "--target", "aarch64")
    assert_one_line_error(proc, 2, "is not a directory")


def _demo_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("paddlehot-demo-repo-*"))


def test_serve_without_repo_removes_its_temp_repository_on_sigterm(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp), GLOG_minloglevel="2")
    proc = subprocess.Popen(serve_argv("--port", str(port)), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def ready():
            assert proc.poll() is None, proc.stdout.read()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 180, 0.2, "serve with the demo model")
        assert len(_demo_dirs(tmp)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert _demo_dirs(tmp) == [], out
    # SIGTERM while it is still exporting / loading: gone too
    proc = subprocess.Popen(serve_argv("--port", str(free_port())), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not _demo_dirs(tmp) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert _demo_dirs(tmp) == [], out


def test_serve_grpc_port_without_grpcio_is_one_line(tmp_path, exported):
    from tests.serve_fixtures.helpers import publish_copy

    repo = tmp_path / "repo"
    publish_copy(exported("demo:mlp", "pir", "1.0.0", 9), repo, "mlp", "1.0.0")
    shadow = tmp_path / "shadow" / "grpc"
    shadow.mkdir(parents=True)  # what a box without grpcio sees
    (shadow / "__init__.py").write_text("raise ImportError('no grpc here', name='grpc')\n")
    env = dict(os.environ, PYTHONPATH=f"{shadow.parent}{os.pathsep}{ROOT}")
    proc = subprocess.run(serve_argv(repo, "--port", str(free_port()), "--grpc-port", "0"),
                          env=env, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, 2, "--grpc-port needs grpcio", "grpc cannot be imported")
