"""The C ABI surface of a plugin read from its DWARF: every exported function's signature, every
exported variable's type, every type reachable from them (structs and unions through pointers,
enums, typedefs), and plugin.h's ABI record (the static `phot_abi_record`: its enums carry the
return codes, dtype codes, struct sizes and growth rules; its members the function types).

Types are described the way a C caller sees them, independent of the compiler that wrote the
DWARF: base types by encoding and size (not by spelling), bit fields by absolute bit offset from
either DWARF encoding (DW_AT_data_bit_offset, or DWARF <= 4's DW_AT_bit_offset), anonymous types
by the place they occur (e.g. `phot_tensor::#3`), never by their DWARF offset.

Only plugins built with debug info (build-plugin --debug) carry DWARF. Reading starts at the
exports: .debug_aranges names the compile units that hold them, so only those units are parsed
(a plugin's other units and its embedded model never are). Hostile or truncated DWARF ends as
DwarfUnreadable (one line), never another exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
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
    align: int = 0  # bytes; 0: an aggregate's, found in Surface.records under `tag`
    tag: str = ""  # struct, union and enum types: their name in Surface
    unqualified: TypeInfo | None = None  # const/volatile/... types: the type without them

    def bare(self) -> TypeInfo:
        """The type without top-level qualifiers (what a by-value copy has)."""
        return self.unqualified.bare() if self.unqualified is not None else self


VOID = TypeInfo("void", "void", 0, "void")


@dataclass(frozen=True)
class Function:
    name: str
    ret: TypeInfo
    params: tuple[tuple[str, TypeInfo], ...]
    variadic: bool = False


@dataclass(frozen=True)
class Variable:
    name: str
    type: TypeInfo


@dataclass(frozen=True)
class Field:
    name: str
    offset: int  # bytes (of the field's first bit); -1 when DWARF gives no constant offset
    type: TypeInfo
    bit_offset: int = -1  # from the start of the record, both DWARF encodings; -1: unknown
    bit_size: int = 0  # bit fields only

    @property
    def bits(self) -> int:
        return self.bit_size or self.type.size * 8


@dataclass(frozen=True)
class Record:
    kind: str  # struct | union | class
    name: str
    size: int
    fields: tuple[Field, ...]
    align: int = 0  # bytes: DW_AT_alignment, else the natural one (1 when packed)
    explicit_align: int = 0  # DW_AT_alignment (aligned(N)), 0 when none


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
    variables: dict[str, Variable] = field(default_factory=dict)  # by ELF symbol name
    record: str | None = None  # the type of plugin.h's phot_abi_record, when the DWARF has it


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


def _base_kind(enc: int) -> str:
    if enc in SIGNED_ENCODINGS:
        return "signed"
    if enc in FLOAT_ENCODINGS:
        return "float"
    if enc == 2:
        return "bool"
    return "unsigned" if enc in (7, 8) else "other"


def _qualify(t: TypeInfo, q: str) -> TypeInfo:
    return replace(t, text=f"{q} {t.text}", canon=f"{q} {t.canon}", unqualified=t)


class _Reader:
    """Describes type DIEs once each (by offset) and records the named types it meets."""

    def __init__(
        self, pointer_size: int, private: Callable[[Any], bool], little_endian: bool = True
    ) -> None:
        self.surface = Surface()
        self.pointer_size = pointer_size
        self.little_endian = little_endian
        self.private = private  # a record defined in a .c file is not part of the ABI
        self.memo: dict[int, TypeInfo] = {}
        self.pending: list[tuple[Any, str]] = []  # records whose fields are still to read
        self.explicit: dict[str, int] = {}  # record -> DW_AT_alignment
        self.budget = MAX_TYPES

    def describe(
        self, die: Any, depth: int = 0, alias: str | None = None, place: str = "?"
    ) -> TypeInfo:
        """`alias`: the typedef naming this type; `place`: where it occurs, which names an
        anonymous type (the same in every build of one source)."""
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
        info = self._describe(die, depth, alias, place)
        if alias is None:
            self.memo[die.offset] = info
        return info

    def _inner(self, die: Any, depth: int, place: str) -> TypeInfo:
        return self.describe(_ref(die, "DW_AT_type"), depth + 1, place=place)

    def _describe(self, die: Any, depth: int, alias: str | None, place: str) -> TypeInfo:
        tag = die.tag
        if tag == "DW_TAG_typedef":
            name = _name(die) or "<anon>"
            target = self.describe(_ref(die, "DW_AT_type"), depth + 1, alias=name, place=name)
            self.surface.typedefs.setdefault(name, target)
            return replace(target, text=name)
        if tag in _QUALIFIERS:
            return _qualify(self._inner(die, depth, place), _QUALIFIERS[tag])
        if tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            t = self._inner(die, depth, place + "*")
            size = _int(_attr(die, "DW_AT_byte_size")) or self.pointer_size
            mark = {"DW_TAG_pointer_type": "*", "DW_TAG_reference_type": "&"}.get(tag, "&&")
            return TypeInfo(_join(t.text, mark), _join(t.canon, mark), size, "pointer", "", t, size)
        if tag == "DW_TAG_base_type":
            kind, size = (
                _base_kind(_int(_attr(die, "DW_AT_encoding"))),
                _int(_attr(die, "DW_AT_byte_size")),
            )
            # the spelling ('long' or 'long int', 'char' or 'signed char') is not ABI
            return TypeInfo(
                _name(die) or "<base>", f"<{kind}{size * 8}>", size, "base", kind, None, size
            )
        if tag in _AGGREGATES:
            return self._aggregate(die, _AGGREGATES[tag], alias, place)
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die, depth, alias, place)
        if tag == "DW_TAG_array_type":
            return self._array(die, self._inner(die, depth, place + "[]"))
        if tag == "DW_TAG_subroutine_type":
            ret = self._inner(die, depth, place + "()")
            params = [
                self.describe(_ref(c, "DW_AT_type"), depth + 1, place=f"{place}(#{i})")
                for i, c in enumerate(_children(die))
                if c.tag == "DW_TAG_formal_parameter"
            ]
            text = f"{ret.text} (" + ", ".join(p.text for p in params) + ")"
            return TypeInfo(text, signature(ret, params), 0, "function", align=1)
        name = _name(die) or tag.removeprefix("DW_TAG_")
        size = _int(_attr(die, "DW_AT_byte_size"))
        return TypeInfo(name, name, size, "other", align=max(1, size))

    def _aggregate(self, die: Any, kind: str, alias: str | None, place: str) -> TypeInfo:
        name = _name(die) or alias or f"<anon {place}>"
        size = _int(_attr(die, "DW_AT_byte_size"))
        declared_only = bool(_attr(die, "DW_AT_declaration"))
        if not declared_only and name not in self.surface.records and not self.private(die):
            # placeholder first: a struct that points to itself ends here
            self.surface.records[name] = Record(kind, name, size, ())
            self.explicit[name] = _int(_attr(die, "DW_AT_alignment"))
            self.pending.append((die, name))
        text = f"{kind} {name}"
        return TypeInfo(text, text, size, kind, tag=name)

    def _enum(self, die: Any, depth: int, alias: str | None, place: str) -> TypeInfo:
        name = _name(die) or alias or f"<anon {place}>"
        size = _int(_attr(die, "DW_AT_byte_size"))
        base = (
            self.describe(_ref(die, "DW_AT_type"), depth + 1)
            if "DW_AT_type" in die.attributes
            else None
        )
        values = tuple(
            (_name(c) or "?", _int(_attr(c, "DW_AT_const_value")))
            for c in _children(die)
            if c.tag == "DW_TAG_enumerator"
        )
        if not _attr(die, "DW_AT_declaration") and name not in self.surface.enums:
            self.surface.enums[name] = Enum(name, size, values)
        # DWARF 4 gives no underlying type: an enum with a negative value is signed
        encoding = (
            base.encoding if base else ("signed" if any(v < 0 for _, v in values) else "unsigned")
        )
        text = f"enum {name}"
        return TypeInfo(text, text, size, "enum", encoding, align=size, tag=name)

    def _array(self, die: Any, elem: TypeInfo) -> TypeInfo:
        dims = []
        for sub in _children(die):
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
        return TypeInfo(
            elem.text + suffix,
            elem.canon + suffix,
            total,
            "array",
            "",
            elem,
            elem.align,
            elem.tag,
        )

    def _bit_offset(self, member: Any, union: bool, storage: int) -> int:
        """Absolute bit offset of a member from its record's start, from either encoding."""
        dbo = _attr(member, "DW_AT_data_bit_offset")  # DWARF 4+ (gcc 11+, DWARF 5)
        if isinstance(dbo, int):
            return dbo
        loc = _attr(member, "DW_AT_data_member_location")
        if not isinstance(loc, int):
            return 0 if union else -1
        old = _attr(member, "DW_AT_bit_offset")  # DWARF <= 4: counted from the unit's MSB
        if not isinstance(old, int):
            return loc * 8
        size = _int(_attr(member, "DW_AT_byte_size")) or storage
        bits = _int(_attr(member, "DW_AT_bit_size"))
        return loc * 8 + (size * 8 - old - bits if self.little_endian else old)

    def _field(self, member: Any, record: str, index: int, union: bool) -> Field:
        label = _name(member)
        t = self.describe(_ref(member, "DW_AT_type"), place=f"{record}::{label or f'#{index}'}")
        bit = self._bit_offset(member, union, t.size)
        return Field(
            label or f"<anon #{index}>",
            bit // 8 if bit >= 0 else -1,
            t,
            bit,
            _int(_attr(member, "DW_AT_bit_size")),
        )

    def drain(self) -> None:
        """Read the fields of every record met so far (and of the records those fields meet),
        then every record's alignment."""
        while self.pending:
            die, name = self.pending.pop()
            union = die.tag == "DW_TAG_union_type"
            members = [m for m in _children(die) if m.tag == "DW_TAG_member"]
            fields = tuple(self._field(m, name, i, union) for i, m in enumerate(members))
            old = self.surface.records[name]
            self.surface.records[name] = replace(old, fields=fields)
        for name in list(self.surface.records):
            self._align(name, set())

    def _align(self, name: str, seen: set[str]) -> int:
        """A record's alignment: its aligned(N) if any, else its members' largest, or 1 when a
        member sits off its natural alignment or the size is not a multiple of it (packed)."""
        rec = self.surface.records[name]
        if rec.align or name in seen:
            return rec.align or 1
        seen.add(name)
        natural = 1
        packed = False
        for f in rec.fields:
            a = self.type_align(f.type, seen)
            natural = max(natural, a)
            if f.bit_size == 0 and f.bit_offset >= 0 and f.bit_offset % (a * 8):
                packed = True
        if rec.size % natural:
            packed = True
        explicit = self.explicit.get(name, 0)
        align = max(explicit, 1 if packed else natural)
        self.surface.records[name] = replace(rec, align=align, explicit_align=explicit)
        return align

    def type_align(self, t: TypeInfo, seen: set[str] | None = None) -> int:
        if t.align:
            return t.align
        if t.tag in self.surface.records:
            return self._align(t.tag, seen if seen is not None else set())
        return max(1, min(t.size, 16))

    def function(self, die: Any, symbol: str, key: str) -> Function:
        decl = _origin(die)
        ret = self.describe(_ref(decl, "DW_AT_type"), place=f"{key}()")
        params, variadic = [], False
        for child in _children(decl):
            if child.tag == "DW_TAG_formal_parameter":
                i = len(params)
                params.append(
                    (
                        _name(child) or f"arg{i + 1}",
                        self.describe(_ref(child, "DW_AT_type"), place=f"{key}(#{i})"),
                    )
                )
            elif child.tag == "DW_TAG_unspecified_parameters":
                variadic = True
        return Function(symbol, ret, tuple(params), variadic)

    def variable(self, die: Any, symbol: str, key: str) -> Variable:
        decl = _origin(die)
        return Variable(symbol, self.describe(_ref(decl, "DW_AT_type"), place=key))


def signature(ret: TypeInfo, params: Iterable[TypeInfo]) -> str:
    """A function type as a caller sees it (top-level qualifiers of values are not ABI)."""
    return f"{ret.bare().canon} (" + ", ".join(p.bare().canon for p in params) + ")"


def _origin(die: Any) -> Any:
    """Out-of-line copies point to the declaration that has the details."""
    for _ in range(8):
        nxt = next(
            (a for a in ("DW_AT_abstract_origin", "DW_AT_specification") if a in die.attributes),
            None,
        )
        if nxt is None:
            break
        die = _ref(die, nxt)
    return die


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


RECORD_VARIABLE = "phot_abi_record"  # plugin.h's static ABI record (see its comment)


def _aliases(elf: Any, exported: dict[int, str]) -> dict[str, str]:
    """Static symbol name -> export name for functions at an export's address (a versioned
    export's DWARF carries its implementation's name, e.g. `.symver impl_v2, f@@NODE`)."""
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None or not hasattr(symtab, "iter_symbols"):
        return {}
    return {
        s.name: exported[s["st_value"]]
        for s in symtab.iter_symbols()
        if s["st_value"] in exported and s.name and s["st_info"]["type"] == "STT_FUNC"
    }


def _function_addresses(elf: Any, names: Iterable[str]) -> dict[int, str]:
    """Address -> name of the exported functions (.debug_aranges covers code, not data)."""
    dynsym = elf.get_section_by_name(".dynsym")
    if dynsym is None:
        return {}
    wanted = set(names)
    return {
        s["st_value"]: s.name
        for s in dynsym.iter_symbols()
        if s.name in wanted and s["st_value"] and s["st_info"]["type"] == "STT_FUNC"
    }


def _units(dwarf: Any, addresses: Iterable[int]) -> tuple[list[Any], bool]:
    """(the compile units holding `addresses` via .debug_aranges, True) or (every unit, False)."""
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
        return [dwarf.get_CU_at(off) for off in sorted(offsets)], True
    return list(_bounded(dwarf.iter_CUs())), False


def _bounded(units: Iterable[Any]) -> Iterable[Any]:
    for n, cu in enumerate(units):
        if n >= MAX_UNITS:
            raise DwarfUnreadable(f"more than {MAX_UNITS} compile units")
        yield cu


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


def read_surface(path: str | Path, exports: Mapping[str, str] | Iterable[str]) -> Surface | None:
    """The ABI surface of `exports` (ELF name -> export key, or names) in the DWARF of `path`;
    None when it has no DWARF. Raises DwarfUnreadable for DWARF that cannot be read,
    PackageError for a broken ELF."""
    p = Path(path)
    keys = dict(exports) if isinstance(exports, Mapping) else {n: n for n in exports}
    elf, fh, _ = open_elf(p)
    try:
        if elf.get_section_by_name(".debug_info") is None:
            return None
        return _unreadable_guard(lambda: _read(elf, keys))
    finally:
        fh.close()


def _read(elf: Any, keys: dict[str, str]) -> Surface:
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
    reader = _Reader(elf.elfclass // 8, _private_check(dwarf), elf.little_endian)
    addresses = _function_addresses(elf, keys)
    units, indexed = _units(dwarf, addresses)
    for cu in units:
        _read_unit(reader, cu, keys, {}, anchor=True)
    if not set(addresses.values()) <= set(reader.surface.functions):
        at = _aliases(elf, addresses)  # versioned exports named after their implementation
        for cu in units:
            _read_unit(reader, cu, keys, at, anchor=False)
    found = set(reader.surface.functions) | set(reader.surface.variables)
    if indexed and found != set(keys):
        # an exported variable (data is not in .debug_aranges), or a function in another unit
        done = {cu.cu_offset for cu in units}
        at = _aliases(elf, addresses)
        for cu in _bounded(dwarf.iter_CUs()):
            if cu.cu_offset not in done:
                _read_unit(reader, cu, keys, at, anchor=False)
    reader.drain()
    return reader.surface


def _read_unit(
    reader: _Reader, cu: Any, keys: dict[str, str], at: dict[str, str], anchor: bool
) -> None:
    s = reader.surface
    for die in _children(cu.get_top_DIE()):
        if die.tag == "DW_TAG_variable":
            _read_variable(reader, die, keys, anchor)
            continue
        if die.tag != "DW_TAG_subprogram" or _attr(die, "DW_AT_declaration"):
            continue
        if "DW_AT_low_pc" not in die.attributes and "DW_AT_ranges" not in die.attributes:
            continue  # an abstract instance; its concrete copy carries the address
        sym = _subprogram_name(die)
        if sym not in keys:  # an alias, e.g. `.symver impl, name@@NODE`: same address
            sym = at.get(sym or "")
        if sym is not None and sym not in s.functions:
            s.functions[sym] = reader.function(die, sym, keys[sym])


def _read_variable(reader: _Reader, die: Any, keys: dict[str, str], anchor: bool) -> None:
    s = reader.surface
    if "DW_AT_location" not in die.attributes and "DW_AT_const_value" not in die.attributes:
        return  # a declaration; the definition refers to it
    sym = _subprogram_name(die)
    if sym in keys and sym not in s.variables and "DW_AT_location" in die.attributes:
        s.variables[sym] = reader.variable(die, sym, keys[sym])
    elif anchor and sym == RECORD_VARIABLE and s.record is None:
        s.record = reader.describe(_ref(_origin(die), "DW_AT_type"), place=sym).bare().tag or "?"


_REF_FORMS = ("DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref",
              "DW_FORM_ref_udata")
_MAX_DEPTH = 64


def _children(die: Any) -> Iterator[Any]:
    """A DIE's children, walked so that hostile DWARF cannot loop: every next DIE must lie after
    the previous one and inside its unit (pyelftools follows a DW_AT_sibling that points back,
    or at itself, for ever)."""
    if not die.has_children:
        return
    cu = die.cu
    end = cu.cu_offset + cu.size
    offset = die.offset + die.size
    while True:
        child = _die_at(cu, offset, end)
        if child.is_null():
            return
        child.set_parent(die)
        yield child
        after = _subtree_end(child, end, 0)
        if after <= offset:
            raise DwarfUnreadable("DWARF siblings that loop")
        offset = after


def _die_at(cu: Any, offset: int, end: int) -> Any:
    if not cu.cu_offset <= offset < end:
        raise DwarfUnreadable("a DWARF entry outside its compile unit")
    return cu._get_cached_DIE(offset)  # noqa: SLF001 - pyelftools' own DIE cache


def _subtree_end(die: Any, end: int, depth: int) -> int:
    """The offset just after `die` and all its descendants."""
    if not die.has_children:
        return die.offset + die.size
    sibling = die.attributes.get("DW_AT_sibling")
    if sibling is not None and sibling.form in _REF_FORMS:
        return sibling.value + die.cu.cu_offset
    if depth > _MAX_DEPTH:
        raise DwarfUnreadable("DWARF entries nest deeper than any C header writes")
    offset = die.offset + die.size
    while True:
        child = _die_at(die.cu, offset, end)
        if child.is_null():
            return offset + child.size
        after = _subtree_end(child, end, depth + 1)
        if after <= offset:
            raise DwarfUnreadable("DWARF siblings that loop")
        offset = after


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
