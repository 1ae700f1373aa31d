"""Build the `paddlehot` Typer app with some or all of its verbs.

`paddlehot VERB ...` builds the app with that verb alone, so a CI step such as `abi-check`
imports nothing of the other verbs (~0.1 s of start-up); `paddlehot --help` and an unknown verb
get every verb. Verb modules import paddle lazily so that `--help` stays fast.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from typing import Any, Optional

import typer

from paddlehot_cli import __version__
from paddlehot_cli.cli.errors import VERBOSE_ENV
from paddlehot_cli.cli.help import HelpGroup

# verb -> (module under paddlehot_cli.cli, function), in the order `--help` lists them
VERBS = {
    "export": ("export", "export"),
    "variant": ("variant", "variant"),
    "build-plugin": ("build_plugin", "build_plugin"),
    "abi-check": ("abi_check", "abi_check"),
    "bench": ("bench", "bench"),
    "serve": ("serve", "serve"),
    "demo": ("demo", "demo"),
    "sign": ("sign", "sign"),
    "push": ("push", "push"),
    "pull": ("pull", "pull"),
}


def _version(value: bool) -> None:
    if value:
        print(f"paddlehot {__version__}")
        raise typer.Exit(0)


def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks on errors."),
    version: Optional[bool] = typer.Option(  # noqa: UP045 - typer reads the annotation
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """paddlehot command line."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


def make_app(verbs: Iterable[str] = VERBS) -> typer.Typer:
    app = typer.Typer(
        name="paddlehot",
        help=(
            "Export PaddlePaddle models, package every version immutably and as a native "
            "plugin, check artifacts in CI, benchmark them, and hot-swap them on edge boxes."
            "\n\nStart with [bold]paddlehot demo[/bold] to see the whole story on a built-in "
            "model."
        ),
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        cls=HelpGroup,  # help reflowed at the terminal's width (cli/help.py)
    )
    app.callback()(_main)
    for name in verbs:
        verb = verb_function(name)
        app.command(name, short_help=summary(verb.__doc__ or ""))(verb)
    return app


def verb_function(name: str) -> Callable[..., Any]:
    """The function behind a verb (its module imported now, not before)."""
    module, function = VERBS[name]
    return getattr(importlib.import_module(f"paddlehot_cli.cli.{module}"), function)  # type: ignore[no-any-return]


def summary(doc: str) -> str:
    """A verb's first sentence, whole: what `paddlehot --help` lists (click would cut it at
    45 characters, mid-sentence)."""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]


def verb_in(argv: list[str]) -> str | None:
    """The verb a command line names, if it is one of ours (options before it are skipped)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in VERBS else None
