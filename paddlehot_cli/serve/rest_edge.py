"""What every HTTP front end shares (serve's own protocol, the ASGI fast path, Starlette): path
segments, bodies read within their limit, Content-Encoding, and a refusal as an HTTP reply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote

from paddlehot_cli.serve import protocol
from paddlehot_cli.serve.protocol import BodyTooLarge, MemoryBudget, ProtocolError
from paddlehot_cli.serve.refusals import Rejected

JSON = "application/json"
ReplyTuple = tuple[int, bytes, str, list]  # (status, body, media type, extra headers)
Reply = Callable[[int, bytes, str, list], Any]


def path_segments(raw: bytes, prefix: str) -> list[str]:
    """Path segments after `prefix`, each percent-decoded on its own: an encoded '/' stays
    inside its segment (and is then rejected as an invalid name) instead of changing the route."""
    path = raw.decode("latin-1").split("?", 1)[0]
    rest = path.removeprefix(prefix)
    return [unquote(s) for s in rest.strip("/").split("/")] if rest.strip("/") else []


def reply_of(exc: Rejected) -> ReplyTuple:
    """A refusal as an HTTP reply: its status, {"error": message}, its headers."""
    extra = [(k.lower().encode(), str(v).encode()) for k, v in exc.headers.items()]
    return exc.status, protocol.dumps({"error": exc.message}), JSON, extra


async def read_body(chunks: AsyncIterator[bytes], length: str | None, limit: int) -> bytes:
    """The whole body as sent, within `limit` bytes (413 beyond). Content-Encoding is the
    caller's: infer bodies are inflated off the event loop (rest_infer.py)."""
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise Rejected(400, "invalid Content-Length") from None
        if declared > limit:
            raise Rejected(413, f"request body of {length} bytes is larger than the limit "
                                f"of {limit}")
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"request body is larger than the limit of {limit} bytes")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def refuse_encoding(encoding: str | None) -> None:
    """Bodies other than infer requests are small JSON: a compressed one is refused (415) rather
    than inflated on the event loop."""
    if encoding and encoding.strip().lower() != "identity":
        raise Rejected(415, "Content-Encoding is accepted on infer requests only")


def decompressed(body: bytes, encoding: str, limit: int,
                 reserve: Callable[[int], bool] | None = None) -> bytes:
    """A Content-Encoding'd body, decoded within `limit` bytes (413 beyond, 400 if corrupt,
    503 when `reserve` refuses the memory it takes)."""
    try:
        return protocol.decompress(body, encoding.strip().lower(), limit, reserve)
    except BodyTooLarge as exc:
        raise Rejected(413, str(exc)) from None
    except MemoryBudget as exc:
        raise Rejected(503, str(exc), reason="body_bytes", headers={"Retry-After": "1"}) \
            from None
    except ProtocolError as exc:
        raise Rejected(400, str(exc)) from None
