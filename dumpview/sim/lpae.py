"""ARM LPAE stage-1 page tables with Linux io-pgtable-arm semantics, over the simulated Page API.

This module owns the behaviour of ``drivers/iommu/io-pgtable-arm.c`` (ARM_64_LPAE_S1) and of the
IOMMU core's ``iommu_map`` / ``iommu_unmap`` page-size selection, on the simulated kernel
(reference sheet sections 4 and 6). Levels are numbered as in ``formats.geometry`` (the last
level is 3); entries are ``formats.lpae`` descriptors.

Facts modelled:

- The kernel's page size stays 16 KiB (an Asahi kernel). A table of ``granule`` bytes is
  ``alloc_pages(GFP_KERNEL | GFP_ZERO, get_order(granule))``: one 16 KiB page for the 4K and
  16K granules (a 4K-granule table uses the first 4 KiB of it), an order-2 block (4 contiguous
  pages) for the 64K granule. The top table (``ttb_pa``, TTBR0) is ``8 << top index bits``
  bytes, allocated the same way (order 0 for every stage-1 geometry with IAS 48). It belongs
  to this page table.
- Tables are allocated lazily on map, given away with ``into_phys`` and written into the
  parent entry as ``encode_output_address(pa) | 3``; walks reach them again by physical
  address only (``borrow_phys_unchecked`` for tables this object allocated, ``borrow_phys`` for
  anything else a query reads; like ``pgtable.py``, the borrowed entry views of our own tables
  are cached by PA until the table is freed); they are freed with ``from_phys(pa, order)`` +
  drop.
- ``map_pages`` splits a range like ``iommu_pgsize``: each step uses the largest size of the
  granule's set (4K: 4K, 2M, 1G; 16K: 16K, 32M; 64K: 64K, 512M, plus 4T with a 52-bit OAS)
  that divides iova and pa and fits the remaining size. Leaves are
  ``encode_output_address(pa) | prot_to_bits(prot) | type`` with type 1 (block) above the last
  level and 3 (page) at it. Mapping a block over a table entry frees that table's subtree
  first, as ``arm_lpae_init_pte`` does.
- ``unmap_pages`` splits the same way. A whole entry-size unmap clears the entries and frees
  the subtree of any table entry among them (the leaves inside simply vanish, as in
  io-pgtable). Unmapping part of a block splits it (``arm_lpae_split_blk_unmap``): a new table
  at the next level is filled with the block's pieces minus the unmapped ones and replaces the
  block entry. Unmapping page by page never frees a table: it stays, possibly empty.
- ``free`` is ``arm_lpae_free_pgtable``: every table reachable from the top one, the top one
  included, goes back to the allocator.

Where io-pgtable WARNs, this module keeps a ``Report`` (``dumpview.sim.pgtable.Report``) in
``LpaePageTable.reports`` and goes on as the kernel does: mapping over a leaf stops the map
("already-mapped", the old entry stays; io-pgtable returns -EEXIST); unmapping an empty entry
stops the unmap ("already-unmapped", 0 bytes for it). An entry that is neither empty, a leaf nor
a table is overwritten silently by a map, as io-pgtable does. Where the kernel would follow or
free an entry that is not a table this object allocated (only ``raw_write_entry`` makes those),
the entry is reported "unexpected-table-pte" and neither followed nor freed (a map or unmap that
had to go through it stops there) instead of corrupting memory.

Failure modes: ``EINVAL`` for an entry format that is not LPAE, a bad geometry or range, a
misaligned iova/pa/size (to the granule), a range outside ``va_range``, a PA beyond the OAS
(io-pgtable says -ERANGE for the last two), unknown prot bits; ``ENOMEM`` from table
allocation; ``ENOENT`` from ``raw_write_entry`` when a block or foreign entry lies on the way;
``SimBug`` for any use after ``free``. ``raw_write_entry`` is fault injection: it skips the
range and value checks on purpose. Queries (``tables``, ``lookup``, ``iova_to_phys``,
``entry``) never report and never allocate; they read tables that are not System RAM as absent.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dumpview.sim.errors import EINVAL, ENOENT, SimBug
from dumpview.sim.page import GFP_KERNEL, GFP_ZERO, PageApi, U64Block
from dumpview.sim.pgtable import (
    KIND_ALREADY_MAPPED,
    KIND_ALREADY_UNMAPPED,
    KIND_UNEXPECTED_TABLE_PTE,
    Report,
)
from formats import lpae
from formats.entryformat import EntryFormat
from formats.geometry import ENTRY_SIZE_BYTES, Geometry, LevelGeometry
from formats.uat import PAGE_SHIFT, PAGE_SIZE

# iopte_prot(): the attribute bits a split block hands down to its pieces
# (ARM_LPAE_PTE_ATTR_LO_MASK, bits 11:2, | ARM_LPAE_PTE_ATTR_HI_MASK, PXN and UXN).
ATTR_MASK = (0x3FF << 2) | (0b11 << 53)
# The IOMMU_* bits map_pages accepts.
PROT_MASK = (
    lpae.IOMMU_READ
    | lpae.IOMMU_WRITE
    | lpae.IOMMU_CACHE
    | lpae.IOMMU_NOEXEC
    | lpae.IOMMU_MMIO
    | lpae.IOMMU_PRIV
)
_GRANULE_NAMES = {shift: name for name, shift in lpae.GRANULE_SHIFTS.items()}
_U64 = np.uint64
_U64_LIMIT = 1 << 64


def get_order(size_bytes: int) -> int:
    """Linux ``get_order`` on the simulated kernel: the smallest order whose block of 16 KiB
    pages holds ``size_bytes`` (0 for anything up to one page)."""
    pages = max(1, (size_bytes + PAGE_SIZE - 1) >> PAGE_SHIFT)
    return (pages - 1).bit_length()


class LpaePageTable:
    """One stage-1 address space (an SMMU context's TTBR0) and every table it allocated.

    Build with ``LpaePageTable.new``. ``va_range`` is the ``[start, end)`` IOVA range
    ``map_pages`` and ``unmap_pages`` accept (default: the whole ``ias``-bit space).
    ``pgsizes`` is io-pgtable's ``pgsize_bitmap`` as a sorted tuple of sizes in bytes.
    """

    def __init__(
        self,
        api: PageApi,
        entry_format: EntryFormat,
        geometry: Geometry,
        va_range: tuple[int, int],
    ) -> None:
        """Use ``new``; this trusts its arguments and allocates the top table."""
        self.api = api
        self.entry_format = entry_format
        self.geometry = geometry
        self.va_range = va_range
        self.reports: list[Report] = []
        self.freed = False
        self.block_levels: frozenset[int] = lpae.block_levels(geometry.page_shift, geometry.oas)
        self._levels: tuple[LevelGeometry, ...] = geometry.levels
        self._last = len(self._levels) - 1
        self._granule = geometry.page_size_bytes
        self._ptes = geometry.entries_per_table
        self.pgsizes: tuple[int, ...] = tuple(
            sorted(
                {self._granule}
                | {lv.entry_span_bytes for lv in self._levels[:-1] if lv.level in self.block_levels}
            )
        )
        self._pgd_entries = self._levels[0].entries
        self._table_orders = (get_order(self._pgd_entries * ENTRY_SIZE_BYTES),) + (
            get_order(self._granule),
        ) * self._last
        self._steps = np.arange(self._ptes, dtype=_U64)
        # Tables this object allocated: pa -> (level index, order); their entry views by pa.
        self._owned: dict[int, tuple[int, int]] = {}
        self._views: dict[int, U64Block] = {}
        self.ttb_pa = self._new_table(0)

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def new(
        cls,
        api: PageApi,
        entry_format: EntryFormat,
        ias: int = 48,
        oas: int = 48,
        va_range: tuple[int, int] | None = None,
    ) -> LpaePageTable:
        """A stage-1 page table with a freshly allocated, zeroed top table it owns.

        ``entry_format`` is one of ``formats.entryformat.LPAE_4K/16K/64K`` (its granule).
        EINVAL for another format, an IAS/OAS the granule does not allow, or a ``va_range``
        that is empty, not granule aligned or outside the ``ias``-bit space; ENOMEM if no
        block is left for the top table.
        """
        if entry_format.declaration is not lpae.LpaeEntry:
            raise EINVAL(f"entry format {entry_format.name!r} is not ARM LPAE")
        granule = _GRANULE_NAMES.get(entry_format.page_shift)
        if granule is None:  # pragma: no cover - every LPAE format has a known granule
            raise EINVAL(f"entry format {entry_format.name!r} has no LPAE granule")
        try:
            geometry = lpae.lpae_geometry(granule, ias=ias, oas=oas)
        except ValueError as exc:
            raise EINVAL(f"bad LPAE geometry ({granule}, ias {ias}, oas {oas}): {exc}") from exc
        if va_range is None:
            va_range = (0, 1 << ias)
        start, end = va_range
        mask = geometry.page_size_bytes - 1
        if (start | end) & mask:
            raise EINVAL(f"va range 0x{start:x}..0x{end:x} is not aligned to the {granule} granule")
        if not 0 <= start < end <= 1 << ias:
            raise EINVAL(f"va range 0x{start:x}..0x{end:x} is empty or outside the {ias}-bit space")
        return cls(api, entry_format, geometry, (start, end))

    # --- tables ----------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self.freed:
            raise SimBug(f"use of the LPAE page table with TTB 0x{self.ttb_pa:x} after free")

    def table_order(self, level: int) -> int:
        """The allocation order of a table at lookup level ``level``. EINVAL if the geometry
        has no such level."""
        return self._table_orders[self._level_index(level)]

    def owned_tables(self) -> dict[int, tuple[int, int]]:
        """Every table this object allocated and has not freed: pa -> (level, order)."""
        start = self._levels[0].level
        return {pa: (start + li, order) for pa, (li, order) in sorted(self._owned.items())}

    def _level_index(self, level: int) -> int:
        """The index in ``geometry.levels`` of lookup level ``level``; EINVAL if absent."""
        index = level - self._levels[0].level
        if not 0 <= index <= self._last:
            raise EINVAL(f"level {level} is not in L{self._levels[0].level}..L3")
        return index

    def _new_table(self, level_index: int) -> int:
        """A zeroed table for level index ``level_index``, given away as its PA."""
        order = self._table_orders[level_index]
        pa = self.api.into_phys(self.api.alloc_pages(order, GFP_KERNEL | GFP_ZERO))
        if (pa + (PAGE_SIZE << order) - 1) >> self.geometry.oas:
            self.api.from_phys(pa, order).drop()
            raise EINVAL(f"table block 0x{pa:x} is beyond the {self.geometry.oas}-bit OAS")
        self._owned[pa] = (level_index, order)
        return pa

    def _release(self, table_pa: int) -> None:
        """Give a table back to the allocator (``from_phys`` + drop)."""
        _level_index, order = self._owned.pop(table_pa)
        self._views.pop(table_pa, None)
        self.api.from_phys(table_pa, order).drop()

    def _table(self, table_pa: int) -> U64Block:
        """The writable entries of a table this object allocated, borrowed by PA."""
        view = self._views.get(table_pa)
        if view is None:
            level_index, order = self._owned[table_pa]
            entries = self._pgd_entries if level_index == 0 else self._ptes
            page = self.api.borrow_phys_unchecked(table_pa)
            view = page.as_u64_block(writable=True, entries=entries, order=order)
            self._views[table_pa] = view
        return view

    def _child(self, entry: int, child_index: int) -> int | None:
        """The PA of the table ``entry`` points to if it is a table descriptor for one of our
        tables of level index ``child_index``, else None."""
        if entry & lpae.TYPE_MASK != lpae.TYPE_TABLE:
            return None
        pa = int(self.entry_format.output_address(entry))
        owned = self._owned.get(pa)
        return pa if owned is not None and owned[0] == child_index else None

    def _is_leaf(self, entry: int, level_index: int) -> bool:
        """io-pgtable's ``iopte_leaf``: a page at the last level, a block (type 1) above."""
        wanted = lpae.TYPE_PAGE if level_index == self._last else lpae.TYPE_BLOCK
        return entry & lpae.TYPE_MASK == wanted

    def _table_entry(self, table_pa: int) -> int:
        return int(self.entry_format.encode_output_address(table_pa)) | lpae.TYPE_TABLE

    def _leaf_values(self, pa: int, span_bytes: int, count: int, bits: int) -> np.ndarray:
        """``count`` leaves mapping ``pa`` onwards in ``span_bytes`` steps, with ``bits``."""
        pas = self._steps[:count] * _U64(span_bytes) + _U64(pa)
        return self.entry_format.encode_output_address(pas) | _U64(bits)

    def _report(self, kind: str, iova: int, value: int, message: str) -> None:
        self.reports.append(Report(kind, iova, value, message))

    def _report_foreign(self, what: str, level_index: int, iova: int, entry: int) -> None:
        level = self._levels[level_index].level
        self._report(
            KIND_UNEXPECTED_TABLE_PTE,
            iova,
            entry,
            f"{what}: L{level} entry 0x{entry:x} at IOVA 0x{iova:x} is not a table this page "
            "table allocated: not followed",
        )

    # --- page sizes ------------------------------------------------------------------------

    def _pgsize(self, iova: int, paddr: int, size_bytes: int) -> tuple[int, int]:
        """``iommu_pgsize``: the page size to use at ``iova``/``paddr`` and how many of them
        before a larger size becomes usable."""
        addr_merge = iova | paddr
        align = addr_merge & -addr_merge if addr_merge else 1 << 63
        candidates = [s for s in self.pgsizes if s <= size_bytes and s <= align]
        pgsize = candidates[-1]
        larger = [s for s in self.pgsizes if s > pgsize]
        if larger:
            pgsize_next = larger[0]
            if not (iova ^ paddr) & (pgsize_next - 1):
                offset = pgsize_next - (addr_merge & (pgsize_next - 1))
                if offset + pgsize_next <= size_bytes:
                    size_bytes = offset
        return pgsize, size_bytes // pgsize

    def _check_range(self, what: str, iova: int, size_bytes: int) -> None:
        self._check_live()
        if size_bytes < 0 or iova < 0:
            raise EINVAL(f"{what}: negative IOVA 0x{iova:x} or size {size_bytes}")
        if (iova | size_bytes) & (self._granule - 1):
            raise EINVAL(
                f"{what}: IOVA 0x{iova:x} size 0x{size_bytes:x} not aligned to the "
                f"0x{self._granule:x} granule"
            )
        start, end = self.va_range
        if not start <= iova <= iova + size_bytes <= end:
            raise EINVAL(
                f"{what}: 0x{iova:x}..0x{iova + size_bytes:x} is outside the range "
                f"0x{start:x}..0x{end:x}"
            )

    # --- map -------------------------------------------------------------------------------

    def map_pages(self, iova: int, pa: int, size_bytes: int, prot: int) -> int:
        """Map ``size_bytes`` of physically contiguous memory at ``pa`` to ``iova`` with
        ``prot`` (``formats.lpae.IOMMU_*`` bits); return the bytes mapped.

        Blocks are used wherever the granule's page sizes allow (see the module docstring).
        A ``prot`` without IOMMU_READ or IOMMU_WRITE maps nothing (io-pgtable: "no access,
        nothing to do"). An existing leaf (page or block) in the way is reported
        "already-mapped", keeps its old value, and ends the map there (io-pgtable WARNs and
        returns -EEXIST; what was mapped before stays mapped: this models io-pgtable, not the
        IOMMU core's rollback). EINVAL for misalignment, a range outside ``va_range``, a PA
        range beyond the OAS, unknown prot bits; ENOMEM from table allocation.
        """
        self._check_range("map_pages", iova, size_bytes)
        if pa < 0 or pa & (self._granule - 1):
            raise EINVAL(
                f"map_pages: pa 0x{pa:x} is not aligned to the 0x{self._granule:x} granule"
            )
        if size_bytes and (pa + size_bytes - 1) >> self.geometry.oas:
            raise EINVAL(
                f"map_pages: pa 0x{pa:x}+0x{size_bytes:x} is beyond the {self.geometry.oas}-bit OAS"
            )
        if prot < 0 or prot & ~PROT_MASK:
            raise EINVAL(f"map_pages: unknown prot bits 0x{prot:x}")
        if not prot & (lpae.IOMMU_READ | lpae.IOMMU_WRITE):
            return 0
        bits = lpae.prot_to_bits(prot)
        mapped = 0
        while mapped < size_bytes:
            pgsize, count = self._pgsize(iova + mapped, pa + mapped, size_bytes - mapped)
            done, failed = self._map_run(iova + mapped, pa + mapped, pgsize, count, bits)
            mapped += done
            if failed:
                break
        return mapped

    def _map_run(self, iova: int, pa: int, pgsize: int, count: int, bits: int) -> tuple[int, bool]:
        """``__arm_lpae_map``: up to ``count`` leaves of ``pgsize`` in one table. Returns
        (bytes mapped, whether the map must stop)."""
        level_index = 0
        table_pa = self.ttb_pa
        while True:
            lv = self._levels[level_index]
            table = self._table(table_pa)
            idx = lv.index_of(iova)
            if pgsize == lv.entry_span_bytes:
                return self._init_leaves(iova, pa, pgsize, count, bits, level_index, table_pa)
            if level_index == self._last:  # pragma: no cover - pgsizes are level spans
                raise SimBug(f"map_pages: page size 0x{pgsize:x} matches no level")
            entry = table[idx]
            if entry == 0:
                child = self._new_table(level_index + 1)
                table[idx] = self._table_entry(child)
            elif self._is_leaf(entry, level_index):
                self._report_already_mapped(iova, lv.level, entry)
                return 0, True
            else:
                found = self._child(entry, level_index + 1)
                if found is None:
                    self._report_foreign("map_pages", level_index, iova, entry)
                    return 0, True
                child = found
            table_pa = child
            level_index += 1

    def _init_leaves(
        self,
        iova: int,
        pa: int,
        pgsize: int,
        count: int,
        bits: int,
        level_index: int,
        table_pa: int,
    ) -> tuple[int, bool]:
        """``arm_lpae_init_pte``: write the leaves unless one is already a leaf; tables in
        the way (before that one) are unmapped and freed first."""
        lv = self._levels[level_index]
        table = self._table(table_pa)
        idx = lv.index_of(iova)
        num = min(count, len(table) - idx)
        old = table.read_run(idx, num).copy()
        types = old & _U64(lpae.TYPE_MASK)
        last = level_index == self._last
        leaf_type = lpae.TYPE_PAGE if last else lpae.TYPE_BLOCK
        leaves = np.flatnonzero(types == _U64(leaf_type))
        stop = int(leaves[0]) if leaves.size else num
        if not last:
            for j in np.flatnonzero(types[:stop] == _U64(lpae.TYPE_TABLE)).tolist():
                entry_iova = iova + j * pgsize
                if self._unmap_level(entry_iova, pgsize, 1, level_index, table_pa) != pgsize:
                    return 0, True  # io-pgtable: WARN_ON(1), -EINVAL (already reported)
        if leaves.size:
            self._report_already_mapped(iova + stop * pgsize, lv.level, int(old[stop]))
            return 0, True
        table.write_run(idx, self._leaf_values(pa, pgsize, num, bits | leaf_type))
        return num * pgsize, False

    def _report_already_mapped(self, iova: int, level: int, entry: int) -> None:
        kind = "page" if entry & lpae.TYPE_MASK == lpae.TYPE_PAGE and level == 3 else "block"
        self._report(
            KIND_ALREADY_MAPPED,
            iova,
            entry,
            f"map_pages: IOVA 0x{iova:x} is already mapped by L{level} {kind} 0x{entry:x} "
            "(io-pgtable: WARN, -EEXIST; the old entry stays)",
        )

    # --- unmap -----------------------------------------------------------------------------

    def unmap_pages(self, iova: int, size_bytes: int) -> int:
        """Unmap ``[iova, iova + size_bytes)``; return the bytes unmapped.

        Whole entries are cleared (a table entry among them has its subtree freed), parts of
        blocks are split off (one new table per split level). The unmap stops at the first
        empty entry, which is reported "already-unmapped" (io-pgtable WARNs and unmaps 0 bytes
        there; ``iommu_unmap`` stops). EINVAL for misalignment or a range outside
        ``va_range``; ENOMEM when a split finds no page for its table.
        """
        self._check_range("unmap_pages", iova, size_bytes)
        unmapped = 0
        while unmapped < size_bytes:
            at = iova + unmapped
            pgsize, count = self._pgsize(at, at, size_bytes - unmapped)
            done = self._unmap_level(at, pgsize, count, 0, self.ttb_pa)
            if not done:
                break
            unmapped += done
        return unmapped

    def _unmap_level(
        self, iova: int, size_bytes: int, pgcount: int, level_index: int, table_pa: int
    ) -> int:
        """``__arm_lpae_unmap`` from the table at ``table_pa`` (level index ``level_index``)."""
        lv = self._levels[level_index]
        table = self._table(table_pa)
        idx = lv.index_of(iova)
        entry = table[idx]
        if entry == 0:
            self._report(
                KIND_ALREADY_UNMAPPED,
                iova,
                0,
                f"unmap_pages: IOVA 0x{iova:x} is not mapped (L{lv.level} entry {idx} of the "
                f"table at pa 0x{table_pa:x} is empty; io-pgtable: WARN, 0 bytes unmapped)",
            )
            return 0
        if size_bytes == lv.entry_span_bytes:
            num = min(pgcount, len(table) - idx)
            run = table.read_run(idx, num).copy()
            empty = np.flatnonzero(run == 0)
            n = int(empty[0]) if empty.size else num
            table.write_run(idx, np.zeros(n, dtype=_U64))
            leaf_type = lpae.TYPE_PAGE if level_index == self._last else lpae.TYPE_BLOCK
            not_leaf = (run[:n] & _U64(lpae.TYPE_MASK)) != _U64(leaf_type)
            for j in np.flatnonzero(not_leaf).tolist():
                self._free_subtree(int(run[j]), level_index, iova + j * size_bytes)
            return n * size_bytes
        if self._is_leaf(entry, level_index):
            return self._split_block(iova, size_bytes, pgcount, entry, level_index, table_pa)
        child = self._child(entry, level_index + 1)
        if child is None:
            self._report_foreign("unmap_pages", level_index, iova, entry)
            return 0
        return self._unmap_level(iova, size_bytes, pgcount, level_index + 1, child)

    def _split_block(
        self,
        iova: int,
        size_bytes: int,
        pgcount: int,
        block_entry: int,
        level_index: int,
        table_pa: int,
    ) -> int:
        """``arm_lpae_split_blk_unmap``: replace the block at ``level_index`` by a table of
        its pieces one level down, minus the unmapped ones when they are of that size;
        otherwise unmap further down in the new table."""
        child_index = level_index + 1
        child_lv = self._levels[child_index]
        split_bytes = child_lv.entry_span_bytes
        child_pa = self._new_table(child_index)
        child = self._table(child_pa)
        unmap_start, num = -1, 0
        if size_bytes == split_bytes:
            unmap_start = child_lv.index_of(iova)
            num = min(pgcount, len(child) - unmap_start)
        piece_type = lpae.TYPE_PAGE if child_index == self._last else lpae.TYPE_BLOCK
        block_pa = int(self.entry_format.output_address(block_entry))
        values = self._leaf_values(
            block_pa, split_bytes, len(child), (block_entry & ATTR_MASK) | piece_type
        )
        if unmap_start >= 0:
            values[unmap_start : unmap_start + num] = 0
        child.write_run(0, values)
        parent = self._table(table_pa)
        parent[self._levels[level_index].index_of(iova)] = self._table_entry(child_pa)
        if unmap_start >= 0:
            return num * size_bytes
        return self._unmap_level(iova, size_bytes, pgcount, child_index, child_pa)

    def _free_subtree(self, entry: int, level_index: int, iova: int) -> None:
        """Free the table a non-leaf ``entry`` at ``level_index`` points to, with everything
        below it (``__arm_lpae_free_pgtable``); report an entry that is not our table."""
        child = None if level_index == self._last else self._child(entry, level_index + 1)
        if child is None:
            self._report_foreign("free", level_index, iova, entry)
            return
        self._free_table(child, level_index + 1, iova)

    def _free_table(self, table_pa: int, level_index: int, va_start: int) -> None:
        if level_index < self._last:
            span = self._levels[level_index].entry_span_bytes
            entries = self._table(table_pa).to_array()
            types = entries & _U64(lpae.TYPE_MASK)
            for j in np.flatnonzero((entries != 0) & (types != _U64(lpae.TYPE_BLOCK))).tolist():
                self._free_subtree(int(entries[j]), level_index, va_start + j * span)
        self._release(table_pa)

    # --- fault injection -------------------------------------------------------------------

    def raw_write_entry(self, level: int, iova: int, value: int) -> None:
        """Fault injection: store ``value`` in the level-``level`` entry covering ``iova``,
        allocating missing tables on the way as ``map_pages`` does, without its checks:
        ``iova`` may lie outside ``va_range`` (not outside the space) and ``value`` may hold
        anything (a bad type, an output address beyond the OAS, a table pointer to a foreign
        page). Nothing is reported, not even a live entry being overwritten; a table entry
        overwritten this way leaks its subtree, as it would in the kernel.

        EINVAL for a level this geometry lacks, an IOVA outside the ``ias``-bit space, or a
        value wider than 64 bits; ENOENT when an entry on the way is a block or not a table
        this page table allocated.
        """
        self._check_live()
        if not 0 <= value < _U64_LIMIT:
            raise EINVAL(f"raw_write_entry: value {value:#x} does not fit 64 bits")
        target = self._level_index(level)
        if not 0 <= iova < 1 << self.geometry.ias:
            raise EINVAL(
                f"raw_write_entry: IOVA 0x{iova:x} is outside the {self.geometry.ias}-bit space"
            )
        table_pa = self.ttb_pa
        for level_index in range(target):
            lv = self._levels[level_index]
            table = self._table(table_pa)
            idx = lv.index_of(iova)
            entry = table[idx]
            if entry == 0:
                child = self._new_table(level_index + 1)
                table[idx] = self._table_entry(child)
            else:
                found = self._child(entry, level_index + 1)
                if found is None:
                    raise ENOENT(
                        f"raw_write_entry: L{lv.level} entry 0x{entry:x} covering IOVA "
                        f"0x{iova:x} is not a table of this page table"
                    )
                child = found
            table_pa = child
        self._table(table_pa)[self._levels[target].index_of(iova)] = value

    # --- queries ---------------------------------------------------------------------------

    def _read_entry(self, table_pa: int, level_index: int, idx: int) -> int | None:
        """Entry ``idx`` of the table at ``table_pa``, or None if it cannot be read (its page
        is refused by ``borrow_phys``, or the index is beyond the table)."""
        owned = self._owned.get(table_pa)
        if owned is not None and owned[0] == level_index:
            return self._table(table_pa)[idx]
        count = self._pgd_entries if level_index == 0 else self._ptes
        if idx >= count:
            return None
        pa = table_pa + idx * ENTRY_SIZE_BYTES
        page = self.api.borrow_phys(pa)
        if page is None:
            return None
        return page.read_u64((pa & (PAGE_SIZE - 1)) // ENTRY_SIZE_BYTES)

    def _read_table(self, table_pa: int, level_index: int) -> np.ndarray | None:
        """All entries of a table (a view or a copy), or None if ``borrow_phys`` refuses one
        of its pages. Tables this object did not allocate are read as one granule (the top
        table's size at the top level) from ``table_pa``, whatever its alignment."""
        owned = self._owned.get(table_pa)
        if owned is not None and owned[0] == level_index:
            return self._table(table_pa).to_array()
        count = self._pgd_entries if level_index == 0 else self._ptes
        chunks = []
        cursor, end = table_pa, table_pa + count * ENTRY_SIZE_BYTES
        while cursor < end:
            page = self.api.borrow_phys(cursor)
            if page is None:
                return None
            off = cursor & (PAGE_SIZE - 1)
            chunk = min(PAGE_SIZE - off, end - cursor)
            chunks.append(page.read(off, chunk))
            cursor += chunk
        return np.frombuffer(b"".join(chunks), dtype="<u8")

    def entry(self, level: int, iova: int) -> int | None:
        """The raw level-``level`` entry covering ``iova``, or None when no table reaches it
        (or ``iova`` is outside the space). EINVAL for a level this geometry lacks."""
        self._check_live()
        target = self._level_index(level)
        if not 0 <= iova < 1 << self.geometry.ias:
            return None
        table_pa = self.ttb_pa
        for level_index in range(target + 1):
            value = self._read_entry(
                table_pa, level_index, self._levels[level_index].index_of(iova)
            )
            if value is None or level_index == target:
                return value
            if value & lpae.TYPE_MASK != lpae.TYPE_TABLE:
                return None
            table_pa = int(self.entry_format.output_address(value))
        return None  # pragma: no cover - the loop returns at target

    def lookup(self, iova: int) -> tuple[int, int] | None:
        """The leaf mapping ``iova`` as ``(level, entry)``: a block (type 1 above the last
        level) or a page (type 3 at it), found as ``arm_lpae_iova_to_phys`` walks. None when
        unmapped, outside the space, or the walk meets an invalid entry or a table that is not
        System RAM."""
        self._check_live()
        if not 0 <= iova < 1 << self.geometry.ias:
            return None
        table_pa = self.ttb_pa
        for level_index, lv in enumerate(self._levels):
            value = self._read_entry(table_pa, level_index, lv.index_of(iova))
            if not value:
                return None
            if self._is_leaf(value, level_index):
                return lv.level, value
            if level_index == self._last or value & lpae.TYPE_MASK != lpae.TYPE_TABLE:
                return None
            table_pa = int(self.entry_format.output_address(value))
        return None  # pragma: no cover - the last level returns

    def iova_to_phys(self, iova: int) -> int | None:
        """The PA ``iova`` translates to, through pages and blocks alike
        (``arm_lpae_iova_to_phys``: the leaf's output address | the offset inside it)."""
        found = self.lookup(iova)
        if found is None:
            return None
        level, value = found
        span = self.geometry.level(level).entry_span_bytes
        return int(self.entry_format.output_address(value)) | (iova & (span - 1))

    def tables(self) -> Iterator[tuple[int, int, int, int]]:
        """Every table reachable from the top one (top first), depth first in IOVA order, as
        ``(level, table_pa, va_start, span_bytes)``. Table entries pointing to pages this
        object did not allocate are followed too (fault injection); a table that is not
        System RAM is yielded but not descended into. Do not modify tables while iterating."""
        self._check_live()
        yield from self._tables_under(self.ttb_pa, 0, 0)

    def _tables_under(
        self, table_pa: int, level_index: int, va_start: int
    ) -> Iterator[tuple[int, int, int, int]]:
        lv = self._levels[level_index]
        yield lv.level, table_pa, va_start, lv.entries * lv.entry_span_bytes
        if level_index == self._last:
            return
        entries = self._read_table(table_pa, level_index)
        if entries is None:
            return
        used = entries[: lv.entries]
        is_table = (used & _U64(lpae.TYPE_MASK)) == _U64(lpae.TYPE_TABLE)
        children = [(j, int(used[j])) for j in np.flatnonzero(is_table).tolist()]
        for j, value in children:
            child_pa = int(self.entry_format.output_address(value))
            yield from self._tables_under(
                child_pa, level_index + 1, va_start + j * lv.entry_span_bytes
            )

    # --- teardown --------------------------------------------------------------------------

    def free(self) -> None:
        """``arm_lpae_free_pgtable``: free every table reachable from the top one and the top
        one itself; mappings left inside simply vanish. Entries that point to tables this
        object did not allocate are reported and not freed; tables orphaned by
        ``raw_write_entry`` stay allocated (leaked, as in the kernel). Any use afterwards,
        a second ``free`` included, is a SimBug."""
        self._check_live()
        self._free_table(self.ttb_pa, 0, 0)
        self.freed = True
        self._views.clear()


__all__ = ["ATTR_MASK", "PROT_MASK", "LpaePageTable", "get_order"]
