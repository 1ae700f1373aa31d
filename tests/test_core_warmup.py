"""Warm-up trusts nothing the package under test says about itself: every declared output is
checked (name, dtype, shape) against what the model returns, every one is compared with the
recorded outputs, and the package's own tolerances are bounded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paddlehot_cli.core import load
from paddlehot_cli.core.load_harness import HarnessConfig, LoadFailed, LoadHarness
from paddlehot_cli.core.loaded import Batching


def _edit_manifest(vdir, change) -> None:
    path = vdir / "paddlehot.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _load(vdir):
    harness = LoadHarness(load, HarnessConfig(Batching()))
    return harness.load("mlp", "1.0.0", vdir, others_serving=False)


@pytest.mark.parametrize("change, needle", [
    (lambda d: d["outputs"][0].update(dtype="int64", shape=[-1, 7]),
     "output 'logits' is float32 [1, 4], the manifest declares int64 [-1, 7]"),
    (lambda d: d["outputs"].append({"name": "extra", "dtype": "float32", "shape": [-1, 4]}),
     "1 outputs, the manifest"),
    (lambda d: d["validation"].update(atol=10.0), "allows at most atol=0.001"),
    (lambda d: d["validation"].update(rtol=-1), "rtol=-1"),
], ids=["wrong-dtype-shape", "undeclared-extra", "loose-atol", "negative-rtol"])
def test_warm_up_refuses_a_manifest_that_lies(fresh_mlp_repo, change, needle):
    vdir = fresh_mlp_repo / "mlp" / "1.0.0"
    _edit_manifest(vdir, change)
    with pytest.raises(LoadFailed) as err:
        _load(vdir)
    assert needle in err.value.reason, err.value.reason


def test_warm_up_needs_a_recorded_output_for_every_declared_one(fresh_mlp_repo):
    vdir = fresh_mlp_repo / "mlp" / "1.0.0"
    npz = vdir / "validation.npz"
    with np.load(npz) as data:
        kept = {k: data[k] for k in data.files if "logits" not in k}
    np.savez(npz, **kept)
    _edit_manifest(vdir, lambda d: d["files"]["validation.npz"].update(
        sha256=__import__("hashlib").sha256(npz.read_bytes()).hexdigest(),
        bytes=npz.stat().st_size))
    with pytest.raises(LoadFailed) as err:
        _load(vdir)
    assert "no recorded output 'logits'" in err.value.reason, err.value.reason


def test_an_honest_package_warms_up(mlp_repo):
    vdir = mlp_repo / "mlp" / "1.0.0"
    ready = _load(vdir)
    try:
        assert ready.loaded.servable.manifest.version == "1.0.0"
    finally:
        ready.batcher.stop()
        ready.loaded.servable.close()
