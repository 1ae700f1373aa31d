"""`paddlehot export`: one command from a dygraph Layer to a validated, published package."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import console, out, step


def _sizes(text: str) -> list[int]:
    from paddlehot_cli.errors import UserError

    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UserError(f"malformed --dim-sizes '{text}'", hint="write e.g. 1,3,8") from None


def render_validation(report) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title="Validation: exported model vs eager Layer", title_justify="left")
    for col in ("case", "inputs", "output", "shape", "dtype", "max abs err", "max rel err", ""):
        table.add_column(col, justify="right" if "err" in col else "left")
    for c in report.checks:
        shape = "x".join(map(str, c.exported_shape))
        if c.eager_shape != c.exported_shape:
            shape = f"{'x'.join(map(str, c.eager_shape))} vs {shape}"
        dtype = c.exported_dtype if c.eager_dtype == c.exported_dtype else (
            f"{c.eager_dtype} vs {c.exported_dtype}")
        verdict = "[green]ok[/green]" if c.passed else f"[red]{c.problem}[/red]"
        table.add_row(str(c.case), c.shape_desc, c.name, shape, dtype,
                      f"{c.max_abs_err:.2e}", f"{c.max_rel_err:.2e}", verdict)
    console.print(table)
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]")
    console.print(f"tolerances: atol={report.atol:g} rtol={report.rtol:g}")


@user_errors
def export(
    source: str = typer.Argument(
        ...,
        help="The model: path/to/file.py:NAME, package.module:NAME (a paddle.nn.Layer subclass "
        "or a zero-argument factory), or demo:mlp / demo:cnn.",
    ),
    inputs: Optional[List[str]] = typer.Option(
        None, "--input", "-i", metavar="NAME:DTYPE:SHAPE",
        help="One per forward argument, in order, e.g. x:float32:[-1,3,224,224]; -1 is a "
        "dynamic dim. Dtypes: float32 float16 float64 int32 int64 uint8 int8 bool.",
    ),
    outputs: Optional[List[str]] = typer.Option(
        None, "--output", metavar="NAME",
        help="Name the outputs, one per output in order (default: Paddle's, e.g. fetch_name_0). "
        "Clients see these names.",
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Model name (default: from SOURCE)."),
    version: str = typer.Option("1.0.0", "--version", help="SemVer MAJOR.MINOR.PATCH."),
    fmt: Optional[str] = typer.Option(
        None, "--model-format", metavar="pir|legacy",
        help="pir: .json + .pdiparams (Paddle >= 3). legacy: .pdmodel + .pdiparams "
        "(Paddle Inference 2.x SDKs).  [default: pir]",
    ),
    fmt_old: Optional[str] = typer.Option(None, "--format", hidden=True),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR",
                                           help="Write one package here."),
    repo: Optional[Path] = typer.Option(
        None, "--repo", help="Publish into REPO/NAME/VERSION/ atomically."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing version."),
    validate: bool = typer.Option(
        True, "--validate/--no-validate", help="Compare exported outputs with eager outputs."
    ),
    atol: float = typer.Option(1e-4, "--atol", help="Absolute tolerance of validation."),
    rtol: float = typer.Option(1e-3, "--rtol", help="Relative tolerance of validation."),
    weights: Optional[Path] = typer.Option(
        None, "--weights", help="A .pdparams state dict loaded before export."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for random weight initialisation."),
    dim_sizes: str = typer.Option(
        "1,3,8", "--dim-sizes", help="Sizes each dynamic dim is validated at."
    ),
    sign: Optional[Path] = typer.Option(
        None, "--sign", metavar="KEYFILE",
        help="Sign the version (Ed25519 private key; see `paddlehot sign`) before it is published."),
    precision: str = typer.Option(
        "fp32", "--precision", metavar="PRECISION",
        help="fp32, or also derive this precision variant of the version: bf16 or int8 "
        "(--repo; docs/variants.md)."),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", metavar="FILE.npz",
        help="--precision int8: calibration samples, one array per input."),
) -> None:
    """Export a Layer, prove it computes what the Layer computes, and write a model package.

    The exported model runs on seeded random inputs next to the eager Layer (every dynamic dim at
    several sizes); a mismatch exits 1 and leaves nothing on disk.

    Examples:

      paddlehot export demo:mlp -o pkg/

      paddlehot export paddle.vision.models:resnet18 --input x:float32:[-1,3,224,224] \\
        --repo models/ --version 1.2.0

      paddlehot export my_model.py:Net --input ids:int64:[-1,-1] --weights net.pdparams -o out/
    """
    from paddlehot_cli.cli.deprecated import renamed
    from paddlehot_cli.core.signature import parse_input_spec
    from paddlehot_cli.export.pipeline import ExportRequest, ExportValidationFailed
    from paddlehot_cli.export.variant import VariantValidationFailed, export_with_variant

    req = ExportRequest(
        source=source,
        inputs=[parse_input_spec(t) for t in inputs or []],
        name=name, version=version,
        fmt=renamed(fmt, fmt_old, "--model-format", "--format") or "pir", out_dir=out_dir,
        repo=repo, force=force,
        validate=validate, atol=atol, rtol=rtol, seed=seed, weights=weights,
        sizes=_sizes(dim_sizes), output_names=list(outputs or []), sign_key=sign,
    )
    try:
        result, variant = export_with_variant(req, precision, calibration, step=step)
    except ExportValidationFailed as exc:
        render_validation(exc.report)
        raise
    except VariantValidationFailed as exc:
        from paddlehot_cli.cli.variant import render_variant_report

        render_variant_report(exc.report)
        raise
    if result.report is not None:
        render_validation(result.report)
    m = result.manifest
    sig = ", ".join(f"{i['name']}:{i['dtype']}{i['shape']}" for i in m["inputs"])
    outs = ", ".join(f"{o['name']}:{o['dtype']}{o['shape']}" for o in m["outputs"])
    out.print(f"[bold]{m['name']} {m['version']}[/bold] ({m['format']}) -> {result.path}")
    out.print(f"  inputs:  {sig}\n  outputs: {outs}")
    if variant is not None:
        from paddlehot_cli.cli.variant import render_variant_report

        render_variant_report(variant.report)
        out.print(f"[bold]{m['name']} {variant.key}[/bold] -> {variant.path}")
