"""Precision variants: identity, derivation (int8 PTQ, bf16), refusals, hardware honesty."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from paddlehot_cli.core.manifest import read_verified
from paddlehot_cli.core.precision_config import refusal_here
from paddlehot_cli.core.precision_hardware import cpu_flags, cpu_refusal, needs_for, paddle_refusal
from paddlehot_cli.core.variants import split_key, variant_key
from paddlehot_cli.core.versions import c_identifier
from paddlehot_cli.errors import PackageError, ValidationFailed
from tests.conftest import assert_one_line_error, cli

WIDE = ("--atol", "5", "--rtol", "0", "--min-argmax-agreement", "0")


@pytest.fixture(scope="module")
def cnn_repo(tmp_path_factory) -> Path:
    """demo:cnn 1.0.0 in the legacy format (int8 needs it), plus a calibration set."""
    root = tmp_path_factory.mktemp("variants")
    proc = cli("export", "demo:cnn", "--model-format", "legacy", "--repo", root / "models",
               "--version", "1.0.0")
    assert proc.returncode == 0, proc.stderr
    np.savez(root / "calib.npz",
             image=np.random.default_rng(0).standard_normal((16, 3, 32, 32), np.float32))
    return root


def fresh(cnn_repo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(cnn_repo / "models", tmp_path / "models"))


def test_identity_round_trips_and_is_a_c_and_oci_name():
    assert variant_key("1.2.0", "fp32") == "1.2.0"
    assert variant_key("1.2.0", "int8") == "1.2.0-int8"
    assert split_key("1.2.0-int8") == ("1.2.0", "int8")
    assert split_key("1.2.0") == ("1.2.0", "fp32")
    for bad in ("1.2.0-fp32", "1.2.0+int8", "1.2-int8", "1.2.0-int8\n", "x-bf16", "1.2.0-INT8"):
        assert split_key(bad) is None, bad
    assert c_identifier("m_1.2.0-bf16") == "m_1_2_0_bf16"
    assert "+" not in variant_key("1.2.0", "bf16")


def test_cpu_refusal_reads_the_flags_it_is_given():
    bf16 = needs_for("bf16", "x86_64")
    assert cpu_refusal(bf16, "bf16", {"avx2", "avx512_bf16"}, "x86_64") is None
    assert cpu_refusal(bf16, "bf16", {"avx2", "amx_bf16"}, "x86_64") is None
    why = cpu_refusal(bf16, "bf16", {"avx2", "avx512f"}, "x86_64")
    assert "avx512_bf16 or amx_bf16" in why
    assert "x86_64" in cpu_refusal(bf16, "bf16", {"bf16"}, "aarch64")
    assert cpu_refusal(None, "fp32", set(), "x86_64") is None


def test_paddle_refusal_asks_this_paddle():
    import paddle

    core = paddle.base.core
    why = paddle_refusal(needs_for("bf16"), "bf16", core)
    assert (why is None) == (bool(core.is_compiled_with_mkldnn()) and core.supports_bfloat16())
    if why is not None:
        assert "bfloat16" in why or "oneDNN" in why


def test_bf16_variant_is_made_only_where_the_box_runs_bf16(cnn_repo, tmp_path):
    """Refused here (no bf16 units); made and shared by hash where the CPU and Paddle have it."""
    repo = fresh(cnn_repo, tmp_path)
    proc = cli("variant", f"{repo}:cnn@1.0.0", "--precision", "bf16")
    why = refusal_here(needs_for("bf16"), "bf16")
    if why is not None:
        assert_one_line_error(proc, 2, "cannot make a bf16 variant on this box")
        assert not (repo / "cnn/1.0.0/variants").exists()
        return
    assert proc.returncode == 0, proc.stderr
    vdir = repo / "cnn/1.0.0/variants/bf16"
    m = read_verified(vdir)
    assert m.precision == "bf16" and set(m.shared_files) == {"model.pdmodel", "model.pdiparams"}
    assert not (vdir / "model.pdiparams").exists()  # shared by hash, never copied


def test_int8_refuses_without_calibration_and_for_a_missing_version(cnn_repo, tmp_path):
    repo = fresh(cnn_repo, tmp_path)
    assert_one_line_error(cli("variant", f"{repo}:cnn@1.0.0", "--precision", "int8"), 2,
                          "needs calibration data")
    assert_one_line_error(cli("variant", f"{repo}:cnn@9.0.0", "--precision", "int8",
                              "--calibration", cnn_repo / "calib.npz"), 2, "no version 9.0.0")
    assert_one_line_error(cli("variant", f"{repo}:cnn@1.0.0", "--precision", "fp16"), 2,
                          "unknown precision")
    assert not (repo / "cnn/1.0.0/variants").exists()


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.zeros((4, 3, 32, 32), np.float32)}, "no array 'image'"),
    ({"image": np.zeros((4, 3, 32, 32), np.float64)}, "is float64"),
    ({"image": np.zeros((4, 3, 16, 16), np.float32)}, "has shape [4, 3, 16, 16]"),
    ({"image": np.zeros((4, 3, 32, 32), np.float32), "extra": np.zeros(1)}, "unknown array"),
    ({"image": np.full((4, 3, 32, 32), np.nan, np.float32)}, "NaN"),
    (None, "not a readable .npz"),
])
def test_bad_calibration_is_one_error_and_nothing_written(cnn_repo, tmp_path, arrays, needle):
    repo = fresh(cnn_repo, tmp_path)
    calib = tmp_path / "c.npz"
    if arrays is None:
        calib.write_bytes(b"not a zip")
    else:
        np.savez(calib, **arrays)
    proc = cli("variant", f"{repo}:cnn@1.0.0", "--precision", "int8", "--calibration", calib)
    assert_one_line_error(proc, 2, needle)
    assert not (repo / "cnn/1.0.0/variants").exists()


def test_int8_of_a_pir_version_is_refused(tmp_path):
    repo = tmp_path / "models"
    assert cli("export", "demo:mlp", "--repo", repo, "--version", "1.0.0").returncode == 0
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 16), np.float32))
    proc = cli("variant", f"{repo}:mlp@1.0.0", "--precision", "int8", "--calibration",
               tmp_path / "c.npz")
    assert_one_line_error(proc, 2, "legacy-format version")


def test_int8_too_far_from_fp32_is_refused_with_the_numbers(cnn_repo, tmp_path):
    repo = fresh(cnn_repo, tmp_path)
    before = sorted(p.name for p in (repo / "cnn/1.0.0").iterdir())
    proc = cli("variant", f"{repo}:cnn@1.0.0", "--precision", "int8", "--calibration",
               cnn_repo / "calib.npz")
    if proc.returncode == 0:  # a CPU whose int8 happens to stay within 0.1 of fp32
        return
    assert_one_line_error(proc, 1, "not close enough to fp32", "max |diff|")
    assert sorted(p.name for p in (repo / "cnn/1.0.0").iterdir()) == before


def test_int8_accepted_with_widened_tolerance_is_a_verified_variant(cnn_repo, tmp_path):
    repo = fresh(cnn_repo, tmp_path)
    base_files = {p.name: p.read_bytes() for p in (repo / "cnn/1.0.0").iterdir() if p.is_file()}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = cli("variant", f"{repo}:cnn@1.0.0", "--precision", "int8", "--calibration",
               cnn_repo / "calib.npz", *WIDE, env={"TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr
    assert "1.0.0-int8" in proc.stdout
    # Paddle's int8 pass summary (C++, fd 2) went to a log, removed once the variant is published
    assert "quantized" not in proc.stdout + proc.stderr, proc.stderr
    assert not list(tmp.iterdir())
    vdir = repo / "cnn/1.0.0/variants/int8"
    m = read_verified(vdir)
    assert m.precision == "int8" and m.version == "1.0.0"
    assert m.requires["paddle"] == ["onednn", "int8"]
    fp32 = m.validation["against_fp32"]
    assert fp32["outputs"]["logits"]["max_abs_err"] > 0 and m.validation["widened"] is True
    # the published version's own files are untouched (append-only)
    assert {p.name: p.read_bytes() for p in (repo / "cnn/1.0.0").iterdir()
            if p.is_file()} == base_files
    again = cli("variant", f"{repo}:cnn@1.0.0", "--precision", "int8", "--calibration",
                cnn_repo / "calib.npz", *WIDE)
    assert_one_line_error(again, 2, "already exists")
    # the fp32 version it was validated against is replaced: the variant no longer verifies
    manifest = repo / "cnn/1.0.0/paddlehot.json"
    doc = json.loads(manifest.read_text())
    doc["source"] = "replaced"
    manifest.write_text(json.dumps(doc))
    with pytest.raises(PackageError, match="has changed"):
        read_verified(vdir)


def test_this_box_flags_are_read():
    assert cpu_flags(), "no CPU flags in /proc/cpuinfo"


def test_export_precision_checks_everything_before_exporting(cnn_repo, tmp_path):
    repo = tmp_path / "models"
    proc = cli("export", "demo:cnn", "--repo", repo, "--precision", "int8")
    assert_one_line_error(proc, 2, "--calibration")
    proc = cli("export", "demo:cnn", "--repo", repo, "--precision", "bf16")
    if refusal_here(needs_for("bf16"), "bf16") is not None:
        assert_one_line_error(proc, 2, "cannot make a bf16 variant on this box")
        assert not repo.exists()  # refused before the fp32 version was exported
    else:
        assert proc.returncode == 0, proc.stderr
        assert (repo / "cnn/1.0.0/variants/bf16/paddlehot.json").is_file()


def test_export_precision_int8_publishes_fp32_and_says_so_when_the_variant_fails(cnn_repo,
                                                                                 tmp_path):
    repo = tmp_path / "models"
    proc = cli("export", "demo:cnn", "--repo", repo, "--model-format", "legacy",
               "--precision", "int8", "--calibration", cnn_repo / "calib.npz")
    read_verified(repo / "cnn/1.0.0")  # the fp32 version is whole either way
    if proc.returncode == 0:
        assert read_verified(repo / "cnn/1.0.0/variants/int8").precision == "int8"
        return
    assert_one_line_error(proc, 1, "was published, no int8 variant was written")
    assert not (repo / "cnn/1.0.0/variants").exists()


def test_native_log_takes_fd2_and_is_named_only_when_paddle_may_explain_a_failure(tmp_path,
                                                                                  capfd):
    from paddlehot_cli.export.native_log import NativeLog
    from paddlehot_cli.export.variant import VariantValidationFailed

    log = NativeLog("t")
    with pytest.raises(PackageError) as info, log.kept_on_failure():
        with log.capture_fd2():
            os.write(2, b"---    quantized 3 fused_conv2d ops\n")  # as C++ std::cerr writes
        raise PackageError("Paddle could not load the int8 program")
    assert "quantized" not in capfd.readouterr().err
    assert str(log.path) in info.value.hint
    assert "quantized 3" in log.path.read_text()
    log.discard()
    numbers = VariantValidationFailed.__new__(VariantValidationFailed)  # its report aside
    ValidationFailed.__init__(numbers, "the int8 variant is not close enough to fp32")
    for outcome in (None, numbers):  # success, or a failure the numbers explain: no log left
        log = NativeLog("t")
        log.append("pass summary\n")
        with contextlib.suppress(ValidationFailed), log.kept_on_failure():
            if outcome is not None:
                raise outcome
        assert not log.path.exists()
