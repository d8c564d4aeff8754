"""Page-table geometry: page size, levels, index bits per level, IAS/OAS.

This module owns the arithmetic that turns a granule and an input-address size into levels, in
one numbering for every entry format: ARM's lookup levels, where the last level is 3. The Apple
UAT (16 KiB pages, 39-bit IAS) therefore walks L1 (the TTB, VA bits 38:36), L2 (35:25) and L3
(24:14, the leaf tables). The driver numbers the same levels 2, 1, 0 (leaf = 0); m1n1 numbers
them 0, 1, 2 from the top.

Also declares the ``GeometryRecord`` byte layout our extension stores. ``Geometry`` raises
``ValueError`` for a geometry it cannot walk (page size 0 or not a power of two, IAS not larger
than the page, more than 4 levels).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from construct import Int8ul, Int16ul, Int64ul, Padding, Struct

ENTRY_SIZE_BYTES = 8
LAST_LEVEL = 3


def field_layout(entry_bits: Struct) -> dict[str, tuple[int, int]]:
    """(lowest bit, width) of every field of a 64-bit entry declared as a BitStruct, most
    significant field first: the (shift, width) pairs bulk decoders use."""
    layout: dict[str, tuple[int, int]] = {}
    bit = ENTRY_SIZE_BYTES * 8
    for sub in entry_bits.subcons:
        width = sub.sizeof()  # in bits inside a BitStruct
        bit -= width
        layout[sub.name] = (bit, width)
    assert bit == 0, "the fields must cover the entry exactly"
    return layout


@dataclass(frozen=True)
class LevelGeometry:
    """One lookup level: which VA bits index its tables and what one entry spans."""

    level: int
    va_shift: int  # lowest VA bit this level indexes
    index_bits: int  # how many VA bits (the top level may use fewer than a full table)

    @property
    def entries(self) -> int:
        """Entries this level's tables use (a top table may use fewer than it holds)."""
        return 1 << self.index_bits

    @property
    def entry_span_bytes(self) -> int:
        """VA bytes one entry of this level covers."""
        return 1 << self.va_shift

    def index_of(self, va: int) -> int:
        """The index of ``va`` in a table of this level."""
        return (va >> self.va_shift) & ((1 << self.index_bits) - 1)


@dataclass(frozen=True)
class Geometry:
    """A page-table geometry. ``va_base`` is the start of the address space the dump walked
    (the upper half for the UAT kernel context); VAs are rebuilt as index bits | (va_base with
    the IAS bits cleared)."""

    page_shift: int
    ias: int
    oas: int
    va_base: int = 0

    def __post_init__(self) -> None:
        if not 9 <= self.page_shift <= 16:
            raise ValueError(f"page shift {self.page_shift} is not a 512 B..64 KiB granule")
        if self.ias <= self.page_shift or self.ias > 52:
            raise ValueError(
                f"input address size {self.ias} does not fit page shift {self.page_shift}"
            )
        if not self.page_shift < self.oas <= 56:
            raise ValueError(f"output address size {self.oas} is out of range")
        if self.level_count > 4:
            raise ValueError(f"{self.level_count} levels: at most 4 are walkable")

    @property
    def page_size_bytes(self) -> int:
        return 1 << self.page_shift

    @property
    def bits_per_level(self) -> int:
        return self.page_shift - 3

    @property
    def entries_per_table(self) -> int:
        return self.page_size_bytes // ENTRY_SIZE_BYTES

    @property
    def level_count(self) -> int:
        return -(-(self.ias - self.page_shift) // self.bits_per_level)

    @property
    def start_level(self) -> int:
        return LAST_LEVEL + 1 - self.level_count

    @cached_property
    def levels(self) -> tuple[LevelGeometry, ...]:
        """Levels from the top table down to the leaf tables."""
        out = []
        for i in range(self.level_count):
            level = self.start_level + i
            va_shift = self.page_shift + (LAST_LEVEL - level) * self.bits_per_level
            index_bits = min(self.bits_per_level, self.ias - va_shift)
            out.append(LevelGeometry(level, va_shift, index_bits))
        return tuple(out)

    def level(self, level: int) -> LevelGeometry:
        """The geometry of lookup level ``level``; ``ValueError`` if this geometry has none."""
        index = level - self.start_level
        if not 0 <= index < self.level_count:
            raise ValueError(f"level {level} is not in L{self.start_level}..L{LAST_LEVEL}")
        return self.levels[index]

    @property
    def ias_mask(self) -> int:
        return (1 << self.ias) - 1

    @property
    def oa_mask(self) -> int:
        """Output-address bits: OAS-wide, page aligned."""
        return ((1 << self.oas) - 1) & ~(self.page_size_bytes - 1)

    def rebuild_va(self, va_bits: int) -> int:
        """A full VA from its in-IAS bits and the space's upper bits."""
        return (va_bits & self.ias_mask) | (self.va_base & ~self.ias_mask)

    def in_space(self, va: int) -> bool:
        """Whether ``va`` has the upper bits of this address space."""
        return (va & ~self.ias_mask) == (self.va_base & ~self.ias_mask)


# The extension's record of a geometry (see formats/README.md).
GeometryRecord = Struct(
    "entry_format" / Int16ul,
    "page_shift" / Int8ul,
    "ias" / Int8ul,
    "oas" / Int8ul,
    "level_count" / Int8ul,
    "start_level" / Int8ul,
    Padding(1),
    "va_base" / Int64ul,
)
assert GeometryRecord.sizeof() == 16
