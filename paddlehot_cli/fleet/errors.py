"""Errors of registry work. Each carries a short `reason` (a metrics label) and is a UserError:
the CLI prints one line, the follower logs one line and keeps serving what it has."""

from __future__ import annotations

from paddlehot_cli.errors import UserError


class FleetError(UserError):
    reason = "error"
    retry = False  # True: the registry may answer next time (network, 5xx), back off and retry


class RegistryUnreachable(FleetError):
    reason = "unreachable"
    retry = True


class RegistryHTTPError(FleetError):
    """The registry answered with an unexpected status."""

    def __init__(self, message: str, status: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.retry = status >= 500 or status == 429
        self.reason = "auth" if status in (401, 403) else (
            "not_found" if status == 404 else f"http_{status}")


class DigestMismatch(FleetError):
    reason = "digest_mismatch"


class NotAPackage(FleetError):
    reason = "not_paddlehot"


class SizeMismatch(FleetError):
    reason = "size_mismatch"


class NoSpace(FleetError):
    reason = "no_space"
    retry = True  # a condition of this box: what is served stays, the follower backs off


class Untrusted(FleetError):
    """Unsigned, wrongly signed, or signed by a key this box does not trust (--trust)."""

    reason = "untrusted"


class TooLarge(FleetError):
    reason = "too_large"


class BadReference(FleetError):
    reason = "bad_reference"
