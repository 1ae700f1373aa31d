"""--loop-cpu: the event loops (HTTP, gRPC) and the workers of GIL-bound versions (package, one
intra-op thread) share one CPU; multi-threaded versions and the threads Paddle starts keep every CPU;
`off` pins nothing; a CPU the process may not use is one clear error."""

from __future__ import annotations

import os
import threading

import httpx
import pytest

from paddlehot_cli.core.serving_settings import ServingSettings, write_settings
from tests.conftest import assert_one_line_error, cli
from tests.serve_fixtures.helpers import publish_copy, start_runtime

CPUS = os.sched_getaffinity(0)
pytestmark = pytest.mark.skipif(len(CPUS) < 2, reason="pinning needs 2 CPUs to mean anything")
BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}]}


@pytest.fixture(scope="module")
def repo(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("affinity") / "repo"
    pkg = exported("demo:mlp", "pir", "1.0.0", 41)
    for name in ("tiny", "wide"):
        publish_copy(pkg, repo, name, "1.0.0")
    write_settings(repo / "wide", ServingSettings(threads=2), {"by": "test"})  # 2 intra-op threads
    return repo


def _mask(native_id: int) -> set[int]:
    return os.sched_getaffinity(native_id)


def _workers() -> dict[str, int]:
    return {t.name: t.native_id for t in threading.enumerate()}


def test_loop_and_gil_bound_workers_share_one_cpu(repo):
    rt = start_runtime(repo, grpc_port=0)
    try:
        cpu = rt.loop_cpu
        assert cpu == max(CPUS)
        for model in ("tiny", "wide"):  # traffic first: a Paddle run must not undo the pin
            for _ in range(3):
                r = httpx.post(f"http://127.0.0.1:{rt.port}/v2/models/{model}/infer", json=BODY)
                assert r.status_code == 200, r.text
        threads = _workers()
        assert _mask(threads["paddlehot-http"]) == {cpu}
        assert _mask(threads["paddlehot-grpc"]) == {cpu}
        assert _mask(threads["paddlehot-infer-tiny-1.0.0-0"]) == {cpu}
        assert _mask(threads["paddlehot-infer-wide-1.0.0-0"]) == CPUS  # --threads 2: every CPU
        python_ids = set(threads.values())
        native_only = [int(t) for t in os.listdir("/proc/self/task") if int(t) not in python_ids]
        assert any(_mask(t) == CPUS for t in native_only)  # Paddle's own threads are free
    finally:
        rt.stop_thread()


def test_off_pins_nothing(repo):
    rt = start_runtime(repo, loop_cpu="off")
    try:
        threads = _workers()
        assert rt.loop_cpu is None
        assert _mask(threads["paddlehot-http"]) == CPUS
        assert _mask(threads["paddlehot-infer-tiny-1.0.0-0"]) == CPUS
    finally:
        rt.stop_thread()


@pytest.mark.parametrize("value, needle", [("99", "may only use CPUs"), ("fast", "auto, off or")],
                         ids=["absent-cpu", "not-a-cpu"])
def test_a_bad_loop_cpu_is_one_clear_error(repo, value, needle):
    proc = cli("serve", str(repo), "--port", "0", "--loop-cpu", value, timeout=120)
    assert_one_line_error(proc, 2, "--loop-cpu", needle)


def test_a_one_predictor_plugin_worker_is_pinned_beside_the_loop(exported, tmp_path):
    """A plugin version with short calls keeps the GIL, so its worker shares the loop's CPU like a
    package's; that must be known at load (warm-up runs once), or the harness never pins it."""
    pkg = exported("demo:mlp", "pir", "1.0.0", 41)
    version = publish_copy(pkg, tmp_path / "repo", "plug", "1.0.0")
    proc = cli("build-plugin", version, "-o", version / "plugin.so")
    assert proc.returncode == 0, proc.stderr
    rt = start_runtime(tmp_path / "repo", prefer="plugin")
    try:
        assert rt.manager.servable("plug").kind == "plugin"
        r = httpx.post(f"http://127.0.0.1:{rt.port}/v2/models/plug/infer", json=BODY)
        assert r.status_code == 200, r.text
        assert _mask(_workers()["paddlehot-infer-plug-1.0.0-0"]) == {rt.loop_cpu}
    finally:
        rt.stop_thread()
