"""The C ABI surface of a plugin read from its DWARF: every exported function's signature and
every type reachable from it (structs and unions through pointers, enums, typedefs).

Only plugins built with debug info (build-plugin --debug) carry DWARF. Reading starts at the
exports: .debug_aranges names the compile units that hold them, so only those units are parsed
(a plugin's other units and its embedded model never are). Hostile or truncated DWARF ends as
DwarfUnreadable (one line), never another exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from paddlehot_cli.core.elf_facts import open_elf
from paddlehot_cli.errors import PackageError

T = TypeVar("T")
MAX_DEPTH = 24  # nesting of one type description (const pointer to array of ... )
MAX_TYPES = 50_000  # type DIEs described per file: a bound on hostile reference graphs
MAX_UNITS = 4096
SIGNED_ENCODINGS = {5, 6}  # DW_ATE_signed, DW_ATE_signed_char
FLOAT_ENCODINGS = {3, 4, 9}  # complex_float, float, imaginary_float
_QUALIFIERS = {
    "DW_TAG_const_type": "const",
    "DW_TAG_volatile_type": "volatile",
    "DW_TAG_restrict_type": "restrict",
    "DW_TAG_atomic_type": "_Atomic",
}
_AGGREGATES = {
    "DW_TAG_structure_type": "struct",
    "DW_TAG_union_type": "union",
    "DW_TAG_class_type": "class",
}


class DwarfUnreadable(Exception):
    """The DWARF is present but cannot be trusted (truncated, corrupt, absurd)."""


@dataclass(frozen=True)
class TypeInfo:
    """One type as a caller sees it. `canon` resolves typedefs, so two spellings of one type
    compare equal; struct, union and enum types are named here and described in Surface."""

    text: str  # as written, e.g. 'const phot_tensor *'
    canon: str  # typedefs resolved, e.g. 'const struct phot_tensor *'
    size: int
    kind: str  # void | base | pointer | struct | union | enum | array | function | other
    encoding: str = ""  # base types: signed | unsigned | float | bool | other
    pointee: TypeInfo | None = None


VOID = TypeInfo("void", "void", 0, "void")


@dataclass(frozen=True)
class Function:
    name: str
    ret: TypeInfo
    params: tuple[tuple[str, TypeInfo], ...]
    variadic: bool = False


@dataclass(frozen=True)
class Field:
    name: str
    offset: int  # bytes; -1 when DWARF gives no constant offset (bit fields)
    type: TypeInfo


@dataclass(frozen=True)
class Record:
    kind: str  # struct | union | class
    name: str
    size: int
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Enum:
    name: str
    size: int
    values: tuple[tuple[str, int], ...]


@dataclass
class Surface:
    functions: dict[str, Function] = field(default_factory=dict)  # by ELF symbol name
    records: dict[str, Record] = field(default_factory=dict)
    enums: dict[str, Enum] = field(default_factory=dict)
    typedefs: dict[str, TypeInfo] = field(default_factory=dict)  # name -> target


def _attr(die: Any, name: str) -> Any:
    a = die.attributes.get(name)
    return None if a is None else a.value


def _name(die: Any) -> str | None:
    v = _attr(die, "DW_AT_name")
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _ref(die: Any, attr: str) -> Any:
    return die.get_DIE_from_attribute(attr) if attr in die.attributes else None


def _join(inner: str, mark: str) -> str:
    return inner + mark if inner.endswith(("*", "&")) else f"{inner} {mark}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Reader:
    """Describes type DIEs once each (by offset) and records the named types it meets."""

    def __init__(self, pointer_size: int, private: Callable[[Any], bool]) -> None:
        self.surface = Surface()
        self.pointer_size = pointer_size
        self.private = private  # a record defined in a .c file is not part of the ABI
        self.memo: dict[int, TypeInfo] = {}
        self.pending: list[tuple[Any, str]] = []  # records whose fields are still to read
        self.budget = MAX_TYPES

    def describe(self, die: Any, depth: int = 0, alias: str | None = None) -> TypeInfo:
        if die is None:
            return VOID
        if depth > MAX_DEPTH:
            raise DwarfUnreadable("type nesting deeper than any C header writes")
        memo = self.memo.get(die.offset)
        if memo is not None and alias is None:
            return memo
        self.budget -= 1
        if self.budget < 0:
            raise DwarfUnreadable(f"more than {MAX_TYPES} types reachable from the exports")
        info = self._describe(die, depth, alias)
        if alias is None:
            self.memo[die.offset] = info
        return info

    def _describe(self, die: Any, depth: int, alias: str | None) -> TypeInfo:
        tag = die.tag
        inner = lambda: self.describe(_ref(die, "DW_AT_type"), depth + 1)
        if tag == "DW_TAG_typedef":
            name = _name(die) or "<anon>"
            target = self.describe(_ref(die, "DW_AT_type"), depth + 1, alias=name)
            self.surface.typedefs.setdefault(name, target)
            return TypeInfo(
                name, target.canon, target.size, target.kind, target.encoding, target.pointee
            )
        if tag in _QUALIFIERS:
            t, q = inner(), _QUALIFIERS[tag]
            return TypeInfo(
                f"{q} {t.text}", f"{q} {t.canon}", t.size, t.kind, t.encoding, t.pointee
            )
        if tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            t = inner()
            size = _int(_attr(die, "DW_AT_byte_size")) or self.pointer_size
            mark = {"DW_TAG_pointer_type": "*", "DW_TAG_reference_type": "&"}.get(tag, "&&")
            return TypeInfo(_join(t.text, mark), _join(t.canon, mark), size, "pointer", "", t)
        if tag == "DW_TAG_base_type":
            enc = _int(_attr(die, "DW_AT_encoding"))
            kind = (
                "signed"
                if enc in SIGNED_ENCODINGS
                else "float"
                if enc in FLOAT_ENCODINGS
                else "bool"
                if enc == 2
                else "unsigned"
                if enc in (7, 8)
                else "other"
            )
            name = _name(die) or "<base>"
            return TypeInfo(name, name, _int(_attr(die, "DW_AT_byte_size")), "base", kind)
        if tag in _AGGREGATES:
            return self._aggregate(die, _AGGREGATES[tag], alias)
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die, depth, alias)
        if tag == "DW_TAG_array_type":
            return self._array(die, inner())
        if tag == "DW_TAG_subroutine_type":
            ret = inner()
            params = [
                self.describe(_ref(c, "DW_AT_type"), depth + 1).canon
                for c in die.iter_children()
                if c.tag == "DW_TAG_formal_parameter"
            ]
            sig = f"{ret.canon} (" + ", ".join(params) + ")"
            return TypeInfo(sig, sig, 0, "function")
        name = _name(die) or tag.removeprefix("DW_TAG_")
        return TypeInfo(name, name, _int(_attr(die, "DW_AT_byte_size")), "other")

    def _aggregate(self, die: Any, kind: str, alias: str | None) -> TypeInfo:
        name = _name(die) or alias or f"<anon@{die.offset:#x}>"
        size = _int(_attr(die, "DW_AT_byte_size"))
        declared_only = bool(_attr(die, "DW_AT_declaration"))
        if not declared_only and name not in self.surface.records and not self.private(die):
            # placeholder first: a struct that points to itself ends here
            self.surface.records[name] = Record(kind, name, size, ())
            self.pending.append((die, name))
        text = f"{kind} {name}"
        return TypeInfo(text, text, size, kind)

    def _enum(self, die: Any, depth: int, alias: str | None) -> TypeInfo:
        name = _name(die) or alias or f"<anon@{die.offset:#x}>"
        size = _int(_attr(die, "DW_AT_byte_size"))
        base = (
            self.describe(_ref(die, "DW_AT_type"), depth + 1)
            if "DW_AT_type" in die.attributes
            else None
        )
        if not _attr(die, "DW_AT_declaration") and name not in self.surface.enums:
            values = tuple(
                (_name(c) or "?", _int(_attr(c, "DW_AT_const_value")))
                for c in die.iter_children()
                if c.tag == "DW_TAG_enumerator"
            )
            self.surface.enums[name] = Enum(name, size, values)
        text = f"enum {name}"
        return TypeInfo(text, text, size, "enum", base.encoding if base else "")

    def _array(self, die: Any, elem: TypeInfo) -> TypeInfo:
        dims = []
        for sub in die.iter_children():
            if sub.tag != "DW_TAG_subrange_type":
                continue
            count = _attr(sub, "DW_AT_count")
            if count is None and isinstance(_attr(sub, "DW_AT_upper_bound"), int):
                count = _attr(sub, "DW_AT_upper_bound") + 1
            dims.append(_int(count))
        total = elem.size
        for d in dims:
            total *= d
        suffix = "".join(f"[{d}]" for d in dims) or "[]"
        return TypeInfo(elem.text + suffix, elem.canon + suffix, total, "array", "", elem)

    def drain(self) -> None:
        """Read the fields of every record met so far (and of the records those fields meet)."""
        while self.pending:
            die, name = self.pending.pop()
            fields = []
            for member in die.iter_children():
                if member.tag != "DW_TAG_member":
                    continue
                loc = _attr(member, "DW_AT_data_member_location")
                offset = (
                    loc if isinstance(loc, int) else (0 if die.tag == "DW_TAG_union_type" else -1)
                )
                fields.append(
                    Field(
                        _name(member) or "<anon>", offset, self.describe(_ref(member, "DW_AT_type"))
                    )
                )
            old = self.surface.records[name]
            self.surface.records[name] = Record(old.kind, name, old.size, tuple(fields))

    def function(self, die: Any, symbol: str) -> Function:
        decl = die
        for _ in range(8):  # out-of-line copies point to the declaration that has the details
            nxt = next(
                (
                    a
                    for a in ("DW_AT_abstract_origin", "DW_AT_specification")
                    if a in decl.attributes
                ),
                None,
            )
            if nxt is None:
                break
            decl = _ref(decl, nxt)
        ret = self.describe(_ref(decl, "DW_AT_type"))
        params, variadic = [], False
        for child in decl.iter_children():
            if child.tag == "DW_TAG_formal_parameter":
                params.append(
                    (
                        _name(child) or f"arg{len(params) + 1}",
                        self.describe(_ref(child, "DW_AT_type")),
                    )
                )
            elif child.tag == "DW_TAG_unspecified_parameters":
                variadic = True
        return Function(symbol, ret, tuple(params), variadic)


def _subprogram_name(die: Any) -> str | None:
    seen = 0
    while die is not None and seen < 8:
        for attr in ("DW_AT_linkage_name", "DW_AT_MIPS_linkage_name", "DW_AT_name"):
            v = _attr(die, attr)
            if v is not None:
                return v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        nxt = next(
            (a for a in ("DW_AT_abstract_origin", "DW_AT_specification") if a in die.attributes),
            None,
        )
        die = _ref(die, nxt) if nxt else None
        seen += 1
    return None


def _export_addresses(elf: Any, names: set[str]) -> list[int]:
    dynsym = elf.get_section_by_name(".dynsym")
    if dynsym is None:
        return []
    return [s["st_value"] for s in dynsym.iter_symbols() if s.name in names and s["st_value"]]


def _units(dwarf: Any, addresses: Iterable[int]) -> Iterable[Any]:
    """The compile units holding `addresses` (via .debug_aranges), else every unit."""
    try:
        aranges = dwarf.get_aranges()
    except Exception:  # noqa: BLE001 - only an index: a broken one means reading every unit
        aranges = None
    offsets = set()
    if aranges is not None:
        for addr in addresses:
            off = aranges.cu_offset_at_addr(addr)
            if off is None:
                offsets = set()
                break
            offsets.add(off)
    if offsets:
        return [dwarf.get_CU_at(off) for off in sorted(offsets)]
    return dwarf.iter_CUs()


def _private_check(dwarf: Any) -> Callable[[Any], bool]:
    """A record declared in a .c file (e.g. the plugin's own `struct phot_model`, opaque in
    plugin.h) is private: no host compiles against it, so its layout is not ABI."""
    files: dict[int, list[str]] = {}

    def names(cu: Any) -> list[str]:
        if cu.cu_offset not in files:
            lp = dwarf.line_program_for_CU(cu)
            entries = lp.header.file_entry if lp is not None else []
            files[cu.cu_offset] = [
                e.name.decode("utf-8", "replace") if isinstance(e.name, bytes) else str(e.name)
                for e in entries
            ]
            if lp is not None and lp.header.version < 5:
                files[cu.cu_offset].insert(0, "")  # DWARF <= 4 numbers files from 1
        return files[cu.cu_offset]

    def private(die: Any) -> bool:
        idx = _attr(die, "DW_AT_decl_file")
        table = names(die.cu)
        if not isinstance(idx, int) or not 0 <= idx < len(table):
            return False
        return table[idx].endswith((".c", ".cc", ".cpp", ".cxx"))

    return private


def read_surface(path: str | Path, exports: Iterable[str]) -> Surface | None:
    """The ABI surface of `exports` in the DWARF of `path`; None when it has no DWARF.
    Raises DwarfUnreadable for DWARF that cannot be read, PackageError for a broken ELF."""
    p = Path(path)
    elf, fh, _ = open_elf(p)
    try:
        if elf.get_section_by_name(".debug_info") is None:
            return None
        return _unreadable_guard(lambda: _read(elf, set(exports)))
    finally:
        fh.close()


def _read(elf: Any, names: set[str]) -> Surface:
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
    reader = _Reader(elf.elfclass // 8, _private_check(dwarf))
    for n, cu in enumerate(_units(dwarf, _export_addresses(elf, names))):
        if n >= MAX_UNITS:
            raise DwarfUnreadable(f"more than {MAX_UNITS} compile units")
        for die in cu.get_top_DIE().iter_children():
            if die.tag != "DW_TAG_subprogram" or _attr(die, "DW_AT_declaration"):
                continue
            if "DW_AT_low_pc" not in die.attributes and "DW_AT_ranges" not in die.attributes:
                continue  # an abstract instance; its concrete copy carries the address
            sym = _subprogram_name(die)
            if sym in names and sym not in reader.surface.functions:
                reader.surface.functions[sym] = reader.function(die, sym)
        if len(reader.surface.functions) == len(names):
            break
    reader.drain()
    return reader.surface


def _unreadable_guard(what: Callable[[], T]) -> T:
    try:
        return what()
    except (DwarfUnreadable, PackageError):
        raise
    except RecursionError:
        raise DwarfUnreadable("DWARF references nest without end") from None
    except MemoryError:
        raise DwarfUnreadable("absurd sizes in the DWARF") from None
    except Exception as exc:  # noqa: BLE001 - pyelftools raises many types on bad input
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DwarfUnreadable(reason) from None
