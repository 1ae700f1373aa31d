"""serve's own HTTP/1.1 protocol (serve/http_protocol.py) over raw sockets on 127.0.0.1:
keep-alive, pipelining, body limits, Expect: 100-continue, chunked bodies, HTTP/1.0, malformed
requests, idle timeouts, and infer requests that never reach the ASGI app."""

from __future__ import annotations

import json
import time

import pytest

from tests.serve_fixtures.raw_http import Reader as _Reader
from tests.serve_fixtures.raw_http import connect as _connect
from tests.serve_fixtures.raw_http import get as _get
from tests.serve_fixtures.raw_http import post as _post

ROW = [0.1 * i for i in range(16)]
INFER = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                "data": ROW}]}).encode()


@pytest.fixture(scope="module")
def served(mlp_repo):
    from paddlehot_cli.serve.runtime import Runtime, ServeConfig

    rt = Runtime(ServeConfig(repo=mlp_repo, port=0, poll_interval=0.3, max_body_mb=0.01))
    seen: list[str] = []  # paths that reached the ASGI app
    asgi = rt.server.app

    async def recording(scope, receive, send):
        seen.append(scope.get("path", ""))
        await asgi(scope, receive, send)

    rt.server.app = recording
    rt.bind()
    rt.start_core()
    rt.make_uvicorn().config.timeout_keep_alive = 1
    rt.start_in_thread()
    yield rt, seen
    rt.stop_thread()


def test_one_connection_mixes_infer_and_other_requests(served):
    rt, seen = served
    with _connect(rt) as sock:
        reader = _Reader(sock)
        for path in ["/v2/models/mlp/infer", "/v2/health/ready", "/v2/models/mlp/versions/1.0.0/infer",
                     "/v2/models/mlp", "/v2/models/mlp/infer"]:
            sock.sendall(_post(path, INFER) if path.endswith("/infer") else _get(path))
            status, headers, body = reader.response()
            assert status == 200, body
            doc = json.loads(body)
            if path.endswith("/infer"):
                assert doc["model_version"] == "1.0.0" and len(doc["outputs"][0]["data"]) == 4
                assert "connection" not in headers  # kept alive
    # the infer requests never reached the ASGI app; the others did
    assert "/v2/health/ready" in seen and "/v2/models/mlp" in seen
    assert not [p for p in seen if p.endswith("/infer")], seen


def test_pipelined_requests_are_answered_in_order(served):
    rt, _ = served
    bad = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3],
                                  "data": [1, 2, 3]}]}).encode()
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(_post("/v2/models/mlp/infer", INFER) + _get("/v2/models/mlp")
                     + _post("/v2/models/mlp/infer", bad) + _get("/v2/health/live")
                     + _post("/v2/models/nope/infer", INFER))
        answers = [reader.response() for _ in range(5)]
    assert [a[0] for a in answers] == [200, 200, 400, 200, 404]
    assert "outputs" in json.loads(answers[0][2])
    assert json.loads(answers[1][2])["name"] == "mlp"
    assert "shape" in json.loads(answers[2][2])["error"]


def test_bodies_over_the_limit_get_413_and_the_connection_closes(served):
    rt, _ = served
    big = b"x" * 20_000  # over --max-body-mb 0.01
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(_post("/v2/models/mlp/infer", big))
        status, headers, body = reader.response()
        assert status == 413 and headers["connection"] == "close", body
        assert reader.closed()
    with _connect(rt) as sock:  # the same through a chunked body with no Content-Length
        reader = _Reader(sock)
        chunks = b"".join(b"%x\r\n%s\r\n" % (4000, b"y" * 4000) for _ in range(5)) + b"0\r\n\r\n"
        sock.sendall(b"POST /v2/repository/index HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
        status, headers, _ = reader.response()
        assert status == 413 and reader.closed()


def test_chunked_body_and_expect_100_continue(served):
    rt, _ = served
    with _connect(rt) as sock:
        reader = _Reader(sock)
        half = len(INFER) // 2
        sock.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (half, INFER[:half])
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(INFER) - half, INFER[half:]))
        status, _, body = reader.response()
        assert status == 200 and "outputs" in json.loads(body)
        head = _post("/v2/models/mlp/infer", INFER, "Expect: 100-continue")
        sock.sendall(head[: -len(INFER)])
        assert reader.response()[0] == 100  # before the body was sent
        sock.sendall(INFER)
        status, _, body = reader.response()
        assert status == 200 and "outputs" in json.loads(body)


def test_http10_and_malformed_requests_close_the_connection(served):
    rt, _ = served
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(_post("/v2/models/mlp/infer", INFER, version="1.0"))
        status, headers, _ = reader.response()
        assert status == 200 and headers["connection"] == "close" and reader.closed()
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
        status, headers, body = reader.response()
        assert status == 400 and headers["connection"] == "close" and reader.closed()
        assert json.loads(body)["error"] == "invalid HTTP request"


def test_idle_connections_close_after_the_keep_alive_timeout(served):
    rt, _ = served
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(_get("/v2/health/live"))
        assert reader.response()[0] == 200
        started = time.monotonic()
        assert reader.closed()  # timeout_keep_alive = 1 s in this module
        assert 0.5 < time.monotonic() - started < 5


def test_head_and_a_client_that_leaves_mid_request(served):
    rt, _ = served
    with _connect(rt) as sock:
        sock.sendall(_post("/v2/models/mlp/infer", INFER)[:-10])  # leaves before the body ends
    with _connect(rt) as sock:
        sock.sendall(_post("/v2/models/mlp/infer", INFER))  # leaves before the answer
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(b"HEAD /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                     + _post("/v2/models/mlp/infer", INFER))
        status, headers, _ = reader.response(head=True)
        assert status == 200 and int(headers["content-length"]) > 0
        status, _, body = reader.response()  # the HEAD left no body bytes behind
        assert status == 200 and "outputs" in json.loads(body)


def test_oversized_and_slow_request_heads_are_cut_off(served, monkeypatch):
    rt, _ = served
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                     + b"a" * 70_000 + b"\r\n\r\n")
        status, headers, body = reader.response()
        assert status == 431 and headers["connection"] == "close", body
        assert reader.closed()
    monkeypatch.setattr(rt.server.options.limits, "head_timeout_s", 1.0)
    with _connect(rt) as sock:
        reader = _Reader(sock)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends
        started = time.monotonic()
        assert reader.closed()
        assert time.monotonic() - started < 5
