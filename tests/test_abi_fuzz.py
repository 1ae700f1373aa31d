"""Fuzz abi-check with hypothesis: bit flips and truncation of a real plugin, hostile manifests.
Whatever the input, the result is a report or one UserError line; never another exception."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from abi_fixtures import helpers as h
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paddlehot_cli.abi.runner import run_abi_check
from paddlehot_cli.abi.target import MANIFEST_SECTION
from paddlehot_cli.errors import UserError

pytestmark = pytest.mark.skipif(not h.available("gcc"), reason="needs gcc")
SLOT = 64 * 1024  # bytes reserved for the manifest in the hostile-manifest plugin
FUZZ = settings(
    max_examples=int(os.environ.get("PHOT_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def survive(path: Path, **kw) -> None:
    try:
        report = run_abi_check(str(path), runtime_dirs=[h.stub_dir()], **kw)
    except UserError as exc:
        assert exc.message and "\n" not in exc.message
        assert exc.exit_code == 2
        return
    assert report.exit_code in (0, 1)
    report.to_json()


_GOOD: bytes | None = None


def good_bytes() -> bytes:
    global _GOOD
    if _GOOD is None:
        _GOOD = h.good_plugin().read_bytes()
    return _GOOD


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 7)), min_size=1, max_size=8),
    head=st.booleans(),
)
def test_bit_flips(flips, head):
    data = bytearray(good_bytes())
    for pos, bit in flips:
        # half the time aim at the headers and tables, where flips do the most damage
        limit = min(len(data), 0x800) if head else len(data)
        data[pos % limit] ^= 1 << bit
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugin.so"
        path.write_bytes(bytes(data))
        survive(path)


@FUZZ
@given(cut=st.integers(0, 1 << 30))
def test_truncation(cut):
    data = good_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugin.so"
        path.write_bytes(data[: cut % len(data)])
        survive(path)


def slot_plugin() -> tuple[bytes, int]:
    """A real plugin whose manifest section has SLOT bytes; returns (bytes, section offset)."""
    so = h.build_plugin(raw_manifest=b" " * SLOT, name="slot")
    from paddlehot_cli.core.elf_facts import read_elf

    offset, size, _ = read_elf(so).sections[MANIFEST_SECTION]
    assert size == SLOT
    return so.read_bytes(), offset


def with_manifest(blob: bytes, text: bytes) -> bytes:
    data, offset = blob
    text = text[:SLOT]
    return data[:offset] + text + b"\0" * (SLOT - len(text)) + data[offset + SLOT :]


_SLOT: tuple[bytes, int] | None = None


def slot() -> tuple[bytes, int]:
    global _SLOT
    if _SLOT is None:
        _SLOT = slot_plugin()
    return _SLOT


def valid_manifest() -> dict:
    so = h.good_plugin()
    from paddlehot_cli.abi.target import load_plugin

    return dict(load_plugin(so).plugin.raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    key=st.sampled_from(
        [
            "name",
            "version",
            "format",
            "inputs",
            "outputs",
            "files",
            "plugin",
            "schema_version",
            "validation",
        ]
    ),
    value=json_values,
    sub=st.booleans(),
)
def test_manifest_with_wrong_types(key, value, sub):
    data = valid_manifest()
    if sub and key == "plugin":
        data["plugin"] = dict(data["plugin"], embedded_files=value)
    elif sub and key in ("inputs", "outputs"):
        data[key] = [value]
    else:
        data[key] = value
    blob = with_manifest(slot(), json.dumps(data).encode())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugin.so"
        path.write_bytes(blob)
        survive(path)


@FUZZ
@given(text=st.binary(max_size=512) | st.text(max_size=512).map(str.encode))
def test_manifest_garbage(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugin.so"
        path.write_bytes(with_manifest(slot(), text))
        survive(path)


@pytest.mark.parametrize("depth", [50, 5000, 30000])
def test_deeply_nested_manifest(tmp_path, depth):
    path = tmp_path / "plugin.so"
    path.write_bytes(with_manifest(slot(), b"[" * depth + b"]" * depth))
    with pytest.raises(UserError, match="not valid JSON|must be a JSON object"):
        run_abi_check(str(path), runtime_dirs=[h.stub_dir()])


def test_huge_manifest_is_refused():
    so = h.build_plugin(raw_manifest=b"[" + b"1," * (3 * 1024 * 1024) + b"1]", name="huge")
    with pytest.raises(UserError, match="larger than"):
        run_abi_check(str(so), runtime_dirs=[h.stub_dir()])
