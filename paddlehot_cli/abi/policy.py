"""abi-check policies: data files (JSON) shipped in paddlehot_cli/abi/policies, or a user file.

A policy names what a plugin may link and require. Keys a policy leaves out take the values of
the shipped `default` policy, so a user policy can be as small as
{"glibc_floor": {"x86_64": "2.31"}}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddlehot_cli.abi.suppressions import Suppression, parse_suppressions
from paddlehot_cli.errors import UserError

POLICY_DIR = Path(__file__).resolve().parent / "policies"
MAX_POLICY_BYTES = 256 * 1024
GLIBC_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?$")
_HARDENING = ("relro_bind_now", "noexecstack", "no_textrel", "rpath_origin_only")


@dataclass(frozen=True)
class Policy:
    name: str
    glibc_floor: dict[str, str]
    allowed_needed: tuple[str, ...]
    allow_libstdcxx: bool
    libstdcxx_needed: tuple[str, ...]
    hardening: dict[str, bool]
    warnings_fail: bool
    source: str
    require_dwarf: bool = False  # baseline: a C ABI not compared through DWARF is an error
    suppressions: tuple[Suppression, ...] = ()

    def floor_for(self, arch: str) -> str | None:
        return self.glibc_floor.get(arch)

    def needed_allowed(self, lib: str) -> bool:
        if lib in self.libstdcxx_needed or lib.startswith("libstdc++"):
            return self.allow_libstdcxx
        return lib in self.allowed_needed


def glibc_key(version: str) -> tuple[int, ...] | None:
    """'2.28' -> (2, 28); 'GLIBC_2.2.5' -> (2, 2, 5); None if not a glibc version."""
    text = version.removeprefix("GLIBC_")
    m = GLIBC_RE.match(text)
    if not m:
        return None
    return tuple(int(x) for x in m.groups() if x is not None)


def available_policies() -> list[str]:
    return sorted(p.stem for p in POLICY_DIR.glob("*.json"))


def _load_json(path: Path, where: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise UserError(f"policy {where}: larger than {MAX_POLICY_BYTES} bytes")
        data = json.loads(path.read_bytes())
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"policy {where}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"policy {where}: not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise UserError(f"policy {where}: must be a JSON object")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    known = set(base) | {"name", "description"}
    unknown = sorted(k for k in over if k not in known)
    if unknown:
        raise UserError(
            f"policy {where}: unknown key '{unknown[0]}'",
            hint="keys: " + ", ".join(sorted(known)),
        )
    out = dict(base)
    for key, value in over.items():
        if key in ("glibc_floor", "hardening") and isinstance(value, dict):
            merged = dict(base.get(key) or {})
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out


def _validate(data: dict[str, Any], where: str, source: str) -> Policy:
    def bad(key: str, what: str) -> UserError:
        return UserError(f"policy {where}: '{key}' must be {what}")

    floor = data.get("glibc_floor")
    if not isinstance(floor, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and glibc_key(v) for k, v in floor.items()
    ):
        raise bad("glibc_floor", 'an object of arch -> "MAJOR.MINOR", e.g. {"x86_64": "2.28"}')
    for key in ("allowed_needed", "libstdcxx_needed"):
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise bad(key, "a list of library file names")
    for key in ("allow_libstdcxx", "warnings_fail", "require_dwarf"):
        if not isinstance(data.get(key), bool):
            raise bad(key, "true or false")
    hardening = data.get("hardening")
    if not isinstance(hardening, dict) or not all(
        k in _HARDENING and isinstance(v, bool) for k, v in hardening.items()
    ):
        raise bad("hardening", "an object of " + ", ".join(_HARDENING) + " -> true/false")
    name = data.get("name", Path(where).stem)
    if not isinstance(name, str):
        raise bad("name", "a string")
    return Policy(
        name=name,
        glibc_floor=dict(floor),
        allowed_needed=tuple(data["allowed_needed"]),
        allow_libstdcxx=data["allow_libstdcxx"],
        libstdcxx_needed=tuple(data["libstdcxx_needed"]),
        hardening={k: bool(hardening.get(k, True)) for k in _HARDENING},
        warnings_fail=data["warnings_fail"],
        source=source,
        require_dwarf=data["require_dwarf"],
        suppressions=parse_suppressions(data.get("suppressions", []), where),
    )


def load_suppressions(path: Path) -> tuple[Suppression, ...]:
    """A suppressions file: a policy fragment with only the 'suppressions' key."""
    if not path.is_file():
        raise UserError(f"no such suppressions file: {path}")
    data = _load_json(path, str(path))
    extra = sorted(k for k in data if k not in ("suppressions", "name", "description"))
    if extra:
        raise UserError(
            f"policy {path}: unknown key '{extra[0]}' in a suppressions file",
            hint='write {"suppressions": [{"symbol": "...", "reason": "..."}]}',
        )
    return parse_suppressions(data.get("suppressions", []), str(path))


def load_policy(spec: str | None) -> Policy:
    """`None`/'default', a shipped policy name, or a path to a JSON file."""
    base = _load_json(POLICY_DIR / "default.json", "default")
    if spec is None or spec == "default":
        return _validate(base, "default", "builtin:default")
    shipped = POLICY_DIR / f"{spec}.json"
    if re.fullmatch(r"[A-Za-z0-9_\-]+", spec) and shipped.is_file():
        return _validate(_merge(base, _load_json(shipped, spec), spec), spec, f"builtin:{spec}")
    path = Path(spec)
    if not path.is_file():
        raise UserError(
            f"no such policy: {spec}",
            hint="one of " + ", ".join(available_policies()) + ", or a path to a .json file",
        )
    return _validate(_merge(base, _load_json(path, spec), spec), spec, str(path))
