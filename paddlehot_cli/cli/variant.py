"""`paddlehot variant`: derive a bf16 or int8 variant of a published version."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import console, out, step


def render_variant_report(report) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=f"Validation: {report.precision} variant vs fp32 "
                  f"({report.cases} cases)", title_justify="left")
    for col in ("output", "max abs err", "max |fp32|", "max rel err", "argmax agrees", ""):
        table.add_column(col, justify="left" if col in ("output", "") else "right")
    for o in report.outputs:
        agree = "-" if o.argmax_agreement is None else (
            f"{o.argmax_same}/{o.argmax_total} ({o.argmax_agreement:.0%})")
        ok = o.within and (o.argmax_agreement is None
                           or o.argmax_agreement >= report.min_argmax_agreement)
        table.add_row(o.name, f"{o.max_abs_err:.3g}", f"{o.max_abs_fp32:.3g}",
                      f"{o.max_rel_err:.3g}", agree,
                      "[green]ok[/green]" if ok else "[red]too far from fp32[/red]")
    console.print(table)
    console.print(f"tolerances: atol={report.atol:g} rtol={report.rtol:g} "
                  f"argmax agreement >= {report.min_argmax_agreement:g}")


@user_errors
def variant(
    target: str = typer.Argument(..., metavar="REPO:NAME[@VERSION]",
                                 help="The published fp32 version (default: the latest)."),
    precision: str = typer.Option(..., "--precision", metavar="PRECISION",
                                  help="The variant's precision: bf16 or int8."),
    calibration: Optional[Path] = typer.Option(  # noqa: B008 - typer reads its options from defaults
        None, "--calibration", metavar="FILE.npz",
        help="Calibration samples, one array per model input (first axis: samples). Required "
        "for int8; also used as validation inputs."),
    atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance vs fp32 "
                                         "[default: bf16 0.05, int8 0.1]."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance vs fp32 "
                                         "[default: bf16 0.05, int8 0.1]."),
    min_argmax: Optional[float] = typer.Option(
        None, "--min-argmax-agreement", metavar="FRACTION",
        help="Share of score rows whose argmax must equal fp32's [default: 0.99]."),
    sign: Optional[Path] = typer.Option(  # noqa: B008 - typer reads its options from defaults
        None, "--sign", metavar="KEYFILE", help="Sign the variant before it is published."),
    force: bool = typer.Option(False, "--force", help="Derive an existing variant again."),
) -> None:
    """Derive a bf16 or int8 variant of a published version, validated against fp32.

    The variant is appended to the version (REPO/NAME/VERSION/variants/PRECISION/); the
    version's own files are never touched. It is made only where this CPU and Paddle can run
    it, and refused (exit 1, nothing written) when its outputs are further from fp32 than the
    tolerances; widen them explicitly to accept a known error. Serve it as VERSION-PRECISION
    (docs/variants.md).

    Examples:

      paddlehot variant models:cnn@1.0.0 --precision int8 --calibration calib.npz

      paddlehot variant models:resnet18@1.2.0 --precision bf16
    """
    from paddlehot_cli.export.variant import (
        VariantRequest,
        VariantValidationFailed,
        derive_variant,
    )

    req = VariantRequest(target, precision, calibration, atol, rtol, min_argmax, sign, force)
    try:
        result = derive_variant(req, step=step)
    except VariantValidationFailed as exc:
        render_variant_report(exc.report)
        raise
    render_variant_report(result.report)
    m = result.manifest
    out.print(f"[bold]{m['name']} {result.key}[/bold] ({m['precision']}) -> {result.path}")
