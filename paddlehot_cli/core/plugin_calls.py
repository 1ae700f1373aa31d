"""The call descriptors of a plugin's infer, built once per input signature and reused.

On a model that computes in tens of microseconds, marshalling a call through ctypes costs as much
as the model: every `arr.ctypes.data` is ~1.4 us, every ctypes field set and np.empty a few
hundred ns. So each thread keeps one Frame per (input names, shapes, dtypes) it has seen: the
phot_tensor arrays with names, dtypes, ranks and shapes already written, and, for tensors up to
STAGE_MAX_BYTES, buffers whose addresses never change. A call then copies small inputs into
their buffers (one memcpy, no pointer fetched), runs, and hands back a copy of each small
output. Larger tensors are passed by pointer: for them a copy would cost more than the pointer.

Output shapes are guessed from the manifest (dynamic dims: the batch for the first, 1 for the
others); the plugin says when a buffer was too small, and the frame grows to what it needs and
the caller retries once. Whatever the guess, outputs are returned with the shape and dtype the
plugin wrote.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from paddlehot_cli.core.plugin_abi import CODE_DTYPES, DTYPE_CODES, E_SMALL, OK, PhotTensor
from paddlehot_cli.core.signature import TensorSpec

STAGE_MAX_BYTES = 64 * 1024  # a memcpy of this costs about what fetching a pointer does
MAX_FRAMES = 32  # per thread: dynamic batching makes one per batch size seen

_CODES = {np.dtype(name): code for name, code in DTYPE_CODES.items()}
_CODE_NP = {code: np.dtype(name) for code, name in CODE_DTYPES.items()}
_SIZE = ctypes.sizeof(PhotTensor)

Key = tuple  # ((name, shape, dtype), ...) of the inputs, in the caller's order


class Frame:
    """One thread's descriptors for one input signature. Not shared between threads."""

    __slots__ = ("_direct_in", "_in_t", "_out", "_stage_in", "ins", "n_in", "n_out", "outs")

    def __init__(self, key: Key, out_specs: Sequence[TensorSpec]):
        # counts as size_t objects: the call passes them as they are (plugin_loader)
        self.n_in, self.n_out = ctypes.c_size_t(len(key)), ctypes.c_size_t(len(out_specs))
        self.ins = (PhotTensor * max(1, len(key)))()
        self.outs = (PhotTensor * max(1, len(out_specs)))()
        self._in_t = list(self.ins)[: len(key)]
        self._stage_in: list[tuple[str, np.ndarray]] = []  # (input, buffer)
        self._direct_in: list[tuple[str, PhotTensor]] = []  # (input, descriptor)
        batch = key[0][1][0] if key and key[0][1] else 1
        for (name, shape, dtype), t in zip(key, self._in_t):
            t.struct_size, t.dtype, t.name, t.rank = _SIZE, _CODES.get(dtype, 0), name.encode(), len(shape)
            t.shape[: len(shape)] = shape
            t.byte_size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if t.byte_size <= STAGE_MAX_BYTES:
                buf = np.empty(shape, dtype)
                t.data = buf.ctypes.data
                self._stage_in.append((name, buf))
            else:
                self._direct_in.append((name, t))
        self._out: list[_Out] = []
        for spec, t in zip(out_specs, list(self.outs)):
            t.struct_size = _SIZE
            shape = tuple(batch if (d == -1 and j == 0) else (1 if d == -1 else d)
                          for j, d in enumerate(spec.shape))
            self._out.append(_Out(t, shape, np.dtype(spec.dtype)))

    def load(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray | None]:
        """Point the descriptors at this call's inputs (the feeds of this frame's key) and at
        fresh output memory; returns what must stay alive until the call returns."""
        for name, buf in self._stage_in:
            buf[...] = feeds[name]
        keep: list[np.ndarray | None] = [None]
        for name, t in self._direct_in:
            arr = feeds[name]
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            t.data = arr.ctypes.data
            keep.append(arr)
        for o in self._out:
            o.arm()
        return keep

    def grow(self) -> None:
        """After PHOT_E_BUFFER_TOO_SMALL: size every output as the plugin says it needs."""
        for o in self._out:
            o.resize()

    def forget(self) -> None:
        """A call failed: drop the large outputs' memory armed for it (take() hands it over)."""
        for o in self._out:
            o._fresh = None

    def take(self) -> list[np.ndarray]:
        """The outputs of a call that returned PHOT_OK, as arrays the caller owns."""
        out = []
        for o in self._out:  # the common case inline: a staged output as expected
            t = o.t
            if (o.buf is not None and t.dtype == o.code and t.rank == o.rank
                    and tuple(t.shape[: o.rank]) == o.shape):
                out.append(o.buf.copy())
            else:
                out.append(o.take())
        return out


class _Out:
    """One output: its descriptor, its expected shape and dtype, and (small ones) its buffer."""

    __slots__ = ("_fresh", "buf", "code", "dtype", "rank", "shape", "t")

    def __init__(self, t: PhotTensor, shape: tuple[int, ...], dtype: np.dtype):
        self.t = t
        self._fresh: np.ndarray | None = None  # a large output's memory for the call under way
        self._expect(shape, dtype)

    def _expect(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape, self.dtype, self.rank = shape, dtype, len(shape)
        self.code = _CODES.get(dtype, 0)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self.buf = np.empty(shape, dtype) if nbytes <= STAGE_MAX_BYTES else None
        if self.buf is not None:
            self.t.data = self.buf.ctypes.data

    def arm(self) -> None:
        if self.buf is None:  # large: fresh memory each call, handed over without a copy
            self.t.data = (arr := np.empty(self.shape, self.dtype)).ctypes.data
            self.t.byte_size = arr.nbytes
            self._fresh = arr
        else:
            self.t.byte_size = self.buf.nbytes

    def resize(self) -> None:
        t = self.t
        self._expect(tuple(t.shape[: t.rank]), _CODE_NP.get(t.dtype, self.dtype))

    def take(self) -> np.ndarray:
        t = self.t
        # a large output is the caller's from here: the frame must not keep it alive
        held, self._fresh = (self.buf, None) if self.buf is not None else (self._fresh, None)
        if t.dtype == self.code and t.rank == self.rank and tuple(t.shape[: t.rank]) == self.shape:
            return held.copy() if self.buf is not None else held
        # another shape or dtype than expected (it fit): what the plugin wrote, then expect it
        shape, dtype = tuple(t.shape[: t.rank]), _CODE_NP.get(t.dtype, self.dtype)
        n = int(np.prod(shape, dtype=np.int64))
        out = held.reshape(-1).view(np.uint8)[: n * dtype.itemsize].view(dtype).reshape(shape).copy()
        self._expect(shape, dtype)
        return out


class Frames:
    """Every thread's frames for one plugin handle set (a PluginServable)."""

    def __init__(self, out_specs: Sequence[TensorSpec]):
        self._out_specs = list(out_specs)
        self._tls = threading.local()

    def get(self, feeds: Mapping[str, np.ndarray]) -> Frame:
        """This thread's frame for these inputs."""
        try:
            mine: dict[Key, Frame] = self._tls.frames
        except AttributeError:
            mine = self._tls.frames = {}
        key = tuple([(n, a.shape, a.dtype) for n, a in feeds.items()])
        frame = mine.get(key)
        if frame is None:
            if len(mine) >= MAX_FRAMES:
                mine.clear()
            frame = mine[key] = Frame(key, self._out_specs)
        return frame

    def call(self, infer: Any, handle: Any, feeds: Mapping[str, np.ndarray]
             ) -> tuple[int, list[np.ndarray] | None]:
        """One `infer(handle, ...)` through this thread's frame: (return code, the outputs when
        it is PHOT_OK). A short guess of the output sizes is grown and retried once."""
        frame = self.get(feeds)
        keep = frame.load(feeds)  # memory the C call reads: alive until it returns
        rc = infer(handle, frame.ins, frame.n_in, frame.outs, frame.n_out)
        if rc == E_SMALL:
            frame.grow()
            keep = frame.load(feeds)
            rc = infer(handle, frame.ins, frame.n_in, frame.outs, frame.n_out)
        del keep
        if rc != OK:
            frame.forget()
            return rc, None
        return rc, frame.take()

