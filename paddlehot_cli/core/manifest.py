"""The model package manifest (`paddlehot.json`): schema, reading, writing, checksum verification.

Paddle-free: abi-check and the repository watcher read manifests where paddle is not installed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from paddlehot_cli.core.signature import TensorSpec
from paddlehot_cli.core.small_files import NotRegular, read_control_file
from paddlehot_cli.core.variants import PRECISIONS
from paddlehot_cli.core.versions import check_model_name, is_semver
from paddlehot_cli.errors import PackageError, UserError

SCHEMA_VERSION = 1
MANIFEST_NAME = "paddlehot.json"
VALIDATION_FILE = "validation.npz"
FORMATS = {
    "pir": ("model.json", "model.pdiparams"),
    "legacy": ("model.pdmodel", "model.pdiparams"),
}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_REQUIRED = (
    "schema_version", "name", "version", "format", "paddle_version", "inputs", "outputs",
    "files", "validation", "created_at", "source",
)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    format: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)

    @property
    def model_files(self) -> tuple[str, str]:
        return FORMATS[self.format]

    @property
    def validation(self) -> dict[str, Any]:
        return self.raw.get("validation") or {}

    @property
    def precision(self) -> str:
        return str(self.raw.get("precision", "fp32"))

    @property
    def shared_files(self) -> dict[str, dict[str, Any]]:
        """A variant's files that live in its fp32 version dir (by sha256: bf16 runs them)."""
        return dict(self.raw.get("shared_files") or {})

    @property
    def requires(self) -> dict[str, Any] | None:
        """What a variant needs from the CPU and Paddle (None for fp32)."""
        return self.raw.get("requires") if self.precision != "fp32" else None

    def model_paths(self, package_dir: str | Path) -> tuple[Path, Path]:
        """The program and params files, wherever they live (a bf16 variant's are its fp32
        version's)."""
        root = Path(package_dir)
        return tuple(root / f if f in self.files else _shared_root(root) / f  # type: ignore[return-value]
                     for f in self.model_files)

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


def parse_manifest(data: Any, where: str = "manifest") -> Manifest:
    """Check a decoded manifest against the schema; one clear error for the first problem."""
    if not isinstance(data, dict):
        raise PackageError(f"{where}: must be a JSON object")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise PackageError(f"{where}: missing key '{missing[0]}'")
    if data["schema_version"] != SCHEMA_VERSION:
        raise PackageError(
            f"{where}: schema_version {data['schema_version']!r} is not supported "
            f"(this paddlehot reads {SCHEMA_VERSION})"
        )
    name, version, fmt = data["name"], data["version"], data["format"]
    if not isinstance(name, str):
        raise PackageError(f"{where}: 'name' must be a string")
    try:
        check_model_name(name)
    except UserError as exc:
        raise PackageError(f"{where}: {exc.message}") from None
    if not isinstance(version, str) or not is_semver(version):
        raise PackageError(f"{where}: 'version' must be SemVer MAJOR.MINOR.PATCH")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise PackageError(f"{where}: 'format' must be one of {', '.join(FORMATS)}")
    specs = {}
    for key in ("inputs", "outputs"):
        value = data[key]
        if not isinstance(value, list) or (key == "inputs" and not value):
            raise PackageError(f"{where}: '{key}' must be a non-empty list")
        try:
            specs[key] = tuple(TensorSpec.from_json(item) for item in value)
        except UserError as exc:
            raise PackageError(f"{where}: {key}: {exc.message}") from None
        names = [s.name for s in specs[key]]
        if len(set(names)) != len(names):
            raise PackageError(f"{where}: '{key}' has duplicate names")
    files = data["files"]
    if not isinstance(files, dict):
        raise PackageError(f"{where}: 'files' must be an object")
    shared = _check_variant(data, where)
    for fname, info in [*files.items(), *shared.items()]:
        if not isinstance(fname, str) or "/" in fname or fname.startswith("."):
            raise PackageError(f"{where}: invalid file name {fname!r}")
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("sha256"), str)
            or len(info["sha256"]) != 64
            or not isinstance(info.get("bytes"), int)
        ):
            raise PackageError(f"{where}: file '{fname}' needs 'sha256' (hex) and 'bytes'")
    for needed in FORMATS[fmt]:
        if needed not in files and needed not in shared:
            raise PackageError(f"{where}: 'files' does not list '{needed}'")
    if not isinstance(data["validation"], dict):
        raise PackageError(f"{where}: 'validation' must be an object")
    return Manifest(name, version, fmt, specs["inputs"], specs["outputs"], dict(files), data)


def _check_variant(data: dict, where: str) -> dict:
    """A variant's own keys (docs/variants.md); returns its shared_files."""
    precision = data.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise PackageError(f"{where}: 'precision' must be one of {', '.join(PRECISIONS)}")
    shared = data.get("shared_files", {})
    if precision == "fp32":
        if shared:
            raise PackageError(f"{where}: only a variant may have 'shared_files'")
        return {}
    if not isinstance(shared, dict):
        raise PackageError(f"{where}: 'shared_files' must be an object")
    base = data.get("variant_of")
    if not isinstance(base, dict) or not isinstance(base.get("manifest_sha256"), str):
        raise PackageError(f"{where}: a {precision} variant needs 'variant_of' with the "
                           "'manifest_sha256' of its fp32 version")
    if not isinstance(data.get("requires"), dict):
        raise PackageError(f"{where}: a {precision} variant needs 'requires' (CPU and Paddle)")
    return shared


def _shared_root(package_dir: Path) -> Path:
    """A variant's fp32 version dir: VERSION/variants/PRECISION -> VERSION (core/variants.py)."""
    return package_dir.parent.parent


def loads_manifest(text: str | bytes, where: str = "manifest") -> Manifest:
    if len(text) > MAX_MANIFEST_BYTES:
        raise PackageError(f"{where}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PackageError(f"{where}: not valid JSON ({exc})") from None
    return parse_manifest(data, where)


def read_manifest(package_dir: str | Path) -> Manifest:
    path = Path(package_dir)
    if not path.exists():
        raise PackageError(f"no such package directory: {path}")
    if not path.is_dir():
        raise PackageError(f"not a package directory: {path}")
    mpath = path / MANIFEST_NAME
    try:
        raw = read_control_file(mpath, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise PackageError(
            f"{path} is not a model package: it has no {MANIFEST_NAME}",
            hint="create one with `paddlehot export`",
        ) from None
    except NotRegular as exc:
        raise PackageError(f"{mpath}: {exc.strerror}") from None
    return loads_manifest(raw, str(mpath))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return {"sha256": sha256_file(p), "bytes": p.stat().st_size}


def verify_files(package_dir: str | Path, manifest: Manifest) -> None:
    """Raise PackageError unless every listed file exists with its size and sha256."""
    root = Path(package_dir)
    if manifest.precision != "fp32":
        _verify_base(root, manifest)
    listed = [(root / f, f, i) for f, i in manifest.files.items()]
    listed += [(_shared_root(root) / f, f, i) for f, i in manifest.shared_files.items()]
    for fpath, fname, info in listed:
        if not fpath.is_file():
            raise PackageError(f"{root}: file '{fname}' listed in the manifest is missing")
        size = fpath.stat().st_size
        if size != info["bytes"]:
            raise PackageError(
                f"{root}: '{fname}' has {size} bytes, the manifest says {info['bytes']}"
                " (truncated or still being copied?)"
            )
        if sha256_file(fpath) != info["sha256"]:
            raise PackageError(f"{root}: '{fname}' does not match its sha256 in the manifest")


def _verify_base(root: Path, manifest: Manifest) -> None:
    """A variant was validated against one fp32 manifest: that one must still be there."""
    base = _shared_root(root) / MANIFEST_NAME
    if not base.is_file():
        raise PackageError(f"{root}: the fp32 version of this {manifest.precision} variant "
                           "is missing")
    if sha256_file(base) != manifest.raw["variant_of"]["manifest_sha256"]:
        raise PackageError(f"{root}: the fp32 version this {manifest.precision} variant was "
                           "validated against has changed; derive the variant again")


def read_verified(package_dir: str | Path) -> Manifest:
    manifest = read_manifest(package_dir)
    verify_files(package_dir, manifest)
    return manifest


def dumps_manifest(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"
