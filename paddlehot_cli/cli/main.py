"""The `paddlehot` entry point (the console script) and its app.

`app` (every verb: what `--help` and the tests see) is built on first use, so that
`paddlehot VERB ...` builds and imports only its own verb (cli/app_factory.py).
"""

from __future__ import annotations

import sys
from typing import Any

from paddlehot_cli.cli.app_factory import make_app, verb_function, verb_in
from paddlehot_cli.cli.fast_path import FAST_VERBS, run_fast
from paddlehot_cli.cli.help import use_for_every_command

_apps: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(name)
    if "app" not in _apps:
        _apps["app"] = make_app()
    return _apps["app"]


def run() -> None:
    verb = verb_in(sys.argv[1:])
    if verb is not None and sys.argv[1] == verb:  # no global options: maybe the fast start
        code = run_fast_verb(verb, sys.argv[2:])
        if code is not None:
            sys.exit(code)
    cli = make_app([verb]) if verb is not None else __getattr__("app")
    use_for_every_command(cli)  # every verb, whoever added it: help that reads well
    cli()


def run_fast_verb(verb: str, argv: list[str]) -> int | None:
    """A CI verb's exit code through cli/fast_path.py, or None: let typer run it."""
    if verb not in FAST_VERBS:
        return None
    return run_fast(verb, argv, verb_function(verb))
