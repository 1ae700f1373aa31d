"""core.plugin_abi is the one Python mirror of plugin.h: every return code, dtype code, the
version node and the layout of both structs (offsets and sizes from the C compiler) agree."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

from paddlehot_cli.core import plugin_abi

HEADER = Path(__file__).resolve().parents[1] / "native" / "include" / "paddlehot" / "plugin.h"


def _defines() -> dict[str, str]:
    return dict(re.findall(r"^#define (PHOT_\w+) (.+?)(?:\s*/\*.*)?$", HEADER.read_text(), re.MULTILINE))


def test_codes_and_names_match_the_header():
    d = _defines()
    codes = {k: int(v.strip("()")) for k, v in d.items() if k.startswith("PHOT_E_")}
    assert codes == plugin_abi.RETURN_CODES
    assert int(d["PHOT_OK"]) == plugin_abi.OK
    dtypes = {k.removeprefix("PHOT_DTYPE_").lower(): int(v) for k, v in d.items()
              if k.startswith("PHOT_DTYPE_")}
    assert dtypes == plugin_abi.DTYPE_CODES
    assert d["PHOT_ABI_NODE"].strip('"') == plugin_abi.ABI_NODE
    assert (int(d["PHOT_ABI_MAJOR"]), int(d["PHOT_ABI_MINOR"])) == plugin_abi.ABI_VERSION
    assert int(d["PHOT_MAX_RANK"]) == plugin_abi.MAX_RANK
    for fn in plugin_abi.FUNCTIONS:
        assert f"phot_{fn}_fn" in HEADER.read_text()


def test_struct_layouts_match_the_compiler(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "paddlehot/plugin.h"',
             "int main(void) {"]
    for struct, cls in plugin_abi.STRUCTS.items():
        lines.append(f'printf("{struct} size %zu\\n", sizeof({struct}));')
        for name, _ in cls._fields_:
            lines.append(f'printf("{struct} {name} %zu\\n", offsetof({struct}, {name}));')
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, f"-I{HEADER.parents[1]}", str(src), "-o", str(exe)], check=True)
    got = [ln.split() for ln in subprocess.run([str(exe)], capture_output=True, text=True,
                                                check=True).stdout.splitlines()]
    for struct, field, value in got:
        cls = plugin_abi.STRUCTS[struct]
        want = ctypes.sizeof(cls) if field == "size" else getattr(cls, field).offset
        assert int(value) == want, (struct, field)
    assert plugin_abi.STRUCT_SIZES == {"phot_tensor": 104, "phot_open_options": 32}
