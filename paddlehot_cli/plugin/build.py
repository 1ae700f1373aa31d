"""build-plugin: render templates/plugin for one package, compile, link, embed, verify.

Nothing here imports paddle except `verify_plugin` (lazily, through core). The steps are plain
functions so the CLI can show each one with a spinner.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, ContextManager

from paddlehot_cli.core.manifest import Manifest, read_verified
from paddlehot_cli.core.plugin_abi import (
    ABI_NODE,
    ABI_VERSION,
    COPYABLE_DTYPES,
    DIGEST_SUFFIX,
    DTYPE_CODES,
    FUNCTIONS,
    MODEL_SECTIONS,
    STRUCT_SIZES,
    TARGETS,
    host_arch,
    symbol_prefix,
)
from paddlehot_cli.core.plugin_image import digest_line, file_sha256
from paddlehot_cli.core.variants import variant_key
from paddlehot_cli.errors import PackageError, UserError
from paddlehot_cli.plugin.c_api_choice import CROSS_CC, CApi
from paddlehot_cli.plugin.verify import verify_plugin

SECTIONS = MODEL_SECTIONS

# The official C API functions a variant plugin's runtime calls (native/runtime/precision.c)
PRECISION_SWITCHES = {
    "bf16": ("PD_ConfigEnableMKLDNN", "PD_ConfigEnableMkldnnBfloat16",
             "PD_ConfigMkldnnBfloat16Enabled"),
    "int8": ("PD_ConfigEnableMKLDNN", "PD_ConfigEnableMkldnnInt8", "PD_ConfigMkldnnInt8Enabled"),
}

StepFn = Callable[[str], ContextManager[Any]]


def templates_dir() -> Path:
    from paddlehot_cli.resources import templates_dir as _templates_dir

    return _templates_dir() / "plugin"


@dataclass
class BuildRequest:
    package: Path | str  # a package dir or REPO:NAME@VERSION[-PRECISION] (package_dir)
    out: Path
    target: str | None = None
    cc: str | None = None
    paddle_inference_dir: Path | None = None
    embed_model: bool = True
    debug: bool = False
    verify: bool = True
    sysroot: Path | None = None  # a foreign-arch rootfs: real cross pdcapi + qemu verification


@dataclass
class BuildResult:
    path: Path
    manifest: dict[str, Any]
    c_api: str
    target: str
    notes: list[str] = field(default_factory=list)
    verify: dict[str, Any] | None = None


def _no_step(title: str) -> ContextManager[Any]:
    from contextlib import nullcontext

    return nullcontext()


# ---------------------------------------------------------------------------------- inputs


def check_package(package: Path) -> Manifest:
    manifest = read_verified(package)
    for spec in (*manifest.inputs, *manifest.outputs):
        if spec.dtype not in COPYABLE_DTYPES:
            raise PackageError(
                f"{package}: tensor '{spec.name}' is {spec.dtype}; the Paddle Inference C API "
                f"copies only {', '.join(COPYABLE_DTYPES)}",
                hint="export the model with one of those dtypes at its inputs and outputs",
            )
        if len(spec.shape) > 8:
            raise PackageError(f"{package}: tensor '{spec.name}' has rank > 8 (PHOT_MAX_RANK)")
    return manifest


def refuse_unverifiable(manifest: Manifest) -> None:
    """A variant plugin is verified by running it: say so before compiling where this box cannot
    run its precision (the plugin would refuse to open here, as serve would)."""
    if manifest.precision == "fp32":
        return
    from paddlehot_cli.core.precision_config import refusal_here

    why = refusal_here(manifest.requires, manifest.precision)
    if why is not None:
        raise UserError(f"cannot verify a {manifest.precision} plugin on this box: {why}",
                        hint="build it with --no-verify for a box that can run it; "
                        "`abi-check --runtime` checks it there, and it refuses to open where "
                        "it cannot run")


def variant_tolerances(manifest: Manifest) -> dict[str, float]:
    """Verification of a variant plugin against its recorded outputs uses the variant's own
    tolerances (validation.npz holds its int8/bf16 outputs; another oneDNN kernel choice may
    round differently); the plugin and core.load must still agree as closely as fp32's do."""
    if manifest.precision == "fp32":
        return {}
    v = manifest.validation
    return {"atol": float(v.get("atol", 1e-4)), "rtol": float(v.get("rtol", 1e-3))}


def resolve_target(target: str | None) -> str:
    value = (target or host_arch()).lower()
    value = {"amd64": "x86_64", "arm64": "aarch64"}.get(value, value)
    if value not in TARGETS:
        raise UserError(f"unknown --target '{target}'", hint="one of " + ", ".join(TARGETS))
    return value


def resolve_cc(cc: str | None, target: str) -> str:
    name = cc or (None if target == host_arch() else CROSS_CC[target])
    if not name:
        name = os.environ.get("CC") or next(
            (c for c in ("cc", "gcc", "clang") if shutil.which(c)), "cc"
        )
    path = shutil.which(name)
    if not path:
        hint = (
            f"install {CROSS_CC[target]} (apt-get install gcc-{target}-linux-gnu) or pass --cc"
            if target != host_arch()
            else "install gcc (apt-get install gcc) or pass --cc"
        )
        raise UserError(f"C compiler not found: {name}", hint=hint)
    return path


def resolve_c_api(req: BuildRequest, target: str, cc: str) -> CApi:
    if req.paddle_inference_dir is not None:
        root = Path(req.paddle_inference_dir)
        inc, lib = root / "paddle" / "include", root / "paddle" / "lib"
        if not (inc / "pd_inference_api.h").is_file():
            raise UserError(
                f"{root} is not a Paddle Inference C SDK: no paddle/include/pd_inference_api.h",
                hint="pass the directory that holds paddle/include and paddle/lib",
            )
        if not (lib / "libpaddle_inference_c.so").is_file():
            raise UserError(f"{root}: no paddle/lib/libpaddle_inference_c.so")
        return CApi("official", inc, lib, f"linked against the official C API in {root}")
    from paddlehot_cli.plugin import pdcapi

    if req.sysroot is not None:
        from paddlehot_cli.plugin.cross import cross_c_api

        return cross_c_api(req.sysroot, target, cc)
    if target != host_arch():
        stub = pdcapi.build_link_stub(f"{target}-linux-gnu", cc)
        return CApi(
            "stub", pdcapi.pdcapi_include_dir(), stub.parent,
            f"no {target} Paddle Inference SDK given: linked against a link-only stub of "
            "libpaddle_inference_c.so; on the device it needs the official library "
            "(or pass --paddle-inference-dir)",
        )
    lib = pdcapi.build_pdcapi(cc=cc)
    return CApi("pdcapi", pdcapi.pdcapi_include_dir(), lib.parent,
                f"linked against paddlehot's pdcapi ({lib})")


# ---------------------------------------------------------------------------------- render


def plugin_manifest(manifest: Manifest, target: str, c_api: str, embedded: bool) -> dict[str, Any]:
    data = manifest.to_json()
    embedded_files = {}
    if embedded:
        prog, params = manifest.model_files
        for fname, section in ((prog, SECTIONS["model"]), (params, SECTIONS["params"])):
            info = manifest.files.get(fname) or manifest.shared_files[fname]  # bf16: fp32's
            embedded_files[fname] = {
                "section": section, "sha256": info["sha256"], "bytes": info["bytes"]
            }
    data["plugin"] = {
        "abi_node": ABI_NODE,
        "abi_version": list(ABI_VERSION),
        "symbol_prefix": symbol_prefix(manifest.name, manifest.version, manifest.precision),
        "functions": list(FUNCTIONS),
        "target": target,
        "c_api": c_api,
        "struct_sizes": dict(STRUCT_SIZES),
        "embedded_files": embedded_files,
        # what the runtime configures (docs/variants.md); the CPU flags and Paddle features it
        # needs are the manifest's own `requires`
        "precision": manifest.precision,
        "c_api_switches": list(PRECISION_SWITCHES.get(manifest.precision, ())),
    }
    return data


def _c_string(text: str) -> str:
    return json.dumps(text)[1:-1].replace("?", "\\?")


def _specs(specs: Any) -> str:
    rows = []
    for s in specs:
        dims = ", ".join(str(d) for d in s.shape) or "0"
        code = DTYPE_CODES.get(s.dtype, 0)
        rows.append(f'  {{"{_c_string(s.name)}", {code}, {len(s.shape)}, {{{dims}}}}},')
    return "\n".join(rows)


def render(manifest: Manifest, pmanifest: dict[str, Any], package: Path, workdir: Path,
           embed: bool) -> dict[str, Path]:
    tdir = templates_dir()
    prefix = pmanifest["plugin"]["symbol_prefix"]
    common = {
        "MODEL": _c_string(manifest.name).replace("*/", "*_/"),
        "VERSION": variant_key(manifest.version, manifest.precision),  # 1.2.0-int8 in messages
        "PREFIX": prefix,
    }
    prog, params = manifest.model_files
    names_in = ", ".join(s.name for s in manifest.inputs)
    names_out = ", ".join(s.name for s in manifest.outputs)
    needs = manifest.requires or {}
    c_src = Template((tdir / "plugin.c.in").read_text()).substitute(
        common,
        N_INPUTS=len(manifest.inputs),
        N_OUTPUTS=len(manifest.outputs),
        EMBEDDED=1 if embed else 0,
        PROG_FILE=prog,
        MODEL_SECTION=SECTIONS["model"],
        PARAMS_SECTION=SECTIONS["params"],
        TENSOR_SIZE=STRUCT_SIZES["phot_tensor"],
        OPTIONS_SIZE=STRUCT_SIZES["phot_open_options"],
        INPUT_SPECS=_specs(manifest.inputs),
        OUTPUT_SPECS=_specs(manifest.outputs),
        INPUT_NAMES=_c_string(names_in).replace("%", "%%"),
        OUTPUT_NAMES=_c_string(names_out).replace("%", "%%"),
        PRECISION=manifest.precision,
        CPU_FLAGS_ALL=_c_string(" ".join(needs.get("cpu_flags_all", []))),
        CPU_FLAGS_ANY=_c_string(" ".join(needs.get("cpu_flags_any", []))),
    )
    vmap = Template((tdir / "plugin.map.in").read_text()).substitute(common)
    mpath = workdir / "manifest.json"
    mpath.write_text(json.dumps(pmanifest, indent=2) + "\n")
    blobs = []
    if embed:
        blob = Template((tdir / "embed_blob.S.in").read_text())
        paths = manifest.model_paths(Path(package).resolve())  # a bf16 variant's are fp32's
        for fname, section, src in ((prog, SECTIONS["model"], paths[0]),
                                    (params, SECTIONS["params"], paths[1])):
            link = workdir / fname  # fixed, quote-free names for .incbin
            os.symlink(src, link)
            blobs.append(blob.substitute(SECTION=section, PATH=str(link)))
    asm = Template((tdir / "embed.S.in").read_text()).substitute(
        common, MANIFEST_PATH=str(mpath), MODEL_BLOBS="\n".join(blobs)
    )
    files = {"c": workdir / "plugin.c", "map": workdir / "plugin.map", "asm": workdir / "embed.S"}
    files["c"].write_text(c_src)
    files["map"].write_text(vmap)
    files["asm"].write_text(asm)
    return files


# ---------------------------------------------------------------------------------- compile


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
        lines = lines or proc.stderr.splitlines() or ["(no output)"]
        raise UserError(f"{what} failed: {lines[0].strip()}", hint="command: " + " ".join(cmd))


def include_dir() -> Path:
    from paddlehot_cli.resources import native_dir

    return native_dir() / "include"


def runtime_dir() -> Path:
    """native/runtime: the model-independent plugin code, compiled into every plugin."""
    from paddlehot_cli.resources import native_dir

    return native_dir() / "runtime"


def runtime_sources() -> list[Path]:
    return sorted(runtime_dir().glob("*.c"))


def compile_objects(cc: str, files: dict[str, Path], capi: CApi, debug: bool) -> list[Path]:
    if not (include_dir() / "paddlehot" / "plugin.h").is_file() or not runtime_sources():
        raise UserError(f"plugin.h or the plugin runtime not found under {include_dir().parent}",
                        hint="run from a paddlehot source checkout")
    opt = ["-O2", "-g"] if debug else ["-O2", "-g0"]
    cflags = [*opt, "-std=gnu11", "-fPIC", "-fvisibility=hidden", "-Wall", "-Werror=implicit",
              f"-I{include_dir()}", f"-I{runtime_dir()}", f"-I{capi.include}"]
    objects = []
    for src in [files["c"], *runtime_sources()]:
        obj = files["c"].with_name(f"{src.stem}.o")
        _run([cc, *cflags, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
        objects.append(obj)
    s_obj = files["asm"].with_name("embed.o")
    _run([cc, "-fPIC", "-c", str(files["asm"]), "-o", str(s_obj)], "assembling the embedded files")
    return [*objects, s_obj]


def link(cc: str, objects: list[Path], files: dict[str, Path], capi: CApi, out: Path,
         debug: bool) -> None:
    cmd = [
        cc, "-shared", "-fPIC", *(["-g"] if debug else []),
        *map(str, objects),
        f"-Wl,--version-script={files['map']}",
        "-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack", "-Wl,-z,defs", "-Wl,--build-id",
        f"-L{capi.libdir}", "-lpaddle_inference_c",
        "-Wl,--push-state,--as-needed", "-lpthread", "-Wl,--pop-state",
        "-o", str(out),
    ]
    _run(cmd, "linking the plugin")


# ---------------------------------------------------------------------------------- the verb


def make_parents(out: Path) -> list[Path]:
    """Create the missing directories above `out`; returns them, outermost first."""
    missing = [d for d in [out.parent, *out.parent.parents] if not d.exists()][::-1]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"-o {out}: {out.parent} is not a directory") from None
    except OSError as exc:
        raise UserError(f"-o {out}: cannot create {out.parent}: {exc.strerror}") from None
    return missing


def package_dir(spec: Path | str) -> Path:
    """A package directory, or `REPO:NAME@VERSION[-PRECISION]` (as serve, variant and abi-check
    name a version or variant) resolved to one."""
    path = Path(spec)
    text = str(spec)
    if not path.is_dir() and ":" in text and Path(text.rpartition(":")[0]).is_dir():
        from paddlehot_cli.core.repository import resolve_version

        return resolve_version(text)
    return path


def build_plugin(req: BuildRequest, step: StepFn = _no_step) -> BuildResult:
    package = package_dir(req.package)
    out = Path(req.out)
    if out.suffix != ".so":
        raise UserError(f"-o {out}: a plugin file name must end in .so")
    if out.is_dir():
        raise UserError(f"-o {out} is a directory", hint="give a file name, e.g. -o mlp.so")
    target = resolve_target(req.target)
    with step(f"Checking package {package}"):
        manifest = check_package(package)
        if req.verify and target == host_arch():
            refuse_unverifiable(manifest)
        cc = resolve_cc(req.cc, target)
        capi = resolve_c_api(req, target, cc)
    notes = [capi.note] if capi.note else []
    pmanifest = plugin_manifest(manifest, target, capi.kind, req.embed_model)
    made = make_parents(out)  # -o DIR/x.so creates DIR, as export -o does (gone on failure)
    work = Path(tempfile.mkdtemp(prefix="paddlehot-build-"))
    tmp_out = out.parent / f".{out.stem}.{os.getpid()}.tmp.so"
    tmp_digest = out.parent / f".{out.stem}.{os.getpid()}.tmp{DIGEST_SUFFIX}"
    try:
        with step("Rendering templates/plugin"):
            files = render(manifest, pmanifest, package, work, req.embed_model)
        with step(f"Compiling for {target} ({Path(cc).name})"):
            objects = compile_objects(cc, files, capi, req.debug)
        with step("Linking" + (" and embedding the model" if req.embed_model else "")):
            link(cc, objects, files, capi, tmp_out, req.debug)
        with step("Checking exports and sections"):
            check_built(tmp_out, pmanifest)
        verified = None
        if req.verify and target == host_arch():
            with step("Verifying: validation inputs through the plugin vs core.load"):
                verified = verify_plugin(
                    package, tmp_out,
                    model_dir=None if req.embed_model else manifest.model_paths(package)[0].parent,
                    **variant_tolerances(manifest),
                )
        elif req.verify and req.sysroot is not None:
            from paddlehot_cli.plugin.qemu_verify import verify_in_rootfs
            from paddlehot_cli.plugin.rootfs import open_rootfs

            with step(f"Verifying under qemu in {req.sysroot}: validation inputs through the "
                      "plugin vs core.load"):
                verified = verify_in_rootfs(
                    open_rootfs(req.sysroot, target), package, tmp_out, capi.libdir,
                    embedded=req.embed_model,
                )
        elif req.verify:
            notes.append(f"not verified: a {target} plugin cannot run on this {host_arch()} host")
        # The digest beside the plugin is what serve trusts (core.plugin_loader): published in
        # the same rename as the version when built into its hidden staging dir.
        tmp_digest.write_text(digest_line(file_sha256(tmp_out), out.name))
        os.replace(tmp_out, out)
        os.replace(tmp_digest, out.with_name(out.name + DIGEST_SUFFIX))
    finally:
        tmp_out.unlink(missing_ok=True)
        tmp_digest.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        if not out.exists():
            for d in reversed(made):
                with contextlib.suppress(OSError):  # only if still empty
                    d.rmdir()
    return BuildResult(out, pmanifest, capi.kind, target, notes, verified)


def check_built(path: Path, pmanifest: dict[str, Any]) -> None:
    """The dynamic symbol table holds exactly the five designed functions at PADDLEHOT_1.0, and
    the manifest section reads back."""
    from paddlehot_cli.core.plugin_loader import defined_exports, read_manifest_section

    prefix = pmanifest["plugin"]["symbol_prefix"]
    want = {prefix + f for f in FUNCTIONS}
    have = defined_exports(path)
    names = {n for n, _ in have}
    if names != want:
        extra, missing = sorted(names - want), sorted(want - names)
        raise UserError(f"built plugin exports are wrong (extra {extra}, missing {missing})")
    bad = [n for n, v in have if v != ABI_NODE]
    if bad:
        raise UserError(f"built plugin exports not bound to {ABI_NODE}: {bad}")
    text = read_manifest_section(path)
    if text is None or json.loads(text) != pmanifest:
        raise UserError("built plugin: the .paddlehot.manifest section does not read back")

