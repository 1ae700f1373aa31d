"""`paddlehot bench REPO:NAME[@VERSION] --variants`: fp32 and its precision variants side by side.

Each one runs in a child process of its own (python -m paddlehot_cli.bench.variants DIR ...),
so its peak RSS is its own and no oneDNN state carries over: the same seeded random batches
(and the user's --input-data FILE.npz), one client, closed loop. The parent compares every
variant's outputs with fp32's. A variant this box cannot run is a row saying why.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paddlehot_cli.core.manifest import read_verified
from paddlehot_cli.core.precision_config import refusal_here
from paddlehot_cli.core.repository import resolve_version
from paddlehot_cli.core.variants import FP32, variant_dir, variant_key, variant_precisions
from paddlehot_cli.errors import UserError

ERROR_CASES = 3  # seeded random batches every variant is compared on
MAX_USER_CASES = 4


@dataclass
class VariantRow:
    key: str
    precision: str
    refused: str | None = None
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    throughput: float = 0.0
    peak_rss_mb: float = 0.0
    max_err_random: float | None = None
    max_err_user: float | None = None
    argmax_agreement: float | None = None
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "outputs"}


def bench_variants(target: str, requests: int, batch: int, threads: int,
                   input_data: str) -> list[VariantRow]:
    if requests < 1 or batch < 1 or threads < 1:
        raise UserError("--requests, --batch and --threads must be at least 1")
    vdir = resolve_version(target)
    base = read_verified(vdir)
    user = Path(input_data) if input_data != "random" else None
    if user is not None and not user.is_file():
        raise UserError(f"--input-data: no such file {user}")
    rows = []
    for precision in [FP32, *variant_precisions(vdir)]:
        path = variant_dir(vdir, precision)
        row = VariantRow(variant_key(base.version, precision), precision)
        manifest = read_verified(path)
        row.refused = refusal_here(manifest.requires, precision)
        if row.refused is None:
            _run_child(row, path, requests, batch, threads, user)
        rows.append(row)
    _errors(rows)
    return rows


def _run_child(row: VariantRow, path: Path, requests: int, batch: int, threads: int,
               user: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="paddlehot-variants-") as tmp:
        out = Path(tmp) / "outputs.npz"
        proc = subprocess.run(
            [sys.executable, "-m", "paddlehot_cli.bench.variants", str(path), str(requests),
             str(batch), str(threads), str(user or ""), str(out)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            row.refused = f"failed: {lines[-1] if lines else proc.returncode}"
            return
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        row.p50_ms, row.p99_ms = stats["p50_ms"], stats["p99_ms"]
        row.throughput, row.peak_rss_mb = stats["throughput"], stats["peak_rss_mb"]
        with np.load(out, allow_pickle=False) as data:
            for key in data.files:
                row.outputs.setdefault(key.split(":")[0], []).append(data[key])


def _errors(rows: list[VariantRow]) -> None:
    """Max |diff| vs fp32 per kind of input, and argmax agreement on score outputs."""
    ref = rows[0].outputs
    for row in rows:
        if row.refused is not None or not ref:
            continue
        same = total = 0
        for kind in ("random", "user"):
            diffs = []
            for want, got in zip(ref.get(kind, []), row.outputs.get(kind, [])):
                diffs.append(float(np.abs(want.astype(np.float64) - got).max()) if want.size
                             else 0.0)
                if want.dtype.kind == "f" and want.ndim >= 2 and want.shape[-1] >= 2:
                    same += int((want.argmax(-1) == got.argmax(-1)).sum())
                    total += int(want.argmax(-1).size)
            value = max(diffs) if diffs else None
            setattr(row, f"max_err_{kind}", value)
        row.argmax_agreement = same / total if total else None


# -- the child: one variant, one process -----------------------------------------------------

def _cases(manifest: Any, batch: int, user: str) -> dict[str, list[dict[str, np.ndarray]]]:
    from paddlehot_cli.export.validate import random_tensor

    rng = np.random.default_rng(1234)
    shape = {s.name: tuple(batch if i == 0 and d == -1 else (d if d != -1 else 1)
                           for i, d in enumerate(s.shape)) for s in manifest.inputs}
    cases = {"random": [{s.name: random_tensor(rng, s.dtype, shape[s.name])
                         for s in manifest.inputs} for _ in range(ERROR_CASES)]}
    if user:
        from paddlehot_cli.export.calibration import batches, read_calibration

        cases["user"] = batches(read_calibration(Path(user), manifest.inputs), batch)[
            :MAX_USER_CASES]
    return cases


def child(path: str, requests: str, batch: str, threads: str, user: str, out: str) -> None:
    from paddlehot_cli.core.package_loader import load_package
    from paddlehot_cli.core.signature import check_inputs

    servable = load_package(Path(path), threads=int(threads))
    cases = _cases(servable.manifest, int(batch), user)
    feeds = check_inputs(servable.manifest.inputs, cases["random"][0])
    for _ in range(min(20, int(requests))):
        servable.run_checked(feeds)
    lat = []
    start = time.perf_counter()
    for _ in range(int(requests)):
        t = time.perf_counter()
        servable.run_checked(feeds)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    arrays = {}
    for kind, items in cases.items():
        for i, case in enumerate(items):
            arrays[f"{kind}:{i}"] = servable.run_checked(check_inputs(servable.manifest.inputs,
                                                                      case))[0]
    np.savez(out, **arrays)
    servable.close()
    print(json.dumps({
        "p50_ms": float(np.percentile(lat, 50) * 1e3), "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "throughput": len(lat) * int(batch) / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    try:
        child(*sys.argv[1:])
    except Exception as exc:  # noqa: BLE001 - the parent shows this line in the variant's row
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}",
              file=sys.stderr)
        sys.exit(1)
