"""The plugin host's reused call frames (core/plugin_calls.py) against package mode: every dtype
the runtime copies, dynamic batches, a second dynamic dim (outputs larger than the manifest's
guess), an output whose shape follows the values, inputs and outputs on either side of the
staging bound, several threads, and answers that later calls never overwrite."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

from paddlehot_cli.core import load, plugin_calls
from tests.conftest import MODELS
from tests.plugin_fixtures.helpers import build

INPUTS = ("--input", "f32:float32:[-1,4]", "--input", "i32:int32:[-1,3]",
          "--input", "i64:int64:[-1,-1]", "--input", "u8:uint8:[-1,3]", "--input", "i8:int8:[-1,3]")
# (batch, second dim of i64): small, growing, shrinking, back again, and past the staging bound
# (5000 x 4 float32 = 80 KB in; 2 x 9000 int64 = 144 KB in and out)
CASES = [(1, 1), (3, 5), (7, 2), (1, 1), (5000, 3), (2, 9000), (3, 5), (1, 1)]


@pytest.fixture(scope="module")
def versions(exported):
    pkg = exported(f"{MODELS / 'all_dtypes.py'}:make", "pir", "1.0.0", 0, *INPUTS)
    return pkg, build(pkg, name="all_dtypes")


def feeds(seed: int, batch: int, seq: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"f32": rng.standard_normal((batch, 4)).astype("float32"),
            "i32": rng.integers(-10, 10, (batch, 3)).astype("int32"),
            "i64": rng.integers(-1000, 1000, (batch, seq)).astype("int64"),
            "u8": rng.integers(0, 255, (batch, 3)).astype("uint8"),
            "i8": rng.integers(-127, 127, (batch, 3)).astype("int8")}


def assert_same(got: dict, want: dict, where: str) -> None:
    assert list(got) == list(want), where
    for name, w in want.items():
        g = got[name]
        assert (g.shape, g.dtype) == (w.shape, w.dtype), f"{where} {name}"
        np.testing.assert_array_equal(g, w, err_msg=f"{where} {name}")


@pytest.mark.parametrize("stage_max", [plugin_calls.STAGE_MAX_BYTES, 0, 1 << 30],
                         ids=["default", "all-by-pointer", "all-staged"])
@pytest.mark.parametrize("pool_max", [1, 2])
def test_plugin_answers_equal_package_mode(versions, monkeypatch, stage_max, pool_max):
    monkeypatch.setattr(plugin_calls, "STAGE_MAX_BYTES", stage_max)
    pkg, so = versions
    kept = []  # every answer, checked again at the end: a later call must not change it
    with load(pkg) as package, load(so, pool_max=pool_max) as plugin:
        for i, (batch, seq) in enumerate(CASES):
            x = feeds(i, batch, seq)
            want = package.infer(x)
            got = plugin.infer(x)
            assert_same(got, want, f"case {i} {batch}x{seq}")
            kept.append((got, want))
        for i, (got, want) in enumerate(kept):
            assert_same(got, want, f"case {i}, after the others")


def test_threads_each_use_their_own_frames(versions):
    """Four threads on a pool of two, each with its own inputs: no answer is another's."""
    pkg, so = versions
    with load(pkg) as package:
        wants = {t: [package.infer(feeds(100 * t + i, *c)) for i, c in enumerate(CASES[:4])]
                 for t in range(4)}
    errors: list[str] = []
    with load(so, pool_max=2) as plugin:

        def work(t: int) -> None:
            try:
                for _ in range(5):
                    for i, c in enumerate(CASES[:4]):
                        assert_same(plugin.infer(feeds(100 * t + i, *c)), wants[t][i],
                                    f"thread {t} case {i}")
            except AssertionError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert not errors, errors[0]


def test_frames_per_thread_are_bounded(versions, monkeypatch):
    """Dynamic batching makes one frame per batch size: the cache starts over at MAX_FRAMES."""
    monkeypatch.setattr(plugin_calls, "MAX_FRAMES", 3)
    pkg, so = versions
    with load(pkg) as package, load(so, pool_max=1) as plugin:
        for batch in range(1, 9):
            x = feeds(batch, batch, 2)
            assert_same(plugin.infer(x), package.infer(x), f"batch {batch}")
            assert len(plugin._frames._tls.frames) <= 3


def test_large_outputs_are_handed_over_not_kept(versions):
    """An output above the staging bound is the caller's alone: the frame keeps no reference, so
    a frame per batch size cannot pin one large answer each."""
    _, so = versions
    with load(so, pool_max=1) as plugin:
        out = plugin.infer(feeds(1, 2, 9000))["fetch_name_2"]  # int64 2 x 9000: 144 KB
        assert out.nbytes > plugin_calls.STAGE_MAX_BYTES
        gone = weakref.ref(out)
        del out
        gc.collect()
        assert gone() is None
