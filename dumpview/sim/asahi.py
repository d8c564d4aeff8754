"""The Apple AGX side of the UAT scenarios: the SoC, the Asahi driver's kernel VA layout and
what the driver and the firmware map there.

Owns the simulated SoC's memory map (t600x DRAM with the firmware's reserved regions: the
``uat-*`` regions without no-map, a no-map carveout, CMA; the AGX and display MMIO), the
firmware's VA layout inside its TTB entries, the driver's ranges and their default
protections (from ``formats.uat``'s kernel layout), ``Machine`` (what one scenario builds), and
``AsahiScenarios``, the part of ``scenarios.Builder`` that maps like the driver (GEM-like
buffers, ``kmap`` into a range, firmware mappings) and builds the UAT scenarios (minimal,
asahi-kernel, user-contexts, faults, large; the faults' fixed VAs are here for the tests).

Failure modes: ``ScenarioError`` when a range is full; misuse of the simulation raises the
kernel-named errors of ``dumpview.sim.errors``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from dumpview.sim.allocator import BuddyAllocator
from dumpview.sim.crashlog import ESR_FSC_TRANSLATION, FW_CODE_VA, FW_DATA_VA
from dumpview.sim.errors import ScenarioError
from dumpview.sim.firmware import (
    FW_CODE_RX,
    FW_DATA_RW,
    FW_DEVICE_RW,
    FW_RODATA_R,
    FW_VA_START,
    FirmwareSpace,
)
from dumpview.sim.memory import (
    MemoryMap,
    MmioWindow,
    PhysicalMemory,
    RamBank,
    ReservedRegion,
    stamp,
)
from dumpview.sim.page import PageApi
from dumpview.sim.pgtable import UatPageTable
from formats import uat

PAGE = uat.PAGE_SIZE
MIB = 1 << 20
GIB = 1 << 30

# The driver's kernel VA layout (context 0, upper half): formats.uat, reference section 2.
KERNEL_VA_START = uat.UAT_KERNEL_VA_START
KERNEL_VA_END = uat.UAT_KERNEL_VA_END
# What the driver's dump walks: IOVA_KERN_FULL_RANGE, 0xffffff80_00000000 up to !UAT_PGMSK,
# exclusive: the last 16 KiB page of the address space is never walked.
KERNEL_WALK_END = (1 << 64) - PAGE
# The driver's ranges the simulation maps into, with their default protection: the layout's
# parts that have one (PRIV, GPU_RO, SHARED, SHARED_RO, GPU, RTKIT, MMIO).
RANGES: dict[str, tuple[int, int, str]] = {
    part.name: (part.va_start, part.va_end, part.prot)
    for part in uat.UAT_KERNEL_VA_LAYOUT
    if part.prot is not None
}
RANGES_PROT = {name: prot for name, (_s, _e, prot) in RANGES.items()}
LARGE_OFFSET = 0x4000_0000  # bulk buffers start 1 GiB into their range
FW_CARVEOUT_PAGES = 2  # the firmware maps the start of its no-map carveout
LARGE_CARVEOUT_SKIP_PAGES = 16  # large: refused pages start past those (and faults' plant)
LARGE_MAX_MIB = sum((RANGES[n][1] - RANGES[n][0] - LARGE_OFFSET) for n in ("GPU", "PRIV")) >> 20
USER_VA_START = uat.UAT_USER_VA_START
USER_VA_END = uat.UAT_USER_VA_END

# Firmware VA layout (inside TTB entries 0 and 1).
FW_PT_VA = FW_VA_START + 0x2000_0000  # the uat-pagetables region, mapped for firmware
FW_TTBS_VA = FW_VA_START + 0x2100_0000
FW_HANDOFF_VA = FW_VA_START + 0x2200_0000
FW_CARVEOUT_VA = FW_VA_START + 0x3000_0000  # a no-map carveout firmware uses
FW_MMIO_VA = 0xFFFF_FF90_0000_0000

# Where the faults scenario plants the mappings it adds with fixed VAs (tests read these).
FAULT_DEVICE_ON_RAM_VA = RANGES["MMIO"][0] + 0x80_0000  # a GEM page mapped FW_MMIO_RW
FAULT_OA_BEYOND_OAS_VA = RANGES["SHARED"][0] + 0x80_0000  # a leaf with a bit at the OAS
FAULT_OUTSIDE_RANGE_VA = KERNEL_VA_END  # a kernel leaf past the driver's managed range

RAM_BASE = 0x100_0000_0000  # t600x DRAM
AGX_MMIO_BASE = 0x4_0400_0000
DISP_MMIO_BASE = 0x2_8000_0000


@dataclass
class Machine:
    """The simulated SoC: memory, allocator, Page API, firmware space, driver tables."""

    memory_map: MemoryMap
    memory: PhysicalMemory
    allocator: BuddyAllocator
    api: PageApi
    firmware: FirmwareSpace
    kernel: UatPageTable
    regions: dict[str, ReservedRegion]
    users: list[UatPageTable] = field(default_factory=list)
    ccdp: list[tuple[int, int]] = field(default_factory=list)
    far: int = 0
    # The ESR's fault status code, None: what the hardware would report for ``far`` in these
    # tables (translation fault at the level the walk stops at, else a permission fault: the
    # firmware branched into a page it may not execute).
    fsc: int | None = None
    initdata_va: int = 0
    notes_extra: list[str] = field(default_factory=list)


def memory_map(ram_bytes: int, carveout_bytes: int = 4 * MIB) -> tuple[MemoryMap, dict]:
    reserved = {
        "uat-ttbs": ReservedRegion("uat-ttbs", RAM_BASE + 0x100_0000, PAGE),
        "uat-pagetables": ReservedRegion("uat-pagetables", RAM_BASE + 0x110_0000, 4 * MIB),
        "uat-handoff": ReservedRegion("uat-handoff", RAM_BASE + 0x1A0_0000, PAGE),
        "gpu-fw": ReservedRegion("gpu-fw", RAM_BASE + 0x200_0000, 16 * MIB),
        "fw-carveout": ReservedRegion(
            "fw-carveout", RAM_BASE + 0x400_0000, carveout_bytes, no_map=True
        ),
        "cma": ReservedRegion(
            "linux,cma", RAM_BASE + 0x400_0000 + carveout_bytes, 16 * MIB, reusable=True
        ),
    }
    mmio = (MmioWindow("agx", AGX_MMIO_BASE, 16 * MIB), MmioWindow("disp", DISP_MMIO_BASE, 4 * MIB))
    mm = MemoryMap(
        ram=(RamBank(RAM_BASE, ram_bytes),), reserved=tuple(reserved.values()), mmio=mmio
    )
    mm.validate()
    return mm, reserved


class AsahiScenarios:
    """The UAT part of ``scenarios.Builder`` (a mixin: it uses the builder's ``m``, ``rng``,
    ``seed``, ``knobs``, ``regions`` and ``geometry``)."""

    def gem(self, pages: int, kind: str, fill: bool = True) -> int:
        """Allocate a physically contiguous buffer (a GEM-like object); returns its PA."""
        order = max(0, (pages - 1).bit_length())
        pfn = self.m.allocator.alloc(order, zero=True)
        pa = pfn << uat.PAGE_SHIFT
        if fill:
            for i in range(pages):
                self.m.memory.write(pa + i * PAGE, stamp(kind, pa + i * PAGE, self.rng))
        return pa

    def kmap(
        self,
        range_name: str,
        pages: int,
        kind: str,
        pa: int | None = None,
        prot: str | None = None,
        gap_pages: int = 0,
        fill: bool = True,
    ) -> int:
        """Map a buffer into one of the driver's kernel ranges; returns its VA."""
        _start, end, default_prot = RANGES[range_name]
        va = self._next_va[range_name]
        if va + pages * PAGE > end:
            raise ScenarioError(f"range {range_name} is full")
        if pa is None:
            pa = self.gem(pages, kind, fill)
        self.m.kernel.map_pages(va, pa, pages * PAGE, uat.PROTS[prot or default_prot])
        self._next_va[range_name] = va + (pages + gap_pages) * PAGE
        return va

    def fw_map(self, va: int, pa: int, pages: int, prot_bits: int, kind: str | None = None) -> None:
        if kind is not None:
            for i in range(pages):
                self.m.memory.write(pa + i * PAGE, stamp(kind, va + i * PAGE, self.rng))
        self.m.firmware.map(va, pa, pages * PAGE, prot_bits)

    # ---- common parts --------------------------------------------------------------------------

    def firmware_side(self, code_pages: int = 4, data_pages: int = 4) -> None:
        """Firmware mappings the bootloader made: code, data, its pagetables, ttbs, handoff,
        a no-map carveout (never dumped) and device MMIO."""
        r = self.regions
        fw = r["gpu-fw"].base
        self.fw_map(FW_CODE_VA, fw, code_pages, FW_CODE_RX, "fw-code")
        self.fw_map(FW_DATA_VA, fw + code_pages * PAGE, data_pages, FW_DATA_RW, "fw-data")
        self.fw_map(
            FW_DATA_VA + data_pages * PAGE,
            fw + (code_pages + data_pages) * PAGE,
            1,
            FW_RODATA_R,
            "fw-rodata",
        )
        self.fw_map(FW_TTBS_VA, r["uat-ttbs"].base, 1, FW_DATA_RW)
        self.fw_map(FW_HANDOFF_VA, r["uat-handoff"].base, 1, FW_DATA_RW, "handoff")
        self.fw_map(FW_CARVEOUT_VA, r["fw-carveout"].base, FW_CARVEOUT_PAGES, FW_DATA_RW)
        self.fw_map(FW_MMIO_VA, AGX_MMIO_BASE, 2, FW_DEVICE_RW)

    def map_firmware_pagetables(self) -> None:
        """Firmware maps the pagetables region last (it contains the tables made so far)."""
        used = len(self.m.firmware.table_pas) + 2
        self.fw_map(FW_PT_VA, self.regions["uat-pagetables"].base, used, FW_DATA_RW)

    def driver_side(self, scale: int = 1) -> None:
        """The driver's kernel objects in every range of its layout."""
        self.m.initdata_va = self.kmap("PRIV", 2 * scale, "initdata")
        self.kmap("PRIV", 4 * scale, "fw-ctl")
        self.kmap("GPU_RO", 2 * scale, "gpu-ro")
        self.kmap("SHARED", 4 * scale, "shared-ring")
        self.kmap("SHARED_RO", 2 * scale, "shared-ro")
        self.kmap("GPU", 3 * scale, "gpu-buffer")
        self.kmap("RTKIT", 2 * scale, "rtkit-log")
        for i in range(2 * scale):
            window = AGX_MMIO_BASE + 0x10_0000 + i * 0x1_0000 * 4
            prot = "FW_MMIO_RO" if i % 2 else "FW_MMIO_RW"
            self.kmap("MMIO", 1, "mmio", pa=window, prot=prot, gap_pages=1)

    def default_ccdp(self, count: int = 4) -> None:
        """Ccdp pairs the firmware recorded: VA -> PA of mapped kernel pages (agreeing)."""
        vas = [va for va, _pte in self.m.kernel.leaves(KERNEL_VA_START, KERNEL_VA_END)]
        picks = sorted(self.rng.sample(vas, min(count, len(vas)))) if vas else []
        for va in picks:
            self.m.ccdp.append((va, self.m.kernel.translate(va)))

    # ---- scenarios ---------------------------------------------------------------------------

    def _build_minimal(self) -> None:
        self.firmware_side()
        self.driver_side()
        self.map_firmware_pagetables()
        self.default_ccdp()
        self.m.far = self.m.initdata_va + 0x40  # firmware faulted on a mapped page

    def _build_asahi_kernel(self) -> None:
        self.firmware_side(code_pages=16, data_pages=24)
        self.driver_side(scale=4)
        self.kmap("PRIV", 32, "heap", fill=False)
        self.kmap("SHARED", 64, "event-ring", fill=False)
        self.map_firmware_pagetables()
        self.default_ccdp(6)
        self.m.far = RANGES["GPU"][0] + 0x100_0000  # unmapped: GPU range hole

    def _build_user_contexts(self) -> None:
        self.firmware_side()
        self.driver_side()
        for slot in range(1, int(self.knobs["contexts"]) + 1):
            vm = UatPageTable.new(self.m.api, (USER_VA_START, USER_VA_END), oas=self.geometry.oas)
            self.m.firmware.set_user_slot(slot, vm.ttb)
            va = 0x1_0000_0000 + slot * 0x1000_0000
            for j in range(3):
                pages = 1 + self.rng.randrange(4)
                pa = self.gem(pages, f"user{slot}-bo{j}")
                prot = ("GPU_SHARED_RW", "GPU_SHARED_RO", "GPU_SHARED_WO")[j % 3]
                vm.map_pages(va, pa, pages * PAGE, uat.PROTS[prot])
                # The kernel maps some user BOs too (e.g. for the firmware to read).
                if j == 0:
                    self.kmap("GPU", pages, "user-bo", pa=pa)
                va += (pages + 1) * PAGE
            self.m.users.append(vm)
        self.map_firmware_pagetables()
        self.default_ccdp()
        self.m.far = USER_VA_START  # a user VA, meaningless in the kernel context

    def _build_faults(self) -> None:
        self.firmware_side()
        self.driver_side()
        k = self.m.kernel
        # A double mapping: the driver maps over a live mapping (reported, then overwritten).
        va = self.kmap("SHARED", 2, "double-a")
        k.map_pages(va, self.gem(2, "double-b"), 2 * PAGE, uat.PROTS["FW_SHARED_RW"])
        # One PA mapped cached (PRIV) and uncached (SHARED).
        alias_pa = self.gem(1, "alias")
        self.kmap("PRIV", 1, "alias", pa=alias_pa)
        self.kmap("SHARED", 1, "alias", pa=alias_pa)
        # A mapping into the no-map carveout: borrow_phys refuses it, so it is not dumped.
        self.kmap("SHARED", 1, "nomap", pa=self.regions["fw-carveout"].base + 4 * PAGE)
        # An MMIO range mapped cached.
        self.kmap("PRIV", 1, "mmio-cached", pa=DISP_MMIO_BASE, prot="FW_PRIV_RW")
        # Leaked tables: tables allocated for a range that maps nothing (empty leaf table).
        k.alloc_pages(RANGES["GPU_RO"][0] + 0x4000_0000, PAGE)
        # An unexpected table entry value at L2.
        bad_va = RANGES["SHARED_RO"][0] + 0x8000_0000
        k.alloc_pages(bad_va, PAGE)
        k.raw_write_entry(2, bad_va, 0x0BAD_0000_0001)
        self.map_firmware_pagetables()
        self.default_ccdp(3)
        # One Ccdp pair that disagrees with the tables.
        wrong_va = RANGES["PRIV"][0]
        self.m.ccdp.append((wrong_va, (k.translate(wrong_va) or 0) + 0x10_0000))

        # Added after the plants above so their VAs, PAs, Ccdp picks and the crash log (the
        # scenario's random stream) stay as they were: these pages stamp from their own stream.
        def late_page(kind: str) -> int:
            pa = self.gem(1, kind, fill=False)
            rng = random.Random(f"dumpview:faults:{self.seed}:{kind}")
            self.m.memory.write(pa, stamp(kind, pa, rng))
            return pa

        # RAM mapped as device memory: a GEM page in the MMIO range with FW_MMIO_RW.
        k.map_pages(FAULT_DEVICE_ON_RAM_VA, late_page("device-ram"), PAGE, "FW_MMIO_RW")
        # A leaf whose output address has a bit at the OAS (map_pages refuses such a PA).
        oa_bits = (1 << self.geometry.oas) | late_page("beyond-oas")
        k.raw_write_leaf(
            FAULT_OA_BEYOND_OAS_VA, oa_bits | uat.PROTS["FW_SHARED_RW"].bits | uat.PTE_PAGE
        )
        # A kernel leaf past the driver's managed range (new L2 and L3 tables under TTB entry 3).
        outside_pa = late_page("outside-range")
        k.raw_write_leaf(
            FAULT_OUTSIDE_RANGE_VA, outside_pa | uat.PROTS["FW_PRIV_RW"].bits | uat.PTE_PAGE
        )
        self.m.far = bad_va + 0x20  # the fault is under the bad table entry
        # The hardware reports a translation fault at L2 there (type 01 is not valid: m1n1's
        # valid() wants bits 0 and 1); the crash log claims L3: a planted fault-mismatch.
        self.m.fsc = ESR_FSC_TRANSLATION | 3

    def _build_large(self) -> None:
        self.firmware_side()
        self.driver_side()
        mib = int(self.knobs["mapped_mib"])
        scatter = bool(self.knobs["scatter"])
        pct = int(self.knobs["dumped_percent"])
        total_pages = mib * MIB // PAGE
        refused_pages = total_pages * (100 - pct) // 100
        dumped_pages = total_pages - refused_pages
        block_pages = 1 << 10  # order-10 GEM blocks (16 MiB)
        pas: list[np.ndarray] = []
        left = dumped_pages
        while left > 0:
            take = min(block_pages, left)
            order = max(0, (take - 1).bit_length())
            pfn = self.m.allocator.alloc(order, zero=False)
            base = pfn << uat.PAGE_SHIFT
            pas.append(np.uint64(base) + np.arange(take, dtype=np.uint64) * np.uint64(PAGE))
            left -= take
        # Refused pages: carveout pages past the firmware's own (which it maps cached), so the
        # driver's uncached mappings of them are no aliases.
        carve = self.regions["fw-carveout"].base + LARGE_CARVEOUT_SKIP_PAGES * PAGE
        pas.append(np.uint64(carve) + np.arange(refused_pages, dtype=np.uint64) * np.uint64(PAGE))
        all_pa = np.concatenate(pas) if pas else np.zeros(0, np.uint64)
        # Stamp one page in 64 so reads have something to find, cheaply.
        for pa in all_pa[:dumped_pages:64].tolist():
            self.m.memory.write(pa, f"large page @ pa {pa:#x}\n".encode())
        if scatter:
            np.random.default_rng(self.rng.getrandbits(64)).shuffle(all_pa)
        # GEM buffers go to the GPU range, then spill into PRIV (both past the small objects).
        windows = [
            (RANGES[name][0] + LARGE_OFFSET, RANGES[name][1], RANGES_PROT[name])
            for name in ("GPU", "PRIV")
        ]
        kernel = self.m.kernel
        first_va = windows[0][0]
        done = 0
        for w_start, w_end, prot_name in windows:
            if done >= len(all_pa):
                break
            count = min(len(all_pa) - done, (w_end - w_start) // PAGE)
            chunk = all_pa[done : done + count]
            prot = uat.PROTS[prot_name]
            if scatter:
                for i, pa in enumerate(chunk.tolist()):
                    kernel.map_pages(w_start + i * PAGE, pa, PAGE, prot)
            else:
                # Runs of contiguous PAs map in one call each.
                breaks = np.flatnonzero(np.diff(chunk) != PAGE) + 1
                starts = np.concatenate(([0], breaks)).tolist()
                ends = np.concatenate((breaks, [len(chunk)])).tolist()
                for s, e in zip(starts, ends, strict=True):
                    kernel.map_pages(w_start + s * PAGE, int(chunk[s]), (e - s) * PAGE, prot)
            done += count
        va = first_va
        self.map_firmware_pagetables()
        self.default_ccdp()
        self.m.far = va
