"""The facts every check reads, computed once per ``check`` call and on first use: the leaf
columns (every page of the dumped space and the leaves of other carried spaces), which leaves
map normal memory or an address at all, where each PA falls in the memory map, and the table
findings of one pass over the carried tables."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check.findings import (
    NEEDS_TABLES_DRIVER,
    NEEDS_TABLES_NONE,
    NO_MANAGED_RANGE,
    NO_REGIONS,
)
from dumpview.model.check.permissions import perm_codes
from dumpview.model.check.tables import scan_tables
from dumpview.model.memmap import NO_MEMORY_MAP
from dumpview.model.pagearrays import within
from dumpview.model.pageruns import PageRuns, gather, run_chunks
from formats import uat

if TYPE_CHECKING:
    from dumpview.model.check.findings import Anomaly
    from dumpview.model.dump import Dump
    from dumpview.model.extension import Region, Space
    from dumpview.model.tables import TableNode

DUMPED = -1  # context key of the dumped address space in the leaf columns
_U64 = np.uint64


@dataclass
class Leaves:
    """Every leaf checked, as runs of alike pages sorted by (context, VA): the dumped space's
    pages (``pageruns``: a run per PT_LOAD, or per leaf entry where the dump carries tables,
    cut further where a memory region, a hole record or a managed range begins or ends), then
    other carried spaces' leaves (one row each). Page ``k`` of a row is at ``va + k * page``
    and, when ``linear``, ``pa_raw + k * page`` (else at ``pa_raw`` like the first: a block
    entry whose output address has bits above the OAS, as the walker reads it for each page);
    everything else is the same for every page of a row."""

    context: np.ndarray  # int32: index into Facts.context_keys (0: the dumped space)
    va: np.ndarray  # uint64: the first page's
    pages: np.ndarray  # uint32: pages in the row (1 outside the dumped space)
    pa_raw: np.ndarray  # uint64: p_paddr + offset (an exact entry's OA where it has stray bits)
    linear: np.ndarray  # bool: pa_raw advances by a page per page
    memattr: np.ndarray  # uint8
    perm: np.ndarray  # uint8, perm_codes
    dumped: np.ndarray  # bool: has data (False outside the dumped space)
    flags: np.ndarray  # uint32: the PT_LOAD's p_flags (0 outside the dumped space)

    def __len__(self) -> int:
        return len(self.va)

    def take(self, rows: np.ndarray) -> Leaves:
        return Leaves(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


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
        # Context keys in order: DUMPED, then the other carried contexts (``Leaves.context``
        # holds their index, so sorting by it sorts by key).
        others = {n.context for n in self.nodes if n.context != self.dumped_context}
        self.context_keys: list[int] = [DUMPED, *sorted(others)]

    def context_of(self, context: int) -> int | None:
        """The Anomaly context of a context key / table context (None: the dumped space)."""
        if context == DUMPED or context == self.dumped_context:
            return None
        return context

    def context_of_row(self, row: int) -> int | None:
        """The Anomaly context of leaf row ``row``."""
        return self.context_of(self.context_keys[int(self.leaves.context[row])])

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
        # Narrow columns built a chunk of PT_LOADs at a time (no column per page, nothing the
        # size of the pages a PT_LOAD claims), filled in place.
        others = self._other_leaves()
        parts = itertools.chain(
            (self._dumped_columns(runs) for runs in run_chunks(self.dump)),
            () if others is None else (others,),
        )
        capacity = self.dump.segment_count + (0 if others is None else len(others[0]))
        return self._split(Leaves(*gather(parts, _DTYPES, capacity)))

    def _dumped_columns(self, runs: PageRuns) -> tuple[np.ndarray, ...]:
        """``Leaves`` columns of one chunk of the dumped space's runs."""
        oas_mask = _U64((1 << self.geometry.oas) - 1)
        pte = runs.pte
        pte_oa = self.fmt.output_address(pte)
        exact_stray = runs.pte_exact & ((pte_oa & ~oas_mask) != 0)
        return (
            np.zeros(len(runs), np.int32),
            runs.va,
            runs.pages.astype(np.uint32),
            np.where(exact_stray, pte_oa, runs.pa_raw),
            ~exact_stray | runs.pte_step,
            self.fmt.memattr(pte).astype(np.uint8),
            perm_codes(pte),
            runs.dumped,
            runs.flags.astype(np.uint32),
        )

    def _other_leaves(self) -> tuple[np.ndarray, ...] | None:
        """``Leaves`` columns of the page and block entries of carried spaces other than the
        dumped one (one row each), sorted by (context, VA)."""
        if self.index is None:
            return None
        codes = {key: i for i, key in enumerate(self.context_keys)}
        contexts, vas, ptes = [], [], []
        for node in self.nodes:
            if node.context == self.dumped_context:
                continue
            idx = self.index.leaf_entries(node)  # pages, or blocks at a block level
            lg = self.geometry.level(node.level)
            entries = self.index.entries_at(node.pa)
            vas.append(_U64(node.va_start) + idx.astype(np.uint64) * _U64(lg.entry_span_bytes))
            ptes.append(entries[idx].astype(np.uint64))
            contexts.append(np.full(len(idx), codes[node.context], dtype=np.int32))
        if not vas:
            return None
        context, va, pte = np.concatenate(contexts), np.concatenate(vas), np.concatenate(ptes)
        order = np.lexsort((va, context))
        context, va, pte = context[order], va[order], pte[order]
        n = len(va)
        return (
            context,
            va,
            np.ones(n, np.uint32),
            self.fmt.output_address(pte),
            np.ones(n, bool),
            self.fmt.memattr(pte).astype(np.uint8),
            perm_codes(pte),
            np.zeros(n, bool),
            np.zeros(n, np.uint32),
        )

    def _split(self, leaves: Leaves) -> Leaves:
        """``leaves`` with rows cut where a memory region (PA), a hole record or a managed
        range (VA) begins or ends inside them, so every check decides a row by its first
        page. Cutting more than needed changes nothing: runs join rows again."""
        multi = np.flatnonzero(leaves.pages > 1)
        if not len(multi):
            return leaves
        page = _U64(self.page)
        rows: list[np.ndarray] = []
        ks: list[np.ndarray] = []

        def cut(pick: np.ndarray, first: np.ndarray, bounds: np.ndarray) -> None:
            """Cut rows ``pick`` (first page's address ``first``, a page further each page)
            before the first page at or past each bound inside them."""
            if not len(bounds) or not len(pick):
                return
            last = first + (leaves.pages[pick].astype(np.uint64) - _U64(1)) * page
            lo = np.searchsorted(bounds, first, side="right")
            inside = np.searchsorted(bounds, last, side="right") - lo
            if not inside.any():
                return
            owner = np.repeat(np.arange(len(pick)), inside)
            j = within(inside)
            gap = bounds[np.repeat(lo, inside) + j] - first[owner]
            rows.append(pick[owner])
            ks.append((gap // page + (gap % page != 0)).astype(np.int64))

        cut(multi, leaves.va[multi], self._va_bounds())
        if not isinstance(self.regions, str):
            bounds = _bounds([b for r in self.regions for b in (r.base, r.base + r.size_bytes)])
            linear = multi[leaves.linear[multi]]
            cut(linear, self._masked(leaves.pa_raw[linear]), bounds)
        if not rows:
            return leaves
        return _cut(leaves, np.concatenate(rows), np.concatenate(ks), self.page)

    def _va_bounds(self) -> np.ndarray:
        """VAs where a hole record or a managed range begins or ends."""
        parts = [_bounds([])]
        extension = self.dump.extension
        if extension is not None and len(extension.holes):
            holes = extension.holes
            end = holes["va"] + holes["size_bytes"]
            parts += [holes["va"], end[end > holes["va"]]]  # a wrapped end is past every VA
        ranges = self.managed_ranges
        if not isinstance(ranges, str):
            parts.append(_bounds([b for start, end, _ in ranges.values() for b in (start, end)]))
        return _bounds(np.concatenate(parts))

    @cached_property
    def managed_ranges(self) -> dict[int, tuple[int, int, str]] | str:
        """Context key -> (allowed start, allowed end, what the range is), or why the dump
        has none."""
        spaces: tuple[Space, ...] = (
            self.dump.extension.spaces if self.dump.extension is not None else ()
        )
        out: dict[int, tuple[int, int, str]] = {}
        if spaces:
            for i, space in enumerate(spaces):
                if not space.managed_va_size_bytes:
                    continue
                end = space.managed_va_start + space.managed_va_size_bytes
                if space.ttb_owned:
                    allowed = (space.managed_va_start, end, "the driver's managed range")
                else:
                    start = space.va_start & ~self.geometry.ias_mask
                    allowed = (start, end, "the firmware's part and the driver's managed range")
                key = DUMPED if i == 0 else space.context
                out[key] = allowed
            return out
        if self.geometry.va_base != uat.UAT_VA_BASE_UPPER:
            return NO_MANAGED_RANGE
        out[DUMPED] = (
            uat.UAT_KERNEL_FW_VA_START,
            uat.UAT_KERNEL_VA_END,
            "the firmware's part and the driver's range of the kernel context",
        )
        return out

    def _masked(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` through ``Dump.pa_mask``: where the walker goes (``raw`` itself, no copy,
        when the mask changes nothing, as for every entry without stray bits)."""
        mask = self.dump.pa_mask
        if mask == (1 << 64) - 1 or not (raw & _U64(~mask & ((1 << 64) - 1))).any():
            return raw
        return raw & _U64(mask)

    @cached_property
    def pa(self) -> np.ndarray:
        """Per leaf row: the first page's ``pa``: ``pa_raw`` through ``Dump.pa_mask``, where
        the walker goes."""
        return self._masked(self.leaves.pa_raw)

    @cached_property
    def addressable(self) -> np.ndarray:
        """Per leaf: whether ``pa`` is an address at all (below the OAS; the UAT's always is,
        an LPAE entry with stray bits is not: it is only oa-beyond-oas)."""
        return (self.pa >> _U64(self.geometry.oas)) == 0

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
        if len(regions) <= _FEW_REGIONS:
            return memory_class_by_region(regions, self.pa)
        return memory_class_by_sweep(regions, self.pa)

    @cached_property
    def table_findings(self) -> tuple[list[Anomaly], list[Anomaly], list[Anomaly]]:
        """(unexpected-table-entry, empty-table, oa-beyond-oas of upper-level table entries)
        over every walked table."""
        return scan_tables(self)


_DTYPES = (np.int32, np.uint64, np.uint32, np.uint64, bool, np.uint8, np.uint8, bool, np.uint32)
_FEW_REGIONS = 32  # up to this many regions, one numpy pass each; beyond, one sweep


def memory_class_by_region(
    regions: tuple[Region, ...], pa: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Facts.memory_class`` with one pass over ``pa`` per region: the last region holding a
    PA wins (RAM banks first, then the others in record order), so a reserved region beats
    its bank and the later of two overlapping windows wins."""
    mmio = np.full(len(pa), -1, dtype=np.int32)
    memory = np.full(len(pa), -1, dtype=np.int32)
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


def memory_class_by_sweep(
    regions: tuple[Region, ...], pa: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``memory_class_by_region``'s answer from one sweep over the regions' bounds (a heap of
    the regions open at each bound, per kind) and one binary search per PA: time follows the
    regions plus the PAs, not their product (a hostile memory map may hold a million)."""
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for i, region in enumerate(regions):
        if not region.size_bytes:
            continue
        starts.setdefault(region.base, []).append(i)
        end = region.base + region.size_bytes
        if end < 1 << 64:  # ending at the top needs no bound
            ends.setdefault(end, []).append(i)
    bounds = sorted(starts.keys() | ends.keys())
    open_regions: dict[str, list[int]] = {"mmio": [], "reserved": [], "ram": []}
    closed: set[int] = set()
    count = 0
    tops = {kind: np.full(len(bounds), -1, dtype=np.int32) for kind in open_regions}
    covered = np.zeros(len(bounds), dtype=bool)
    for j, bound in enumerate(bounds):  # the elementary range [bound, next bound)
        for i in ends.get(bound, ()):
            closed.add(i)
            count -= 1
        for i in starts.get(bound, ()):
            closed.discard(i)
            count += 1
            if regions[i].kind in open_regions:
                heapq.heappush(open_regions[regions[i].kind], -i)
        for kind, heap in open_regions.items():
            while heap and -heap[0] in closed:
                heapq.heappop(heap)
            if heap:
                tops[kind][j] = -heap[0]
        covered[j] = count > 0
    at = np.searchsorted(np.array(bounds, dtype=np.uint64), pa, side="right") - 1
    inside = at >= 0
    at = np.maximum(at, 0)

    def pick(values: np.ndarray, fill) -> np.ndarray:
        return np.where(inside, values[at], fill) if len(bounds) else np.full(len(pa), fill)

    mmio = pick(tops["mmio"], -1).astype(np.int32)
    reserved, ram = pick(tops["reserved"], -1), pick(tops["ram"], -1)
    memory = np.where(reserved >= 0, reserved, ram).astype(np.int32)
    return mmio, memory, (mmio >= 0) | ~pick(covered, False)


def _bounds(values: np.ndarray | list[int]) -> np.ndarray:
    """Sorted distinct cut points strictly inside 0 .. 2**64 (a uint64 array, or ints)."""
    if isinstance(values, np.ndarray):
        out = np.unique(values.astype(np.uint64))
        return out[out != 0]
    return np.array(sorted({v for v in values if 0 < v < 1 << 64}), dtype=np.uint64)


def _cut(leaves: Leaves, rows: np.ndarray, ks: np.ndarray, page: int) -> Leaves:
    """``leaves`` with row ``rows[i]`` cut before its page ``ks[i]`` (0 < k < pages)."""
    n = leaves.pages.astype(np.int64)
    keep = (ks > 0) & (ks < n[rows])
    rows, ks = rows[keep], ks[keep]
    key = np.concatenate(
        (np.arange(len(n), dtype=np.int64) << _K_BITS, (rows.astype(np.int64) << _K_BITS) | ks)
    )
    key.sort()
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    row = key >> _K_BITS
    k = key & ((1 << _K_BITS) - 1)
    following = np.append(k[1:], 0)
    same = np.append(row[1:] == row[:-1], False)
    pages = np.where(same, following, n[row]) - k
    out = leaves.take(row)
    offset = k.astype(np.uint64) * _U64(page)
    out.va = out.va + offset
    out.pa_raw = np.where(out.linear, out.pa_raw + offset, out.pa_raw)
    out.pages = pages.astype(np.uint32)
    return out


_K_BITS = 26  # pages of one row (at most MAX_PAGES = 2**25) and k fit in 26 bits
