"""Every page of a dump as numpy columns, in bounded chunks: the bulk form of ``Dump.pages``.

Owns expanding PT_LOADs into one row per page without a Python loop per page or per segment:
VA, PA, ``p_flags``, dumped, the segment, the file offset of the data, the entry (exact from the
carried leaf tables when the dump has them, else rebuilt from ``p_paddr``/``p_flags``), why a
page has no data (``hole_reasons``: the extension's hole records, else memattr; one scalar
``Dump.hole_reason`` call per distinct answer, so both paths say the same thing), and which leaf
table holds each page (``LeafTables``). Export, check and diff read pages through here.

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

from dumpview.model.entries import bulk_fields
from formats import uat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

DEFAULT_CHUNK_PAGES = 1 << 16
U64 = np.uint64


def unpack_p_flags_bulk(flags: np.ndarray) -> np.ndarray:
    """``formats.uat.unpack_p_flags(f, 0)`` for every ``f`` in ``flags``: the entry bits a
    driver dump records (PTE bits 0-11 from p_flags bits 8-19, bits 52-63 from bits 20-31),
    as uint64, output address zero."""
    flags = flags.astype(np.uint64)
    mask = U64(uat.PFLAGS_FIELD_MASK)
    low = (flags >> U64(uat.PFLAGS_LOW_POS)) & mask
    high = (flags >> U64(uat.PFLAGS_HIGH_POS)) & mask
    return low | (high << U64(uat.PFLAGS_HIGH_SHIFT))


@dataclass
class PageArrays:
    """One chunk of pages in VA order, as parallel columns (``index`` numbers the pages of the
    whole dump from 0). ``pte_exact`` is False where the entry was rebuilt from the PT_LOAD."""

    index: np.ndarray  # int64
    va: np.ndarray  # uint64
    pa: np.ndarray  # uint64
    flags: np.ndarray  # uint32, the PT_LOAD's p_flags
    dumped: np.ndarray  # bool
    segment: np.ndarray  # int64, PT_LOAD index in VA order
    file_offset: np.ndarray  # uint64, where the page's data starts (meaningful when dumped)
    pte: np.ndarray  # uint64
    pte_exact: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.va)

    @cached_property
    def memattr(self) -> np.ndarray:
        return bulk_fields(self.pte)["memattr"].astype(np.uint8)


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
        self._leaf_va: np.ndarray | None = None
        self._leaf_pte: np.ndarray | None = None
        if dump.tables_index is not None:
            self._leaf_va, self._leaf_pte = dump.tables_index.leaf_map()

    def chunk(self, start: int, stop: int) -> PageArrays:
        """Pages ``[start, stop)`` of the dump-wide numbering."""
        dump = self.dump
        page = U64(dump.page_size_bytes)
        index = np.arange(start, stop, dtype=np.int64)
        seg = np.searchsorted(self.first, index, side="right") - 1
        k = (index - self.first[seg]).astype(np.uint64)
        off = k * page
        va = dump.seg_va[seg] + off
        pa = dump.seg_pa[seg] + off
        flags = dump.seg_flags[seg]
        dumped = off + page <= dump.seg_filesz[seg]
        file_offset = dump.seg_offset[seg] + off
        pte = (pa & U64(uat.OA_MASK_FULL)) | unpack_p_flags_bulk(flags)
        exact = np.zeros(len(index), dtype=bool)
        if self._leaf_va is not None and len(self._leaf_va):
            j = np.searchsorted(self._leaf_va, va)
            found = j < len(self._leaf_va)
            found[found] = self._leaf_va[j[found]] == va[found]
            exact = found
            pte[found] = self._leaf_pte[j[found]]
        return PageArrays(index, va, pa, flags, dumped, seg, file_offset, pte, exact)

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
    memattr = bulk_fields(unpack_p_flags_bulk(flags))["memattr"].astype(np.int64)
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
    """The carried leaf tables of the dumped address space, and the path to each from the TTB.

    ``of_pages(va)`` gives, per page, the position of its leaf table in ``paths`` (or -1); a
    page's full path is ``paths[i]`` plus the leaf table's own step (its PA, the VA's index)."""

    def __init__(self, dump: Dump) -> None:
        index = dump.tables_index
        self.geometry = dump.geometry
        leaf_level = self.geometry.levels[-1]
        self.leaf_level = leaf_level
        self.va_start = np.zeros(0, dtype=np.uint64)
        self.table_pa: list[int] = []
        self.paths: list[tuple[PathStep, ...]] = []  # the steps above the leaf table
        if index is None:
            return
        nodes = [n for n in index.nodes if n.context == index.dumped_context]
        by_pa = {n.pa: n for n in nodes}
        starts = []
        for node in nodes:
            if node.level != leaf_level.level:
                continue
            chain = []
            cur = node
            while cur.parent_pa is not None:
                parent = by_pa[cur.parent_pa]
                chain.append(PathStep(parent.level, parent.pa, int(cur.parent_index)))
                cur = parent
            starts.append(node.va_start)
            self.table_pa.append(node.pa)
            self.paths.append(tuple(reversed(chain)))
        order = np.argsort(np.array(starts, dtype=np.uint64), kind="stable")
        self.va_start = np.array(starts, dtype=np.uint64)[order]
        self.table_pa = [self.table_pa[i] for i in order.tolist()]
        self.paths = [self.paths[i] for i in order.tolist()]

    def of_pages(self, va: np.ndarray) -> np.ndarray:
        """Position in ``paths`` of the leaf table holding each VA, -1 where none does."""
        if not len(self.va_start):
            return np.full(len(va), -1, dtype=np.int64)
        span = U64(self.leaf_level.entry_span_bytes << self.leaf_level.index_bits)
        i = np.searchsorted(self.va_start, va, side="right").astype(np.int64) - 1
        ok = i >= 0
        ok[ok] = va[ok] - self.va_start[i[ok]] < span
        return np.where(ok, i, -1)

    def path(self, position: int, va: int) -> tuple[PathStep, ...]:
        """The whole path to ``va`` through leaf table ``position``."""
        leaf = PathStep(
            self.leaf_level.level, self.table_pa[position], self.leaf_level.index_of(va)
        )
        return (*self.paths[position], leaf)
