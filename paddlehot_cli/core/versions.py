"""SemVer version strings (MAJOR.MINOR.PATCH) and model names, as used in paths and C symbols."""

from __future__ import annotations

import re

from packaging.version import Version

from paddlehot_cli.errors import UserError

_SEMVER_RE = re.compile(r"(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})")  # fullmatch: "$" would accept a trailing newline
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")  # fullmatch: "$" would accept a trailing newline


def is_semver(text: str) -> bool:
    return bool(_SEMVER_RE.fullmatch(text))


def parse_semver(text: str) -> tuple[int, int, int]:
    match = _SEMVER_RE.fullmatch(text)
    if not match:
        raise UserError(
            f"invalid version '{text}'", hint="use SemVer MAJOR.MINOR.PATCH, e.g. 1.4.0"
        )
    return int(match[1]), int(match[2]), int(match[3])


_PRECISION_RANK = {"int8": 0, "bf16": 1}  # fp32 (no suffix) sorts first among equals, newest first


def sort_key(text: str) -> tuple[Version, int]:
    """Orders versions, and a version's precision variants (`1.2.0-int8`) beside it."""
    version, _, precision = text.partition("-")
    return Version(version), _PRECISION_RANK.get(precision, 2)


def check_model_name(name: str) -> str:
    """A model name is one path component: letters, digits, '_', '-', '.'; never '..' or '/'."""
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise UserError(
            f"invalid model name '{name}'",
            hint="use letters, digits, '_', '-' or '.', at most 64 characters",
        )
    return name


def c_identifier(name: str) -> str:
    """The model name reduced to [a-z0-9_] for C symbol names."""
    ident = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if not ident or ident[0].isdigit():
        ident = "m" + ident
    return ident
