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
from dumpview.sim.asahi import (
    KERNEL_VA_END,
    KERNEL_VA_START,
    KERNEL_WALK_END,
    LARGE_MAX_MIB,
    MIB,
    PAGE,
    RANGES,
    USER_VA_END,
    USER_VA_START,
    AsahiScenarios,
    Machine,
    memory_map,
)
from dumpview.sim.crashlog import (
    ESR_FSC_PERMISSION,
    ESR_FSC_TRANSLATION,
    firmware_crashlog,
)
from dumpview.sim.errors import ScenarioError, SimError
from dumpview.sim.firmware import (
    FirmwareSpace,
)
from dumpview.sim.memory import (
    PhysicalMemory,
    RamBank,
    ReservedRegion,
)
from dumpview.sim.page import PageApi
from dumpview.sim.pgtable import UatPageTable
from dumpview.sim.smmu import SmmuScenarios
from dumpview.sim.walker import WalkResult, walk_space
from dumpview.sim.writer import DEFAULT_E_ENTRY, Extension, RegionInfo, SpaceInfo, write_core
from formats import agx, entryformat, ext, uat

ENTRY_FORMAT_NAMES = ("uat", "lpae-4k", "lpae-16k", "lpae-64k")


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


class Builder(AsahiScenarios, SmmuScenarios):
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
        self.memory_map, self.regions = memory_map(ram, carveout)
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

    # ---- scenarios ---------------------------------------------------------------------------

    def build(self) -> None:
        if self.lpae:
            getattr(self, "_build_lpae_" + self.name.replace("-", "_"))()
            return
        getattr(self, "_build_" + self.name.replace("-", "_"))()

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
        """The firmware's crash log for this scenario's fault (``sim.crashlog``)."""
        return firmware_crashlog(self.rng, self.m.far, self.fault_status(), self.m.ccdp)

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
