"""A fast start for the verbs that CI runs on every build (abi-check).

Typer builds a pydantic adapter for every parameter before it calls a verb: ~0.1-0.15 s of each
`paddlehot abi-check`, a third of its run. For a plain command line of such a verb this module
reads the verb's own typer declarations (one source of truth: names, repeatable options, flags)
into an argparse parser and calls the verb directly. Anything it is not sure of - help, a
completion flag, an option it cannot parse, a parameter kind it does not know - goes back to
typer, which then gives its usual answer and message.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAST_VERBS = frozenset({"abi-check"})
_HELP_FLAGS = frozenset({"-h", "--help"})


class _NotSure(Exception):
    """The fast path cannot promise typer's meaning for this command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # typer words the error, not argparse
        raise _NotSure(message)


def _kind(annotation: Any) -> tuple[Callable[[str], Any], bool]:
    """(converter, repeatable) for the annotations our verbs use; _NotSure for any other."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is list and len(args) == 1:
        return _kind(args[0])[0], True
    if origin in (typing.Union, types.UnionType):  # X | None: an optional X
        if len(args) != 1:
            raise _NotSure(f"union {annotation}")
        return _kind(args[0])
    if annotation in (str, "str"):
        return str, False
    if annotation in (Path, "Path"):
        return Path, False
    if annotation in (int, "int"):
        return int, False
    if annotation in (float, "float"):
        return float, False
    raise _NotSure(f"annotation {annotation}")


def build_parser(verb: Callable[..., Any]) -> _Parser:
    """An argparse parser with the verb's typer arguments and options, under the same names."""
    import typer.models as tm

    parser = _Parser(add_help=False, allow_abbrev=False)  # click accepts no abbreviations
    hints = typing.get_type_hints(inspect.unwrap(verb))
    for name, param in inspect.signature(verb).parameters.items():
        info = param.default
        annotation = hints.get(name, str)
        if isinstance(info, tm.ArgumentInfo):
            convert, many = _kind(annotation)
            if many or info.default is not ...:
                raise _NotSure(f"argument {name}")
            parser.add_argument(name, type=convert)
        elif isinstance(info, tm.OptionInfo):
            decls = list(info.param_decls or ()) or [f"--{name.replace('_', '-')}"]
            if any("/" in d for d in decls) or info.is_eager or info.callback is not None:
                raise _NotSure(f"option {name}")
            if annotation in (bool, "bool"):
                parser.add_argument(*decls, dest=name, action="store_true", default=info.default)
                continue
            convert, many = _kind(annotation)
            # like typer: an absent repeatable option is its default (None), not []
            default = list(info.default) if many and info.default else info.default
            parser.add_argument(*decls, dest=name, type=convert, default=default,
                                action="append" if many else "store")
        else:
            raise _NotSure(f"parameter {name}")
    return parser


def run_fast(verb_name: str, argv: list[str], verb: Callable[..., Any]) -> int | None:
    """Run VERB on argv (the words after the verb) and return its exit code; None when the
    command line should go through typer instead."""
    if verb_name not in FAST_VERBS or _HELP_FLAGS.intersection(argv) or "--" in argv:
        return None
    try:
        kwargs = vars(build_parser(verb).parse_args(argv))
    except _NotSure:
        return None
    import typer

    from paddlehot_cli.cli.errors import CLICK_ERRORS

    try:
        verb(**kwargs)
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except CLICK_ERRORS as exc:  # e.g. a BadParameter a verb raises: worded as typer would
        if not hasattr(exc, "show"):
            raise
        exc.show()
        return int(getattr(exc, "exit_code", 1))
    return 0
