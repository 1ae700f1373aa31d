"""Request checks every protocol front end shares: model names, version selectors, the version a
metadata request talks about, admin tokens.

A failed check raises `Rejected(status, message)` (serve/refusals.py: one refusal type, mapped to
HTTP and gRPC in one place), so a client sees the same message whichever protocol it speaks.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from paddlehot_cli.core import router
from paddlehot_cli.core.variants import PRECISIONS
from paddlehot_cli.core.versions import check_model_name, is_semver
from paddlehot_cli.errors import UserError
from paddlehot_cli.serve.refusals import Rejected

_SELECTOR_RE = re.compile(r"[A-Za-z0-9_.\-^~<>=!*, ]{1,64}")  # fullmatch: "$" would accept "\n"


def model_name(text: str) -> str:
    try:
        return check_model_name(text)
    except UserError:
        raise Rejected(400, f"invalid model name '{text[:80]}': letters, digits, '_', '-', '.'; "
                            "no '..' or '/'") from None


def selector(text: str) -> str:
    """An exact version, a label or a SemVer range, checked for shape only (routing resolves it)."""
    if ".." in text or "/" in text or not _SELECTOR_RE.fullmatch(text):
        raise Rejected(400, f"invalid version '{text[:80]}': use SemVer (1.2.0), a label or a "
                            "range (^1.2)")
    return text


def precision_selector(selector: str | None, precision: object) -> str | None:
    """A request's `precision` parameter folded into its version selector (router.py)."""
    if precision is None:
        return selector
    if precision not in PRECISIONS:
        raise Rejected(400, f"invalid parameter precision {str(precision)[:16]!r}: one of "
                            + ", ".join(PRECISIONS))
    return router.with_precision(selector, str(precision))


def resolve_version(manager: Any, name: str, wanted: str | None) -> str:
    """The loaded version a metadata/ready request talks about (no breaker trial consumed).
    Raises Rejected, or router.RouteError for a selector that matches nothing loaded."""
    versions = manager.loaded_versions(name)
    if name not in manager.models():
        raise Rejected(404, f"unknown model '{name}'")
    if not versions:
        raise Rejected(400 if wanted is None else 404, f"model '{name}' has no version loaded")
    if wanted is None:  # the newest fp32 version (variants only when asked for)
        return next((v for v in versions if is_semver(v)), versions[0])
    return router.select(versions, wanted, manager.labels(name), allow=lambda v: True,
                         healthy=lambda v: True, rnd=1.0, model=name)


def bearer_token(value: str) -> str:
    """The token of an `Authorization: Bearer TOKEN` value ('' when it is not a bearer value)."""
    return value[7:] if value.lower().startswith("bearer ") else ""


def loopback_name(name: str) -> bool:
    """Exactly `localhost`, or a literal loopback address (127.0.0.0/8, ::1). Parsed, never
    prefix-matched: `127.0.0.1.attacker.example` is a name some DNS server answers."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_host(value: str) -> bool:
    """A Host header naming this machine: '127.0.0.1:8000', 'localhost', '[::1]:80'."""
    try:
        parts = urlsplit("//" + value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or parts.path or parts.query:
        return False
    return parts.hostname is not None and loopback_name(parts.hostname)


def loopback_origin(value: str) -> bool:
    """An Origin header of a page served from this machine ('null' and other schemes are not)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and parts.hostname is not None
            and loopback_name(parts.hostname) and loopback_host(parts.netloc))


def check_admin(token: str | None, admin_open: bool, given: str) -> None:
    """Admin calls: the configured token must match; with none, only a loopback server may."""
    if token:
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Rejected(401, "admin endpoint: missing or wrong token "
                                "(Authorization: Bearer TOKEN)")
    elif not admin_open:
        raise Rejected(403, "admin endpoints are disabled: the server listens beyond loopback "
                            "and was started without --admin-token")
