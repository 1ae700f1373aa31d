"""Errors a user can cause. The CLI turns each into one line and an exit code, never a traceback."""

from __future__ import annotations

import re


def short_error(exc: BaseException) -> str:
    """The most telling line of an exception: Paddle errors carry pages of code and C++ stack,
    with the real cause on a line like 'ValueError: (InvalidArgument) ...'."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[A-Za-z]*(Error|Exception): ", line)]
    if causes:
        return causes[-1][:400]
    for line in lines:
        if not line.startswith(("C++ Traceback", "---", "Error Message Summary", "In transformed")):
            return f"{type(exc).__name__}: {line}"[:400]
    return type(exc).__name__


class UserError(Exception):
    """A mistake in what the user asked for (bad path, bad spec, bad file): exit 2 by default."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ValidationFailed(UserError):
    """The artifact was produced but does not compute what the source computes: exit 1."""

    exit_code = 1


class InputMismatch(UserError, ValueError):
    """A request's tensors do not fit the model signature (name, dtype, shape, count)."""


class PackageError(UserError):
    """A model package or plugin is missing, incomplete, or fails its checksums."""
