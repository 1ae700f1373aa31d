"""Build real plugin-shaped shared objects (and model packages) for the abi-check tests.

Every variant starts from a plugin that passes every check and breaks exactly one rule.
Builds are cached per process (same arguments -> same file), so test modules share them.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from paddlehot_cli.core.versions import c_identifier

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLUGIN_H = REPO / "native" / "include" / "paddlehot" / "plugin.h"
FNS = ("open", "infer", "close", "manifest", "last_error")
HARDEN = ["-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack"]

# abi-check's C ABI verdict in the words of the corpus and the oracle, and the finding a verdict
# gives when both sides have the same version (a compatible change then wants a MINOR bump)
VERDICT = {"unchanged": "none", "compatible": "compatible", "breaking": "breaking"}
STATUS = {
    "none": ("pass", "info"),
    "compatible": ("fail", "warning"),
    "breaking": ("fail", "error"),
}

_ROOT: Path | None = None
_CACHE: dict[str, Path] = {}


def root() -> Path:
    global _ROOT
    if _ROOT is None:
        keep = os.environ.get("PHOT_ABI_FIXTURE_DIR")  # set it to keep the builds for a look
        if keep:
            _ROOT = Path(keep)
            _ROOT.mkdir(parents=True, exist_ok=True)
        else:
            _ROOT = Path(tempfile.mkdtemp(prefix="phot-abi-"))
            atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def cc(arch: str = "x86_64") -> str:
    return "gcc" if arch == "x86_64" else "aarch64-linux-gnu-gcc"


def objcopy(arch: str = "x86_64") -> str:
    if arch == "aarch64" and shutil.which("aarch64-linux-gnu-objcopy"):
        return "aarch64-linux-gnu-objcopy"
    return "objcopy"


def run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")


def _key(_prefix: str, **kw: Any) -> str:
    return (
        _prefix
        + hashlib.sha1(json.dumps(kw, sort_keys=True, default=str).encode()).hexdigest()[:16]
    )


def stub_dir(arch: str = "x86_64", source: str = "pd_stub.c") -> Path:
    """A dir holding libpaddle_inference_c.so (soname libpaddle_inference_c.so) for --runtime."""
    key = _key("stub", arch=arch, source=source)
    if key in _CACHE:
        return _CACHE[key]
    out = root() / key
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    run(
        [
            cc(arch),
            "-shared",
            "-fPIC",
            "-O1",
            "-Wl,-soname,libpaddle_inference_c.so",
            str(HERE / source),
            "-o",
            str(out / "libpaddle_inference_c.so"),
        ]
    )
    _CACHE[key] = out
    return out


# phot_dtype as an enum (the baseline of the enum cases), with one value changed, one appended.
_ENUM = (
    "typedef enum phot_dtype_e {{ PHOT_F32 = 1, PHOT_F16 = {f16}, PHOT_I64 = 5{more} }} phot_dtype;"
)
ENUM_DTYPE = {
    "enum": _ENUM.format(f16=2, more=""),
    "enum_changed": _ENUM.format(f16=3, more=""),
    "enum_appended": _ENUM.format(f16=2, more=", PHOT_BF16 = 9"),
}


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def header_variant(kind: str, edits: tuple[tuple[str, str], ...] = (), extra_h: str = "") -> Path:
    """plugin.h as shipped ('same'), or with phot_open_options grown ('append') or changed in the
    middle ('insert': a field inserted before pool_max, which moves every later field); then
    `edits` (each (old, new) text must occur once) and `extra_h` declarations at its end."""
    key = _key("hdr", kind=kind, edits=edits, extra_h=extra_h)
    if key in _CACHE:
        return _CACHE[key]
    text = PLUGIN_H.read_text()
    anchor = "  int32_t pool_max;"
    assert anchor in text
    if kind == "append":
        end = "} phot_open_options;"
        text = text.replace(end, "  int64_t deadline_us;\n" + end)
    elif kind == "insert":
        text = text.replace(anchor, "  int64_t deadline_us;\n" + anchor)
    elif kind == "retype":
        text = text.replace(anchor, "  int64_t pool_max;")
    elif kind == "remove":
        text = _replace_once(text, "  const char *model_dir;", "")
    elif kind.startswith("enum"):
        text = _replace_once(text, "typedef int32_t phot_dtype;", ENUM_DTYPE[kind])
    elif kind == "dtype64":
        text = _replace_once(text, "typedef int32_t phot_dtype;", "typedef int64_t phot_dtype;")
    elif kind == "dtype_unsigned":
        text = _replace_once(text, "typedef int32_t phot_dtype;", "typedef uint32_t phot_dtype;")
    for before, after in edits:
        text = _replace_once(text, before, after)
    if extra_h:
        end = "#ifdef __cplusplus\n}\n#endif\n\n#endif /* PADDLEHOT_PLUGIN_H */"
        text = _replace_once(text, end, extra_h + "\n" + end)
    out = root() / key
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    (out / "plugin.h").write_text(text)
    _CACHE[key] = out
    return out


def package_manifest(
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    inputs: list | None = None,
    outputs: list | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "name": name,
        "version": version,
        "format": "pir",
        "paddle_version": "3.0.0",
        "inputs": inputs or [{"name": "x", "dtype": "float32", "shape": [-1, 16]}],
        "outputs": outputs or [{"name": "y", "dtype": "float32", "shape": [-1, 4]}],
        "files": {
            fname: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for fname, data in files.items()
        },
        "validation": {},
        "created_at": "2026-01-01T00:00:00Z",
        "source": "tests",
    }


def model_files(params_bytes: int = 4096, seed: int = 0) -> dict[str, bytes]:
    rnd = hashlib.sha256(str(seed).encode()).digest()
    params = (rnd * (params_bytes // len(rnd) + 1))[:params_bytes]
    return {"model.json": b'{"program": "tiny mlp"}\n', "model.pdiparams": params}


def build_plugin(
    *,
    name: str = "mlp",
    version: str = "1.0.0",
    arch: str = "x86_64",
    defines: tuple[str, ...] = (),
    cflags: tuple[str, ...] = (),
    compiler: str | None = None,
    version_script: bool = True,
    extra_globals: tuple[str, ...] = (),
    ldflags: tuple[str, ...] | None = None,
    extra_ldflags: tuple[str, ...] = (),
    zdefs: bool = True,
    header: str = "same",
    edits: tuple[tuple[str, str], ...] = (),
    extra_h: str = "",
    extra_c: str = "",
    extra_map: str = "",
    node: str = "PADDLEHOT_1.0",
    fns: tuple[str, ...] = FNS,
    debug: bool = False,
    cxx: bool = False,
    embed: bool = True,
    manifest: bool = True,
    inputs: list | None = None,
    outputs: list | None = None,
    params_bytes: int = 4096,
    corrupt_params: bool = False,
    manifest_patch: dict[str, Any] | None = None,
    plugin_patch: dict[str, Any] | None = None,
    raw_manifest: bytes | None = None,
) -> Path:
    """Build a plugin .so (and write its package next to it: paddlehot.json + model files)."""
    kw = dict(locals())
    key = _key("plugin", **kw)
    if key in _CACHE:
        return _CACHE[key]
    out = root() / key
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    major, minor, patch = version.split(".")
    prefix = f"phot_{c_identifier(name)}_v{major}_{minor}_{patch}_"
    exports = [prefix + fn for fn in fns] + list(extra_globals)
    sources = [str(HERE / "plugin.c")]
    if extra_c:  # more exports (list them in extra_globals), e.g. the corpus' own types
        (out / "extra.c").write_text('#include "plugin.h"\n' + extra_c)
        sources.append(str(out / "extra.c"))
    if cxx:
        obj = out / "cxx_export.o"
        gxx = "g++" if arch == "x86_64" else "aarch64-linux-gnu-g++"
        run(
            [
                gxx,
                "-c",
                "-fPIC",
                "-O1",
                "-fno-exceptions",
                "-fvisibility=hidden",
                str(HERE / "cxx_export.cc"),
                "-o",
                str(obj),
            ]
        )
        sources.append(str(obj))
    cmd = [
        compiler or cc(arch),
        "-shared",
        "-fPIC",
        "-O1",
        "-fvisibility=hidden",
        f"-DPREFIX={prefix}",
        f"-I{header_variant(header, edits, extra_h)}",
        *(f"-D{d}" for d in defines),
    ]
    if debug:
        cmd.append("-g")
    cmd += cflags  # after -g: -gdwarf-4 keeps its version
    cmd += sources + [f"-L{stub_dir(arch)}", "-lpaddle_inference_c"]
    if version_script:
        script = out / "plugin.map"
        body = "".join(f"    {sym};\n" for sym in exports)
        script.write_text(f"{node} {{\n  global:\n{body}  local: *;\n}};\n{extra_map}")
        cmd.append(f"-Wl,--version-script={script}")
    cmd += list(HARDEN if ldflags is None else ldflags) + list(extra_ldflags)
    if zdefs:
        cmd.append("-Wl,-z,defs")
    so = out / "plugin.so"
    cmd += ["-o", str(so)]
    run(cmd)

    files = model_files(params_bytes)
    for fname, data in files.items():
        (out / fname).write_bytes(data)
    pkg = package_manifest(name, version, files, inputs=inputs, outputs=outputs)
    (out / "paddlehot.json").write_text(json.dumps(pkg, indent=2))
    sections = {"model.json": ".paddlehot.model", "model.pdiparams": ".paddlehot.params"}
    plugin_meta = {
        "abi_node": "PADDLEHOT_1.0",
        "symbol_prefix": prefix,
        "target": arch,
        "c_api": "stub",
        "embedded_files": {
            fname: {
                "section": sections[fname],
                "sha256": pkg["files"][fname]["sha256"],
                "bytes": pkg["files"][fname]["bytes"],
            }
            for fname in files
        }
        if embed
        else {},
    }
    plugin_meta.update(plugin_patch or {})
    data = dict(pkg, plugin=plugin_meta)
    for k, v in (manifest_patch or {}).items():
        data[k] = v
    cmd = [objcopy(arch)]
    if manifest:
        mfile = out / "plugin-manifest.json"
        mfile.write_bytes(raw_manifest if raw_manifest is not None else json.dumps(data).encode())
        cmd += ["--add-section", f".paddlehot.manifest={mfile}"]
    if embed:
        for fname, section in sections.items():
            blob = files[fname]
            if corrupt_params and fname == "model.pdiparams":
                blob = bytes([blob[0] ^ 1]) + blob[1:]
            tmp = out / (fname + ".embed")
            tmp.write_bytes(blob)
            cmd += ["--add-section", f"{section}={tmp}"]
    if len(cmd) > 1:
        run(cmd + [str(so)])
    _CACHE[key] = so
    return so


def good_plugin(**kw: Any) -> Path:
    return build_plugin(**kw)


def available(tool: str) -> bool:
    return shutil.which(tool) is not None


def env_without_paddle(tmp: Path) -> dict[str, str]:
    """An environment in which `import paddle` fails (a shadowing paddle package that raises)."""
    shadow = tmp / "no_paddle"
    (shadow / "paddle").mkdir(parents=True, exist_ok=True)
    (shadow / "paddle" / "__init__.py").write_text(
        "raise ImportError('paddle is deliberately unimportable in this test')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), str(REPO)])
    return env
