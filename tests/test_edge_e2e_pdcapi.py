"""pdcapi for aarch64: the cross build runs its self-test inside the edge rootfs under qemu (every
supported dtype and a dynamic shape through a tiny model) and a wrong answer fails the build;
the symbol check names what the target's libpaddle.so lacks. Needs the rootfs of
native/edge/build-rootfs.sh (skipped without, unless PADDLEHOT_EDGE_REQUIRED=1)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin import pdcapi
from tests.test_host_go_arm64 import rootfs  # noqa: F401 - the module's rootfs fixture


@pytest.fixture(scope="module")
def cross_lib(rootfs):  # noqa: F811
    from paddlehot_cli.plugin.c_api_choice import CROSS_CC
    from paddlehot_cli.plugin.cross import build_cross_pdcapi

    return build_cross_pdcapi(rootfs, CROSS_CC["aarch64"])


def test_cross_self_test_passes_and_refuses_a_wrong_answer(rootfs, cross_lib, tmp_path,  # noqa: F811
                                                            monkeypatch):
    from paddlehot_cli.plugin.c_api_choice import CROSS_CC
    from paddlehot_cli.plugin.cross import self_test_under_qemu

    work = tmp_path / "bridge"
    work.mkdir()
    shutil.copy(cross_lib, work / cross_lib.name)
    self_test_under_qemu(rootfs, work / cross_lib.name, CROSS_CC["aarch64"])  # the real one
    fake = tmp_path / "selftest"
    fake.mkdir()
    for name in ("selftest.c", "model.json"):
        shutil.copy(pdcapi.selftest_dir() / name, fake / name)
    params = bytearray((pdcapi.selftest_dir() / "model.pdiparams").read_bytes())
    params[-4:] = np.float32(9.0).tobytes()  # the last bias value: a wrong float32 output
    (fake / "model.pdiparams").write_bytes(bytes(params))
    monkeypatch.setattr(pdcapi, "selftest_dir", lambda: fake)
    with pytest.raises(UserError) as info:
        self_test_under_qemu(rootfs, work / cross_lib.name, CROSS_CC["aarch64"])
    assert "under qemu (aarch64) failed" in str(info.value)
    assert "MISMATCH: float32" in str(info.value)


def test_cross_symbol_check_names_what_the_target_lacks(rootfs, cross_lib):  # noqa: F811
    pdcapi.check_symbols(cross_lib, rootfs.site_packages() / "paddle" / "base" / "libpaddle.so")
    libc = rootfs.path / "lib" / rootfs.triplet / "libc.so.6"
    with pytest.raises(UserError) as info:
        pdcapi.check_symbols(cross_lib, libc)
    assert "paddle_infer::CreatePredictor(paddle::AnalysisConfig const&)" in str(info.value)
