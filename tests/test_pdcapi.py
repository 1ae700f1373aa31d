"""native/pdcapi: the Paddle Inference C API in C++ over the wheel's libpaddle.so, from a C host
and from Python: outputs, the build's checks, failures that must stay errors, the config bound."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from paddlehot_cli.core.elf_facts import read_elf
from paddlehot_cli.core.plugin_abi import host_arch
from paddlehot_cli.errors import UserError
from paddlehot_cli.plugin import pdcapi
from paddlehot_cli.plugin.libpaddle import (
    build_id,
    missing_symbols,
    paddle_imports,
    paddle_version,
    wheel_libpaddle,
)

NATIVE = Path(__file__).resolve().parent / "native"

EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    import paddle

    class MLP(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.l1 = paddle.nn.Linear(16, 64)
            self.l2 = paddle.nn.Linear(64, 4)

        def forward(self, x):
            return self.l2(paddle.nn.functional.relu(self.l1(x)))

    paddle.seed(7)
    m = MLP()
    m.eval()
    spec = [paddle.static.InputSpec([None, 16], "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(m, input_spec=spec), sys.argv[1])
    """
)


def _input(batch: int, bias: float = 0.0) -> np.ndarray:
    """The fixed input pdcapi_demo.c feeds (same formula, float32)."""
    i = np.arange(batch * 16)
    return (((i % 13) - 6).astype(np.float32) * np.float32(0.125) + np.float32(bias)).reshape(
        batch, 16
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """A PIR (.json) and a legacy (.pdmodel) export of the same MLP, exported in parallel."""
    base = tmp_path_factory.mktemp("pdcapi_models")
    script = base / "export.py"
    script.write_text(EXPORT_SCRIPT)
    env = {**os.environ, "GLOG_minloglevel": "2"}
    procs = {
        # the legacy program format needs the flag at paddle import time
        "legacy": subprocess.Popen(
            [sys.executable, str(script), str(base / "legacy" / "model")],
            env={**env, "FLAGS_enable_pir_api": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
        "pir": subprocess.Popen(
            [sys.executable, str(script), str(base / "pir" / "model")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err.decode()[-2000:])
    out = {
        "pir": (base / "pir" / "model.json", base / "pir" / "model.pdiparams"),
        "legacy": (base / "legacy" / "model.pdmodel", base / "legacy" / "model.pdiparams"),
    }
    for prog, params in out.values():
        assert prog.is_file() and params.is_file()
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pdcapi_cache")
    old = os.environ.get("PADDLEHOT_CACHE")
    os.environ["PADDLEHOT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("PADDLEHOT_CACHE", None)
    else:
        os.environ["PADDLEHOT_CACHE"] = old


@pytest.fixture(scope="module")
def lib(cache_dir) -> Path:
    return pdcapi.build_pdcapi()


@pytest.fixture(scope="module")
def demo(lib, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdcapi_demo") / "pdcapi_demo"
    subprocess.run(
        [
            "cc",
            "-O2",
            "-Wall",
            "-Werror",
            f"-I{pdcapi.pdcapi_include_dir()}",
            str(NATIVE / "pdcapi_demo.c"),
            "-o",
            str(out),
            f"-L{lib.parent}",
            "-lpaddle_inference_c",
            f"-Wl,-rpath,{lib.parent}",
            "-lpthread",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def _python_predictor(prog: Path, params: Path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle's ccache UserWarning at import
        import paddle.inference as pi

    config = pi.Config(str(prog), str(params))
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(1)
    return pi.create_predictor(config)


def _python_infer(predictor, x: np.ndarray) -> np.ndarray:
    h = predictor.get_input_handle(predictor.get_input_names()[0])
    h.reshape(list(x.shape))
    h.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120,
                          check=False, **kw)


# ---- the library itself ----------------------------------------------------------------------


def test_exports_are_exactly_the_header_api(lib):
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    declared = {name for _, name, _ in pdcapi.header_prototypes()}
    assert {"PD_PredictorCreate", "PD_TensorCopyToCpuFloat", "PD_GetVersion"} <= declared
    with open(lib, "rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        exported = {
            s.name
            for s in dynsym.iter_symbols()
            if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL" and s.name
        }
        dyn = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
        tags = {t.entry.d_tag: t for t in dyn.iter_tags()}
        assert tags["DT_SONAME"].soname == "libpaddle_inference_c.so"
        flags = tags.get("DT_FLAGS_1")
        assert flags is not None and flags.entry.d_val & 0x1  # DF_1_NOW
        segs = {s["p_type"]: s for s in elf.iter_segments()}
        assert "PT_GNU_RELRO" in segs
        assert not segs["PT_GNU_STACK"]["p_flags"] & 0x1  # not executable
    assert exported == declared | {"paddlehot_pdcapi_last_error",
                                   "paddlehot_pdcapi_predictors_alive"}


def test_build_is_cached_and_module_does_not_import_paddle(lib, cache_dir):
    assert pdcapi.find_cached_pdcapi() == lib
    assert pdcapi.build_pdcapi() == lib
    assert lib.parent.parent == cache_dir / "pdcapi"
    libpaddle = wheel_libpaddle()
    key = f"{host_arch()}-paddle{paddle_version()}-{build_id(libpaddle)[:12]}-"
    assert lib.parent.name.startswith(key), lib.parent.name
    code = (
        "import sys; import paddlehot_cli.plugin.pdcapi as m; m.find_cached_pdcapi(); "
        "assert 'paddle' not in sys.modules, 'paddle imported'"
    )
    proc = _run([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr


def test_concurrent_builds_both_succeed(tmp_path):
    code = "from paddlehot_cli.plugin.pdcapi import build_pdcapi; print(build_pdcapi(force=True))"
    env = {**os.environ, "PADDLEHOT_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1 and Path(paths.pop()).is_file()
    leftovers = [p for p in (tmp_path / "pdcapi").rglob(".build-*")]
    assert leftovers == []


def test_missing_compiler_is_a_user_error(cache_dir):
    with pytest.raises(UserError) as info:
        pdcapi.build_pdcapi(cc="/nonexistent/bin/cc", force=True)
    assert "C compiler not found" in str(info.value) and info.value.hint


def test_aarch64_link_stub(cache_dir):
    if not shutil.which("aarch64-linux-gnu-gcc"):
        pytest.skip("aarch64-linux-gnu-gcc not installed")
    from elftools.elf.elffile import ELFFile

    stub = pdcapi.build_link_stub("aarch64-linux-gnu", "aarch64-linux-gnu-gcc")
    assert stub.name == "libpaddle_inference_c.so"
    with open(stub, "rb") as f:
        elf = ELFFile(f)
        assert elf["e_machine"] == "EM_AARCH64"
        names = {
            s.name
            for s in elf.get_section_by_name(".dynsym").iter_symbols()
            if s["st_shndx"] != "SHN_UNDEF" and s.name
        }
    assert names == {name for _, name, _ in pdcapi.header_prototypes()}
    assert pdcapi.build_link_stub("aarch64-linux-gnu", "aarch64-linux-gnu-gcc") == stub


# ---- a C host: no Python interpreter anywhere ------------------------------------------------


@pytest.mark.parametrize("fmt", ["pir", "legacy"])
@pytest.mark.parametrize("mode", ["run", "buffer"])
def test_c_host_matches_python_predictor(demo, models, fmt, mode):
    prog, params = models[fmt]
    proc = _run([demo, mode, prog, params, 3])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("version version: 3"), lines[0]
    assert lines[1] == "inputs 1 outputs 1"
    assert lines[2] == "shape 3 4"
    got = np.array([float(v) for v in lines[3:]], dtype=np.float32).reshape(3, 4)
    want = _python_infer(_python_predictor(prog, params), _input(3))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert "I1" not in proc.stderr and "W1" not in proc.stderr  # glog stays quiet


def test_c_host_clones_in_threads(demo, models):
    prog, params = models["pir"]
    proc = _run([demo, "threads", prog, params, 4, 30])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "threads ok"


def test_c_host_failures_return_null_and_a_message(demo, models):
    prog, params = models["pir"]
    proc = _run([demo, "fail", prog, params])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert out["bad_path"].startswith("NULL | PD_PredictorCreate: FileNotFoundError")
    assert "/nonexistent/model.json" in out["bad_path"]
    assert out["bad_input"] == (
        "NULL | PD_PredictorGetInputHandle: the model has no input named 'no_such_input'"
    )
    assert out["bad_output"].startswith("NULL | PD_PredictorGetOutputHandle")
    assert proc.stdout.rstrip().endswith("alive")


def test_c_host_dlopen_rtld_local(lib, models, tmp_path):
    exe = tmp_path / "pdcapi_dlopen"
    _run(["cc", "-O2", NATIVE / "pdcapi_dlopen.c", "-o", exe, "-ldl"]).check_returncode()
    prog, params = models["pir"]
    proc = _run([exe, lib, prog, params])
    assert proc.returncode == 0 and proc.stdout.strip() == "inputs 1", proc.stdout + proc.stderr


# ---- a Python host: ctypes, the running interpreter --------------------------------------------


class _Api:
    """The few PD_ functions the in-process tests call, with ctypes signatures."""

    SIGS = {  # noqa: RUF012 - read-only table
        "PD_ConfigCreate": (ctypes.c_void_p, []),
        "PD_ConfigSetModel": (None, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]),
        "PD_ConfigSetModelBuffer": (
            None,
            [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t],
        ),
        "PD_ConfigSetCpuMathLibraryNumThreads": (None, [ctypes.c_void_p, ctypes.c_int32]),
        "PD_ConfigGetCpuMathLibraryNumThreads": (ctypes.c_int32, [ctypes.c_void_p]),
        "PD_ConfigGetProgFile": (ctypes.c_char_p, [ctypes.c_void_p]),
        "PD_ConfigDestroy": (None, [ctypes.c_void_p]),
        "PD_PredictorCreate": (ctypes.c_void_p, [ctypes.c_void_p]),
        "PD_PredictorClone": (ctypes.c_void_p, [ctypes.c_void_p]),
        "PD_PredictorDestroy": (None, [ctypes.c_void_p]),
        "PD_PredictorGetInputHandle": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
        "PD_PredictorGetOutputHandle": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
        "PD_PredictorRun": (ctypes.c_int8, [ctypes.c_void_p]),
        "PD_TensorReshape": (None, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]),
        "PD_TensorCopyFromCpuFloat": (None, [ctypes.c_void_p, ctypes.c_void_p]),
        "PD_TensorCopyToCpuFloat": (None, [ctypes.c_void_p, ctypes.c_void_p]),
        "PD_TensorCopyToCpuInt64": (None, [ctypes.c_void_p, ctypes.c_void_p]),
        "PD_TensorGetDataType": (ctypes.c_int32, [ctypes.c_void_p]),
        "PD_TensorGetName": (ctypes.c_char_p, [ctypes.c_void_p]),
        "PD_TensorDestroy": (None, [ctypes.c_void_p]),
        "paddlehot_pdcapi_last_error": (ctypes.c_char_p, []),
        "paddlehot_pdcapi_predictors_alive": (ctypes.c_int64, []),
    }

    def __init__(self, path: Path):
        self.lib = ctypes.CDLL(str(path))
        for name, (res, args) in self.SIGS.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)

    def error(self) -> str:
        return self.paddlehot_pdcapi_last_error().decode()

    def predictor(self, prog: Path, params: Path, buffer: bool = False) -> int:
        cfg = self.PD_ConfigCreate()
        if buffer:
            p, w = prog.read_bytes(), params.read_bytes()
            self.PD_ConfigSetModelBuffer(cfg, p, len(p), w, len(w))
        else:
            self.PD_ConfigSetModel(cfg, str(prog).encode(), str(params).encode())
        self.PD_ConfigSetCpuMathLibraryNumThreads(cfg, 1)
        pred = self.PD_PredictorCreate(cfg)
        self.PD_ConfigDestroy(cfg)  # the caller's, as in Paddle's capi_exp
        assert pred, self.error()
        return pred

    def infer(self, pred: int, x: np.ndarray, out_name: bytes) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        h = self.PD_PredictorGetInputHandle(pred, b"x")
        assert h, self.error()
        shape = (ctypes.c_int32 * x.ndim)(*x.shape)
        self.PD_TensorReshape(h, x.ndim, shape)
        self.PD_TensorCopyFromCpuFloat(h, x.ctypes.data)
        assert self.PD_PredictorRun(pred) == 1, self.error()
        y = self.PD_PredictorGetOutputHandle(pred, out_name)
        assert y, self.error()
        out = np.empty((x.shape[0], 4), np.float32)
        self.PD_TensorCopyToCpuFloat(y, out.ctypes.data)
        self.PD_TensorDestroy(h)
        self.PD_TensorDestroy(y)
        return out


@pytest.fixture(scope="module")
def api(lib) -> _Api:
    return _Api(lib)


def _libpythons() -> set[str]:
    maps = Path("/proc/self/maps").read_text()
    return {os.path.realpath(p) for p in re.findall(r"(/\S*libpython[^\s/]*\.so[^\s/]*)", maps)}


def test_ctypes_in_process_matches_python(api, models):
    prog, params = models["pir"]
    py = _python_predictor(prog, params)
    pred = api.predictor(prog, params)
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    got = api.infer(pred, x, py.get_output_names()[0].encode())
    np.testing.assert_allclose(got, _python_infer(py, x), rtol=0, atol=1e-6)
    y = api.PD_PredictorGetOutputHandle(pred, py.get_output_names()[0].encode())
    assert api.PD_TensorGetName(y) == py.get_output_names()[0].encode()
    assert api.PD_TensorGetDataType(y) == 0  # PD_DATA_FLOAT32
    out = np.empty(20, np.int64)
    api.PD_TensorCopyToCpuInt64(y, out.ctypes.data)  # wrong type: message, no crash
    assert "wrong copy function" in api.error()
    api.PD_TensorDestroy(y)
    api.PD_PredictorDestroy(pred)
    assert len(_libpythons()) <= 1, _libpythons()


def test_ctypes_config_getters(api):
    cfg = api.PD_ConfigCreate()
    assert api.PD_ConfigGetCpuMathLibraryNumThreads(cfg) == 1
    api.PD_ConfigSetCpuMathLibraryNumThreads(cfg, 3)
    assert api.PD_ConfigGetCpuMathLibraryNumThreads(cfg) == 3
    assert api.PD_ConfigGetProgFile(cfg) == b""
    api.PD_ConfigSetModel(cfg, b"/a/model.json", b"/a/model.pdiparams")
    assert api.PD_ConfigGetProgFile(cfg) == b"/a/model.json"
    api.PD_ConfigDestroy(cfg)


def test_ctypes_failures_do_not_raise(api, models):
    cfg = api.PD_ConfigCreate()
    api.PD_ConfigSetModel(cfg, b"/nonexistent/m.json", b"/nonexistent/m.pdiparams")
    assert api.PD_PredictorCreate(cfg) is None
    assert api.error().startswith("PD_PredictorCreate: FileNotFoundError")
    api.PD_ConfigDestroy(cfg)  # still the caller's after a failed create
    empty = api.PD_ConfigCreate()
    assert api.PD_PredictorCreate(empty) is None
    assert "no model set" in api.error()
    api.PD_ConfigDestroy(empty)
    bad = Path(models["pir"][0]).with_name("garbage.pdmodel")
    bad.write_bytes(b"\x00not a program")
    cfg = api.PD_ConfigCreate()
    api.PD_ConfigSetModel(cfg, str(bad).encode(), str(models["pir"][1]).encode())
    assert api.PD_PredictorCreate(cfg) is None and api.error()
    api.PD_ConfigDestroy(cfg)
    pred = api.predictor(*models["pir"])
    assert api.PD_PredictorGetInputHandle(pred, b"nope") is None
    assert api.PD_PredictorGetOutputHandle(pred, b"nope") is None
    assert "no output named 'nope'" in api.error()
    api.PD_PredictorDestroy(pred)


def test_ctypes_clone_two_threads(api, models):
    prog, params = models["pir"]
    py = _python_predictor(prog, params)
    out_name = py.get_output_names()[0].encode()
    root = api.predictor(prog, params)
    xs = [np.random.default_rng(i).standard_normal((2, 16)).astype(np.float32) for i in range(2)]
    want = [_python_infer(py, x) for x in xs]
    errors: list[str] = []
    alive_in_threads: list[int] = []

    def work(i: int) -> None:
        mine = api.PD_PredictorClone(root)
        alive_in_threads.append(api.paddlehot_pdcapi_predictors_alive())
        try:
            for _ in range(50):
                got = api.infer(mine, xs[i], out_name)
                if not np.array_equal(got, want[i]):
                    errors.append(f"thread {i}: {got} != {want[i]}")
                    return
        finally:
            api.PD_PredictorDestroy(mine)

    before = api.paddlehot_pdcapi_predictors_alive()  # root, and any another test left open
    threads = [threading.Thread(target=work, args=(i,), name=f"pdcapi-test-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert min(alive_in_threads) >= before + 1 and max(alive_in_threads) <= before + 2
    assert api.paddlehot_pdcapi_predictors_alive() == before  # the clones counted out again
    failed = api.PD_PredictorClone(None)
    assert not failed and api.paddlehot_pdcapi_predictors_alive() == before
    api.PD_PredictorDestroy(root)
    assert api.paddlehot_pdcapi_predictors_alive() == before - 1
    assert errors == []


@pytest.mark.parametrize("fmt", ["pir", "legacy"])
def test_ctypes_model_buffer(api, models, fmt, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    prog, params = models[fmt]
    py = _python_predictor(prog, params)
    pred = api.predictor(prog, params, buffer=True)
    if fmt == "pir":  # served from memfds behind a private temp dir
        assert len(list(tmp_path.glob("paddlehot-pdcapi-*"))) == 1
    clone = api.PD_PredictorClone(pred)  # PIR re-reads the program on clone
    assert clone, api.error()
    x = _input(2, 0.25)
    for p in (pred, clone):
        got = api.infer(p, x, py.get_output_names()[0].encode())
        np.testing.assert_allclose(got, _python_infer(py, x), rtol=0, atol=1e-6)
    api.PD_PredictorDestroy(pred)
    api.PD_PredictorDestroy(clone)
    assert list(tmp_path.glob("paddlehot-pdcapi-*")) == []


# ---- the build's checks -----------------------------------------------------------------------


def test_bridge_imports_no_python_and_only_symbols_libpaddle_defines(lib):
    imports = {s.name for s in read_elf(lib).imports()}
    assert not {n for n in imports if n.startswith(("Py", "_Py"))}, "pdcapi must not call CPython"
    used = paddle_imports(lib)
    assert "_ZN12paddle_infer15CreatePredictorERKN6paddle14AnalysisConfigE" in used
    assert missing_symbols(lib, wheel_libpaddle()) == []


def test_symbol_check_names_what_a_library_lacks(lib):
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.is_file():
        pytest.skip("no x86_64 libc at the Debian path")
    with pytest.raises(UserError) as info:
        pdcapi.check_symbols(lib, libc)
    assert "paddle_infer::CreatePredictor(paddle::AnalysisConfig const&)" in str(info.value)


def test_self_test_refuses_a_wrong_answer(lib, tmp_path, monkeypatch):
    """The self-test compares with values it computes; a model that answers differently fails."""
    fake = tmp_path / "selftest"
    fake.mkdir()
    (fake / "selftest.c").write_text((pdcapi.selftest_dir() / "selftest.c").read_text())
    (fake / "model.json").write_text((pdcapi.selftest_dir() / "model.json").read_text())
    params = bytearray((pdcapi.selftest_dir() / "model.pdiparams").read_bytes())
    params[-4:] = np.float32(9.0).tobytes()  # the last bias value: a wrong float32 output
    (fake / "model.pdiparams").write_bytes(bytes(params))
    monkeypatch.setattr(pdcapi, "selftest_dir", lambda: fake)
    work = tmp_path / "bridge"
    work.mkdir()
    shutil.copy(lib, work / lib.name)
    with pytest.raises(UserError) as info:
        pdcapi.self_test(work / lib.name, "cc")
    assert "MISMATCH: float32" in str(info.value)


# ---- failures: one clear error each, the host alive ------------------------------------------


@pytest.fixture(scope="module")
def bad_models(models, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    prog, params = models["pir"]
    d = tmp_path_factory.mktemp("bad_models")
    (d / "truncated.pdiparams").write_bytes(params.read_bytes()[:100])
    (d / "empty.json").write_bytes(b"")
    (d / "empty.pdmodel").write_bytes(b"")
    (d / "rejected.json").write_text("{}")
    return {
        "truncated params": (prog, d / "truncated.pdiparams"),
        "missing file": (d / "nope.json", params),
        "empty PIR program": (d / "empty.json", params),
        "empty legacy program": (d / "empty.pdmodel", params),
        "a model Paddle rejects": (d / "rejected.json", params),
    }


@pytest.mark.parametrize(
    "case,message",
    [
        ("truncated params", "Cannot read tensor desc size"),
        ("missing file", "FileNotFoundError: model file not found"),
        ("empty PIR program", "parse error"),
        ("empty legacy program", "is not a Paddle program"),
        ("a model Paddle rejects", "Invalid model file"),
    ],
)
def test_c_host_bad_model_is_one_clear_error(demo, bad_models, case, message):
    prog, params = bad_models[case]
    proc = _run([demo, "open", prog, params])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "alive"
    assert lines[0].startswith("open NULL | PD_PredictorCreate: ") and message in lines[0], lines
    assert "\n" not in lines[0] and len(lines[0]) < 400


def test_c_host_wrong_input_shape_is_one_clear_error(demo, models):
    proc = _run([demo, "open", *models["pir"], 7])  # the model takes [-1, 16]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, last = proc.stdout.splitlines()[0], proc.stdout.splitlines()[-1]
    assert first.startswith("run NULL | PD_PredictorRun: InvalidArgumentError: "), first
    assert "second dimension is 7" in first and last == "alive"


# ---- the bound on storage for paddle::AnalysisConfig ------------------------------------------

BOUND_PROBE = r"""
#include <cstdio>
#include "config_box.h"
extern "C" const char* paddlehot_pdcapi_last_error(void);
int main() {
  long a = phot_config_bytes_written(0x00), b = phot_config_bytes_written(0x5a);
  paddle::AnalysisConfig* c = phot_config_new(nullptr, "probe");
  std::printf("written %ld bound %d new %s | %s\n", a > b ? a : b, PHOT_CONFIG_BOUND,
              c ? "ok" : "NULL", paddlehot_pdcapi_last_error());
  if (c) phot_config_delete(c);
  return 0;
}
"""


def _bound_probe(tmp_path: Path, bound: int | None) -> str:
    src = tmp_path / "probe.cc"
    src.write_text(BOUND_PROBE)
    exe = tmp_path / f"probe{bound or ''}"
    libpaddle = wheel_libpaddle()
    srcdir = pdcapi.pdcapi_dir() / "src"
    flags = [f"-DPHOT_CONFIG_BOUND={bound}"] if bound else []
    _run(["c++", "-std=gnu++17", "-O1", *flags, f"-I{srcdir}", *pdcapi.include_flags(), src,
          srcdir / "config_box.cc", srcdir / "errors.cc", "-o", exe, f"-L{libpaddle.parent}",
          f"-l:{libpaddle.name}", f"-Wl,-rpath,{libpaddle.parent}",
          *pdcapi._python_ldflags()]).check_returncode()
    proc = _run([exe], env={**os.environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def test_config_constructor_stays_inside_the_bound(tmp_path):
    m = re.match(r"written (\d+) bound (\d+) new (\w+)", _bound_probe(tmp_path, None))
    written, bound, new = int(m[1]), int(m[2]), m[3]
    assert 0 < written <= bound and new == "ok"
    assert written * 2 <= bound, f"the bound {bound} leaves little room over {written} bytes"


def test_guard_refuses_a_config_larger_than_the_bound(tmp_path):
    # with a bound below what the constructor writes, the guard region is touched: refused
    out = _bound_probe(tmp_path, 1024)
    assert "new NULL" in out and "larger than the 1024 bytes pdcapi reserves" in out, out


# ---- concurrency: predictors on changing threads while others are created and destroyed ------


def test_soak_changing_threads_with_create_and_destroy(lib, models, tmp_path):
    exe = tmp_path / "pdcapi_soak"
    _run(["cc", "-O2", "-Wall", "-Werror", f"-I{pdcapi.pdcapi_include_dir()}",
          NATIVE / "pdcapi_soak.c", "-o", exe, f"-L{lib.parent}", "-lpaddle_inference_c",
          f"-Wl,-rpath,{lib.parent}", "-lpthread"]).check_returncode()
    proc = _run([exe, *models["pir"], 8], env={**os.environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0 and proc.stdout.startswith("soak ok"), proc.stdout + proc.stderr
    stats = dict(kv.split("=") for kv in proc.stdout.split()[2:])
    assert int(stats["runs"]) > 1000 and int(stats["churn"]) >= 10, stats


@pytest.mark.parametrize("capacity", [[], ["10"]], ids=["default", "shape-cached"])
def test_threads_exit_while_others_run(lib, models, tmp_path, capacity):
    """Short-lived threads (two predictors each, or a clone and its destruction) exit while three
    threads keep running pooled predictors: Paddle's thread-exit erase, pdcapi's clearing of the
    oneDNN cache and a predictor's creation and teardown change Paddle's oneDNN kernel map, which
    Paddle walks without its lock after every run when a oneDNN shape cache is on (Paddle's
    default, 10). pdcapi turns it off by default; a config that asks for it runs one run at a
    time. Before (native/pdcapi/src/thread_runs.cc), with the shape cache at 10 and no gate,
    this crashed (SIGSEGV) in 4 of 4 runs of 8 s, and with the gate in about 1 of 3."""
    exe = tmp_path / "pdcapi_thread_exits"
    _run(["cc", "-O2", "-Wall", "-Werror", f"-I{pdcapi.pdcapi_include_dir()}",
          NATIVE / "pdcapi_thread_exits.c", "-o", exe, f"-L{lib.parent}", "-lpaddle_inference_c",
          f"-Wl,-rpath,{lib.parent}", "-lpthread"]).check_returncode()
    proc = _run([exe, *models["pir"], 10, *capacity], env={**os.environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0 and proc.stdout.startswith("exits ok"), (
        f"exit status {proc.returncode}: " + proc.stdout + proc.stderr)
    stats = dict(kv.split("=") for kv in proc.stdout.split()[2:])
    assert int(stats["runs"]) > 1000 and int(stats["exits"]) >= 20, stats


def test_python_executor_threads_while_predictors_come_and_go(api, models):
    """ctypes calls from a thread pool (each call on whichever thread is free) on three
    predictors, while another thread creates and destroys predictors: every answer exact."""
    from concurrent.futures import ThreadPoolExecutor

    prog, params = models["pir"]
    out_name = _python_predictor(prog, params).get_output_names()[0].encode()
    root = api.predictor(prog, params)
    x = _input(3, 0.5)
    want = api.infer(root, x, out_name)
    pool = [api.PD_PredictorClone(root) for _ in range(3)]
    free = list(pool)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def call(_: int) -> None:
        with lock:
            pred = free.pop()
        try:
            got = api.infer(pred, x, out_name)
            if not np.array_equal(got, want):
                errors.append("wrong answer")
        finally:
            with lock:
                free.append(pred)

    def churn() -> None:
        while not stop.is_set():
            p = api.PD_PredictorClone(root)
            if not p or not np.array_equal(api.infer(p, x, out_name), want):
                errors.append("churn: " + api.error())
            api.PD_PredictorDestroy(p)

    t = threading.Thread(target=churn, name="pdcapi-churn")
    t.start()
    try:
        with ThreadPoolExecutor(3, thread_name_prefix="pdcapi-exec") as ex:
            list(ex.map(call, range(600)))
    finally:
        stop.set()
        t.join(60)
    for p in pool:
        api.PD_PredictorDestroy(p)
    api.PD_PredictorDestroy(root)
    assert errors == []


def test_threads_that_come_and_go_never_meet_dead_kernels(api, models):
    """Short-lived threads each running two predictors (see native/pdcapi/src/thread_runs.cc):
    before the fix a successor thread failed every call of one of them (std::exception)."""
    from tests.test_onednn_threads import churn_threads

    prog, params = models["pir"]
    out_name = _python_predictor(prog, params).get_output_names()[0].encode()
    preds = [api.predictor(prog, params) for _ in range(2)]
    x = _input(2, 0.25)
    try:
        errors = churn_threads({f"p{i}": (lambda p=p: api.infer(p, x, out_name))
                                for i, p in enumerate(preds)})
    finally:
        for p in preds:
            api.PD_PredictorDestroy(p)
    assert errors == []


GC_FLAG_CHILD = textwrap.dedent(
    """
    import ctypes, json, sys
    bridge, libcommon, prog, params = sys.argv[1:5]
    api = ctypes.CDLL(bridge)
    flag = ctypes.c_double.in_dll(ctypes.CDLL(libcommon),
                                  "_ZN12paddle_flags28FLAGS_eager_delete_tensor_gbE")
    before = flag.value
    api.PD_ConfigCreate.restype = ctypes.c_void_p
    api.PD_PredictorCreate.restype = ctypes.c_void_p
    api.PD_PredictorCreate.argtypes = [ctypes.c_void_p]
    api.PD_ConfigSetModel.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    cfg = api.PD_ConfigCreate()
    api.PD_ConfigSetModel(cfg, prog.encode(), params.encode())
    assert api.PD_PredictorCreate(cfg)
    print(json.dumps({"before": before, "after": flag.value}))
    """
)


@pytest.mark.parametrize("env, after", [(None, 1 / 16384), ("0", 0.0), ("0.25", 0.25)],
                         ids=["batched", "env-default", "env-value"])
def test_garbage_collection_is_batched_unless_the_environment_says(lib, models, tmp_path, env,
                                                                   after):
    """pdcapi sets Paddle's FLAGS_eager_delete_tensor_gb to 64 KiB before its first predictor
    (one collector task per 64 KiB of garbage instead of one per tensor), and leaves a value from
    the environment alone."""
    libcommon = wheel_libpaddle().parent.parent / "libs" / "libcommon.so"
    script = tmp_path / "child.py"
    script.write_text(GC_FLAG_CHILD)
    child_env = {k: v for k, v in os.environ.items() if k != "FLAGS_eager_delete_tensor_gb"}
    if env is not None:
        child_env["FLAGS_eager_delete_tensor_gb"] = env
    prog, params = models["pir"]
    proc = _run([sys.executable, script, lib, libcommon, prog, params], env=child_env)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["after"] == after
