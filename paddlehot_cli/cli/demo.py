"""`paddlehot demo`: the whole story on the built-in model, offline, in a temporary directory."""

from __future__ import annotations

import typer

from paddlehot_cli.cli.errors import user_errors


@user_errors
def demo(
    keep: bool = typer.Option(
        False, "--keep", help="Keep the temporary directory (the repository models/, serve.log) "
        "and say where it is."),
) -> None:
    """Run the whole story on the built-in model: export, build-plugin, abi-check, serve, hot
    swap under load, bench, shutdown. Offline, in a temporary directory.

    Each step prints the `paddlehot ...` command that does the same by hand; the end says what
    to try next.

    Examples:

      paddlehot demo

      paddlehot demo --keep    # then: cd DIR && paddlehot serve models/
    """
    from paddlehot_cli.cli.render import console, out, step
    from paddlehot_cli.demo.story import Ui, run_story

    run_story(Ui(console, out, step), keep=keep)
