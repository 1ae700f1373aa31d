"""Server-wide bounds no single client can exceed: open connections (in total and per source
address) and request-body bytes held in memory across every connection, plus the threads that
inflate and decode large bodies off the event loop.

One `ClientLimits` per server, shared by every connection. Connection counts change on the
event loop only; body bytes are also held by the body threads (inflating), under a lock. A
refusal is a 503 with Retry-After: the client is told, not dropped.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class ClientLimits:
    max_connections: int = 512
    max_connections_per_client: int = 64
    max_buffered_bytes: int = 256 << 20  # request bodies held at once, all connections together
    # what one source address may hold of it: a quarter, but at least one largest body
    max_buffered_per_client: int = 64 << 20
    body_timeout_s: float = 30.0  # a request's body must arrive within this after its head
    head_timeout_s: float = 10.0  # an HTTP head, or a gRPC connection's handshake, within this
    grpc_idle_s: float = 60.0  # a gRPC connection without a call for this long is closed
    grpc_streams: int = 100  # concurrent calls on one gRPC connection
    max_body_jobs: int = 4  # large or compressed bodies being inflated/decoded or waiting to be
    connections: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    buffered: int = 0
    buffered_by_client: dict[str, int] = field(default_factory=dict)
    body_jobs: int = 0
    _executor: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)  # body threads hold bytes too

    # -- connections -------------------------------------------------------------------------

    def connect(self, client: str) -> str | None:
        """Count a new connection; the reason to refuse it, or None."""
        if self.connections >= self.max_connections:
            return f"the server has {self.connections} connections, its limit; retry later"
        if self.by_client.get(client, 0) >= self.max_connections_per_client:
            return (f"{self.max_connections_per_client} connections from {client} are open, the "
                    "limit per client; reuse them (keep-alive) or retry later")
        self.connections += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return None

    def disconnect(self, client: str) -> None:
        self.connections -= 1
        left = self.by_client.get(client, 1) - 1
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)

    # -- body bytes ----------------------------------------------------------------------------

    def hold(self, n: int, client: str | None = None) -> bool:
        """Account `n` more body bytes held in memory (received from `client`, or inflated on a
        body thread); False (nothing held) beyond the bound. One client may hold at most a
        quarter of it (at least one largest body), so a flood of large bodies from one address
        leaves room for the others'."""
        with self._lock:
            if self.buffered + n > self.max_buffered_bytes:
                return False
            if client is not None:
                mine = self.buffered_by_client.get(client, 0) + n
                if mine > self.max_buffered_per_client:
                    return False
                self.buffered_by_client[client] = mine
            self.buffered += n
            return True

    def drop(self, n: int, client: str | None = None) -> None:
        with self._lock:
            self.buffered -= n
            if client is not None and n:
                left = self.buffered_by_client.get(client, 0) - n
                if left > 0:
                    self.buffered_by_client[client] = left
                else:
                    self.buffered_by_client.pop(client, None)

    # -- large bodies, off the event loop -----------------------------------------------------

    def begin_body_job(self) -> bool:
        if self.body_jobs >= self.max_body_jobs:
            return False
        self.body_jobs += 1
        return True

    def end_body_job(self) -> None:
        self.body_jobs -= 1

    @property
    def executor(self) -> ThreadPoolExecutor:
        """Threads for inflating and decoding bodies: not the event loop, and not the default
        executor that the index and admin routes use."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="paddlehot-body")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
