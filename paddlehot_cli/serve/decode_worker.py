"""The body decoder's helper process (body_decoder.py starts it; it calls `main()`).

Reads requests from stdin: 8-byte body length, 8-byte header-length field length (0 = none),
the field, the body. Writes one answer per request to stdout: 8-byte length, then a pickle of
("ok", InferRequest) or ("error", message). Imports numpy and orjson only, never paddle.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys

from paddlehot_cli.serve.protocol import ProtocolError, parse_infer_request

HEADER = struct.Struct("<QQ")
LENGTH = struct.Struct("<Q")


def read_exact(stream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def main() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    try:  # a 64 MB body takes seconds here: never at the expense of the event loop's CPU time
        os.nice(10)
    except OSError:
        pass
    while True:
        head = read_exact(inp, HEADER.size)
        if head is None:
            return
        body_len, field_len = HEADER.unpack(head)
        field = read_exact(inp, field_len) if field_len else b""
        body = read_exact(inp, body_len) if body_len else b""
        if field is None or body is None:
            return
        try:
            answer = ("ok", parse_infer_request(body, field.decode() if field_len else None))
        except ProtocolError as exc:
            answer = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported, the server answers 400
            answer = ("error", f"cannot decode the body: {type(exc).__name__}")
        data = pickle.dumps(answer, protocol=5)
        out.write(LENGTH.pack(len(data)))
        out.write(data)
        out.flush()


if __name__ == "__main__":
    main()
