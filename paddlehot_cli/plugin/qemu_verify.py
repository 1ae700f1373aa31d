"""Verify a cross-built plugin where it can run: inside its rootfs, under qemu.

The host side runs this module inside the rootfs (`python -m paddlehot_cli.plugin.qemu_verify`,
this paddlehot's own sources bound read-only) with the package, the plugin and the cross pdcapi
bound beside it. The guest side is verify.verify_plugin, unchanged: same tolerances, same
comparisons (recorded outputs, and core.load of the package with the rootfs' paddle). It prints
one JSON line that the host reads back; a mismatch becomes the same ValidationFailed as on the
host. Emulated speed: a small model takes tens of seconds, most of it `import paddle`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from paddlehot_cli.errors import UserError, ValidationFailed
from paddlehot_cli.plugin.rootfs import (
    SOURCE_PYTHONPATH,
    Bind,
    Rootfs,
    guest_command,
    require_runnable,
    source_bind,
)

RESULT_TAG = "paddlehot-qemu-verify:"
TIMEOUT_S = 900  # a cold `import paddle` under qemu on a busy 2-core box takes minutes


def verify_in_rootfs(rootfs: Rootfs, package: Path, plugin: Path, c_api_dir: Path, *,
                     embedded: bool, rtol: float = 1e-3, atol: float = 1e-4,
                     same_engine_tol: float = 1e-6) -> dict[str, Any]:
    """verify.verify_plugin's result for `plugin`, computed inside the rootfs under qemu, with
    the libpaddle_inference_c.so of c_api_dir."""
    require_runnable(rootfs)
    if rootfs.paddle_version() is None:
        raise UserError(f"--sysroot {rootfs.path}: no paddlepaddle in its venv",
                        hint="the rootfs from native/edge/build-rootfs.sh has one")
    binds = [source_bind(), Bind(package, "package"), Bind(plugin, "plugin.so"),
             Bind(c_api_dir, "capi")]
    argv = [rootfs.guest_python, "-m", "paddlehot_cli.plugin.qemu_verify",
            "--package", binds[1].guest, "--plugin", binds[2].guest,
            "--rtol", repr(rtol), "--atol", repr(atol), "--same-engine-tol", repr(same_engine_tol)]
    if not embedded:
        argv.append("--model-beside")
    env = {"PYTHONPATH": SOURCE_PYTHONPATH, "LD_LIBRARY_PATH": binds[3].guest,
           "GLOG_minloglevel": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = guest_command(rootfs, argv, binds, env)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"verification under qemu did not finish in {TIMEOUT_S}s") from None
    return _read_result(proc)


def _read_result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if not lines:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-3:]
        raise UserError(
            f"verification under qemu failed to run (exit {proc.returncode}): "
            + (" | ".join(tail) or "no output"),
            hint="is the rootfs complete? `native/edge/build-rootfs.sh` rebuilds it",
        )
    reply = json.loads(lines[-1][len(RESULT_TAG):])
    if reply["status"] == "ok":
        return reply["result"]
    if reply["status"] == "mismatch":
        raise ValidationFailed(reply["error"] + " (under qemu)")
    raise UserError(f"verification under qemu: {reply['error']}")


# ---------------------------------------------------------------------------------- guest side


def _guest_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="paddlehot-qemu-verify")
    parser.add_argument("--package", type=Path, required=True)
    parser.add_argument("--plugin", type=Path, required=True)
    parser.add_argument("--rtol", type=float, required=True)
    parser.add_argument("--atol", type=float, required=True)
    parser.add_argument("--same-engine-tol", type=float, required=True)
    parser.add_argument("--model-beside", action="store_true")
    args = parser.parse_args(argv)
    from paddlehot_cli.plugin.verify import verify_plugin

    try:
        result = verify_plugin(
            args.package, args.plugin, rtol=args.rtol, atol=args.atol,
            same_engine_tol=args.same_engine_tol,
            model_dir=args.package if args.model_beside else None,
        )
        reply: dict[str, Any] = {"status": "ok", "result": result}
    except ValidationFailed as exc:
        reply = {"status": "mismatch", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - every failure must reach the host as one line
        from paddlehot_cli.errors import short_error

        reply = {"status": "error", "error": short_error(exc)}
    print(RESULT_TAG + json.dumps(reply), flush=True)
    return 0 if reply["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(_guest_main(sys.argv[1:]))
