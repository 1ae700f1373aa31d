"""`paddlehot build-plugin`: one model package -> one native plugin (.so) with a versioned C ABI."""

from __future__ import annotations

from pathlib import Path

import typer

from paddlehot_cli.cli.errors import user_errors
from paddlehot_cli.cli.render import console, human_bytes, out, step


@user_errors
def build_plugin(
    package: str = typer.Argument(
        ..., metavar="PACKAGE", help="A model package directory (from `paddlehot export`), or "
        "REPO:NAME@VERSION; REPO:NAME@1.0.0-int8 (or its directory, VERSION/variants/int8) "
        "builds the plugin of that precision variant.", show_default=False
    ),
    output: Path = typer.Option(
        ..., "-o", "--out", metavar="OUT.so",
        help="Where to write the plugin (atomically). Required: published packages are "
        "immutable, but -o PACKAGE/plugin.so is allowed (serve loads it when present).",
        show_default=False,
    ),
    target: str | None = typer.Option(
        None, "--target", metavar="x86_64|aarch64",
        help="CPU architecture (default: this host). aarch64 cross-compiles with "
        "aarch64-linux-gnu-gcc.",
    ),
    paddle_inference_dir: Path | None = typer.Option(
        None, "--paddle-inference-dir", metavar="DIR",
        help="An official Paddle Inference C SDK: compile against DIR/paddle/include and link "
        "DIR/paddle/lib/libpaddle_inference_c.so. Default: paddlehot's pdcapi (this host) or a "
        "link-only stub (cross target).",
    ),
    sysroot: Path | None = typer.Option(
        None, "--sysroot", metavar="ROOTFS",
        help="A rootfs of the --target arch with Python headers and a venv with paddlepaddle "
        "(native/edge/build-rootfs.sh builds one): link paddlehot's pdcapi cross-compiled "
        "against it instead of the stub, and verify the plugin inside it under qemu.",
    ),
    embed_model: bool = typer.Option(
        True, "--embed-model/--no-embed-model",
        help="Carry model.json|model.pdmodel and model.pdiparams inside the .so (one file), or "
        "load them at open() from options.model_dir or the .so's directory.",
    ),
    cc: str | None = typer.Option(None, "--cc", help="C compiler (default: cc, or the "
                                     "cross compiler for --target)."),
    debug: bool = typer.Option(
        False, "--debug", help="Keep DWARF (-g) so abi-check --baseline can compare structs."
    ),
    verify: bool = typer.Option(
        True, "--verify/--no-verify",
        help="Load the built plugin and run the package's validation inputs through it "
        "(here, or for a cross target with --sysroot inside the rootfs under qemu).",
    ),
) -> None:
    """Build a native plugin: the model behind a small, versioned C ABI, in one .so file.

    The plugin exports exactly five functions, phot_<model>_v<M>_<m>_<p>_{open, infer, close,
    manifest, last_error} (see native/include/paddlehot/plugin.h), bound to the symbol version
    PADDLEHOT_1.0 with everything else hidden, so two versions of one model load side by side.
    A plugin of a precision variant (bf16, int8) exports phot_<model>_v<M>_<m>_<p>_<precision>_*
    and configures its predictors for that precision through the official C API
    (PD_ConfigEnableMkldnnInt8, PD_ConfigEnableMkldnnBfloat16); it refuses to open where the CPU
    or Paddle cannot run it (docs/variants.md).

    It calls Paddle Inference through its C API, and carries its manifest (and, by default, the
    model files, in sections that are never mapped) in ELF sections.

    By default the plugin is then loaded here and the package's validation inputs run through
    it; its outputs must match the recorded outputs (atol 1e-4, rtol 1e-3) and core.load of the
    package (1e-6). A failure leaves nothing at OUT.so. Beside OUT.so goes OUT.so.sha256: serve
    --prefer plugin loads a version's plugin only if the file still matches it.

    Examples:

      paddlehot build-plugin pkg/ -o mlp.so

      paddlehot build-plugin models/mlp/1.1.0 -o models/mlp/1.1.0/plugin.so

      paddlehot build-plugin models:cnn@1.0.0-int8 -o models/cnn/1.0.0/variants/int8/plugin.so

      paddlehot build-plugin pkg/ -o mlp-arm.so --target aarch64 \\
        --paddle-inference-dir paddle_inference_c_aarch64/

      paddlehot build-plugin pkg/ -o mlp-arm.so --target aarch64 \\
        --sysroot "$(native/edge/build-rootfs.sh --print-path)"
    """
    from paddlehot_cli.plugin.build import BuildRequest
    from paddlehot_cli.plugin.build import build_plugin as run_build

    req = BuildRequest(
        package=package, out=output, target=target, cc=cc,
        paddle_inference_dir=paddle_inference_dir, embed_model=embed_model, debug=debug,
        verify=verify, sysroot=sysroot,
    )
    result = run_build(req, step=step)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    meta = result.manifest["plugin"]
    m = result.manifest
    size = result.path.stat().st_size
    key = m["version"] if meta["precision"] == "fp32" else f"{m['version']}-{meta['precision']}"
    out.print(
        f"[bold]{m['name']} {key}[/bold] -> {result.path} "
        f"({human_bytes(size)}, {result.target}, c_api={result.c_api}, "
        f"{'model embedded' if meta['embedded_files'] else 'model beside the .so'})"
    )
    out.print(f"  exports: {meta['symbol_prefix']}{{{','.join(meta['functions'])}}}@@"
              f"{meta['abi_node']}")
    if result.verify is not None:
        v = result.verify
        out.print(
            f"  verified: {v['cases']} cases, max |plugin - recorded| "
            f"{v['max_abs_err_recorded']:.2e}, max |plugin - core.load| {v['max_abs_err_core']:.2e}"
        )
