"""The dump as users think of it: segments, pages, notes, the extension, translation, reads.

Owns opening a dump (read-only mmap of the file, or of the anonymous spool a compressed or
streamed input was copied into: ``dumpview.model.source``), indexing it (the ELF container's
header, section headers, PT_LOADs and notes are read and validated by
``dumpview.model.elfcore``; the extension by ``dumpview.model.extension``) and answering
questions lazily: nothing beyond the headers is read until asked. Page contents come back as
``memoryview`` slices of the map (``dumpview.model.spans``); the queries (ranges, search,
check, triage, ...) are typed functions in their own modules that the methods here forward to.

Failure modes: ``open_dump`` raises ``DumpFormatError`` (offset + expectation) for a file that
is not a readable dump; ``read_va``/``read_pa`` raise ``NotDumpedError`` naming the first VA
without data and ``AddressError`` for addresses no segment maps. The file is never written.

A file that changes while it is open (it shrinks, or another process opens it for writing) is
a ``DumpChangedError`` (one line: the file and the offset about to be read) from every query
that would read it, never a SIGBUS: ``dumpview.model.guard`` says how (size checks at every
operation and chunk, and a read lease that holds a truncating process back while an operation
runs) and what is guaranteed where. Every read of the map happens inside
``dump.guard.reading()``; what open copies out of the map (the extension's records, the section
headers, the PT_LOAD columns on first use) is safe to use afterwards.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import construct
import numpy as np

from dumpview.model import spans
from dumpview.model.elfcore import (  # noqa: F401 (Note, MAX_PAGES: re-exported)
    MAX_PAGES,
    PHDR_DTYPE,
    LoadIndex,
    Note,
    parse_header,
    program_header_count,
    read_notes,
    read_sections,
)
from dumpview.model.errors import DumpFormatError
from dumpview.model.extension import Extension
from dumpview.model.guard import FileGuard
from dumpview.model.source import INPUT_FILE, KIND_FILE, Source
from formats import agx, elf, entryformat, ext, uat
from formats.entryformat import EntryFormat
from formats.geometry import Geometry

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TextIO

    from dumpview.model.check import CheckResult
    from dumpview.model.contexts import ContextInfo
    from dumpview.model.crash import Fault
    from dumpview.model.export import ExportStats
    from dumpview.model.ptov import Mapping
    from dumpview.model.ranges import RangeTable
    from dumpview.model.read import ReadRun
    from dumpview.model.search import SearchResult
    from dumpview.model.source import CancelCallback, ProgressCallback
    from dumpview.model.tables import TablesIndex
    from dumpview.model.translate import Translation
    from dumpview.model.triage import Triage
    from dumpview.model.vtop import BulkTranslation, Translator
    from formats import clhe

LAYOUT_AGX = "agx-devcoredump"
# An LPAE (SMMU) dump: the same ELF core layout, its pages the granule's, no AGX note.
LAYOUT_DEVCOREDUMP = "devcoredump"
WARNINGS_SHOWN = 20  # all_warnings lists this many, then counts the rest
PAGES_BATCH = 1 << 12  # pages() looks exact entries up this many pages at a time

REASON_DEVICE = "device-memory"
REASON_BORROW = "borrow-refused"


class PageRecord(NamedTuple):
    """One page (of the geometry's size) of the dumped address space. ``pa`` is the address
    the walker and the hardware use (UAT: the entry's output address cut to the OAS), ``pa_raw``
    what the entry says (``p_paddr``: UAT bits 51:14); they differ only for an entry with bits
    at or above the OAS (see ``formats.entryformat``)."""

    va: int
    pa: int
    pa_raw: int
    pte: int
    pte_exact: bool  # False: rebuilt from p_paddr/p_flags (driver dumps)
    flags: int  # the segment's p_flags
    dumped: bool
    reason: str | None  # None when dumped, else "device-memory" / "borrow-refused"
    reason_detail: str | None
    leaf_level: int | None = None  # the level of the entry mapping it (None: rebuilt)


class Dump:
    """An open dump. Use ``open_dump(path)``; close it (or use ``with``) to unmap the file."""

    def __init__(
        self, path: str | os.PathLike[str], fd: int | None = None, source: Source | None = None
    ) -> None:
        """Map ``path``, or, given ``fd`` (which the dump then owns and closes), map that
        descriptor and keep ``path`` as the name the user gave (``open_dump`` passes the
        spool of a compressed or streamed input this way, with its ``source``)."""
        self.path = os.fspath(path)
        self.warnings: list[str] = []
        # Results computed from the immutable file, kept by the module that computes them
        # (``model.crash``: each crash log's fault walk and Ccdp checks, asked by check,
        # triage, info and export alike).
        self.computed: dict[tuple, Any] = {}
        if fd is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        else:
            self._file = os.fdopen(fd, "rb")
        try:
            # The lease first, then the size: a change after this point is seen.
            self.guard = FileGuard(self.path, self._file.fileno(), 0)
            self.size_bytes = os.fstat(self._file.fileno()).st_size
            self.source = source or Source(self.path, KIND_FILE, INPUT_FILE, self.size_bytes)
            self.guard.size_bytes = self.size_bytes
            if self.size_bytes < elf.EHDR_SIZE:
                raise DumpFormatError(
                    0,
                    f"truncated ELF header: file is {self.size_bytes} bytes, expected at "
                    f"least {elf.EHDR_SIZE}",
                )
            self._mmap = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self.buffer = memoryview(self._mmap)
            with self.guard.reading():
                self._index()
        except BaseException:
            self.close()
            raise

    # ---- life cycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the map and the file. Views handed out before must not be used after."""
        self.__dict__.pop("tables_index", None)
        buffer = self.__dict__.pop("buffer", None)
        if buffer is not None:
            with contextlib.suppress(BufferError):  # numpy views alive: freed when they go
                buffer.release()
        mm = self.__dict__.pop("_mmap", None)
        if mm is not None:
            with contextlib.suppress(BufferError):
                mm.close()
        guard = self.__dict__.get("guard")
        if guard is not None:
            guard.close()
        self._file.close()

    def fileno(self) -> int:
        """The descriptor the dump is read through (outputs compare it: never written)."""
        return self._file.fileno()

    def __enter__(self) -> Dump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- header and program headers ----------------------------------------------------------

    def _index(self) -> None:
        mv = self.buffer
        self.header = parse_header(mv, self.warnings)
        self._sections = read_sections(mv, self.header, self.size_bytes)
        self.phnum = program_header_count(self.header, self._sections, self.warnings)
        h = self.header
        end = h.e_phoff + self.phnum * elf.PHDR_SIZE
        if end > self.size_bytes:
            raise DumpFormatError(
                h.e_phoff,
                f"{self.phnum} program headers of {elf.PHDR_SIZE} bytes end at {end:#x}, "
                f"past the end of the file ({self.size_bytes:#x})",
            )
        self.phdrs = np.frombuffer(mv, dtype=PHDR_DTYPE, count=self.phnum, offset=h.e_phoff)
        self._load_index = LoadIndex(self.phdrs, h.e_phoff)
        self._loads = self._load_index.loads
        self._page_totals = self._load_index.validate(
            self.page_size_bytes, self.size_bytes, self.warnings
        )
        # Decide on the extension now (its header only), so ``warnings`` is complete after open:
        # an unsupported version must warn even when the caller never asks for the extension.
        _ = self.extension

    # PT_LOAD columns in VA order: contiguous copies made on first use (lookups need them).
    def _column(self, name: str) -> np.ndarray:
        """A PT_LOAD column copied out of the map (inside a guarded read)."""
        with self.guard.reading(int(self.header.e_phoff)):
            column = self._loads[name]
            if self._load_index.phdr_index is None:  # a view of the map: copy it out
                return np.array(column, copy=True, order="C")
            return np.ascontiguousarray(column)  # already a copy (sorted or gathered)

    @cached_property
    def seg_va(self) -> np.ndarray:
        return self._column("p_vaddr")

    @cached_property
    def seg_memsz(self) -> np.ndarray:
        return self._column("p_memsz")

    @cached_property
    def seg_filesz(self) -> np.ndarray:
        return self._column("p_filesz")

    @cached_property
    def seg_offset(self) -> np.ndarray:
        return self._column("p_offset")

    @cached_property
    def seg_pa_raw(self) -> np.ndarray:
        """``p_paddr`` of each PT_LOAD: what the entries say (``pa_raw``)."""
        return self._column("p_paddr")

    @cached_property
    def seg_pa(self) -> np.ndarray:
        """Each PT_LOAD's first PA as the walker and the hardware use it (``p_paddr`` through
        ``pa_mask``); page ``k`` of a run is ``(p_paddr + k * page) & pa_mask``, which is
        ``seg_pa + k * page`` unless the run crosses a multiple of 2**OAS."""
        return self.to_pa(self.seg_pa_raw)

    @cached_property
    def pa_mask(self) -> int:
        """The mask taking an output address as an entry says it (``pa_raw``) to the one the
        walker and the hardware use (``pa``): the OAS for the UAT, none for LPAE."""
        return self.entry_format.pa_mask(self.geometry.oas)

    def to_pa(self, pa_raw: np.ndarray) -> np.ndarray:
        """Output addresses as entries say them (uint64) to the walker's (``pa_mask``):
        ``pa_raw`` itself, not a copy, when the mask keeps every bit (LPAE)."""
        mask = self.pa_mask
        return pa_raw if mask == entryformat.U64_MAX else pa_raw & np.uint64(mask)

    @cached_property
    def seg_flags(self) -> np.ndarray:
        return self._column("p_flags")

    def release_header_pages(self) -> None:
        """Copy out the PT_LOAD columns, then let the kernel drop the program headers' pages
        from this process's resident set (a million headers are 56 MiB of mapped file that
        nothing reads again). The map is read-only and shared: a later read of a header
        faults its page back in from the page cache. Never raises for an open dump."""
        for column in ("seg_va", "seg_memsz", "seg_filesz", "seg_offset", "seg_pa", "seg_flags"):
            getattr(self, column)
        start = self.header.e_phoff // mmap.PAGESIZE * mmap.PAGESIZE
        end = self.header.e_phoff + self.phnum * elf.PHDR_SIZE
        if end - start >= 1 << 20 and hasattr(self._mmap, "madvise"):  # worth a system call
            with contextlib.suppress(OSError, ValueError):
                self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)

    # ---- geometry and extension ----------------------------------------------------------------

    @cached_property
    def extension(self) -> Extension | None:
        """dumpview's extension, or None (driver layout, or an extension we cannot read)."""
        for i, sec in enumerate(self._sections):
            if int(sec["sh_type"]) != ext.SHT_DUMPVIEW:
                continue
            offset, size = int(sec["sh_offset"]), int(sec["sh_size"])
            where = int(self.header.e_shoff) + i * elf.SHDR_SIZE
            if offset + size > self.size_bytes:
                raise DumpFormatError(
                    where,
                    f".dumpview section {offset:#x}+{size:#x} runs past "
                    f"the end of the file ({self.size_bytes:#x})",
                )
            if (
                size < ext.EXT_HEADER_FIXED_SIZE
                or bytes(self.buffer[offset : offset + 8]) != ext.EXT_MAGIC
            ):
                raise DumpFormatError(
                    offset, "the .dumpview section does not start with magic 'DUMPVIEW'"
                )
            version = int.from_bytes(self.buffer[offset + 8 : offset + 10], "little")
            if version != ext.EXT_VERSION:
                self.warnings.append(
                    f"dumpview extension version {version} is not supported (this dumpview "
                    f"reads version {ext.EXT_VERSION}); reading the driver layout only"
                )
                return None
            extension = Extension(self, offset, size)
            if extension.geometry_record is not None:
                self._check_geometry(extension.geometry_record, extension.geometry_offset)
            return extension
        return None

    def _check_geometry(self, rec: construct.Container, offset: int) -> None:
        try:
            geometry = Geometry(rec.page_shift, rec.ias, rec.oas, rec.va_base)
        except ValueError as exc:
            raise DumpFormatError(offset, f"extension geometry: {exc}") from None
        fmt = entryformat.ENTRY_FORMATS.get(rec.entry_format)
        if fmt is None:
            known = ", ".join(f"{f.id} {f.name}" for f in entryformat.ENTRY_FORMATS.values())
            raise DumpFormatError(
                offset, f"entry format id {rec.entry_format} is not one dumpview reads ({known})"
            )
        if geometry.page_shift != fmt.page_shift:
            raise DumpFormatError(
                offset,
                f"extension geometry: {fmt.name} entries need {1 << fmt.page_shift >> 10} KiB "
                f"pages, it says {geometry.page_size_bytes:,} bytes",
            )
        if geometry.level_count != rec.level_count:
            raise DumpFormatError(
                offset,
                f"extension says {rec.level_count} levels, the "
                f"geometry gives {geometry.level_count}",
            )

    @cached_property
    def geometry(self) -> Geometry:
        """The page-table geometry: from the extension, else the UAT default (39-bit IAS,
        kernel upper half, OAS 42 unless the chip says t8103/t8112)."""
        extension = self.extension
        if extension is not None and extension.geometry_record is not None:
            r = extension.geometry_record
            return Geometry(r.page_shift, r.ias, r.oas, r.va_base)
        oas = uat.OAS_T600X
        info = self.agx_info
        if info is not None and info.chip_id in (0x8103, 0x8112):
            oas = uat.OAS_T8103
        return uat.uat_geometry(oas=oas)

    @cached_property
    def entry_format(self) -> EntryFormat:
        """The entry format the extension names (checked at open); UAT without one."""
        rec = self.extension.geometry_record if self.extension is not None else None
        return entryformat.ENTRY_FORMATS[rec.entry_format] if rec else entryformat.UAT

    @property
    def page_size_bytes(self) -> int:
        """The entry format's page (its granule): read from the extension alone, so that
        validating the PT_LOADs at open does not parse the notes first."""
        return 1 << self.entry_format.page_shift

    @property
    def layout(self) -> str:
        """ "agx-devcoredump" (the Asahi driver's layout) for UAT dumps, "devcoredump" for the
        same core layout around another entry format."""
        return LAYOUT_AGX if self.entry_format is entryformat.UAT else LAYOUT_DEVCOREDUMP

    @property
    def segment_count(self) -> int:
        return len(self._loads)

    @property
    def table_count(self) -> int:
        return len(self.extension.tables) if self.extension is not None else 0

    # ---- notes -------------------------------------------------------------------------------

    @cached_property
    def notes(self) -> tuple[Note, ...]:
        """Every note of every PT_NOTE segment, bounds checked. ``desc`` is a view of the map:
        read it inside ``guard.reading()`` (or copy it)."""
        with self.guard.reading():
            return read_notes(
                self.buffer, self.phdrs, self.header.e_phoff, self.size_bytes, self.warnings
            )

    @cached_property
    def agx_info(self) -> construct.Container | None:
        """The AGX info note (name "AGX", type 1), or None when absent."""
        for note in self.notes:
            if note.name == agx.AGX_NOTE_NAME and note.note_type == agx.AGX_NOTE_TYPE:
                if len(note.desc) != agx.AGX_INFO_SIZE:
                    raise DumpFormatError(
                        note.offset,
                        f"AGX note descriptor is {len(note.desc)} "
                        f"bytes, expected {agx.AGX_INFO_SIZE}",
                    )
                with self.guard.reading(note.offset):
                    desc = bytes(note.desc)
                return agx.parse_agx_info(desc)
        return None

    @cached_property
    def crashlogs(self) -> tuple[clhe.CrashLog, ...]:
        """Every RTKIT note's crash log (CLHE parsed, or kept raw)."""
        from formats import clhe  # only dumps with a crash log pay for its declarations

        logs = []
        for note in self.notes:
            if note.name == "RTKIT":
                with self.guard.reading(note.offset):
                    desc = bytes(note.desc)
                logs.append(clhe.parse_crashlog(desc))
        return tuple(logs)

    @property
    def crashlog(self) -> clhe.CrashLog | None:
        logs = self.crashlogs
        return logs[0] if logs else None

    def all_warnings(self) -> list[str]:
        """Every warning about the file, each naming where: what open found (``warnings``), the
        table walk's (cycles, shared tables, tables the dump does not carry) and each crash
        log's (broken entries; prefixed with the file offset of its RTKIT note's descriptor).
        At most ``WARNINGS_SHOWN``, then one line counting the rest.

        Reads the tables, the notes, the AGX note and the crash logs to find them, so it raises
        ``DumpFormatError`` when one of those is broken."""
        with self.guard.reading():
            return self._all_warnings()

    def _all_warnings(self) -> list[str]:
        _ = self.notes  # may warn (too many notes) before the list is copied
        out = list(self.warnings)
        _ = self.agx_info
        index = self.tables_index
        if index is not None:
            _ = index.nodes
            out += index.warnings
        rtkit = [note for note in self.notes if note.name == "RTKIT"]
        for note, log in zip(rtkit, self.crashlogs, strict=True):
            out += [f"RTKIT note at {note.offset:#x}: {warning}" for warning in log.warnings]
        if len(out) > WARNINGS_SHOWN:
            hidden = len(out) - WARNINGS_SHOWN
            out = [*out[:WARNINGS_SHOWN], f"{hidden:,} more warnings like these (not listed)"]
        return out

    # ---- pages ---------------------------------------------------------------------------------

    @property
    def page_totals(self) -> tuple[int, int]:
        """(total pages, dumped pages) over every PT_LOAD, counted while validating at open."""
        return self._page_totals

    def segment_at(self, va: int) -> int | None:
        """Index (in VA order) of the PT_LOAD covering ``va``, or None."""
        if not 0 <= va < 1 << 64:
            return None
        i = int(np.searchsorted(self.seg_va, np.uint64(va), side="right")) - 1
        if i >= 0 and va - int(self.seg_va[i]) < int(self.seg_memsz[i]):
            return i
        return None

    def spans_with_segments(self, starts: np.ndarray, span_bytes: int) -> np.ndarray:
        """For each VA window [start, start + span_bytes): does any PT_LOAD overlap it?"""
        starts = np.asarray(starts, dtype=np.uint64)
        out = np.zeros(len(starts), dtype=bool)
        if not len(self.seg_va):
            return out
        last_va = starts + np.uint64(span_bytes - 1)  # inclusive: a window may end at 2^64
        last = np.searchsorted(self.seg_va, last_va, side="right") - 1
        ok = last >= 0
        idx = last[ok]
        memsz = self.seg_memsz[idx]
        # Inclusive last bytes: a PT_LOAD may end exactly at 2**64.
        out[ok] = (memsz != 0) & (self.seg_va[idx] + (memsz - np.uint64(1)) >= starts[ok])
        return out

    def hole_reason(self, va: int, flags: int) -> tuple[str, str | None]:
        """Why a page has no data: the extension's record, else inferred from memattr."""
        extension = self.extension
        if extension is not None and len(extension.holes):
            holes = extension.holes
            i = int(np.searchsorted(holes["va"], np.uint64(va), side="right")) - 1
            if i >= 0 and va - int(holes["va"][i]) < int(holes["size_bytes"][i]):
                row = holes[i]
                reason = ext.REASON_NAMES.get(int(row["reason"]), f"reason-{int(row['reason'])}")
                detail = ext.DETAIL_NAMES.get(int(row["detail"]))
                region_index = int(row["region_index"])
                if 0 <= region_index < len(extension.regions):
                    region = extension.regions[region_index]
                    detail = f"{detail}: {region.name}" if detail else region.name
                return reason, detail
        fmt = self.entry_format
        memattr = fmt.memattr(fmt.unpack_attributes(flags))
        if memattr not in fmt.dumpable_memattrs:
            return REASON_DEVICE, f"memattr {memattr} ({fmt.memattr_names[memattr]})"
        return REASON_BORROW, None

    def pte_from_segment(self, seg: int, va: int) -> int:
        """The entry a driver dump lets us rebuild for ``va`` in segment ``seg``."""
        pa = int(self.seg_pa_raw[seg]) + (va - int(self.seg_va[seg]))
        return self.entry_format.unpack_p_flags(int(self.seg_flags[seg]), pa)

    def pages(self, va_start: int = 0, va_end: int = 1 << 64) -> Iterator[PageRecord]:
        """Every page in VA order (optionally within [va_start, va_end)). The exact entries
        come from the carried tables a batch of pages at a time (``TablesIndex.leaf_lookup``):
        memory follows the pages asked for, not what the tables' block entries claim."""
        page = self.page_size_bytes
        unpack = self.entry_format.unpack_p_flags
        pa_mask = self.pa_mask
        index = self.tables_index
        self.guard.check()
        first = self.segment_at(va_start)
        if first is None:
            first = int(np.searchsorted(self.seg_va, np.uint64(min(va_start, (1 << 64) - 1))))
        for seg in range(first, len(self.seg_va)):
            seg_va = int(self.seg_va[seg])
            if seg_va >= va_end:
                break
            memsz, filesz = int(self.seg_memsz[seg]), int(self.seg_filesz[seg])
            pa0, flags = int(self.seg_pa_raw[seg]), int(self.seg_flags[seg])
            # Start at the first page at or after va_start: a large segment is not walked from
            # its beginning (``page()`` on a 1 GiB segment was O(segment)).
            skip = max(0, va_start - seg_va + page - 1) // page * page
            stop = min(memsz, va_end - seg_va) if va_end > seg_va else 0
            for batch in range(min(skip, memsz), stop, PAGES_BATCH * page):
                offs = range(batch, min(stop, batch + PAGES_BATCH * page), page)
                self.guard.check()
                found = ptes = levels = None
                if index is not None:
                    vas = np.uint64(seg_va) + np.arange(
                        offs.start, offs.stop, page, dtype=np.uint64
                    )
                    found_a, pte_a, level_a = index.leaf_lookup(vas)
                    found, ptes, levels = found_a.tolist(), pte_a.tolist(), level_a.tolist()
                for k, off in enumerate(offs):
                    va = seg_va + off
                    dumped = off + page <= filesz
                    exact = found is not None and found[k]
                    pte = ptes[k] if exact else unpack(flags, pa0 + off)
                    level = levels[k] if exact else None
                    reason, detail = (None, None) if dumped else self.hole_reason(va, flags)
                    pa_raw = pa0 + off
                    yield PageRecord(
                        va,
                        pa_raw & pa_mask,
                        pa_raw,
                        pte,
                        exact,
                        flags,
                        dumped,
                        reason,
                        detail,
                        level,
                    )

    def page(self, va: int) -> PageRecord | None:
        """The page record covering ``va`` or None if no PT_LOAD maps it."""
        va &= ~(self.page_size_bytes - 1)
        for record in self.pages(va, va + self.page_size_bytes):
            return record
        return None

    # ---- reads (``dumpview.model.spans``) --------------------------------------------------------

    def read_va(self, va: int, size_bytes: int) -> memoryview | bytes:
        """``size_bytes`` at ``va``: a memoryview of the map inside one segment, bytes across
        segments. NotDumpedError names the first VA without data; AddressError when unmapped;
        DumpChangedError when the file shrank. The view is valid while the file keeps its
        size: copy it (``bytes(view)``) to keep it past a change of the file."""
        return spans.read_va(self, va, size_bytes)

    def read_va_into(self, va: int, out: bytearray | memoryview) -> int:
        """Copy ``len(out)`` bytes at ``va`` into ``out`` with ``preadv`` (as read(2) does: for
        scripts that stream every dumped byte, about twice as fast as touching the map). Fails
        as ``read_va`` does, before copying anything; returns the bytes copied."""
        return spans.read_va_into(self, va, out)

    @cached_property
    def _pa_order(self) -> np.ndarray:
        return np.argsort(self.seg_pa, kind="stable")

    @cached_property
    def _pa_sorted(self) -> np.ndarray:
        return self.seg_pa[self._pa_order]

    @cached_property
    def max_memsz(self) -> int:
        """The largest PT_LOAD's size (how far below a PA a segment holding it can start)."""
        return int(self.seg_memsz.max()) if len(self.seg_memsz) else 0

    def segments_by_pa(self) -> tuple[np.ndarray, np.ndarray]:
        """(PT_LOAD indices sorted by their first PA, those PAs): for PA lookups."""
        return self._pa_order, self._pa_sorted

    def vas_for_pa(self, pa: int) -> list[int]:
        """Every VA whose PT_LOAD maps ``pa`` (aliases), in VA order. ``pa`` is the address
        the walker uses (``seg_pa``): an entry with bits above the OAS maps its cut address."""
        return spans.vas_for_pa(self, pa)

    def read_pa(self, pa: int, size_bytes: int) -> memoryview | bytes:
        """``size_bytes`` at physical address ``pa``, each piece through a VA that maps it
        (dumped aliases first). A read never runs on into a VA-adjacent segment whose PAs
        differ. NotDumpedError names the first VA without data; AddressError names the first
        PA no PT_LOAD maps."""
        return spans.read_pa(self, pa, size_bytes)

    # ---- tables ------------------------------------------------------------------------------

    @cached_property
    def tables_index(self) -> TablesIndex | None:
        """The real page tables when the extension carries them."""
        from dumpview.model.tables import TablesIndex

        if self.extension is None or not len(self.extension.tables):
            return None
        return TablesIndex(self)

    def translate(self, va: int, context: int | None = None) -> Translation:
        """The walk for ``va`` (in ``context``'s space, default the dumped one): see
        ``dumpview.model.translate``."""
        from dumpview.model.translate import translate

        return translate(self, va, context)

    @cached_property
    def _translator(self) -> Translator:
        from dumpview.model.vtop import Translator

        return Translator(self)

    def va_to_pa(self, va: int, context: int | None = None) -> int | None:
        """The PA ``va`` maps to, or None: the walk's answer without building the walk (a few
        µs; see ``dumpview.model.vtop``)."""
        return self._translator.va_to_pa(va, context)

    def translate_many(
        self, vas: Iterable[int] | np.ndarray, context: int | None = None
    ) -> BulkTranslation:
        """Translate a whole array of VAs with numpy: PAs, mapped, dumped and the level each
        unmapped walk stopped at (see ``dumpview.model.vtop``)."""
        return self._translator.translate_many(vas, context)

    # ---- queries (the scripted surface; each lives in its own module) --------------------------

    def ranges(
        self, va_start: int = 0, va_end: int = 1 << 64, context: int | None = None
    ) -> RangeTable:
        """Coalesced ranges, ptdump style, clipped to [va_start, va_end): see
        ``dumpview.model.ranges``; of another ``context`` than the dumped one, from its tables
        (``dumpview.model.contexts.context_ranges``; ``ContextError`` for one the dump does not
        carry). ``len()`` and ``.row(i)`` give each ``Range``."""
        from dumpview.model.contexts import context_ranges

        return context_ranges(self, va_start, va_end, context)

    def contexts(self) -> list[ContextInfo]:
        """The address spaces the dump carries, the dumped one first (``model.contexts``)."""
        from dumpview.model.contexts import contexts

        return contexts(self)

    def read_runs(self, va: int, size_bytes: int, context: int | None = None) -> list[ReadRun]:
        """``size_bytes`` at ``va`` (in ``context``) as runs of data and marked gaps, never
        raising for a hole (``dumpview.model.read``)."""
        from dumpview.model.read import read_runs

        return read_runs(self, va, size_bytes, context)

    def read_runs_pa(self, pa: int, size_bytes: int) -> list[ReadRun]:
        """``size_bytes`` at physical ``pa`` as runs of data and marked gaps
        (``dumpview.model.read``)."""
        from dumpview.model.read import read_runs_pa

        return read_runs_pa(self, pa, size_bytes)

    def search(
        self,
        pattern: bytes | str,
        kind: str = "hex",
        va_start: int = 0,
        va_end: int = 1 << 64,
        limit: int | None = None,
    ) -> SearchResult:
        """Find ``pattern`` in the dumped data: bytes as given, or text parsed as ``kind``
        ("hex", "string", "u32", "u64"). ValueError for a pattern that does not parse."""
        from dumpview.model.search import DEFAULT_HIT_LIMIT, parse_pattern, search

        if isinstance(pattern, bytes | bytearray):
            needle = bytes(pattern)
        else:
            needle = parse_pattern(pattern, kind)
        return search(self, needle, va_start, va_end, limit or DEFAULT_HIT_LIMIT)

    def check(self, kinds: Iterable[str] | None = None) -> CheckResult:
        """Anomalies of the dump (``dumpview.model.check``); ``kinds`` limits the checks."""
        from dumpview.model.check import check

        return check(self, kinds)

    def fault(self) -> Fault | None:
        """The crash log's fault: FAR, decoded ESR, the FAR's walk and whether that walk shows
        the fault the ESR names (``model.crash.compare_fault``)."""
        from dumpview.model.crash import fault

        return fault(self)

    def triage(self) -> Triage:
        """What most likely happened, a screen of facts each with its address, and the bug's
        signature (``dumpview.model.triage``)."""
        from dumpview.model.triage import triage

        return triage(self)

    def ptov(self, pa: int) -> list[Mapping]:
        """Every VA mapping ``pa`` in the dump's entries (``dumpview.model.ptov``)."""
        from dumpview.model.ptov import ptov

        return ptov(self, pa)

    def export(
        self,
        target: str | os.PathLike[str] | TextIO,
        fmt: str = "jsonl",
        include: Iterable[str] | None = None,
        with_data: bool = False,
        context: int | None = None,
    ) -> ExportStats:
        """Export to ``target`` (a path, written atomically, or a text stream) as "jsonl" or
        "json"; ``include`` picks kinds (default all); ``context`` scopes ranges, pages and
        tables to one address space. Returns ``ExportStats``."""
        from dumpview.model.export import export, export_file

        options = {"fmt": fmt, "include": include, "with_data": with_data, "context": context}
        if hasattr(target, "write"):
            return export(self, target, **options)
        return export_file(self, target, **options)


def open_dump(
    path: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> Dump:
    """Open a dump read-only: a file, a compressed file (zstd, xz, gzip, bzip2), ``-`` for
    standard input, a FIFO, a device or a sysfs file (see ``dumpview.model.source``, which
    also says what ``progress`` and ``cancel`` get). Raises DumpFormatError (offset +
    expectation; the compressed offset for a broken compressed stream), InputError,
    OpenCancelled or OSError."""
    from dumpview.model.source import open_input

    fd, source = open_input(path, progress, cancel)
    return Dump(path, fd, source)
