from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import MODELS, assert_one_line_error, cli

from paddlehot_cli.core import load
from paddlehot_cli.core.manifest import MANIFEST_NAME, read_verified, sha256_file

TWO = str(MODELS / "two_inputs.py")


@pytest.mark.parametrize("source", ["demo:mlp", "demo:cnn"])
@pytest.mark.parametrize("fmt", ["pir", "legacy"])
def test_export_demo_models(exported, source, fmt):
    pkg = exported(source, fmt)
    manifest = json.loads((pkg / MANIFEST_NAME).read_text())
    for key in ("schema_version", "name", "version", "format", "paddle_version", "inputs",
                "outputs", "files", "validation", "created_at", "source"):
        assert key in manifest
    assert manifest["format"] == fmt
    model_file = "model.json" if fmt == "pir" else "model.pdmodel"
    assert set(manifest["files"]) == {model_file, "model.pdiparams", "validation.npz"}
    for fname, info in manifest["files"].items():
        assert sha256_file(pkg / fname) == info["sha256"]
        assert (pkg / fname).stat().st_size == info["bytes"]
    assert sorted(p.name for p in pkg.iterdir()) == sorted([*manifest["files"], MANIFEST_NAME])
    v = manifest["validation"]
    assert v["passed"] is True and v["cases"] == 3
    assert v["max_abs_err"] <= v["atol"] + v["rtol"] * 10
    assert manifest["inputs"][0]["shape"][0] == -1
    assert manifest["outputs"][0]["shape"][0] == -1


def test_load_matches_recorded_eager_outputs(exported):
    from paddlehot_cli.core.validation_data import load_cases

    pkg = exported("demo:cnn", "pir")
    cases = load_cases(pkg)
    assert [c[0]["image"].shape[0] for c in cases] == [1, 3, 8]
    with load(pkg) as servable:
        for inputs, expected in cases:
            got = servable.infer(inputs)
            assert list(got) == list(expected)
            for name in expected:
                np.testing.assert_allclose(got[name], expected[name], rtol=1e-3, atol=1e-4)


def test_seed_changes_weights(exported):
    a = read_verified(exported("demo:mlp", "pir", "1.0.0", 0))
    b = read_verified(exported("demo:mlp", "pir", "1.1.0", 1))
    assert a.files["model.pdiparams"]["sha256"] != b.files["model.pdiparams"]["sha256"]


@pytest.mark.parametrize("fmt", ["pir", "legacy"])
def test_user_file_two_inputs_two_dynamic_dims(tmp_path, fmt):
    out = tmp_path / "two"
    proc = cli("export", f"{TWO}:make", "--name", "two", "--model-format", fmt,
               "--input", "feats:float32:[-1,4]", "--input", "ids:int64:[-1,-1]", "-o", out)
    assert proc.returncode == 0, proc.stderr
    m = read_verified(out)
    assert [(s.name, s.dtype, s.shape) for s in m.inputs] == [
        ("feats", "float32", (-1, 4)), ("ids", "int64", (-1, -1))]
    assert [(s.dtype, len(s.shape)) for s in m.outputs] == [("float32", 2), ("int64", 2)]
    assert m.validation["passed"] is True
    assert m.validation["cases"] == 4  # 1, 3, 8 and a case with a different size per axis
    with load(out) as servable:
        ids = np.array([[1, 2, 3], [4, 5, 6]], dtype="int64")
        result = servable.infer({"feats": np.ones((2, 4), "float32"), "ids": ids})
        np.testing.assert_array_equal(list(result.values())[1], ids * 2)


def test_validation_catches_frozen_python_branch(tmp_path):
    out = tmp_path / "frozen"
    proc = cli("export", f"{TWO}:FrozenFlag", "--input", "x:float32:[-1,4]", "-o", out)
    assert_one_line_error(proc, 1, "validation failed")
    assert "values differ" in proc.stderr  # the table is shown
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir()]  # no staging dir left behind


def test_publish_into_repo_refuses_overwrite(tmp_path):
    repo = tmp_path / "repo"
    first = cli("export", "demo:mlp", "--repo", repo, "--version", "2.0.0")
    assert first.returncode == 0, first.stderr
    version_dir = repo / "mlp" / "2.0.0"
    before = sha256_file(version_dir / MANIFEST_NAME)
    again = cli("export", "demo:mlp", "--repo", repo, "--version", "2.0.0", "--seed", "3")
    assert_one_line_error(again, 2, "already exists")
    assert sha256_file(version_dir / MANIFEST_NAME) == before
    forced = cli("export", "demo:mlp", "--repo", repo, "--version", "2.0.0", "--seed", "3",
                 "--force", "--no-validate")
    assert forced.returncode == 0, forced.stderr
    m = read_verified(version_dir)
    assert m.validation.get("skipped") is True
    assert sorted(os.listdir(repo / "mlp")) == ["2.0.0"]  # no hidden leftovers


def test_failed_publish_leaves_no_version_dir(tmp_path):
    repo = tmp_path / "repo"
    proc = cli("export", f"{TWO}:FrozenFlag", "--input", "x:float32:[-1,4]", "--name", "frozen",
               "--repo", repo)
    assert proc.returncode == 1
    assert not (repo / "frozen").exists() or os.listdir(repo / "frozen") == []


def test_weights_are_loaded(tmp_path):
    import subprocess
    import sys

    weights = tmp_path / "w.pdparams"
    code = (
        "import paddle, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from paddlehot_cli.export import demo_models\n"
        "paddle.seed(42)\n"
        "paddle.save(demo_models.build('mlp').state_dict(), sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(weights), str(MODELS)], check=True)
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("export", "demo:mlp", "--weights", weights, "-o", a).returncode == 0
    assert cli("export", "demo:mlp", "--weights", weights, "--seed", "9", "-o", b).returncode == 0
    assert sha256_file(a / "model.pdiparams") == sha256_file(b / "model.pdiparams")
    wrong = cli("export", "demo:cnn", "--weights", weights, "-o", tmp_path / "c")
    assert_one_line_error(wrong, 2, "do not fit")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["nosuchmodule_xyz:Net", "--input", "x:float32:[-1,4]"], "unknown module"),
        ([f"{TWO}:Missing", "--input", "x:float32:[-1,4]"], "has no attribute"),
        ([f"{TWO}:broken_factory", "--input", "x:float32:[-1,4]"], "weights server unreachable"),
        ([f"{TWO}:NeedsArgs", "--input", "x:float32:[-1,4]"], "raised while building"),
        ([f"{TWO}:NOT_A_LAYER", "--input", "x:float32:[-1,4]"], "not a paddle.nn.Layer"),
        ([f"{TWO}:not_a_layer_factory", "--input", "x:float32:[-1,4]"], "not a paddle.nn.Layer"),
        (["demo:mlp", "--input", "x:float33:[-1,16]"], "unknown dtype"),
        (["demo:mlp", "--input", "x:float32:[-1,a]"], "malformed shape"),
        (["demo:mlp", "--input", "x:float32:-1,16"], "malformed shape"),
        (["demo:mlp", "--input", "x-float32"], "malformed input"),
        ([f"{TWO}:make", "--input", "feats:float32:[-1,4]"], "takes 2 inputs"),
        ([f"{TWO}:DataDependent", "--input", "x:float32:[-1,4]"], "to_static could not trace"),
        (["demo:mlp", "--version", "1.0"], "invalid version"),
        (["demo:nope"], "unknown demo model"),
        (["demo:mlp", "--model-format", "onnx"], "unknown format"),
        (["demo:mlp", "--output", "a", "--output", "b"], "2 --output names were given"),
        (["demo:mlp", "--output", "bad name"], "invalid --output name"),
        (["not-a-source"], "malformed SOURCE"),
        ([f"{TWO}:make"], "no built-in input spec"),
        (["demo:mlp", "--weights", "/nonexistent/w.pdparams"], "no such weights file"),
        (["/nonexistent/model.py:Net", "--input", "x:float32:[-1,4]"], "no such file"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, needle):
    out = tmp_path / "out"
    proc = cli("export", *args, "-o", out)
    assert_one_line_error(proc, 2, needle)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_verbose_shows_traceback(tmp_path):
    proc = cli("--verbose", "export", "demo:mlp", "--version", "x", "-o", tmp_path / "o")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_output_names(tmp_path):
    out = tmp_path / "named"
    proc = cli("export", f"{TWO}:make", "--input", "feats:float32:[-1,4]",
               "--input", "ids:int64:[-1,-1]", "--output", "score", "--output", "ids2", "-o", out)
    assert proc.returncode == 0, proc.stderr
    m = read_verified(out)
    assert [s.name for s in m.outputs] == ["score", "ids2"]
    with load(out) as servable:
        result = servable.infer({"feats": np.ones((1, 4), "float32"),
                                 "ids": np.ones((1, 2), "int64")})
    assert list(result) == ["score", "ids2"]


def test_demo_models_name_their_output(exported):
    assert [s.name for s in read_verified(exported("demo:mlp")).outputs] == ["logits"]
