"""`paddlehot abi-check`: the CI gate for plugins and model packages. Never imports paddle."""

from __future__ import annotations

from pathlib import Path

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.errors import UserError


@user_errors
def abi_check(
    target: str = typer.Argument(
        ...,
        help="A plugin .so, a model package directory (with or without plugin.so), or "
        "REPO:NAME\\[@VERSION] (latest version when none is given).",
        metavar="TARGET",
        show_default=False,
    ),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        "-b",
        metavar="OLD",
        help="An older plugin or package of the same model: compare C ABI and signature.",
    ),
    policy: str | None = typer.Option(
        None,
        "--policy",
        "-p",
        metavar="NAME|FILE.json",
        help="A shipped policy (default, strict, cxx) or a JSON file; omitted keys take default's.",
    ),
    arch: str | None = typer.Option(
        None,
        "--arch",
        metavar="x86_64|aarch64",
        help="Target arch. Default: the manifest's plugin.target, else this host.",
    ),
    glibc: str | None = typer.Option(
        None,
        "--glibc",
        metavar="2.28",
        help="Highest GLIBC_x.y symbol version allowed. Default: the policy's floor for the arch.",
    ),
    runtime: list[Path] | None = typer.Option(  # noqa: B008 - typer reads its options from defaults
        None,
        "--runtime",
        metavar="DIR",
        help="Where the deploy-time libraries live (repeatable); searched before the system C "
        "library dirs. Default: paddlehot's cached pdcapi build.",
    ),
    suppressions: list[Path] | None = typer.Option(  # noqa: B008
        None,
        "--suppressions",
        "-s",
        metavar="FILE.json",
        help='Known, accepted C ABI changes (repeatable): {"suppressions": [{"symbol": "infer" '
        '| "type": "phot_tensor", "reason": "..."}]}; the same key works in a --policy file.',
    ),
    require_dwarf: bool = typer.Option(
        False,
        "--require-dwarf",
        help="With --baseline: fail (exit bit 16) when the C ABI cannot be compared through "
        "DWARF on both sides, instead of warning. Policy key: require_dwarf.",
    ),
    exit_code: str = typer.Option(
        "paddlehot",
        "--exit-code",
        metavar="paddlehot|abidiff",
        help="paddlehot: 0 ok, 1 violations. abidiff: libabigail's bits: 4 a C ABI change, "
        "8 a breaking one (with 4), 1 another check failed. Both: 2 bad input, 16 (a bit) the "
        "C ABI was not compared and --require-dwarf or the policy makes that fail.",
    ),
    fmt: str = typer.Option(
        "text",
        "--format",
        "-f",
        metavar="text|json|junit",
        help="text (a table), json or junit (one testcase per check).",
    ),
    output: Path | None = typer.Option(  # noqa: B008
        None, "--out", "-o", metavar="FILE", help="Write the report to FILE instead of stdout."
    ),
    output_old: Path | None = typer.Option(None, "--output", hidden=True),  # noqa: B008
    trust: list[Path] | None = typer.Option(  # noqa: B008
        None, "--trust", metavar="KEY.pub",
        help="Report a package's signatures as valid only when made by one of these public "
        "keys (repeatable); others say 'unknown key'. See `paddlehot sign`.",
    ),
) -> None:
    """Check a plugin or model package before it ships; exit 0 ok, 1 violations, 2 bad input,
    16 (a bit) C ABI not compared under --require-dwarf.

    Every check has a stable id (PH100...), a one-line message and a fix hint:

    [bold]PH10x[/bold] ELF basics, manifest section, embedded model checksums, plugin metadata.
    [bold]PH11x[/bold] exports: exactly phot_<model>_v<M>_<m>_<p>_<fn> for open, infer, close,
    manifest, last_error; global functions, default visibility, bound to PADDLEHOT_1.0.
    [bold]PH12x[/bold] imports: every symbol provided by a NEEDED library in the runtime, only
    allowed libraries, glibc symbol versions at most the floor.
    [bold]PH13x[/bold] hardening: RELRO + BIND_NOW, no exec stack, no TEXTREL, $ORIGIN-only rpath.
    [bold]PH14x[/bold] package: files match paddlehot.json, plugin.so built from it.
    [bold]PH20x[/bold] with --baseline: a newer version; C ABI exports only grow (PH201); with DWARF
    on both sides (build-plugin --debug), every export's return and parameter types (PH204) and
    every struct, enum and typedef they reach (PH202) compared the way abidiff does; model
    signature changes match the SemVer bump (PH203). Without DWARF: "not compared", a warning;
    with --require-dwarf an error and exit bit 16 (never a silent pass).

    Examples:

      paddlehot abi-check models/mlp/1.1.0/plugin.so --runtime /opt/paddle_inference_c/lib

      paddlehot abi-check models:mlp --baseline models:mlp@1.0.0 --format junit -o abi.xml

      paddlehot abi-check new.so -b old.so --exit-code abidiff --suppressions accepted.json

      paddlehot abi-check new.so -b old.so --require-dwarf   # CI: exit 16 if blind
    """
    from paddlehot_cli.abi.report import FORMATS
    from paddlehot_cli.abi.runner import run_abi_check
    from paddlehot_cli.cli.deprecated import renamed

    output = renamed(output, output_old, "--out", "--output")

    if fmt not in FORMATS:
        raise UserError(f"unknown --format '{fmt}'", hint="one of " + ", ".join(FORMATS))
    if exit_code not in ("paddlehot", "abidiff"):
        raise UserError(f"unknown --exit-code '{exit_code}'", hint="paddlehot or abidiff")
    report = run_abi_check(
        target,
        baseline=baseline,
        policy=policy,
        arch=arch,
        glibc=glibc,
        runtime_dirs=list(runtime or []),
        suppressions=list(suppressions or []),
        require_dwarf=require_dwarf,
        trust=list(trust or []),
    )
    _emit(report, fmt, output)
    code = report.abidiff_exit_code if exit_code == "abidiff" else report.exit_code
    if code:
        raise typer.Exit(code)


def _emit(report, fmt: str, output: Path | None) -> None:  # type: ignore[no-untyped-def]
    from paddlehot_cli.abi import report as render

    if fmt == "text":
        if output is None:
            render.render_text(report)
            return
        text = _text_to_string(report)
    elif fmt == "json":
        text = render.render_json(report)
    else:
        text = render.render_junit(report)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None


def _text_to_string(report) -> str:  # type: ignore[no-untyped-def]
    import io

    from paddlehot_cli.abi import report as render

    buf = io.StringIO()
    render.render_text(report, file=buf, color=False)
    return buf.getvalue()
