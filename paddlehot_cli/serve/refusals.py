"""One refusal type for every front end, and the one table that maps it to gRPC.

A request turned away before or after its version ran is a `Rejected(status, message)`. The
status is an HTTP status because that is the vocabulary the Open Inference Protocol documents:
REST answers it as is with `{"error": message}`, gRPC through `GRPC_CODES`, so a client reads
the same message whichever protocol it speaks. `reason` labels
paddlehot_rejected_requests_total; `headers` are HTTP headers (Retry-After) REST sends.
"""

from __future__ import annotations

from paddlehot_cli.core.router import RouteError
from paddlehot_cli.errors import InputMismatch


class Rejected(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.reason = reason or str(status)


# HTTP status -> gRPC status code name (grpc_server turns the name into grpc.StatusCode).
GRPC_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    413: "RESOURCE_EXHAUSTED",
    429: "UNAVAILABLE",
    431: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def internal(exc: BaseException) -> Rejected:
    """Our own failure (a bug): the one 500 every front end answers; the caller logs it."""
    return Rejected(500, f"internal error: {type(exc).__name__}")


def rejected(exc: Exception) -> Rejected:
    """Any failure a request can meet, as the refusal its client sees."""
    from paddlehot_cli.serve.protocol import BodyTooLarge, ProtocolError  # numpy: only here

    if isinstance(exc, Rejected):
        return exc
    if isinstance(exc, RouteError):
        return Rejected(exc.status, exc.message)
    if isinstance(exc, InputMismatch):
        return Rejected(400, exc.message)
    if isinstance(exc, BodyTooLarge):
        return Rejected(413, str(exc))
    if isinstance(exc, ProtocolError):
        return Rejected(400, str(exc))
    return internal(exc)
