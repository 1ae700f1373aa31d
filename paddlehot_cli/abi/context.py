"""What every check reads: the subject, the arch, the policy, the glibc floor, the runtime."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from paddlehot_cli.abi.policy import Policy
from paddlehot_cli.abi.runtime import Runtime
from paddlehot_cli.abi.target import Subject
from paddlehot_cli.core.versions import c_identifier, parse_semver

ABI_NODE = "PADDLEHOT_1.0"  # PHOT_ABI_NODE in native/include/paddlehot/plugin.h
FUNCTIONS = ("open", "infer", "close", "manifest", "last_error")
ARCHES = ("x86_64", "aarch64")
C_APIS = ("pdcapi", "official", "stub")


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def symbol_prefix(name: str, version: str) -> str:
    major, minor, patch = parse_semver(version)
    return f"phot_{c_identifier(name)}_v{major}_{minor}_{patch}_"


def designed_exports(name: str, version: str) -> list[str]:
    prefix = symbol_prefix(name, version)
    return [prefix + fn for fn in FUNCTIONS]


@dataclass
class Context:
    subject: Subject
    arch: str
    policy: Policy
    glibc_floor: str | None
    runtime_dirs: list[Path]
    runtime: Runtime | None = None
