"""A seeded, time-bounded fuzz test of serve's HTTP/1.1 protocol (issue 22).

Valid requests (infer in JSON and binary tensors, metadata, health, index, pipelined runs) are
mutated (bytes flipped, inserted, deleted, truncated, duplicated, header lines repeated, CRLFs
moved) or replaced by random bytes, and sent in random pieces over many connections at once.
Invariants:
- every connection is closed by the server within its deadlines (head, body, keep-alive,
  linger): nothing is left half-answered and open;
- no reply is a 500 (every failure a client can cause is a 4xx or a 503);
- afterwards, the server's fds and RSS are back near their baseline, the version is still
  loaded, and a good request gets the right answer.

PADDLEHOT_FUZZ_SECONDS (default 15) bounds the run; PADDLEHOT_FUZZ_SEED picks the seed (the
failure message names it, so a failure can be replayed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

import numpy as np
import pytest

from paddlehot_cli.bench.hostile_requests import ROW, fuzz_case, seeds
from tests.serve_fixtures.helpers import start_runtime, wait_for
from tests.serve_fixtures.raw_http import Reader, connect, post

SECONDS = float(os.environ.get("PADDLEHOT_FUZZ_SECONDS", "15"))
SEED = int(os.environ.get("PADDLEHOT_FUZZ_SEED", "22"))
DEADLINE_S = 9.0  # head 1 s + body 1 s + keep-alive 1 s + linger 2 s, with room for a busy box


async def _one(port: int, payload: bytes, rng: random.Random) -> tuple[str, list[bytes]]:
    """Send `payload` in random pieces; read until the server closes. ('closed'|'open', heads)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()

    async def drain() -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)

    reading = asyncio.ensure_future(drain())
    try:
        view = memoryview(payload)
        while view:
            n = rng.randint(1, max(1, len(view)))
            writer.write(view[:n])
            view = view[n:]
            if rng.random() < 0.2:
                await asyncio.sleep(rng.random() * 0.05)
        await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server closed early: allowed
    try:
        await asyncio.wait_for(reading, DEADLINE_S)
        state = "closed"
    except (asyncio.TimeoutError, TimeoutError):
        state = "open"
    except (ConnectionError, OSError):
        state = "closed"  # a reset is a close
    writer.close()
    heads = [line for line in bytes(received).split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    return state, heads


async def _campaign(port: int, seconds: float, seed: int) -> tuple[int, list[str]]:
    rng = random.Random(seed)
    corpus = seeds()
    failures: list[str] = []
    sent = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        batch = [fuzz_case(rng, corpus) for _ in range(64)]
        results = await asyncio.gather(*(_one(port, p, random.Random(rng.random()))
                                         for p in batch))
        sent += len(batch)
        for payload, (state, heads) in zip(batch, results):
            if state != "closed":
                failures.append(f"left open: {payload[:120]!r}")
            for head in heads:
                if head.startswith(b"HTTP/1.1 500"):
                    failures.append(f"500 for {payload[:120]!r}")
    return sent, failures


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def fuzz_server(mlp_repo):
    rt = start_runtime(mlp_repo, max_body_mb=1.0, max_connections_per_client=256, keep_alive=1,
                       body_timeout_s=1.0, head_timeout_s=1.0)
    yield rt
    rt.stop_thread()


def test_fuzzed_requests_are_answered_or_closed_and_leave_nothing_behind(fuzz_server, caplog):
    import logging

    caplog.set_level(logging.ERROR, logger="asyncio")
    rt = fuzz_server
    _good(rt)  # warm: lazily opened fds and caches exist before the baseline
    fds, rss = len(os.listdir("/proc/self/fd")), _rss_mb()
    sent, failures = asyncio.run(_campaign(rt.port, SECONDS, SEED))
    assert sent > 0
    print(f"fuzz: {sent} cases in {SECONDS:g} s, seed {SEED}")
    assert not failures, f"seed {SEED}: {len(failures)} of {sent} cases failed: {failures[:5]}"
    fatal = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not fatal, f"seed {SEED}: a protocol callback raised: {fatal[:3]}"
    wait_for(lambda: len(os.listdir("/proc/self/fd")) <= fds + 5, 15,
             what=f"fds back near {fds} (seed {SEED})")
    assert _rss_mb() < rss + 100, (rss, _rss_mb())
    assert rt.manager.loaded_versions("mlp") == ["1.0.0"]
    assert rt.server.options.limits.buffered == 0 and rt.server.options.limits.connections <= 1
    _good(rt)


def _good(rt) -> None:
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                   "data": ROW}]}).encode()
    with connect(rt) as sock:
        sock.sendall(post("/v2/models/mlp/infer", body))
        status, _, reply = Reader(sock).response()
    assert status == 200, reply
    want = rt.manager.servable("mlp").infer({"x": np.asarray([ROW], "float32")})["logits"]
    np.testing.assert_allclose(json.loads(reply)["outputs"][0]["data"], want.ravel(), rtol=1e-5)
