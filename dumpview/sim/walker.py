"""The dump walker, as the driver's ``dump_pages``: snapshot an address space into a dump.

Owns the walk over page tables by physical address through the Page API (tables are borrowed
with ``borrow_phys``; a table ``borrow_phys`` refuses is reported, not read), the decision per
leaf (data copied only when the memory attribute is one the entry format dumps **and**
``borrow_phys`` accepts every kernel page the leaf touches; otherwise recorded without data and
with its reason), coalescing into PT_LOAD runs exactly as the driver does, and collecting every
table page for dumpview's extension.

Two addresses per leaf, as in crashdump.rs: ``p_paddr`` records the entry's output address
(UAT bits 51:14), while the walker follows tables and borrows and copies data at the address
the hardware uses, ``pte & OAS mask`` (``EntryFormat.pa_mask``; LPAE does not cut). So an
entry with bits at or above the OAS may have data, read from the cut address, and its hole
reason (when it has none) names that address.

The walk is generic over the entry format (``formats.entryformat``): the UAT (the default,
whose output is exactly the driver's) and ARM LPAE stage 1 with a 4K, 16K or 64K granule. A
table is one granule: 4K/16K tables are read from their 16 KiB kernel page, a 64K table across
its four. At an LPAE block level a type-01 entry is a leaf covering the level's span; it is
expanded into granule pages (VA and PA advancing together, each page carrying the block entry
with its output address advanced).

Failure modes: ``WalkError`` (an ``EIO``) when the TTB itself cannot be borrowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dumpview.sim.errors import EIO
from dumpview.sim.memory import MmioWindow, PhysicalMemory, ReservedRegion
from dumpview.sim.page import PageApi
from dumpview.sim.writer import HoleInfo, SegmentTable, TableInfo
from formats import entryformat, ext, uat
from formats.entryformat import EntryFormat
from formats.geometry import Geometry

KERNEL_PAGE = uat.PAGE_SIZE  # the simulated kernel's page: what borrow_phys takes
_ENTRY_DTYPE = np.dtype("<u8")


@dataclass
class WalkResult:
    """Everything the writer needs from a walk."""

    segments: SegmentTable
    tables: list[TableInfo]
    holes: list[HoleInfo]
    leaf_count: int
    dumped_pages: int
    problems: list[str] = field(default_factory=list)


def _region_index(regions: list, region: object) -> int:
    for i, r in enumerate(regions):
        if r is region:
            return i
    return -1


def walk_space(
    api: PageApi,
    memory: PhysicalMemory,
    geometry: Geometry,
    ttb_pa: int,
    va_start: int,
    va_end: int,
    regions: list,
    context: int = 0,
    managed: tuple[int, int] | None = None,
    collect_tables: bool = True,
    entry_format: EntryFormat = entryformat.UAT,
) -> WalkResult:
    """Walk [va_start, va_end) from ``ttb_pa`` like the driver's crash dump walker.

    ``regions`` is the extension's region list (RAM banks, reserved, MMIO objects in the order
    they are written), used to name why a page has no data. ``managed`` is the range the
    driver manages: tables wholly outside it are flagged ``TABLE_FIRMWARE`` (none without it).
    ``entry_format`` must match ``geometry`` (same page shift).
    """
    if entry_format.page_shift != geometry.page_shift:
        raise ValueError(
            f"entry format {entry_format.name} has {1 << entry_format.page_shift:#x}-byte "
            f"pages, the geometry {geometry.page_size_bytes:#x}"
        )
    ttb = api.borrow_phys(ttb_pa)
    if ttb is None:
        raise EIO(f"EIO: TTB at {ttb_pa:#x} is not RAM (borrow_phys refused it)")
    levels = geometry.levels
    granule = geometry.page_size_bytes
    tables: list[TableInfo] = []
    problems: list[str] = []
    leaf_va_parts: list[np.ndarray] = []
    leaf_pte_parts: list[np.ndarray] = []
    blocks: list[tuple[int, int, int]] = []  # (VA, entry, span) of block leaves
    space_base = va_start & ~geometry.ias_mask
    type_mask = np.uint64(entryformat.TYPE_MASK)
    type_table = np.uint64(entryformat.TYPE_TABLE)
    type_block = np.uint64(entryformat.TYPE_BLOCK)

    def in_firmware(va: int, span: int) -> bool:
        return managed is not None and (va + span <= managed[0] or va >= managed[1])

    def table_entries(depth: int, table_pa: int, count: int) -> np.ndarray | None:
        """The ``count`` entries of the table at ``table_pa``, or None if borrow_phys
        refuses one of the kernel pages it occupies."""
        page = ttb if depth == 0 else api.borrow_phys(table_pa)
        if page is None:
            return None
        if granule <= KERNEL_PAGE:
            first = (table_pa & (KERNEL_PAGE - 1)) // 8
            return page.as_u64_array(writable=False)[first : first + count]
        for off in range(KERNEL_PAGE, count * 8, KERNEL_PAGE):
            if api.borrow_phys(table_pa + off) is None:
                return None
        return np.frombuffer(api.memory.read(table_pa, count * 8), dtype=_ENTRY_DTYPE)

    pa_mask = entry_format.pa_mask(geometry.oas)

    def child_pa(pte: int) -> int:
        return entry_format.output_address(pte) & pa_mask

    stack = [(0, ttb_pa, space_base)]
    while stack:
        depth, table_pa, table_va = stack.pop()
        lg = levels[depth]
        entries = table_entries(depth, table_pa, lg.entries)
        if entries is None:
            problems.append(
                f"L{lg.level} table at PA {table_pa:#x} (VA {table_va:#x}) is not "
                "RAM: borrow_phys refused it, not walked"
            )
            continue
        span = lg.entry_span_bytes << lg.index_bits
        if collect_tables:
            flags = (ext.TABLE_IS_TTB if depth == 0 else 0) | (
                ext.TABLE_FIRMWARE if in_firmware(table_va, span) else 0
            )
            tables.append(TableInfo(lg.level, table_pa, table_va, span, context, flags))
        # Only the part of this table inside [va_start, va_end).
        first = max(0, (va_start - table_va) >> lg.va_shift) if va_start > table_va else 0
        last = min(lg.entries, -(-(va_end - table_va) // lg.entry_span_bytes))
        window = entries[first:last]
        types = window & type_mask
        valid = np.flatnonzero(types == type_table) + first
        if depth == len(levels) - 1:
            leaf_va_parts.append(
                np.uint64(table_va) + valid.astype(np.uint64) * np.uint64(lg.entry_span_bytes)
            )
            leaf_pte_parts.append(entries[valid].astype(np.uint64))
            continue
        odd_mask = (types != 0) & (types != type_table)
        if lg.level in entry_format.block_levels:
            is_block = types == type_block
            odd_mask &= ~is_block
            for index in (np.flatnonzero(is_block) + first).tolist():
                blocks.append(
                    (
                        table_va + index * lg.entry_span_bytes,
                        int(entries[index]),
                        lg.entry_span_bytes,
                    )
                )
        odd = np.flatnonzero(odd_mask) + first
        for index in odd.tolist():
            problems.append(
                f"unexpected table PTE value {int(entries[index]):#x} at L{lg.level} "
                f"index {index} (VA {table_va + index * lg.entry_span_bytes:#x})"
            )
        children = [
            (depth + 1, child_pa(int(entries[i])), table_va + int(i) * lg.entry_span_bytes)
            for i in valid.tolist()
        ]
        stack.extend(reversed(children))

    for block_va, block_pte, block_span in blocks:
        va, pte = _expand_block(entry_format, block_va, block_pte, block_span, granule)
        leaf_va_parts.append(va)
        leaf_pte_parts.append(pte)
    if leaf_va_parts:
        leaf_va = np.concatenate(leaf_va_parts)
        leaf_pte = np.concatenate(leaf_pte_parts)
        order = np.argsort(leaf_va, kind="stable")
        leaf_va, leaf_pte = leaf_va[order], leaf_pte[order]
    else:
        leaf_va = leaf_pte = np.zeros(0, np.uint64)
    return _coalesce(
        api, memory, geometry, leaf_va, leaf_pte, tables, problems, regions, entry_format
    )


def _expand_block(
    entry_format: EntryFormat, block_va: int, block_pte: int, span: int, granule: int
) -> tuple[np.ndarray, np.ndarray]:
    """A block leaf as its granule pages: VAs, and the block entry with the output address
    advanced by one granule per page."""
    count = span // granule
    step = np.arange(count, dtype=np.uint64) * np.uint64(granule)
    va = np.uint64(block_va) + step
    attributes = np.uint64(block_pte & ~entry_format.oa_bits & entryformat.U64_MAX)
    oa = np.uint64(int(entry_format.output_address(block_pte))) + step
    return va, attributes | entry_format.encode_output_address(oa)


def _classify_pages(
    api: PageApi,
    memory: PhysicalMemory,
    geometry: Geometry,
    leaf_pte: np.ndarray,
    regions: list,
    entry_format: EntryFormat = entryformat.UAT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per leaf: has data, hole reason, hole detail, region index.

    The driver calls ``borrow_phys`` on every leaf; here the same check (valid PFN and
    ``page_is_ram``) runs over all leaves at once, on every kernel page a leaf touches, and the
    memory map names why a refused page is not RAM (MMIO first, then no-map, as
    ``MemoryMap.classify``). All of it at the address the walker borrows: ``pte & OAS mask``
    (dump_pages' ``phys``), not ``p_paddr``'s bits 51:14.
    """
    n = len(leaf_pte)
    pa = entry_format.output_address(leaf_pte) & np.uint64(entry_format.pa_mask(geometry.oas))
    memattr = entry_format.memattr(leaf_pte)
    attr_ok = np.isin(memattr, list(entry_format.dumpable_memattrs))
    borrowed = memory.page_is_ram_many(pa >> np.uint64(uat.PAGE_SHIFT))
    for off in range(KERNEL_PAGE, geometry.page_size_bytes, KERNEL_PAGE):
        borrowed &= memory.page_is_ram_many((pa + np.uint64(off)) >> np.uint64(uat.PAGE_SHIFT))
    has_data = attr_ok & borrowed
    reason = np.where(
        has_data, 0, np.where(attr_ok, ext.REASON_BORROW_REFUSED, ext.REASON_DEVICE_MEMORY)
    ).astype(np.uint8)
    detail = np.full(n, ext.DETAIL_UNKNOWN, np.uint8)
    region_idx = np.full(n, -1, np.int32)
    in_ram = np.zeros(n, bool)
    for bank in memory.memory_map.ram:
        in_ram |= (pa >= np.uint64(bank.base)) & (pa < np.uint64(bank.end))
    detail[~in_ram] = ext.DETAIL_OUTSIDE_MEMORY_MAP
    # Lowest precedence first, so MMIO (highest) is written last.
    ordered = [
        (r, ext.DETAIL_UNKNOWN) for r in regions if isinstance(r, ReservedRegion) and not r.no_map
    ]
    ordered += [
        (r, ext.DETAIL_NO_MAP) for r in regions if isinstance(r, ReservedRegion) and r.no_map
    ]
    ordered += [(r, ext.DETAIL_MMIO) for r in regions if isinstance(r, MmioWindow)]
    for region, det in ordered:
        hit = (pa >= np.uint64(region.base)) & (pa < np.uint64(region.end)) & ~has_data
        detail[hit] = det
        region_idx[hit] = _region_index(regions, region)
    detail[has_data] = ext.DETAIL_UNKNOWN
    region_idx[has_data] = -1
    return has_data, reason, detail, region_idx


def _coalesce(
    api: PageApi,
    memory: PhysicalMemory,
    geometry: Geometry,
    leaf_va: np.ndarray,
    leaf_pte: np.ndarray,
    tables: list[TableInfo],
    problems: list[str],
    regions: list,
    entry_format: EntryFormat = entryformat.UAT,
) -> WalkResult:
    page = np.uint64(geometry.page_size_bytes)
    # p_paddr: the output address as the entry says it (UAT: bits 51:14, as crashdump.rs writes
    # it); runs coalesce on it. The data comes from the OAS-masked address (the writer's
    # ``data_pa_mask``).
    pa = entry_format.output_address(leaf_pte)
    flags = _pack_flags_bulk(leaf_pte, entry_format)
    has_data, reason, detail, region_idx = _classify_pages(
        api, memory, geometry, leaf_pte, regions, entry_format
    )
    n = len(leaf_va)
    if n:
        # A run continues while VA+page, PA+page, same p_flags, same has-data.
        cont = (
            (leaf_va[1:] == leaf_va[:-1] + page)
            & (pa[1:] == pa[:-1] + page)
            & (flags[1:] == flags[:-1])
            & (has_data[1:] == has_data[:-1])
        )
        starts = np.flatnonzero(np.concatenate(([True], ~cont)))
        lengths = np.diff(np.append(starts, n)).astype(np.uint64)
        segments = SegmentTable(
            va=leaf_va[starts],
            pa=pa[starts],
            size_bytes=lengths * page,
            p_flags=flags[starts],
            has_data=has_data[starts],
        )
    else:
        segments = SegmentTable.from_rows([])
    holes: list[HoleInfo] = []
    missing = np.flatnonzero(~has_data)
    if len(missing):
        key_va = leaf_va[missing]
        cont = np.concatenate(
            (
                [False],
                (key_va[1:] == key_va[:-1] + page)
                & (reason[missing][1:] == reason[missing][:-1])
                & (detail[missing][1:] == detail[missing][:-1])
                & (region_idx[missing][1:] == region_idx[missing][:-1]),
            )
        )
        run_starts = np.flatnonzero(~cont)
        run_ends = np.append(run_starts[1:], len(missing))
        for s, e in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            i = int(missing[s])
            holes.append(
                HoleInfo(
                    int(leaf_va[i]),
                    (e - s) * int(page),
                    int(reason[i]),
                    int(detail[i]),
                    int(region_idx[i]),
                )
            )
    return WalkResult(segments, tables, holes, n, int(has_data.sum()), problems)


def _pack_flags_bulk(
    leaf_pte: np.ndarray, entry_format: EntryFormat = entryformat.UAT
) -> np.ndarray:
    """``entry_format.pack_p_flags`` over many entries: computed once per distinct protection
    (the output address bits never reach ``p_flags``)."""
    prot_mask = np.uint64(~entry_format.oa_bits & entryformat.U64_MAX)
    prot = leaf_pte & prot_mask
    uniq, inverse = np.unique(prot, return_inverse=True)
    packed = np.array([entry_format.pack_p_flags(int(p)) for p in uniq.tolist()], dtype=np.uint32)
    return packed[inverse].reshape(-1)
