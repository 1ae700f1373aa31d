"""The mutation corpus, by class: each case is one real change to a plugin's C ABI, built with
gcc -g from tests/abi_fixtures/plugin.c against a variant of plugin.h (helpers.build_plugin).

Cases beyond plugin.h's own types use EXT: a few more exported functions and types declared at
the end of plugin.h (so they are ABI, not private) and defined in extra.c. ext(**changes) gives
the build arguments of one EXT variant; every EXT case compares two of them.

A case's `abidiff` is libabigail's verdict where it differs from ours; the test computes it live
and docs/abi-check.md explains each difference (agreement_table() writes that table).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

FNS_RENAMED = ("open", "infer", "close", "manifest_json", "last_error")

_EXT_H = """
typedef struct phot_ext_bits {{ uint32_t struct_size; {bits} int32_t after; }} phot_ext_bits;
typedef union phot_ext_value {{ {union} }} phot_ext_value;
typedef struct {pair_attr} phot_ext_pair {{ int64_t lo; int64_t hi; }} phot_ext_pair;
typedef struct {mixed_attr} phot_ext_mixed {{ uint8_t tag; int64_t value; }} phot_ext_mixed;
typedef struct phot_ext_opts {{ uint32_t struct_size; int64_t deadline; int32_t level; {opts}}}
    phot_ext_opts;
typedef struct phot_ext_nested {{ int32_t kind; struct {{ {anon} }} u; }} phot_ext_nested;
typedef enum {{ {anon_enum} }} phot_ext_mode;
extern {var} phot_ext_counter{var_dim};
"""
_EXT_C = """
#define X __attribute__((visibility("default")))
X int32_t phot_ext_bits_fn(const phot_ext_bits *p) {{ return p ? p->after : 0; }}
X int32_t phot_ext_value_fn(phot_ext_value *v) {{ return v ? 1 : 0; }}
X int32_t phot_ext_pair_fn(const phot_ext_pair *p) {{ return p ? (int32_t)p->lo : 0; }}
X int32_t phot_ext_mixed_fn(const phot_ext_mixed *p) {{ return p ? p->tag : 0; }}
X int32_t phot_ext_opts_fn(const phot_ext_opts *p) {{ return p ? p->level : 0; }}
X int32_t phot_ext_nested_fn(const phot_ext_nested *p) {{ return p ? p->kind : 0; }}
X int32_t phot_ext_mode_fn(phot_ext_mode m) {{ return (int32_t)m; }}
X {name_ret} phot_ext_name(void) {{ static char name[] = "ext"; return name; }}
X int32_t phot_ext_fill({fill_param} buf, {count_param} n) {{ return buf && n ? 0 : -1; }}
X {var} phot_ext_counter{var_dim};
X int32_t phot_ext_sym_v10(int32_t x) {{ return x; }}
{symver}
"""
EXT_DEFAULTS = {
    "bits": "uint32_t mode : 3; uint32_t level : 5;",
    "union": "int64_t i; double d;",
    "pair_attr": "",
    "mixed_attr": "",
    "opts": "",
    "anon": "int32_t a; int32_t b;",
    "anon_enum": "PHOT_EXT_FAST = 1, PHOT_EXT_SAFE = 2",
    "var": "int32_t",
    "var_dim": "",
    "name_ret": "const char *",
    "fill_param": "char *",
    "count_param": "int32_t",
    "symver": "",
    "growth": "",
}
EXT_GLOBALS = tuple(
    f"phot_ext_{n}"
    for n in (
        [
            "bits_fn",
            "value_fn",
            "pair_fn",
            "mixed_fn",
            "opts_fn",
            "nested_fn",
            "mode_fn",
            "name",
            "fill",
            "counter",
        ]
    )
)
# phot_ext_sym: one node, or moved to PADDLEHOT_1.1 with the 1.0 version kept as an alias
SYM_PLAIN = '__asm__(".symver phot_ext_sym_v10, phot_ext_sym@@PADDLEHOT_1.0");'
SYM_V11 = "X int32_t phot_ext_sym_v11(int32_t x) { return x + 1; }\n"
SYM_MOVED = (
    SYM_V11 + '__asm__(".symver phot_ext_sym_v10, phot_ext_sym@PADDLEHOT_1.0");\n'
    '__asm__(".symver phot_ext_sym_v11, phot_ext_sym@@PADDLEHOT_1.1");'
)
SYM_MOVED_REORDERED = (  # the same symbols, defined and versioned in the other order
    "X int32_t phot_ext_sym_v11(int32_t x) { return x + 1; }\n"
    '__asm__(".symver phot_ext_sym_v11, phot_ext_sym@@PADDLEHOT_1.1");\n'
    '__asm__(".symver phot_ext_sym_v10, phot_ext_sym@PADDLEHOT_1.0");'
)
SYM_ONLY_V11 = SYM_V11 + '__asm__(".symver phot_ext_sym_v11, phot_ext_sym@@PADDLEHOT_1.1");'
SYM_MAP = "PADDLEHOT_1.1 {\n  global:\n    phot_ext_sym;\n} PADDLEHOT_1.0;\n"
GROWTH_ENUM = "  PHOT_GROWS_phot_tensor = PHOT_GROWTH_TAIL_STRIDE\n"


def ext(**changes: str) -> dict[str, Any]:
    """build_plugin arguments for the EXT variant with `changes` to EXT_DEFAULTS."""
    unknown = set(changes) - set(EXT_DEFAULTS)
    assert not unknown, unknown
    v = {**EXT_DEFAULTS, **changes}
    symver = v["symver"] or SYM_PLAIN
    edits: tuple[tuple[str, str], ...] = ()
    if v["growth"]:  # more structs declared growable in plugin.h's phot_abi_growth
        edits = ((GROWTH_ENUM, GROWTH_ENUM.rstrip("\n") + ",\n" + v["growth"] + "\n"),)
    return {
        "extra_h": _EXT_H.format(**v),
        "extra_c": _EXT_C.format(**{**v, "symver": symver}),
        "extra_globals": EXT_GLOBALS + ("phot_ext_sym",),
        "extra_map": SYM_MAP if "1.1" in symver else "",
        "edits": edits,
    }


@dataclass(frozen=True)
class Case:
    cls: str
    name: str
    old: dict[str, Any]
    new: dict[str, Any]
    ours: str  # none | compatible | breaking
    check: str  # the check id that reports it
    abidiff: str | None = None  # libabigail's verdict when it differs from ours
    why: str = ""  # why ours is right, from C semantics (docs/abi-check.md)
    arches: tuple[str, ...] = field(default=("x86_64", "aarch64"))


def _c(cls, name, old, new, ours, check, abidiff=None, why=""):  # type: ignore[no-untyped-def]
    return Case(cls, name, old, new, ours, check, abidiff, why)


E = ext()
CASES: list[Case] = [
    # -- exports and symbol versions ---------------------------------------------------------
    _c("exports", "export removed", {}, {"defines": ("DROP_LAST_ERROR",)}, "breaking", "PH201"),
    _c(
        "exports",
        "export added",
        {},
        {"defines": ("EXTRA_HELPER",), "extra_globals": ("phot_leaked_helper",)},
        "compatible",
        "PH201",
    ),
    _c(
        "exports",
        "export renamed",
        {},
        {"defines": ("MANIFEST_FN=manifest_json",), "fns": FNS_RENAMED},
        "breaking",
        "PH201",
    ),
    _c("versions", "version node changed", {}, {"node": "PADDLEHOT_2.0"}, "breaking", "PH201"),
    _c(
        "versions",
        "moved to a new node, old kept as non-default alias",
        E,
        ext(symver=SYM_MOVED),
        "compatible",
        "PH201",
    ),
    _c(
        "versions",
        "same versions, symbol table in the other order",
        ext(symver=SYM_MOVED),
        ext(symver=SYM_MOVED_REORDERED),
        "none",
        "PH201",
    ),
    _c(
        "versions",
        "non-default alias dropped",
        ext(symver=SYM_MOVED),
        ext(symver=SYM_ONLY_V11),
        "breaking",
        "PH201",
    ),
    # -- function signatures -----------------------------------------------------------------
    _c(
        "signatures",
        "param narrowed (size_t -> uint32_t)",
        {},
        {"defines": ("N_INPUTS_T=uint32_t",)},
        "breaking",
        "PH204",
    ),
    _c(
        "signatures",
        "param widened (uint32_t -> size_t)",
        {"defines": ("N_INPUTS_T=uint32_t",)},
        {},
        "breaking",
        "PH204",
    ),
    _c(
        "signatures",
        "param signedness (size_t -> ssize_t)",
        {},
        {"defines": ("N_INPUTS_T=ssize_t",)},
        "breaking",
        "PH204",
    ),
    _c("signatures", "param added", {}, {"defines": ("EXTRA_INFER_PARAM",)}, "breaking", "PH204"),
    _c("signatures", "param removed", {"defines": ("EXTRA_INFER_PARAM",)}, {}, "breaking", "PH204"),
    _c(
        "signatures",
        "return type changed",
        {},
        {"defines": ("CLOSE_RET_T=int64_t",)},
        "breaking",
        "PH204",
    ),
    _c(
        "signatures", "param respelled (int32_t -> int)", E, ext(count_param="int"), "none", "PH204"
    ),
    _c(
        "signatures",
        "param value made const (top level)",
        E,
        ext(count_param="const int32_t"),
        "none",
        "PH204",
    ),
    # -- const, each direction ---------------------------------------------------------------
    _c(
        "const",
        "param pointee gained const",
        {},
        {"defines": ("CLOSE_ARG_CONST=const",)},
        "compatible",
        "PH204",
    ),
    _c("const", "param pointee lost const", ext(fill_param="const char *"), E, "breaking", "PH204"),
    _c("const", "returned pointee lost const", E, ext(name_ret="char *"), "compatible", "PH204"),
    _c("const", "returned pointee gained const", ext(name_ret="char *"), E, "breaking", "PH204"),
    # -- struct layout ------------------------------------------------------------------------
    _c("structs", "field inserted", {}, {"header": "insert"}, "breaking", "PH202"),
    _c("structs", "field retyped", {}, {"header": "retype"}, "breaking", "PH202"),
    _c("structs", "field removed", {}, {"header": "remove"}, "breaking", "PH202"),
    _c(
        "structs",
        "field renamed, same place and type",
        E,
        ext(anon="int32_t a; int32_t second;"),
        "compatible",
        "PH202",
    ),
    _c(
        "structs",
        "private struct grew (opaque phot_model)",
        {},
        {"defines": ("PRIVATE_GROWN",)},
        "none",
        "PH202",
    ),
    # -- growth (the appended-field rule) -----------------------------------------------------
    _c(
        "growth",
        "appended to phot_open_options (declared TAIL)",
        {},
        {"header": "append"},
        "compatible",
        "PH202",
    ),
    _c(
        "growth",
        "appended to phot_tensor (declared TAIL_STRIDE)",
        {},
        {
            "edits": (
                (
                    "  uint64_t byte_size;\n} phot_tensor;",
                    "  uint64_t byte_size;\n  uint64_t flags;\n} phot_tensor;",
                ),
            )
        },
        "compatible",
        "PH202",
    ),
    _c(
        "growth",
        "appended to a struct_size struct not declared growable",
        E,
        ext(opts="int64_t budget; "),
        "breaking",
        "PH202",
    ),
    _c(
        "growth",
        "appended to a struct declared growable",
        ext(growth="  PHOT_GROWS_phot_ext_opts = 1"),
        ext(growth="  PHOT_GROWS_phot_ext_opts = 1", opts="int64_t budget; "),
        "compatible",
        "PH202",
    ),
    _c(
        "growth",
        "field added in tail padding (sizeof unchanged)",
        ext(growth="  PHOT_GROWS_phot_ext_opts = 1"),
        ext(growth="  PHOT_GROWS_phot_ext_opts = 1", opts="int32_t flags; "),
        "breaking",
        "PH202",
    ),
    _c(
        "growth",
        "field added in inner padding of phot_tensor",
        {},
        {"edits": (("  int32_t rank;\n", "  int32_t rank;\n  int32_t flags;\n"),)},
        "breaking",
        "PH202",
    ),
    _c(
        "growth",
        "ABI revision raised (PHOT_ABI_MINOR + 1)",
        {},
        {"edits": (("#define PHOT_ABI_MINOR 1", "#define PHOT_ABI_MINOR 2"),)},
        "compatible",
        "PH202",
    ),
    _c(
        "growth",
        "ABI revision lowered (PHOT_ABI_MINOR - 1)",
        {},
        {"edits": (("#define PHOT_ABI_MINOR 1", "#define PHOT_ABI_MINOR 0"),)},
        "breaking",
        "PH202",
    ),
    _c(
        "growth",
        "aligned(64) on phot_open_options (size grew, no field)",
        {},
        {"edits": (("} phot_open_options;", "} __attribute__((aligned(64))) phot_open_options;"),)},
        "breaking",
        "PH202",
    ),
    # -- bit fields ---------------------------------------------------------------------------
    _c(
        "bitfields",
        "bit field widened",
        E,
        ext(bits="uint32_t mode : 4; uint32_t level : 5;"),
        "breaking",
        "PH202",
    ),
    _c(
        "bitfields",
        "bit fields swapped",
        E,
        ext(bits="uint32_t level : 5; uint32_t mode : 3;"),
        "breaking",
        "PH202",
    ),
    _c(
        "bitfields",
        "bit field added in unused bits",
        E,
        ext(bits="uint32_t mode : 3; uint32_t level : 5; uint32_t spare : 2;"),
        "breaking",
        "PH202",
    ),
    _c(
        "bitfields",
        "bit field made signed",
        E,
        ext(bits="int32_t mode : 3; uint32_t level : 5;"),
        "breaking",
        "PH202",
    ),
    _c(
        "bitfields",
        "bit field renamed",
        E,
        ext(bits="uint32_t kind : 3; uint32_t level : 5;"),
        "compatible",
        "PH202",
    ),
    # -- alignment and packing -----------------------------------------------------------------
    _c(
        "alignment",
        "aligned(32) on a 16-byte struct (size grew)",
        E,
        ext(pair_attr="__attribute__((aligned(32)))"),
        "breaking",
        "PH202",
    ),
    _c(
        "alignment",
        "aligned(16) on a 16-byte struct (size kept)",
        E,
        ext(pair_attr="__attribute__((aligned(16)))"),
        "breaking",
        "PH202",
    ),
    _c(
        "alignment",
        "aligned(8) on an 8-aligned struct (no change)",
        E,
        ext(pair_attr="__attribute__((aligned(8)))"),
        "none",
        "PH202",
    ),
    _c("alignment", "packed", E, ext(mixed_attr="__attribute__((packed))"), "breaking", "PH202"),
    # -- unions -------------------------------------------------------------------------------
    _c(
        "unions",
        "same-size member added",
        E,
        ext(union="int64_t i; double d; uint64_t u;"),
        "compatible",
        "PH202",
    ),
    _c(
        "unions",
        "larger member added",
        E,
        ext(union="int64_t i; double d; char s[16];"),
        "breaking",
        "PH202",
    ),
    _c("unions", "member retyped", E, ext(union="int64_t i; float d;"), "breaking", "PH202"),
    _c("unions", "member renamed", E, ext(union="int64_t i; double real;"), "compatible", "PH202"),
    _c("unions", "member removed", E, ext(union="int64_t i;"), "breaking", "PH202"),
    # -- anonymous types ----------------------------------------------------------------------
    _c(
        "anonymous",
        "field of an anonymous struct retyped",
        E,
        ext(anon="int32_t a; int64_t b;"),
        "breaking",
        "PH202",
    ),
    _c(
        "anonymous",
        "field appended to an anonymous struct",
        E,
        ext(anon="int32_t a; int32_t b; int32_t c;"),
        "breaking",
        "PH202",
    ),
    _c(
        "anonymous",
        "anonymous enum value changed",
        E,
        ext(anon_enum="PHOT_EXT_FAST = 1, PHOT_EXT_SAFE = 3"),
        "breaking",
        "PH202",
    ),
    # -- exported variables -------------------------------------------------------------------
    _c(
        "variables",
        "variable retyped (int32_t -> int64_t)",
        E,
        ext(var="int64_t"),
        "breaking",
        "PH204",
    ),
    _c(
        "variables",
        "variable signedness (int32_t -> uint32_t)",
        E,
        ext(var="uint32_t"),
        "breaking",
        "PH204",
    ),
    _c(
        "variables",
        "variable array grew",
        ext(var_dim="[4]"),
        ext(var_dim="[8]"),
        "breaking",
        "PH204",
    ),
    # -- enums, typedefs and the ABI constants -------------------------------------------------
    _c(
        "enums",
        "enum value changed",
        {"header": "enum"},
        {"header": "enum_changed"},
        "breaking",
        "PH202",
    ),
    _c(
        "enums",
        "enum value appended",
        {"header": "enum"},
        {"header": "enum_appended"},
        "compatible",
        "PH202",
    ),
    _c(
        "typedefs",
        "typedef retargeted (int32_t -> int64_t)",
        {},
        {"header": "dtype64"},
        "breaking",
        "PH202",
    ),
    _c(
        "typedefs",
        "typedef retargeted (int32_t -> uint32_t)",
        {},
        {"header": "dtype_unsigned"},
        "breaking",
        "PH202",
    ),
    _c(
        "constants",
        "dtype code changed (#define)",
        {},
        {"edits": (("#define PHOT_DTYPE_FLOAT16 2", "#define PHOT_DTYPE_FLOAT16 9"),)},
        "breaking",
        "PH202",
    ),
    _c(
        "constants",
        "return code changed (#define)",
        {},
        {"edits": (("#define PHOT_E_CLOSED (-8)", "#define PHOT_E_CLOSED (-9)"),)},
        "breaking",
        "PH202",
    ),
    _c(
        "constants",
        "revision-1.0 struct size changed",
        {},
        {"edits": (("PHOT_ABI_TENSOR_SIZE_1_0 = 104", "PHOT_ABI_TENSOR_SIZE_1_0 = 112"),)},
        "breaking",
        "PH202",
    ),
    _c(
        "constants",
        "ABI record gains a constants enum (a later plugin.h)",
        {},
        {
            "edits": (
                (
                    "enum phot_abi_growth_kind {",
                    "enum phot_abi_later { PHOT_ABI_LATER = 1 };\nenum phot_abi_growth_kind {",
                ),
                (
                    "  phot_last_error_fn last_error;\n",
                    "  phot_last_error_fn last_error;\n  enum phot_abi_later later;\n",
                ),
            )
        },
        "none",
        "PH202",
    ),
    _c(
        "constants",
        "function-pointer typedef changed",
        {},
        {
            "edits": (
                (
                    "typedef int32_t (*phot_close_fn)(phot_model *model);",
                    "typedef int64_t (*phot_close_fn)(phot_model *model);",
                ),
            )
        },
        "breaking",
        "PH202",
    ),
]

GROWTH_WHY = (
    "abidiff sees the struct grow; the new plugin's phot_abi_growth declares that its runtime "
    "takes the caller's struct_size for this struct (fields past it take defaults{stride}), the "
    "size grew and every new field lies past the old size, so an old host's smaller struct is "
    "read correctly"
)
CONSTANT_WHY = (
    "the value lives in a #define, which no DWARF records and abidiff cannot see; plugin.h "
    "mirrors it in the ABI record's enums, so a host compiled with the old value and a plugin "
    "compiled with the new one disagree on the meaning of the same number"
)
# where libabigail's abidiff and abi-check differ, and why ours is right (docs/abi-check.md)
EXCEPTIONS: dict[str, tuple[str, str]] = {
    "moved to a new node, old kept as non-default alias": (
        "none",
        (
            "old hosts bind phot_ext_sym@PADDLEHOT_1.0, which is kept; but the plugin now defines "
            "PADDLEHOT_1.1 and new links bind to it, so a host built against it cannot load the "
            "old plugin: an addition, which wants a MINOR bump (abidiff compares the default "
            "version only)"
        ),
    ),
    "param value made const (top level)": (
        "compatible",
        (
            "C11 6.7.6.3p15: a parameter's own qualifiers are not part of the function type, so "
            "the caller's code is identical; abidiff reports it as a harmless change"
        ),
    ),
    "param pointee lost const": (
        "compatible",
        (
            "callers pass pointers to objects they may keep const (string literals in .rodata); "
            "the plugin may now write through it, which faults or corrupts the caller's data. "
            "abidiff filters every qualifier change as harmless"
        ),
    ),
    "returned pointee gained const": (
        "compatible",
        (
            "an old caller may write through the returned pointer, which the plugin now treats as "
            "read-only (it may point into .rodata); the opposite change is the safe one"
        ),
    ),
    "private struct grew (opaque phot_model)": (
        "breaking",
        (
            "abidiff follows phot_model* into the plugin's own struct; plugin.h declares it opaque "
            "(hosts only hold the pointer), and a struct defined in a .c file is no host's ABI"
        ),
    ),
    "ABI revision raised (PHOT_ABI_MINOR + 1)": (
        "none",
        (
            "a #define abidiff cannot see; the ABI record carries it, and a later revision only "
            "appends (each addition is judged on its own), so a raised minor is an addition"
        ),
    ),
    "ABI revision lowered (PHOT_ABI_MINOR - 1)": (
        "none",
        (
            "a #define abidiff cannot see; a plugin of an older revision ignores what hosts "
            "built against the newer header set (1.1's pool_idle_ms: its pools never shrink)"
        ),
    ),
    "appended to phot_open_options (declared TAIL)": (
        "breaking",
        GROWTH_WHY.format(stride=""),
    ),
    "appended to phot_tensor (declared TAIL_STRIDE)": (
        "breaking",
        GROWTH_WHY.format(stride=", and arrays are walked with it as the stride"),
    ),
    "appended to a struct declared growable": ("breaking", GROWTH_WHY.format(stride="")),
    "aligned(16) on a 16-byte struct (size kept)": (
        "none",
        (
            "alignment is part of a C type (_Alignof): old callers place the struct at 8-byte "
            "boundaries (on their stack, in their arrays and structs), while the plugin may now use "
            "16-byte aligned loads on it; the runtime also refuses a struct_size stride that is not "
            "a multiple of the alignment. abidiff compares sizes and offsets only"
        ),
    ),
    "member removed": (
        "compatible",
        (
            "the union's size is unchanged, but an old caller still writes the removed member and "
            "the plugin now reads those bytes as another member: the same break as a struct field "
            "removed. abidiff treats a union change that keeps the size as harmless"
        ),
    ),
    "dtype code changed (#define)": ("none", CONSTANT_WHY),
    "return code changed (#define)": ("none", CONSTANT_WHY),
    "revision-1.0 struct size changed": ("none", CONSTANT_WHY),
    "function-pointer typedef changed": (
        "none",
        (
            "hosts call the exports through plugin.h's phot_<fn>_fn types; a host built with the "
            "old phot_close_fn reads a 32-bit return where the new header says 64. The typedef is "
            "not reachable from an export, so abidiff does not compare it; the ABI record makes "
            "it part of the surface (and PH115 checks each export against it)"
        ),
    ),
}


CASES = [
    replace(c, abidiff=EXCEPTIONS[c.name][0], why=EXCEPTIONS[c.name][1])
    if c.name in EXCEPTIONS
    else c
    for c in CASES
]
assert set(EXCEPTIONS) <= {c.name for c in CASES}


def by_name() -> dict[str, Case]:
    return {c.name: c for c in CASES}


def agreement_table() -> str:
    """The Markdown tables docs/abi-check.md carries: one row per case with both verdicts, then
    one row per exception with the reason."""
    rows = ["| class | case | abi-check | abidiff 2.2 |", "|---|---|---|---|"]
    for c in CASES:
        theirs = f"**{c.abidiff}** (exception)" if c.abidiff else c.ours
        rows.append(f"| {c.cls} | {c.name} | {c.ours} | {theirs} |")
    rows += [
        "",
        "| case | abidiff says | abi-check says | why abi-check is right |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        if c.abidiff:
            rows.append(f"| {c.name} | {c.abidiff} | {c.ours} | {c.why} |")
    return "\n".join(rows) + "\n"
