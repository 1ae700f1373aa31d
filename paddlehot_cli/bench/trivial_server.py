"""A trivial Open Inference Protocol endpoint: the cheapest server possible, answering every infer
with a canned reply. `paddlehot bench --calibrate` runs the load generator against it (in a child
process, so they do not share a GIL) to show what the client itself can drive and costs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

MODEL = "trivial"
_META = json.dumps({
    "name": MODEL, "versions": ["1.0.0"], "platform": "trivial",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}],
}).encode()
_HEAD = json.dumps({"model_name": MODEL, "model_version": "1.0.0", "outputs": [
    {"name": "y", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}]
}).encode()
_INFER = _HEAD + bytes(16)


def _reply(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


META_REPLY = _reply(_META)
INFER_REPLY = _reply(_INFER, f"Inference-Header-Content-Length: {len(_HEAD)}\r\n")


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(INFER_REPLY if head.startswith(b"POST") else META_REPLY)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextmanager
def trivial_endpoint() -> Iterator[str]:
    """Start this module in a child process; yield its model URL."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "paddlehot_cli.bench.trivial_server"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}/{MODEL}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    except KeyboardInterrupt:
        pass
