"""The facts every check reads, computed once per ``check`` call and on first use: the leaf
columns (every page of the dumped space and the leaves of other carried spaces), which leaves
map normal memory or an address at all, where each PA falls in the memory map, and the table
findings of one pass over the carried tables."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check.findings import NEEDS_TABLES_DRIVER, NEEDS_TABLES_NONE, NO_REGIONS
from dumpview.model.check.permissions import perm_codes
from dumpview.model.check.tables import scan_tables
from dumpview.model.memmap import NO_MEMORY_MAP
from dumpview.model.pagearrays import PageIndex

if TYPE_CHECKING:
    from dumpview.model.check.findings import Anomaly
    from dumpview.model.dump import Dump
    from dumpview.model.extension import Region
    from dumpview.model.tables import TableNode

DUMPED = -1  # context key of the dumped address space in the leaf columns
_U64 = np.uint64


@dataclass
class Leaves:
    """Every leaf checked, sorted by (context key, VA): the dumped space's pages (context key
    ``DUMPED``), then other carried spaces' type-3 leaves."""

    context: np.ndarray  # int64: DUMPED or the context number
    va: np.ndarray  # uint64
    pa: np.ndarray  # uint64: pa_raw through Dump.pa_mask: where the walker goes
    pa_raw: np.ndarray  # uint64: p_paddr + offset (an exact entry's OA where it has stray bits)
    stray: np.ndarray  # uint64: output-address bits at or above the OAS (0: none)
    memattr: np.ndarray  # uint8
    perm: np.ndarray  # uint8, perm_codes
    in_dump: np.ndarray  # bool: a page of the dumped space
    dumped: np.ndarray  # bool: has data (False outside the dumped space)
    flags: np.ndarray  # uint32: the PT_LOAD's p_flags (0 outside the dumped space)

    def __len__(self) -> int:
        return len(self.va)


class Facts:
    """What the checks share, computed on first use."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump
        self.geometry = dump.geometry
        self.fmt = dump.entry_format
        self.page = dump.page_size_bytes
        self.index = dump.tables_index
        self.nodes: tuple[TableNode, ...] = self.index.nodes if self.index is not None else ()
        self.dumped_context = self.index.dumped_context if self.index is not None else None

    def context_of(self, context: int) -> int | None:
        """The Anomaly context of a context key / table context (None: the dumped space)."""
        if context == DUMPED or context == self.dumped_context:
            return None
        return context

    @property
    def tables_missing(self) -> str | None:
        if self.index is not None:
            return None
        return NEEDS_TABLES_DRIVER if self.dump.extension is None else NEEDS_TABLES_NONE

    @property
    def regions(self) -> tuple[Region, ...] | str:
        extension = self.dump.extension
        if extension is None:
            return NO_MEMORY_MAP
        if not extension.regions:
            return NO_REGIONS
        return extension.regions

    @cached_property
    def leaves(self) -> Leaves:
        oas_mask = _U64((1 << self.geometry.oas) - 1)
        pa_mask = _U64(self.dump.pa_mask)
        fmt = self.fmt
        dtypes = (np.int64, np.uint64, np.uint64, np.uint64, np.uint64, np.uint8, np.uint8, bool)
        dtypes += (bool, np.uint32)
        # Columns filled in place, chunk by chunk: no list of parts and no concatenation
        # copy (on the 1M-segment dump that halved the peak of these 40 bytes per page).
        index = PageIndex(self.dump)
        others = self._other_leaves()
        n_others = 0 if others is None else len(others[1])
        columns = [np.empty(index.total + n_others, dtype=t) for t in dtypes]

        def fill(lo: int, hi: int | None, context, va, raw, pte, in_dump, dumped, flags) -> None:
            values = (context, va, raw & pa_mask, raw, raw & ~oas_mask, fmt.memattr(pte))
            values += (perm_codes(pte), in_dump, dumped, flags)
            for column, value in zip(columns, values, strict=True):
                column[lo:hi] = value

        for chunk in index.chunks():
            pte_oa = fmt.output_address(chunk.pte)
            exact_stray = chunk.pte_exact & ((pte_oa & ~oas_mask) != 0)
            raw = np.where(exact_stray, pte_oa, chunk.pa_raw)
            lo, hi = int(chunk.index[0]), int(chunk.index[-1]) + 1
            fill(lo, hi, DUMPED, chunk.va, raw, chunk.pte, True, chunk.dumped, chunk.flags)
        if others is not None:
            context, va, pte = others
            fill(index.total, None, context, va, fmt.output_address(pte), pte, False, False, 0)
        return Leaves(*columns)

    def _other_leaves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(context, VA, entry) of the page and block entries of carried spaces other than
        the dumped one, sorted by (context, VA)."""
        if self.index is None:
            return None
        contexts, vas, ptes = [], [], []
        for node in self.nodes:
            if node.context == self.dumped_context:
                continue
            idx = self.index.leaf_entries(node)  # pages, or blocks at a block level
            lg = self.geometry.level(node.level)
            entries = self.index.entries_at(node.pa)
            vas.append(_U64(node.va_start) + idx.astype(np.uint64) * _U64(lg.entry_span_bytes))
            ptes.append(entries[idx].astype(np.uint64))
            contexts.append(np.full(len(idx), node.context, dtype=np.int64))
        if not vas:
            return None
        context, va, pte = np.concatenate(contexts), np.concatenate(vas), np.concatenate(ptes)
        order = np.lexsort((va, context))
        return context[order], va[order], pte[order]

    @cached_property
    def addressable(self) -> np.ndarray:
        """Per leaf: whether ``pa`` is an address at all (below the OAS; the UAT's always is,
        an LPAE entry with stray bits is not: it is only oa-beyond-oas)."""
        return (self.leaves.pa >> _U64(self.geometry.oas)) == 0

    @cached_property
    def normal(self) -> np.ndarray:
        device = np.array(sorted(self.fmt.device_memattrs), dtype=np.uint8)
        return ~np.isin(self.leaves.memattr, device)

    @cached_property
    def memory_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per leaf, from the memory map: (index of the MMIO window holding the PA or -1,
        index of the memory region holding it or -1 (a reserved region over its RAM bank),
        whether the PA is known to be no memory: in an MMIO window or in no region)."""
        regions = self.regions
        assert not isinstance(regions, str)
        pa = self.leaves.pa
        mmio = np.full(len(pa), -1, dtype=np.int64)
        memory = np.full(len(pa), -1, dtype=np.int64)
        anywhere = np.zeros(len(pa), dtype=bool)
        order = sorted(range(len(regions)), key=lambda i: regions[i].kind != "ram")
        for i in order:
            region = regions[i]
            inside = (pa >= _U64(region.base)) & (pa - _U64(region.base) < _U64(region.size_bytes))
            anywhere |= inside
            if region.kind == "mmio":
                mmio[inside] = i
            elif region.kind in ("ram", "reserved"):
                memory[inside] = i
        return mmio, memory, (mmio >= 0) | ~anywhere

    @cached_property
    def table_findings(self) -> tuple[list[Anomaly], list[Anomaly], list[Anomaly]]:
        """(unexpected-table-entry, empty-table, oa-beyond-oas of upper-level table entries)
        over every walked table."""
        return scan_tables(self)
