"""Tests of the simulation core: memory map, physical memory, buddy allocator, Page API and UAT
page tables (dumpview/sim/{errors,memory,allocator,page,pgtable}.py)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from dumpview.sim.allocator import MAX_ORDER, BuddyAllocator
from dumpview.sim.errors import EBUSY, EEXIST, EINVAL, EIO, ENOENT, ENOMEM, SimBug, SimError
from dumpview.sim.memory import (
    ZERO_PAGE,
    MemoryMap,
    MmioWindow,
    PhysicalMemory,
    RamBank,
    ReservedRegion,
)
from dumpview.sim.page import GFP_KERNEL, GFP_ZERO, OwnedPage, Page, PageApi
from dumpview.sim.pgtable import (
    KIND_ALREADY_MAPPED,
    KIND_ALREADY_UNMAPPED,
    KIND_LEAKED_LEAF,
    KIND_REPROT_UNMAPPED,
    KIND_UNEXPECTED_TABLE_PTE,
    PROT_BITS,
    UatPageTable,
)
from formats.uat import (
    BIT_NG,
    OAS_T600X,
    OAS_T8103,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROTS,
    PTE_TABLE,
    Prot,
)

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

RAM_BASE = 0x8_0000_0000
RAM_SIZE = 256 * MiB
TTBS_PA = RAM_BASE  # reserved, not no-map: firmware's TTB lives here
FW_TABLES_PA = RAM_BASE + 0x10000  # reserved, not no-map: firmware's lower tables
FW_TABLES_SIZE = 16 * PAGE_SIZE
NOMAP_PA = RAM_BASE + 0x100000
NOMAP_SIZE = 64 * PAGE_SIZE
MMIO_PA = 0x2_0000_0000
HOLE_PA = 0x1_0000_0000

KERNEL_RANGE = (0xFFFF_FFA0_0000_0000, 0xFFFF_FFB0_0000_0000)
FW_VA = 0xFFFF_FF80_0000_0000  # top-table entry 0 belongs to the firmware
USER_RANGE = (0x4000, (1 << 39) - 2 * PAGE_SIZE)

FW_PRIV_RW = PROTS["FW_PRIV_RW"]
GPU_SHARED_RW = PROTS["GPU_SHARED_RW"]


def make_map() -> MemoryMap:
    return MemoryMap(
        ram=(RamBank(RAM_BASE, RAM_SIZE),),
        reserved=(
            ReservedRegion("uat-ttbs", TTBS_PA, 4 * PAGE_SIZE),
            ReservedRegion("uat-pagetables", FW_TABLES_PA, FW_TABLES_SIZE),
            ReservedRegion("fw-private", NOMAP_PA, NOMAP_SIZE, no_map=True),
        ),
        mmio=(MmioWindow("agx", MMIO_PA, 16 * MiB),),
    )


class System:
    """One simulated kernel: memory, allocator, Page API."""

    def __init__(self, memory_map: MemoryMap | None = None, debug: bool = True) -> None:
        self.memory = PhysicalMemory(memory_map or make_map())
        self.allocator = BuddyAllocator(self.memory)
        self.api = PageApi(self.memory, self.allocator, debug=debug)


@pytest.fixture
def system() -> System:
    return System()


def firmware_table_setup(system: System) -> tuple[int, int]:
    """Plant the firmware's own mapping in top-table entry 0: an L2 and an L3 table in the
    reserved page-table region, one leaf at FW_VA. Returns (l2_pa, l3_pa)."""
    l2_pa, l3_pa = FW_TABLES_PA, FW_TABLES_PA + PAGE_SIZE
    mem = system.memory
    mem.write_u64(TTBS_PA + 0 * 8, l2_pa | PTE_TABLE)
    mem.write_u64(l2_pa + 0 * 8, l3_pa | PTE_TABLE)
    mem.write_u64(l3_pa + 0 * 8, NOMAP_PA | FW_PRIV_RW.bits | 3)
    return l2_pa, l3_pa


# --- errors --------------------------------------------------------------------------------


def test_error_names_and_messages() -> None:
    for cls in (EINVAL, EIO, ENOMEM, EEXIST, ENOENT, EBUSY):
        err = cls("something at 0x10")
        assert isinstance(err, SimError)
        assert err.errno == cls.__name__
        assert str(err) == f"{cls.__name__}: something at 0x10"
    assert str(EINVAL("EINVAL: already prefixed")) == "EINVAL: already prefixed"
    assert SimBug.errno == "EFAULT"
    assert issubclass(SimBug, SimError)


# --- memory map ----------------------------------------------------------------------------


def test_memory_map_validates() -> None:
    make_map().validate()


@pytest.mark.parametrize(
    ("memory_map", "needle"),
    [
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                reserved=(ReservedRegion("x", RAM_BASE, PAGE_SIZE, no_map=True, reusable=True),),
            ),
            "mutually exclusive",
        ),
        (MemoryMap(ram=(RamBank(RAM_BASE + 0x1000, RAM_SIZE),)), "not 16 KiB aligned"),
        (MemoryMap(ram=(RamBank(RAM_BASE, RAM_SIZE + 0x200),)), "not 16 KiB aligned"),
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                reserved=(ReservedRegion("odd", RAM_BASE + 0x2000, PAGE_SIZE),),
            ),
            "not 16 KiB aligned",
        ),
        (
            MemoryMap(ram=(RamBank(RAM_BASE, RAM_SIZE),), mmio=(MmioWindow("m", 0x1000, 0x4000),)),
            "not 16 KiB aligned",
        ),
        (MemoryMap(ram=(RamBank(RAM_BASE, 0),)), "size 0"),
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                reserved=(ReservedRegion("empty", RAM_BASE, 0),),
            ),
            "size 0",
        ),
        (
            MemoryMap(ram=(RamBank(RAM_BASE, RAM_SIZE), RamBank(RAM_BASE + MiB, RAM_SIZE))),
            "overlaps",
        ),
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                mmio=(MmioWindow("inside-ram", RAM_BASE + MiB, MiB),),
            ),
            "overlaps",
        ),
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                mmio=(MmioWindow("a", MMIO_PA, MiB), MmioWindow("b", MMIO_PA + 0x4000, MiB)),
            ),
            "overlaps",
        ),
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                reserved=(ReservedRegion("outside", HOLE_PA, PAGE_SIZE),),
            ),
            "not inside RAM",
        ),
        (
            MemoryMap(
                ram=(RamBank(RAM_BASE, RAM_SIZE),),
                reserved=(
                    ReservedRegion("straddle", RAM_BASE + RAM_SIZE - PAGE_SIZE, 2 * 16 * KiB),
                ),
            ),
            "not inside RAM",
        ),
    ],
)
def test_memory_map_rejects(memory_map: MemoryMap, needle: str) -> None:
    with pytest.raises(EINVAL) as info:
        memory_map.validate()
    assert str(info.value).startswith("EINVAL: ")
    assert needle in str(info.value)
    with pytest.raises(EINVAL):
        PhysicalMemory(memory_map)


def test_reserved_region_may_span_adjacent_banks() -> None:
    MemoryMap(
        ram=(RamBank(RAM_BASE, MiB), RamBank(RAM_BASE + MiB, MiB)),
        reserved=(ReservedRegion("span", RAM_BASE + MiB - PAGE_SIZE, 2 * PAGE_SIZE),),
    ).validate()


def test_classify() -> None:
    mm = make_map()
    kind, obj = mm.classify(RAM_BASE + 8 * MiB)
    assert kind == "ram" and obj == mm.ram[0]
    assert mm.classify(TTBS_PA) == ("reserved", mm.reserved[0])
    assert mm.classify(FW_TABLES_PA + PAGE_SIZE + 8) == ("reserved", mm.reserved[1])
    assert mm.classify(NOMAP_PA + NOMAP_SIZE - 1) == ("no-map", mm.reserved[2])
    assert mm.classify(NOMAP_PA + NOMAP_SIZE)[0] == "ram"
    assert mm.classify(MMIO_PA + 0x1234) == ("mmio", mm.mmio[0])
    assert mm.classify(HOLE_PA) == ("none", None)
    assert mm.classify(RAM_BASE + RAM_SIZE) == ("none", None)


# --- physical memory -----------------------------------------------------------------------


def test_pfn_valid_and_page_is_ram(system: System) -> None:
    mem = system.memory
    pfn = lambda pa: pa >> PAGE_SHIFT  # noqa: E731
    assert mem.pfn_valid(pfn(RAM_BASE)) and mem.page_is_ram(pfn(RAM_BASE))
    # reserved without no-map is still RAM
    assert mem.page_is_ram(pfn(FW_TABLES_PA))
    # no-map: a struct page exists, but it is not System RAM
    assert mem.pfn_valid(pfn(NOMAP_PA)) and not mem.page_is_ram(pfn(NOMAP_PA))
    assert not mem.page_is_ram(pfn(NOMAP_PA + NOMAP_SIZE - PAGE_SIZE))
    assert mem.page_is_ram(pfn(NOMAP_PA + NOMAP_SIZE))
    for pa in (MMIO_PA, HOLE_PA, RAM_BASE - PAGE_SIZE, RAM_BASE + RAM_SIZE):
        assert not mem.pfn_valid(pfn(pa)) and not mem.page_is_ram(pfn(pa))


def test_physical_memory_is_sparse_and_zero(system: System) -> None:
    mem = system.memory
    assert mem.written_pfns() == 0
    assert mem.read(RAM_BASE + 5 * MiB, 64) == bytes(64)
    assert mem.read_u64(RAM_BASE + 5 * MiB) == 0
    assert mem.page_bytes((RAM_BASE + 5 * MiB) >> PAGE_SHIFT) is ZERO_PAGE
    assert mem.written_pfns() == 0
    mem.write_u64(RAM_BASE + 5 * MiB + 8, 0x1122334455667788)
    assert mem.written_pfns() == 1
    assert mem.read(RAM_BASE + 5 * MiB + 8, 8) == bytes.fromhex("8877665544332211")
    assert mem.written_pfn_list() == [(RAM_BASE + 5 * MiB) >> PAGE_SHIFT]


def test_physical_memory_cross_page_access(system: System) -> None:
    mem = system.memory
    pa = RAM_BASE + 3 * PAGE_SIZE - 4
    mem.write_u64(pa, 0xAABBCCDD_11223344)
    assert mem.read_u64(pa) == 0xAABBCCDD_11223344
    assert mem.written_pfns() == 2
    data = bytes(range(256)) * 100
    mem.write(RAM_BASE + 7 * PAGE_SIZE - 100, data)
    assert mem.read(RAM_BASE + 7 * PAGE_SIZE - 100, len(data)) == data


def test_physical_memory_eio_outside_ram(system: System) -> None:
    mem = system.memory
    for pa in (MMIO_PA, HOLE_PA, RAM_BASE + RAM_SIZE):
        with pytest.raises(EIO, match=f"0x{pa:x}"):
            mem.read_u64(pa)
        with pytest.raises(EIO):
            mem.write_u64(pa, 1)
        with pytest.raises(EIO):
            mem.read(pa, 1)
        with pytest.raises(EIO):
            mem.page_bytes(pa >> PAGE_SHIFT)
        with pytest.raises(EIO):
            mem.zero_page(pa >> PAGE_SHIFT)
    # a write straddling the end of RAM fails before writing anything
    with pytest.raises(EIO):
        mem.write(RAM_BASE + RAM_SIZE - 4, b"12345678")
    assert mem.written_pfns() == 0
    with pytest.raises(EINVAL):
        mem.write_u64(RAM_BASE, 1 << 64)


def test_zero_page_keeps_views(system: System) -> None:
    mem = system.memory
    pfn = (RAM_BASE + MiB) >> PAGE_SHIFT
    buf = mem.page_buffer(pfn)
    buf[0:4] = b"abcd"
    assert mem.page_bytes(pfn)[:4] == b"abcd"
    mem.zero_page(pfn)
    assert bytes(buf[:4]) == bytes(4)
    assert mem.page_buffer(pfn) is buf


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8 * PAGE_SIZE - 1), st.binary(min_size=1, max_size=3 * PAGE_SIZE)),
        max_size=8,
    )
)
def test_physical_memory_matches_flat_model(writes: list[tuple[int, bytes]]) -> None:
    mem = PhysicalMemory(MemoryMap(ram=(RamBank(RAM_BASE, 16 * PAGE_SIZE),)))
    model = bytearray(16 * PAGE_SIZE)
    for off, data in writes:
        mem.write(RAM_BASE + off, data)
        model[off : off + len(data)] = data
    assert mem.read(RAM_BASE, len(model)) == bytes(model)
    for off in range(0, len(model) - 8, 4092):
        assert mem.read_u64(RAM_BASE + off) == int.from_bytes(model[off : off + 8], "little")


# --- buddy allocator -----------------------------------------------------------------------


def test_allocator_manages_ram_minus_all_reserved(system: System) -> None:
    alloc = system.allocator
    reserved_pages = (4 * PAGE_SIZE + FW_TABLES_SIZE + NOMAP_SIZE) // PAGE_SIZE
    assert alloc.total_pages == RAM_SIZE // PAGE_SIZE - reserved_pages
    stats = alloc.stats()
    assert stats.free_pages == stats.total_pages == alloc.total_pages
    assert stats.allocated_pages == 0
    for pa in (TTBS_PA, FW_TABLES_PA, NOMAP_PA):
        assert not alloc.is_managed(pa >> PAGE_SHIFT)
    assert alloc.is_managed((RAM_BASE + 20 * PAGE_SIZE) >> PAGE_SHIFT)
    assert not alloc.is_managed((RAM_BASE + 19 * PAGE_SIZE) >> PAGE_SHIFT)
    # everything handed out is outside the reserved regions
    handed = [alloc.alloc() for _ in range(40)]
    for pfn in handed:
        kind, _ = system.memory.classify(pfn << PAGE_SHIFT)
        assert kind == "ram"


def test_allocator_init_is_fast_for_many_gib() -> None:
    mm = MemoryMap(
        ram=(RamBank(0x10_0000_0000, 64 * GiB), RamBank(0x20_0000_0000, 32 * GiB)),
        reserved=(
            ReservedRegion("a", 0x10_0000_4000, 3 * PAGE_SIZE),
            ReservedRegion("b", 0x11_0000_0000, 100 * MiB, no_map=True),
        ),
    )
    start = time.perf_counter()
    alloc = BuddyAllocator(PhysicalMemory(mm))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    stats = alloc.stats()
    assert stats.total_pages == (96 * GiB - 3 * PAGE_SIZE - 100 * MiB) // PAGE_SIZE
    assert stats.free_pages == stats.total_pages
    assert sum(stats.free_blocks_per_order) < 10_000  # maximal blocks, not pages


def test_allocator_lowest_first_split_and_merge() -> None:
    memory = PhysicalMemory(MemoryMap(ram=(RamBank(RAM_BASE, 1024 * PAGE_SIZE),)))
    alloc = BuddyAllocator(memory)
    base = RAM_BASE >> PAGE_SHIFT
    initial = alloc.stats()
    assert initial.free_blocks_per_order[MAX_ORDER] == 1
    a = alloc.alloc()
    assert a == base
    assert alloc.stats().splits == MAX_ORDER
    b = alloc.alloc()
    assert b == base + 1
    c = alloc.alloc(order=2)
    assert c == base + 4
    d = alloc.alloc()
    assert d == base + 2
    alloc.free(a)
    alloc.free(b)  # merges with a into an order-1 block
    assert alloc.stats().merges == 1
    alloc.free(d)
    alloc.free(c, order=2)
    stats = alloc.stats()
    assert stats.free_blocks_per_order == initial.free_blocks_per_order
    assert stats.allocations == stats.frees == 4
    assert stats.merges == stats.splits
    assert alloc.leaks() == [] and alloc.teardown() == []


def test_allocator_enomem_and_bad_order() -> None:
    memory = PhysicalMemory(MemoryMap(ram=(RamBank(RAM_BASE, 8 * PAGE_SIZE),)))
    alloc = BuddyAllocator(memory)
    with pytest.raises(ENOMEM):
        alloc.alloc(order=4)
    pfns = [alloc.alloc() for _ in range(8)]
    assert pfns == list(range(RAM_BASE >> PAGE_SHIFT, (RAM_BASE >> PAGE_SHIFT) + 8))
    with pytest.raises(ENOMEM, match="0 of 8 pages free"):
        alloc.alloc()
    for bad in (-1, MAX_ORDER + 1):
        with pytest.raises(EINVAL):
            alloc.alloc(order=bad)


def test_allocator_double_free_and_wrong_order(system: System) -> None:
    alloc = system.allocator
    pfn = alloc.alloc(order=1)
    pa = pfn << PAGE_SHIFT
    with pytest.raises(SimBug, match=f"0x{pa:x}.*allocated with order 1"):
        alloc.free(pfn, order=0)
    with pytest.raises(SimBug, match="not an allocated block"):
        alloc.free(pfn + 1)
    alloc.free(pfn, order=1)
    with pytest.raises(SimBug, match=f"double free of pa 0x{pa:x}"):
        alloc.free(pfn, order=1)
    with pytest.raises(SimBug, match="not an allocated block"):
        alloc.free(TTBS_PA >> PAGE_SHIFT)


def test_allocator_leak_report_and_zeroing(system: System) -> None:
    alloc, mem = system.allocator, system.memory
    a = alloc.alloc()
    b = alloc.alloc(order=3)
    mem.write(a << PAGE_SHIFT, b"dirty")
    assert alloc.leaks() == [(a, 0), (b, 3)]
    assert alloc.teardown() == [(a, 0), (b, 3)]
    alloc.free(a)
    again = alloc.alloc()
    assert again == a
    assert mem.read(a << PAGE_SHIFT, 5) == b"dirty"  # not zeroed unless asked
    alloc.free(again)
    zeroed = alloc.alloc(zero=True)
    assert zeroed == a and mem.read(a << PAGE_SHIFT, 5) == bytes(5)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.integers(0, 1000)), max_size=60))
def test_allocator_random_sequences(ops: list[tuple[bool, int, int]]) -> None:
    memory = PhysicalMemory(
        MemoryMap(
            ram=(RamBank(RAM_BASE, 96 * PAGE_SIZE),),
            reserved=(ReservedRegion("r", RAM_BASE + 40 * PAGE_SIZE, 4 * PAGE_SIZE),),
        )
    )
    alloc = BuddyAllocator(memory)
    initial = alloc.stats()
    held: list[tuple[int, int]] = []
    for do_alloc, order, pick in ops:
        if do_alloc or not held:
            try:
                pfn = alloc.alloc(order)
            except ENOMEM:
                free_blocks = alloc.stats().free_blocks_per_order
                assert not any(free_blocks[order:]), "ENOMEM with a big enough block free"
                continue
            assert pfn % (1 << order) == 0
            assert alloc.is_managed(pfn) and alloc.is_managed(pfn + (1 << order) - 1)
            held.append((pfn, order))
        else:
            pfn, order = held.pop(pick % len(held))
            alloc.free(pfn, order)
        owned = sorted(p for pfn, order in held for p in range(pfn, pfn + (1 << order)))
        assert len(owned) == len(set(owned)), "a page was handed out twice"
        stats = alloc.stats()
        assert stats.free_pages + stats.allocated_pages == stats.total_pages
        assert stats.allocated_pages == len(owned)
        assert alloc.leaks() == sorted(held)
    for pfn, order in held:
        alloc.free(pfn, order)
    assert alloc.stats().free_blocks_per_order == initial.free_blocks_per_order


# --- Page API ------------------------------------------------------------------------------


def test_alloc_page_and_gfp_zero(system: System) -> None:
    api = system.api
    page = api.alloc_page(GFP_KERNEL)
    assert isinstance(page, OwnedPage)
    pa = page.pa
    page.write(0, b"stale data")
    page.drop()
    reused = api.alloc_page(GFP_KERNEL)
    assert reused.pa == pa and reused.read(0, 10) == b"stale data"
    reused.drop()
    zeroed = api.alloc_page(GFP_KERNEL | GFP_ZERO)
    assert zeroed.pa == pa and zeroed.read(0, 10) == bytes(10)
    zeroed.drop()


def test_into_phys_from_phys_round_trip(system: System) -> None:
    api = system.api
    owned = api.alloc_page(GFP_KERNEL | GFP_ZERO)
    owned.write_u64(5, 0xDEAD)
    assert api.owned_pages() == [owned.pa]
    pa = api.into_phys(owned)
    assert api.owned_pages() == [] and api.given_away() == [pa]
    with pytest.raises(SimBug, match=f"0x{pa:x}.*after into_phys"):
        _ = owned.pa
    with pytest.raises(SimBug):
        owned.read(0, 8)
    with pytest.raises(SimBug):
        api.into_phys(owned)
    with pytest.raises(SimBug):
        owned.drop()
    back = api.from_phys(pa)
    assert back.pa == pa and back.read_u64(5) == 0xDEAD
    assert api.given_away() == [] and api.owned_pages() == [pa]
    back.drop()
    assert api.owned_pages() == []
    assert system.allocator.leaks() == []


def test_from_phys_catches_double_ownership(system: System) -> None:
    api = system.api
    owned = api.alloc_page()
    with pytest.raises(SimBug, match=f"from_phys\\(0x{owned.pa:x}\\): double ownership"):
        api.from_phys(owned.pa)  # still owned, never given away
    pa = api.into_phys(owned)
    first = api.from_phys(pa)
    with pytest.raises(SimBug, match="already owned"):
        api.from_phys(pa)
    first.drop()
    with pytest.raises(SimBug, match="never given away"):
        api.from_phys(pa)  # freed already
    with pytest.raises(SimBug, match="never given away"):
        api.from_phys(RAM_BASE + 100 * PAGE_SIZE)
    with pytest.raises(SimBug, match="not a page address"):
        api.from_phys(pa + 8)


def test_from_phys_without_debug_trusts_caller(system: System) -> None:
    sysnd = System(debug=False)
    api = sysnd.api
    pa = api.into_phys(api.alloc_page())
    one = api.from_phys(pa)
    two = api.from_phys(pa)  # no check, as in Rust
    assert api.owned_pages() == [pa, pa]
    one.drop()
    with pytest.raises(SimBug, match=f"double free of pa 0x{pa:x}"):
        two.drop()  # the allocator catches it


def test_owned_page_drop_rules(system: System) -> None:
    api = system.api
    with api.alloc_page() as page:
        pa = page.pa
        assert api.owned_pages() == [pa]
    assert api.owned_pages() == [] and system.allocator.leaks() == []
    page2 = api.alloc_page()
    page2.drop()
    with pytest.raises(SimBug, match="after drop"):
        page2.drop()
    with api.alloc_page() as page3:
        api.into_phys(page3)  # consumed inside the block: exit must not free it
    assert len(api.given_away()) == 1
    assert len(system.allocator.leaks()) == 1


def test_borrow_phys_checks(system: System) -> None:
    api = system.api
    assert isinstance(api.borrow_phys(RAM_BASE + 10 * MiB), Page)
    assert api.borrow_phys(TTBS_PA) is not None  # reserved without no-map: RAM
    assert api.borrow_phys(FW_TABLES_PA + PAGE_SIZE) is not None
    assert api.borrow_phys(NOMAP_PA) is None
    assert api.borrow_phys(MMIO_PA) is None
    assert api.borrow_phys(HOLE_PA) is None
    assert api.borrow_phys(RAM_BASE + RAM_SIZE) is None
    borrowed = api.borrow_phys(RAM_BASE + 10 * MiB + 0x123)
    assert borrowed is not None and borrowed.pa == RAM_BASE + 10 * MiB
    unchecked = api.borrow_phys_unchecked(NOMAP_PA)
    assert unchecked.pa == NOMAP_PA
    with pytest.raises(EIO, match="not System RAM"):
        unchecked.read(0, 8)
    with pytest.raises(EIO):
        api.borrow_phys_unchecked(MMIO_PA).with_page_mapped(len)


@pytest.mark.parametrize(
    ("off", "length", "ok"),
    [
        (PAGE_SIZE, 0, True),
        (0, PAGE_SIZE, True),
        (0, 0, True),
        (PAGE_SIZE - 8, 8, True),
        (1, PAGE_SIZE, False),
        (PAGE_SIZE, 1, False),
        (PAGE_SIZE + 1, 0, False),
        (0, PAGE_SIZE + 1, False),
        (PAGE_SIZE - 7, 8, False),
        (-1, 1, False),
        (0, -1, False),
    ],
)
def test_with_pointer_into_page_bounds(system: System, off: int, length: int, ok: bool) -> None:
    page = system.api.alloc_page(GFP_ZERO)
    if ok:
        assert page.with_pointer_into_page(off, length, len) == length
        assert len(page.read(off, length)) == length
    else:
        with pytest.raises(EINVAL, match="outside"):
            page.with_pointer_into_page(off, length, len)
        with pytest.raises(EINVAL):
            page.read(off, length)
    page.drop()


def test_page_accessors(system: System) -> None:
    page = system.api.alloc_page(GFP_ZERO)
    page.with_page_mapped(lambda view: view.__setitem__(slice(0, 3), b"xyz"))
    assert page.read(0, 3) == b"xyz"
    page.with_pointer_into_page(PAGE_SIZE - 2, 2, lambda v: v.__setitem__(slice(0, 2), b"!!"))
    assert page.contents()[-2:] == b"!!"
    page.write_u64(2047, (1 << 64) - 1)
    assert page.read_u64(2047) == (1 << 64) - 1
    assert system.memory.read_u64(page.pa + 2047 * 8) == (1 << 64) - 1
    for bad in (-1, 2048):
        with pytest.raises(EINVAL):
            page.read_u64(bad)
        with pytest.raises(EINVAL):
            page.write_u64(bad, 0)
    with pytest.raises(EINVAL):
        page.write_u64(0, 1 << 64)
    with pytest.raises(EINVAL):
        page.write(PAGE_SIZE - 1, b"ab")
    page.drop()


# --- page tables ---------------------------------------------------------------------------


def test_owned_table_maps_translates_with_ng(system: System) -> None:
    api = system.api
    pt = UatPageTable.new(api, USER_RANGE, OAS_T8103)
    assert pt.ttb_owned and api.given_away() == [pt.ttb]
    va, pa = 0x1_0000_0000, RAM_BASE + 32 * MiB
    pt.map_pages(va, pa, 3 * PAGE_SIZE, GPU_SHARED_RW)
    for i in range(3):
        pte = pt.lookup(va + i * PAGE_SIZE)
        assert pte == (pa + i * PAGE_SIZE) | GPU_SHARED_RW.bits | BIT_NG | 3
        assert pt.translate(va + i * PAGE_SIZE + 0x10) == pa + i * PAGE_SIZE + 0x10
    assert pt.lookup(va + 3 * PAGE_SIZE) is None
    assert pt.lookup(va - PAGE_SIZE) is None
    assert pt.lookup(1 << 40) is None  # outside the space
    tables = list(pt.tables())
    assert [(level, start, span) for level, _, start, span in tables] == [
        (1, 0, 1 << 39),
        (2, 0, 64 * GiB),
        (3, va, 32 * MiB),
    ]
    assert tables[0][1] == pt.ttb
    assert sorted(pa for _, pa, _, _ in tables) == api.given_away()
    assert list(pt.leaves()) == [
        (va + i * PAGE_SIZE, (pa + i * PAGE_SIZE) | GPU_SHARED_RW.bits | BIT_NG | 3)
        for i in range(3)
    ]
    assert pt.reports == []
    pt.unmap_pages(va, 3 * PAGE_SIZE)
    pt.drop()
    assert pt.reports == []
    assert api.given_away() == [] and system.allocator.leaks() == []


def test_borrowed_ttb_entries_are_global(system: System) -> None:
    pt = UatPageTable.new_with_ttb(system.api, TTBS_PA, KERNEL_RANGE, OAS_T600X)
    assert not pt.ttb_owned
    va = KERNEL_RANGE[0] + 0x4000
    pt.map_pages(va, RAM_BASE + 64 * MiB, PAGE_SIZE, "FW_SHARED_RW")
    pte = pt.lookup(va)
    assert pte is not None and not pte & BIT_NG
    assert pte == (RAM_BASE + 64 * MiB) | PROTS["FW_SHARED_RW"].bits | 3
    # kernel range a0.. sits in top-table entry 2
    assert system.memory.read_u64(TTBS_PA + 2 * 8) & 3 == PTE_TABLE
    assert pt.entry(1, va) == system.memory.read_u64(TTBS_PA + 2 * 8)
    pt.unmap_pages(va, PAGE_SIZE)
    pt.drop()


def test_new_with_ttb_errors(system: System) -> None:
    api = system.api
    with pytest.raises(EINVAL, match="ttb 0x800000100 is not 16 KiB aligned"):
        UatPageTable.new_with_ttb(api, TTBS_PA + 0x100, KERNEL_RANGE, OAS_T600X)
    with pytest.raises(EINVAL, match="not 16 KiB aligned"):
        UatPageTable.new_with_ttb(
            api, TTBS_PA, (KERNEL_RANGE[0] + 0x1000, KERNEL_RANGE[1]), OAS_T600X
        )
    with pytest.raises(EINVAL, match="not 16 KiB aligned"):
        UatPageTable.new_with_ttb(
            api, TTBS_PA, (KERNEL_RANGE[0], KERNEL_RANGE[1] - 0x10), OAS_T600X
        )
    for bad_ttb in (NOMAP_PA, MMIO_PA, HOLE_PA):
        with pytest.raises(EIO, match=r"not mapped \(DT using no-map\?\)") as info:
            UatPageTable.new_with_ttb(api, bad_ttb, KERNEL_RANGE, OAS_T600X)
        assert f"0x{bad_ttb:x}" in str(info.value)
    with pytest.raises(EINVAL, match="empty"):
        UatPageTable.new_with_ttb(api, TTBS_PA, (KERNEL_RANGE[0], KERNEL_RANGE[0]), OAS_T600X)
    with pytest.raises(SimBug, match="free memory in the page allocator"):
        UatPageTable.new_with_ttb(api, RAM_BASE + 8 * MiB, KERNEL_RANGE, OAS_T600X)
    assert system.allocator.leaks() == []


def test_new_rejects_bad_ranges_without_leaking(system: System) -> None:
    with pytest.raises(EINVAL):
        UatPageTable.new(system.api, (0x4000, 1 << 40), OAS_T8103)  # beyond 39 bits
    with pytest.raises(EINVAL):
        UatPageTable.new(system.api, (0x4001, 0x8000), OAS_T8103)
    with pytest.raises(EINVAL, match="geometry"):
        UatPageTable.new(system.api, (0x4000, 0x8000), oas=8)
    assert system.allocator.leaks() == []


def test_map_argument_errors(system: System) -> None:
    pt = UatPageTable.new(system.api, USER_RANGE, OAS_T8103)
    with pytest.raises(EINVAL, match="not 16 KiB aligned"):
        pt.map_pages(0x4000 + 0x100, RAM_BASE, PAGE_SIZE, GPU_SHARED_RW)
    with pytest.raises(EINVAL, match="not 16 KiB aligned"):
        pt.map_pages(0x4000, RAM_BASE + 0x10, PAGE_SIZE, GPU_SHARED_RW)
    with pytest.raises(EINVAL, match="not 16 KiB aligned"):
        pt.map_pages(0x4000, RAM_BASE, 100, GPU_SHARED_RW)
    with pytest.raises(EINVAL, match="outside the managed range"):
        pt.map_pages(0, RAM_BASE, PAGE_SIZE, GPU_SHARED_RW)
    with pytest.raises(EINVAL, match="outside the managed range"):
        pt.map_pages(USER_RANGE[1] - PAGE_SIZE, RAM_BASE, 2 * PAGE_SIZE, GPU_SHARED_RW)
    with pytest.raises(EINVAL, match="40-bit OAS"):
        pt.map_pages(0x4000, (1 << 40) - PAGE_SIZE, 2 * PAGE_SIZE, GPU_SHARED_RW)
    with pytest.raises(EINVAL, match="unknown protection"):
        pt.map_pages(0x4000, RAM_BASE, PAGE_SIZE, "NOPE")
    with pytest.raises(EINVAL):
        pt.unmap_pages(0x4000, -PAGE_SIZE)
    pt.map_pages(0x4000, RAM_BASE, 0, GPU_SHARED_RW)  # empty: nothing happens
    assert [pa for _, pa, _, _ in pt.tables()] == [pt.ttb]
    pt.drop()
    assert system.allocator.leaks() == []


def test_already_mapped_and_unmapped_reports(system: System) -> None:
    pt = UatPageTable.new(system.api, USER_RANGE, OAS_T8103)
    va = 0x10_0000
    pt.map_pages(va, RAM_BASE + 16 * MiB, 2 * PAGE_SIZE, GPU_SHARED_RW)
    old = pt.lookup(va + PAGE_SIZE)
    pt.map_pages(va + PAGE_SIZE, RAM_BASE + 20 * MiB, 2 * PAGE_SIZE, PROTS["GPU_SHARED_RO"])
    assert [(r.kind, r.va, r.value) for r in pt.reports] == [
        (KIND_ALREADY_MAPPED, va + PAGE_SIZE, old)
    ]
    assert "already mapped" in pt.reports[0].message
    assert pt.translate(va + PAGE_SIZE) == RAM_BASE + 20 * MiB  # overwritten
    pt.reports.clear()
    pt.unmap_pages(va, 4 * PAGE_SIZE)
    assert [(r.kind, r.va) for r in pt.reports] == [(KIND_ALREADY_UNMAPPED, va + 3 * PAGE_SIZE)]
    assert "already unmapped" in pt.reports[0].message
    pt.reports.clear()
    pt.unmap_pages(va, PAGE_SIZE)
    assert [r.kind for r in pt.reports] == [KIND_ALREADY_UNMAPPED]
    # unmapping never frees tables
    assert len(list(pt.tables())) == 3
    pt.reports.clear()
    pt.drop()
    assert pt.reports == []
    assert system.allocator.leaks() == []


def test_reprot_keeps_address_and_ng(system: System) -> None:
    pt = UatPageTable.new(system.api, USER_RANGE, OAS_T8103)
    va, pa = 0x20_0000, RAM_BASE + 40 * MiB
    pt.map_pages(va, pa, 2 * PAGE_SIZE, GPU_SHARED_RW)
    pt.reprot_pages(va, 3 * PAGE_SIZE, PROTS["GPU_SHARED_RO"])
    assert pt.lookup(va) == pa | PROTS["GPU_SHARED_RO"].bits | BIT_NG | 3
    assert pt.lookup(va + PAGE_SIZE) == (pa + PAGE_SIZE) | PROTS["GPU_SHARED_RO"].bits | BIT_NG | 3
    assert [(r.kind, r.va) for r in pt.reports] == [(KIND_REPROT_UNMAPPED, va + 2 * PAGE_SIZE)]
    assert pt.lookup(va + 2 * PAGE_SIZE) is None
    pt.unmap_pages(va, 2 * PAGE_SIZE)
    pt.drop()


def test_unexpected_table_pte_is_reported_and_skipped(system: System) -> None:
    pt = UatPageTable.new(system.api, USER_RANGE, OAS_T8103)
    va = 0x1000_0000  # L2 entry 8
    pt.alloc_pages(va, PAGE_SIZE)
    l2_before = pt.entry(2, va)
    assert l2_before is not None and l2_before & 3 == PTE_TABLE
    with pytest.raises(ENOENT):
        pt.raw_write_entry(3, 0x40_0000_0000, 1)  # no table there yet
    with pytest.raises(EINVAL):
        pt.raw_write_entry(0, va, 1)  # no L0 in a 39-bit UAT
    # plant a garbage block-type entry in an unused L2 slot (next 32 MiB span)
    bad_va = va + 32 * MiB
    pt.raw_write_entry(2, bad_va, 0xDEAD_0001)
    pt.map_pages(bad_va - PAGE_SIZE, RAM_BASE, 3 * PAGE_SIZE, GPU_SHARED_RW)
    unexpected = [r for r in pt.reports if r.kind == KIND_UNEXPECTED_TABLE_PTE]
    assert len(unexpected) == 1
    assert unexpected[0].value == 0xDEAD_0001 and unexpected[0].va == bad_va
    assert "unexpected table PTE value 0xdead0001" in unexpected[0].message
    assert pt.lookup(bad_va - PAGE_SIZE) is not None  # the page before the span is mapped
    assert pt.lookup(bad_va) is None and pt.lookup(bad_va + PAGE_SIZE) is None  # skipped
    assert pt.entry(2, bad_va) == 0xDEAD_0001
    pt.unmap_pages(bad_va - PAGE_SIZE, PAGE_SIZE)
    pt.reports.clear()
    pt.drop()
    # drop reports the bad entry again and frees everything else
    assert [(r.kind, r.value) for r in pt.reports] == [(KIND_UNEXPECTED_TABLE_PTE, 0xDEAD_0001)]
    assert system.allocator.leaks() == [] and system.api.given_away() == []


def test_drop_frees_lower_tables_never_the_borrowed_ttb(system: System) -> None:
    api, alloc = system.api, system.allocator
    fw_l2, fw_l3 = firmware_table_setup(system)
    pt = UatPageTable.new_with_ttb(api, TTBS_PA, KERNEL_RANGE, OAS_T600X)
    # spread mappings over several L2 entries
    for i, va in enumerate(
        (KERNEL_RANGE[0], KERNEL_RANGE[0] + 6 * GiB, KERNEL_RANGE[1] - 4 * PAGE_SIZE)
    ):
        pt.map_pages(va, RAM_BASE + (100 + 4 * i) * MiB, 4 * PAGE_SIZE, FW_PRIV_RW)
    levels = [(level, pa) for level, pa, _, _ in pt.tables()]
    assert levels[0] == (1, TTBS_PA)
    assert (2, fw_l2) in levels and (3, fw_l3) in levels
    ours = sorted(pa for _, pa in levels if pa not in (TTBS_PA, fw_l2, fw_l3))
    assert ours == api.given_away()
    assert len(ours) == 1 + 3  # one L2 (entry 2), three L3
    # firmware leaf is visible through the borrowed TTB
    assert pt.lookup(FW_VA) == NOMAP_PA | FW_PRIV_RW.bits | 3
    assert list(pt.leaves(FW_VA, FW_VA + GiB)) == [(FW_VA, NOMAP_PA | FW_PRIV_RW.bits | 3)]
    for va in (KERNEL_RANGE[0], KERNEL_RANGE[0] + 6 * GiB, KERNEL_RANGE[1] - 4 * PAGE_SIZE):
        pt.unmap_pages(va, 4 * PAGE_SIZE)
    pt.drop()
    assert pt.reports == []
    assert api.given_away() == [] and alloc.leaks() == []
    assert alloc.stats().free_pages == alloc.total_pages
    # the TTB and the firmware's entries are untouched; ours is cleared
    mem = system.memory
    assert mem.read_u64(TTBS_PA) == fw_l2 | PTE_TABLE
    assert mem.read_u64(TTBS_PA + 2 * 8) == 0
    assert mem.read_u64(fw_l3) == NOMAP_PA | FW_PRIV_RW.bits | 3
    # a new page table on the same TTB works
    pt2 = UatPageTable.new_with_ttb(api, TTBS_PA, KERNEL_RANGE, OAS_T600X)
    pt2.map_pages(KERNEL_RANGE[0], RAM_BASE + 100 * MiB, PAGE_SIZE, FW_PRIV_RW)
    pt2.unmap_pages(KERNEL_RANGE[0], PAGE_SIZE)
    pt2.drop()
    assert alloc.leaks() == []


def test_drop_can_leave_stale_entries_like_the_driver(system: System) -> None:
    pt = UatPageTable.new_with_ttb(system.api, TTBS_PA, KERNEL_RANGE, OAS_T600X)
    pt.alloc_pages(KERNEL_RANGE[0], PAGE_SIZE)
    entry = system.memory.read_u64(TTBS_PA + 2 * 8)
    pt.drop(clear_parent_entries=False)
    assert system.memory.read_u64(TTBS_PA + 2 * 8) == entry
    assert system.allocator.leaks() == []


def test_drop_reports_exact_leaks(system: System) -> None:
    api = system.api
    pt = UatPageTable.new(api, USER_RANGE, OAS_T8103)
    pa = RAM_BASE + 128 * MiB
    pt.map_pages(0x4000, pa, 10 * PAGE_SIZE, GPU_SHARED_RW)
    pt.map_pages(0x8_0000_0000, pa, 2 * PAGE_SIZE, GPU_SHARED_RW)  # another top-table entry
    pt.unmap_pages(0x4000 + 2 * PAGE_SIZE, 5 * PAGE_SIZE)
    expected_vas = [0x4000 + i * PAGE_SIZE for i in (0, 1, 7, 8, 9)] + [
        0x8_0000_0000,
        0x8_0000_4000,
    ]
    pt.reports.clear()
    pt.drop()
    assert [r.kind for r in pt.reports] == [KIND_LEAKED_LEAF] * len(expected_vas)
    assert [r.va for r in pt.reports] == expected_vas
    assert pt.reports[0].value == pa | GPU_SHARED_RW.bits | BIT_NG | 3
    assert "leaked page at IOVA 0x4000" in pt.reports[0].message
    assert api.given_away() == [] and system.allocator.leaks() == []


def test_use_after_drop_is_a_bug(system: System) -> None:
    pt = UatPageTable.new(system.api, USER_RANGE, OAS_T8103)
    pt.drop()
    with pytest.raises(SimBug, match="after drop"):
        pt.map_pages(0x4000, RAM_BASE, PAGE_SIZE, GPU_SHARED_RW)
    with pytest.raises(SimBug):
        pt.drop()
    with pytest.raises(SimBug):
        list(pt.tables())


def test_42_bit_geometry_and_upper_half(system: System) -> None:
    pt = UatPageTable.new(system.api, (0xFFFF_FC00_0000_4000, 1 << 64), OAS_T600X, ias=42)
    top = (1 << 64) - PAGE_SIZE
    pt.map_pages(top, RAM_BASE + 64 * MiB, PAGE_SIZE, FW_PRIV_RW)
    assert pt.translate(top + 8) == RAM_BASE + 64 * MiB + 8
    level, _, start, span = next(iter(pt.tables()))
    assert (level, start, span) == (1, 0xFFFF_FC00_0000_0000, 1 << 42)
    assert list(pt.leaves()) == [(top, pt.lookup(top))]
    pt.unmap_pages(top, PAGE_SIZE)
    pt.drop()
    assert system.allocator.leaks() == []


def test_table_allocation_enomem_propagates() -> None:
    mm = MemoryMap(
        ram=(RamBank(RAM_BASE, 8 * PAGE_SIZE),),
        reserved=(ReservedRegion("ttb", RAM_BASE, PAGE_SIZE),),
    )
    sys_small = System(mm)
    pt = UatPageTable.new(sys_small.api, USER_RANGE, OAS_T8103)  # 1 of 7 pages
    # each 32 MiB needs a leaf table; 6 pages left: one L2 + five L3
    with pytest.raises(ENOMEM):
        pt.map_pages(0x4000, RAM_BASE, 6 * 32 * MiB, GPU_SHARED_RW)
    pt.reports.clear()
    pt.drop()
    assert len(pt.reports) == 5 * 2048 - 1  # every mapped leaf leaks (VA 0 was not mapped)
    assert sys_small.allocator.leaks() == []


def test_map_100k_pages_is_fast(system: System) -> None:
    big = System(
        MemoryMap(
            ram=(RamBank(RAM_BASE, 8 * GiB),),
            reserved=(ReservedRegion("uat-ttbs", RAM_BASE, PAGE_SIZE),),
        )
    )
    pt = UatPageTable.new_with_ttb(big.api, RAM_BASE, KERNEL_RANGE, OAS_T600X)
    start = time.perf_counter()
    pt.map_pages(KERNEL_RANGE[0], RAM_BASE + GiB, 100_000 * PAGE_SIZE, FW_PRIV_RW)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert pt.count_leaves() == 100_000
    assert pt.translate(KERNEL_RANGE[0] + 99_999 * PAGE_SIZE) == RAM_BASE + GiB + 99_999 * PAGE_SIZE
    pt.unmap_pages(KERNEL_RANGE[0], 100_000 * PAGE_SIZE)
    assert pt.reports == []


# --- stateful: random operation sequences --------------------------------------------------

PROT_LIST = [PROTS[name] for name in sorted(PROTS)]
# Small windows take the entry-by-entry path, larger ones (> 16 entries) the bulk path.
NPAGES = st.one_of(st.integers(0, 6), st.integers(17, 40))


class PageTableMachine(RuleBasedStateMachine):
    """Random map/unmap/reprot sequences interleaved with page-API traffic, checked against a
    flat model of the leaves and of page ownership."""

    def __init__(self) -> None:
        super().__init__()
        self.system = System()
        self.model: dict[int, int] = {}  # va -> expected leaf pte
        self.held: list[OwnedPage] = []
        self.pt: UatPageTable | None = None
        self.firmware: set[int] = set()

    @initialize(owned=st.booleans())
    def create(self, owned: bool) -> None:
        api = self.system.api
        self.initial_free = self.system.allocator.stats().free_pages
        if owned:
            self.pt = UatPageTable.new(api, USER_RANGE, OAS_T8103)
            start, end = USER_RANGE
            self.anchors = [start, 32 * MiB - 2 * PAGE_SIZE, 64 * GiB - 3 * PAGE_SIZE, end]
        else:
            self.firmware = {TTBS_PA, *firmware_table_setup(self.system)}
            self.pt = UatPageTable.new_with_ttb(api, TTBS_PA, KERNEL_RANGE, OAS_T600X)
            start, end = KERNEL_RANGE
            self.anchors = [start, start + 32 * MiB - PAGE_SIZE, start + 6 * GiB, end]
        self.range = (start, end)
        self.ng = BIT_NG if owned else 0

    def va_of(self, anchor: int, delta: int, npages: int) -> tuple[int, int]:
        start, end = self.range
        va = min(max(self.anchors[anchor] + delta * PAGE_SIZE, start), end - PAGE_SIZE)
        size = min(npages * PAGE_SIZE, end - va)
        return va, size

    @rule(
        anchor=st.integers(0, 3),
        delta=st.integers(-4, 4),
        npages=NPAGES,
        pa_page=st.integers(0, 8000),
        prot=st.sampled_from(PROT_LIST),
    )
    def map(self, anchor: int, delta: int, npages: int, pa_page: int, prot: Prot) -> None:
        assert self.pt is not None
        va, size = self.va_of(anchor, delta, npages)
        pa = RAM_BASE + pa_page * PAGE_SIZE
        before = len(self.pt.reports)
        self.pt.map_pages(va, pa, size, prot)
        vas = range(va, va + size, PAGE_SIZE)
        new = self.pt.reports[before:]
        assert [r.va for r in new] == [v for v in vas if v in self.model]
        assert {r.kind for r in new} <= {KIND_ALREADY_MAPPED}
        for i, v in enumerate(vas):
            self.model[v] = (pa + i * PAGE_SIZE) | prot.bits | self.ng | 3

    @rule(anchor=st.integers(0, 3), delta=st.integers(-4, 4), npages=NPAGES)
    def unmap(self, anchor: int, delta: int, npages: int) -> None:
        assert self.pt is not None
        va, size = self.va_of(anchor, delta, npages)
        before = len(self.pt.reports)
        self.pt.unmap_pages(va, size)
        vas = range(va, va + size, PAGE_SIZE)
        new = self.pt.reports[before:]
        assert [(r.kind, r.va) for r in new] == [
            (KIND_ALREADY_UNMAPPED, v) for v in vas if v not in self.model
        ]
        for v in vas:
            self.model.pop(v, None)

    @rule(
        anchor=st.integers(0, 3),
        delta=st.integers(-4, 4),
        npages=NPAGES,
        prot=st.sampled_from(PROT_LIST),
    )
    def reprot(self, anchor: int, delta: int, npages: int, prot: Prot) -> None:
        assert self.pt is not None
        va, size = self.va_of(anchor, delta, npages)
        before = len(self.pt.reports)
        self.pt.reprot_pages(va, size, prot)
        vas = range(va, va + size, PAGE_SIZE)
        new = self.pt.reports[before:]
        assert [(r.kind, r.va) for r in new] == [
            (KIND_REPROT_UNMAPPED, v) for v in vas if v not in self.model
        ]
        keep = ~PROT_BITS & ((1 << 64) - 1)
        for v in vas:
            if v in self.model:
                self.model[v] = (self.model[v] & keep) | prot.bits

    @rule(zero=st.booleans())
    def hold_page(self, zero: bool) -> None:
        self.held.append(self.system.api.alloc_page(GFP_KERNEL | (GFP_ZERO if zero else 0)))

    @precondition(lambda self: bool(self.held))
    @rule(pick=st.integers(0, 100), via_phys=st.booleans())
    def release_page(self, pick: int, via_phys: bool) -> None:
        page = self.held.pop(pick % len(self.held))
        if via_phys:
            page = self.system.api.from_phys(self.system.api.into_phys(page))
        page.drop()

    @invariant()
    def leaves_match_model(self) -> None:
        if self.pt is None:
            return
        assert dict(self.pt.leaves(*self.range)) == self.model
        for va, pte in self.model.items():
            assert self.pt.lookup(va) == pte

    @invariant()
    def ownership_is_consistent(self) -> None:
        if self.pt is None:
            return
        api, alloc = self.system.api, self.system.allocator
        reachable = [pa for _, pa, _, _ in self.pt.tables() if pa not in self.firmware]
        assert len(reachable) == len(set(reachable)), "a table is linked twice"
        # every table we allocated is reachable from the TTB (nothing orphaned)
        assert sorted(reachable) == api.given_away()
        owned = api.owned_pages()
        assert owned == sorted(p.pa for p in self.held)
        given = api.given_away()
        assert not set(owned) & set(given), "a page is owned twice"
        allocated = [(pfn << PAGE_SHIFT, order) for pfn, order in alloc.leaks()]
        assert allocated == sorted((pa, 0) for pa in owned + given)
        stats = alloc.stats()
        assert stats.free_pages + stats.allocated_pages == stats.total_pages

    def teardown(self) -> None:
        if self.pt is None:
            return
        before = len(self.pt.reports)
        self.pt.drop()
        leaked = self.pt.reports[before:]
        assert [r.kind for r in leaked] == [KIND_LEAKED_LEAF] * len(self.model)
        assert [(r.va, r.value) for r in leaked] == sorted(self.model.items())
        api, alloc = self.system.api, self.system.allocator
        assert api.given_away() == []
        for page in self.held:
            page.drop()
        assert api.owned_pages() == [] and alloc.leaks() == []
        assert alloc.stats().free_pages == self.initial_free
        if self.firmware:
            # the borrowed TTB still holds the firmware's tables, ours are gone
            mem = self.system.memory
            assert mem.read_u64(TTBS_PA) & 3 == PTE_TABLE
            assert mem.read_u64(TTBS_PA + 2 * 8) == 0


PageTableMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPageTableMachine = PageTableMachine.TestCase
