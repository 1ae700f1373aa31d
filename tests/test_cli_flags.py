"""One flag, one meaning (docs/cli.md): across every verb a short flag stands for the same long
flag and a long flag takes the same kind of value (`bench --tune` may take a comma list of it);
every value in help shows a word or its choices, never typer's `<int>` / `<str>`; the renamed
spellings still work for scripts, say what to write instead, and are hidden from help."""

from __future__ import annotations

import re

import pytest
import typer.main

from paddlehot_cli.cli.app_factory import VERBS, make_app
from paddlehot_cli.cli.help import default_metavar
from tests.conftest import assert_one_line_error, cli

GROUP = typer.main.get_command(make_app())


def _options():
    for verb, command in GROUP.commands.items():
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                yield verb, param


def _kind(param) -> str:  # type: ignore[no-untyped-def]
    if param.is_flag:
        return "flag"
    metavar = param.metavar or default_metavar(param)
    return metavar.split("[,")[0]  # N[,N...]: a --tune list of N


def test_a_short_flag_stands_for_one_long_flag_in_every_verb():
    longs: dict[str, set[str]] = {}
    for _, param in _options():
        long = next(o for o in param.opts if o.startswith("--"))
        for short in (o for o in param.opts if not o.startswith("--")):
            longs.setdefault(short, set()).add(long)
    assert {s: ls for s, ls in longs.items() if len(ls) > 1} == {}


# --out is where each verb writes its own kind of result (a package dir, a plugin, a report)
VERB_SPECIFIC_VALUE = {"--out"}


def test_a_long_flag_takes_the_same_kind_of_value_in_every_verb():
    kinds: dict[str, dict[str, str]] = {}
    for verb, param in _options():
        for opt in param.opts:
            if opt.startswith("--") and opt not in VERB_SPECIFIC_VALUE:
                kinds.setdefault(opt, {})[verb] = _kind(param)
    # a serve switch (--onednn/--no-onednn) is an on|off axis in bench --tune
    mixed = {opt: by_verb for opt, by_verb in kinds.items()
             if len(set(by_verb.values()) - {"flag", "on|off"}) > 1}
    assert mixed == {}


@pytest.mark.parametrize("verb", list(VERBS))
def test_help_names_every_value_and_lists_choices(verb):
    proc = cli(verb, "--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert not re.findall(r"<(?:int|float|str|bool|path|list\[\w+\])>", text), text
    renamed = {"abi-check": r"--output\b", "bench": r"(^|\s)-b[ ,]", "export": r"\s--format\b"}
    if verb in renamed:  # the old spelling still works, unlisted
        assert not re.search(renamed[verb], text, re.M), text
    if verb in ("serve", "bench", "export", "abi-check"):
        choices = {"serve": "--prefer package|plugin", "bench": "throughput|latency|memory",
                   "export": "--model-format pir|legacy", "abi-check": "--format text|json|junit"}
        assert choices[verb] in text, text


def test_renamed_spellings_work_and_say_what_to_write(tmp_path, exported):
    pkg = exported()
    report = tmp_path / "report.json"
    proc = cli("abi-check", pkg, "-f", "json", "--output", report)
    assert "warning: --output is deprecated, write --out" in proc.stderr, proc.stderr
    assert report.is_file() and '"schema"' in report.read_text()

    proc = cli("bench", pkg, "--tune", "-b", "0")
    assert "warning: -b is deprecated, write --batch" in proc.stderr
    assert_one_line_error(proc, 2, "--batch must be >= 1")

    proc = cli("export", "demo:mlp", "--format", "legacy", "--model-format", "pir",
               "-o", tmp_path / "x")
    assert_one_line_error(proc, 2, "--format is the old spelling of --model-format")
    assert not (tmp_path / "x").exists()
