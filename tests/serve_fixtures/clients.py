"""Client threads for soak and fault tests: every request and every exception is recorded,
loops are bounded, and stopping asserts that each thread really finished."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx


JSON = {"content-type": "application/json"}


@dataclass
class Outcome:
    sent: float  # time.monotonic() when the request was sent
    status: int  # HTTP status, -1 for a transport error
    version: str | None  # model_version of a 200 answer
    error: str = ""


class Clients:
    """`n` threads POSTing `body()` to `url` until stop() or `max_seconds`."""

    def __init__(self, url: str, body, n: int = 4, max_seconds: float = 120.0):
        self.url, self.body, self.max_seconds = url, body, max_seconds
        self.outcomes: list[Outcome] = []
        self.crashes: list[BaseException] = []  # a client thread that died is a test failure
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"fault-client-{i}", daemon=True)
                         for i in range(n)]

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        try:
            with httpx.Client(timeout=30) as c:
                while not self._stop.is_set() and time.monotonic() < deadline:
                    sent = time.monotonic()
                    try:
                        r = c.post(self.url, content=self.body(), headers=JSON)
                        ok = r.status_code == 200
                        version = r.json().get("model_version") if ok else None
                        o = Outcome(sent, r.status_code, version, "" if ok else r.text[:200])
                    except Exception as exc:  # noqa: BLE001 - a transport failure is a failure
                        o = Outcome(sent, -1, None, repr(exc)[:200])
                    with self._lock:
                        self.outcomes.append(o)
                    if o.status == -1:
                        self._stop.wait(0.05)  # the server is gone: do not spin
        except BaseException as exc:  # noqa: BLE001
            self.crashes.append(exc)

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
            assert not t.is_alive(), f"{t.name} did not finish"
        assert not self.crashes, self.crashes

    def wait_requests(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.outcomes)
        while len(self.outcomes) - start < n:
            assert time.monotonic() < deadline, f"fewer than {n} requests in {timeout} s"
            time.sleep(0.02)

    # -- summaries -------------------------------------------------------------------------

    def failed(self, since: float = 0.0) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200 and o.sent >= since]

    def by_version(self) -> dict[str | None, int]:
        out: dict[str | None, int] = {}
        for o in self.outcomes:
            if o.status == 200:
                out[o.version] = out.get(o.version, 0) + 1
        return out

    def summary(self) -> str:
        return (f"{len(self.outcomes)} requests, {len(self.failed())} failed, "
                f"by version {self.by_version()}")
