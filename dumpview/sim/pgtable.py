"""UAT (Apple AGX GPU MMU) page tables, built and walked through the simulated Rust Page API.

This module owns the driver's page-table semantics (reference sheet sections 2 and 4, seed 004):

- Tables are single 16 KiB pages of 2048 little-endian u64 entries. Levels are numbered as in
  ``formats.geometry`` (ARM lookup levels): with a 39-bit IAS, L1 is the TTB (VA bits 38:36),
  L2 spans 32 MiB per entry (35:25), L3 holds the leaves (24:14).
- A new table is ``alloc_page(GFP_KERNEL | GFP_ZERO)`` turned into its physical address with
  ``into_phys``; the parent entry becomes ``table_pa | 3``. Tables are reached again by physical
  address (``borrow_phys_unchecked``; the TTB of ``new_with_ttb`` through ``borrow_phys``) and
  freed with ``from_phys`` + drop when the page table is dropped. Unmapping never frees tables.
- Leaves are ``pa | prot | 3``, plus nG (bit 11) only when the TTB is owned (user VMs); the
  borrowed kernel TTB gets global entries.
- Like the driver, every range operation (map, unmap, reprot, alloc_pages) allocates missing
  tables on its way. Problems the driver only logs with ``pr_err`` are kept as ``Report`` values
  in ``UatPageTable.reports`` and the operation goes on: a leaf already mapped (overwritten),
  already unmapped, reprot of an unmapped leaf (skipped), an upper-level entry that is neither 0
  nor a table (its whole span is skipped), leaves still mapped when the table is dropped.

Failure modes: ``EINVAL`` for misaligned addresses or sizes, VAs outside the managed range, a PA
beyond the output address size, a bad geometry or range; ``EIO`` when ``new_with_ttb``'s TTB is
not System RAM ("not mapped (DT using no-map?)") or a table is not RAM; ``ENOMEM`` from table
allocation; ``ENOENT`` from ``raw_write_entry`` when no table covers the VA at that level and
from ``raw_write_leaf`` when an unexpected upper entry covers it; ``SimBug`` for any use after
``drop``. ``raw_write_entry`` and ``raw_write_leaf`` are fault injection: they skip the managed
range and output-address checks on purpose. Queries (``tables``, ``leaves``, ``lookup``) never
report and never allocate; they do not descend into tables that are not System RAM.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dumpview.sim.errors import EINVAL, EIO, ENOENT, SimBug
from dumpview.sim.page import GFP_KERNEL, GFP_ZERO, PageApi
from formats.geometry import Geometry, LevelGeometry
from formats.uat import (
    BIT_NG,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROTS,
    PTE_PAGE,
    PTE_TABLE,
    PTE_TYPE_MASK,
    UAT_IAS,
    UAT_VA_BASE_UPPER,
    Prot,
    uat_geometry,
)

KIND_ALREADY_MAPPED = "already-mapped"
KIND_ALREADY_UNMAPPED = "already-unmapped"
KIND_REPROT_UNMAPPED = "reprot-unmapped"
KIND_UNEXPECTED_TABLE_PTE = "unexpected-table-pte"
KIND_LEAKED_LEAF = "leaked-leaf"
REPORT_KINDS = (
    KIND_ALREADY_MAPPED,
    KIND_ALREADY_UNMAPPED,
    KIND_REPROT_UNMAPPED,
    KIND_UNEXPECTED_TABLE_PTE,
    KIND_LEAKED_LEAF,
)

# The bits reprot replaces (driver's UAT_PROT_BITS): AP 7:6, memattr 4:2, bits 63:52.
PROT_BITS = (3 << 6) | (7 << 2) | (0xFFF << 52)

_U64 = np.uint64
_PAGE_MASK = PAGE_SIZE - 1
_TYPE_MASK = _U64(PTE_TYPE_MASK)
_TYPE_TABLE = _U64(PTE_TABLE)
_KEEP_ON_REPROT = _U64(~PROT_BITS & ((1 << 64) - 1))
# Leaf windows up to this many entries are handled entry by entry (numpy's per-call overhead
# dominates small windows); larger ones in bulk.
_SMALL_WINDOW = 16


class _ArrayWords:
    """Entry access by index through a numpy array (used on big-endian hosts, where a native
    ``memoryview.cast("Q")`` would read the little-endian entries byte-swapped)."""

    __slots__ = ("_array",)

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __getitem__(self, index: int) -> int:
        return int(self._array[index])

    def __setitem__(self, index: int, value: int) -> None:
        self._array[index] = value


def _words_of(array: np.ndarray) -> memoryview | _ArrayWords:
    """Fast scalar access to a table's entries: a native u64 view on little-endian hosts."""
    if sys.byteorder == "little":
        return memoryview(array).cast("B").cast("Q")
    return _ArrayWords(array)


@dataclass(frozen=True)
class Report:
    """One problem the driver would log with ``pr_err``: what, at which VA, the entry value."""

    kind: str
    va: int
    value: int
    message: str


class UatPageTable:
    """One UAT address space: a TTB (owned or borrowed) and the lower tables it allocates.

    Build with ``UatPageTable.new`` (owns a fresh TTB) or ``UatPageTable.new_with_ttb``
    (borrows a firmware-preallocated TTB, never freed). ``va_range`` is the ``[start, end)``
    range of full 64-bit VAs this object manages: only there may it map, and only there does
    ``drop`` free tables.
    """

    def __init__(
        self,
        api: PageApi,
        ttb_pa: int,
        ttb_owned: bool,
        va_range: tuple[int, int],
        geometry: Geometry,
    ) -> None:
        """Use ``new`` or ``new_with_ttb``; this trusts its arguments."""
        self.api = api
        self.ttb = ttb_pa
        self.ttb_owned = ttb_owned
        self.va_range = va_range
        self.geometry = geometry
        self.reports: list[Report] = []
        self.dropped = False
        self._levels: tuple[LevelGeometry, ...] = geometry.levels
        self._upper = self._levels[:-1]
        self._leaf = self._levels[-1]
        self._leaf_entries = self._leaf.entries
        self._space_base = geometry.va_base & ~geometry.ias_mask
        self._space_end = self._space_base + (1 << geometry.ias)
        self._oa_mask = geometry.oa_mask
        self._leaf_bits = PTE_PAGE | (BIT_NG if ttb_owned else 0)
        self._steps = np.arange(self._leaf_entries, dtype=_U64) << _U64(self._leaf.va_shift)
        # (VA shift, index mask, entry span - 1) of each upper level, for the hot walk.
        self._upper_params = tuple(
            (lv, lv.va_shift, lv.entries - 1, lv.entry_span_bytes - 1) for lv in self._upper
        )
        # Borrowed table handles by PA: entries as a numpy array and as scalar words.
        self._views: dict[int, np.ndarray] = {}
        self._words: dict[int, memoryview | _ArrayWords] = {}
        ttb_page = api.borrow_phys(ttb_pa) if not ttb_owned else api.borrow_phys_unchecked(ttb_pa)
        if ttb_page is None:  # pragma: no cover - new_with_ttb checked it
            raise EIO(f"ttb at 0x{ttb_pa:x} is not mapped (DT using no-map?)")
        self._ttb_view = ttb_page.as_u64_array()
        self._ttb_words = _words_of(self._ttb_view)
        self._views[ttb_pa] = self._ttb_view
        self._words[ttb_pa] = self._ttb_words

    # --- construction ----------------------------------------------------------------------

    @staticmethod
    def _geometry(ias: int, oas: int, upper: bool) -> Geometry:
        try:
            return uat_geometry(ias=ias, oas=oas, va_base=UAT_VA_BASE_UPPER if upper else 0)
        except ValueError as exc:
            raise EINVAL(f"bad UAT geometry (ias {ias}, oas {oas}): {exc}") from exc

    @staticmethod
    def _check_range(va_range: tuple[int, int], geometry: Geometry) -> None:
        start, end = va_range
        if (start | end) & _PAGE_MASK:
            raise EINVAL(f"va range 0x{start:x}..0x{end:x} is not 16 KiB aligned")
        if not start < end:
            raise EINVAL(f"va range 0x{start:x}..0x{end:x} is empty")
        if not (geometry.in_space(start) and geometry.in_space(end - 1)):
            raise EINVAL(
                f"va range 0x{start:x}..0x{end:x} is not inside one {geometry.ias}-bit space"
            )

    @classmethod
    def new(
        cls,
        api: PageApi,
        va_range: tuple[int, int],
        oas: int,
        ias: int = UAT_IAS,
        va_base_upper: bool | None = None,
    ) -> UatPageTable:
        """A page table that owns a freshly allocated, zeroed TTB (user VMs: leaves get nG).

        ``va_base_upper`` selects the upper-half space; None infers it from ``va_range``.
        EINVAL for a bad range or geometry, ENOMEM if no page is left for the TTB.
        """
        upper = va_range[0] >= 1 << 63 if va_base_upper is None else va_base_upper
        geometry = cls._geometry(ias, oas, upper)
        cls._check_range(va_range, geometry)
        ttb_pa = api.into_phys(api.alloc_page(GFP_KERNEL | GFP_ZERO))
        return cls(api, ttb_pa, True, (va_range[0], va_range[1]), geometry)

    @classmethod
    def new_with_ttb(
        cls,
        api: PageApi,
        ttb_pa: int,
        va_range: tuple[int, int],
        oas: int,
        ias: int = UAT_IAS,
    ) -> UatPageTable:
        """A page table on a firmware-preallocated TTB that it borrows and never frees.

        EINVAL when the TTB or the range is not 16 KiB aligned (or the range is bad); EIO when
        ``borrow_phys(ttb_pa)`` fails (the TTB is not System RAM, e.g. a no-map region). In
        debug mode, SimBug when the TTB page is free in the allocator (not reserved: the
        allocator could hand it out as a table).
        """
        if ttb_pa & _PAGE_MASK:
            raise EINVAL(f"ttb 0x{ttb_pa:x} is not 16 KiB aligned")
        geometry = cls._geometry(ias, oas, va_range[0] >= 1 << 63)
        cls._check_range(va_range, geometry)
        if api.borrow_phys(ttb_pa) is None:
            raise EIO(f"ttb at 0x{ttb_pa:x} is not mapped (DT using no-map?)")
        if api.debug and api.allocator.is_free(ttb_pa >> PAGE_SHIFT):
            raise SimBug(
                f"ttb at 0x{ttb_pa:x} is free memory in the page allocator: the firmware's "
                "TTB must be reserved in the DT"
            )
        return cls(api, ttb_pa, False, (va_range[0], va_range[1]), geometry)

    # --- table access ----------------------------------------------------------------------

    def _writable(self, table_pa: int) -> np.ndarray:
        """A cached writable entry view of the table at ``table_pa``."""
        view = self._views.get(table_pa)
        if view is None:
            view = self.api.borrow_phys_unchecked(table_pa).as_u64_array()
            self._views[table_pa] = view
            self._words[table_pa] = _words_of(view)
        return view

    def _forget(self, table_pa: int) -> None:
        self._views.pop(table_pa, None)
        self._words.pop(table_pa, None)

    def _readable(self, table_pa: int) -> np.ndarray | None:
        """An entry view for reading, or None if the table is not System RAM."""
        view = self._views.get(table_pa)
        if view is not None:
            return view
        if not self.api.memory.page_is_ram(table_pa >> self.geometry.page_shift):
            return None
        return self.api.borrow_phys_unchecked(table_pa).as_u64_array(writable=False)

    def _alloc_table(self) -> int:
        """A new zeroed table page, given away as its physical address."""
        table_pa = self.api.into_phys(self.api.alloc_page(GFP_KERNEL | GFP_ZERO))
        if table_pa & ~self._oa_mask:
            self.api.from_phys(table_pa).drop()
            raise EINVAL(f"table page 0x{table_pa:x} is beyond the {self.geometry.oas}-bit OAS")
        return table_pa

    def _report(self, kind: str, va: int, value: int, message: str) -> None:
        self.reports.append(Report(kind, va, value, message))

    def _report_unexpected(self, lv: LevelGeometry, off: int, table_pa: int, idx: int) -> None:
        value = int(self._readable_or_raise(table_pa)[idx])
        va = self._space_base + off
        self._report(
            KIND_UNEXPECTED_TABLE_PTE,
            va,
            value,
            f"unexpected table PTE value 0x{value:x} at IOVA 0x{va:x} "
            f"(L{lv.level} entry {idx} at pa 0x{table_pa + 8 * idx:x})",
        )

    def _readable_or_raise(self, table_pa: int) -> np.ndarray:
        view = self._readable(table_pa)
        if view is None:
            raise EIO(f"table at pa 0x{table_pa:x} is not System RAM")
        return view

    def _check_live(self) -> None:
        if self.dropped:
            raise SimBug(f"use of the page table with TTB 0x{self.ttb:x} after drop")

    def _op_offsets(self, va: int, size_bytes: int, what: str) -> tuple[int, int]:
        """Validate an operation's range; return it as offsets into the address space."""
        self._check_live()
        if size_bytes < 0:
            raise EINVAL(f"{what}: negative size {size_bytes}")
        if (va | size_bytes) & _PAGE_MASK:
            raise EINVAL(f"{what}: va 0x{va:x} size 0x{size_bytes:x} not 16 KiB aligned")
        start, end = self.va_range
        if not (start <= va and va + size_bytes <= end):
            raise EINVAL(
                f"{what}: 0x{va:x}..0x{va + size_bytes:x} is outside the managed range "
                f"0x{start:x}..0x{end:x}"
            )
        return va - self._space_base, va + size_bytes - self._space_base

    def _walk_alloc(self, off_start: int, off_end: int) -> Iterator[tuple[int, int, int, int]]:
        """Leaf-table windows ``(offset, leaf table pa, first index, count)`` covering the
        range, allocating missing tables and skipping (with a report) unexpected upper entries.
        The leaf table's handles are in ``self._views`` / ``self._words``."""
        leaf_shift = self._leaf.va_shift
        leaf_entries = self._leaf_entries
        oa_mask = self._oa_mask
        words_by_pa = self._words
        off = off_start
        while off < off_end:
            words = self._ttb_words
            table_pa = self.ttb
            skip_to = 0
            for lv, shift, index_mask, span_mask in self._upper_params:
                idx = (off >> shift) & index_mask
                entry = words[idx]
                if entry == 0:
                    entry = self._alloc_table() | PTE_TABLE
                    words[idx] = entry
                if entry & PTE_TYPE_MASK != PTE_TABLE:
                    self._report_unexpected(lv, off, table_pa, idx)
                    skip_to = (off | span_mask) + 1
                    break
                table_pa = entry & oa_mask
                next_words = words_by_pa.get(table_pa)
                if next_words is None:
                    self._writable(table_pa)
                    next_words = words_by_pa[table_pa]
                words = next_words
            if skip_to:
                off = skip_to
                continue
            idx = (off >> leaf_shift) & (leaf_entries - 1)
            count = min(leaf_entries - idx, (off_end - off) >> leaf_shift)
            yield off, table_pa, idx, count
            off += count << leaf_shift

    def _walk_read(
        self, off_start: int, off_end: int
    ) -> Iterator[tuple[int, np.ndarray, int, int]]:
        """Like ``_walk_alloc`` but read-only: missing, unexpected or non-RAM tables are
        skipped silently."""
        leaf_shift = self._leaf.va_shift
        leaf_entries = self._leaf_entries
        oa_mask = self._oa_mask
        off = off_start
        while off < off_end:
            table: np.ndarray | None = self._ttb_view
            skip_to = 0
            for lv in self._upper:
                assert table is not None
                entry = int(table[(off >> lv.va_shift) & (lv.entries - 1)])
                table = (
                    self._readable(entry & oa_mask) if entry & PTE_TYPE_MASK == PTE_TABLE else None
                )
                if table is None:
                    skip_to = (off | (lv.entry_span_bytes - 1)) + 1
                    break
            if skip_to:
                off = skip_to
                continue
            assert table is not None
            idx = (off >> leaf_shift) & (leaf_entries - 1)
            count = min(leaf_entries - idx, (off_end - off) >> leaf_shift)
            yield off, table, idx, count
            off += count << leaf_shift

    @staticmethod
    def _resolve_prot(prot: Prot | str) -> Prot:
        if isinstance(prot, Prot):
            return prot
        try:
            return PROTS[prot]
        except KeyError:
            raise EINVAL(f"unknown protection {prot!r}") from None

    # --- operations --------------------------------------------------------------------------

    def alloc_pages(self, va: int, size_bytes: int) -> None:
        """Allocate the tables covering ``[va, va + size_bytes)`` without mapping anything."""
        off_start, off_end = self._op_offsets(va, size_bytes, "alloc_pages")
        for _ in self._walk_alloc(off_start, off_end):
            pass

    def map_pages(self, va: int, pa: int, size_bytes: int, prot: Prot | str) -> None:
        """Map ``size_bytes`` of physically contiguous memory at ``pa`` to ``va``.

        Each leaf becomes ``pa | prot.bits | 3`` (| nG when the TTB is owned). A leaf that is
        already non-zero is reported as "already-mapped" and overwritten. EINVAL for
        misalignment, a range outside the managed one, a PA beyond the OAS, an unknown prot.
        """
        prot = self._resolve_prot(prot)
        off_start, off_end = self._op_offsets(va, size_bytes, "map_pages")
        if pa & _PAGE_MASK or pa < 0:
            raise EINVAL(f"map_pages: pa 0x{pa:x} is not 16 KiB aligned")
        if size_bytes and (pa + size_bytes - 1) >> self.geometry.oas:
            raise EINVAL(
                f"map_pages: pa 0x{pa:x}+0x{size_bytes:x} is beyond the {self.geometry.oas}-bit OAS"
            )
        bits = prot.bits | self._leaf_bits
        page_bytes = 1 << self._leaf.va_shift
        for off, table_pa, idx, count in self._walk_alloc(off_start, off_end):
            first = (pa + (off - off_start)) | bits
            va_first = self._space_base + off
            if count <= _SMALL_WINDOW:
                words = self._words[table_pa]
                value = first
                for i in range(idx, idx + count):
                    old = words[i]
                    if old:
                        self._report_already_mapped(va_first + (i - idx) * page_bytes, old)
                    words[i] = value
                    value += page_bytes
                continue
            window = self._views[table_pa][idx : idx + count]
            for i in np.flatnonzero(window).tolist():
                self._report_already_mapped(va_first + i * page_bytes, int(window[i]))
            np.add(self._steps[:count], _U64(first), out=window)

    def _report_already_mapped(self, va: int, value: int) -> None:
        self._report(
            KIND_ALREADY_MAPPED,
            va,
            value,
            f"map_pages: page at IOVA 0x{va:x} is already mapped (PTE 0x{value:x})",
        )

    def _report_already_unmapped(self, va: int, value: int) -> None:
        self._report(
            KIND_ALREADY_UNMAPPED, va, value, f"unmap_pages: page at IOVA 0x{va:x} already unmapped"
        )

    def _report_reprot_unmapped(self, va: int, value: int) -> None:
        self._report(
            KIND_REPROT_UNMAPPED,
            va,
            value,
            f"reprot_pages: page at IOVA 0x{va:x} is unmapped (PTE 0x{value:x})",
        )

    def unmap_pages(self, va: int, size_bytes: int) -> None:
        """Clear the leaves of ``[va, va + size_bytes)``; leaves with type bits 0 are reported
        "already-unmapped". Tables are never freed here."""
        off_start, off_end = self._op_offsets(va, size_bytes, "unmap_pages")
        page_bytes = 1 << self._leaf.va_shift
        for off, table_pa, idx, count in self._walk_alloc(off_start, off_end):
            va_first = self._space_base + off
            if count <= _SMALL_WINDOW:
                words = self._words[table_pa]
                for i in range(idx, idx + count):
                    old = words[i]
                    if not old & PTE_TYPE_MASK:
                        self._report_already_unmapped(va_first + (i - idx) * page_bytes, old)
                    words[i] = 0
                continue
            window = self._views[table_pa][idx : idx + count]
            for i in np.flatnonzero((window & _TYPE_MASK) == 0).tolist():
                self._report_already_unmapped(va_first + i * page_bytes, int(window[i]))
            window[:] = 0

    def reprot_pages(self, va: int, size_bytes: int, prot: Prot | str) -> None:
        """Replace AP, memattr and bits 63:52 of every mapped leaf in the range; leaves that
        are not type 3 are reported "reprot-unmapped" and left alone."""
        prot = self._resolve_prot(prot)
        off_start, off_end = self._op_offsets(va, size_bytes, "reprot_pages")
        page_bytes = 1 << self._leaf.va_shift
        bits = prot.bits
        keep = ~PROT_BITS & ((1 << 64) - 1)
        for off, table_pa, idx, count in self._walk_alloc(off_start, off_end):
            va_first = self._space_base + off
            if count <= _SMALL_WINDOW:
                words = self._words[table_pa]
                for i in range(idx, idx + count):
                    old = words[i]
                    if old & PTE_TYPE_MASK != PTE_PAGE:
                        self._report_reprot_unmapped(va_first + (i - idx) * page_bytes, old)
                    else:
                        words[i] = (old & keep) | bits
                continue
            window = self._views[table_pa][idx : idx + count]
            mapped = (window & _TYPE_MASK) == _TYPE_TABLE
            for i in np.flatnonzero(~mapped).tolist():
                self._report_reprot_unmapped(va_first + i * page_bytes, int(window[i]))
            window[mapped] = (window[mapped] & _KEEP_ON_REPROT) | _U64(bits)

    def raw_write_entry(self, level: int, va: int, value: int) -> None:
        """Fault injection: store ``value`` in the level-``level`` entry that covers ``va``.

        ENOENT if no table covers ``va`` at that level; EINVAL for a level this geometry lacks,
        a VA outside the space or a value wider than 64 bits.
        """
        self._check_live()
        if not 0 <= value < 1 << 64:
            raise EINVAL(f"raw_write_entry: value {value:#x} does not fit 64 bits")
        found = self._table_at(level, va)
        if found is None:
            raise ENOENT(f"raw_write_entry: no L{level} table covers IOVA 0x{va:x}")
        table_pa, idx = found
        self._writable(table_pa)[idx] = value

    def raw_write_leaf(self, va: int, value: int) -> None:
        """Fault injection: store ``value`` in the leaf entry of ``va``, allocating missing
        tables on the way as ``map_pages`` does, but without its checks: ``va`` may lie outside
        the managed range and ``value`` may hold any bits (an output address beyond the OAS, a
        type other than 3). Nothing is reported, not even a live leaf being overwritten.

        EINVAL for a VA that is not 16 KiB aligned or outside the address space, or a value
        wider than 64 bits; ENOENT when an upper entry on the way is neither empty nor a table
        (it is reported "unexpected-table-pte", as every walk that allocates does).
        """
        self._check_live()
        if not 0 <= value < 1 << 64:
            raise EINVAL(f"raw_write_leaf: value {value:#x} does not fit 64 bits")
        if va & _PAGE_MASK or not self._space_base <= va < self._space_end:
            raise EINVAL(
                f"raw_write_leaf: IOVA 0x{va:x} is not a 16 KiB page of the "
                f"{self.geometry.ias}-bit space"
            )
        off = va - self._space_base
        for _off, table_pa, idx, _count in self._walk_alloc(off, off + PAGE_SIZE):
            self._words[table_pa][idx] = value
            return
        raise ENOENT(f"raw_write_leaf: an unexpected upper-level entry covers IOVA 0x{va:x}")

    def _table_at(self, level: int, va: int) -> tuple[int, int] | None:
        """(table pa, entry index) of the level-``level`` entry covering ``va``, or None."""
        try:
            target = self.geometry.level(level)
        except ValueError as exc:
            raise EINVAL(str(exc)) from None
        if not self._space_base <= va < self._space_end:
            raise EINVAL(f"IOVA 0x{va:x} is outside the {self.geometry.ias}-bit space")
        off = va - self._space_base
        table_pa = self.ttb
        for lv in self._levels:
            idx = (off >> lv.va_shift) & (lv.entries - 1)
            if lv is target or lv.level == target.level:
                return table_pa, idx
            view = self._readable(table_pa)
            if view is None:
                return None
            entry = int(view[idx])
            if entry & PTE_TYPE_MASK != PTE_TABLE:
                return None
            table_pa = entry & self._oa_mask
        return None  # pragma: no cover - target is one of the levels

    # --- drop --------------------------------------------------------------------------------

    def drop(self, clear_parent_entries: bool = True) -> None:
        """Free every lower table under the managed range and the TTB if owned.

        Each non-zero leaf left in a table being freed is reported as "leaked-leaf"; upper
        entries that are neither 0 nor tables are reported and skipped. The driver leaves the
        freed tables' entries in the (borrowed) TTB as they were; ``clear_parent_entries=True``
        zeroes them so that a later walk of the firmware's TTB does not follow freed pages.
        SimBug on a second drop.
        """
        self._check_live()
        self._drop_table(self.ttb, 0, 0, clear_parent_entries)
        self.dropped = True
        self._views.clear()
        self._words.clear()
        if self.ttb_owned:
            self.api.from_phys(self.ttb).drop()

    def _drop_table(self, table_pa: int, level_index: int, base_off: int, clear: bool) -> None:
        lv = self._levels[level_index]
        span = lv.entry_span_bytes
        range_lo = self.va_range[0] - self._space_base
        range_hi = self.va_range[1] - self._space_base
        first = max(0, (range_lo - base_off) // span)
        last = min(lv.entries, -(-(range_hi - base_off) // span))
        table = self._writable(table_pa)
        child_is_leaf = level_index + 1 == len(self._levels) - 1
        for idx in range(first, last):
            entry = int(table[idx])
            if entry == 0:
                continue
            child_off = base_off + idx * span
            if entry & PTE_TYPE_MASK != PTE_TABLE:
                self._report_unexpected(lv, max(child_off, range_lo), table_pa, idx)
                continue
            child_pa = entry & self._oa_mask
            if child_is_leaf:
                self._report_leaks(child_pa, child_off)
            else:
                self._drop_table(child_pa, level_index + 1, child_off, clear)
            self._forget(child_pa)
            self.api.from_phys(child_pa).drop()
            if clear:
                table[idx] = 0

    def _report_leaks(self, leaf_table_pa: int, base_off: int) -> None:
        view = self._readable_or_raise(leaf_table_pa)
        leaf_shift = self._leaf.va_shift
        for i in np.flatnonzero(view).tolist():
            leaf_va = self._space_base + base_off + (i << leaf_shift)
            value = int(view[i])
            self._report(
                KIND_LEAKED_LEAF,
                leaf_va,
                value,
                f"drop: leaked page at IOVA 0x{leaf_va:x} (PTE 0x{value:x})",
            )

    # --- queries -----------------------------------------------------------------------------

    def _clip(self, va_start: int | None, va_end: int | None) -> tuple[int, int]:
        lo = self._space_base if va_start is None else max(va_start, self._space_base)
        hi = self._space_end if va_end is None else min(va_end, self._space_end)
        lo = (lo + _PAGE_MASK) & ~_PAGE_MASK
        hi &= ~_PAGE_MASK
        return lo - self._space_base, max(lo, hi) - self._space_base

    def tables(self) -> Iterator[tuple[int, int, int, int]]:
        """Every table page reachable from the TTB (TTB first), depth first in VA order, as
        ``(level, pa, va_start, va_span_bytes)``. A table that is not System RAM is yielded
        but not descended into. Do not modify the tables while iterating."""
        self._check_live()
        yield from self._tables_under(self.ttb, 0, 0)

    def _tables_under(
        self, table_pa: int, level_index: int, base_off: int
    ) -> Iterator[tuple[int, int, int, int]]:
        lv = self._levels[level_index]
        yield lv.level, table_pa, self._space_base + base_off, lv.entries * lv.entry_span_bytes
        if level_index == len(self._levels) - 1:
            return
        view = self._readable(table_pa)
        if view is None:
            return
        used = view[: lv.entries]
        for idx in np.flatnonzero((used & _TYPE_MASK) == _TYPE_TABLE).tolist():
            child_pa = int(used[idx]) & self._oa_mask
            yield from self._tables_under(
                child_pa, level_index + 1, base_off + idx * lv.entry_span_bytes
            )

    def leaf_chunks(
        self, va_start: int | None = None, va_end: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Type-3 leaves in ``[va_start, va_end)`` (default: the whole address space, not just
        the managed range), one leaf table at a time, as ``(vas, ptes)`` uint64 arrays in VA
        order. The arrays are copies."""
        self._check_live()
        off_start, off_end = self._clip(va_start, va_end)
        leaf_shift = _U64(self._leaf.va_shift)
        for off, table, idx, count in self._walk_read(off_start, off_end):
            window = table[idx : idx + count]
            hits = np.flatnonzero((window & _TYPE_MASK) == _TYPE_TABLE)
            if hits.size:
                vas = _U64(self._space_base + off) + (hits.astype(_U64) << leaf_shift)
                yield vas, window[hits].copy()

    def leaves(
        self, va_start: int | None = None, va_end: int | None = None
    ) -> Iterator[tuple[int, int]]:
        """Type-3 leaves as ``(va, pte)`` in VA order (see ``leaf_chunks`` for the range)."""
        for vas, ptes in self.leaf_chunks(va_start, va_end):
            yield from zip(vas.tolist(), ptes.tolist(), strict=True)

    def count_leaves(self, va_start: int | None = None, va_end: int | None = None) -> int:
        """How many type-3 leaves ``leaves`` would yield."""
        return sum(len(vas) for vas, _ in self.leaf_chunks(va_start, va_end))

    def entry(self, level: int, va: int) -> int | None:
        """The raw level-``level`` entry covering ``va``, or None if no table reaches it."""
        self._check_live()
        found = self._table_at(level, va)
        if found is None:
            return None
        view = self._readable(found[0])
        return None if view is None else int(view[found[1]])

    def lookup(self, va: int) -> int | None:
        """The leaf entry mapping ``va`` if it is type 3, else None (also None outside the
        space)."""
        if not self._space_base <= va < self._space_end:
            self._check_live()
            return None
        pte = self.entry(self._leaf.level, va)
        return pte if pte is not None and pte & PTE_TYPE_MASK == PTE_PAGE else None

    def translate(self, va: int) -> int | None:
        """The PA ``va`` maps to (output address bits masked by the OAS), or None."""
        pte = self.lookup(va)
        return None if pte is None else (pte & self._oa_mask) | (va & _PAGE_MASK)


__all__ = [
    "KIND_ALREADY_MAPPED",
    "KIND_ALREADY_UNMAPPED",
    "KIND_LEAKED_LEAF",
    "KIND_REPROT_UNMAPPED",
    "KIND_UNEXPECTED_TABLE_PTE",
    "PROT_BITS",
    "REPORT_KINDS",
    "Report",
    "UatPageTable",
]
