"""The plugin contract as Python sees it: the one mirror of native/include/paddlehot/plugin.h
(tests/test_plugin_abi.py checks it against the header): exported function names, the symbol
version node, return codes, dtype codes, struct layouts, the ELF sections, the targets.

Shared by build-plugin (writes it), core's plugin loader (calls it) and abi-check (checks it).
"""

from __future__ import annotations

import ctypes
import platform

from paddlehot_cli.core.versions import c_identifier, parse_semver

ABI_NODE = "PADDLEHOT_1.0"  # PHOT_ABI_NODE
ABI_VERSION = (1, 1)  # PHOT_ABI_MAJOR, PHOT_ABI_MINOR
FUNCTIONS = ("open", "infer", "close", "manifest", "last_error")
TARGETS = ("x86_64", "aarch64")
C_APIS = ("pdcapi", "official", "stub")
C_API_SONAME = "libpaddle_inference_c.so"
MANIFEST_SECTION = ".paddlehot.manifest"
MODEL_SECTIONS = {"model": ".paddlehot.model", "params": ".paddlehot.params"}
DIGEST_SUFFIX = ".sha256"  # plugin.so.sha256: build-plugin's record of the file's sha256
MAX_RANK = 8  # PHOT_MAX_RANK

# Return codes (PHOT_OK, PHOT_E_*).
OK = 0
RETURN_CODES = {
    "PHOT_E_INVALID_ARGUMENT": -1, "PHOT_E_UNKNOWN_INPUT": -2, "PHOT_E_MISSING_INPUT": -3,
    "PHOT_E_DTYPE_MISMATCH": -4, "PHOT_E_SHAPE_MISMATCH": -5, "PHOT_E_BUFFER_TOO_SMALL": -6,
    "PHOT_E_RUNTIME": -7, "PHOT_E_CLOSED": -8,
}
CODE_NAMES = {v: k for k, v in RETURN_CODES.items()}
E_INVALID, E_UNKNOWN, E_MISSING, E_DTYPE, E_SHAPE, E_SMALL, E_RUNTIME, E_CLOSED = (
    RETURN_CODES.values())

# Element types (PHOT_DTYPE_*); the Paddle Inference C API copies only COPYABLE_DTYPES.
DTYPE_CODES = {
    "float32": 1, "float16": 2, "float64": 3, "int32": 4, "int64": 5, "uint8": 6, "int8": 7,
    "bool": 8,
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
COPYABLE_DTYPES = ("float32", "int32", "int64", "uint8", "int8")


class PhotTensor(ctypes.Structure):
    """phot_tensor, revision 1.0. Later revisions only append fields."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("dtype", ctypes.c_int32),
        ("name", ctypes.c_char_p),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
        ("data", ctypes.c_void_p),
        ("byte_size", ctypes.c_uint64),
    ]


class PhotOpenOptions(ctypes.Structure):
    """phot_open_options, revision 1.1 (1.1 appended pool_idle_ms)."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("pool_initial", ctypes.c_int32),
        ("pool_max", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("model_dir", ctypes.c_char_p),
        ("pool_idle_ms", ctypes.c_int32),
    ]


# LP64 layouts (identical on x86_64 and aarch64); the shim _Static_asserts them.
STRUCTS = {"phot_tensor": PhotTensor, "phot_open_options": PhotOpenOptions}
STRUCT_SIZES = {name: ctypes.sizeof(cls) for name, cls in STRUCTS.items()}


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def symbol_prefix(name: str, version: str, precision: str = "fp32") -> str:
    """`phot_<model>_v<MAJOR>_<MINOR>_<PATCH>_`, and for a precision variant
    `phot_<model>_v<M>_<m>_<p>_<precision>_` (its key 1.2.0-int8, reduced as c_identifier does):
    every exported name starts with it, so a version and its variants load side by side."""
    major, minor, patch = parse_semver(version)
    tail = "" if precision == "fp32" else f"_{c_identifier(precision)}"
    return f"phot_{c_identifier(name)}_v{major}_{minor}_{patch}{tail}_"


def designed_exports(name: str, version: str, precision: str = "fp32") -> list[str]:
    prefix = symbol_prefix(name, version, precision)
    return [prefix + fn for fn in FUNCTIONS]
