"""serve against hostile clients, byte for byte on 127.0.0.1 (issue 22): every connection is
answered or closed, nothing leaks a file descriptor, and what is not HTTP/1.x is refused.

Each case is a class of attack; each checks the reply, that the connection closes, and at the end
that the server holds no more fds than before and still answers a good request correctly."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from tests.serve_fixtures.helpers import start_runtime, wait_for
from tests.serve_fixtures.raw_http import Reader, connect, get, post

ROW = [0.1 * i for i in range(16)]
INFER = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                "data": ROW}]}).encode()


@pytest.fixture(scope="module")
def served(mlp_repo):
    rt = start_runtime(mlp_repo, max_body_mb=0.01, keep_alive=2,
                       max_connections_per_client=400)  # caps: the `bounded` server
    yield rt
    rt.stop_thread()


@pytest.fixture(autouse=True)
def no_transport_errors(caplog):
    """A protocol callback that raises is 'Fatal error on transport' in asyncio's log: uvloop
    then closes the connection, which can hide the bug behind a passing test."""
    import logging

    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    fatal = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not fatal, fatal


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))  # the server runs in this process


def _answer_then_close(rt, raw: bytes) -> tuple[int, dict, bytes]:
    """Send `raw`, read one reply, and require the server to close the connection after it."""
    with connect(rt) as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert headers.get("connection") == "close", (raw[:60], status, body)
        assert reader.closed(), raw[:60]
        return status, headers, json.loads(body)


def _good_answer(rt) -> None:
    with connect(rt) as sock:
        sock.sendall(post("/v2/models/mlp/infer", INFER))
        status, _, body = Reader(sock).response()
    assert status == 200, body
    assert len(json.loads(body)["outputs"][0]["data"]) == 4


@pytest.mark.parametrize("raw", [
    b"GET http://a:99999/v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n",  # httptools: parse_url fails
    b"POST http://[::1:bad/v2/models/mlp/infer HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
    b"GET http://127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # no path: was a 500
], ids=["bad-port", "bad-ipv6", "connect", "no-path"])
def test_unparsable_targets_are_answered_and_leak_no_fd(served, raw):
    """The one-client outage: each of these used to leave its socket open forever."""
    status, _, body = _answer_then_close(served, raw)  # warm: lazily created fds exist now
    assert status == 400 and body["error"], body
    before = _fds()
    for _ in range(200):
        status, _, _ = _answer_then_close(served, raw)
        assert status == 400
    wait_for(lambda: _fds() <= before + 2, 10, what=f"fds back to {before} (now {_fds()})")
    _good_answer(served)


@pytest.mark.parametrize("raw, needle", [
    (b"GET /v2/health/live HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", "HTTP/2.0"),
    (b"GET /v2/health/live HTTP/0.9\r\n\r\n", "HTTP/0.9"),
    (b"GET /v2/health/live\r\n\r\n", "HTTP/0.9"),
    (b"GET /v2/health/live HTTP/1.1\r\n\r\n", "Host"),
    (b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host"),
    (b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     "upgrade"),
], ids=["http2", "http09", "http09-bare", "no-host", "two-hosts", "websocket"])
def test_what_is_not_http_1x_is_refused_with_400_and_closed(served, raw, needle):
    status, _, body = _answer_then_close(served, raw)
    assert status == 400 and needle in body["error"], body


def test_h2c_upgrade_cannot_swallow_later_requests(served):
    h2c = (b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\n"
           b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
           b"Content-Length: %d\r\n\r\n" % len(INFER) + INFER)
    with connect(served) as sock:
        sock.sendall(h2c + get("/v2/health/live"))
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert status == 400 and "upgrade" in json.loads(body)["error"], body
        assert reader.closed()  # the request behind it is not served over the upgraded stream


def test_the_whole_head_counts_against_its_limit(served):
    # 60,000 empty headers: 240 KiB on the wire, 0 bytes of names and values
    many = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"a:\r\n" * 60_000 + b"\r\n"
    padded = (b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad:" + b" " * 70_000
              + b"v\r\n\r\n")  # optional whitespace the parser drops before the value
    lines = (b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             + b"".join(b"x-%d: 1\r\n" % i for i in range(120)) + b"\r\n")  # over 100 lines
    for raw in (many, padded, lines):
        status, _, body = _answer_then_close(served, raw)
        assert status == 431, (status, body)
    fine = (b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"".join(b"x-%d: %s\r\n" % (i, b"v" * 500) for i in range(90)) + b"\r\n")
    with connect(served) as sock:  # 90 headers, 46 KiB: within the limits, kept alive
        sock.sendall(fine + fine)
        reader = Reader(sock)
        assert reader.response()[0] == 200 and reader.response()[0] == 200


def test_a_declared_length_over_the_limit_is_refused_before_the_body(served):
    """413 at once from the head (no waiting for a body that may never come), then the
    connection lingers so the client reads the reply, and closes."""
    with connect(served) as sock:
        sock.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 1000000000\r\n\r\n" + b"x" * 5000)
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert status == 413 and headers["connection"] == "close", body
        started = time.monotonic()
        try:
            sock.sendall(b"y" * 100_000)  # the client goes on sending: dropped, not a reset
        except OSError:
            pass
        assert reader.closed()
        assert time.monotonic() - started < 5


def test_pipelined_requests_before_garbage_are_answered_then_closed(served):
    with connect(served) as sock:
        sock.sendall(post("/v2/models/mlp/infer", INFER) + get("/v2/health/live")
                     + b"\x16\x03\x01 not http at all\r\n\r\n")
        reader = Reader(sock)
        first = reader.response()
        second = reader.response()
        assert first[0] == 200 and "outputs" in json.loads(first[2])
        assert second[0] == 200 and second[1].get("connection") == "close"
        assert reader.closed()


def test_a_reply_that_cannot_be_encoded_is_a_500_reply(served, monkeypatch):
    from paddlehot_cli.serve import protocol

    def broken(*args, **kwargs):
        raise TypeError("Type is not JSON serializable: numpy.bfloat16")

    monkeypatch.setattr(protocol, "encode_infer_response", broken)
    with connect(served) as sock:
        sock.sendall(post("/v2/models/mlp/infer", INFER))
        status, _, body = Reader(sock).response()
    assert status == 500 and "encoding the reply" in json.loads(body)["error"], body
    monkeypatch.undo()
    _good_answer(served)


def test_many_bad_targets_on_many_sockets_leave_every_version_loaded(served):
    """The outage end to end, briefly: 300 unparsable requests over concurrent sockets."""
    before = _fds()
    socks = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        s.sendall(b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n")
        socks.append(s)
    for s in socks:
        reader = Reader(s)
        assert reader.response()[0] == 400 and reader.closed()
        s.close()
    wait_for(lambda: _fds() <= before + 2, 15, what=f"fds back to {before} (now {_fds()})")
    assert served.manager.loaded_versions("mlp") == ["1.0.0"]
    _good_answer(served)


# -- time and memory bounds (a server with small limits of its own) ------------------------------

@pytest.fixture(scope="module")
def bounded(mlp_repo_factory):
    rt = start_runtime(mlp_repo_factory(), max_body_mb=0.5, max_connections=24, max_connections_per_client=6,
                       max_buffered_mb=1.0, body_timeout_s=1.5)
    yield rt
    rt.stop_thread()


def _from(rt, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", rt.port), timeout=10, source_address=(source, 0))


@pytest.mark.parametrize("tail", [b"x" * 10, b""], ids=["slow-body", "expect-then-silence"])
def test_a_body_that_never_arrives_is_cut_off_with_408(bounded, tail):
    extra = b"Expect: 100-continue\r\n" if not tail else b""
    with connect(bounded) as sock:
        sock.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra
                     + b"Content-Length: 1000\r\n\r\n" + tail)
        reader = Reader(sock)
        started = time.monotonic()
        status, headers, body = reader.response()
        if status == 100:
            status, headers, body = reader.response()
        assert status == 408 and headers["connection"] == "close", body
        assert reader.closed()
        assert 1.0 < time.monotonic() - started < 5


def test_connections_are_capped_per_client_and_in_total_with_a_503(bounded):
    held = [_from(bounded, "127.0.0.2") for _ in range(6)]
    try:
        time.sleep(0.2)
        with _from(bounded, "127.0.0.2") as extra:  # the 7th from one address
            reader = Reader(extra)
            status, headers, body = reader.response()
            assert status == 503 and headers["retry-after"] == "1", body
            assert "per client" in json.loads(body)["error"] and reader.closed()
        _good_answer(bounded)  # another address is not affected
        held += [_from(bounded, f"127.0.0.{i}") for i in range(3, 6) for _ in range(6)]
        time.sleep(0.2)
        with _from(bounded, "127.0.0.9") as extra:  # 24 open: the total is reached
            status, _, body = Reader(extra).response()
            assert status == 503 and "limit" in json.loads(body)["error"], body
    finally:
        for s in held:
            s.close()
    wait_for(lambda: bounded.server.options.limits.connections <= 1, 10, what="connections freed")
    _good_answer(bounded)


def test_body_bytes_held_at_once_are_bounded_server_wide(bounded):
    """1 MB for every body being received together (at most a quarter from one address): four
    clients hold 200 KB each; the fifth is refused at once."""
    head = (b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 250000\r\n\r\n")
    socks = [_from(bounded, f"127.0.0.{i}") for i in range(4, 9)]
    try:
        for s in socks[:4]:
            s.sendall(head + b"1" * 200_000)
        time.sleep(0.3)
        socks[4].sendall(head + b"1" * 249_000)  # 1,049,000 bytes in all: over 1 MiB
        status, headers, body = Reader(socks[4]).response()
        assert status == 503 and headers["retry-after"] == "1", body
        for s in socks[:4]:  # the first four complete (their bodies are not JSON: 400, not 503)
            s.sendall(b"1" * 50_000)
            assert Reader(s).response()[0] == 400
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: bounded.server.options.limits.buffered == 0, 10, what="body bytes released")
    assert not bounded.server.options.limits.buffered_by_client
    _good_answer(bounded)


def test_one_client_holds_at_most_a_share_of_the_body_bound(bounded):
    """A flood of large bodies from one address cannot take the body bytes other clients need:
    one address holds at most a quarter of --max-buffered-mb, or one largest body (here 0.5 MB
    + 64 KiB of 1 MB)."""
    head = (b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 400000\r\n\r\n")
    first, second = _from(bounded, "127.0.0.3"), _from(bounded, "127.0.0.3")
    with first, second:
        first.sendall(head + b"1" * 390_000)
        time.sleep(0.2)
        second.sendall(head + b"1" * 390_000)  # 780 KB from one address: over its share
        status, _, body = Reader(second).response()
        assert status == 503, body
        _good_answer(bounded)  # another address still gets its body in
    wait_for(lambda: bounded.server.options.limits.buffered == 0, 10, what="body bytes released")


def test_compressed_bodies_are_inflated_off_the_event_loop(bounded, monkeypatch):
    import gzip
    import threading

    from paddlehot_cli.serve import protocol

    seen: list[str] = []
    inflate = protocol.decompress

    def recording(*args):
        seen.append(threading.current_thread().name)
        return inflate(*args)

    monkeypatch.setattr(protocol, "decompress", recording)
    packed = gzip.compress(INFER)
    with connect(bounded) as sock:
        sock.sendall(post("/v2/models/mlp/infer", packed, "Content-Encoding: gzip"))
        status, _, body = Reader(sock).response()
    assert status == 200 and "outputs" in json.loads(body), body
    assert seen and all(name.startswith("paddlehot-body") for name in seen), seen
    bomb = gzip.compress(b"0" * 5_000_000)  # 5 MB of zeros in ~5 KB: over the 0.5 MB limit
    with connect(bounded) as sock:
        sock.sendall(post("/v2/models/mlp/infer", bomb, "Content-Encoding: gzip"))
        status, _, body = Reader(sock).response()
    assert status == 413, body
    with connect(bounded) as sock:  # other routes take no compressed bodies at all
        sock.sendall(post("/v2/repository/index", gzip.compress(b"{}"), "Content-Encoding: gzip"))
        status, _, body = Reader(sock).response()
    assert status == 415, body


def _infer_json(shape, data=()) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": shape,
                                   "data": list(data)}]}).encode()


def _infer_binary(shape) -> tuple[bytes, str]:
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": shape,
                                   "parameters": {"binary_data_size": 0}}]}).encode()
    return head, str(len(head))


@pytest.mark.parametrize("body, needle", [
    (_infer_json([0, 2**62]), "dimension over"),
    (_infer_json([2**32, 2**32, 0]), "dimension over"),
    (_infer_json([1] * 100, [1]), "100 dimensions"),
    (b'{"id": ' + b"[" * 300 + b"]" * 300 + b', "inputs": []}', "'id' must be a string"),
    (b'{"parameters": {"a": ' + b'{"b": ' * 300 + b"1" + b"}" * 301 + b', "inputs": []}',
     "must be a string, number or boolean"),
    (b'{"inputs": [{"name": "x", "datatype": "BOOL", "shape": [1], "data": '
     + b"[" * 900 + b"true" + b"]" * 900 + b"}]}", "not a list of BOOL"),
], ids=["zero-by-huge", "huge-by-huge-by-zero", "rank-100", "deep-id", "deep-parameters",
        "deep-data"])
def test_hostile_shapes_and_nesting_are_a_quick_400(served, body, needle):
    with connect(served) as sock:
        sock.sendall(post("/v2/models/mlp/infer", body))
        status, _, reply = Reader(sock).response()
    assert status == 400 and needle in json.loads(reply)["error"], reply


@pytest.mark.parametrize("shape", [[0, 2**62], [2**32, 2**32, 0], [1] * 100])
def test_hostile_shapes_in_binary_tensors_are_400(served, shape):
    head, length = _infer_binary(shape)
    with connect(served) as sock:
        sock.sendall(post("/v2/models/mlp/infer", head, f"Inference-Header-Content-Length: {length}"))
        status, _, reply = Reader(sock).response()
    assert status == 400, reply
