"""The dump writer: the driver's devcoredump layout, optionally with dumpview's extension.

Owns the file layout decisions on the writing side (what goes where, in which order), built
entirely from the declarations in formats/. It streams: program headers are built in bulk from
arrays, page data is pulled run by run from a callback and written as it comes, so a dump of
many GiB never sits in memory.

Layout (driver, crashdump.rs): ELF header, program headers (PT_NOTE first, then one PT_LOAD
per run), notes, page data from the data start (the end of the notes rounded up to 16 KiB:
``align(note_offset + notes, 16K)``). The PT_NOTE has p_flags R, p_align 1, p_offset and
p_filesz set and everything else 0 (p_memsz 0: the driver sets only those two). A PT_LOAD
with data has the next data offset; one without data has p_offset exactly the data start
(the driver writes 0, then adds the data start to every PT_LOAD). With more than 65,534
program headers, e_phnum is PN_XNUM and a section header 0 at the end of the file carries the
count in sh_info. With the extension, the table pages (16 KiB aligned), the ``.dumpview``
metadata, ``.shstrtab`` and the section header table follow the page data.

The page size is the UAT's 16 KiB unless told otherwise: an LPAE dump uses its granule (4, 16
or 64 KiB) for the data start, ``p_align``, run sizes and the table pages (one granule each,
granule aligned, ``sh_entsize`` = granule); without notes it has no PT_NOTE at all
(``note_segment=False``).

Raises ``ValueError`` when the segments are inconsistent (unsorted or overlapping VAs, sizes not
multiples of the page size); I/O errors propagate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from dumpview.npstruct import dtype_from_struct
from formats import ext
from formats.elf import (
    EHDR_SIZE,
    PF_R,
    PHDR_SIZE,
    PN_XNUM,
    PT_LOAD,
    PT_NOTE,
    SHT_NULL,
    SHT_STRTAB,
    Elf64_Phdr,
    align_up,
    build_core_ehdr,
    build_note,
    build_shdr,
)
from formats.geometry import Geometry, GeometryRecord

PHDR_DTYPE = dtype_from_struct(Elf64_Phdr)
PAGE_ALIGN = 0x4000
WRITE_CHUNK_BYTES = 1 << 20  # runs are pulled from read_data at most this much at a time
DEFAULT_E_ENTRY = 0xFFFF_FF80_0000_0000


@dataclass
class SegmentTable:
    """One row per PT_LOAD run, sorted by VA. ``has_data`` False means p_filesz = 0."""

    va: np.ndarray
    pa: np.ndarray
    size_bytes: np.ndarray
    p_flags: np.ndarray
    has_data: np.ndarray

    def __len__(self) -> int:
        return len(self.va)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int, int, int, bool]]) -> SegmentTable:
        """Build from (va, pa, size_bytes, p_flags, has_data) rows."""
        data = list(rows)
        cols = list(zip(*data, strict=True)) if data else [(), (), (), (), ()]
        return cls(
            va=np.array(cols[0], dtype=np.uint64),
            pa=np.array(cols[1], dtype=np.uint64),
            size_bytes=np.array(cols[2], dtype=np.uint64),
            p_flags=np.array(cols[3], dtype=np.uint32),
            has_data=np.array(cols[4], dtype=bool),
        )


@dataclass
class TableInfo:
    """A page-table page for the extension: where it sits and what it maps."""

    level: int
    pa: int
    va_start: int
    va_size_bytes: int
    context: int = 0
    flags: int = 0


@dataclass
class RegionInfo:
    kind: int  # ext.REGION_*
    name: str
    base: int
    size_bytes: int
    flags: int = 0  # ext.REGION_NO_MAP | ext.REGION_REUSABLE


@dataclass
class HoleInfo:
    va: int
    size_bytes: int
    reason: int  # ext.REASON_*
    detail: int = ext.DETAIL_UNKNOWN
    region_index: int = -1


@dataclass
class SpaceInfo:
    context: int
    ttb_pa: int
    va_start: int
    va_size_bytes: int
    managed_va_start: int
    managed_va_size_bytes: int
    flags: int = 0


@dataclass
class Extension:
    """What dumpview adds to a driver dump."""

    entry_format: int
    geometry: Geometry
    spaces: Sequence[SpaceInfo] = ()
    tables: Sequence[TableInfo] = ()
    regions: Sequence[RegionInfo] = ()
    holes: Sequence[HoleInfo] = ()
    scenario_name: str = ""
    seed: int = 0
    knobs: dict = field(default_factory=dict)
    generator: str = "dumpview"
    version: int = ext.EXT_VERSION


def build_phdrs(
    segments: SegmentTable,
    data_start: int,
    note_offset: int,
    note_size: int,
    page_size: int = PAGE_ALIGN,
    note_segment: bool = True,
) -> tuple[bytes, int]:
    """The program header table (PT_NOTE + one PT_LOAD per run) and the end of page data.
    ``page_size`` is every PT_LOAD's ``p_align`` and the unit of run sizes; without
    ``note_segment`` there is no PT_NOTE (the table is the PT_LOADs alone)."""
    count = len(segments)
    if count:
        va = segments.va
        if np.any(va[1:] < va[:-1] + segments.size_bytes[:-1]):
            raise ValueError("segments are not sorted by VA or they overlap")
        if np.any(segments.size_bytes % page_size) or np.any(segments.size_bytes == 0):
            raise ValueError(f"segment sizes must be non-zero multiples of {page_size // 1024} KiB")
    filesz = np.where(segments.has_data, segments.size_bytes, 0).astype(np.uint64)
    offsets = np.empty(count, dtype=np.uint64)
    if count:
        offsets[0] = 0
        np.cumsum(filesz[:-1], out=offsets[1:])
    offsets[~segments.has_data] = 0  # crashdump.rs: p_offset 0 without data ...
    offsets += np.uint64(data_start)  # ... then every PT_LOAD gets the data start added
    first = 1 if note_segment else 0
    table = np.zeros(count + first, dtype=PHDR_DTYPE)
    if note_segment:  # only p_offset and p_filesz are set: p_memsz stays 0
        table[0] = (PT_NOTE, PF_R, note_offset, 0, 0, note_size, 0, 1)
    rows = table[first:]
    rows["p_type"] = PT_LOAD
    rows["p_flags"] = segments.p_flags
    rows["p_offset"] = offsets
    rows["p_vaddr"] = segments.va
    rows["p_paddr"] = segments.pa
    rows["p_filesz"] = filesz
    rows["p_memsz"] = segments.size_bytes
    rows["p_align"] = page_size
    data_end = data_start + int(filesz.sum()) if count else data_start
    return table.tobytes(), data_end


def _records(struct, dtype_rows: list[dict]) -> bytes:
    dtype = dtype_from_struct(struct)
    array = np.zeros(len(dtype_rows), dtype=dtype)
    for name in dtype.names:
        array[name] = [row[name] for row in dtype_rows]
    return array.tobytes()


def build_extension_blob(extension: Extension, table_offsets: Sequence[int]) -> bytes:
    """The ``.dumpview`` section bytes: header, directory, then each record array."""
    strings = bytearray(b"\0")
    region_rows = []
    for region in extension.regions:
        region_rows.append(
            {
                "kind": region.kind,
                "flags": region.flags,
                "name_offset": len(strings),
                "base": region.base,
                "size_bytes": region.size_bytes,
            }
        )
        strings += region.name.encode() + b"\0"
    g = extension.geometry
    parts: list[tuple[int, int, bytes]] = [
        (
            ext.KIND_GEOMETRY,
            1,
            GeometryRecord.build(
                {
                    "entry_format": extension.entry_format,
                    "page_shift": g.page_shift,
                    "ias": g.ias,
                    "oas": g.oas,
                    "level_count": g.level_count,
                    "start_level": g.start_level,
                    "va_base": g.va_base,
                }
            ),
        ),
        (
            ext.KIND_SPACES,
            len(extension.spaces),
            _records(ext.SpaceRecord, [vars(s) for s in extension.spaces]),
        ),
        (
            ext.KIND_TABLES,
            len(extension.tables),
            _records(
                ext.TableRecord,
                [
                    {**vars(t), "file_offset": off}
                    for t, off in zip(extension.tables, table_offsets, strict=True)
                ],
            ),
        ),
        (ext.KIND_REGIONS, len(region_rows), _records(ext.RegionRecord, region_rows)),
        (
            ext.KIND_HOLES,
            len(extension.holes),
            _records(ext.HoleRecord, [vars(h) for h in extension.holes]),
        ),
        (ext.KIND_STRINGS, 1, bytes(strings)),
        (
            ext.KIND_SCENARIO,
            1,
            ext.ScenarioRecord.build(
                {
                    "seed": extension.seed,
                    "name": extension.scenario_name,
                    "knobs_json": json.dumps(extension.knobs, sort_keys=True),
                    "generator": extension.generator,
                }
            ),
        ),
    ]
    header_size = ext.EXT_HEADER_FIXED_SIZE + len(parts) * ext.ExtDirEntry.sizeof()
    directory = []
    body = bytearray()
    for kind, count, blob in parts:
        offset = align_up(header_size + len(body), 8)
        body += b"\0" * (offset - header_size - len(body))
        directory.append({"kind": kind, "count": count, "offset": offset, "size_bytes": len(blob)})
        body += blob
    header = ext.ExtHeader.build(
        {
            "version": extension.version,
            "header_size_bytes": ext.EXT_HEADER_FIXED_SIZE,
            "directory_count": len(directory),
            "directory": directory,
        }
    )
    return header + bytes(body)


def write_core(
    fp: BinaryIO,
    segments: SegmentTable,
    read_data: Callable[[int, int], bytes],
    notes: Sequence[tuple[str, int, bytes]] = (),
    extension: Extension | None = None,
    read_table: Callable[[int], bytes] | None = None,
    progress: Callable[[int], None] | None = None,
    e_entry: int = DEFAULT_E_ENTRY,
    page_size: int = PAGE_ALIGN,
    note_segment: bool = True,
    data_pa_mask: int = (1 << 64) - 1,
) -> int:
    """Write a whole dump to ``fp`` (positioned at 0); returns the file size in bytes.

    ``read_data(pa, size_bytes)`` supplies the bytes of each run with data, read from where the
    walker borrows them: ``(p_paddr + offset) & data_pa_mask`` (the UAT driver's ``pte & OAS
    mask``; never across a multiple of ``data_pa_mask + 1``), ``read_table(pa)`` the
    ``page_size`` bytes of each extension table page; ``progress(bytes_written)`` is called
    per run. ``page_size`` (the UAT's 16 KiB unless given) is not taken from the extension's
    geometry, which may say anything (hostile test dumps).
    ``note_segment=False`` writes no PT_NOTE (only without notes: readelf -n fails on an empty
    one, not on none).
    """
    if page_size <= 0 or page_size & (page_size - 1):
        raise ValueError(f"page size {page_size:#x} is not a power of two")
    if notes and not note_segment:
        raise ValueError("notes need a PT_NOTE segment")
    phnum = len(segments) + (1 if note_segment else 0)
    note_blob = b"".join(build_note(name, note_type, desc) for name, note_type, desc in notes)
    note_offset = EHDR_SIZE + phnum * PHDR_SIZE
    data_start = align_up(note_offset + len(note_blob), page_size)
    phdrs, data_end = build_phdrs(
        segments, data_start, note_offset, len(note_blob), page_size, note_segment
    )

    # Sections: only for PN_XNUM or the extension.
    tables = list(extension.tables) if extension else []
    tables_offset = align_up(data_end, page_size)
    table_offsets = [tables_offset + i * page_size for i in range(len(tables))]
    sections: list[dict] = []
    tail = b""
    tail_offset = data_end
    if extension is not None or phnum >= PN_XNUM:
        shstrtab = b"\0"
        names: dict[str, int] = {}
        for name in (".shstrtab", ext.TABLES_SECTION_NAME, ext.SECTION_NAME):
            names[name] = len(shstrtab)
            shstrtab += name.encode() + b"\0"
        after_tables = tables_offset + len(tables) * page_size if tables else data_end
        tail_offset = after_tables
        sections.append({"sh_type": SHT_NULL, "sh_info": phnum if phnum >= PN_XNUM else 0})
        if extension is not None:
            blob = build_extension_blob(extension, table_offsets)
            blob_offset = align_up(after_tables, 8)
            shstr_offset = blob_offset + len(blob)
            sections.append(
                {
                    "sh_name": names[".shstrtab"],
                    "sh_type": SHT_STRTAB,
                    "sh_offset": shstr_offset,
                    "sh_size": len(shstrtab),
                    "sh_addralign": 1,
                }
            )
            sections.append(
                {
                    "sh_name": names[ext.TABLES_SECTION_NAME],
                    "sh_type": ext.SHT_DUMPVIEW_TABLES,
                    "sh_offset": tables_offset if tables else after_tables,
                    "sh_size": len(tables) * page_size,
                    "sh_addralign": page_size,
                    "sh_entsize": page_size,
                }
            )
            sections.append(
                {
                    "sh_name": names[ext.SECTION_NAME],
                    "sh_type": ext.SHT_DUMPVIEW,
                    "sh_offset": blob_offset,
                    "sh_size": len(blob),
                    "sh_addralign": 8,
                }
            )
            tail = b"\0" * (blob_offset - after_tables) + blob + shstrtab
        shoff = align_up(tail_offset + len(tail), 8)
        tail += b"\0" * (shoff - tail_offset - len(tail))
        tail += b"".join(build_shdr(**s) for s in sections)
        ehdr = build_core_ehdr(
            phnum=phnum,
            shoff=shoff,
            shnum=len(sections),
            shstrndx=1 if extension is not None else 0,
            entry=e_entry,
        )
    else:
        ehdr = build_core_ehdr(phnum=phnum, entry=e_entry)

    fp.write(ehdr)
    fp.write(phdrs)
    fp.write(note_blob)
    fp.write(b"\0" * (data_start - note_offset - len(note_blob)))
    written = data_start
    has_data = segments.has_data
    for i in np.flatnonzero(has_data).tolist():
        run_pa, run_size = int(segments.pa[i]), int(segments.size_bytes[i])
        off = 0
        while off < run_size:
            source = (run_pa + off) & data_pa_mask
            size = min(WRITE_CHUNK_BYTES, run_size - off, data_pa_mask + 1 - source)
            chunk = read_data(source, size)
            if len(chunk) != size:
                raise ValueError(
                    f"read_data returned {len(chunk)} bytes for {size} at PA {source:#x}"
                )
            fp.write(chunk)
            written += size
            off += size
        if progress is not None:
            progress(written)
    if tables:
        if read_table is None:
            raise ValueError("the extension carries tables but no read_table was given")
        fp.write(b"\0" * (tables_offset - written))
        for table in tables:
            content = read_table(table.pa)
            if len(content) != page_size:
                raise ValueError(
                    f"table at {table.pa:#x} is {len(content)} bytes, not {page_size // 1024} KiB"
                )
            fp.write(content)
        written = tables_offset + len(tables) * page_size
    fp.write(tail)
    return written + len(tail)
