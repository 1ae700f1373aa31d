from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from paddlehot_cli.core import load
from paddlehot_cli.core.manifest import MANIFEST_NAME, loads_manifest
from paddlehot_cli.errors import InputMismatch, PackageError


@pytest.fixture(scope="module")
def mlp(exported):
    servable = load(exported("demo:mlp"))
    yield servable
    servable.close()


def test_infer_shapes(mlp):
    out = mlp.infer({"x": np.zeros((5, 16), "float32")})
    assert list(out) == [s.name for s in mlp.manifest.outputs]
    assert next(iter(out.values())).shape == (5, 4)


@pytest.mark.parametrize(
    "feeds, needle",
    [
        ({"y": np.zeros((1, 16), "float32")}, "unknown input 'y'"),
        ({}, "missing input 'x'"),
        ({"x": np.zeros((1, 16), "float64")}, "dtype float64"),
        ({"x": np.zeros((1, 15), "float32")}, "dim 1 must be 16"),
        ({"x": np.zeros((16,), "float32")}, "rank 1"),
        ({"x": [[0.0] * 16]}, "numpy array"),
        ({"x": np.zeros((0, 16), "float32")}, "empty dim"),
    ],
)
def test_bad_inputs_rejected_before_paddle(mlp, feeds, needle):
    with pytest.raises(InputMismatch, match=needle.replace("(", r"\(")):
        mlp.infer(feeds)
    mlp.infer({"x": np.zeros((1, 16), "float32")})  # still serving


def _copy(pkg, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(pkg, dst)
    return dst


def test_tampered_params_fail_checksum(exported, tmp_path):
    pkg = _copy(exported("demo:mlp"), tmp_path)
    params = pkg / "model.pdiparams"
    data = bytearray(params.read_bytes())
    data[100] ^= 0xFF
    params.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="sha256"):
        load(pkg)


def test_truncated_and_missing_files(exported, tmp_path):
    pkg = _copy(exported("demo:mlp"), tmp_path)
    params = pkg / "model.pdiparams"
    params.write_bytes(params.read_bytes()[:50])
    with pytest.raises(PackageError, match="truncated"):
        load(pkg)
    params.unlink()
    with pytest.raises(PackageError, match="missing"):
        load(pkg)


def test_not_a_package(tmp_path):
    with pytest.raises(PackageError, match="not a model package"):
        load(tmp_path)
    with pytest.raises(PackageError, match="no such"):
        load(tmp_path / "nope")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[]", "JSON object"),
        ("{", "not valid JSON"),
        ("[" * 100000 + "]" * 100000, "not valid JSON"),
        ('{"schema_version": 1}', "missing key"),
    ],
    ids=["list", "truncated", "deeply-nested", "missing-key"],
)
def test_hostile_manifests(text, needle):
    with pytest.raises(PackageError, match=needle):
        loads_manifest(text)


def test_manifest_wrong_types(exported):
    data = json.loads((exported("demo:mlp") / MANIFEST_NAME).read_text())
    for key, value in [("version", "1.0"), ("inputs", "x"), ("files", []), ("name", "../x"),
                       ("format", "onnx"), ("schema_version", 99)]:
        bad = dict(data, **{key: value})
        with pytest.raises(PackageError):
            loads_manifest(json.dumps(bad))


def test_pool_under_concurrent_load(exported):
    # Predictors are created while other threads infer, on a busy CPU: every result must be right.
    # (Once, under load, a clone made while its source ran failed every call it served; pools
    # now create each predictor from its own config, with no scope shared between them.)
    import subprocess
    import sys
    import threading
    import time

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    errors: list[str] = []
    try:
        with load(exported("demo:mlp"), pool_max=4) as servable:
            x = np.ones((2, 16), "float32")
            want = servable.infer({"x": x})["logits"]

            deadline = time.monotonic() + 90

            def work() -> None:
                # at least 300 calls, and on until the pool grew: growth is background work,
                # niced, so on a busy CPU it may land after 300 calls of a tiny model
                n = 0
                while n < 300 or (servable.pool_size < 2 and time.monotonic() < deadline):
                    n += 1
                    try:
                        got = servable.infer({"x": x})["logits"]
                        if not np.allclose(got, want):
                            errors.append("wrong result")
                    except Exception as exc:  # noqa: BLE001 - collected, reported below
                        errors.append(str(exc)[:100])

            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
                assert not t.is_alive()
            assert servable.pool_size >= 2
    finally:
        for proc in busy:
            proc.kill()
    assert errors == []
