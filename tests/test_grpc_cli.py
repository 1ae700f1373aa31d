"""`paddlehot serve --grpc-port` as a process: a gRPC call in flight at SIGTERM completes and the
server exits 0; a gRPC port in use is one error line and exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as tg

from tests.conftest import assert_one_line_error
from tests.serve_fixtures.helpers import free_port, serve_argv, wait_for


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("GLOG_minloglevel", "2")
    return env


@pytest.fixture(scope="module")
def repo(mlp_repo):
    return mlp_repo


def _ready(client: tg.InferenceServerClient) -> bool:
    try:
        return client.is_server_ready()
    except Exception:  # noqa: BLE001 - not listening yet
        return False


def test_sigterm_lets_grpc_call_in_flight_finish(repo):
    port, grpc_port = free_port(), free_port()
    # a batch delay of 1.5 s makes every request slow: it is in flight when SIGTERM arrives
    proc = subprocess.Popen(serve_argv(repo, "--port", port, "--grpc-port", grpc_port,
                                       "--batch-size", "8", "--batch-delay-ms", "1500"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        client = tg.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        wait_for(lambda: _ready(client), 60, 0.1, "gRPC ready")
        result = {}

        def slow() -> None:
            inp = tg.InferInput("x", [1, 16], "FP32")
            inp.set_data_from_numpy(np.full((1, 16), 0.5, "float32"))
            result["version"] = client.infer("mlp", [inp]).get_response().model_version

        t = threading.Thread(target=slow, name="slow-grpc-call")
        t.start()
        time.sleep(0.4)
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result == {"version": "1.0.0"}, err
    assert proc.returncode == 0, err
    assert f"gRPC (KServe v2 / Triton GRPCInferenceService): 127.0.0.1:{grpc_port}" in out


def test_grpc_port_in_use_is_one_line_exit_2(repo):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        proc = subprocess.run(serve_argv(repo, "--port", free_port(), "--grpc-port", taken),
                              capture_output=True, text=True, timeout=60, env=_env(), check=False)
    assert_one_line_error(proc, 2, f"gRPC port {taken}", "already in use")
    assert "--grpc-port" in proc.stderr  # the hint
