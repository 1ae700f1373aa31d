"""`export`: resolve the source, trace and save, validate through the core loader, publish.

Nothing reaches the final path unless every step succeeded (staging dir + rename).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from paddlehot_cli.core import publish
from paddlehot_cli.core.manifest import (
    FORMATS,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    VALIDATION_FILE,
    dumps_manifest,
    file_entry,
    parse_manifest,
)
from paddlehot_cli.core.signature import TensorSpec, check_tensor_name
from paddlehot_cli.core.validation_data import save_cases
from paddlehot_cli.core.versions import check_model_name, parse_semver
from paddlehot_cli.core.warmup import TOLERANCE_BOUNDS
from paddlehot_cli.errors import UserError, ValidationFailed, short_error
from paddlehot_cli.export import source as source_mod
from paddlehot_cli.export.validate import DEFAULT_SIZES, ValidationReport, make_cases, validate

VALIDATION_SEED = 1234
StepFn = Callable[[str], ContextManager[Any]]


@dataclass
class ExportRequest:
    source: str
    inputs: Sequence[TensorSpec] = ()
    name: str | None = None
    version: str = "1.0.0"
    fmt: str = "pir"
    out_dir: Path | None = None
    repo: Path | None = None
    force: bool = False
    validate: bool = True
    atol: float = 1e-4
    rtol: float = 1e-3
    seed: int = 0
    weights: Path | None = None
    sizes: Sequence[int] = DEFAULT_SIZES
    output_names: Sequence[str] = ()  # names for the outputs, in order (default: Paddle's)
    sign_key: Path | None = None  # export --sign: the version is signed before it appears


@dataclass
class ExportResult:
    path: Path
    manifest: dict[str, Any]
    report: ValidationReport | None


class ExportValidationFailed(ValidationFailed):
    def __init__(self, report: ValidationReport):
        problems = report.problems or [
            f"case {c.case} output '{c.name}': {c.problem}" for c in report.checks if not c.passed
        ]
        super().__init__(
            f"validation failed: the exported model does not compute what the Layer computes "
            f"({problems[0]}); no package was written",
            hint="a forward that branches on Python-side state is frozen by to_static",
        )
        self.report = report


def _no_step(_: str) -> ContextManager[Any]:
    return contextlib.nullcontext()


def _final_path(req: ExportRequest, name: str) -> Path:
    if (req.out_dir is None) == (req.repo is None):
        raise UserError("give exactly one of -o DIR or --repo REPO")
    if req.repo is not None:
        return req.repo / name / req.version
    return req.out_dir  # type: ignore[return-value]


def _load_weights(layer: Any, path: Path) -> None:
    import paddle

    if not path.is_file():
        raise UserError(f"no such weights file: {path}")
    try:
        state = paddle.load(str(path))
    except Exception as exc:
        raise UserError(f"cannot read weights {path}: {short_error(exc)}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict (.pdparams)")
    own = layer.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UserError(f"weights {path} do not fit the model: {detail}")
    for key, value in own.items():
        if list(value.shape) != list(state[key].shape):
            raise UserError(
                f"weights {path}: '{key}' has shape {list(state[key].shape)}, "
                f"the model has {list(value.shape)}"
            )
    layer.set_state_dict(state)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return [value]


def _eager_runner(layer: Any, inputs: Sequence[TensorSpec]) -> Callable[..., list[np.ndarray]]:
    import paddle

    def run(case: dict[str, np.ndarray]) -> list[np.ndarray]:
        with paddle.no_grad():
            try:
                result = layer(*[paddle.to_tensor(case[s.name]) for s in inputs])
            except Exception as exc:
                raise UserError(
                    f"the eager model failed on inputs "
                    f"{ {k: list(v.shape) for k, v in case.items()} }: "
                    f"{short_error(exc)}",
                    hint="check --input shapes, or pick dim sizes with --dim-sizes",
                ) from None
        return [t.numpy() for t in _flatten(result)]

    return run


def _output_specs(
    names: Sequence[str], traced: Sequence[TensorSpec], outputs: Sequence[Sequence[np.ndarray]]
) -> list[TensorSpec]:
    specs = []
    for index, name in enumerate(names):
        if index < len(traced) and traced[index].shape:
            spec = traced[index]
            specs.append(TensorSpec(name, spec.dtype, spec.shape))
            continue
        shapes = [case[index].shape for case in outputs]
        dims = tuple(
            shapes[0][axis] if all(s[axis] == shapes[0][axis] for s in shapes) else -1
            for axis in range(len(shapes[0]))
        )
        specs.append(TensorSpec(name, str(outputs[0][index].dtype), dims))
    return specs


def _manifest(
    req: ExportRequest, name: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
    files: dict[str, Any], validation: dict[str, Any],
) -> dict[str, Any]:
    from paddlehot_cli.core.paddle_runtime import paddle_version

    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": req.version,
        "format": req.fmt,
        "paddle_version": paddle_version(),
        "inputs": [s.to_json() for s in inputs],
        "outputs": [s.to_json() for s in outputs],
        "files": files,
        "validation": validation,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": req.source,
    }


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    parse_manifest(json.loads(dumps_manifest(data)), MANIFEST_NAME)  # never write a bad one
    (path / MANIFEST_NAME).write_text(dumps_manifest(data))


def export_package(req: ExportRequest, step: StepFn = _no_step) -> ExportResult:
    from paddlehot_cli.core.paddle_runtime import import_paddle
    from paddlehot_cli.export.tracing import prepare_format, trace_and_save

    parse_semver(req.version)
    if req.atol < 0 or req.rtol < 0:
        raise UserError("--atol and --rtol must be >= 0")
    max_atol, max_rtol = TOLERANCE_BOUNDS["fp32"]
    if req.atol > max_atol or req.rtol > max_rtol:
        raise UserError(f"--atol {req.atol:g} --rtol {req.rtol:g}: serve's warm-up replays the "
                        f"validation with these and allows at most atol={max_atol:g} "
                        f"rtol={max_rtol:g} for fp32")
    if not req.sizes or any(s < 1 for s in req.sizes):
        raise UserError("--dim-sizes must be positive integers")
    source_mod.split_source(req.source)
    prepare_format(req.fmt)
    if req.name is not None:
        check_model_name(req.name)
    if req.name is not None:
        _refuse_existing(_final_path(req, req.name), req.force)

    with step("Building the model from " + req.source):
        paddle = import_paddle()
        paddle.seed(req.seed)
        resolved = source_mod.resolve(req.source)
        layer = resolved.layer
        if req.weights is not None:
            _load_weights(layer, req.weights)
        layer.eval()
    name = check_model_name(req.name or resolved.default_name)
    final = _final_path(req, name)
    _refuse_existing(final, req.force)
    inputs = list(req.inputs) or list(resolved.default_inputs or [])
    if not req.output_names and resolved.default_outputs:
        req = dataclasses.replace(req, output_names=resolved.default_outputs)
    if not inputs:
        raise UserError(
            f"{req.source} has no built-in input spec",
            hint="give one --input NAME:DTYPE:SHAPE per forward argument, "
            "e.g. --input x:float32:[-1,3,224,224]",
        )
    if len({s.name for s in inputs}) != len(inputs):
        raise UserError("two --input options have the same name")
    for out_name in req.output_names:
        check_tensor_name(out_name, "--output")
    if len(set(req.output_names)) != len(req.output_names):
        raise UserError("two --output options have the same name")
    required, total = source_mod.count_forward_inputs(layer)
    if not required <= len(inputs) <= total:
        want = str(required) if required == total else f"{required} to {total}"
        raise UserError(
            f"forward() takes {want} inputs but {len(inputs)} --input were given",
            hint="give one --input per forward argument, in order",
        )

    with publish.staging_dir(final) as staged:
        with step(f"Tracing with to_static and saving ({req.fmt} format)"):
            traced = trace_and_save(layer, inputs, staged, req.fmt)
        model_files = {f: file_entry(staged / f) for f in FORMATS[req.fmt]}
        provisional = [TensorSpec(f"output_{i}", s.dtype, s.shape) for i, s in enumerate(traced)]
        _write_manifest(
            staged,
            _manifest(req, name, inputs, provisional or [TensorSpec("output_0", "float32", (-1,))],
                      model_files, {"passed": None}),
        )
        cases = make_cases(inputs, VALIDATION_SEED, req.sizes)
        label = "Validating against eager" if req.validate else "Recording warm-up data"
        with step(f"{label} ({len(cases) if req.validate else 1} cases)"):
            report, outputs, names = _run_checks(req, staged, layer, inputs, cases)
        if report is not None and not report.passed:
            raise ExportValidationFailed(report)
        out_specs = _output_specs(names, traced, outputs)
        save_cases(staged, cases[: len(outputs)], outputs, names)
        files = dict(model_files)
        files[VALIDATION_FILE] = file_entry(staged / VALIDATION_FILE)
        validation = report.to_json() if report else {"passed": None, "skipped": True}
        validation.update({"file": VALIDATION_FILE, "sizes": list(req.sizes)})
        manifest = _manifest(req, name, inputs, out_specs, files, validation)
        _write_manifest(staged, manifest)
        publish.sign_and_commit(staged, final, req.sign_key, req.force, step)
    return ExportResult(final, manifest, report)


def _refuse_existing(final: Path, force: bool) -> None:
    if final.exists() and not force:
        raise UserError(
            f"{final} already exists; a published version is never modified",
            hint="bump --version, or pass --force to replace it",
        )


def _output_names(req: ExportRequest, paddle_names: list[str]) -> list[str]:
    """Paddle names outputs fetch_name_0, ...; --output gives them the names clients will use."""
    if not req.output_names:
        return paddle_names
    if len(req.output_names) != len(paddle_names):
        raise UserError(
            f"the model has {len(paddle_names)} outputs ({', '.join(paddle_names)}) but "
            f"{len(req.output_names)} --output names were given",
            hint="give one --output NAME per output, in order",
        )
    return list(req.output_names)


def _run_checks(
    req: ExportRequest, staged: Path, layer: Any, inputs: Sequence[TensorSpec],
    cases: Sequence[dict[str, np.ndarray]],
) -> tuple[ValidationReport | None, list[list[np.ndarray]], list[str]]:
    from paddlehot_cli.core.package_loader import load_package

    servable = load_package(staged, check_outputs=False)
    try:
        names = _output_names(req, list(servable.paddle_output_names))

        def run_exported(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return dict(zip(names, servable.infer_raw(case)))

        if not req.validate:
            return None, [list(run_exported(cases[0]).values())], names
        report, eager = validate(
            _eager_runner(layer, inputs), run_exported, names, cases, req.atol, req.rtol
        )
        return report, eager, names
    finally:
        servable.close()
