"""Decode inference request bodies without stalling the event loop.

JSON decoding holds the GIL (orjson, then numpy): a 64 MB body takes about a second on a small
box, and a *thread* would still stop the event loop (and /v2/health/*) for that long. So bodies
whose JSON part is larger than `inline_bytes` are decoded in one helper process, started on
first need (spawned, not forked: the server has paddle's threads). Only the transfer of the
bytes and of the decoded arrays touches this process's GIL, in short pieces.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from paddlehot_cli.serve import protocol
from paddlehot_cli.serve.protocol import InferRequest

log = logging.getLogger("paddlehot.serve")


class BodyDecoder:
    def __init__(self, inline_bytes: int = 1 << 20):
        self.inline_bytes = inline_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _json_size(self, body: bytes, header_length: str | None) -> int:
        if header_length is None:
            return len(body)
        try:
            return min(len(body), int(header_length))
        except ValueError:
            return 0  # the parser reports it

    async def decode(self, body: bytes, header_length: str | None) -> InferRequest:
        """Raises protocol.ProtocolError for a malformed body."""
        if self._json_size(body, header_length) <= self.inline_bytes:
            return protocol.parse_infer_request(body, header_length)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), protocol.parse_infer_request,
                                              body, header_length)
        except BrokenProcessPool:  # the helper died (OOM killer): start a new one next time
            log.warning("the body decoder process died; restarting it")
            with self._lock:
                self._pool = None
            return await asyncio.to_thread(protocol.parse_infer_request, body, header_length)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
