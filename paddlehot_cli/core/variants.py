"""Precision variants of a version: their identity, where they live, what they share.

A variant is a version computed at another precision (docs/variants.md). Its identity is the
pair (version, precision), written `1.2.0-int8`: that key names it in routing tables, labels,
the index, request selectors and OCI tags ('-' is legal there, '+' is not), and reduced by
`c_identifier` it is a C symbol prefix. fp32 is the version itself, so its key is `1.2.0`.
SemVer ranges and labels never reach a variant unless asked for (router.py).

On disk a variant is appended to its published version, like a plugin or a signature; the
version's own files are never touched:

    REPO/NAME/1.2.0/variants/int8/paddlehot.json    its manifest (precision, requirements,
                                                    validation against fp32) + its files
    REPO/NAME/1.2.0/variants/bf16/paddlehot.json    only a manifest and validation data: it
                                                    runs the fp32 files, named by sha256 in
                                                    `shared_files` (a configuration, no copy)

Paddle-free: the repository watcher and abi-check read it.
"""

from __future__ import annotations

import re
from pathlib import Path

from paddlehot_cli.core.versions import is_semver

FP32 = "fp32"
PRECISIONS = ("fp32", "bf16", "int8")
VARIANT_PRECISIONS = ("bf16", "int8")
VARIANTS_DIR = "variants"
_KEY_RE = re.compile(r"(.+)-(bf16|int8)")  # fullmatch


def variant_key(version: str, precision: str) -> str:
    return version if precision == FP32 else f"{version}-{precision}"


def split_key(key: str) -> tuple[str, str] | None:
    """`1.2.0` -> ("1.2.0", "fp32"), `1.2.0-int8` -> ("1.2.0", "int8"); None if neither."""
    if is_semver(key):
        return key, FP32
    m = _KEY_RE.fullmatch(key)
    if m and is_semver(m[1]):
        return m[1], m[2]
    return None


def is_key(text: str) -> bool:
    return split_key(text) is not None


def is_variant_key(text: str) -> bool:
    parts = split_key(text)
    return parts is not None and parts[1] != FP32


def base_version(key: str) -> str:
    parts = split_key(key)
    return parts[0] if parts else key


def precision_of(key: str) -> str:
    parts = split_key(key)
    return parts[1] if parts else FP32


def variant_dir(version_dir: Path, precision: str) -> Path:
    return version_dir if precision == FP32 else version_dir / VARIANTS_DIR / precision


def version_dir_of(package_dir: Path, precision: str) -> Path:
    """The fp32 version a package dir belongs to (itself for fp32)."""
    return package_dir if precision == FP32 else package_dir.parent.parent


def variant_precisions(version_dir: Path) -> list[str]:
    """The variants appended to a version dir (names only; their manifests are checked later)."""
    root = version_dir / VARIANTS_DIR
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(p.name for p in entries if p.name in VARIANT_PRECISIONS and p.is_dir())
