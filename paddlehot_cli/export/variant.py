"""`paddlehot variant REPO:NAME@VER --precision bf16|int8`: derive a precision variant of a
published fp32 version, validate it against fp32 on this box, append it to the version.

Nothing reaches REPO/NAME/VER/variants/PRECISION/ unless every step succeeded (staging dir +
rename); the version's own files are never touched (docs/variants.md).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

import numpy as np

from paddlehot_cli.core import publish
from paddlehot_cli.core.manifest import (
    MANIFEST_NAME,
    VALIDATION_FILE,
    Manifest,
    dumps_manifest,
    file_entry,
    parse_manifest,
    read_verified,
)
from paddlehot_cli.core.precision_config import refusal_here
from paddlehot_cli.core.precision_hardware import needs_for
from paddlehot_cli.core.repository import resolve_version
from paddlehot_cli.core.validation_data import load_cases, save_cases
from paddlehot_cli.core.variants import VARIANT_PRECISIONS, variant_dir, variant_key
from paddlehot_cli.core.warmup import TOLERANCE_BOUNDS
from paddlehot_cli.errors import UserError, ValidationFailed
from paddlehot_cli.export.calibration import batches, read_calibration
from paddlehot_cli.export.native_log import NativeLog
from paddlehot_cli.export.variant_check import DEFAULT_TOLERANCES, VariantReport, compare

StepFn = Callable[[str], ContextManager[Any]]
MAX_USER_CASES = 4  # calibration batches also used as validation inputs ("user inputs")


@dataclass
class VariantRequest:
    target: str  # REPO:NAME[@VERSION]
    precision: str
    calibration: Path | None = None
    atol: float | None = None
    rtol: float | None = None
    min_argmax_agreement: float | None = None
    sign_key: Path | None = None
    force: bool = False


@dataclass
class VariantResult:
    path: Path
    key: str
    manifest: dict[str, Any]
    report: VariantReport


class VariantValidationFailed(ValidationFailed):
    def __init__(self, report: VariantReport):
        problems = report.problems()
        super().__init__(
            f"the {report.precision} variant is not close enough to fp32: {problems[0]}; "
            "nothing was written",
            hint="to accept this error, widen --atol/--rtol/--min-argmax-agreement explicitly",
        )
        self.report = report

    paddle_output_relevant = False  # the numbers say it all: no log to keep


def _no_step(_: str) -> ContextManager[Any]:
    return contextlib.nullcontext()


def _tolerances(req: VariantRequest) -> tuple[float, float, float]:
    if req.precision not in VARIANT_PRECISIONS:
        raise UserError(f"unknown precision '{req.precision}'",
                        hint="a variant is one of: " + ", ".join(VARIANT_PRECISIONS))
    atol, rtol, agree = DEFAULT_TOLERANCES[req.precision]
    atol = atol if req.atol is None else req.atol
    rtol = rtol if req.rtol is None else req.rtol
    agree = agree if req.min_argmax_agreement is None else req.min_argmax_agreement
    if atol < 0 or rtol < 0 or not 0 <= agree <= 1:
        raise UserError("--atol/--rtol must be >= 0 and --min-argmax-agreement within 0..1")
    return atol, rtol, agree


def _check_request(req: VariantRequest) -> tuple[Path, Manifest, Path]:
    vdir = resolve_version(req.target)
    base = read_verified(vdir)
    if base.precision != "fp32":
        raise UserError(f"{vdir} is not an fp32 version")
    final = variant_dir(vdir, req.precision)
    if final.exists() and not req.force:
        raise UserError(f"{base.name} {variant_key(base.version, req.precision)} already exists "
                        f"({final})", hint="pass --force to derive it again")
    if req.precision == "int8":
        if req.calibration is None:
            raise UserError("an int8 variant needs calibration data: --calibration FILE.npz",
                            hint="one array per model input, samples on the first axis")
        if base.format != "legacy":
            raise UserError(
                f"{base.name} {base.version} is in the {base.format} format; int8 needs a "
                "legacy-format version (Paddle 3.3.1's PIR quantisation produces programs its "
                "inference cannot run)", hint="export the model with --model-format legacy")
    why = refusal_here(needs_for(req.precision), req.precision)
    if why is not None:
        raise UserError(f"cannot make a {req.precision} variant on this box: {why}",
                        hint="a variant is validated by running it: derive it on a box whose "
                        "CPU and Paddle can serve it")
    return vdir, base, final


def derive_variant(req: VariantRequest, step: StepFn = _no_step) -> VariantResult:
    atol, rtol, agree = _tolerances(req)
    vdir, base, final = _check_request(req)
    log = NativeLog(f"{base.name}-{variant_key(base.version, req.precision)}")
    try:
        with log.kept_on_failure():
            return _derive(req, vdir, base, final, (atol, rtol, agree), step, log)
    finally:
        with contextlib.suppress(OSError):  # a failed first variant leaves no empty variants/
            final.parent.rmdir()


def _derive(req: VariantRequest, vdir: Path, base: Manifest, final: Path,
            tolerances: tuple[float, float, float], step: StepFn, log: NativeLog) -> VariantResult:
    atol, rtol, agree = tolerances
    calibration = (read_calibration(req.calibration, base.inputs)
                   if req.calibration is not None else None)
    cases = [inputs for inputs, _ in load_cases(vdir)]
    if calibration is not None:
        cases += batches(calibration)[:MAX_USER_CASES]
    report = VariantReport(req.precision, atol, rtol, agree)
    with publish.staging_dir(final) as staged:
        files: dict[str, Any] = {}
        if req.precision == "int8":
            with step(f"Quantising to int8 with {req.calibration}"):
                _quantize(vdir, req.calibration, staged, log)  # type: ignore[arg-type]
            files = {f: file_entry(staged / f) for f in base.model_files}
        doc = _manifest(base, vdir, req, files, {"passed": None})
        _write(staged, doc)
        with step(f"Validating against fp32 ({len(cases)} cases)"):
            outputs = _run_both(vdir, staged, cases, report, log)
        if not report.passed:
            raise VariantValidationFailed(report)
        names = [s.name for s in base.outputs]
        save_cases(staged, cases, outputs, names)  # warm-up replays the variant's own outputs
        files[VALIDATION_FILE] = file_entry(staged / VALIDATION_FILE)
        replay_atol, replay_rtol = TOLERANCE_BOUNDS[req.precision]
        doc = _manifest(base, vdir, req, files, {
            "passed": True, "file": VALIDATION_FILE, "atol": replay_atol, "rtol": replay_rtol,
            "against_fp32": report.to_json(),
            "widened": (atol, rtol, agree) != DEFAULT_TOLERANCES[req.precision]})
        _write(staged, doc)
        publish.sign_and_commit(staged, final, req.sign_key, req.force, step)
    return VariantResult(final, variant_key(base.version, req.precision), doc, report)


def _manifest(base: Manifest, vdir: Path, req: VariantRequest, files: dict[str, Any],
              validation: dict[str, Any]) -> dict[str, Any]:
    doc = dict(base.raw)
    shared = {f: base.files[f] for f in base.model_files if f not in files}
    doc.update({
        "precision": req.precision,
        "variant_of": {"version": base.version, "manifest_sha256": hashlib.sha256(
            (vdir / MANIFEST_NAME).read_bytes()).hexdigest()},
        "requires": needs_for(req.precision),
        "files": files, "shared_files": shared, "validation": validation,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": f"{req.precision} variant of {base.name} {base.version}",
    })
    return doc


def _write(staged: Path, doc: dict[str, Any]) -> None:
    parse_manifest(json.loads(dumps_manifest(doc)), MANIFEST_NAME)  # never write a bad one
    (staged / MANIFEST_NAME).write_text(dumps_manifest(doc))


def _run_both(vdir: Path, staged: Path, cases: list[dict[str, np.ndarray]],
              report: VariantReport, log: NativeLog) -> list[list[np.ndarray]]:
    """Both versions on every case (one at a time: an edge box has little memory); returns
    the variant's outputs. Paddle's native output while they load goes to `log`."""
    from paddlehot_cli.core.package_loader import load_package

    results = []
    for path in (vdir, staged):
        with log.capture_fd2():
            servable = load_package(path)
        with servable:
            results.append([servable.run_checked(case) for case in cases])
    names = [s.name for s in read_verified(vdir).outputs]
    compare(report, names, results[0], results[1])
    return results[1]


def _quantize(vdir: Path, calibration: Path, out: Path, log: NativeLog) -> None:
    """Legacy static PTQ in a child process (export/ptq_worker.py); its output goes to `log`."""
    env = dict(os.environ, FLAGS_enable_pir_api="0", GLOG_minloglevel="2")
    proc = subprocess.run(
        [sys.executable, "-m", "paddlehot_cli.export.ptq_worker", str(vdir), str(calibration),
         str(out)], env=env, capture_output=True, text=True, check=False)
    log.append(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise UserError(f"int8 quantisation failed: {lines[-1] if lines else proc.returncode}")
    for extra in out.glob("*.info"):  # Paddle's side files: not part of the package
        extra.unlink()


def export_with_variant(req: Any, precision: str, calibration: Path | None,
                        step: StepFn = _no_step) -> tuple[Any, VariantResult | None]:
    """`export --precision P`: the fp32 version, then its P variant. Everything that can refuse
    the variant is checked before anything is exported; a variant that then fails validation
    leaves the fp32 version published (whole) and says so."""
    from paddlehot_cli.export.pipeline import export_package

    if precision == "fp32":
        return export_package(req, step), None
    _tolerances(VariantRequest("", precision))
    if req.repo is None:
        raise UserError("--precision needs --repo: a variant is appended to a published version")
    if precision == "int8" and (calibration is None or req.fmt != "legacy"):
        raise UserError("--precision int8 needs --calibration FILE.npz and --model-format legacy",
                        hint="Paddle 3.3.1 quantises legacy programs only (docs/variants.md)")
    from paddlehot_cli.export.tracing import prepare_format

    prepare_format(req.fmt)  # before paddle is imported to ask it what it supports
    why = refusal_here(needs_for(precision), precision)
    if why is not None:
        raise UserError(f"cannot make a {precision} variant on this box: {why}")
    result = export_package(req, step)
    name = result.manifest["name"]
    try:
        variant = derive_variant(VariantRequest(f"{req.repo}:{name}@{req.version}", precision,
                                                calibration), step)
    except UserError as exc:
        exc.message = (f"{exc.message.replace('; nothing was written', '')}; the fp32 version "
                       f"{result.path} was published, no {precision} variant was written")
        if isinstance(exc, VariantValidationFailed):
            exc.hint = (f"to accept this error: paddlehot variant {req.repo}:{name}@{req.version} "
                        f"--precision {precision} ... with wider --atol/--rtol/"
                        "--min-argmax-agreement")
        raise
    return result, variant
