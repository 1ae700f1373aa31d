"""The `paddlehot` entry point (the console script) and its app.

`app` (every verb: what `--help` and the tests see) is built on first use, so that
`paddlehot VERB ...` builds and imports only its own verb (cli/app_factory.py).
"""

from __future__ import annotations

import sys
from typing import Any

from paddlehot_cli.cli.app_factory import make_app, verb_in
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
    cli = make_app([verb]) if verb is not None else __getattr__("app")
    use_for_every_command(cli)  # every verb, whoever added it: help that reads well
    cli()
