"""dumpview's extension to the driver's devcoredump: tables, memory map, holes, scenario.

This module owns the byte layout of the extension (documented in formats/README.md). The
extension lives in two ELF sections that the driver layout does not use, so readelf, pyelftools
and gdb see exactly the same PT_LOADs and notes with or without it:

- ``.dumpview.tables`` (type ``SHT_DUMPVIEW_TABLES``): every page-table page's content, one
  16 KiB page each, page aligned in the file;
- ``.dumpview`` (type ``SHT_DUMPVIEW``): a header with a directory of fixed-size record arrays
  (geometry, address spaces, tables, memory regions, holes, strings, scenario).

Records are fixed-size so a reader can view a million of them as one array; every offset in the
directory is relative to the start of the ``.dumpview`` section. Parsing raises
``construct.ConstructError`` on malformed bytes; the model turns that into a DumpFormatError.
"""

from __future__ import annotations

from construct import (
    Array,
    Const,
    Int8ul,
    Int16ul,
    Int32sl,
    Int32ul,
    Int64ul,
    Padding,
    PascalString,
    Struct,
    this,
)

EXT_MAGIC = b"DUMPVIEW"
EXT_VERSION = 1

# Section types in the SHT_LOUSER..SHT_HIUSER range ("dv" = 0x6476).
SHT_DUMPVIEW = 0x8D56_6401
SHT_DUMPVIEW_TABLES = 0x8D56_6402
SECTION_NAME = ".dumpview"
TABLES_SECTION_NAME = ".dumpview.tables"

# Entry formats ("the extension's entry-format id says which format a dump uses").
ENTRY_FORMAT_UAT = 1
ENTRY_FORMAT_LPAE_4K = 2
ENTRY_FORMAT_LPAE_16K = 3
ENTRY_FORMAT_LPAE_64K = 4
ENTRY_FORMAT_NAMES: dict[int, str] = {
    ENTRY_FORMAT_UAT: "uat",
    ENTRY_FORMAT_LPAE_4K: "lpae-4k",
    ENTRY_FORMAT_LPAE_16K: "lpae-16k",
    ENTRY_FORMAT_LPAE_64K: "lpae-64k",
}

# Directory kinds. A reader skips kinds it does not know.
KIND_GEOMETRY = 1
KIND_SPACES = 2
KIND_TABLES = 3
KIND_REGIONS = 4
KIND_HOLES = 5
KIND_STRINGS = 6
KIND_SCENARIO = 7
KINDS = frozenset(
    {KIND_GEOMETRY, KIND_SPACES, KIND_TABLES, KIND_REGIONS, KIND_HOLES, KIND_STRINGS, KIND_SCENARIO}
)

ExtDirEntry = Struct(
    "kind" / Int32ul,
    "count" / Int32ul,
    "offset" / Int64ul,  # from the start of the .dumpview section
    "size_bytes" / Int64ul,
)

ExtHeaderFixed = Struct(
    "magic" / Const(EXT_MAGIC),
    "version" / Int16ul,
    "header_size_bytes" / Int16ul,  # fixed part: 16
    "directory_count" / Int32ul,
)
# The whole header. Readers decode the fixed part, check that ``directory_count`` entries fit
# the section, then view the directory as one array (a hostile count costs nothing).
ExtHeader = Struct(
    *ExtHeaderFixed.subcons,
    "directory" / Array(this.directory_count, ExtDirEntry),
)
EXT_HEADER_FIXED_SIZE = 16
assert ExtHeaderFixed.sizeof() == EXT_HEADER_FIXED_SIZE

# SpaceRecord.flags
SPACE_TTB_OWNED = 1  # the driver allocated the TTB (user VM); else borrowed from firmware

SpaceRecord = Struct(
    "context" / Int32ul,  # TTB slot: 0 = kernel, 1..63 = user (ASID)
    "flags" / Int32ul,
    "ttb_pa" / Int64ul,
    "va_start" / Int64ul,  # the range the walker walked
    "va_size_bytes" / Int64ul,
    "managed_va_start" / Int64ul,  # the range the driver manages (the rest is firmware's)
    "managed_va_size_bytes" / Int64ul,
)

# TableRecord.flags
TABLE_IS_TTB = 1
TABLE_FIRMWARE = 2  # in a VA range the driver does not manage

TableRecord = Struct(
    "level" / Int8ul,  # ARM lookup level (formats/geometry.py): UAT L1 = TTB .. L3 = leaf
    "flags" / Int8ul,
    Padding(2),
    "context" / Int32ul,
    "pa" / Int64ul,
    "va_start" / Int64ul,
    "va_size_bytes" / Int64ul,
    "file_offset" / Int64ul,  # where its 16 KiB content sits in the file (page aligned)
)

REGION_RAM = 1
REGION_RESERVED = 2
REGION_MMIO = 3
REGION_KIND_NAMES = {REGION_RAM: "ram", REGION_RESERVED: "reserved", REGION_MMIO: "mmio"}
REGION_NO_MAP = 1
REGION_REUSABLE = 2

RegionRecord = Struct(
    "kind" / Int8ul,
    "flags" / Int8ul,
    Padding(2),
    "name_offset" / Int32ul,  # into the strings blob, NUL terminated
    "base" / Int64ul,
    "size_bytes" / Int64ul,
)

# HoleRecord: a run of VAs whose pages carry no data, and why.
REASON_DEVICE_MEMORY = 1  # memattr not cached/uncached: the walker never copies it
REASON_BORROW_REFUSED = 2  # borrow_phys refused the PA: not RAM
REASON_NAMES = {REASON_DEVICE_MEMORY: "device-memory", REASON_BORROW_REFUSED: "borrow-refused"}
DETAIL_UNKNOWN = 0
DETAIL_NO_MAP = 1  # inside a /reserved-memory region with no-map (region_index names it)
DETAIL_MMIO = 2  # inside an MMIO window (region_index names it)
DETAIL_OUTSIDE_MEMORY_MAP = 3  # not declared in the memory map at all
DETAIL_NAMES = {
    DETAIL_UNKNOWN: None,
    DETAIL_NO_MAP: "no-map",
    DETAIL_MMIO: "mmio",
    DETAIL_OUTSIDE_MEMORY_MAP: "outside the memory map",
}

HoleRecord = Struct(
    "va" / Int64ul,
    "size_bytes" / Int64ul,
    "reason" / Int8ul,
    "detail" / Int8ul,
    Padding(2),
    "region_index" / Int32sl,  # into the regions array, -1 when none
)

ScenarioRecord = Struct(
    "seed" / Int64ul,
    "name" / PascalString(Int16ul, "utf8"),
    "knobs_json" / PascalString(Int32ul, "utf8"),
    "generator" / PascalString(Int16ul, "utf8"),
)

assert SpaceRecord.sizeof() == 48
assert TableRecord.sizeof() == 40
assert RegionRecord.sizeof() == 24
assert HoleRecord.sizeof() == 24

RECORDS = {
    KIND_SPACES: SpaceRecord,
    KIND_TABLES: TableRecord,
    KIND_REGIONS: RegionRecord,
    KIND_HOLES: HoleRecord,
}


def string_at(blob: bytes, offset: int) -> str:
    """The NUL-terminated string at ``offset`` of a strings blob; ``ValueError`` if outside."""
    if not 0 <= offset < len(blob):
        raise ValueError(f"string offset {offset:#x} is outside the {len(blob)}-byte blob")
    end = blob.find(b"\0", offset)
    return blob[offset : end if end >= 0 else len(blob)].decode("utf-8", "replace")
