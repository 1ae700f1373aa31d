"""What hostile and careless clients send, as bytes: seed requests to mutate (the HTTP fuzz test)
and one generator per attack class (the hostile-mix benchmark). No server code here."""

from __future__ import annotations

import gzip
import json
import random

ROW = [0.1 * i for i in range(16)]


def _post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def infer_body(row: list[float] | None = None) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                   "data": row or ROW}]}).encode()


def seeds() -> list[bytes]:
    """Valid requests of every shape serve answers (the demo MLP, input x FP32 [-1, 16])."""
    import struct

    infer = infer_body()
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                   "parameters": {"binary_data_size": 64}}],
                       "parameters": {"binary_data_output": True}}).encode()
    binary = head + struct.pack("<16f", *ROW)
    return [
        _post("/v2/models/mlp/infer", infer),
        _post("/v2/models/mlp/versions/1.0.0/infer", binary,
              f"Inference-Header-Content-Length: {len(head)}"),
        _get("/v2/health/live"), _get("/v2/models/mlp"), _get("/v2/models/mlp/ready"),
        _post("/v2/repository/index", b"{}"),
        b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(infer), infer),
        _post("/v2/models/mlp/infer", infer) + _get("/v2/health/ready")
        + _post("/v2/models/mlp/infer", infer),
        _get("http://127.0.0.1:8000/v2/health/live"),
        b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
    ]


_HOSTILE_HEADERS = [b"Content-Length: 99999999999999999999\r\n",
                    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"Upgrade: h2c\r\n",
                    b"Expect: 100-continue\r\n", b"Content-Encoding: gzip\r\n",
                    b"Host: 127.x.evil\r\n", b"Inference-Header-Content-Length: -3\r\n"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """1-4 mutations: bytes flipped, inserted, deleted, truncated, a header line repeated, a
    stray CR/LF/NUL, a hostile header, the whole request twice."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        at = rng.randrange(len(out) + 1) if out else 0
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2 and out:
            del out[at:at + rng.randint(1, 32)]
        elif op == 3:
            del out[at:]
        elif op == 4:
            lines = bytes(out).split(b"\r\n")
            if len(lines) > 2:
                i = rng.randrange(1, len(lines) - 1)
                lines.insert(i, lines[i] * rng.randint(1, 3))
                out = bytearray(b"\r\n".join(lines))
        elif op == 5:
            out[at:at] = rng.choice([b"\n", b"\r", b"\r\n\r\n", b"\x00"])
        elif op == 6:
            cut = bytes(out).find(b"\r\n")
            if cut >= 0:
                out[cut + 2:cut + 2] = rng.choice(_HOSTILE_HEADERS)
        else:
            out = bytearray(bytes(out) * 2)
    return bytes(out)


def fuzz_case(rng: random.Random, corpus: list[bytes]) -> bytes:
    """A mutated seed, or (one time in ten) random bytes."""
    if rng.random() < 0.1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
    return mutate(rng, rng.choice(corpus))


# -- attack classes for the hostile-mix benchmark: (name, bytes to send, then stay silent?) ------

def attacks(max_body: int) -> list[tuple[str, bytes, bool]]:
    """One request per class. `silent`: send it, then hold the connection without sending more
    (the server must end it by its deadlines)."""
    bomb = gzip.compress(b"0" * (4 * max_body))
    deep = b'{"id": ' + b"[" * 400 + b"]" * 400 + b', "inputs": []}'
    huge = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 2**62],
                                   "data": []}]}).encode()
    big = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": [' \
        + b"0.1," * (max(0, max_body - 200) // 4) + b'0]}]}'
    return [
        ("bad-target", _get("http://a:99999/v2/health/live"), False),
        ("connect", b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n", False),
        ("h2c", _get("/v2/health/live")[:-2] + b"Upgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
         False),
        ("http09", b"GET /v2/health/live\r\n\r\n", False),
        ("no-host", b"GET /v2/health/live HTTP/1.1\r\n\r\n", False),
        ("header-flood", b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\n" + b"a:\r\n" * 60_000,
         False),
        ("slow-head", b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n", True),
        ("slow-body", b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 100000\r\n\r\n{", True),
        ("expect-silence", b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n", True),
        ("huge-length", b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Length: 999999999999\r\n\r\n", False),
        ("gzip-bomb", _post("/v2/models/mlp/infer", bomb, "Content-Encoding: gzip"), False),
        ("big-json", _post("/v2/models/mlp/infer", big), False),
        ("deep-json", _post("/v2/models/mlp/infer", deep), False),
        ("huge-shape", _post("/v2/models/mlp/infer", huge), False),
        ("admin-rebind", b"POST /v2/repository/models/mlp/unload HTTP/1.1\r\n"
                         b"Host: 127.x.attacker.example\r\nContent-Length: 0\r\n\r\n", False),
        ("idle", b"", True),
    ]
