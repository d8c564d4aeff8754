"""Every page of a dump as numpy columns, in bounded chunks: the bulk form of ``Dump.pages``.

Owns expanding PT_LOADs into one row per page without a Python loop per page or per segment:
VA, PA (``pa``, the address the walker uses, and ``pa_raw``, what the entry says: see
``formats.entryformat``), ``p_flags``, dumped, the segment, the file offset of the data, the
entry (exact from the carried leaf tables when the dump has them, else rebuilt from
``p_paddr``/``p_flags``), why a
page has no data (``hole_reasons``: the extension's hole records, else memattr; one scalar
``Dump.hole_reason`` call per distinct answer, so both paths say the same thing), and which leaf
table holds each page (``LeafTables``). Export reads pages through here (its answer is a record
per page); check and diff read them as runs of alike pages (``pageruns``), whose work does not
grow with the pages a PT_LOAD claims.

Pages are exactly ``Dump.pages``' pages: a PT_LOAD of ``p_memsz`` bytes holds
``ceil(p_memsz / page)`` pages at ``p_vaddr + k * page``, dumped when the whole page lies inside
``p_filesz``. ``page_chunks`` cuts the page sequence into chunks of at most ``chunk_pages``
rows (a huge segment is split across chunks), so memory stays flat for any dump. Nothing here
raises for a dump that opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from formats import entryformat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

DEFAULT_CHUNK_PAGES = 1 << 16
U64 = np.uint64


def within(counts: np.ndarray) -> np.ndarray:
    """``0 .. c - 1`` for each ``c`` of ``counts``, side by side (int64): the index of each
    item inside its group when groups of ``counts`` items are laid end to end."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)


def unpack_p_flags_bulk(flags: np.ndarray, fmt: EntryFormat = entryformat.UAT) -> np.ndarray:
    """``fmt.unpack_p_flags(f, 0)`` for every ``f`` in ``flags``: the entry bits the dump's
    p_flags record (UAT: PTE bits 0-11 from p_flags bits 8-19, bits 52-63 from bits 20-31),
    as uint64, output address zero."""
    return fmt.unpack_attributes(np.asarray(flags).astype(np.uint64))


def ptes_from_segments(fmt: EntryFormat, pa: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """The entries PT_LOAD pages let a reader rebuild: ``p_paddr`` (plus the page offset) in
    the output-address field, the attributes from ``p_flags``."""
    return fmt.encode_output_address(np.asarray(pa, dtype=np.uint64)) | unpack_p_flags_bulk(
        flags, fmt
    )


@dataclass
class PageArrays:
    """One chunk of pages in VA order, as parallel columns (``index`` numbers the pages of the
    whole dump from 0). ``pte_exact`` is False where the entry was rebuilt from the PT_LOAD."""

    index: np.ndarray  # int64
    va: np.ndarray  # uint64
    pa: np.ndarray  # uint64: pa_raw through Dump.pa_mask (the walker's address)
    pa_raw: np.ndarray  # uint64: p_paddr + offset (what the entry says)
    flags: np.ndarray  # uint32, the PT_LOAD's p_flags
    dumped: np.ndarray  # bool
    segment: np.ndarray  # int64, PT_LOAD index in VA order
    file_offset: np.ndarray  # uint64, where the page's data starts (meaningful when dumped)
    pte: np.ndarray  # uint64
    pte_exact: np.ndarray  # bool
    attribute_mask: int = entryformat.UAT.attribute_mask  # the entry bits outside the OA

    def __len__(self) -> int:
        return len(self.va)

    @cached_property
    def memattr(self) -> np.ndarray:
        return entryformat.EntryFormat.memattr(self.pte).astype(np.uint8)


def page_counts(dump: Dump) -> np.ndarray:
    """Pages per PT_LOAD (VA order): ``ceil(p_memsz / page)``, as int64."""
    page = dump.page_size_bytes
    return ((dump.seg_memsz + U64(page - 1)) // U64(page)).astype(np.int64)


class PageIndex:
    """Where each PT_LOAD's pages start in the dump-wide page numbering."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump
        counts = page_counts(dump)
        self.first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.first[1:])
        self.total = int(self.first[-1])

    def chunk(self, start: int, stop: int) -> PageArrays:
        """Pages ``[start, stop)`` of the dump-wide numbering."""
        dump = self.dump
        page = U64(dump.page_size_bytes)
        index = np.arange(start, stop, dtype=np.int64)
        seg = np.searchsorted(self.first, index, side="right") - 1
        k = (index - self.first[seg]).astype(np.uint64)
        off = k * page
        va = dump.seg_va[seg] + off
        pa_raw = dump.seg_pa_raw[seg] + off
        pa = dump.to_pa(pa_raw)
        flags = dump.seg_flags[seg]
        dumped = off + page <= dump.seg_filesz[seg]
        file_offset = dump.seg_offset[seg] + off
        pte = ptes_from_segments(dump.entry_format, pa_raw, flags)
        exact = np.zeros(len(index), dtype=bool)
        dump.guard.check()
        if dump.tables_index is not None:
            exact, leaf_pte, _level = dump.tables_index.leaf_lookup(va)
            pte[exact] = leaf_pte[exact]
        attribute_mask = dump.entry_format.attribute_mask
        return PageArrays(
            index, va, pa, pa_raw, flags, dumped, seg, file_offset, pte, exact, attribute_mask
        )

    def chunks(self, chunk_pages: int = DEFAULT_CHUNK_PAGES) -> Iterator[PageArrays]:
        """Every page, ``chunk_pages`` at a time."""
        for start in range(0, self.total, chunk_pages):
            yield self.chunk(start, min(start + chunk_pages, self.total))


def page_chunks(dump: Dump, chunk_pages: int = DEFAULT_CHUNK_PAGES) -> Iterator[PageArrays]:
    """Every page of ``dump`` in VA order, at most ``chunk_pages`` rows per chunk."""
    return PageIndex(dump).chunks(chunk_pages)


def all_pages(dump: Dump) -> PageArrays:
    """Every page of ``dump`` as one chunk (callers that need them all at once: diff)."""
    index = PageIndex(dump)
    return index.chunk(0, index.total)


def hole_reasons(
    dump: Dump, va: np.ndarray, flags: np.ndarray
) -> tuple[np.ndarray, list[tuple[str, str | None]]]:
    """Why each page at ``va`` (with its PT_LOAD's ``flags``) has no data, as codes into a
    list of ``(reason, detail)``: the same answers as ``Dump.hole_reason``, which is asked
    once per distinct hole record or memattr."""
    va = np.asarray(va, dtype=np.uint64)
    flags = np.asarray(flags)
    if not len(va):
        return np.zeros(0, dtype=np.int64), []
    fmt = dump.entry_format
    memattr = fmt.memattr(unpack_p_flags_bulk(flags, fmt)).astype(np.int64)
    key = -1 - memattr  # negative: no hole record, decided by memattr
    extension = dump.extension
    if extension is not None and len(extension.holes):
        holes = extension.holes
        i = np.searchsorted(holes["va"], va, side="right").astype(np.int64) - 1
        ok = i >= 0
        inside = ok.copy()
        inside[ok] = va[ok] - holes["va"][i[ok]] < holes["size_bytes"][i[ok]]
        key = np.where(inside, i, key)
    _keys, first, codes = np.unique(key, return_index=True, return_inverse=True)
    table = [dump.hole_reason(int(va[f]), int(flags[f])) for f in first.tolist()]
    return codes.reshape(-1).astype(np.int64), table


@dataclass(frozen=True)
class PathStep:
    """One table on the way to a page: its level, PA and the entry index used."""

    level: int
    table_pa: int
    index: int


class LeafTables:
    """The carried tables holding the dumped address space's leaves, and the path to each
    from the TTB: every last-level table, and every block entry (LPAE) as a unit of its own.

    ``of_pages(va)`` gives, per page, the position of its unit in ``paths`` (or -1); a page's
    full path is ``paths[i]`` plus the unit's own step (``level[i]``, ``table_pa[i]``, and the
    VA's index at that level: ``(va >> shift[i]) & index_mask[i]``)."""

    def __init__(self, dump: Dump, context: int | None = None) -> None:
        """``context``: whose leaves (default: the dumped address space's)."""
        index = dump.tables_index
        self.geometry = dump.geometry
        leaf_level = self.geometry.levels[-1]
        self.leaf_level = leaf_level
        self.va_start = np.zeros(0, dtype=np.uint64)
        self.span = np.zeros(0, dtype=np.uint64)
        self.level: list[int] = []
        self.shift: list[int] = []
        self.index_mask: list[int] = []
        self.table_pa: list[int] = []
        self.paths: list[tuple[PathStep, ...]] = []  # the steps above the unit's table
        if index is None:
            return
        nodes = index.nodes  # walking them decides index.dumped_context
        wanted = index.dumped_context if context is None else context
        nodes = [n for n in nodes if n.context == wanted]
        by_pa = {n.pa: n for n in nodes}
        units: list[tuple[int, int, int, int, tuple[PathStep, ...]]] = []
        for node in nodes:
            blocks = index.block_entries(node) if node.level != leaf_level.level else None
            if blocks is not None and not len(blocks):
                continue
            chain = []
            cur = node
            while cur.parent_pa is not None:
                parent = by_pa[cur.parent_pa]
                chain.append(PathStep(parent.level, parent.pa, int(cur.parent_index)))
                cur = parent
            above = tuple(reversed(chain))
            if blocks is None:
                units.append((node.va_start, node.va_size_bytes, node.level, node.pa, above))
                continue
            span = self.geometry.level(node.level).entry_span_bytes
            for i in blocks.tolist():
                units.append((node.va_start + i * span, span, node.level, node.pa, above))
        units.sort(key=lambda unit: unit[0])
        self.va_start = np.array([u[0] for u in units], dtype=np.uint64)
        self.span = np.array([u[1] for u in units], dtype=np.uint64)
        for _va, _span, level, pa, above in units:
            lg = self.geometry.level(level)
            self.level.append(level)
            self.shift.append(lg.va_shift)
            self.index_mask.append(lg.entries - 1)
            self.table_pa.append(pa)
            self.paths.append(above)

    def of_pages(self, va: np.ndarray) -> np.ndarray:
        """Position in ``paths`` of the unit (leaf table or block) holding each VA, -1 where
        none does."""
        if not len(self.va_start):
            return np.full(len(va), -1, dtype=np.int64)
        i = np.searchsorted(self.va_start, va, side="right").astype(np.int64) - 1
        ok = i >= 0
        ok[ok] = va[ok] - self.va_start[i[ok]] < self.span[i[ok]]
        return np.where(ok, i, -1)

    def index_at(self, position: int, va: int) -> int:
        """The entry index ``va`` uses in unit ``position``'s table."""
        return (va >> self.shift[position]) & self.index_mask[position]

    def path(self, position: int, va: int) -> tuple[PathStep, ...]:
        """The whole path to ``va`` through unit ``position``."""
        leaf = PathStep(self.level[position], self.table_pa[position], self.index_at(position, va))
        return (*self.paths[position], leaf)
