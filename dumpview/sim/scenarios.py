"""Scenarios: named presets (data) that drive the simulation to a crash and write the dump.

Owns the machine a scenario builds (memory map, allocator, Page API, firmware space, the
driver's kernel page table, user VMs), the page contents it writes, the crash log the
"firmware" leaves, and the hand-off to the walker and the writer. Same scenario, seed and knobs
give the same bytes: every random choice comes from one seeded ``random.Random``.

Two entry formats: the Apple UAT (``entry_format="uat"``, every scenario of ``SCENARIOS``) and
ARM LPAE stage 1 as an ARM SMMU's io-pgtable writes it (``"lpae-4k"``, ``"lpae-16k"``,
``"lpae-64k"``; the scenarios of ``LPAE_SCENARIOS``: ``smmu`` and an LPAE ``faults``). An LPAE
dump has no AGX or RTKIT note (they describe an Apple GPU) and so no PT_NOTE (its program
headers are the PT_LOADs alone), its ``e_entry`` is the space's VA base (0) and its page size is
the granule.

Failure modes: ``ScenarioError`` for an unknown scenario, a scenario the entry format has no
version of, or knobs that cannot fit the memory map (one line, names the knob); simulation
misuse raises the kernel-named errors of ``dumpview.sim.errors``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from dumpview.output import open_output
from dumpview.sim.allocator import BuddyAllocator
from dumpview.sim.errors import SimError
from dumpview.sim.firmware import (
    FW_CODE_RX,
    FW_DATA_RW,
    FW_DEVICE_RW,
    FW_RODATA_R,
    FW_VA_START,
    FirmwareSpace,
)
from dumpview.sim.lpae import LpaePageTable
from dumpview.sim.memory import MemoryMap, MmioWindow, PhysicalMemory, RamBank, ReservedRegion
from dumpview.sim.page import PageApi
from dumpview.sim.pgtable import UatPageTable
from dumpview.sim.walker import WalkResult, walk_space
from dumpview.sim.writer import DEFAULT_E_ENTRY, Extension, RegionInfo, SpaceInfo, write_core
from formats import agx, clhe, entryformat, ext, lpae, uat

PAGE = uat.PAGE_SIZE
MIB = 1 << 20
GIB = 1 << 30

# The driver's kernel VA layout (context 0, upper half): formats.uat, reference section 2.
KERNEL_VA_START = uat.UAT_KERNEL_VA_START
KERNEL_VA_END = uat.UAT_KERNEL_VA_END
# ESR fault status codes (ISS bits 5:0) the simulated firmware reports: kind | level.
ESR_FSC_TRANSLATION = 0x04
ESR_FSC_PERMISSION = 0x0C
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
FW_CODE_VA = FW_VA_START
FW_DATA_VA = FW_VA_START + 0x1000_0000
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

# ---- ARM LPAE stage 1 (the smmu scenario) ----------------------------------------------------
ENTRY_FORMAT_NAMES = ("uat", "lpae-4k", "lpae-16k", "lpae-64k")
LPAE_FORMATS: dict[str, entryformat.EntryFormat] = {
    "lpae-4k": entryformat.LPAE_4K,
    "lpae-16k": entryformat.LPAE_16K,
    "lpae-64k": entryformat.LPAE_64K,
}
SMMU_IAS = 48
SMMU_OAS = 48
SMMU_FAULTS_OAS = 44  # faults: an OAS the 36-bit OA field can exceed (oa-beyond-oas)
# The SoC (physical addresses): 1 GiB of DRAM with a no-map carveout, MMIO windows.
SMMU_RAM_BASE = 0x8000_0000
SMMU_RAM_SIZE = GIB
SMMU_CARVEOUT_BASE = 0xB000_0000  # "protected-video", no-map: 32 MiB aligned for 16K blocks
SMMU_CARVEOUT_SIZE = 64 * MIB
SMMU_ITS_BASE = 0x0800_0000  # GIC ITS; its GITS_TRANSLATER frame is the MSI doorbell
SMMU_ITS_SIZE = 0x2_0000
SMMU_DOORBELL_PA = SMMU_ITS_BASE + 0x1_0000
SMMU_ECAM_BASE = 0x4000_0000  # PCIe configuration space
SMMU_ECAM_SIZE = 16 * MIB
SMMU_BAR_BASE = 0x40_0000_0000  # a PCIe BAR window, aligned for the biggest block (1 GiB)
SMMU_BAR_SIZE = GIB
SMMU_RAM_BLOCK_MAX = 2 * MIB  # blocks up to this size are RAM-backed (with data)
# The device's IOVA space (va_base 0, IAS 48) and what the scenario maps where.
SMMU_IOVA_START = 0x0800_0000  # the DMA aperture starts at Linux's software MSI window
SMMU_IOVA_END = 0x10_0000_0000
SMMU_MSI_IOVA = 0x0800_0000  # the MSI doorbell, IOMMU_MMIO
SMMU_CMDQ_IOVA = 0x1_0000_0000  # the device's command ring
SMMU_EVTQ_IOVA = 0x1_0010_0000  # and its event ring
SMMU_QUEUE_BYTES = 16 * 1024  # per ring (one granule with 64K)
SMMU_DMA_IOVA = 0x1_0100_0000  # scattered DMA buffers from here
SMMU_DMA_BUFFERS = 12
SMMU_SPLIT_IOVA = 0x3_0000_0000  # a block with one page unmapped (split into a table); the
# region mapped as pages and unmapped in one block-sized unmap follows it
SMMU_BLOCK_IOVA = 0x4_0000_0000  # one block of every block size, ascending

# Where the faults scenario plants with an LPAE format (fixed IOVAs, tests read these).
FAULT_LPAE_RWX_VA = 0x1_8000_0000  # read+write+execute for unprivileged accesses
FAULT_LPAE_ALIAS_CACHED_VA = 0x1_8010_0000  # one PA mapped write-back ...
FAULT_LPAE_ALIAS_NC_VA = 0x1_8020_0000  # ... and non-cacheable
FAULT_LPAE_DEVICE_ON_RAM_VA = 0x1_8030_0000  # a RAM page mapped IOMMU_MMIO
FAULT_LPAE_NORMAL_ON_MMIO_VA = 0x1_8040_0000  # a PCIe ECAM page mapped cached
FAULT_LPAE_OA_BEYOND_OAS_VA = 0x1_8050_0000  # a leaf with a bit at the OAS (44)
FAULT_LPAE_EMPTY_TABLE_VA = 0x1_C000_0000  # pages mapped then unmapped one by one
FAULT_LPAE_UNEXPECTED_VA = 0x8000_0000_0000  # a type-01 entry at the top (non-block) level
FAULT_LPAE_UNEXPECTED_VALUE = 0x0BAD_0000_0001
FAULT_LPAE_OUTSIDE_RANGE_VA = SMMU_IOVA_END  # a leaf past the DMA aperture


class ScenarioError(ValueError):
    """A scenario name or knob that cannot be used (one line, names the knob)."""


@dataclass(frozen=True)
class ScenarioSpec:
    """A named preset: what it builds, its size knobs and their defaults."""

    name: str
    summary: str
    knobs: dict[str, int | bool] = field(default_factory=dict)


SCENARIOS: dict[str, ScenarioSpec] = {
    s.name: s
    for s in (
        ScenarioSpec("minimal", "a handful of firmware and driver mappings (the default)"),
        ScenarioSpec(
            "asahi-kernel",
            "the driver's kernel VA layout: PRIV, GPU_RO, SHARED, "
            "SHARED_RO, GPU, RTKIT, MMIO, firmware ranges, reserved regions",
        ),
        ScenarioSpec(
            "user-contexts",
            "kernel context plus user VMs with owned TTBs, nG leaves and GEM-like buffers",
            {"contexts": 3},
        ),
        ScenarioSpec(
            "faults",
            "planted faults: double mapping, cached+uncached alias, no-map "
            "and MMIO mapped cached, RAM mapped as device memory, leaked tables, an "
            "unexpected table entry, a leaf past the managed range, a leaf whose output "
            "address is beyond the OAS, a disagreeing Ccdp pair",
        ),
        ScenarioSpec(
            "large",
            "bulk GEM buffers: --mapped-mib N, --scatter for scattered PAs "
            "(one PT_LOAD per page), --dumped-percent for pages borrow_phys refuses",
            {"mapped_mib": 64, "scatter": False, "dumped_percent": 100},
        ),
    )
}

# The scenarios of the LPAE entry formats (--entry-format lpae-4k|lpae-16k|lpae-64k).
SMMU_KNOBS: dict[str, int | bool] = {"stream_id": 0x42, "asid": 1, "huge_blocks": False}
# Blocks above this size are mapped only with the huge_blocks knob: the 4K granule's 1 GiB
# block is 262,144 pages in every listing (samples and tests stay small without it).
SMMU_HUGE_BLOCK = 512 * MIB
LPAE_SCENARIOS: dict[str, ScenarioSpec] = {
    s.name: s
    for s in (
        ScenarioSpec(
            "smmu",
            "an ARM SMMU stage-1 stream (LPAE, needs --entry-format lpae-*): command/event "
            "rings, scattered DMA buffers, blocks of every size (RAM, no-map carveout, PCIe "
            "BAR), a split block, an MSI doorbell",
            SMMU_KNOBS,
        ),
        ScenarioSpec(
            "faults",
            "smmu plus planted faults: an unprivileged RWX mapping, a cached+non-cacheable "
            "alias, RAM mapped as device, MMIO mapped cached, an empty table, an unexpected "
            "top-level entry, a leaf beyond the OAS, a leaf past the DMA aperture",
            SMMU_KNOBS,
        ),
    )
}
ALL_SCENARIO_NAMES: tuple[str, ...] = (
    *SCENARIOS,
    *(name for name in LPAE_SCENARIOS if name not in SCENARIOS),
)


@dataclass
class LpaeMachine:
    """The simulated SoC of an LPAE scenario: memory, allocator, Page API, one SMMU stream's
    stage-1 page table."""

    memory_map: MemoryMap
    memory: PhysicalMemory
    allocator: BuddyAllocator
    api: PageApi
    pgtable: LpaePageTable
    regions: dict[str, ReservedRegion]


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


def _memory_map(ram_bytes: int, carveout_bytes: int = 4 * MIB) -> tuple[MemoryMap, dict]:
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


def _stamp(kind: str, va: int, rng: random.Random, size: int = PAGE) -> bytes:
    """Recognisable page content: a header naming the object, then structured filler."""
    header = f"{kind} @ {va:#x}\n".encode()
    words = np.random.default_rng(rng.getrandbits(32)).integers(0, 1 << 32, 64, dtype=np.uint32)
    body = (header + words.tobytes()).ljust(512, b"\0")
    return (body * (size // 512 + 1))[:size]


class Builder:
    """Drives one scenario: allocate, map and fill like the driver, then walk and write."""

    def __init__(self, scenario: str, seed: int, knobs: dict, entry_format: str = "uat") -> None:
        if scenario not in SCENARIOS and scenario not in LPAE_SCENARIOS:
            names = ", ".join(ALL_SCENARIO_NAMES)
            raise ScenarioError(f"unknown scenario {scenario!r} (known: {names})")
        if entry_format not in ENTRY_FORMAT_NAMES:
            raise ScenarioError(
                f"unknown entry format {entry_format!r} (known: {', '.join(ENTRY_FORMAT_NAMES)})"
            )
        self.entry_format_name = entry_format
        self.lpae = entry_format != "uat"
        if not self.lpae and scenario not in SCENARIOS:
            raise ScenarioError(
                f"scenario {scenario!r} needs an lpae entry format "
                "(--entry-format lpae-4k, lpae-16k or lpae-64k), not uat"
            )
        if self.lpae and scenario not in LPAE_SCENARIOS:
            raise ScenarioError(
                f"scenario {scenario!r} has no {entry_format} version "
                f"(with an lpae entry format: {', '.join(LPAE_SCENARIOS)})"
            )
        spec = (LPAE_SCENARIOS if self.lpae else SCENARIOS)[scenario]
        unknown = sorted(set(knobs) - set(spec.knobs))
        if unknown:
            raise ScenarioError(f"scenario {scenario!r} has no knob {unknown[0]!r}")
        self.name = scenario
        self.seed = seed
        self.knobs = {**spec.knobs, **knobs}
        if self.lpae:
            self._init_lpae()
            return
        self.entry_format = entryformat.UAT
        self.page_size = PAGE
        self.e_entry = DEFAULT_E_ENTRY
        self.rng = random.Random(f"dumpview:{scenario}:{seed}")
        self.geometry = uat.uat_geometry(oas=uat.OAS_T600X)
        ram = 256 * MIB
        carveout = 4 * MIB
        if scenario == "large":
            mib = int(self.knobs["mapped_mib"])
            pct = int(self.knobs["dumped_percent"])
            if mib <= 0 or mib > LARGE_MAX_MIB:
                raise ScenarioError(
                    f"--mapped-mib {mib} does not fit the kernel GPU and PRIV ranges "
                    f"(1..{LARGE_MAX_MIB} MiB)"
                )
            if not 0 <= pct <= 100:
                raise ScenarioError(f"--dumped-percent {pct} is not 0..100")
            carveout = max(4 * MIB, -(-mib * (100 - pct) // 100) * MIB + 4 * MIB)
            ram = max(256 * MIB, (mib + 64) * MIB + carveout + 64 * MIB)
            ram = 1 << (ram - 1).bit_length()
        if scenario == "user-contexts" and not 1 <= int(self.knobs["contexts"]) <= 63:
            raise ScenarioError("--contexts must be 1..63 (TTB slots)")
        self.memory_map, self.regions = _memory_map(ram, carveout)
        memory = PhysicalMemory(self.memory_map)
        allocator = BuddyAllocator(memory)
        api = PageApi(memory, allocator, debug=True)
        firmware = FirmwareSpace(
            api, self.geometry, self.regions["uat-pagetables"], self.regions["uat-ttbs"]
        )
        kernel = UatPageTable.new_with_ttb(
            api, firmware.ttb_pa, (KERNEL_VA_START, KERNEL_VA_END), oas=self.geometry.oas
        )
        self.m = Machine(self.memory_map, memory, allocator, api, firmware, kernel, self.regions)
        self._next_va = {name: start for name, (start, _end, _prot) in RANGES.items()}

    # ---- driver-side helpers -----------------------------------------------------------------

    def gem(self, pages: int, kind: str, fill: bool = True) -> int:
        """Allocate a physically contiguous buffer (a GEM-like object); returns its PA."""
        order = max(0, (pages - 1).bit_length())
        pfn = self.m.allocator.alloc(order, zero=True)
        pa = pfn << uat.PAGE_SHIFT
        if fill:
            for i in range(pages):
                self.m.memory.write(pa + i * PAGE, _stamp(kind, pa + i * PAGE, self.rng))
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
                self.m.memory.write(pa + i * PAGE, _stamp(kind, va + i * PAGE, self.rng))
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

    def build(self) -> None:
        if self.lpae:
            getattr(self, "_build_lpae_" + self.name.replace("-", "_"))()
            return
        getattr(self, "_build_" + self.name.replace("-", "_"))()

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
            self.m.memory.write(pa, _stamp(kind, pa, rng))
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

    # ---- ARM LPAE stage 1: one SMMU stream -------------------------------------------------

    def _init_lpae(self) -> None:
        """The SoC of the LPAE scenarios: DRAM with a no-map carveout, the GIC ITS (MSI
        doorbell), PCIe configuration space and a BAR window; one stage-1 page table."""
        fmt = LPAE_FORMATS[self.entry_format_name]
        for knob, limit in (("stream_id", 1 << 32), ("asid", 1 << 16)):
            value = self.knobs[knob]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
                raise ScenarioError(f"knob {knob} = {value!r} is not 0..{limit - 1:#x}")
        self.entry_format = fmt
        self.granule = 1 << fmt.page_shift
        self.page_size = self.granule
        self.e_entry = 0  # the space's VA base
        # faults builds smmu first: the same stream, so the same smmu part.
        self.rng = random.Random(f"dumpview:{self.entry_format_name}:smmu:{self.seed}")
        self.oas = SMMU_FAULTS_OAS if self.name == "faults" else SMMU_OAS
        carveout = ReservedRegion(
            "protected-video", SMMU_CARVEOUT_BASE, SMMU_CARVEOUT_SIZE, no_map=True
        )
        mmio = (
            MmioWindow("gic-its", SMMU_ITS_BASE, SMMU_ITS_SIZE),
            MmioWindow("pcie-ecam", SMMU_ECAM_BASE, SMMU_ECAM_SIZE),
            MmioWindow("pcie-bar", SMMU_BAR_BASE, SMMU_BAR_SIZE),
        )
        self.memory_map = MemoryMap(
            ram=(RamBank(SMMU_RAM_BASE, SMMU_RAM_SIZE),), reserved=(carveout,), mmio=mmio
        )
        self.memory_map.validate()
        self.regions = {carveout.name: carveout}
        memory = PhysicalMemory(self.memory_map)
        allocator = BuddyAllocator(memory)
        api = PageApi(memory, allocator, debug=True)
        pgtable = LpaePageTable.new(api, fmt, ias=SMMU_IAS, oas=self.oas)
        self.geometry = pgtable.geometry
        self.m = LpaeMachine(self.memory_map, memory, allocator, api, pgtable, self.regions)
        # Placement cursors for blocks without data: the carveout, then the BAR window.
        self._carveout_next = SMMU_CARVEOUT_BASE
        self._bar_next = SMMU_BAR_BASE

    def dma_alloc(self, size_bytes: int, kind: str, iova: int, fill: bool = True) -> int:
        """A physically contiguous DMA buffer (16 KiB kernel pages, zeroed), each granule page
        stamped with its IOVA; returns its PA."""
        kernel_pages = -(-size_bytes // PAGE)
        order = max(0, (kernel_pages - 1).bit_length())
        pa = self.m.allocator.alloc(order, zero=True) << uat.PAGE_SHIFT
        if fill:
            g = self.granule
            for off in range(0, size_bytes, g):
                self.m.memory.write(pa + off, _stamp(kind, iova + off, self.rng, g))
        return pa

    def _no_data_pa(self, size_bytes: int) -> tuple[int, int]:
        """A PA range for a block without data: the no-map carveout when it fits, else the
        PCIe BAR window; returns (PA, IOMMU_* prot)."""
        cached = lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_CACHE | lpae.IOMMU_NOEXEC
        device = lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_MMIO | lpae.IOMMU_NOEXEC
        pa = -(-self._carveout_next // size_bytes) * size_bytes
        if pa + size_bytes <= SMMU_CARVEOUT_BASE + SMMU_CARVEOUT_SIZE:
            self._carveout_next = pa + size_bytes
            return pa, cached
        pa = -(-self._bar_next // size_bytes) * size_bytes
        if pa + size_bytes > SMMU_BAR_BASE + SMMU_BAR_SIZE:
            raise ScenarioError(f"no room for a {size_bytes:#x}-byte block without data")
        self._bar_next = pa + size_bytes
        return pa, device

    def block_sizes(self) -> list[int]:
        """The block sizes of this granule (io-pgtable's block levels), ascending."""
        g = self.geometry
        return sorted(g.level(level).entry_span_bytes for level in self.entry_format.block_levels)

    def _build_lpae_smmu(self) -> None:
        """One device stream as the SMMU driver and dma-iommu leave it."""
        pt = self.m.pgtable
        g = self.granule
        rw_cached = lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_CACHE | lpae.IOMMU_NOEXEC
        # The MSI doorbell (iommu_dma_get_msi_page: IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO).
        pt.map_pages(
            SMMU_MSI_IOVA,
            SMMU_DOORBELL_PA,
            g,
            lpae.IOMMU_WRITE | lpae.IOMMU_MMIO | lpae.IOMMU_NOEXEC,
        )
        # The device's command and event rings: cached, RW, never executable.
        queue_bytes = max(SMMU_QUEUE_BYTES, g)
        for iova, kind in ((SMMU_CMDQ_IOVA, "cmdq"), (SMMU_EVTQ_IOVA, "evtq")):
            pt.map_pages(iova, self.dma_alloc(queue_bytes, kind, iova), queue_bytes, rw_cached)
        # Scattered DMA buffers of 1..8 granule pages; some read-only, some non-cacheable.
        prots = (
            ("dma-rw", rw_cached),
            ("dma-ro", lpae.IOMMU_READ | lpae.IOMMU_CACHE | lpae.IOMMU_NOEXEC),
            ("dma-nc", lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_NOEXEC),
        )
        iova = SMMU_DMA_IOVA
        for i in range(SMMU_DMA_BUFFERS):
            pages = self.rng.randint(1, 8)
            kind, prot = prots[self.rng.randrange(len(prots))]
            if self.rng.random() < 0.5:  # something else took the next PAs: not contiguous
                self.m.allocator.alloc(self.rng.randrange(3), zero=False)
            pa = self.dma_alloc(pages * g, f"{kind}{i}", iova)
            pt.map_pages(iova, pa, pages * g, prot)
            iova += (pages + self.rng.randint(1, 4)) * g
        # One block of every block size: RAM-backed (with data) up to 2 MiB, else in the no-map
        # carveout or the PCIe BAR window (no data).
        sizes = self.block_sizes()
        if not self.knobs["huge_blocks"]:
            sizes = [size for size in sizes if size <= SMMU_HUGE_BLOCK]
        iova = SMMU_BLOCK_IOVA
        for size in sizes:
            iova = -(-iova // size) * size
            if size <= SMMU_RAM_BLOCK_MAX:
                pa = self.dma_alloc(size, f"block{size >> 10}k", iova)
                assert pa % size == 0, "buddy blocks are naturally aligned"
                pt.map_pages(iova, pa, size, rw_cached)
                iova += size
                pa, prot = self._no_data_pa(size)  # and one in the no-map carveout
            else:
                pa, prot = self._no_data_pa(size)
            pt.map_pages(iova, pa, size, prot)
            iova += size
        # The smallest block, then one page unmapped from its middle: split into a table.
        smallest = sizes[0]
        pa, prot = self._no_data_pa(smallest)
        pt.map_pages(SMMU_SPLIT_IOVA, pa, smallest, prot)
        pt.unmap_pages(SMMU_SPLIT_IOVA + smallest // 2, g)
        # A block-sized region mapped as pages (PA one page off block alignment), then unmapped
        # in one block-sized unmap: io-pgtable frees the whole subtree.
        unmapped = SMMU_SPLIT_IOVA + smallest
        pt.map_pages(
            unmapped,
            SMMU_BAR_BASE + g,
            smallest,
            lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_MMIO | lpae.IOMMU_NOEXEC,
        )
        pt.unmap_pages(unmapped, smallest)

    def _build_lpae_faults(self) -> None:
        """smmu, then the faults a checker should find, at fixed IOVAs."""
        self._build_lpae_smmu()
        pt = self.m.pgtable
        g = self.granule
        rng = random.Random(f"dumpview:{self.entry_format_name}:faults-plants:{self.seed}")

        def page(kind: str, iova: int) -> int:
            pa = self.m.allocator.alloc(max(0, (-(-g // PAGE) - 1).bit_length()), zero=True)
            pa <<= uat.PAGE_SHIFT
            self.m.memory.write(pa, _stamp(kind, iova, rng, g))
            return pa

        noexec = lpae.IOMMU_NOEXEC
        rw = lpae.IOMMU_READ | lpae.IOMMU_WRITE
        # Writable and executable for the device (unprivileged: AP[1], no XN).
        rwx = FAULT_LPAE_RWX_VA
        pt.map_pages(rwx, page("rwx", rwx), g, rw | lpae.IOMMU_CACHE)
        # One PA mapped write-back and non-cacheable.
        alias_pa = page("alias", FAULT_LPAE_ALIAS_CACHED_VA)
        pt.map_pages(FAULT_LPAE_ALIAS_CACHED_VA, alias_pa, g, rw | lpae.IOMMU_CACHE | noexec)
        pt.map_pages(FAULT_LPAE_ALIAS_NC_VA, alias_pa, g, rw | noexec)
        # RAM mapped as device memory (never dumped).
        dev = FAULT_LPAE_DEVICE_ON_RAM_VA
        pt.map_pages(dev, page("device-ram", dev), g, rw | lpae.IOMMU_MMIO | noexec)
        # An MMIO page (PCIe configuration space) mapped as normal cached memory.
        pt.map_pages(
            FAULT_LPAE_NORMAL_ON_MMIO_VA, SMMU_ECAM_BASE, g, rw | lpae.IOMMU_CACHE | noexec
        )
        # A leaf whose output address has a bit at the OAS: mapped, then rewritten raw.
        beyond = FAULT_LPAE_OA_BEYOND_OAS_VA
        beyond_pa = page("beyond-oas", beyond)
        pt.map_pages(beyond, beyond_pa, g, rw | lpae.IOMMU_CACHE | noexec)
        leaf_bits = lpae.prot_to_bits(rw | lpae.IOMMU_CACHE | noexec) | lpae.TYPE_PAGE
        pt.raw_write_entry(
            3,
            beyond,
            self.entry_format.encode_output_address((1 << self.oas) | beyond_pa) | leaf_bits,
        )
        # An empty leaf table: pages mapped, then unmapped one by one (tables stay).
        empty = FAULT_LPAE_EMPTY_TABLE_VA
        pt.map_pages(empty, SMMU_BAR_BASE, 4 * g, rw | lpae.IOMMU_MMIO | noexec)
        for i in range(4):
            pt.unmap_pages(empty + i * g, g)
        # A type-01 entry at the top level, where no block is allowed.
        pt.raw_write_entry(
            self.geometry.start_level, FAULT_LPAE_UNEXPECTED_VA, FAULT_LPAE_UNEXPECTED_VALUE
        )
        # A leaf past the DMA aperture.
        outside = FAULT_LPAE_OUTSIDE_RANGE_VA
        pt.map_pages(outside, page("outside-aperture", outside), g, rw | lpae.IOMMU_CACHE | noexec)

    def _walk_lpae(self) -> WalkResult:
        g = self.geometry
        return walk_space(
            self.m.api,
            self.m.memory,
            g,
            self.m.pgtable.ttb_pa,
            g.va_base,
            g.va_base + (1 << g.ias),
            self.region_list(),
            context=0,
            managed=None,  # no firmware-owned part: every table is the driver's
            entry_format=self.entry_format,
        )

    def _extension_lpae(self, walk: WalkResult) -> Extension:
        g = self.geometry
        space = SpaceInfo(
            0,
            self.m.pgtable.ttb_pa,
            g.va_base,
            1 << g.ias,
            SMMU_IOVA_START,
            SMMU_IOVA_END - SMMU_IOVA_START,
            ext.SPACE_TTB_OWNED,
        )
        return Extension(
            entry_format=self.entry_format.id,
            geometry=g,
            spaces=[space],
            tables=list(walk.tables),
            regions=self.region_infos(),
            holes=walk.holes,
            scenario_name=self.name,
            seed=self.seed,
            knobs=self.knobs,
            generator="dumpview-sim/1",
        )

    # ---- what generate needs from either format ------------------------------------------------

    def reports(self) -> list[str]:
        """What the page-table code logged (pr_err), as messages."""
        table = self.m.pgtable if self.lpae else self.m.kernel
        return [getattr(r, "message", str(r)) for r in table.reports]

    def read_data(self, pa: int, size: int) -> bytes:
        """Bytes of a run with data (the walker only makes runs of RAM pages)."""
        memory = self.m.memory
        if (pa | size) & (PAGE - 1):
            return memory.read(pa, size)
        first = pa >> uat.PAGE_SHIFT
        return b"".join(memory.page_view(pfn) for pfn in range(first, first + size // PAGE))

    def read_table(self, pa: int) -> bytes:
        """One table's content: one granule (the first 4 KiB of a 4K-granule table's page).
        A top table smaller than its granule (64K granule, IAS 48: 64 entries in one 16 KiB
        page) is its allocation, zero-padded: the pages after it are not part of it."""
        size = self.page_size
        if self.lpae and pa == self.m.pgtable.ttb_pa:
            order = self.m.pgtable.table_order(self.geometry.start_level)
            size = min(size, PAGE << order)
        return self.m.memory.read(pa, size).ljust(self.page_size, b"\0")

    # ---- crash log, notes, walk, write -------------------------------------------------------

    def fault_status(self) -> int:
        """The ESR's fault status for the FAR (``Machine.fsc`` when a scenario plants one):
        a translation fault at the level where the kernel context's tables stop, or a
        permission fault at L3 when they map it."""
        if self.m.fsc is not None:
            return self.m.fsc
        level = self.m.firmware.fault_level(self.m.far)
        return ESR_FSC_PERMISSION | 3 if level is None else ESR_FSC_TRANSLATION | level

    def crashlog(self) -> bytes:
        rng = self.rng
        far = self.m.far
        fsc = self.fault_status()
        if fsc & ~3 == ESR_FSC_PERMISSION:  # an instruction abort: it branched into data
            esr, what = (0x21 << 26) | (1 << 25) | fsc, "instruction abort"
        else:  # a data abort (read), same EL
            esr, what = (0x25 << 26) | (1 << 25) | fsc, "data abort"
        regs = [rng.getrandbits(64) for _ in range(31)]
        regs[0] = far
        entries: list[tuple[str, bytes | dict]] = [
            (
                "Cver",
                {
                    "uuid": bytes(rng.getrandbits(8) for _ in range(16)),
                    "version": "RTKit_iOS-2404.120.14.release",
                },
            ),
            (
                "Cstr",
                {"id": 0, "message": f"GPU firmware panic: page fault at {far:#x} ({what})"},
            ),
            ("Ctim", {"time": 0x1234_5678_9ABC}),
            (
                "Crg8",
                {
                    "unk0": 0,
                    "unk1": 0,
                    "x": regs,
                    "sp": 0xFFFF_FF80_0010_3F00,
                    "pc": FW_CODE_VA + 0x1A40,
                    "psr": 0x6000_03C5,
                    "cpacr": 0x30_0000,
                    "fpsr": 0,
                    "fpcr": 0,
                    "unknown": [0] * 64,
                    "far": far,
                    "unknown2": 0,
                    "esr": esr,
                    "unknown3": 0,
                },
            ),
            (
                "Ccst",
                {
                    "task": 3,
                    "unknown": 0,
                    "return_addresses": [
                        FW_CODE_VA + off for off in (0x1A40, 0x2210, 0x30F8, 0x0C4C)
                    ],
                },
            ),
            (
                "Cmbx",
                {
                    "header": [1, 0, 0, 0],
                    "type": 1,
                    "unknown": 0,
                    "index": 2,
                    "records": [
                        {
                            "endpoint": 0x20 + i,
                            "message": rng.getrandbits(64),
                            "timestamp": 1000 + i,
                        }
                        for i in range(4)
                    ],
                },
            ),
            (
                "Crtk",
                {
                    "tasks": [
                        {
                            "id": i,
                            "flags": 1,
                            "unk0": [0, 0, 0],
                            "ptr": FW_DATA_VA + i * 0x100,
                            "unk1": [0, 0, 0, 0],
                            "name": name,
                            "ptrs": [FW_DATA_VA + i * 0x100 + 8],
                        }
                        for i, name in enumerate(("rtk_ep", "gpu_main", "power"))
                    ]
                },
            ),
            ("Ccdp", {"pairs": [{"va": va, "pa": pa, "unknown": 0} for va, pa in self.m.ccdp]}),
        ]
        return clhe.build_crashlog(entries)

    def notes(self) -> list[tuple[str, int, bytes]]:
        if self.lpae:
            return []  # no AGX note: it describes an Apple GPU; no crash log either
        info = agx.build_agx_info(
            initdata_address=self.m.initdata_va,
            chip_id=0x6000,
            gpu_gen=13,
            gpu_variant=ord("C"),
            gpu_rev=0x11,
            total_active_cores=8,
            firmware_version=[13, 5, 2, 0, 0, 0],
        )
        return [(agx.AGX_NOTE_NAME, agx.AGX_NOTE_TYPE, info), ("RTKIT", 1, self.crashlog())]

    def region_list(self) -> list:
        mm = self.memory_map
        return [*mm.ram, *mm.reserved, *mm.mmio]

    def walk(self) -> WalkResult:
        if self.lpae:
            return self._walk_lpae()
        g = self.geometry
        space_start = g.va_base & ~g.ias_mask
        return walk_space(
            self.m.api,
            self.m.memory,
            g,
            self.m.firmware.ttb_pa,
            space_start,
            KERNEL_WALK_END,
            self.region_list(),
            context=0,
            managed=(KERNEL_VA_START, KERNEL_VA_END),
        )

    def region_infos(self) -> list[RegionInfo]:
        """The extension's region records, in ``region_list`` order."""
        regions = []
        for r in self.region_list():
            if isinstance(r, RamBank):
                regions.append(RegionInfo(ext.REGION_RAM, "ram", r.base, r.size_bytes))
            elif isinstance(r, ReservedRegion):
                flags = (ext.REGION_NO_MAP if r.no_map else 0) | (
                    ext.REGION_REUSABLE if r.reusable else 0
                )
                regions.append(RegionInfo(ext.REGION_RESERVED, r.name, r.base, r.size_bytes, flags))
            else:
                regions.append(RegionInfo(ext.REGION_MMIO, r.name, r.base, r.size_bytes))
        return regions

    def extension(self, walk: WalkResult) -> Extension:
        if self.lpae:
            return self._extension_lpae(walk)
        regions = self.region_infos()
        g = self.geometry
        space_start = g.va_base & ~g.ias_mask
        spaces = [
            SpaceInfo(
                0,
                self.m.firmware.ttb_pa,
                space_start,
                KERNEL_WALK_END - space_start,
                KERNEL_VA_START,
                KERNEL_VA_END - KERNEL_VA_START,
            )
        ]
        tables = list(walk.tables)
        # User VMs are not part of the dumped (kernel) address space, but their tables are
        # carried so their translations can be inspected.
        for slot, vm in enumerate(self.m.users, start=1):
            spaces.append(
                SpaceInfo(
                    slot,
                    vm.ttb,
                    0,
                    1 << g.ias,
                    USER_VA_START,
                    USER_VA_END - USER_VA_START,
                    ext.SPACE_TTB_OWNED,
                )
            )
            user_walk = walk_space(
                self.m.api,
                self.m.memory,
                g,
                vm.ttb,
                0,
                1 << g.ias,
                self.region_list(),
                context=slot,
                managed=(USER_VA_START, USER_VA_END),
            )
            tables.extend(user_walk.tables)
        return Extension(
            entry_format=ext.ENTRY_FORMAT_UAT,
            geometry=g,
            spaces=spaces,
            tables=tables,
            regions=regions,
            holes=walk.holes,
            scenario_name=self.name,
            seed=self.seed,
            knobs=self.knobs,
            generator="dumpview-sim/1",
        )


def generate(
    fp: BinaryIO,
    scenario: str = "minimal",
    seed: int = 0,
    knobs: dict | None = None,
    driver_layout: bool = False,
    progress: Callable[[int, int], None] | None = None,
    entry_format: str = "uat",
) -> dict:
    """Run a scenario and write its dump to ``fp``; returns a summary (sizes, counts, reports).

    ``entry_format`` is "uat" or "lpae-4k", "lpae-16k", "lpae-64k" (scenarios ``smmu`` and
    ``faults``). ``progress(done_bytes, total_bytes)`` is called while page data is written.
    """
    builder = Builder(scenario, seed, knobs or {}, entry_format)
    if driver_layout and builder.lpae:
        raise ScenarioError(
            f"--driver-layout is the UAT driver's layout: an {entry_format} dump needs "
            "dumpview's extension (without it a reader takes the entries for UAT)"
        )
    builder.build()
    walk = builder.walk()
    extension = None if driver_layout else builder.extension(walk)
    total = (
        int(np.where(walk.segments.has_data, walk.segments.size_bytes, 0).sum())
        if len(walk.segments)
        else 0
    )
    size = write_core(
        fp,
        walk.segments,
        builder.read_data,
        builder.notes(),
        extension,
        builder.read_table,
        progress=(lambda done: progress(done, total)) if progress else None,
        e_entry=builder.e_entry,
        page_size=builder.page_size,
        note_segment=not builder.lpae,
        data_pa_mask=builder.entry_format.pa_mask(builder.geometry.oas),
    )
    reports = builder.reports()
    return {
        "scenario": scenario,
        "entry_format": entry_format,
        "seed": seed,
        "knobs": builder.knobs,
        "segments": len(walk.segments),
        "tables": len(walk.tables),
        "leaves": walk.leaf_count,
        "dumped_pages": walk.dumped_pages,
        "size_bytes": size,
        "reports": reports,
        "walk_problems": walk.problems,
    }


def generate_file(path: str | os.PathLike[str], **kwargs) -> dict:
    """``generate`` into ``path`` through ``dumpview.output.open_output``: atomically over a
    regular file or a new path (an unpredictable temporary file beside it, renamed when the
    dump is complete, removed on any failure or signal), through a link to its file, streamed
    into a device or FIFO. ``OSError`` names ``path``."""
    with open_output(path, binary=True) as fp:
        return generate(fp, **kwargs)


__all__ = [
    "ENTRY_FORMAT_NAMES",
    "LPAE_SCENARIOS",
    "SCENARIOS",
    "Builder",
    "ScenarioError",
    "SimError",
    "generate",
    "generate_file",
]
