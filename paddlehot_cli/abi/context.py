"""What every check reads: the subject, the arch, the policy, the glibc floor, the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paddlehot_cli.abi.policy import Policy
from paddlehot_cli.abi.runtime import Runtime
from paddlehot_cli.abi.suppressions import Suppression
from paddlehot_cli.abi.target import Subject
from paddlehot_cli.core.plugin_abi import (  # noqa: F401  (re-exported for the checks)
    ABI_NODE,
    C_APIS,
    FUNCTIONS,
    TARGETS,
    designed_exports,
    host_arch,
    symbol_prefix,
)

ARCHES = TARGETS


@dataclass
class Context:
    subject: Subject
    arch: str
    policy: Policy
    glibc_floor: str | None
    runtime_dirs: list[Path]
    runtime: Runtime | None = None
    suppressions: list[Suppression] = field(default_factory=list)  # policy's and --suppressions
