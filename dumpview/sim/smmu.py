"""The ARM SMMU scenarios' SoC and builder part: one stage-1 stream (LPAE, io-pgtable
semantics) over the same Page API as the UAT scenarios.

Owns the SoC (DRAM with a no-map carveout, the GIC ITS whose GITS_TRANSLATER frame is the MSI
doorbell, PCIe configuration space and a BAR window), the device's IOVA layout (command and
event rings, scattered DMA buffers, a block of every size, a split block, a block-sized unmap
that freed a table) and the faults a ``faults`` scenario plants there (fixed IOVAs: tests read
them), and ``SmmuScenarios``, the part of ``scenarios.Builder`` that builds, walks and
describes an LPAE dump. An LPAE dump has no AGX or RTKIT note, so no PT_NOTE; its ``e_entry``
is the space's VA base (0) and its page size the granule.

Failure modes: ``ScenarioError`` for knobs that do not fit (one line, names the knob); misuse
of the simulation raises the kernel-named errors of ``dumpview.sim.errors``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dumpview.sim.allocator import BuddyAllocator
from dumpview.sim.errors import ScenarioError
from dumpview.sim.lpae import LpaePageTable
from dumpview.sim.memory import (
    MemoryMap,
    MmioWindow,
    PhysicalMemory,
    RamBank,
    ReservedRegion,
    stamp,
)
from dumpview.sim.page import PageApi
from dumpview.sim.walker import WalkResult, walk_space
from dumpview.sim.writer import Extension, SpaceInfo
from formats import entryformat, ext, lpae, uat

PAGE = uat.PAGE_SIZE
MIB = 1 << 20
GIB = 1 << 30
# Blocks above this size are mapped only with the huge_blocks knob: the 4K granule's 1 GiB
# block is 262,144 pages in every listing (samples and tests stay small without it).
SMMU_HUGE_BLOCK = 512 * MIB

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


class SmmuScenarios:
    """The LPAE part of ``scenarios.Builder`` (a mixin: it uses the builder's ``name``,
    ``seed``, ``knobs`` and ``region_list``)."""

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
                self.m.memory.write(pa + off, stamp(kind, iova + off, self.rng, g))
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
            self.m.memory.write(pa, stamp(kind, iova, rng, g))
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
