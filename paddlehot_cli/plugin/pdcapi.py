"""Build paddlehot's libpaddle_inference_c.so: the Paddle Inference C API over the pip wheel.

Plugins call Paddle Inference through its C API. On an edge box they link the official library;
here they link this one: native/pdcapi, C++ over the C++ API that the wheel's
paddle/base/libpaddle.so exports. No Python interpreter runs in it: libpython is linked only
because libpaddle.so refers to Py* symbols (it must be loadable, it is never initialised).

A build compiles and links the bridge, checks that every Paddle symbol it imports is defined by
this libpaddle.so (naming any that is not), runs the self-test (native/pdcapi/selftest: every
supported dtype and a dynamic shape through a tiny model), and only then caches the library per
(arch, Paddle version, libpaddle build id, sources and flags). Nothing here imports paddle.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from paddlehot_cli.core import pdcapi_locator as locator
from paddlehot_cli.core.plugin_abi import host_arch
from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin.libpaddle import (
    LibPaddle,
    demangle,
    describe,
    missing_symbols,
    paddle_version,
    wheel_libpaddle,
)
from paddlehot_cli.resources import native_dir

SONAME = "libpaddle_inference_c.so"
SELFTEST_TIMEOUT_S = 120

# One PD_ function prototype in our headers: "PADDLE_CAPI_EXPORT extern RET NAME(ARGS);"
_PROTO = re.compile(
    r"PADDLE_CAPI_EXPORT\s+extern\s+(?P<ret>[^;()]*?)\b(?P<name>PD_\w+)\s*\((?P<args>[^)]*)\)\s*;",
    re.DOTALL,
)


def pdcapi_dir() -> Path:
    return native_dir() / "pdcapi"


def pdcapi_include_dir() -> Path:
    """The directory holding pd_inference_api.h and paddlehot_pdcapi_ext.h."""
    return pdcapi_dir() / "include"


def cache_root() -> Path:
    return locator.cache_root()


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


def cxx_for(cc: str) -> str:
    """The C++ driver beside a C compiler: gcc -> g++, cc -> c++, clang -> clang++ (also with a
    target prefix or a directory); $CXX when cc is the default."""
    head, _, name = cc.rpartition("/")
    for c, cxx in (("clang", "clang++"), ("gcc", "g++"), ("cc", "c++")):
        if name == c or name.endswith("-" + c):
            return (head + "/" if head else "") + name[: len(name) - len(c)] + cxx
    return os.environ.get("CXX") or "c++"


def _require_cc(cc: str, what: str = "C compiler") -> str:
    path = shutil.which(cc)
    if not path:
        raise UserError(
            f"{what} not found: {cc}",
            hint="install one (e.g. `apt-get install g++`) or set CC / pass cc=",
        )
    return path


def _shared_sources() -> list[Path]:
    """native/runtime files pdcapi compiles too (the one memfd helper)."""
    runtime = native_dir() / "runtime"
    return [runtime / "memfiles.c", runtime / "memfiles.h"]


def cxx_sources() -> list[Path]:
    return sorted((pdcapi_dir() / "src").glob("*.cc"))


def c_sources() -> list[Path]:
    return [p for p in _shared_sources() if p.suffix == ".c"]


def include_flags() -> list[str]:
    """-I flags every pdcapi build needs, for any arch."""
    return [f"-I{pdcapi_include_dir()}", f"-I{native_dir() / 'runtime'}"]


def exports_map() -> Path:
    return pdcapi_dir() / "exports.map"


def selftest_dir() -> Path:
    return pdcapi_dir() / "selftest"


def _sources() -> list[Path]:
    root = pdcapi_dir()
    files = (sorted((root / "src").glob("*.cc")) + sorted((root / "src").glob("*.h"))
             + sorted((root / "include").glob("*.h")) + [exports_map()]
             + sorted(selftest_dir().glob("*.[cj]*")) + sorted(selftest_dir().glob("*.pdiparams"))
             + _shared_sources())
    if not cxx_sources():
        raise UserError(
            f"pdcapi sources not found under {root}", hint="run from a paddlehot source checkout"
        )
    return files


def common_flags() -> list[str]:
    return ["-O2", "-g0", "-fPIC", "-fvisibility=hidden", "-Wall", *include_flags()]


def link_flags(libpaddle: Path, python_ld: list[str], rpath: Path | None = None) -> list[str]:
    """Link the bridge: exports from exports.map only, libpaddle.so by path (+ rpath to it: to
    `rpath` when the library will be elsewhere at run time, e.g. inside a rootfs), and whatever
    makes libpython loadable (python_ld)."""
    return [
        "-shared",
        f"-Wl,-soname,{SONAME}",
        f"-Wl,--version-script={exports_map()}",
        "-Wl,-z,relro,-z,now",
        "-Wl,-z,noexecstack",
        f"-L{libpaddle.parent}",
        f"-l:{libpaddle.name}",
        f"-Wl,-rpath,{rpath or libpaddle.parent}",
        *python_ld,
        "-lpthread",
    ]


def _python_ldflags() -> list[str]:
    """libpaddle.so refers to Py* symbols (data among them): a C host must have libpython
    mapped. Link this interpreter's libpython (same soname as the one a Python process already
    has, so never a second copy); it is loaded, never initialised."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        # A static interpreter exports Py* itself: the library then works inside a Python
        # process only.
        return []
    libdir = sysconfig.get_config_var("LIBDIR")
    return [f"-L{libdir}", f"-lpython{sysconfig.get_config_var('LDVERSION')}",
            f"-Wl,-rpath,{libdir}"]


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:12]


def cache_key(lib: LibPaddle, tools: list[str], flags: list[str]) -> str:
    """<arch>-paddle<version>-<build id>-<digest of tools, flags, sources>."""
    parts = [t.encode() for t in tools] + ["\0".join(flags).encode()]
    for f in _sources():
        parts += [f.name.encode(), f.read_bytes()]
    return locator.key_prefix(lib.arch, lib.version, lib.build_id) + _digest(parts)


@contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A private temp dir beside target (removed afterwards): build there, then os.replace into
    place, so concurrent builds all succeed and a reader never sees half a library."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_tool(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = ([ln for ln in proc.stderr.splitlines() if "error" in ln]
                 or proc.stderr.splitlines() or ["(no output)"])
        raise UserError(f"building {what} failed: {lines[0].strip()}",
                        hint="command: " + " ".join(cmd))


def compile_and_link(tmp: Path, cc: str, cxx: str, flags: list[str], ldflags: list[str],
                     what: str) -> Path:
    """Objects of the C++ and C sources in tmp, linked with the C++ driver; returns the .so."""
    objects = []
    for src in cxx_sources():
        obj = tmp / (src.stem + ".o")
        _run_tool([cxx, "-std=gnu++17", *flags, "-c", str(src), "-o", str(obj)], what)
        objects.append(str(obj))
    for src in c_sources():
        obj = tmp / (src.stem + ".c.o")
        _run_tool([cc, "-std=gnu11", *flags, "-c", str(src), "-o", str(obj)], what)
        objects.append(str(obj))
    out = tmp / SONAME
    _run_tool([cxx, *objects, *ldflags, "-o", str(out)], what)
    return out


def check_symbols(bridge: Path, libpaddle: Path) -> None:
    """UserError naming every Paddle symbol the bridge uses that libpaddle does not define."""
    missing = missing_symbols(bridge, libpaddle)
    if missing:
        names = "; ".join(demangle(missing))
        raise UserError(f"{libpaddle} lacks {len(missing)} symbol(s) pdcapi uses: {names}",
                        hint="this Paddle build does not export that C++ API; use a "
                        "paddlepaddle wheel that does (the x86_64 3.3.1 and aarch64 3.2.2 wheels do)")


def compile_self_test(bridge: Path, cc: str, ldflags: list[str] = ()) -> Path:
    """native/pdcapi/selftest/selftest.c compiled with `cc` against the new bridge, beside it."""
    exe = bridge.parent / "pdcapi-selftest"
    _run_tool([cc, "-O2", "-Wall", *include_flags(), str(selftest_dir() / "selftest.c"),
               "-o", str(exe), f"-L{bridge.parent}", "-lpaddle_inference_c",
               f"-Wl,-rpath,{bridge.parent}", *ldflags], "the pdcapi self-test")
    return exe


def run_self_test(cmd: list[str], env: dict[str, str] | None = None,
                  timeout: float = SELFTEST_TIMEOUT_S, where: str = "") -> None:
    """Run a compiled self-test (cmd ends with its model files); UserError unless it printed
    "selftest ok": the first MISMATCH line, else its last line, names what failed."""
    env = {**os.environ, "GLOG_minloglevel": "2"} if env is None else env
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"the pdcapi self-test{where} did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0 or "selftest ok" not in proc.stdout:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "MISMATCH" in ln), lines[-1] if lines else
                   f"exit status {proc.returncode}")
        raise UserError(f"the pdcapi self-test{where} failed: {why.strip()}",
                        hint="pdcapi's declarations of Paddle's C++ API do not match this "
                        "libpaddle.so; nothing was cached")


def self_test_models() -> list[Path]:
    return [selftest_dir() / "model.json", selftest_dir() / "model.pdiparams"]


def self_test(bridge: Path, cc: str) -> None:
    """The self-test on this host: every supported dtype and a dynamic shape through the
    self-test model; UserError on a mismatch."""
    exe = compile_self_test(bridge, cc)
    run_self_test([str(exe), *map(str, self_test_models())])


def _native_plan(cc: str | None) -> tuple[LibPaddle, str, str, list[str], list[str], Path]:
    cc_name = _resolve_cc_name(cc)
    cxx_name = cxx_for(cc_name)
    lib = describe(wheel_libpaddle(), paddle_version(), host_arch())
    flags = common_flags()
    ldflags = link_flags(lib.path, _python_ldflags())
    target = cache_root() / cache_key(lib, [cc_name, cxx_name], flags + ldflags) / SONAME
    return lib, cc_name, cxx_name, flags, ldflags, target


def find_cached_pdcapi(cc: str | None = None) -> Path | None:
    """The cached library for this paddle, or None; never builds."""
    try:
        *_, target = _native_plan(cc)
    except UserError:
        return None
    return target if target.is_file() else None


def build_pdcapi(cc: str | None = None, force: bool = False) -> Path:
    """Build (or reuse) libpaddle_inference_c.so over this wheel's libpaddle.so; its path."""
    lib, cc_name, cxx_name, flags, ldflags, target = _native_plan(cc)
    if target.is_file() and not force:
        return target
    cc_path = _require_cc(cc_name)
    cxx_path = _require_cc(cxx_name, "C++ compiler")
    with staging(target) as tmp:
        built = compile_and_link(tmp, cc_path, cxx_path, flags, ldflags, SONAME)
        check_symbols(built, lib.path)
        self_test(built, cc_path)
        os.replace(built, target)
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
    with staging(out) as tmp:
        _run_tool([cc_path, *flags, "-x", "c", str(src), "-o", str(tmp / SONAME)],
                  f"{SONAME} stub for {target}")
        os.replace(tmp / SONAME, out)
    return out


if __name__ == "__main__":  # python -m paddlehot_cli.plugin.pdcapi: build (or find) and print
    print(build_pdcapi())
