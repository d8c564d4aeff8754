"""Fast VA -> PA: one VA at a time (the PA only) and whole numpy batches.

Owns the lean translation paths scripts and bulk consumers use when they need PAs, not walks:
``Translator.va_to_pa`` (scalar, no objects built) and ``Translator.translate_many`` (numpy,
one gather per level). Both follow exactly the rules of ``translate.translate`` (which keeps
the detailed walk for display): with the extension's tables they read the real entries from the
space's TTB down, bounded by the geometry's level count, stopping at an empty or unexpected
entry, a table the dump does not carry, or a table already visited on the way (a cycle);
without tables (driver dumps) the PT_LOAD covering the VA is the leaf. Tests prove all three
agree. Nothing here raises for an address: an unmapped VA is ``None`` (scalar) or
``mapped == False`` (batch).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from formats import entryformat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

_U64 = struct.Struct("<Q")
NOT_STOPPED = -1


@dataclass(frozen=True)
class BulkTranslation:
    """Per-VA results of ``translate_many`` (parallel arrays, in the order given).

    ``pa`` is 0 where ``mapped`` is False; ``stopped_level`` is the lookup level whose entry
    ended the walk (``NOT_STOPPED`` where mapped); ``dumped`` says whether the dump holds the
    page's bytes (always False for contexts other than the dumped one: they have no pages).
    """

    va: np.ndarray
    pa: np.ndarray
    mapped: np.ndarray
    dumped: np.ndarray
    stopped_level: np.ndarray

    def __len__(self) -> int:
        return len(self.va)


class Translator:
    """Translation state for one dump: the table lookup by PA and the level shifts, built once.

    Construction is cheap (no entries are read); table pages are found through the dump's
    ``TablesIndex``.
    """

    def __init__(self, dump: Dump) -> None:
        self._dump = dump
        geometry = dump.geometry
        self._geometry = geometry
        self._levels = tuple(
            (lg.level, lg.va_shift, (1 << lg.index_bits) - 1) for lg in geometry.levels
        )
        self._upper = geometry.va_base & ~geometry.ias_mask
        self._not_ias = ~geometry.ias_mask & ((1 << 64) - 1)
        self._page_mask = geometry.page_size_bytes - 1
        # Tables and leaves are followed at ``pa``: the OAS-cut address for the UAT (as the
        # driver masks them), the whole output address for LPAE (``EntryFormat.pa_mask``).
        self._oa_mask = dump.pa_mask & ~self._page_mask
        fmt = dump.entry_format
        self._fmt = fmt
        # Per level: the span mask of its block entries, 0 where the level has none.
        self._block_masks = tuple(
            (lg.entry_span_bytes - 1) if lg.level in fmt.block_levels else 0
            for lg in geometry.levels
        )
        # The PA bits an entry can hold, as the walker uses them: p_paddr through pa_mask.
        self._pa_mask = fmt.output_address((1 << 64) - 1) & dump.pa_mask
        self._index = dump.tables_index
        spaces = dump.extension.spaces if dump.extension is not None else ()
        self._walks_tables = self._index is not None and bool(spaces)
        self._ttbs = {s.context: s.ttb_pa for s in spaces}
        self._dumped_context = spaces[0].context if spaces else None
        # Each space's VA half (a user context's lower half, the kernel's upper half).
        self._uppers = {s.context: s.va_start & ~geometry.ias_mask for s in spaces}
        self._segment_columns: tuple | None = None

    # ---- scalar ------------------------------------------------------------------------------

    def va_to_pa(self, va: int, context: int | None = None) -> int | None:
        """The PA ``va`` translates to in ``context`` (None: the dumped space), or None."""
        if not self._walks_tables:
            if not 0 <= va < 1 << 64 or (va & self._not_ias) != self._upper:
                return None
            return self._segment_pa(va)
        space = self._dumped_context if context is None else context
        table_pa = self._ttbs.get(space)
        if table_pa is None or not 0 <= va < 1 << 64 or (va & self._not_ias) != self._uppers[space]:
            return None
        # A guarded read (``FileGuard.enter``/``leave``, inlined: this path is ~3 µs a call).
        guard = self._dump.guard
        operations = guard.operations
        operations.append(None)
        try:
            if guard.changed is not None or not guard.leased:
                guard.check()
            return self._walk_one(va, table_pa)
        finally:
            operations.pop()
            if guard.changed is not None and not operations:
                guard.close()

    def _walk_one(self, va: int, table_pa: int) -> int | None:
        """``va_to_pa`` through the tables, from ``table_pa`` (inside a guarded read)."""
        offset_of = self._index.offset_of
        buffer = self._dump.buffer
        unpack = _U64.unpack_from
        seen: list[int] = []
        last = len(self._levels) - 1
        # The output address is one mask, except with the 64K granule's PA bits 51:48 (a
        # method call per level costs 40% of the scalar walk).
        pa52 = self._fmt.output_address if self._fmt.pa52 else None
        oa_mask = self._oa_mask if pa52 else self._oa_mask & self._fmt.page_oa_mask
        for depth, (_, shift, mask) in enumerate(self._levels):
            offset = offset_of(table_pa)
            if offset is None or table_pa in seen:
                return None
            seen.append(table_pa)
            value = unpack(buffer, offset + ((va >> shift) & mask) * 8)[0]
            entry_type = value & entryformat.TYPE_MASK
            address = (pa52(value) if pa52 else value) & oa_mask
            if depth == last:
                if entry_type != entryformat.TYPE_PAGE:
                    return None
                return address | (va & self._page_mask)
            if entry_type != entryformat.TYPE_TABLE:
                block_mask = self._block_masks[depth]
                if entry_type == entryformat.TYPE_BLOCK and block_mask:
                    return (address & ~block_mask) | (va & block_mask)
                return None
            table_pa = address
        return None  # pragma: no cover - the loop returns at the last level

    def _segment_pa(self, va: int) -> int | None:
        columns = self._segment_columns
        if columns is None:
            dump = self._dump
            # memoryviews: indexing one gives a Python int twice as fast as numpy's scalars.
            columns = (dump.seg_va, memoryview(dump.seg_va), memoryview(dump.seg_memsz))
            columns += (memoryview(dump.seg_pa_raw),)
            self._segment_columns = columns
        seg_va, va_of, memsz_of, pa_of = columns
        i = int(seg_va.searchsorted(va, side="right")) - 1
        if i < 0:
            return None
        offset = va - va_of[i]
        if offset >= memsz_of[i]:
            return None
        pa = (pa_of[i] + (offset & ~self._page_mask)) & self._pa_mask
        return pa | (va & self._page_mask)

    # ---- batch -------------------------------------------------------------------------------

    def translate_many(self, vas: np.ndarray, context: int | None = None) -> BulkTranslation:
        """Translate every VA of ``vas`` (any integer array-like; uint64 after conversion)."""
        va = np.ascontiguousarray(np.asarray(vas, dtype=np.uint64))
        n = len(va)
        pa = np.zeros(n, np.uint64)
        mapped = np.zeros(n, bool)
        stopped = np.full(n, self._levels[0][0], np.int8)
        upper = self._upper
        if self._walks_tables:
            upper = self._uppers.get(self._dumped_context if context is None else context, upper)
        in_space = (va & np.uint64(self._not_ias)) == np.uint64(upper)
        dumped_space = context is None or context == self._dumped_context
        dumped = np.zeros(n, bool)
        page_mask = np.uint64(self._page_mask)
        if dumped_space:
            # The PT_LOAD under each VA: the leaf on driver dumps, the data everywhere.
            live = np.flatnonzero(in_space)
            seg, inside = self._segments_of(va[live])
            hit, seg = live[inside], seg[inside]
            page_off = (va[hit] - self._dump.seg_va[seg]) & ~page_mask
            has_data = page_off + (page_mask + np.uint64(1)) <= self._dump.seg_filesz[seg]
        if not self._walks_tables:
            if dumped_space:
                pa[hit] = ((self._dump.seg_pa_raw[seg] + page_off) & np.uint64(self._pa_mask)) | (
                    va[hit] & page_mask
                )
                mapped[hit] = True
                stopped[hit] = NOT_STOPPED
                dumped[hit] = has_data
            # As the rebuilt walk says: the deepest level whose parent entry's span holds any
            # PT_LOAD is where the walk found an empty entry.
            miss = np.flatnonzero(~mapped & in_space)
            for depth in range(1, len(self._levels)):
                span = 1 << self._levels[depth - 1][1]
                window = va[miss] & ~np.uint64(span - 1)
                found = self._dump.spans_with_segments(window, span)
                stopped[miss[found]] = self._levels[depth][0]
        else:
            ttb = self._ttbs.get(self._dumped_context if context is None else context)
            if ttb is not None:
                with self._dump.guard.reading():
                    self._walk_many(va, ttb, in_space, pa, mapped, stopped)
            if dumped_space:
                dumped[hit] = has_data & mapped[hit]
        return BulkTranslation(va, pa, mapped, dumped, stopped)

    def _segments_of(self, va: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each VA: the PT_LOAD index at or before it, and whether that PT_LOAD covers it.

        Large unsorted batches are searched in sorted order (5-8x faster: the binary searches
        then walk the segment array in cache order) and scattered back."""
        dump = self._dump
        seg_va = dump.seg_va
        if len(va) > 4096 and not bool(np.all(va[1:] >= va[:-1])):
            order = np.argsort(va, kind="stable")
            seg = np.empty(len(va), np.intp)
            seg[order] = np.searchsorted(seg_va, va[order], side="right")
        else:
            seg = np.searchsorted(seg_va, va, side="right").astype(np.intp)
        seg -= 1
        inside = seg >= 0
        safe = np.where(inside, seg, 0)
        if len(seg_va):
            inside &= va - seg_va[safe] < dump.seg_memsz[safe]
        else:
            inside[:] = False
        return safe, inside

    def _walk_many(
        self,
        va: np.ndarray,
        ttb_pa: int,
        in_space: np.ndarray,
        pa: np.ndarray,
        mapped: np.ndarray,
        stopped: np.ndarray,
    ) -> None:
        words = np.frombuffer(self._dump.buffer, np.uint64, count=self._dump.size_bytes // 8)
        live = np.flatnonzero(in_space)
        table = np.full(len(live), ttb_pa, np.uint64)
        seen: list[np.ndarray] = []
        last = len(self._levels) - 1
        for depth, (level, shift, mask) in enumerate(self._levels):
            if not len(live):
                return
            offset = self._index.offsets_of(table)
            carried = offset >= 0
            for earlier in seen:
                carried &= table != earlier
            stopped[live[~carried]] = level
            keep = np.flatnonzero(carried)
            live, table, offset = live[keep], table[keep], offset[keep]
            seen = [earlier[keep] for earlier in seen]
            index = (va[live] >> np.uint64(shift)) & np.uint64(mask)
            value = words[offset // 8 + index.astype(np.int64)]
            entry_type = value & np.uint64(entryformat.TYPE_MASK)
            oa = self._fmt.output_address(value) & np.uint64(self._oa_mask)
            if depth == last:
                leaf = entry_type == entryformat.TYPE_PAGE
                hit = live[leaf]
                pa[hit] = oa[leaf] | (va[hit] & np.uint64(self._page_mask))
                mapped[hit] = True
                stopped[hit] = NOT_STOPPED
                stopped[live[~leaf]] = level
                return
            down = entry_type == entryformat.TYPE_TABLE
            block_mask = self._block_masks[depth]
            if block_mask:
                block = entry_type == entryformat.TYPE_BLOCK
                hit = live[block]
                pa[hit] = (oa[block] & ~np.uint64(block_mask)) | (va[hit] & np.uint64(block_mask))
                mapped[hit] = True
                stopped[hit] = NOT_STOPPED
                stopped[live[~down & ~block]] = level
            else:
                stopped[live[~down]] = level
            seen = [earlier[down] for earlier in seen]
            seen.append(table[down])
            live = live[down]
            table = oa[down]
