"""Old flag spellings kept, hidden, for scripts written against them: one flag means one thing
across verbs (docs/cli.md), so a spelling that meant something else in another verb was renamed.
The old one still works for a release and says what to write instead."""

from __future__ import annotations

import sys
from typing import TypeVar

from paddlehot_cli.errors import UserError

T = TypeVar("T")


def renamed(new_value: T | None, old_value: T | None, new: str, old: str) -> T | None:
    """The value given under the new spelling or, with a warning on stderr, the old one."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise UserError(f"{old} is the old spelling of {new}: give one of them")
    print(f"warning: {old} is deprecated, write {new} (it will be removed)", file=sys.stderr)
    return old_value
