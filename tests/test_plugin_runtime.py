"""Plugins at run time: same outputs as core.load, embedded and external models, PIR and legacy,
two versions in one process (Python RTLD_GLOBAL and native/host), 8 threads on one handle, and
every bad input through the raw C ABI."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from plugin_fixtures.helpers import C_API, Raw, build, manifest_of, tensor

from paddlehot_cli.core import load
from paddlehot_cli.errors import InputMismatch

ROOT = Path(__file__).resolve().parents[1]


def _x(batch: int, cols: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, cols)).astype("float32")


@pytest.fixture(scope="module")
def mlp(exported):
    return exported("demo:mlp")


@pytest.fixture(scope="module")
def mlp_so(mlp):
    return build(mlp, name="mlp")


@pytest.mark.parametrize("source,fmt", [("demo:mlp", "pir"), ("demo:mlp", "legacy"),
                                        ("demo:cnn", "pir")])
def test_plugin_equals_core_load(exported, source, fmt):
    pkg = exported(source, fmt)
    so = build(pkg, name=f"{source[5:]}_{fmt}")
    with load(so, c_api=C_API) as plugin, load(pkg) as ref:
        assert plugin.kind == "plugin"
        assert plugin.manifest.name == ref.manifest.name
        spec = ref.manifest.inputs[0]
        for batch in (1, 3, 7):
            shape = [batch if d == -1 else d for d in spec.shape]
            feeds = {spec.name: np.random.default_rng(batch).random(shape).astype(spec.dtype)}
            got, want = plugin.infer(feeds), ref.infer(feeds)
            assert list(got) == list(want)
            for name in want:
                assert got[name].shape == want[name].shape
                np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)


def test_embedded_plugin_runs_without_the_package(exported, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(exported("demo:mlp"), pkg)
    with load(pkg) as ref:
        want = ref.infer({"x": _x(2)})["logits"]
    so = tmp_path / "alone" / "mlp.so"
    so.parent.mkdir()
    shutil.copy(build(pkg, name="alone"), so)
    shutil.rmtree(pkg)
    np.save(tmp_path / "want.npy", want)
    code = (
        "import sys, numpy as np\n"
        "from paddlehot_cli.core import load\n"
        "from paddlehot_cli.plugin.pdcapi import build_pdcapi\n"
        "x = np.random.default_rng(0).random((2, 16)).astype('float32')\n"
        "m = load(sys.argv[1], c_api=build_pdcapi)  # never closed: the plugin cleans its temp dir at exit\n"
        "got = m.infer({'x': x})['logits']\n"
        "np.testing.assert_allclose(got, np.load(sys.argv[2]), rtol=1e-6, atol=1e-6)\n"
        "print('ok')\n"
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.run([sys.executable, "-c", code, str(so), str(tmp_path / "want.npy")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, TMPDIR=str(tmpdir)))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("paddlehot-plugin-")] == []
    assert sorted(p.name for p in so.parent.iterdir()) == ["mlp.so"]


def test_external_model_beside_so_and_model_dir(exported, tmp_path):
    src = exported("demo:mlp", "legacy")
    pkg = tmp_path / "1.0.0"
    shutil.copytree(src, pkg)
    proc_so = build(pkg, "--no-embed-model", name="external")
    inplace = pkg / "plugin.so"
    shutil.copy(proc_so, inplace)
    with load(pkg) as ref:
        want = ref.infer({"x": _x(4)}).popitem()[1]
    from paddlehot_cli.core.plugin_loader import load_plugin

    with load(inplace, c_api=C_API) as beside:  # model_dir NULL: the .so's directory
        np.testing.assert_allclose(beside.infer({"x": _x(4)}).popitem()[1], want, atol=1e-6)
    with load_plugin(proc_so, model_dir=pkg, c_api=C_API) as explicit:
        np.testing.assert_allclose(explicit.infer({"x": _x(4)}).popitem()[1], want, atol=1e-6)
    from paddlehot_cli.errors import PackageError

    with pytest.raises(PackageError, match="not found"):
        load_plugin(proc_so, c_api=C_API)  # no model files beside it


def test_two_versions_in_one_process_rtld_global(exported):
    p1, p2 = exported("demo:mlp"), exported("demo:mlp", "pir", "1.1.0", 1)
    s1, s2 = build(p1, name="v1"), build(p2, name="v2")
    r1 = Raw(s1, ctypes.RTLD_GLOBAL)
    r2 = Raw(s2, ctypes.RTLD_GLOBAL)
    h1, h2 = r1.open_handle(), r2.open_handle()
    x = _x(3)
    outs = []
    for raw, h in ((r1, h1), (r2, h2)):
        buf = np.empty((3, 4), "float32")
        ins, out = tensor("x", x), tensor(None, buf)
        out.dtype, out.rank = 0, 0
        assert raw.infer(h, ctypes.byref(ins), 1, ctypes.byref(out), 1) == 0, raw.last_error()
        outs.append(buf.copy())
    for pkg, got in zip((p1, p2), outs):
        with load(pkg) as ref:
            np.testing.assert_allclose(got, ref.infer({"x": x})["logits"], atol=1e-6)
    assert not np.allclose(outs[0], outs[1])
    assert r1.close(h1) == 0 and r2.close(h2) == 0


def test_eight_threads_one_handle(mlp, mlp_so):
    from paddlehot_cli.core.plugin_loader import load_plugin

    inputs = [_x(b, seed=b) for b in range(1, 9)]
    with load(mlp) as ref:
        want = [ref.infer({"x": x})["logits"] for x in inputs]
    errors: list[str] = []
    with load_plugin(mlp_so, pool_min=2, pool_max=4, c_api=C_API) as plugin:
        def work(i: int) -> None:
            for _ in range(25):
                got = plugin.infer({"x": inputs[i]})["logits"]
                if not np.allclose(got, want[i], rtol=1e-6, atol=1e-6):
                    errors.append(f"thread {i}: wrong result")
        threads = [threading.Thread(target=work, args=(i,), name=f"infer-{i}") for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_servable_checks_inputs_and_close(mlp_so):
    plugin = load(mlp_so, c_api=C_API)
    with pytest.raises(InputMismatch, match="dtype"):
        plugin.infer({"x": _x(2).astype("float64")})
    with pytest.raises(InputMismatch, match="unknown input"):
        plugin.infer({"x": _x(2), "y": _x(2)})
    assert plugin.manifest.version == "1.0.0"
    plugin.close()
    with pytest.raises(Exception, match="closed"):
        plugin.infer({"x": _x(2)})
    plugin.close()  # idempotent


def test_bad_inputs_through_the_raw_abi(mlp_so):
    r = Raw(mlp_so)
    h = r.open_handle(pool_max=2)
    x = _x(2)
    good_in = tensor("x", x)
    buf = np.empty((2, 4), "float32")

    def call(ins, n_in, outs=None, n_out=1, handle=h):
        out = outs if outs is not None else tensor(None, buf)
        rc = r.infer(handle, ctypes.byref(ins) if ins is not None else None, n_in,
                     ctypes.byref(out) if out is not False else None, n_out)
        msg = r.last_error().decode()
        return rc, msg, out

    assert call(good_in, 1)[0] == 0
    np.testing.assert_allclose(buf, load(mlp_so, c_api=C_API).infer({"x": x})["logits"], atol=1e-6)
    # NULL pointers
    assert r.infer(None, ctypes.byref(good_in), 1, None, 0) == -1 and r.last_error()
    assert call(None, 1)[0] == -1
    assert call(good_in, 1, False, 1)[0] == -1
    assert r.open(None, None) == -1
    nameless = tensor("x", x)
    nameless.name = None
    assert call(nameless, 1)[0] == -1
    # names
    rc, msg, _ = call(tensor("nope", x), 1)
    assert rc == -2 and "nope" in msg
    rc, msg, _ = call(good_in, 0)
    assert rc == -3 and "missing input 'x'" in msg
    # dtype, rank, fixed dim, byte_size, struct_size
    rc, msg, _ = call(tensor("x", x.astype("int64"), dtype=5), 1)
    assert rc == -4 and "int64" in msg
    rc, msg, _ = call(tensor("x", x.reshape(2, 16, 1)), 1)
    assert rc == -5 and "rank" in msg
    rc, msg, _ = call(tensor("x", _x(2, cols=15)), 1)
    assert rc == -5 and "dim 1" in msg
    short = tensor("x", x)
    short.byte_size -= 4
    assert call(short, 1)[0] == -5
    old = tensor("x", x)
    old.struct_size = 8
    assert call(old, 1)[0] == -1
    # unknown output name, too many outputs
    assert call(good_in, 1, tensor("nope", buf))[0] == -1
    assert call(good_in, 1, n_out=2)[0] == -1
    # too-small output: nothing written, needed shape and bytes filled in
    small = np.full((1, 4), 7.0, "float32")
    rc, msg, out = call(good_in, 1, tensor(None, small))
    assert rc == -6 and out.byte_size == 32 and list(out.shape[: out.rank]) == [2, 4]
    assert out.dtype == 1 and (small == 7.0).all()
    # bad open options
    opts_bad = (ctypes.c_uint32 * 6)(0)
    hh = ctypes.c_void_p()
    assert r.open(ctypes.byref(opts_bad), ctypes.byref(hh)) == -1
    # closed handle: calls return PHOT_E_CLOSED, the process lives on
    assert r.close(h) == 0
    assert call(good_in, 1)[0] == -8
    assert r.close(h) == -8
    assert "closed" in r.last_error().decode()


def _pool_threads() -> int:
    """Threads named phot-pool in this process (a thread may end while we look)."""
    names = []
    for t in Path("/proc/self/task").iterdir():
        try:
            names.append((t / "comm").read_text().strip())
        except FileNotFoundError:
            pass
    return names.count("phot-pool")


def test_a_c_host_pool_grows_in_the_background(exported):
    """A C or Go host's handle with pool_max > pool_initial: a call that finds every predictor
    busy never creates one itself (it used to: that call took a whole creation); the handle's
    pool thread does, and (reclaiming off) ends once the pool is full. Calls take whichever
    predictor comes free first; every answer is the package's."""
    pkg = exported(str(ROOT / "tests/models/slow_create.py") + ":make", "pir", "1.0.0", 0,
                   "--input", "x:float32:[-1,256,4,4]")
    r = Raw(build(pkg, name="slow_create"))
    x = np.random.default_rng(3).random((1, 256, 4, 4)).astype("float32")
    want = load(pkg).infer({"x": x})
    name, ref = next(iter(want.items()))
    t0 = time.perf_counter()
    h = r.open_handle(pool_initial=1, pool_max=2, pool_idle_ms=-1)
    creation_s = time.perf_counter() - t0  # one predictor (~0.5 s; a call takes ~3 ms)
    deadline = time.monotonic() + 10
    while not _pool_threads() and time.monotonic() < deadline:  # started at open; names itself
        time.sleep(0.01)
    assert _pool_threads() == 1
    slowest, bad = [0.0], []

    def client():
        out = np.empty_like(ref)
        for _ in range(400):
            start = time.perf_counter()
            rc = r.infer(h, ctypes.byref(tensor("x", x)), 1, ctypes.byref(tensor(name, out)), 1)
            slowest[0] = max(slowest[0], time.perf_counter() - start)
            if rc != 0 or not np.allclose(out, ref, atol=1e-5):
                bad.append(rc)

    threads = [threading.Thread(target=client) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    deadline = time.monotonic() + 30
    while _pool_threads() and time.monotonic() < deadline:  # grown to 2: the grower ends
        time.sleep(0.05)
    assert not bad and _pool_threads() == 0
    assert slowest[0] < creation_s / 2, (slowest[0], creation_s)
    assert r.close(h) == 0


def _predictors_alive() -> int:
    """Predictors alive in this process, as pdcapi counts them (other tests' handles too)."""
    lib = ctypes.CDLL("libpaddle_inference_c.so", mode=os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
    fn = lib.paddlehot_pdcapi_predictors_alive
    fn.restype = ctypes.c_int64
    return fn()


def _wait_for(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


def test_a_c_host_pool_gives_idle_predictors_back_and_grows_again(exported, tmp_path):
    """pool_idle_ms (ABI 1.1): a predictor above pool_initial that stays free that long is
    destroyed by the pool thread, with no call to notice it (the memory it gives back is
    measured by the Go host's test in its own process and by `pool_breathing --host c`); the
    pool then grows again from the plugin's own file, even after a deploy renamed another file
    over the plugin's path (the new predictor must still be this version's)."""
    pkg = exported(str(ROOT / "tests/models/slow_create.py") + ":make", "pir", "1.0.0", 0,
                   "--input", "x:float32:[-1,256,4,4]")
    so = tmp_path / "slow.so"  # a private copy: this test replaces it on disk
    shutil.copy(build(pkg, name="slow_create"), so)
    r = Raw(so)
    # a batch of 64: runs of ~0.1 s, so the pool thread mostly finds both predictors busy
    x = np.random.default_rng(3).random((64, 256, 4, 4)).astype("float32")
    name, ref = next(iter(load(pkg).infer({"x": x}).items()))
    h = r.open_handle(pool_initial=1, pool_max=2, pool_idle_ms=1000)
    base = _predictors_alive()  # this handle's first, and whatever other tests left open
    bad: list = []

    def grow_to_two() -> None:
        """Two clients back to back until the pool has grown, and 2.5 s more."""
        stop = threading.Event()

        def client():
            out = np.empty_like(ref)
            while not stop.is_set():
                rc = r.infer(h, ctypes.byref(tensor("x", x)), 1, ctypes.byref(tensor(name, out)), 1)
                if rc != 0 or not np.allclose(out, ref, atol=1e-5):
                    bad.append((rc, r.last_error()))
                    return

        threads = [threading.Thread(target=client) for _ in range(2)]
        [t.start() for t in threads]
        grown = _wait_for(lambda: _predictors_alive() == base + 1, 30)
        time.sleep(2.5)  # both busy for longer than the idle timeout: the pool thread must
        stop.set()  # still notice the idle one after the last call, with no call to wake it
        [t.join() for t in threads]
        assert grown and not bad, (base, _predictors_alive(), bad)

    for round_ in range(2):
        grow_to_two()
        # no call from here on: the pool thread alone must notice the idle predictor
        assert _wait_for(lambda: _predictors_alive() == base, 15), (round_, _predictors_alive())
        assert _pool_threads() >= 1  # it stays, to grow again
        (tmp_path / "other.so").write_bytes(b"\x7fELF not this version" * 1000)
        os.replace(tmp_path / "other.so", so)  # the next growth reads the file it opened
    assert r.close(h) == 0
    assert _predictors_alive() == base - 1
    assert _wait_for(lambda: _pool_threads() == 0, 10)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler")
def test_native_host_swaps_versions(exported, tmp_path):
    p1, p2 = exported("demo:mlp"), exported("demo:mlp", "pir", "1.1.0", 1)
    s1, s2 = build(p1, name="v1"), build(p2, name="v2")
    host = tmp_path / "host"
    proc = subprocess.run(["make", "-s", "-C", str(ROOT / "native" / "host"), f"OUT={host}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    x = _x(3)
    x.tofile(tmp_path / "in.bin")
    args = []
    for pkg, so in ((p1, s1), (p2, s2)):
        with load(pkg) as ref:
            ref.infer({"x": x})["logits"].astype("float32").tofile(tmp_path / f"{so.stem}.bin")
        args += [str(so), manifest_of(so)["plugin"]["symbol_prefix"], str(tmp_path / f"{so.stem}.bin")]
    from paddlehot_cli.plugin.pdcapi import build_pdcapi

    env = dict(os.environ, LD_LIBRARY_PATH=str(build_pdcapi().parent), GLOG_minloglevel="2")
    cmd = [str(host), "-t", "4", "-n", "400", "-i", f"x:float32:3,16:{tmp_path / 'in.bin'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout
    assert "v1 still mapped after dlclose: no" in proc.stdout
    # and it notices wrong results: v1 expected to give v2's outputs
    bad = cmd[:-4] + [args[5]] + cmd[-3:]
    proc = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1


def test_broken_plugin_files_are_clean_errors(mlp_so, tmp_path):
    """A plugin without its parameters section, a truncated one, a foreign file: one
    PackageError each (a PHOT_E_RUNTIME from open(), or the ELF reader), never a crash."""
    from paddlehot_cli.core.plugin_loader import load_plugin
    from paddlehot_cli.errors import PackageError

    stripped = tmp_path / "stripped.so"
    subprocess.run(["objcopy", "--remove-section", ".paddlehot.params", str(mlp_so),
                    str(stripped)], check=True)
    with pytest.raises(PackageError, match=r"open failed: open: .*no section \.paddlehot\.params"):
        load_plugin(stripped, c_api=C_API)
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(mlp_so.read_bytes()[:20000])
    with pytest.raises(PackageError):
        load_plugin(truncated, c_api=C_API)
    foreign = tmp_path / "foreign.so"
    foreign.write_bytes(b"#!/bin/sh\necho not a plugin\n")
    with pytest.raises(PackageError):
        load_plugin(foreign, c_api=C_API)
