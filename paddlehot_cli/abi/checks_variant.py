"""PH142: a precision variant can run where it is going (docs/variants.md), read without paddle.

The machine and the Paddle build's oneDNN come from the runtime (a --runtime rootfs's wheel, or
this host's); the CPU flags are this host's when the target arch is this host's. A plugin of a
variant is checked the same way (its runtime configures the precision and refuses to open where
it cannot run). A Paddle
without oneDNN (Paddle's aarch64 wheels) accepts the bf16/int8 switches and silently runs fp32.
"""

from __future__ import annotations

from pathlib import Path

from paddlehot_cli.abi.context import Context
from paddlehot_cli.abi.findings import WARNING, Finding, failed, passed, skipped
from paddlehot_cli.core.plugin_abi import host_arch
from paddlehot_cli.core.precision_hardware import cpu_refusal


def _onednn_in(libpaddle: Path) -> bool:
    """oneDNN ships beside the wheel's libpaddle.so (paddle/libs/libdnnl.so.*)."""
    return any((libpaddle.parent.parent / "libs").glob("libdnnl.so*"))


def _libpaddle(ctx: Context) -> Path | None:
    if ctx.runtime_dirs:
        from paddlehot_cli.abi.runtime import runtime_libpaddle

        return runtime_libpaddle(ctx.arch, ctx.runtime_dirs)
    if ctx.arch != host_arch():
        return None
    from paddlehot_cli.core.paddle_wheel import wheel_libpaddle
    from paddlehot_cli.errors import UserError

    try:
        return wheel_libpaddle()
    except UserError:
        return None


def check_variant_runtime(ctx: Context) -> Finding:
    m = ctx.subject.manifest
    if m is None:
        return skipped("PH142", "no manifest")
    plugin = ctx.subject.plugin
    if plugin is not None and plugin.precision != m.precision:
        return failed("PH142", f"the plugin was built from the {plugin.precision} package, this "
                      f"is the {m.precision} one: it would run at the wrong precision")
    configured = (ctx.subject.plugin_meta or {}).get("precision", "fp32")
    if plugin is not None and configured != plugin.precision:
        return failed("PH142", f"the plugin embeds a {plugin.precision} model but its runtime "
                      f"configures {configured} predictors: rebuild it with this paddlehot")
    if m.precision == "fp32":
        return passed("PH142", "fp32: no CPU or Paddle requirement")
    needs = m.requires or {}
    wanted = needs.get("arch")
    if wanted and wanted != ctx.arch:
        return failed("PH142", f"this {m.precision} variant was made for {wanted}, the target "
                      f"is {ctx.arch}")
    lib = _libpaddle(ctx)
    if "onednn" in needs.get("paddle", []) and lib is not None and not _onednn_in(lib):
        return failed("PH142", f"{m.precision} needs a Paddle with oneDNN; the runtime's "
                      f"({lib}) has none: it would silently run fp32")
    if ctx.arch != host_arch() or ctx.runtime_dirs:
        return failed("PH142", f"{m.precision}: the target CPU's flags cannot be read from here "
                      f"(it needs {_flags(needs)}); serve refuses the variant at load if they "
                      "are missing", severity=WARNING)
    why = cpu_refusal(needs, m.precision)
    if why is not None:
        return failed("PH142", why)
    return passed("PH142", f"{m.precision}: this CPU has {_flags(needs)}"
                  + ("" if lib is None else ", the Paddle build has oneDNN"))


def _flags(needs: dict) -> str:
    parts = list(needs.get("cpu_flags_all", []))
    if needs.get("cpu_flags_any"):
        parts.append(" or ".join(needs["cpu_flags_any"]))
    return ", ".join(parts) or "no CPU flag"
