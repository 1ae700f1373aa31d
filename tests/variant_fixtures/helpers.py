"""Repositories with precision variants for the variant tests (serve, plugins, fleet)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from paddlehot_cli.core.manifest import dumps_manifest, file_entry, read_verified
from paddlehot_cli.core.precision_hardware import needs_for
from tests.conftest import cli

# random weights give abs_max calibration nothing to work with: accept the int8 error
WIDE = ("--atol", "5", "--rtol", "0", "--min-argmax-agreement", "0")


def cnn_with_int8(root: Path) -> Path:
    """root/models: demo:cnn 1.0.0 (legacy: int8 needs it) with its int8 variant, derived from
    root/calib.npz (16 random images). Returns the repository."""
    repo = root / "models"
    assert cli("export", "demo:cnn", "--model-format", "legacy", "--repo", repo,
               "--version", "1.0.0").returncode == 0
    np.savez(root / "calib.npz",
             image=np.random.default_rng(0).standard_normal((16, 3, 32, 32), np.float32))
    proc = cli("variant", f"{repo}:cnn@1.0.0", "--precision", "int8", "--calibration",
               root / "calib.npz", *WIDE)
    assert proc.returncode == 0, proc.stderr
    return repo


def craft_bf16(vdir: Path) -> Path:
    """A bf16 variant as `paddlehot variant` writes it on a bf16 box: a manifest and
    validation data, the fp32 files shared by sha256."""
    base = read_verified(vdir)
    out = vdir / "variants" / "bf16"
    out.mkdir(parents=True)
    shutil.copy(vdir / "validation.npz", out / "validation.npz")
    doc = dict(base.raw)
    doc.update(precision="bf16", requires=needs_for("bf16"),
               variant_of={"version": base.version, "manifest_sha256": hashlib.sha256(
                   (vdir / "paddlehot.json").read_bytes()).hexdigest()},
               files={"validation.npz": file_entry(out / "validation.npz")},
               shared_files={f: base.files[f] for f in base.model_files},
               validation={"passed": True, "file": "validation.npz", "atol": 0.05, "rtol": 0.05})
    (out / "paddlehot.json").write_text(dumps_manifest(doc))
    return out
