"""The firmware side of the kernel context, as the bootloader (m1n1) prepares it.

Owns what exists before the driver runs: the kernel context's TTB preallocated inside the
``uat-pagetables`` reserved region, the TTB slot table in ``uat-ttbs`` (slot 0 = kernel,
``phys | 1 | ASID << 48``), and the firmware's own mappings under TTB entries 0 and 1
(0xffffff80_00000000 .. 0xffffffa0_00000000) with tables bump-allocated from
``uat-pagetables``. The kernel side never frees or rewrites any of it.

Raises ``ENOMEM`` when ``uat-pagetables`` is full and ``EINVAL`` for unaligned requests.
"""

from __future__ import annotations

from dumpview.sim.errors import EINVAL, EIO, ENOMEM
from dumpview.sim.memory import ReservedRegion
from dumpview.sim.page import PageApi
from formats import uat
from formats.geometry import Geometry

FW_VA_START = 0xFFFF_FF80_0000_0000
FW_VA_END = 0xFFFF_FFA0_0000_0000  # TTB entries 0 and 1 belong to firmware
TTB_SLOTS = 64
TTB_SLOT_SIZE = 16


def fw_prot_bits(ap: int, uxn: int, pxn: int, memattr: int) -> int:
    """A firmware-only protection (bit 55 clear), AF set."""
    return (ap << 6) | (uxn << 54) | (pxn << 53) | (memattr << 2) | uat.BIT_AF


# Firmware-only protections and their firmware view (FW_VIEW_NO_GPU[AP][(UXN<<1)|PXN]).
FW_CODE_RX = fw_prot_bits(2, 0, 0, 0)  # RX
FW_DATA_RW = fw_prot_bits(1, 1, 1, 0)  # RW
FW_RODATA_R = fw_prot_bits(2, 1, 1, 0)  # R-
FW_DEVICE_RW = fw_prot_bits(1, 1, 1, 1)  # RW, device nGnRnE


class FirmwareSpace:
    """The bootloader's page tables for the kernel context (context 0)."""

    def __init__(
        self, api: PageApi, geometry: Geometry, pagetables: ReservedRegion, ttbs: ReservedRegion
    ) -> None:
        self.api = api
        self.geometry = geometry
        self.region = pagetables
        self.ttbs_region = ttbs
        self._next = pagetables.base
        self.table_pas: list[int] = []
        self.ttb_pa = self._alloc_table()
        self._set_slot(0, ttb1=self.ttb_pa)

    def _alloc_table(self) -> int:
        if self._next + uat.PAGE_SIZE > self.region.end:
            raise ENOMEM(f"ENOMEM: reserved region {self.region.name!r} is full")
        pa = self._next
        self._next += uat.PAGE_SIZE
        page = self._borrow(pa)
        page.write(0, bytes(uat.PAGE_SIZE))
        self.table_pas.append(pa)
        return pa

    def _borrow(self, pa: int):
        page = self.api.borrow_phys(pa)
        if page is None:
            raise EIO(f"EIO: firmware table page {pa:#x} is not RAM (no-map?)")
        return page

    def _set_slot(self, slot: int, ttb0: int = 0, ttb1: int = 0) -> None:
        page = self._borrow(self.ttbs_region.base)
        asid = slot
        for off, value in ((0, ttb0), (8, ttb1)):
            word = (value | 1 | (asid << 48)) if value else 0
            page.write(slot * TTB_SLOT_SIZE + off, word.to_bytes(8, "little"))

    def set_user_slot(self, slot: int, ttb_pa: int) -> None:
        """Publish a user context's TTB in the slot table (ASID = slot)."""
        if not 1 <= slot < TTB_SLOTS:
            raise EINVAL(f"EINVAL: TTB slot {slot} is not a user slot (1..63)")
        self._set_slot(slot, ttb0=ttb_pa)

    def fault_level(self, va: int) -> int | None:
        """The lookup level at which the hardware's walk of ``va`` in the kernel context (the
        TTB the firmware and the driver share) finds no valid entry (m1n1's ``valid()``: type
        3, bits 0 and 1 set), or None when a page maps it. A VA outside the upper half faults
        at the first level: the kernel context has no TTB0."""
        levels = self.geometry.levels
        if not self.geometry.in_space(va):
            return levels[0].level
        table_pa = self.ttb_pa
        for lg in levels:
            entry = self._borrow(table_pa).read_u64(lg.index_of(va))
            if entry & uat.PTE_TYPE_MASK != uat.PTE_TABLE:
                return lg.level
            table_pa = entry & self.geometry.oa_mask
        return None

    def map(self, va: int, pa: int, size_bytes: int, prot_bits: int) -> None:
        """Map [va, va+size) -> pa with the given leaf bits, allocating tables from the
        reserved region. Only inside the firmware's TTB entries (EINVAL otherwise)."""
        page_size = uat.PAGE_SIZE
        if (va | pa | size_bytes) & (page_size - 1):
            raise EINVAL(f"EINVAL: firmware map {va:#x} -> {pa:#x} is not 16 KiB aligned")
        if not (va >= FW_VA_START and va + size_bytes <= FW_VA_END):
            raise EINVAL(f"EINVAL: {va:#x} is not in the firmware's part of the kernel context")
        levels = self.geometry.levels
        for off in range(0, size_bytes, page_size):
            cur_va = va + off
            table_pa = self.ttb_pa
            for lg in levels[:-1]:
                page = self._borrow(table_pa)
                index = lg.index_of(cur_va)
                entry = page.read_u64(index)
                if entry & uat.PTE_TYPE_MASK != uat.PTE_TABLE:
                    child = self._alloc_table()
                    page.write_u64(index, child | uat.PTE_TABLE)
                    entry = child | uat.PTE_TABLE
                table_pa = entry & self.geometry.oa_mask
            leaf = self._borrow(table_pa)
            leaf.write_u64(levels[-1].index_of(cur_va), (pa + off) | prot_bits | uat.PTE_PAGE)
