"""Resolve TARGET (a plugin .so, a package dir, or REPO:NAME[@VERSION]) into what is checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from paddlehot_cli.core.elf_facts import ElfFacts, read_elf
from paddlehot_cli.core.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    Manifest,
    loads_manifest,
    read_manifest,
)
from paddlehot_cli.core.plugin_abi import MANIFEST_SECTION
from paddlehot_cli.core.repository import resolve_version
from paddlehot_cli.errors import PackageError, UserError

T = TypeVar("T")

PLUGIN_FILE = "plugin.so"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Subject:
    """One side of a check: a plugin, a package, or a package with its plugin."""

    label: str
    so_path: Path | None = None
    package_dir: Path | None = None
    package: Manifest | None = None  # paddlehot.json of the package
    elf: ElfFacts | None = None
    plugin: Manifest | None = None  # the manifest embedded in the .so
    plugin_meta: dict[str, Any] | None = None  # its "plugin" key
    cache: dict[str, Any] = field(default_factory=dict)  # facts read once (abi.surfaces)

    @property
    def manifest(self) -> Manifest | None:
        """The best manifest for name/version/signature: the package's, else the plugin's."""
        return self.package or self.plugin


def _schema_guard(func: Callable[[], T], where: str) -> T:
    """core.manifest raises PackageError for schema problems; hostile values of the wrong type
    can still slip past it as TypeError (e.g. an unhashable 'format'): same one line, exit 2."""
    try:
        return func()
    except UserError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
        raise PackageError(
            f"{where}: does not match the manifest schema ({type(exc).__name__})"
        ) from None


def _plugin_meta(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PackageError(f"{where}: missing or invalid 'plugin' object")
    for key in ("abi_node", "symbol_prefix", "target", "c_api"):
        if not isinstance(data.get(key), str):
            raise PackageError(f"{where}: 'plugin.{key}' must be a string")
    files = data.get("embedded_files", {})
    if not isinstance(files, dict):
        raise PackageError(f"{where}: 'plugin.embedded_files' must be an object")
    for fname, info in files.items():
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("section"), str)
            or not isinstance(info.get("sha256"), str)
            or not _SHA_RE.match(info["sha256"])
            or not isinstance(info.get("bytes"), int)
            or isinstance(info.get("bytes"), bool)
            or info["bytes"] < 0
        ):
            raise PackageError(
                f"{where}: 'plugin.embedded_files.{str(fname)[:40]}' needs 'section', "
                "'sha256' (hex) and 'bytes'"
            )
    return data


def load_plugin(so_path: Path, label: str | None = None) -> Subject:
    elf = read_elf(so_path)
    subject = Subject(label or str(so_path), so_path=so_path, elf=elf)
    raw = elf.read_section(MANIFEST_SECTION, MAX_MANIFEST_BYTES + 1)
    if raw is not None:
        where = f"{so_path} [{MANIFEST_SECTION}]"
        raw = raw.rstrip(b"\0")
        subject.plugin = _schema_guard(lambda: loads_manifest(raw, where), where)
        subject.plugin_meta = _plugin_meta(subject.plugin.raw.get("plugin"), where)
    return subject


def load_package(package_dir: Path, label: str | None = None) -> Subject:
    manifest = _schema_guard(lambda: read_manifest(package_dir), str(package_dir / MANIFEST_NAME))
    subject = Subject(label or str(package_dir), package_dir=package_dir, package=manifest)
    so = package_dir / PLUGIN_FILE
    if so.exists():
        plugin = load_plugin(so)
        subject.so_path, subject.elf = plugin.so_path, plugin.elf
        subject.plugin, subject.plugin_meta = plugin.plugin, plugin.plugin_meta
    return subject


def resolve(spec: str) -> Subject:
    """TARGET or --baseline: a .so file, a package directory, or REPO:NAME[@VERSION]."""
    path = Path(spec)
    if path.is_dir():
        return load_package(path)
    if path.exists():
        return load_plugin(path)
    if ":" in spec and Path(spec.rpartition(":")[0]).is_dir():
        pkg = resolve_version(spec)
        return load_package(pkg, f"{spec} ({pkg})")
    raise UserError(
        f"no such file or directory: {spec}",
        hint="pass a plugin .so, a package directory, or REPO:NAME[@VERSION]",
    )
