"""The fast start for CI verbs (cli/fast_path.py) must mean exactly what typer means: the same
arguments reach the verb, and whatever it is unsure of goes to typer."""

from __future__ import annotations

import functools
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from paddlehot_cli.cli.abi_check import abi_check
from paddlehot_cli.cli.fast_path import _NotSure, build_parser, run_fast

COMMAND_LINES = [
    ["new.so"],
    ["new.so", "--baseline", "old.so"],
    ["new.so", "-b", "old.so", "-f", "json", "-o", "out.json"],
    ["-b", "old.so", "new.so"],  # options before the argument
    ["new.so", "--baseline=old.so", "--format=junit"],
    ["new.so", "--runtime", "/a", "--runtime", "/b", "-s", "x.json", "-s", "y.json"],
    ["new.so", "--require-dwarf", "--exit-code", "abidiff", "--policy", "strict"],
    ["new.so", "--arch", "aarch64", "--glibc", "2.31"],
    ["new.so", "--output", "old-spelling.json"],  # a hidden, deprecated alias
]


def typer_kwargs(argv: list[str]) -> dict[str, Any] | None:
    """What typer passes abi_check for argv (None when typer refuses the command line)."""
    seen: dict[str, Any] = {}

    @functools.wraps(abi_check)
    def capture(**kwargs: Any) -> None:
        seen.update(kwargs)

    capture.__signature__ = inspect.signature(abi_check)  # type: ignore[attr-defined]
    app = typer.Typer()
    app.command()(capture)
    app.command("other")(lambda: None)  # two commands: the verb is named as in paddlehot
    result = CliRunner().invoke(app, ["abi-check", *argv])  # wraps kept the name
    return seen if result.exit_code == 0 else None


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: " ".join(a))
def test_fast_parser_gives_the_verb_what_typer_gives(argv: list[str]) -> None:
    fast = vars(build_parser(abi_check).parse_args(argv))
    assert fast == typer_kwargs(argv)


@pytest.mark.parametrize("argv", [
    ["new.so", "--bogus"],          # typer words the unknown option
    ["new.so", "--base", "old.so"],  # argparse would accept the abbreviation, click does not
    ["new.so", "extra.so"],         # one TARGET only
    [],                              # TARGET missing
])
def test_what_typer_refuses_the_fast_parser_hands_back(argv: list[str]) -> None:
    assert typer_kwargs(argv) is None
    with pytest.raises(_NotSure):
        build_parser(abi_check).parse_args(argv)


def test_help_and_unknown_verbs_never_take_the_fast_path() -> None:
    assert run_fast("abi-check", ["--help"], abi_check) is None
    assert run_fast("abi-check", ["x.so", "-h"], abi_check) is None
    assert run_fast("serve", ["repo"], abi_check) is None


def test_a_fast_run_never_builds_typer_parameters(tmp_path: Path) -> None:
    """The point of it: `paddlehot abi-check` does not import pydantic (typer's adapters)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    code = ("import sys; sys.argv = ['paddlehot', 'abi-check', sys.argv[1]]\n"
            "from paddlehot_cli.cli.main import run\n"
            "try:\n    run()\nexcept SystemExit as e:\n"
            "    print('EXIT', e.code, 'pydantic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.so")], env=env,
                         capture_output=True, text=True, check=False)
    assert "EXIT 2 False" in out.stdout, out.stdout + out.stderr
    assert out.stderr.startswith("error: no such file"), out.stderr
