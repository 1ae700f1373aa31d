"""The `paddlehot` app. Verb modules import paddle lazily so that `--help` stays fast."""

from __future__ import annotations

import os
from typing import Optional

import typer

from paddlehot_cli import __version__
from paddlehot_cli.cli import abi_check, bench, build_plugin, demo, export, pull, push, serve
from paddlehot_cli.cli.errors import VERBOSE_ENV
from paddlehot_cli.cli.help import HelpGroup, use_for_every_command

app = typer.Typer(
    name="paddlehot",
    help=(
        "Export PaddlePaddle models, package every version immutably and as a native plugin, "
        "check artifacts in CI, benchmark them, and hot-swap them on edge boxes.\n\n"
        "Start with [bold]paddlehot demo[/bold] to see the whole story on a built-in model."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    cls=HelpGroup,  # help reflowed at the terminal's width (cli/help.py)
)


def _version(value: bool) -> None:
    if value:
        print(f"paddlehot {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks on errors."),
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """paddlehot command line."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


app.command("export")(export.export)
app.command("build-plugin")(build_plugin.build_plugin)
app.command("abi-check")(abi_check.abi_check)
app.command("bench")(bench.bench)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("push")(push.push)
app.command("pull")(pull.pull)


def run() -> None:
    use_for_every_command(app)  # every verb, whoever added it: help that reads well
    app()
