"""Build paddlehot's libpaddle_inference_c.so: the Paddle Inference C API over the pip wheel.

Plugins call Paddle Inference through its C API. On an edge box they link the official library;
here they link this one, compiled from native/pdcapi with the system compiler and cached per
(Python, paddle version, sources, flags). Nothing in this module imports paddle.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib import metadata
from pathlib import Path

from paddlehot_cli.errors import UserError
from paddlehot_cli.resources import native_dir

SONAME = "libpaddle_inference_c.so"

# One PD_ function prototype in our headers: "PADDLE_CAPI_EXPORT extern RET NAME(ARGS);"
_PROTO = re.compile(
    r"PADDLE_CAPI_EXPORT\s+extern\s+(?P<ret>[^;()]*?)\b(?P<name>PD_\w+)\s*\((?P<args>[^)]*)\)\s*;",
    re.S,
)


def pdcapi_dir() -> Path:
    return native_dir() / "pdcapi"


def pdcapi_include_dir() -> Path:
    """The directory holding pd_inference_api.h and paddlehot_pdcapi_ext.h."""
    return pdcapi_dir() / "include"


def cache_root() -> Path:
    base = os.environ.get("PADDLEHOT_CACHE") or str(Path.home() / ".cache" / "paddlehot")
    return Path(base) / "pdcapi"


def _paddle_version() -> str:
    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "none"


def _python_tag() -> str:
    return f"{sys.implementation.cache_tag or 'py'}"  # e.g. cpython-311


def _resolve_cc_name(cc: str | None) -> str:
    if cc:
        return cc
    env = os.environ.get("CC")
    if env:
        return env
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return "cc"


def _require_cc(cc: str) -> str:
    path = shutil.which(cc)
    if not path:
        raise UserError(
            f"C compiler not found: {cc}",
            hint="install one (e.g. `apt-get install gcc`) or set CC / pass cc=",
        )
    return path


def _shared_sources() -> list[Path]:
    """native/runtime files pdcapi compiles too (the one memfd helper)."""
    runtime = native_dir() / "runtime"
    return [runtime / "memfiles.c", runtime / "memfiles.h"]


def compile_sources() -> list[str]:
    """The C files of one pdcapi build (its own and the shared runtime helper), for any arch."""
    srcs = [str(p) for p in sorted((pdcapi_dir() / "src").glob("*.c"))]
    return srcs + [str(p) for p in _shared_sources() if p.suffix == ".c"]


def include_flags() -> list[str]:
    """-I flags every pdcapi build needs, for any arch."""
    return [f"-I{pdcapi_include_dir()}", f"-I{native_dir() / 'runtime'}"]


def _sources() -> list[Path]:
    root = pdcapi_dir()
    files = (sorted((root / "src").glob("*.[ch]")) + sorted((root / "include").glob("*.h"))
             + _shared_sources())
    if not files:
        raise UserError(
            f"pdcapi sources not found under {root}", hint="run from a paddlehot source checkout"
        )
    return files


def _python_flags() -> tuple[list[str], list[str]]:
    """(compile flags, link flags) for embedding this interpreter."""
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        raise UserError(
            f"Python.h not found in {include}",
            hint="install the Python development headers (e.g. `apt-get install python3-dev`)",
        )
    cflags = [f"-I{include}", f'-DPHOT_PYTHON_EXECUTABLE="{sys.executable}"']
    ldflags: list[str] = []
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        # Link the same libpython the interpreter uses (same soname: a python process keeps one
        # copy); a C host gets it through the rpath.
        libdir = sysconfig.get_config_var("LIBDIR")
        soname = sysconfig.get_config_var("INSTSONAME") or ""
        cflags.append(f'-DPHOT_LIBPYTHON="{soname}"')
        ldflags += [
            f"-L{libdir}",
            f"-lpython{sysconfig.get_config_var('LDVERSION')}",
            f"-Wl,-rpath,{libdir}",
        ]
    # A static interpreter exports its symbols itself: linking libpython would load a second
    # copy, so the library then only works inside a Python process.
    return cflags, ldflags


def _flags() -> tuple[list[str], list[str]]:
    py_c, py_ld = _python_flags()
    cflags = [
        "-O2",
        "-g0",
        "-std=gnu11",
        "-fPIC",
        "-fvisibility=hidden",
        "-Wall",
        *include_flags(),
        *py_c,
    ]
    ldflags = [
        "-shared",
        f"-Wl,-soname,{SONAME}",
        "-Wl,-z,relro,-z,now",
        "-Wl,-z,noexecstack",
        *py_ld,
        "-ldl",
        "-lpthread",
    ]
    return cflags, ldflags


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:12]


def _key(cc: str, cflags: list[str], ldflags: list[str]) -> str:
    parts = [cc.encode(), "\0".join(cflags + ldflags).encode()]
    for f in _sources():
        parts += [f.name.encode(), f.read_bytes()]
    return f"{_python_tag()}-paddle{_paddle_version()}-{_digest(parts)}"


def _compile_into(target: Path, cmd_tail: list[str], cc_path: str, what: str) -> None:
    """Compile into a private temp dir, then rename into place: concurrent builds all succeed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        out = tmp / SONAME
        cmd = [cc_path, *cmd_tail, "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (
                [ln for ln in proc.stderr.splitlines() if "error" in ln]
                or proc.stderr.splitlines()
                or ["(no output)"]
            )
            raise UserError(
                f"building {what} failed: {lines[0].strip()}", hint="command: " + " ".join(cmd)
            )
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find_cached_pdcapi(cc: str | None = None) -> Path | None:
    """The cached library for this interpreter and paddle, or None; never builds."""
    try:
        cflags, ldflags = _flags()
        path = cache_root() / _key(_resolve_cc_name(cc), cflags, ldflags) / SONAME
    except UserError:
        return None
    return path if path.is_file() else None


def build_pdcapi(cc: str | None = None, force: bool = False) -> Path:
    """Build (or reuse) libpaddle_inference_c.so for this interpreter; returns its path."""
    cc_name = _resolve_cc_name(cc)
    cflags, ldflags = _flags()
    target = cache_root() / _key(cc_name, cflags, ldflags) / SONAME
    if target.is_file() and not force:
        return target
    cc_path = _require_cc(cc_name)
    _compile_into(target, [*cflags, *compile_sources(), *ldflags], cc_path, SONAME)
    return target


def header_prototypes() -> list[tuple[str, str, str]]:
    """(return type, name, arguments) of every PD_ function in the official-API headers."""
    protos = []
    for header in sorted(pdcapi_include_dir().glob("pd_*.h")):
        for m in _PROTO.finditer(header.read_text()):
            ret = " ".join(m["ret"].replace("__pd_give", "").split())
            args = " ".join(m["args"].split())
            protos.append((ret, m["name"], args))
    return protos


def _stub_source() -> str:
    lines = [
        "/* generated by paddlehot: link-time stub, never run */",
        '#include "pd_inference_api.h"',
        "",
    ]
    for ret, name, args in header_prototypes():
        body = "{}" if ret == "void" else "{ return 0; }"
        lines.append(f"{ret} {name}({args}) {body}")
    return "\n".join(lines) + "\n"


def build_link_stub(target: str, cc: str) -> Path:
    """A link-only libpaddle_inference_c.so for a cross target (e.g. aarch64-linux-gnu with
    aarch64-linux-gnu-gcc): the PD_ functions of our headers as empty definitions."""
    cc_path = _require_cc(cc)
    source = _stub_source()
    flags = [
        "-O0",
        "-fPIC",
        "-shared",
        "-nostdlib",
        "-fvisibility=hidden",
        f"-I{pdcapi_include_dir()}",
        f"-Wl,-soname,{SONAME}",
        "-Wl,-z,noexecstack",
    ]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target)
    key = _digest([safe.encode(), cc.encode(), "\0".join(flags).encode(), source.encode()])
    out = cache_root() / f"stub-{safe}-{key}" / SONAME
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / "pdcapi_stub.c"
    tmp_src = out.parent / f".pdcapi_stub.{os.getpid()}.c"
    tmp_src.write_text(source)
    os.replace(tmp_src, src)
    _compile_into(out, [*flags, "-x", "c", str(src)], cc_path, f"{SONAME} stub for {target}")
    return out
