"""Shared fixtures: run the real CLI in a subprocess, and packages exported once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = Path(__file__).resolve().parent / "models"

# Markers by area (pyproject registers them), so a newcomer can run their area, or the fast
# subset: pytest -m "not slow and not qemu and not registry". The README's command runs all.
AREA_MARKERS = {
    "qemu": ("test_edge_e2e", "test_host_go_arm64"),
    "registry": ("test_fleet_follow", "test_fleet_push_pull"),
    "native": ("test_pdcapi", "test_plugin_", "test_host_go", "test_abi_rebuild",
               "test_abi_corpus", "test_abi_fuzz", "test_serve_plugin"),
    "slow": ("test_bench", "test_demo", "test_faults_serve", "test_grpc_bench", "test_grpc_swap",
             "test_serve_swap", "test_serve_fuzz", "test_kserve_templates", "test_edge_",
             "test_host_go", "test_abi_corpus", "test_abi_rebuild", "test_plugin_unload",
             "test_serve_cpu_affinity", "test_export", "test_fleet_",
             # subprocess serve restarts, a pip install, int8 calibration, TLS handshakes: 3-10 s
             "test_serve_quarantine", "test_deploy_", "test_variants", "test_serve_tls"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        for marker, prefixes in AREA_MARKERS.items():
            if module.startswith(prefixes):
                item.add_marker(marker)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run `python -m paddlehot_cli ARGS` and return the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.setdefault("GLOG_minloglevel", "2")
    full_env["COLUMNS"] = "160"
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "paddlehot_cli", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Export a package once per (source, format, version, seed) for the whole session."""
    cache: dict[tuple, Path] = {}
    base = tmp_path_factory.mktemp("exported")

    def get(source: str = "demo:mlp", fmt: str = "pir", version: str = "1.0.0", seed: int = 0,
            *extra: str) -> Path:
        key = (source, fmt, version, seed, extra)
        if key not in cache:
            out = base / f"pkg{len(cache)}"
            proc = cli("export", source, "--model-format", fmt, "--version", version,
                       "--seed", str(seed), "-o", out, *extra)
            assert proc.returncode == 0, proc.stderr
            cache[key] = out
        return cache[key]

    return get


@pytest.fixture(scope="session")
def mlp_repo_factory(exported, tmp_path_factory) -> Callable[[], Path]:
    """Fresh copies of one repository, `models/` with demo:mlp 1.0.0 (seed 0) published as
    REPO/mlp/1.0.0: each call returns a new copy, so a server's state or a version a test
    publishes or edits never reaches another test."""
    from tests.serve_fixtures.helpers import publish_copy

    template = tmp_path_factory.mktemp("mlp-published") / "models"
    publish_copy(exported("demo:mlp"), template, "mlp", "1.0.0")

    def copy() -> Path:
        return Path(shutil.copytree(template, tmp_path_factory.mktemp("repo") / "models"))

    return copy


@pytest.fixture(scope="module")
def mlp_repo(mlp_repo_factory) -> Path:
    """The demo:mlp repository (mlp_repo_factory), one copy per test module."""
    return mlp_repo_factory()


@pytest.fixture
def fresh_mlp_repo(mlp_repo_factory) -> Path:
    """The demo:mlp repository (mlp_repo_factory), one copy per test: for tests that edit it."""
    return mlp_repo_factory()

