"""Decode inference request bodies without stalling the event loop.

JSON decoding holds the GIL (orjson, then numpy): a 64 MB body takes about a second on a small
box, and a *thread* would still stop the event loop (and /v2/health/*) for that long. So bodies
whose JSON part is larger than `inline_bytes` go to one helper process (decode_worker.py, a
plain subprocess: no multiprocessing, whose spawn re-imports the main script).
Only pipe I/O (GIL released) and unpickling the decoded arrays (a memcpy) happen here. The
helper is started before models are loaded (fork is cheap then) and restarted if it dies.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import threading
from pathlib import Path

from paddlehot_cli.core import cpu_affinity
from paddlehot_cli.serve import protocol
from paddlehot_cli.serve.decode_worker import HEADER, LENGTH
from paddlehot_cli.serve.protocol import InferRequest, ProtocolError

log = logging.getLogger("paddlehot.serve")
# the helper imports the very paddlehot_cli this process runs (a checkout, a wheel, a worktree)
_WORKER = ("import sys; sys.path.insert(0, sys.argv[1]); "
           "from paddlehot_cli.serve.decode_worker import main; main()")
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class DecoderDied(RuntimeError):
    pass


class BodyDecoder:
    def __init__(self, inline_bytes: int = 1 << 20):
        self.inline_bytes = inline_bytes
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one body at a time through the pipe
        self._closed = False

    def _json_size(self, body: bytes, header_length: str | None) -> int:
        return self._json_size_of(len(body), header_length)

    @staticmethod
    def _json_size_of(size: int, header_length: str | None) -> int:
        if header_length is None:
            return size
        try:
            return min(size, int(header_length))
        except ValueError:
            return 0  # the parser reports it

    def inline(self, body: bytes, header_length: str | None) -> bool:
        """Whether decode() would parse this body here (small) rather than in the helper."""
        return self._json_size(body, header_length) <= self.inline_bytes or self._closed

    def decode(self, body: bytes | list[bytes], header_length: str | None) -> InferRequest:
        """Parse a body (bytes, or the chunks it arrived in), a large JSON one in the helper
        process; call it off the event loop (it waits on the pipe). Chunks go down the pipe as
        they are: a large body is never joined into a second copy. Raises ProtocolError."""
        size = len(body) if isinstance(body, bytes) else sum(map(len, body))
        if self._json_size_of(size, header_length) <= self.inline_bytes or self._closed:
            return protocol.parse_infer_request(
                body if isinstance(body, bytes) else b"".join(body), header_length)
        return self._decode_remote(body, header_length)

    def start(self) -> None:
        """Start the helper now (before models are loaded: forking is cheap then). If it cannot
        start, large bodies are decoded in a thread and the reason is logged."""
        with self._lock:
            try:
                self._ensure()
            except OSError as exc:
                log.warning("cannot start the body decoder process (%s); large bodies will be "
                            "decoded in the server", exc)

    def _ensure(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER, _PACKAGE_PARENT],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True,
            )
            cpu_affinity.release(self._proc.pid)  # not on the event loop's CPU
        return self._proc

    def _decode_remote(self, body: bytes | list[bytes], header_length: str | None
                       ) -> InferRequest:
        parts = [body] if isinstance(body, bytes) else body
        with self._lock:
            try:
                kind, value = self._exchange(self._ensure(), parts, header_length)
            except (OSError, DecoderDied) as exc:
                log.warning("the body decoder process failed (%s); decoding here", exc)
                self._kill()
                return protocol.parse_infer_request(b"".join(parts), header_length)
        if kind == "error":
            raise ProtocolError(value)
        return value

    @staticmethod
    def _exchange(proc: subprocess.Popen, parts: list[bytes], header_length: str | None) -> tuple:
        field = header_length.encode() if header_length is not None else b""
        proc.stdin.write(HEADER.pack(sum(map(len, parts)), len(field)) + field)
        for part in parts:
            view = memoryview(part)
            while view:  # os.write releases the GIL; the pipe takes 64 KB at a time
                view = view[proc.stdin.write(view):]
        head = _read_exact(proc.stdout, LENGTH.size)
        data = _read_exact(proc.stdout, LENGTH.unpack(head)[0])
        return pickle.loads(data)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _read_exact(stream, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise DecoderDied("the decoder process exited")
        got += k
    return bytes(buf)
