"""Registry credentials, looked up the way docker and oras look them up.

Order: PADDLEHOT_REGISTRY_USERNAME / PADDLEHOT_REGISTRY_PASSWORD (CI secrets; sent to every
registry this process talks to), then the docker config file ($DOCKER_CONFIG/config.json or
~/.docker/config.json): `credHelpers[host]`, `auths[host]` (`auth` = base64 user:password, or
`username`/`password`, or `identitytoken`), then `credsStore`. A credential helper is the
`docker-credential-NAME get` program docker itself uses.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.fleet.errors import FleetError

USER_ENV = "PADDLEHOT_REGISTRY_USERNAME"
PASSWORD_ENV = "PADDLEHOT_REGISTRY_PASSWORD"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token (docker login to some registries)

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, password=***)"


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FleetError(f"cannot read docker config {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _host_keys(registry: str) -> list[str]:
    # docker writes keys as `host`, `https://host`, or `https://host/v1/` (Docker Hub style)
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/"]


def _from_auth_entry(entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return Credentials(user, password)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password", "")))
    return None


def _from_helper(helper: str, registry: str) -> Credentials | None:
    try:
        proc = subprocess.run([f"docker-credential-{helper}", "get"], input=registry,
                              capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetError(f"credential helper docker-credential-{helper} failed: {exc}") from None
    if proc.returncode != 0:
        return None  # "credentials not found" is not an error: try anonymous
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise FleetError(f"docker-credential-{helper} printed something that is not JSON") from None
    if doc.get("Username") == "<token>":
        return Credentials(identity_token=doc.get("Secret", ""))
    return Credentials(doc.get("Username", ""), doc.get("Secret", ""))


def lookup(registry: str, config_path: Path | None = None) -> Credentials | None:
    """Credentials for `registry` (host[:port]), or None for anonymous access."""
    if os.environ.get(USER_ENV):
        return Credentials(os.environ[USER_ENV], os.environ.get(PASSWORD_ENV, ""))
    config = _read_config(config_path or docker_config_path())
    helpers = config.get("credHelpers") or {}
    for key in _host_keys(registry):
        if isinstance(helpers, dict) and key in helpers:
            return _from_helper(str(helpers[key]), registry)
    auths = config.get("auths") or {}
    for key in _host_keys(registry):
        found = _from_auth_entry(auths.get(key)) if isinstance(auths, dict) else None
        if found is not None:
            return found
    if config.get("credsStore"):
        return _from_helper(str(config["credsStore"]), registry)
    return None
