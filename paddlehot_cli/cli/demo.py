"""`paddlehot demo`: the whole story on the built-in model, offline, in a temporary directory."""

from __future__ import annotations

import typer

from paddlehot_cli.cli.errors import user_errors


@user_errors
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary repository."),
) -> None:
    """Export demo:mlp 1.0.0 and 1.1.0 into a temporary repository, load both, infer, summarise."""
    from paddlehot_cli.demo.story import run_story

    run_story(keep=keep)
