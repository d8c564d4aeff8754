"""The real page tables a dump with dumpview's extension carries.

Owns locating table pages by physical address, walking them from each address space's TTB
(bounded: cycles, revisits, missing tables and too many levels become warnings, never loops),
and bulk-decoding leaf tables into sorted arrays with numpy: every page entry of the last level,
and every block entry (LPAE) as one run, so looking a page up (``leaf_lookup``) costs the same
whatever span the blocks claim.

Raises ``DumpFormatError`` when a table record points outside the file; everything else a
hostile extension can do is reported in ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.entries import table_entries
from dumpview.model.errors import DumpFormatError
from dumpview.model.pagearrays import within
from formats import entryformat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

# The most block pages ``leaves_of`` lists (a hostile table can hold 512 1 GiB blocks of 4 KiB
# pages: 2**27 pages); the same bound as the dump's own page count. Lookups never expand.
MAX_BLOCK_PAGES = 1 << 25


@dataclass(frozen=True)
class TableNode:
    """A table reached by the walk: its level, PA, the VA span it maps, where it sits."""

    level: int
    pa: int
    va_start: int
    va_size_bytes: int
    file_offset: int
    context: int
    parent_pa: int | None
    parent_index: int | None

    @property
    def va_end(self) -> int:
        return self.va_start + self.va_size_bytes


class TablesIndex:
    """Table pages by PA, and the tree the walk from the TTB(s) finds."""

    def __init__(self, dump: Dump) -> None:
        self._dump = dump
        self.geometry = dump.geometry
        self.entry_format = dump.entry_format
        records = dump.extension.tables
        self.warnings: list[str] = []
        page = self.geometry.page_size_bytes
        offsets = records["file_offset"]
        last_start = dump.size_bytes - page  # the last offset a whole page fits at
        bad = np.flatnonzero(
            (offsets > np.uint64(max(last_start, 0)))  # offset + page would wrap past 2**64
            | (last_start < 0)
            | (offsets % np.uint64(page) != 0)
        )
        if len(bad):
            i = int(bad[0])
            raise DumpFormatError(
                dump.extension.offset,
                f"extension table #{i} (PA {int(records['pa'][i]):#x}) says its content is at "
                f"{int(offsets[i]):#x}, not a {page:,}-byte aligned page inside the file",
            )
        self._order = np.argsort(records["pa"], kind="stable")
        self._pa_sorted = records["pa"][self._order]
        self._records = records

    @cached_property
    def _offset_by_pa(self) -> dict[int, int]:
        """PA -> file offset, one dict lookup per walk step (the scalar walks' hot path)."""
        pas = self._pa_sorted.tolist()
        offsets = self._records["file_offset"][self._order].tolist()
        # Reversed: for a PA recorded twice, the first record wins, as a sorted search finds.
        return dict(zip(reversed(pas), reversed(offsets), strict=True))

    def offset_of(self, pa: int) -> int | None:
        """File offset of the table page at ``pa``, or None when the dump does not carry it."""
        return self._offset_by_pa.get(pa)

    def offsets_of(self, pas: np.ndarray) -> np.ndarray:
        """``offset_of`` for an array of PAs: int64 file offsets, -1 where not carried."""
        pas = np.asarray(pas, dtype=np.uint64)
        j = np.searchsorted(self._pa_sorted, pas)
        carried = j < len(self._pa_sorted)
        carried[carried] = self._pa_sorted[j[carried]] == pas[carried]
        out = np.full(len(pas), -1, dtype=np.int64)
        out[carried] = self._records["file_offset"][self._order[j[carried]]].astype(np.int64)
        return out

    def entries_at(self, pa: int) -> np.ndarray | None:
        """The table page at ``pa`` as u64 entries, or None. Inside a guarded read
        (``dump.guard.reading()``) a view of the map; outside one, a copy (nothing may touch
        the map after a change of the file let a truncation go ahead)."""
        offset = self.offset_of(pa)
        if offset is None:
            return None
        page = self.geometry.page_size_bytes
        guard = self._dump.guard
        if guard.active:
            guard.check(offset)
            return table_entries(self._dump.buffer[offset : offset + page])
        with guard.reading(offset):
            return table_entries(self._dump.buffer[offset : offset + page]).copy()

    @cached_property
    def nodes(self) -> tuple[TableNode, ...]:
        """Every table reachable from the TTBs, parents before children, in VA order. A table
        reached again (a cycle or a shared table) is not walked twice, and one the dump does not
        carry is skipped: each is one warning naming the first entry that points at it and how
        many more do."""
        with self._dump.guard.reading():
            return self._walk()

    def _walk(self) -> tuple[TableNode, ...]:
        geometry = self.geometry
        levels = geometry.levels
        pa_mask = self._dump.pa_mask
        out: list[TableNode] = []
        seen: set[int] = set()
        spaces = self._dump.extension.spaces
        upper = geometry.va_base & ~geometry.ias_mask
        roots = [(s.context, s.ttb_pa, s.va_start & ~geometry.ias_mask) for s in spaces]
        if not roots:
            ttbs = self._records[(self._records["flags"] & 1) != 0]
            roots = [(int(r["context"]), int(r["pa"]), upper) for r in ttbs]
        self.dumped_context = roots[0][0] if roots else 0
        # (problem, PA) -> [level, VA, first referrer, references]: one warning per table, not
        # per entry (a hostile table can point 2048 entries at one table).
        problems: dict[tuple[str, int], list] = {}

        def note(problem: str, pa: int, level: int, va: int, parent_pa, parent_index) -> None:
            where = "a space's TTB" if parent_pa is None else f"PA {parent_pa:#x}[{parent_index}]"
            problems.setdefault((problem, pa), [level, va, where, 0])[3] += 1

        for context, ttb_pa, space_start in roots:
            stack = [(0, ttb_pa, space_start, None, None)]
            while stack:
                depth, pa, va_start, parent_pa, parent_index = stack.pop()
                lg = levels[depth]
                if pa in seen:
                    note("again", pa, lg.level, va_start, parent_pa, parent_index)
                    continue
                offset = self.offset_of(pa)
                if offset is None:
                    note("missing", pa, lg.level, va_start, parent_pa, parent_index)
                    continue
                seen.add(pa)
                span = lg.entry_span_bytes << lg.index_bits
                out.append(
                    TableNode(
                        lg.level, pa, va_start, span, offset, context, parent_pa, parent_index
                    )
                )
                if depth + 1 >= len(levels):
                    continue
                entries = self.entries_at(pa)[: lg.entries]
                types = entries & np.uint64(entryformat.TYPE_MASK)
                children = []
                for index in np.flatnonzero(types == entryformat.TYPE_TABLE):
                    child_pa = self.entry_format.output_address(int(entries[index]))
                    child_pa &= pa_mask  # followed where the walker goes (UAT: the OAS)
                    child_va = va_start + int(index) * lg.entry_span_bytes
                    children.append((depth + 1, child_pa, child_va, pa, int(index)))
                stack.extend(reversed(children))
        for (problem, pa), (level, va, where, count) in problems.items():
            more = f" and {count - 1:,} more entries" if count > 1 else ""
            if problem == "again":
                self.warnings.append(
                    f"table at PA {pa:#x} (L{level}, VA {va:#x}) is referenced again from "
                    f"{where}{more}: cycle or shared table, not walked twice"
                )
            else:
                self.warnings.append(
                    f"L{level} table at PA {pa:#x} (VA {va:#x}), referenced from {where}{more}, "
                    "is not carried in the dump"
                )
        return tuple(out)

    def leaf_lookup(
        self, vas: np.ndarray, context: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each page VA of ``vas`` (uint64, page aligned), in the dumped space (or
        ``context``'s): whether the carried tables map it (a page entry of the last level, or
        inside a block entry), that entry (a block's own entry for each of its pages) and its
        lookup level (uint8).

        Work and memory follow ``len(vas)`` and the number of entries the tables hold, never
        the pages their block entries claim (512 1 GiB blocks of 4 KiB pages are 2**27 pages)."""
        vas = np.asarray(vas, dtype=np.uint64)
        runs = self._leaves if context is None else self.leaf_runs(context)
        page_va, page_pte, page_level, block_va, block_span, block_pte, block_level = runs
        found = np.zeros(len(vas), bool)
        pte = np.zeros(len(vas), np.uint64)
        level = np.zeros(len(vas), np.uint8)
        if len(page_va):
            j = np.searchsorted(page_va, vas)
            hit = j < len(page_va)
            hit[hit] = page_va[j[hit]] == vas[hit]
            found |= hit
            pte[hit] = page_pte[j[hit]]
            level[hit] = page_level[j[hit]]
        if len(block_va):
            rest = np.flatnonzero(~found)
            k = np.searchsorted(block_va, vas[rest], side="right").astype(np.int64) - 1
            ok = k >= 0
            ok[ok] = vas[rest[ok]] - block_va[k[ok]] < block_span[k[ok]]
            hit = rest[ok]
            found[hit] = True
            pte[hit] = block_pte[k[ok]]
            level[hit] = block_level[k[ok]]
        return found, pte, level

    def block_entries(self, node: TableNode) -> np.ndarray:
        """Indices of the block entries of a walked table (empty where its level has none)."""
        if node.level == self.geometry.levels[-1].level:
            return np.zeros(0, np.intp)
        return self.leaf_entries(node)

    def leaf_entries(self, node: TableNode) -> np.ndarray:
        """Indices of the entries of a walked table that map memory themselves: pages at the
        last level, blocks at a block level (empty elsewhere). One entry maps
        ``geometry.level(node.level).entry_span_bytes``."""
        if node.level == self.geometry.levels[-1].level:
            wanted = entryformat.TYPE_PAGE
        elif node.level in self.entry_format.block_levels:
            wanted = entryformat.TYPE_BLOCK
        else:
            return np.zeros(0, np.intp)
        entries = self.entries_at(node.pa)[: self.geometry.level(node.level).entries]
        return np.flatnonzero((entries & np.uint64(entryformat.TYPE_MASK)) == wanted)

    @cached_property
    def _leaves(self) -> tuple[np.ndarray, ...]:
        """The dumped space's leaves (``leaf_runs`` of the dumped context)."""
        _ = self.nodes  # sets dumped_context
        return self.leaf_runs(self.dumped_context)

    def leaf_runs(self, context: int) -> tuple[np.ndarray, ...]:
        """``context``'s leaves, copied out of the map: every page entry of the last level as
        (VA, entry, level) sorted by VA, and every block entry as one run (VA, span, entry,
        level) sorted by VA. Sizes follow the entries the file holds, never the pages blocks
        claim. Empty arrays for a context the dump carries no tables for."""
        cache = self.__dict__.setdefault("_runs_by_context", {})
        if context not in cache:
            with self._dump.guard.reading():
                cache[context] = self._read_leaves(context)
        return cache[context]

    def leaves_of(self, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(VAs, entries, levels) of every page ``context``'s tables map, sorted by VA: each
        page entry of the last level and each page of a block entry (with the block's entry),
        at most ``MAX_BLOCK_PAGES`` block pages (a warning says where the rest begin): for
        listings whose answer is every page (another context's ranges and export). Lookups
        use ``leaf_lookup``, which never expands a block."""
        cache = self.__dict__.setdefault("_leaves_by_context", {})
        if context not in cache:
            cache[context] = self._expand_blocks(context)
        return cache[context]

    def _expand_blocks(self, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        va, pte, level, block_va, block_span, block_pte, block_level = self.leaf_runs(context)
        if not len(block_va):
            return va, pte, level
        page = np.uint64(self.geometry.page_size_bytes)
        counts = (block_span // page).astype(np.int64)
        total = np.cumsum(counts)
        keep = int(np.searchsorted(total, MAX_BLOCK_PAGES, side="right"))
        if keep < len(block_va):
            self.warnings.append(
                f"block entries map more than {MAX_BLOCK_PAGES:,} pages; the blocks from VA "
                f"{int(block_va[keep]):#x} on are not listed as pages"
            )
        counts = counts[:keep]
        starts = np.repeat(block_va[:keep], counts)
        offsets = within(counts).astype(np.uint64)
        all_va = np.concatenate((va, starts + offsets * page))
        all_pte = np.concatenate((pte, np.repeat(block_pte[:keep], counts)))
        all_level = np.concatenate((level, np.repeat(block_level[:keep], counts)))
        order = np.argsort(all_va, kind="stable")
        return all_va[order], all_pte[order], all_level[order]

    def _read_leaves(self, context: int) -> tuple[np.ndarray, ...]:
        last = self.geometry.levels[-1]
        page = self.geometry.page_size_bytes
        vas, ptes, levels = [], [], []
        block_vas, block_spans, block_ptes, block_levels = [], [], [], []
        for node in self.nodes:
            if node.context != context:
                continue
            entries = self.entries_at(node.pa)
            idx = self.leaf_entries(node)
            if not len(idx):
                continue
            if node.level == last.level:
                vas.append(np.uint64(node.va_start) + idx.astype(np.uint64) * np.uint64(page))
                ptes.append(np.array(entries[idx], dtype=np.uint64))
                levels.append(np.full(len(idx), node.level, np.uint8))
                continue
            span = self.geometry.level(node.level).entry_span_bytes
            block_vas.append(np.uint64(node.va_start) + idx.astype(np.uint64) * np.uint64(span))
            block_spans.append(np.full(len(idx), span, np.uint64))
            block_ptes.append(np.array(entries[idx], dtype=np.uint64))
            block_levels.append(np.full(len(idx), node.level, np.uint8))

        def joined(parts: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype)

        va, pte, level = joined(vas, np.uint64), joined(ptes, np.uint64), joined(levels, np.uint8)
        order = np.argsort(va, kind="stable")
        bva = joined(block_vas, np.uint64)
        border = np.argsort(bva, kind="stable")
        return (
            va[order],
            pte[order],
            level[order],
            bva[border],
            joined(block_spans, np.uint64)[border],
            joined(block_ptes, np.uint64)[border],
            joined(block_levels, np.uint8)[border],
        )
