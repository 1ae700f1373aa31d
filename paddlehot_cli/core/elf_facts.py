"""Read facts from an ELF file, lazily, with pyelftools (abi-check, the plugin loader, build-plugin).

Only headers, the dynamic section, the dynamic symbol table and its version sections are parsed;
big sections (embedded model params) are only hashed on demand, in chunks. Any malformed input
(not ELF, truncated, bit-flipped) ends as one PackageError line, never a traceback.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from paddlehot_cli.errors import PackageError

T = TypeVar("T")

MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
STB_GNU_UNIQUE = "STB_LOOS"  # value 10; pyelftools names it by the generic OS range
STT_GNU_IFUNC = "STT_LOOS"
MAX_SYMBOLS = 200_000
MAX_VERSION_ENTRIES = 4096
DF_TEXTREL, DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x4, 0x8, 0x1, 0x08000000


@dataclass(frozen=True)
class DynSymbol:
    name: str
    bind: str  # STB_GLOBAL | STB_WEAK | STB_LOOS (GNU_UNIQUE) | ...
    type: str  # STT_FUNC | STT_OBJECT | STT_LOOS (GNU_IFUNC) | ...
    visibility: str  # STV_DEFAULT | STV_PROTECTED | ...
    defined: bool
    shndx: str | int
    version: str | None  # version node (defined) or required version (undefined)
    version_file: str | None  # for undefined symbols: the library named in .gnu.version_r
    version_hidden: bool = False

    @property
    def bind_name(self) -> str:
        return "STB_GNU_UNIQUE" if self.bind == STB_GNU_UNIQUE else self.bind

    @property
    def type_name(self) -> str:
        return "STT_GNU_IFUNC" if self.type == STT_GNU_IFUNC else self.type


@dataclass
class ElfFacts:
    path: Path
    size: int
    elfclass: int
    machine: str  # x86_64 | aarch64 | raw e_machine name
    e_type: str
    segments: list[tuple[str, int]]  # (p_type, p_flags)
    sections: dict[str, tuple[int, int, str]]  # name -> (offset, size, sh_type)
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    soname: str | None = None
    dt_flags: int = 0
    dt_flags_1: int = 0
    has_dt_bind_now: bool = False
    has_dt_textrel: bool = False
    symbols: list[DynSymbol] = field(default_factory=list)
    version_defs: list[str] = field(default_factory=list)  # without the BASE entry
    version_needs: dict[str, list[str]] = field(default_factory=dict)  # file -> versions

    @property
    def has_interp(self) -> bool:
        return any(t == "PT_INTERP" for t, _ in self.segments)

    @property
    def has_debug_info(self) -> bool:
        return ".debug_info" in self.sections

    def exports(self) -> list[DynSymbol]:
        """Defined dynamic symbols other than the version-node marker symbols."""
        return [
            s
            for s in self.symbols
            if s.defined
            and s.bind != "STB_LOCAL"
            and not (s.shndx == "SHN_ABS" and s.name in self.version_defs)
        ]

    def imports(self) -> list[DynSymbol]:
        return [s for s in self.symbols if not s.defined and s.name]

    def read_section(self, name: str, limit: int) -> bytes | None:
        """The first `limit` bytes at most of a section's contents, or None without it."""
        if name not in self.sections:
            return None
        offset, size, _ = self.sections[name]
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(min(size, limit))

    def hash_section(self, name: str, nbytes: int) -> str | None:
        """sha256 of the first `nbytes` bytes of a section (None if it is shorter or absent)."""
        if name not in self.sections:
            return None
        offset, size, _ = self.sections[name]
        if nbytes > size or nbytes < 0:
            return None
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            left = nbytes
            while left:
                block = fh.read(min(left, 4 << 20))
                if not block:
                    return None
                digest.update(block)
                left -= len(block)
        return digest.hexdigest()


def _guard(path: Path, what: Callable[[], T]) -> T:
    try:
        return what()
    except PackageError:
        raise
    except MemoryError:
        raise PackageError(f"{path}: corrupt ELF file (absurd sizes in its headers)") from None
    except RecursionError:
        raise PackageError(f"{path}: corrupt ELF file") from None
    except Exception as exc:  # noqa: BLE001 - pyelftools raises many types on bad input
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise PackageError(f"{path}: corrupt or truncated ELF file ({reason})") from None


def open_elf(path: str | Path) -> tuple[Any, BinaryIO, int]:
    """Open and sanity-check an ELF file; returns (ELFFile, stream, size). Caller closes stream."""
    from elftools.elf.elffile import ELFFile

    p = Path(path)
    if not p.exists():
        raise PackageError(f"no such file: {p}")
    if not p.is_file():
        raise PackageError(f"not a file: {p}")
    size = p.stat().st_size
    fh = open(p, "rb")  # noqa: SIM115 - handed to the caller with the ELFFile
    try:
        magic = fh.read(4)
        if magic != b"\x7fELF":
            raise PackageError(f"{p}: not an ELF file", hint="pass a plugin .so or a package dir")
        fh.seek(0)
        elf = _guard(p, lambda: ELFFile(fh))
    except BaseException:
        fh.close()
        raise
    return elf, fh, size


def _section_table(p: Path, elf: Any, size: int) -> dict[str, tuple[int, int, str]]:
    sections: dict[str, tuple[int, int, str]] = {}
    if elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"] > size:
        raise PackageError(f"{p}: truncated ELF file (section headers past the end)")
    for sec in elf.iter_sections():
        sh_type, off, sz = sec["sh_type"], sec["sh_offset"], sec["sh_size"]
        if sh_type != "SHT_NOBITS" and off + sz > size:
            raise PackageError(
                f"{p}: truncated ELF file (section {sec.name or '?'} extends past the end)"
            )
        if sec.name and sec.name not in sections:
            sections[sec.name] = (off, sz, sh_type)
    return sections


def read_elf(path: str | Path) -> ElfFacts:
    """Parse the facts abi-check needs. Raises PackageError on anything malformed."""
    p = Path(path)
    elf, fh, size = open_elf(p)
    try:
        return _guard(p, lambda: _read(p, elf, size))
    finally:
        fh.close()


def _read(p: Path, elf: Any, size: int) -> ElfFacts:
    ident = elf["e_ident"]
    elfclass = 64 if ident["EI_CLASS"] == "ELFCLASS64" else 32
    machine = MACHINES.get(elf["e_machine"], str(elf["e_machine"]))
    if elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"] > size:
        raise PackageError(f"{p}: truncated ELF file (program headers past the end)")
    segments = [(seg["p_type"], int(seg["p_flags"])) for seg in elf.iter_segments()]
    sections = _section_table(p, elf, size)
    facts = ElfFacts(p, size, elfclass, machine, str(elf["e_type"]), segments, sections)

    dynamic = elf.get_section_by_name(".dynamic")
    if dynamic is not None and hasattr(dynamic, "iter_tags"):
        for tag in dynamic.iter_tags():
            d_tag = tag["d_tag"]
            if d_tag == "DT_NULL":
                break
            if d_tag == "DT_NEEDED":
                facts.needed.append(tag.needed)
            elif d_tag == "DT_RPATH":
                facts.rpath.extend(x for x in tag.rpath.split(":") if x)
            elif d_tag == "DT_RUNPATH":
                facts.runpath.extend(x for x in tag.runpath.split(":") if x)
            elif d_tag == "DT_SONAME":
                facts.soname = tag.soname
            elif d_tag == "DT_FLAGS":
                facts.dt_flags |= int(tag["d_val"])
            elif d_tag == "DT_FLAGS_1":
                facts.dt_flags_1 |= int(tag["d_val"])
            elif d_tag == "DT_BIND_NOW":
                facts.has_dt_bind_now = True
            elif d_tag == "DT_TEXTREL":
                facts.has_dt_textrel = True

    vernames: dict[int, tuple[str, str | None]] = {}  # index -> (version, file or None)
    verdef = elf.get_section_by_name(".gnu.version_d")
    if verdef is not None and hasattr(verdef, "iter_versions"):
        if verdef.num_versions() > MAX_VERSION_ENTRIES:
            raise PackageError(f"{p}: corrupt ELF file (too many version definitions)")
        for vd, auxes in verdef.iter_versions():
            aux = next(iter(auxes), None)
            if aux is None:
                continue
            vernames[int(vd["vd_ndx"])] = (aux.name, None)
            if not int(vd["vd_flags"]) & 0x1:  # VER_FLG_BASE names the file itself
                facts.version_defs.append(aux.name)
    verneed = elf.get_section_by_name(".gnu.version_r")
    if verneed is not None and hasattr(verneed, "iter_versions"):
        if verneed.num_versions() > MAX_VERSION_ENTRIES:
            raise PackageError(f"{p}: corrupt ELF file (too many version requirements)")
        for vn, auxes in verneed.iter_versions():
            if int(vn["vn_cnt"]) > MAX_VERSION_ENTRIES:
                raise PackageError(f"{p}: corrupt ELF file (too many version requirements)")
            for aux in auxes:
                vernames[int(aux["vna_other"])] = (aux.name, vn.name)
                facts.version_needs.setdefault(vn.name, []).append(aux.name)

    dynsym = elf.get_section_by_name(".dynsym")
    if dynsym is not None and hasattr(dynsym, "iter_symbols"):
        if dynsym["sh_entsize"] <= 0 or dynsym.num_symbols() > MAX_SYMBOLS:
            raise PackageError(f"{p}: corrupt ELF file (bad .dynsym)")
        versym = elf.get_section_by_name(".gnu.version")
        nver = versym.num_symbols() if versym is not None and hasattr(versym, "num_symbols") else 0
        for i, sym in enumerate(dynsym.iter_symbols()):
            if i == 0:
                continue
            version = vfile = None
            hidden = False
            if i < nver:
                ndx = versym.get_symbol(i)["ndx"]
                if isinstance(ndx, int):
                    hidden = bool(ndx & 0x8000)
                    version, vfile = vernames.get(ndx & 0x7FFF, (None, None))
            shndx = sym["st_shndx"]
            facts.symbols.append(
                DynSymbol(
                    name=sym.name,
                    bind=str(sym["st_info"]["bind"]),
                    type=str(sym["st_info"]["type"]),
                    visibility=str(sym["st_other"]["visibility"]),
                    defined=shndx != "SHN_UNDEF",
                    shndx=shndx,
                    version=version,
                    version_file=vfile,
                    version_hidden=hidden,
                )
            )
    return facts


class Library:
    """A shared library in the runtime: its arch, and whether it defines a given symbol.

    Lookups use the GNU hash table (no full symbol table walk), so checking a plugin's imports
    against the system libc costs milliseconds.
    """

    def __init__(self, path: Path):
        self.path = path
        self._elf, self._fh, self._size = open_elf(path)
        self.machine = MACHINES.get(self._elf["e_machine"], str(self._elf["e_machine"]))
        self.elfclass = 64 if self._elf["e_ident"]["EI_CLASS"] == "ELFCLASS64" else 32
        self._names: set[str] | None = None
        self._hash: Any = None
        self.version_defs: set[str] = set()
        _guard(path, self._load_versions)

    def _load_versions(self) -> None:
        verdef = self._elf.get_section_by_name(".gnu.version_d")
        if verdef is not None and hasattr(verdef, "iter_versions"):
            for _, auxes in verdef.iter_versions():
                for aux in auxes:
                    self.version_defs.add(aux.name)
                    break
        sec = self._elf.get_section_by_name(".gnu.hash")
        if sec is not None and hasattr(sec, "get_symbol"):
            self._hash = sec

    def defines(self, name: str, version: str | None = None) -> bool:
        if version is not None and self.version_defs and version not in self.version_defs:
            return False
        return _guard(self.path, lambda: self._defines(name))

    def _defines(self, name: str) -> bool:
        if self._hash is not None:
            sym = self._hash.get_symbol(name)
            return sym is not None and sym["st_shndx"] != "SHN_UNDEF"
        if self._names is None:
            dynsym = self._elf.get_section_by_name(".dynsym")
            self._names = set()
            if dynsym is not None and hasattr(dynsym, "iter_symbols"):
                for sym in dynsym.iter_symbols():
                    if sym["st_shndx"] != "SHN_UNDEF" and sym.name:
                        self._names.add(sym.name)
        return name in self._names

    def close(self) -> None:
        self._fh.close()


def file_size(path: str | Path) -> int:
    return os.stat(path).st_size
