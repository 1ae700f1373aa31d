"""A stand-in `paddlehot` app with only abi-check registered, for tests that run before the lead
registers the verb in cli/main.py. Usage: python cli_app.py abi-check TARGET ..."""

from __future__ import annotations

import typer

from paddlehot_cli.cli import abi_check

app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode="rich", no_args_is_help=True)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks.")) -> None:
    """paddlehot (abi-check only)."""


app.command("abi-check")(abi_check.abi_check)

if __name__ == "__main__":
    app()
