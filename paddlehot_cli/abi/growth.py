"""Which structs may grow at the end, read from the plugin itself.

plugin.h declares, per struct, how the runtime handles a caller whose struct is older (smaller):

    enum phot_abi_growth {
      PHOT_GROWS_phot_open_options = PHOT_GROWTH_TAIL,        fields past struct_size: defaults
      PHOT_GROWS_phot_tensor = PHOT_GROWTH_TAIL_STRIDE,       and arrays walked by struct_size
    };

and every object built with plugin.h records that enum in its DWARF (the static
phot_abi_record). This is the one place the gate reads the rule from; a struct it does not name
has a size fixed for callers, so a field appended to it breaks them (their sizeof is a
compile-time constant). A declared growth is compatible only when the size really grew and every
new field lies past the old size: a field placed in former padding leaves sizeof (and so the
caller's struct_size) unchanged, and the plugin would read bytes old callers never set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paddlehot_cli.abi.dwarf_types import Field, Record, Surface

ENUM = "phot_abi_growth"
PREFIX = "PHOT_GROWS_"
GROWTH_STRUCT_SIZE = "struct_size"
# values of plugin.h's enum phot_abi_growth_kind
KINDS = {0: "none", 1: "tail", 2: "tail+stride"}


@dataclass(frozen=True)
class Growth:
    rules: dict[str, str] = field(default_factory=dict)  # struct -> tail | tail+stride
    problems: tuple[str, ...] = ()  # declarations the gate cannot honour, one line each

    def allows(self, struct: str) -> bool:
        return self.rules.get(struct, "none") != "none"

    def judge(self, a: Record, b: Record, new_fields: list[Field]) -> list[tuple[bool, str]]:
        """Size and new fields of struct `a` that became `b` (`new_fields`: those of `b` that
        pair with no field of `a`)."""
        out: list[tuple[bool, str]] = []
        beyond = [f for f in new_fields if f.bit_offset >= a.size * 8]
        for f in new_fields:
            if f not in beyond:
                out.append((True, _inside(a, b, f)))
        if b.size < a.size:
            out.append((True, f"{a.name} size shrank from {a.size} to {b.size} bytes"))
        elif b.size > a.size and not beyond:
            out.append(
                (
                    True,
                    (
                        f"{a.name} size grew from {a.size} to {b.size} bytes with no new "
                        "field (padding or alignment): callers' sizeof and arrays change"
                    ),
                )
            )
        for f in beyond:
            out.append(self._appended(a, f))
        return out

    def _appended(self, a: Record, f: Field) -> tuple[bool, str]:
        where = f"{a.name}.{f.name} appended at offset {f.offset}"
        if not self.allows(a.name):
            return True, (
                f"{where}, but {a.name}'s size is fixed for callers (the plugin's "
                f"{ENUM} has no {PREFIX}{a.name})"
            )
        if not a.fields or a.fields[0].name != GROWTH_STRUCT_SIZE or a.fields[0].offset != 0:
            return (
                True,
                f"{where}: {PREFIX}{a.name} is declared, but {a.name} has no leading struct_size",
            )
        return (
            False,
            f"{where} ({self.rules[a.name]} growth: the runtime takes the caller's struct_size)",
        )


def _inside(a: Record, b: Record, f: Field) -> str:
    overlaps = any(
        o.bit_offset < f.bit_offset + f.bits and f.bit_offset < o.bit_offset + o.bits
        for o in a.fields
        if o.bit_offset >= 0
    )
    if overlaps:
        return f"{a.name}.{f.name} inserted at offset {f.offset}, over existing fields"
    same = " (sizeof unchanged)" if a.size == b.size else ""
    return (
        f"{a.name}.{f.name} added at offset {f.offset}, inside what was padding{same}: old "
        "callers leave those bytes unset and their struct_size already covers them"
    )


def growth_rules(surface: Surface) -> Growth:
    """The growth rules a plugin's DWARF records; values outside KINDS are reported, not used."""
    enum = surface.enums.get(ENUM)
    if enum is None:
        return Growth()
    rules, problems = {}, []
    for name, value in enum.values:
        if not name.startswith(PREFIX):
            problems.append(f"{ENUM}: {name} does not start with {PREFIX}")
        elif value not in KINDS:
            problems.append(f"{ENUM}: {name} = {value} is not a growth kind ({KINDS})")
        else:
            rules[name.removeprefix(PREFIX)] = KINDS[value]
    return Growth(rules, tuple(problems))
