"""`--help` reads well at 80 columns and in a wide terminal: paragraphs flow (a line breaks only
where the next word would not fit), list items and examples keep their lines, nothing is wider
than the terminal, and every example in a docstring survives whole."""

from __future__ import annotations

import inspect
import itertools
import re

import pytest

from paddlehot_cli.cli.help import reflow
from paddlehot_cli.cli.main import app
from tests.conftest import cli

VERBS = ["", *(info.name for info in app.registered_commands)]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _broken_lines(text: str, width: int) -> list[tuple[str, str]]:
    """Pairs of lines where the second line's first word would have fit on the first one:
    a paragraph broken mid-sentence."""
    description = re.split(r"\n\n(?:Arguments|Options|Commands):", text)[0]
    broken = []
    for paragraph in description.split("\n\n")[1:]:  # [0] is the usage line
        lines = paragraph.splitlines()
        if all(_indent(line) > 2 for line in lines):
            continue  # examples keep their lines
        base = _indent(lines[0])
        is_list = any(_indent(line) > base for line in lines)
        for a, b in itertools.pairwise(lines):
            continues = _indent(b) > base if is_list else True
            if continues and len(a) + 1 + len(b.split()[0]) <= width:
                broken.append((a, b))
    return broken


def _examples(verb: str) -> list[str]:
    info = next(i for i in app.registered_commands if i.name == verb)
    doc = inspect.getdoc(info.callback) or ""
    joined = re.sub(r" \\\n\s+", " ", doc)
    return [re.sub(r"\s+#.*", "", line).strip() for line in joined.splitlines()
            if line.strip().startswith("paddlehot ")]


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("verb", VERBS)
def test_help_flows_and_fits(verb, columns):
    proc = cli(*([verb] if verb else []), "--help", env={"COLUMNS": str(columns)})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    width = min(columns, 100) - 2  # click's formatter width (max_content_width 100)
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide
    assert not _broken_lines(text, width), _broken_lines(text, width)[:3]
    assert "[bold]" not in text and "\\[" not in text  # rich markup rendered as plain text
    if verb:
        rendered = re.sub(r" \\\n\s+", " ", text)
        rendered = re.sub(r"\n\s+# [^\n]*", "", rendered)  # comments moved above a command
        for example in _examples(verb):
            assert example in rendered, example


def test_reflow_joins_prose_and_keeps_examples():
    text = inspect.cleandoc("""
        One sentence that the source wrapped
        in the middle, and another one.

        [bold]PH1[/bold] an item that goes on
        past its line.
        - a bullet

        Examples:

          paddlehot serve models/ --host 0.0.0.0 --admin-token "$TOKEN" --max-versions 2
          paddlehot bench --calibrate -c 4        # a comment
        """)
    assert reflow(text, 100).splitlines() == [
        "One sentence that the source wrapped in the middle, and another one.", "",
        "PH1 an item that goes on past its line.", "- a bullet", "",
        "Examples:", "",
        '  paddlehot serve models/ --host 0.0.0.0 --admin-token "$TOKEN" --max-versions 2',
        "  paddlehot bench --calibrate -c 4        # a comment",
    ]
    narrow = reflow(text, 40).splitlines()
    assert narrow[:2] == ["One sentence that the source wrapped in", "the middle, and another one."]
    assert narrow[-6:] == [
        "  paddlehot serve models/ \\", "      --host 0.0.0.0 \\", '      --admin-token "$TOKEN" \\',
        "      --max-versions 2", "  # a comment", "  paddlehot bench --calibrate -c 4"]
