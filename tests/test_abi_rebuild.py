"""A plain rebuild is no change: the same plugin source (with bit fields, unions, anonymous
types, an exported variable and versioned symbols: the corpus' EXT types) built with other
optimisation levels, another DWARF version and other compilers compares as "none". A toolchain
upgrade must not turn a user's CI red."""

from __future__ import annotations

import os

import pytest
from abi_fixtures import helpers as h
from abi_fixtures.corpus import ext

from paddlehot_cli.abi.runner import run_abi_check

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")

# (compiler or None for the arch's gcc, extra flags); the baseline is gcc -O1 -g (DWARF 5)
REBUILDS = {
    "-O0": (None, ("-O0",)),
    "-O3": (None, ("-O3",)),
    "-gdwarf-4": (None, ("-gdwarf-4",)),
    "-O3 -gdwarf-4": (None, ("-O3", "-gdwarf-4")),
    "gcc-11": ("gcc-11", ()),
    "clang": ("clang", ()),
    "clang -gdwarf-4": ("clang", ("-gdwarf-4",)),
}
CROSS = ("-O0", "-O3", "-gdwarf-4")  # the aarch64 cross gcc, same flags


def _rebuilds():
    for label in REBUILDS:
        yield pytest.param("x86_64", label, id=f"x86_64:{label}")
    for label in CROSS:
        yield pytest.param("aarch64", label, id=f"aarch64:{label}")


@pytest.mark.parametrize("arch, label", list(_rebuilds()))
def test_rebuild_is_no_change(arch, label):
    compiler, flags = REBUILDS[label]
    for tool in (compiler or h.cc(arch),):
        if not h.available(tool):
            if os.environ.get("CI"):
                pytest.fail(f"CI: {tool} is missing (.ci/run installs it)")
            pytest.skip(f"needs {tool}")
    old = h.build_plugin(debug=True, arch=arch, **ext())
    new = h.build_plugin(
        debug=True, arch=arch, version="1.0.1", compiler=compiler, cflags=flags, **ext()
    )
    report = run_abi_check(str(new), baseline=str(old), runtime_dirs=[h.stub_dir(arch)])
    assert report.baseline["c_abi_scope"] == "exports+dwarf", report.baseline
    assert report.baseline["c_abi"] == "unchanged", report.baseline["changes"]
    status = {f.id: f.status for f in report.findings}
    assert status["PH202"] == status["PH204"] == status["PH201"] == "pass"
    assert status["PH115"] == "pass"


def test_rebuild_reads_both_bit_field_encodings():
    """gcc -gdwarf-4 writes DW_AT_bit_offset (from the storage unit's MSB), DWARF 5 writes
    DW_AT_data_bit_offset: both give the same absolute bit offsets."""
    from paddlehot_cli.abi.dwarf_types import read_surface
    from paddlehot_cli.abi.surfaces import export_keys
    from paddlehot_cli.abi.target import resolve

    got = []
    for flags in ((), ("-gdwarf-4",)):
        so = h.build_plugin(debug=True, cflags=flags, **ext())
        surface = read_surface(so, export_keys(resolve(str(so))))
        got.append(
            [(f.name, f.bit_offset, f.bit_size) for f in surface.records["phot_ext_bits"].fields]
        )
    assert (
        got[0]
        == got[1]
        == [("struct_size", 0, 0), ("mode", 32, 3), ("level", 35, 5), ("after", 64, 0)]
    )
