"""Help that reads well at 80 columns and in a wide terminal: paragraphs flow, list items start
on their own line, examples keep their lines.

Docstrings are hard-wrapped in the source. Typer's rich help keeps those line breaks and wraps
again at the terminal's width, so sentences break mid-line; its options table leaves the help
column ~20 characters at 80 columns. Every verb's help is therefore rendered by click's plain
formatter, from text reflowed here at the formatter's width. Usage errors keep typer's rich
panels. Verbs get this without doing anything: main.py gives every command HelpCommand.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from types import UnionType
from typing import Any, Union, get_args, get_origin

from typer.core import MARKUP_MODE_KEY, TyperCommand, TyperGroup

# rich style tags docstrings may use ([bold]PH10x[/bold]); plain help drops them
_STYLE_TAG = re.compile(r"\[/?(?:bold|dim|italic|underline|red|green|yellow|blue|cyan|magenta)\]")
_ITEM = re.compile(r"^(?:\[bold\]|[-*] )")  # a line that starts a list item
_CONTINUATION = "    "  # extra indent of an example's continuation line


def plain(text: str) -> str:
    """Rich markup written for typer's rich help, as plain text."""
    return _STYLE_TAG.sub("", text).replace("\\[", "[")


def _paragraphs(text: str) -> list[list[str]]:
    paragraphs, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.rstrip())
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _split_command(line: str, width: int) -> list[str]:
    """An example longer than the width, split before an option with a shell continuation
    (copy-pastes as one command; a trailing comment moves above it); a line with no such
    place stays whole."""
    indent = line[: len(line) - len(line.lstrip())]
    command, sep, comment = line.partition("  # ")
    out, rest = [], line
    if sep and len(line) > width:  # the comment goes above the command
        out, rest = [f"{indent}# {comment.strip()}"], command.rstrip()
    while len(rest) > width:
        cut = rest.rfind(" -", len(indent) + 1, width - 2)
        if cut <= len(indent):
            break
        out.append(rest[:cut] + " \\")
        rest = indent + _CONTINUATION + rest[cut + 1:].lstrip()
    return [*out, rest]


def _items(lines: list[str]) -> list[str]:
    items: list[str] = []
    for line in lines:
        if _ITEM.match(line) or not items:
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
    return items


def reflow(text: str, width: int) -> str:
    """Help text re-wrapped at `width`: prose paragraphs joined and wrapped; list items
    (lines starting with '- ', '* ' or a [bold] tag) wrapped with a hanging indent; indented
    paragraphs (examples) kept line by line."""
    blocks = []
    for lines in _paragraphs(text):
        if all(line[:1].isspace() for line in lines):  # examples: never reflowed
            kept = [part for line in lines for part in _split_command(line, width)]
            blocks.append("\n".join(kept))
        elif any(_ITEM.match(line) for line in lines):
            blocks.append("\n".join(
                textwrap.fill(plain(item), width, subsequent_indent="  ",
                              break_on_hyphens=False)
                for item in _items(lines)))
        else:
            prose = " ".join(line.strip() for line in lines)
            blocks.append(textwrap.fill(plain(prose), width, break_on_hyphens=False))
    return "\n\n".join(blocks)


def _write(formatter: Any, text: str) -> None:
    formatter.write_paragraph()
    with formatter.indentation():
        width = max(formatter.width - formatter.current_indent, 40)  # as click's write_text
        pad = " " * formatter.current_indent
        for line in reflow(text, width).splitlines():
            formatter.write(f"{pad}{line}\n" if line else "\n")


# metavars when a declaration gives none: one word per kind of value in every verb (typer's
# default is the Python type: `<int>`, `<str>`); choices are declared as `a|b`
_SECONDS = ("timeout", "interval", "duration", "cooldown", "warmup", "every")
_UNITS = {"ms": "MS", "mb": "MB", "dir": "DIR", "port": "PORT", "host": "HOST", "repo": "REPO",
          "version": "VERSION", "name": "NAME", "token": "TOKEN"}
_TYPES = {"int": "N", "float": "NUM", "Path": "PATH", "str": "TEXT"}


def default_metavar(param: Any) -> str | None:
    """The metavar a parameter gets when its declaration names none (None: a flag)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.param_type_name == "argument":
        return (param.name or "").upper()
    last = (param.name or "").rsplit("_", 1)[-1]
    if last in _SECONDS:
        return "SECONDS"
    if last in _UNITS:
        return _UNITS[last]
    annotation = param.type_descriptor.annotation
    while get_origin(annotation) in (list, Union, UnionType):  # list[X], X | None -> X
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    name = getattr(annotation, "__name__", str(annotation))
    return _TYPES.get(name, name.upper())


def _plain(ctx: Any, command: Any) -> None:
    for param in command.params:
        if getattr(param, "help", None):
            param.help = plain(param.help)
        if param.metavar is None:
            param.metavar = default_metavar(param)
        if param.param_type_name == "argument":
            # typer writes an argument as `NAME <type>`: its metavar alone says what it takes
            param.display_type_rich = lambda ctx: None
    ctx.ensure_object(dict)
    if isinstance(ctx.obj, dict):
        ctx.obj[MARKUP_MODE_KEY] = None  # option help without rich escapes


def _format_help_text(command: Any, formatter: Any) -> None:
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    if text:
        _write(formatter, text)


# Both classes skip typer's rich rendering by calling the click class after it in the MRO
# (typer may vendor its own click, so `click.Command` is not necessarily that class).
class HelpCommand(TyperCommand):
    """A verb whose --help is reflowed plain text (see the module docstring)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain(ctx, self)
        super(TyperCommand, self).format_help(ctx, formatter)

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        _format_help_text(self, formatter)


class HelpGroup(TyperGroup):
    """The top-level `paddlehot --help`, reflowed the same way."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain(ctx, self)
        super(TyperGroup, self).format_help(ctx, formatter)

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        _format_help_text(self, formatter)


def use_for_every_command(app: Any) -> None:
    """Give every registered verb HelpCommand (unless it chose its own class)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = HelpCommand
