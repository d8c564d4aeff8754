"""Tests of the ARM LPAE stage-1 page table with io-pgtable-arm semantics (dumpview/sim/lpae.py)
and of the multi-page Page API it needs (dumpview/sim/page.py: alloc_pages, orders in
into_phys/from_phys, U64Block). Everything is checked on the bytes in simulated memory."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dumpview.sim.allocator import BuddyAllocator
from dumpview.sim.errors import EINVAL, EIO, ENOENT, SimBug
from dumpview.sim.lpae import ATTR_MASK, LpaePageTable, get_order
from dumpview.sim.memory import MemoryMap, PhysicalMemory, RamBank, ReservedRegion
from dumpview.sim.page import GFP_KERNEL, GFP_ZERO, PageApi, U64Block
from dumpview.sim.pgtable import (
    KIND_ALREADY_MAPPED,
    KIND_ALREADY_UNMAPPED,
    KIND_UNEXPECTED_TABLE_PTE,
)
from formats import lpae
from formats.entryformat import LPAE_4K, LPAE_16K, LPAE_64K, UAT, EntryFormat
from formats.lpae import (
    IOMMU_CACHE,
    IOMMU_MMIO,
    IOMMU_NOEXEC,
    IOMMU_PRIV,
    IOMMU_READ,
    IOMMU_WRITE,
    LpaeEntry,
    prot_to_bits,
)
from formats.uat import PAGE_SHIFT, PAGE_SIZE

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

RAM_BASE = 0x8_0000_0000
RAM_SIZE = 64 * MiB
NOMAP_PA = RAM_BASE + 0x100000
RW = IOMMU_READ | IOMMU_WRITE
# Output addresses of mappings: they need not be RAM, only aligned and inside the OAS.
TARGET = 0x40_0000_0000

FORMATS = [LPAE_4K, LPAE_16K, LPAE_64K]
FORMAT_IDS = [f.name for f in FORMATS]
# (format, block size, block level): the largest block each granule offers with a 48-bit OAS.
BLOCKS = [
    (LPAE_4K, 2 * MiB, 2),
    (LPAE_4K, 1 * GiB, 1),
    (LPAE_16K, 32 * MiB, 2),
    (LPAE_64K, 512 * MiB, 2),
]
BLOCK_IDS = [f"{f.name}-{size >> 20}M" for f, size, _ in BLOCKS]


class System:
    """One simulated 16 KiB-page kernel: memory, allocator, Page API."""

    def __init__(self) -> None:
        self.memory = PhysicalMemory(
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                reserved=(ReservedRegion("fw", NOMAP_PA, 4 * PAGE_SIZE, no_map=True),),
            )
        )
        self.allocator = BuddyAllocator(self.memory)
        self.api = PageApi(self.memory, self.allocator)

    def allocated(self) -> int:
        return self.allocator.stats().allocated_pages


@pytest.fixture
def system() -> System:
    return System()


def granule(fmt: EntryFormat) -> int:
    return 1 << fmt.page_shift


def raw_entry(system: System, table_pa: int, index: int) -> int:
    """An entry read straight from physical memory, not through the page table object."""
    return system.memory.read_u64(table_pa + 8 * index)


def table_at(pt: LpaePageTable, level: int, iova: int) -> int:
    """The PA of the level-``level`` table covering ``iova`` (from ``tables()``)."""
    for lv, pa, va_start, span in pt.tables():
        if lv == level and va_start <= iova < va_start + span:
            return pa
    raise AssertionError(f"no L{level} table covers 0x{iova:x}")


def entry_index(pt: LpaePageTable, level: int, iova: int) -> int:
    return pt.geometry.level(level).index_of(iova)


# --- Page API: multi-page blocks -------------------------------------------------------------


def test_alloc_pages_order_round_trip_and_drop(system: System) -> None:
    before = system.allocator.stats()
    owned = system.api.alloc_pages(2, GFP_KERNEL | GFP_ZERO)
    assert owned.order == 2 and owned.size_bytes == 4 * PAGE_SIZE
    assert system.allocator.allocated_order(owned.pfn) == 2
    assert system.allocated() == before.allocated_pages + 4
    pa = system.api.into_phys(owned)
    assert system.api.given_away_order(pa) == 2
    with pytest.raises(SimBug, match="given away with order 2"):
        system.api.from_phys(pa)  # order 0: wrong
    back = system.api.from_phys(pa, 2)
    assert back.order == 2
    back.drop()
    assert system.allocated() == before.allocated_pages
    assert system.allocator.leaks() == []
    with pytest.raises(EINVAL):
        system.api.alloc_pages(11)


def test_alloc_page_is_order_zero_as_before(system: System) -> None:
    page = system.api.alloc_page()
    assert page.order == 0
    pa = system.api.into_phys(page)
    assert system.api.given_away_order(pa) == 0
    system.api.from_phys(pa).drop()
    assert system.allocator.leaks() == []


def test_u64_block_spans_pages_and_aliases_memory(system: System) -> None:
    owned = system.api.alloc_pages(2, GFP_KERNEL | GFP_ZERO)
    block = owned.as_u64_block()
    assert isinstance(block, U64Block) and len(block) == 4 * 2048 and len(block.parts) == 4
    block[0] = 0x11
    block[2048] = 0x22  # first entry of the second page
    block[8191] = 0x33
    assert system.memory.read_u64(owned.pa) == 0x11
    assert system.memory.read_u64(owned.pa + PAGE_SIZE) == 0x22
    assert system.memory.read_u64(owned.pa + 4 * PAGE_SIZE - 8) == 0x33
    block.write_run(2046, np.arange(1, 5, dtype=np.uint64))  # crosses a page boundary
    assert [block[i] for i in range(2046, 2050)] == [1, 2, 3, 4]
    assert block.read_run(2046, 4).tolist() == [1, 2, 3, 4]
    assert block.to_array()[8191] == 0x33
    for bad in (-1, 8192):
        with pytest.raises(EINVAL):
            block[bad]
    with pytest.raises(EINVAL):
        block.write_run(8190, np.zeros(3, dtype=np.uint64))
    # A borrowed page views order 0 unless told; entries= trims.
    borrowed = system.api.borrow_phys(owned.pa)
    assert borrowed is not None
    assert len(borrowed.as_u64_block()) == 2048
    assert len(borrowed.as_u64_block(order=2, entries=5000)) == 5000
    assert len(borrowed.as_u64_array(entries=512)) == 512
    with pytest.raises(EINVAL):
        borrowed.as_u64_array(entries=2049)
    owned.drop()


def test_u64_block_refuses_non_ram_pages(system: System) -> None:
    page = system.api.borrow_phys_unchecked(NOMAP_PA - PAGE_SIZE)
    with pytest.raises(EIO):
        page.as_u64_block(order=2)  # the second page is no-map


def test_get_order() -> None:
    assert [get_order(s) for s in (1, 4 * KiB, 16 * KiB, 16 * KiB + 1, 64 * KiB)] == [0, 0, 0, 1, 2]


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_new_allocates_one_zeroed_top_table(system: System, fmt: EntryFormat) -> None:
    # Dirty the page the allocator will hand out next: the top table must still read as zeros.
    dirty = system.api.alloc_page()
    dirty.write(0, b"\xff" * PAGE_SIZE)
    dirty_pa = dirty.pa
    dirty.drop()
    before = system.allocated()
    pt = LpaePageTable.new(system.api, fmt)
    assert pt.ttb_pa == dirty_pa
    assert system.allocated() == before + 1  # the pgd of every IAS-48 stage-1 is order 0
    assert system.memory.read(pt.ttb_pa, PAGE_SIZE) == bytes(PAGE_SIZE)
    assert system.api.is_given_away(pt.ttb_pa)
    top = pt.geometry.levels[0]
    assert list(pt.tables()) == [(top.level, pt.ttb_pa, 0, 1 << 48)]
    assert pt.geometry == lpae.lpae_geometry(fmt.name.split("-")[1], 48, 48)
    assert pt.iova_to_phys(0) is None and pt.lookup(0) is None


def test_new_rejects_bad_arguments(system: System) -> None:
    before = system.allocated()
    with pytest.raises(EINVAL, match="not ARM LPAE"):
        LpaePageTable.new(system.api, UAT)
    with pytest.raises(EINVAL, match="bad LPAE geometry"):
        LpaePageTable.new(system.api, LPAE_4K, ias=52)
    with pytest.raises(EINVAL, match="bad LPAE geometry"):
        LpaePageTable.new(system.api, LPAE_16K, oas=52)
    with pytest.raises(EINVAL, match="aligned"):
        LpaePageTable.new(system.api, LPAE_64K, va_range=(0x1000, 0x20000))
    with pytest.raises(EINVAL, match="empty or outside"):
        LpaePageTable.new(system.api, LPAE_4K, va_range=(0, 1 << 49))
    assert system.allocated() == before


# --- map: lazy tables, pages -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_tables_are_allocated_lazily_and_zeroed(system: System, fmt: EntryFormat) -> None:
    pt = LpaePageTable.new(system.api, fmt)
    g = granule(fmt)
    levels = pt.geometry.levels
    before = system.allocated()
    assert pt.map_pages(0x4000_0000, TARGET, g, RW) == g
    new_tables = [t for t in pt.tables() if t[1] != pt.ttb_pa]
    assert len(new_tables) == len(levels) - 1  # one table per level below the top
    pages_per_table = 1 << get_order(g)
    assert system.allocated() == before + (len(levels) - 1) * pages_per_table
    for level, pa, _va, _span in new_tables:
        assert pt.table_order(level) == get_order(g)
        assert system.allocator.allocated_order(pa >> PAGE_SHIFT) == get_order(g)
        entries = np.frombuffer(system.memory.read(pa, g), dtype="<u8")
        assert np.count_nonzero(entries) == 1  # zeroed, then one entry written
    # The leaf is a page at L3; every table entry on the way is encode(pa) | 3.
    leaf_table = table_at(pt, 3, 0x4000_0000)
    leaf = raw_entry(system, leaf_table, entry_index(pt, 3, 0x4000_0000))
    assert leaf == fmt.encode_output_address(TARGET) | prot_to_bits(RW) | 3
    parent = table_at(pt, 2, 0x4000_0000)
    assert raw_entry(system, parent, entry_index(pt, 2, 0x4000_0000)) == (
        fmt.encode_output_address(leaf_table) | 3
    )
    # A second page in the same leaf table allocates nothing.
    after_first = system.allocated()
    pt.map_pages(0x4000_0000 + g, TARGET + g, g, RW)
    assert system.allocated() == after_first
    assert pt.reports == []


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_page_map_spanning_leaf_tables(system: System, fmt: EntryFormat) -> None:
    pt = LpaePageTable.new(system.api, fmt)
    g = granule(fmt)
    span = pt.geometry.level(3).entries * g  # one leaf table's reach
    iova = span - 3 * g  # three pages in one leaf table, five in the next
    pa = TARGET + g  # misaligned for any block: pages only
    assert pt.map_pages(iova, pa, 8 * g, RW) == 8 * g
    assert len([t for t in pt.tables() if t[0] == 3]) == 2
    for i in range(8):
        assert pt.iova_to_phys(iova + i * g + 8) == pa + i * g + 8
        assert pt.lookup(iova + i * g)[0] == 3
    assert pt.iova_to_phys(iova - g) is None and pt.iova_to_phys(iova + 8 * g) is None


# --- map: blocks -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "size", "level"), BLOCKS, ids=BLOCK_IDS)
def test_block_map_writes_one_block_entry(
    system: System, fmt: EntryFormat, size: int, level: int
) -> None:
    pt = LpaePageTable.new(system.api, fmt)
    iova = 2 * size
    pa = TARGET  # aligned for every block size here
    prot = IOMMU_READ | IOMMU_CACHE | IOMMU_NOEXEC
    before = system.allocated()
    assert pt.map_pages(iova, pa, size, prot) == size
    # Tables down to the block's level only.
    assert max(t[0] for t in pt.tables()) == level
    top_level = pt.geometry.levels[0].level
    assert system.allocated() == before + (level - top_level) * (1 << get_order(granule(fmt)))
    table = table_at(pt, level, iova)
    value = raw_entry(system, table, entry_index(pt, level, iova))
    parsed = LpaeEntry.parse(value.to_bytes(8, "little"))
    assert parsed.type == lpae.TYPE_BLOCK
    assert fmt.output_address(value) == pa
    assert parsed.af and parsed.sh == lpae.SH_INNER
    assert parsed.ap_ro and parsed.ap_unpriv  # read-only, unprivileged access allowed
    assert parsed.attr_indx == lpae.MAIR_IDX_CACHE
    assert parsed.uxn and parsed.pxn
    assert value == fmt.encode_output_address(pa) | prot_to_bits(prot) | lpae.TYPE_BLOCK
    assert pt.lookup(iova + size - 1) == (level, value)
    assert pt.iova_to_phys(iova) == pa
    assert pt.iova_to_phys(iova + size - 8) == pa + size - 8
    assert pt.iova_to_phys(iova + size) is None
    # Only the block's own entry is set in its table.
    entries = pt.geometry.level(level).entries
    raw = np.frombuffer(system.memory.read(table, 8 * entries), dtype="<u8")
    assert np.count_nonzero(raw) == 1


def test_4k_2m_block_with_mmio_and_priv_prot(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.map_pages(
        2 * MiB, 0x2_0000_0000, 2 * MiB, IOMMU_READ | IOMMU_WRITE | IOMMU_MMIO | IOMMU_PRIV
    )
    level, value = pt.lookup(2 * MiB)
    parsed = LpaeEntry.parse(value.to_bytes(8, "little"))
    assert level == 2 and parsed.type == 1
    assert parsed.attr_indx == lpae.MAIR_IDX_DEV
    assert not parsed.ap_ro and not parsed.ap_unpriv
    assert lpae.privileged_view(value) == "RWX" and lpae.unprivileged_view(value) == "---"


def test_largest_page_size_first_then_smaller(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    # 4K + 2M + 4K at a 2M-aligned PA offset by 4K: page, block, page.
    iova, pa = 2 * MiB - 4 * KiB, TARGET + 2 * MiB - 4 * KiB
    assert pt.map_pages(iova, pa, 2 * MiB + 8 * KiB, RW) == 2 * MiB + 8 * KiB
    assert pt.lookup(iova)[0] == 3
    assert pt.lookup(2 * MiB) == (2, pt.lookup(2 * MiB + 123 * KiB)[1])
    assert pt.lookup(4 * MiB)[0] == 3
    for off in (0, 4 * KiB, 1 * MiB, 2 * MiB + 4 * KiB):
        assert pt.iova_to_phys(iova + off) == pa + off


@pytest.mark.parametrize(("fmt", "size", "level"), BLOCKS, ids=BLOCK_IDS)
def test_block_sized_map_falls_back_to_pages(
    system: System, fmt: EntryFormat, size: int, level: int
) -> None:
    g = granule(fmt)
    pt = LpaePageTable.new(system.api, fmt)
    # PA aligned to the granule only: no block fits, whatever the IOVA.
    if size <= 32 * MiB:
        pt.map_pages(size, TARGET + g, size, RW)
        assert pt.lookup(size)[0] == 3 and pt.lookup(2 * size - g)[0] == 3
        assert pt.iova_to_phys(2 * size - g) == TARGET + size
    # A size one granule short of the block: pages (or smaller blocks) only.
    pt2 = LpaePageTable.new(system.api, fmt)
    pt2.map_pages(size, TARGET, size - g, RW)
    assert pt2.lookup(size)[0] > level
    assert pt2.lookup(2 * size - g) is None
    assert pt2.iova_to_phys(2 * size - 2 * g) == TARGET + size - 2 * g


def test_block_sizes_per_granule() -> None:
    system = System()
    assert LpaePageTable.new(system.api, LPAE_4K).pgsizes == (4 * KiB, 2 * MiB, 1 * GiB)
    assert LpaePageTable.new(system.api, LPAE_16K).pgsizes == (16 * KiB, 32 * MiB)
    assert LpaePageTable.new(system.api, LPAE_64K).pgsizes == (64 * KiB, 512 * MiB)
    pt52 = LpaePageTable.new(system.api, LPAE_64K, ias=52, oas=52)
    assert pt52.pgsizes == (64 * KiB, 512 * MiB, 4 * TiB)


# --- unmap -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "size", "level"),
    [b for b in BLOCKS if b[2] == 2],  # blocks that split into pages
    ids=[i for b, i in zip(BLOCKS, BLOCK_IDS, strict=True) if b[2] == 2],
)
def test_partial_unmap_splits_the_block(
    system: System, fmt: EntryFormat, size: int, level: int
) -> None:
    g = granule(fmt)
    pt = LpaePageTable.new(system.api, fmt)
    iova, pa = size, TARGET
    pt.map_pages(iova, pa, size, RW | IOMMU_NOEXEC)
    block_value = pt.lookup(iova)[1]
    before = system.allocated()
    hole = iova + 5 * g
    assert pt.unmap_pages(hole, g) == g
    assert system.allocated() == before + (1 << get_order(g))  # one new table
    assert pt.iova_to_phys(hole) is None
    assert pt.iova_to_phys(hole + g - 1) is None
    # The parent entry is now a table whose pages carry the block's attributes.
    parent = table_at(pt, level, iova)
    new_table = table_at(pt, level + 1, iova)
    assert raw_entry(system, parent, entry_index(pt, level, iova)) == (
        fmt.encode_output_address(new_table) | 3
    )
    entries = np.frombuffer(system.memory.read(new_table, g), dtype="<u8")
    assert np.count_nonzero(entries) == len(entries) - 1
    for i in (0, 4, 6, len(entries) - 1):
        value = int(entries[i])
        assert value & 3 == 3
        assert value & ATTR_MASK == block_value & ATTR_MASK
        assert fmt.output_address(value) == pa + i * g
        assert pt.iova_to_phys(iova + i * g + 8) == pa + i * g + 8
    assert entries[5] == 0
    assert pt.reports == []


def test_split_1g_block_down_two_levels(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.map_pages(1 * GiB, TARGET, 1 * GiB, RW)
    before = system.allocated()
    hole = 1 * GiB + 6 * MiB + 12 * KiB
    assert pt.unmap_pages(hole, 4 * KiB) == 4 * KiB
    assert system.allocated() == before + 2  # an L2 table of 2M blocks, an L3 table of pages
    assert pt.lookup(1 * GiB)[0] == 2  # still a 2M block
    assert pt.lookup(hole - 4 * KiB)[0] == 3
    assert pt.iova_to_phys(hole) is None
    assert pt.iova_to_phys(hole + 4 * KiB) == TARGET + 6 * MiB + 16 * KiB
    assert pt.iova_to_phys(2 * GiB - 1) == TARGET + 1 * GiB - 1


def test_unmap_2m_out_of_1g_block_splits_into_blocks(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.map_pages(1 * GiB, TARGET, 1 * GiB, RW)
    before = system.allocated()
    assert pt.unmap_pages(1 * GiB + 4 * MiB, 4 * MiB) == 4 * MiB
    assert system.allocated() == before + 1
    assert pt.iova_to_phys(1 * GiB + 5 * MiB) is None
    assert pt.lookup(1 * GiB + 8 * MiB)[0] == 2


@pytest.mark.parametrize(("fmt", "size", "level"), BLOCKS, ids=BLOCK_IDS)
def test_block_sized_unmap_over_a_table_frees_the_subtree(
    system: System, fmt: EntryFormat, size: int, level: int
) -> None:
    g = granule(fmt)
    pt = LpaePageTable.new(system.api, fmt)
    before = system.allocated()
    leaks_before = system.allocator.leaks()
    iova = size
    # Pages in the block's range: a table at level + 1 (and below for the 1G case).
    pt.map_pages(iova + 3 * g, TARGET + g, 2 * g, RW)
    pt.map_pages(iova + size - g, TARGET + 9 * g, g, RW)
    assert system.allocated() > before
    assert pt.unmap_pages(iova, size) == size  # one entry of the block's size cleared
    assert pt.iova_to_phys(iova + 3 * g) is None
    assert pt.iova_to_phys(iova + size - g) is None
    # Everything below the block's level is gone; the tables down to it stay.
    assert max(t[0] for t in pt.tables()) == level
    kept = (level - pt.geometry.levels[0].level) * (1 << get_order(g))
    assert system.allocated() == before + kept
    top = pt.geometry.levels[0].level
    assert len(system.allocator.leaks()) == len(leaks_before) + level - top  # pgd counted before
    assert pt.reports == []


def test_whole_block_unmap_returns_block_size_and_frees(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.map_pages(2 * MiB + 4 * KiB, TARGET, 4 * KiB, RW)
    before_pages = system.allocated()
    l3 = table_at(pt, 3, 2 * MiB)
    assert pt.unmap_pages(2 * MiB, 2 * MiB) == 2 * MiB
    assert system.allocated() == before_pages - 1
    assert not system.allocator.is_allocated(l3 >> PAGE_SHIFT)
    assert not system.api.is_given_away(l3)
    # 1G over an L2 table with an L3 table below it: both freed.
    pt.map_pages(1 * GiB + 2 * MiB, TARGET, 2 * MiB, RW)
    pt.map_pages(1 * GiB + 8 * MiB, TARGET, 4 * KiB, RW)
    before_pages = system.allocated()
    assert pt.unmap_pages(1 * GiB, 1 * GiB) == 1 * GiB
    assert system.allocated() == before_pages - 2
    assert pt.iova_to_phys(1 * GiB + 2 * MiB) is None


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_page_by_page_unmap_keeps_the_empty_table(system: System, fmt: EntryFormat) -> None:
    g = granule(fmt)
    pt = LpaePageTable.new(system.api, fmt)
    pt.map_pages(0, TARGET + g, 4 * g, RW)
    allocated = system.allocated()
    for i in range(4):
        assert pt.unmap_pages(i * g, g) == g
    assert system.allocated() == allocated
    leaf_table = table_at(pt, 3, 0)
    assert not np.frombuffer(system.memory.read(leaf_table, g), dtype="<u8").any()
    assert pt.reports == []


def test_unmap_of_empty_entries_reports_and_stops(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_16K)
    g = 16 * KiB
    assert pt.unmap_pages(0x100000, g) == 0
    assert [r.kind for r in pt.reports] == [KIND_ALREADY_UNMAPPED]
    assert pt.reports[0].va == 0x100000
    pt.reports.clear()
    pt.map_pages(0, TARGET, 2 * g, RW)
    pt.map_pages(3 * g, TARGET, g, RW)
    # The hole at 2g stops the unmap: the page at 3g stays.
    assert pt.unmap_pages(0, 4 * g) == 2 * g
    assert [(r.kind, r.va) for r in pt.reports] == [(KIND_ALREADY_UNMAPPED, 2 * g)]
    assert pt.iova_to_phys(3 * g) == TARGET


# --- map over existing entries -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_map_over_a_mapped_page_reports_and_keeps_it(system: System, fmt: EntryFormat) -> None:
    g = granule(fmt)
    pt = LpaePageTable.new(system.api, fmt)
    pt.map_pages(4 * g, TARGET, g, IOMMU_READ)
    old = pt.lookup(4 * g)[1]
    # Pages 3..5 in one leaf table: io-pgtable checks the whole run before writing any.
    assert pt.map_pages(3 * g, TARGET + 0x100000, 3 * g, RW) == 0
    assert [(r.kind, r.va, r.value) for r in pt.reports] == [(KIND_ALREADY_MAPPED, 4 * g, old)]
    assert pt.lookup(4 * g) == (3, old)
    assert pt.iova_to_phys(3 * g) is None and pt.iova_to_phys(5 * g) is None


def test_map_page_inside_a_block_reports(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.map_pages(2 * MiB, TARGET, 2 * MiB, RW)
    block = pt.lookup(2 * MiB)
    before = system.allocated()
    assert pt.map_pages(2 * MiB + 8 * KiB, 0x1000, 4 * KiB, RW) == 0
    assert [(r.kind, r.value) for r in pt.reports] == [(KIND_ALREADY_MAPPED, block[1])]
    assert pt.lookup(2 * MiB + 8 * KiB) == block
    assert system.allocated() == before


def test_block_map_over_a_table_frees_the_table_first(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.map_pages(2 * MiB, TARGET + 4 * KiB, 8 * KiB, RW)  # an L3 table
    l3 = table_at(pt, 3, 2 * MiB)
    before = system.allocated()
    assert pt.map_pages(2 * MiB, TARGET, 2 * MiB, RW) == 2 * MiB
    assert pt.reports == []
    assert system.allocated() == before - 1
    assert not system.allocator.is_allocated(l3 >> PAGE_SHIFT)
    assert pt.lookup(2 * MiB)[0] == 2
    assert pt.iova_to_phys(2 * MiB + 4 * KiB) == TARGET + 4 * KiB


def test_map_continues_after_unmap_of_the_old_entry(system: System) -> None:
    # io-pgtable's selftest: map, overlapping map fails, unmap one page, remap it.
    pt = LpaePageTable.new(system.api, LPAE_64K)
    pt.map_pages(512 * MiB, 512 * MiB, 512 * MiB, RW)
    assert pt.map_pages(512 * MiB, 1 * GiB, 512 * MiB, IOMMU_READ) == 0
    assert pt.unmap_pages(512 * MiB + 64 * KiB, 64 * KiB) == 64 * KiB
    assert pt.map_pages(512 * MiB + 64 * KiB, 64 * KiB, 64 * KiB, IOMMU_READ) == 64 * KiB
    assert pt.iova_to_phys(512 * MiB + 64 * KiB + 42) == 64 * KiB + 42
    assert pt.iova_to_phys(512 * MiB + 42) == 512 * MiB + 42


# --- teardown ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_free_returns_every_table(system: System, fmt: EntryFormat) -> None:
    g = granule(fmt)
    leaks_before = system.allocator.leaks()
    before = system.allocator.stats()
    pt = LpaePageTable.new(system.api, fmt)
    block = pt.pgsizes[1]
    pt.map_pages(0, TARGET + g, 7 * g, RW)
    pt.map_pages(block, TARGET, block, RW)
    pt.unmap_pages(block + g, g)  # a split table
    pt.map_pages(1 << 40, TARGET, g, RW)  # a distant branch
    table_pas = [pa for _l, pa, _v, _s in pt.tables()]
    assert len(table_pas) > len(pt.geometry.levels)
    pt.free()
    after = system.allocator.stats()
    assert system.allocator.leaks() == leaks_before
    assert after.allocated_pages == before.allocated_pages
    assert after.frees - before.frees == len(table_pas)
    assert all(not system.api.is_given_away(pa) for pa in table_pas)
    assert pt.owned_tables() == {}
    for use in (
        lambda: pt.map_pages(0, 0, g, RW),
        lambda: pt.unmap_pages(0, g),
        lambda: pt.iova_to_phys(0),
        lambda: pt.lookup(0),
        lambda: list(pt.tables()),
        lambda: pt.raw_write_entry(3, 0, 0),
        pt.free,
    ):
        with pytest.raises(SimBug, match="after free"):
            use()


def test_64k_tables_are_order_2(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_64K)
    assert system.allocator.allocated_order(pt.ttb_pa >> PAGE_SHIFT) == 0  # 512-byte pgd
    before = system.allocated()
    pt.map_pages(0, TARGET, 64 * KiB, RW)
    assert system.allocated() == before + 2 * 4
    for level, pa, _va, _span in pt.tables():
        order = 0 if pa == pt.ttb_pa else 2
        assert system.allocator.allocated_order(pa >> PAGE_SHIFT) == order
        assert pt.table_order(level) == order
        assert system.api.given_away_order(pa) == order
    # An entry in the last quarter of an L3 table lands in the table's fourth 16K page.
    iova = 8191 * 64 * KiB
    pt.map_pages(iova, TARGET + 2 * MiB, 64 * KiB, RW)
    l3 = table_at(pt, 3, iova)
    assert system.memory.read_u64(l3 + 3 * PAGE_SIZE + 8 * 2047) == (
        LPAE_64K.encode_output_address(TARGET + 2 * MiB) | prot_to_bits(RW) | 3
    )


def test_52_bit_output_addresses_with_64k(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_64K, ias=48, oas=52)
    pa = (0xA << 48) | 0x1234_0000
    pt.map_pages(0x10000, pa, 64 * KiB, RW)
    level, value = pt.lookup(0x10000)
    assert level == 3
    assert (value >> 12) & 0xF == 0xA  # PA[51:48] in bits 15:12
    assert (value >> 48) & 0xF == 0  # and not in 51:48
    assert value & lpae.OA_MASK & ~0xFFFF == 0x1234_0000
    assert pt.iova_to_phys(0x10000 + 0x42) == pa + 0x42
    # A 512M block above 2^48 that is then split keeps the high bits in every piece.
    block_pa = (0xF << 48) | (3 * 512 * MiB)
    pt.map_pages(512 * MiB, block_pa, 512 * MiB, IOMMU_READ)
    assert pt.lookup(512 * MiB)[0] == 2
    assert pt.unmap_pages(512 * MiB, 64 * KiB) == 64 * KiB
    assert pt.iova_to_phys(1 * GiB - 64 * KiB) == block_pa + 512 * MiB - 64 * KiB
    with pytest.raises(EINVAL, match="52-bit OAS"):
        pt.map_pages(0, 1 << 52, 64 * KiB, RW)


# --- argument errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_einval_cases(system: System, fmt: EntryFormat) -> None:
    g = granule(fmt)
    pt = LpaePageTable.new(system.api, fmt, va_range=(16 * g, 1 << 40))
    allocated = system.allocated()
    cases = [
        (lambda: pt.map_pages(16 * g + 0x800, TARGET, g, RW), "aligned"),
        (lambda: pt.map_pages(16 * g, TARGET + 0x800, g, RW), "aligned"),
        (lambda: pt.map_pages(16 * g, TARGET, g + 0x800, RW), "aligned"),
        (lambda: pt.map_pages(0, TARGET, g, RW), "outside the range"),
        (lambda: pt.map_pages((1 << 40) - g, TARGET, 2 * g, RW), "outside the range"),
        (lambda: pt.map_pages(16 * g, (1 << 48) - g, 2 * g, RW), "48-bit OAS"),
        (lambda: pt.map_pages(16 * g, -g, g, RW), "aligned|negative"),
        (lambda: pt.map_pages(16 * g, TARGET, g, 1 << 8), "prot"),
        (lambda: pt.unmap_pages(16 * g + 8, g), "aligned"),
        (lambda: pt.unmap_pages(0, g), "outside the range"),
        (lambda: pt.raw_write_entry(4, 0, 0), "level"),
        (lambda: pt.raw_write_entry(3, 1 << 48, 0), "outside"),
        (lambda: pt.raw_write_entry(3, 0, 1 << 64), "64 bits"),
    ]
    for call, needle in cases:
        with pytest.raises(EINVAL, match=needle):
            call()
    assert system.allocated() == allocated
    assert pt.reports == []


def test_prot_without_access_maps_nothing(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    before = system.allocated()
    assert pt.map_pages(0, TARGET, 4 * KiB, IOMMU_CACHE) == 0
    assert system.allocated() == before and pt.iova_to_phys(0) is None


# --- fault injection ---------------------------------------------------------------------------


def test_raw_write_entry_allocates_and_writes_anything(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    before = system.allocated()
    pt.raw_write_entry(3, 0x5000, 0xDEAD_0000_0002)  # type 2: invalid
    assert system.allocated() == before + 3
    assert pt.entry(3, 0x5000) == 0xDEAD_0000_0002
    assert raw_entry(system, table_at(pt, 3, 0x5000), 5) == 0xDEAD_0000_0002
    assert pt.lookup(0x5000) is None and pt.reports == []
    # Mapping over an invalid (non-leaf) entry overwrites it silently, like io-pgtable.
    assert pt.map_pages(0x5000, TARGET, 4 * KiB, RW) == 4 * KiB
    assert pt.iova_to_phys(0x5000) == TARGET
    # A block in the way of a deeper write.
    pt.map_pages(2 * MiB, TARGET, 2 * MiB, RW)
    with pytest.raises(ENOENT, match="not a table"):
        pt.raw_write_entry(3, 2 * MiB, 0)


def test_foreign_table_pointer_is_reported_not_followed(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_16K)
    foreign = system.api.into_phys(system.api.alloc_page(GFP_KERNEL | GFP_ZERO))
    system.memory.write_u64(foreign + 8 * 3, LPAE_16K.encode_output_address(TARGET) | 3)
    pt.raw_write_entry(2, 0, LPAE_16K.encode_output_address(foreign) | 3)
    # Queries follow it, as the hardware would.
    assert pt.iova_to_phys(3 * 16 * KiB + 5) == TARGET + 5
    assert (3, foreign, 0, 32 * MiB) in list(pt.tables())
    # Operations that would write or free through it stop with a report.
    assert pt.map_pages(0, TARGET, 16 * KiB, RW) == 0
    assert pt.unmap_pages(3 * 16 * KiB, 16 * KiB) == 0
    assert [r.kind for r in pt.reports] == [KIND_UNEXPECTED_TABLE_PTE] * 2
    with pytest.raises(ENOENT):
        pt.raw_write_entry(3, 0, 0)
    pt.reports.clear()
    pt.free()
    assert [r.kind for r in pt.reports] == [KIND_UNEXPECTED_TABLE_PTE]
    assert system.allocator.is_allocated(foreign >> PAGE_SHIFT)  # not ours: not freed
    system.api.from_phys(foreign).drop()
    assert system.allocator.leaks() == []


def test_foreign_table_in_no_map_memory_reads_as_absent(system: System) -> None:
    pt = LpaePageTable.new(system.api, LPAE_4K)
    pt.raw_write_entry(2, 0, LPAE_4K.encode_output_address(NOMAP_PA) | 3)
    assert pt.lookup(0) is None and pt.entry(3, 0) is None
    assert (3, NOMAP_PA, 0, 2 * MiB) in list(pt.tables())


# --- a model check -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_random_maps_and_unmaps_match_a_flat_model(system: System, fmt: EntryFormat) -> None:
    """Random non-overlapping maps and unmaps of mapped ranges, block-sized or not, against a
    dict of granule pages; then free leaves nothing allocated."""
    rng = random.Random(fmt.page_shift)
    g = granule(fmt)
    block = 2 * MiB if fmt is LPAE_4K else pt_block(fmt)
    window_pages = 4 * block // g
    leaks_before = system.allocator.leaks()
    pt = LpaePageTable.new(system.api, fmt)
    base = 8 * block
    model: dict[int, int] = {}  # page index -> pa
    for _ in range(60):
        if rng.random() < 0.55:
            count = rng.choice([1, 3, block // g, block // g + 2])
            start = rng.randrange(0, window_pages - count + 1)
            if rng.random() < 0.5:
                start -= start % (block // g)
            if any(start + i in model for i in range(count)):
                continue
            pa = TARGET + rng.randrange(0, 64) * block + (0 if rng.random() < 0.5 else 5 * g)
            assert pt.map_pages(base + start * g, pa, count * g, RW) == count * g
            for i in range(count):
                model[start + i] = pa + i * g
        elif model:
            first = rng.choice(sorted(model))
            count = 1
            while first + count in model and count < rng.choice([1, 4, block // g]):
                count += 1
            assert pt.unmap_pages(base + first * g, count * g) == count * g
            for i in range(count):
                del model[first + i]
    assert pt.reports == []
    for page in range(window_pages):
        assert pt.iova_to_phys(base + page * g + 8) == (
            None if page not in model else model[page] + 8
        )
    pt.free()
    assert system.allocator.leaks() == leaks_before


def pt_block(fmt: EntryFormat) -> int:
    return {LPAE_16K.name: 32 * MiB, LPAE_64K.name: 512 * MiB}[fmt.name]


def test_wrong_order_without_debug_is_caught_by_the_allocator() -> None:
    system = System()
    api = PageApi(system.memory, system.allocator, debug=False)
    pa = api.into_phys(api.alloc_pages(2))
    with pytest.raises(SimBug, match="allocated with order 2"):
        api.from_phys(pa).drop()
    api.from_phys(pa, 2).drop()
    assert system.allocator.leaks() == []


def test_u64_block_empty_and_fill_runs(system: System) -> None:
    owned = system.api.alloc_pages(1, GFP_KERNEL | GFP_ZERO)
    block = owned.as_u64_block()
    assert block.read_run(4096, 0).tolist() == []
    block.write_run(4000, 7)  # an int fills to the end, across no page boundary here
    assert block[4000] == 7 and block[4095] == 7 and block[3999] == 0
    with pytest.raises(EINVAL):
        block.write_run(4097, 7)
    with pytest.raises(EINVAL):
        block[0] = 1 << 64
    owned.drop()
