"""`paddlehot serve` as a process: startup output, one-line errors, SIGTERM drains and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

from tests.conftest import assert_one_line_error
from tests.serve_fixtures.helpers import free_port, serve_argv, wait_for


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("GLOG_minloglevel", "2")
    return env


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(serve_argv(*args), capture_output=True, text=True, timeout=timeout, env=_env())


@pytest.fixture(scope="module")
def repo(mlp_repo):
    return mlp_repo


def test_sigterm_drains_slow_request_and_exits_zero(repo):
    port = free_port()
    # a batch delay of 1.5 s makes every request slow: it is in flight when SIGTERM arrives
    proc = subprocess.Popen(serve_argv(repo, "--port", port, "--batch-size", "8",
                                       "--batch-delay-ms", "1500"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ok(f"{base}/v2/health/ready"), 60, 0.1, "server ready")
        result = {}

        def slow() -> None:
            body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}]}
            try:
                r = httpx.post(f"{base}/v2/models/mlp/infer", json=body, timeout=30)
                result["status"], result["version"] = r.status_code, r.json().get("model_version")
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                result["error"] = repr(exc)

        t = threading.Thread(target=slow)
        start = time.monotonic()
        t.start()
        # SIGTERM once the server holds the request (not after a fixed sleep: a loaded box may
        # take longer than any sleep to deliver it)
        wait_for(lambda: _in_flight(base) > 0, 20, 0.02, "the request in flight")
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert not t.is_alive(), "the in-flight request never finished"
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result == {"status": 200, "version": "1.0.0"}, (result, err)
    assert time.monotonic() - start >= 1.4
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"http://127.0.0.1:{port}" in out and "mlp: 1.0.0" in out and "/v2/models/mlp/infer" in out


def _in_flight(base: str) -> float:
    """paddlehot_handles_in_flight summed over versions, from /metrics (0 if unreachable)."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=1).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("paddlehot_handles_in_flight"))


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_port_in_use_is_one_line_exit_2(repo):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _run(repo, "--port", port)
    assert_one_line_error(proc, 2, "already in use")


@pytest.mark.parametrize("args, needle", [
    (["/nonexistent/repo"], "not a directory"),
    (["{empty}"], "no model directories"),
    (["{repo}", "--prefer", "gpu"], "--prefer"),
    (["{repo}", "--threads", "0"], "--threads"),
    (["{repo}", "--max-versions", "0"], "--max-versions"),
])
def test_usage_errors(repo, tmp_path, args, needle):
    args = [a.replace("{repo}", str(repo)).replace("{empty}", str(tmp_path)) for a in args]
    proc = _run(*args, "--port", str(free_port()))
    assert_one_line_error(proc, 2, needle)
