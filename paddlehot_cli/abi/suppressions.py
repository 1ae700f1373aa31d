"""Suppressions: known, accepted C ABI changes, by export or type name (like abidiff's
--suppressions), written in our JSON policy format:

    {"suppressions": [{"symbol": "infer", "reason": "hosts >= 2.1 pass uint32_t"},
                      {"type": "phot_open_options", "reason": "only our host calls open"}]}

`symbol` matches the export without its phot_<model>_v<M>_<m>_<p>_ prefix or the full ELF name;
`type` a struct, union, enum or typedef name. Both are shell-style patterns (fnmatch).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from paddlehot_cli.abi.surface_diff import Change
from paddlehot_cli.errors import UserError

MAX_SUPPRESSIONS = 1000


@dataclass(frozen=True)
class Suppression:
    reason: str
    symbol: str | None = None
    type: str | None = None

    def matches(self, change: Change) -> bool:
        if self.symbol is not None:
            return change.symbol is not None and fnmatchcase(change.symbol, self.symbol)
        return change.type is not None and fnmatchcase(change.type, self.type or "")

    @property
    def label(self) -> str:
        return f"symbol {self.symbol}" if self.symbol is not None else f"type {self.type}"


def parse_suppressions(value: Any, where: str) -> tuple[Suppression, ...]:
    """Validate a policy's 'suppressions' list; one UserError line for the first bad entry."""
    if not isinstance(value, list) or len(value) > MAX_SUPPRESSIONS:
        raise UserError(
            f"policy {where}: 'suppressions' must be a list (at most {MAX_SUPPRESSIONS} entries)"
        )
    out = []
    for i, entry in enumerate(value):
        ok = (
            isinstance(entry, dict)
            and set(entry) <= {"symbol", "type", "reason"}
            and len(set(entry) & {"symbol", "type"}) == 1
            and all(isinstance(v, str) and v for v in entry.values())
            and "reason" in entry
        )
        if not ok:
            raise UserError(
                f"policy {where}: suppressions[{i}] must be an object with a non-empty 'reason' "
                "and exactly one of 'symbol' or 'type'",
                hint='e.g. {"symbol": "infer", "reason": "accepted in review #123"}',
            )
        out.append(Suppression(entry["reason"], entry.get("symbol"), entry.get("type")))
    return tuple(out)


def split(
    changes: Iterable[Change], suppressions: Sequence[Suppression]
) -> tuple[list[Change], list[str]]:
    """(changes still counted, one line per suppressed change naming the rule that hid it)."""
    kept, hidden = [], []
    for change in changes:
        rule = next((s for s in suppressions if s.matches(change)), None)
        if rule is None:
            kept.append(change)
        else:
            hidden.append(f"suppressed by {rule.label} ({rule.reason}): {change.what}")
    return kept, hidden
