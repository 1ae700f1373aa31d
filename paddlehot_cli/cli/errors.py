"""Turn exceptions into one clear line and an exit code; `--verbose` shows the traceback."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from typing import Any, Callable, TypeVar

import click
import typer

from paddlehot_cli.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


VERBOSE_ENV = "PADDLEHOT_VERBOSE"
# Click's own errors go on to typer, which prints them as usage errors. Newer typer vendors click:
# its ClickException derives from typer.TyperException, not from the click package's.
CLICK_ERRORS = (typer.Exit, typer.Abort, click.exceptions.ClickException,
                 *([typer.TyperException] if hasattr(typer, "TyperException") else []))


def verbose_requested() -> bool:
    # Set by `paddlehot --verbose` (or by the user); child processes inherit it.
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def report(message: str, hint: str | None = None) -> None:
    line = f"error: {message}"
    if hint:
        line += f" (hint: {hint})"
    print(line, file=sys.stderr)


def user_errors(func: F) -> F:
    """Wrap a verb so that a UserError ends in one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CLICK_ERRORS:
            raise
        except UserError as exc:
            if verbose_requested():
                traceback.print_exc()
            report(exc.message, exc.hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            report("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # an internal bug: still one line unless --verbose
            if verbose_requested():
                traceback.print_exc()
            report(f"internal error: {type(exc).__name__}: {exc}", "rerun with --verbose")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
