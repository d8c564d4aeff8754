"""The generator's second entry format: ARM LPAE stage 1 (an ARM SMMU's io-pgtable) with 4K, 16K
and 64K granules, checked by independent readers (pyelftools, readelf, the raw bytes of the
extension parsed with formats/) against the simulated machine that produced the dump. The
dumpview model is not used here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import construct
import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from dumpview.sim.scenarios import (
    Builder,
    ScenarioError,
    generate_file,
)
from dumpview.sim.smmu import (
    FAULT_LPAE_ALIAS_CACHED_VA,
    FAULT_LPAE_ALIAS_NC_VA,
    FAULT_LPAE_DEVICE_ON_RAM_VA,
    FAULT_LPAE_EMPTY_TABLE_VA,
    FAULT_LPAE_NORMAL_ON_MMIO_VA,
    FAULT_LPAE_OA_BEYOND_OAS_VA,
    FAULT_LPAE_OUTSIDE_RANGE_VA,
    FAULT_LPAE_RWX_VA,
    FAULT_LPAE_UNEXPECTED_VA,
    FAULT_LPAE_UNEXPECTED_VALUE,
    SMMU_FAULTS_OAS,
    SMMU_HUGE_BLOCK,
    SMMU_IOVA_END,
    SMMU_IOVA_START,
    SMMU_MSI_IOVA,
    SMMU_SPLIT_IOVA,
)
from formats import elf, entryformat, ext, lpae
from formats.geometry import GeometryRecord

FORMATS = ["lpae-4k", "lpae-16k", "lpae-64k"]
GRANULES = {"lpae-4k": 0x1000, "lpae-16k": 0x4000, "lpae-64k": 0x10000}
BY_NAME = entryformat.BY_NAME
MIB = 1 << 20


# ---- independent readers ----------------------------------------------------------------------


class Parsed:
    """One dump read with pyelftools and formats/ only."""

    def __init__(self, path: Path) -> None:
        self.raw = path.read_bytes()
        with path.open("rb") as f:
            e = ELFFile(f)
            self.e_entry = e.header["e_entry"]
            self.segments = [dict(s.header) for s in e.iter_segments()]
            self.loads = [s for s in self.segments if s["p_type"] == "PT_LOAD"]
            self.data = {
                s["p_vaddr"]: s.data()
                for s in e.iter_segments()
                if s["p_type"] == "PT_LOAD" and s["p_filesz"]
            }
            self.sections = {s.name: dict(s.header) for s in e.iter_sections()}
        meta = self.sections[ext.SECTION_NAME]
        blob = self.raw[meta["sh_offset"] : meta["sh_offset"] + meta["sh_size"]]
        header = ext.ExtHeader.parse(blob)
        self.records: dict[int, list] = {}
        for d in header.directory:
            part = blob[d.offset : d.offset + d.size_bytes]
            if d.kind == ext.KIND_GEOMETRY:
                self.geometry = GeometryRecord.parse(part)
            elif d.kind in ext.RECORDS:
                self.records[d.kind] = list(
                    construct.Array(d.count, ext.RECORDS[d.kind]).parse(part)
                )
        self.tables = self.records[ext.KIND_TABLES]
        self.holes = self.records[ext.KIND_HOLES]
        self.regions = self.records[ext.KIND_REGIONS]
        self.spaces = self.records[ext.KIND_SPACES]

    def table_bytes(self, record, granule: int) -> bytes:
        return self.raw[record.file_offset : record.file_offset + granule]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict[str, tuple[Path, Builder]]:
    """smmu for every granule and faults with lpae-4k, each with a twin Builder (same
    arguments: the same simulated machine) to compare against."""
    out = tmp_path_factory.mktemp("lpae")
    made = {}
    for scenario, fmt in [*(("smmu", f) for f in FORMATS), ("faults", "lpae-4k")]:
        path = out / f"{scenario}-{fmt}.dump"
        generate_file(path, scenario=scenario, entry_format=fmt)
        twin = Builder(scenario, 0, {}, fmt)
        twin.build()
        made[f"{scenario}-{fmt}"] = (path, twin)
    return made


@pytest.fixture(scope="module")
def parsed(dumps) -> dict[str, Parsed]:
    return {key: Parsed(path) for key, (path, _b) in dumps.items()}


def expected_entry(builder: Builder, va: int) -> int:
    """The page table's entry for the granule page at ``va``: a page's entry, or the block's
    entry with its output address advanced to this page."""
    fmt = builder.entry_format
    found = builder.m.pgtable.lookup(va)
    assert found is not None, hex(va)
    level, entry = found
    if level == 3:
        return entry
    span = builder.geometry.level(level).entry_span_bytes
    oa = int(fmt.output_address(entry)) + (va & (span - 1))
    return (entry & ~fmt.oa_bits & entryformat.U64_MAX) | int(fmt.encode_output_address(oa))


# ---- the ELF side -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_pt_loads_are_granule_pages_with_the_memory_bytes(dumps, parsed, fmt):
    _path, builder = dumps[f"smmu-{fmt}"]
    p = parsed[f"smmu-{fmt}"]
    granule = GRANULES[fmt]
    assert p.e_entry == 0  # the space's VA base
    assert all(s["p_type"] == "PT_LOAD" for s in p.segments)  # no notes, no PT_NOTE
    assert len(p.loads) > 10
    with_data = 0
    for seg in p.loads:
        assert seg["p_align"] == granule
        assert seg["p_memsz"] % granule == 0 and seg["p_vaddr"] % granule == 0
        assert seg["p_paddr"] % granule == 0
        if seg["p_filesz"]:
            assert seg["p_filesz"] == seg["p_memsz"]
            assert seg["p_offset"] % granule == 0
            expected = builder.m.memory.read(seg["p_paddr"], seg["p_memsz"])
            assert p.data[seg["p_vaddr"]] == expected, hex(seg["p_vaddr"])
            with_data += 1
    assert with_data >= 5
    # The data the scenario stamped names its IOVA.
    first = next(s for s in p.loads if s["p_filesz"])
    assert f"@ {first['p_vaddr']:#x}".encode() in p.data[first["p_vaddr"]][:64]


@pytest.mark.parametrize("fmt", FORMATS)
def test_p_flags_unpack_to_the_page_table_entries(dumps, parsed, fmt):
    _path, builder = dumps[f"smmu-{fmt}"]
    p = parsed[f"smmu-{fmt}"]
    entry_format = BY_NAME[fmt]
    granule = GRANULES[fmt]
    blocks_seen = 0
    for seg in p.loads:
        pages = seg["p_memsz"] // granule
        for i in sorted({0, pages // 2, pages - 1}):
            va, pa = seg["p_vaddr"] + i * granule, seg["p_paddr"] + i * granule
            entry = int(entry_format.unpack_p_flags(seg["p_flags"], pa))
            assert entry == expected_entry(builder, va), hex(va)
            assert seg["p_flags"] & 7 == lpae.elf_rwx(entry)
            blocks_seen += entry & lpae.TYPE_MASK == lpae.TYPE_BLOCK
    assert blocks_seen  # a block's pages say "block" (type 01) in p_flags


@pytest.mark.parametrize("fmt", FORMATS)
def test_pages_without_data_have_a_hole_with_the_right_reason(parsed, fmt):
    p = parsed[f"smmu-{fmt}"]
    entry_format = BY_NAME[fmt]
    holes = sorted(p.holes, key=lambda h: h.va)
    seen = set()
    for seg in p.loads:
        end = seg["p_vaddr"] + seg["p_memsz"]
        covering = [h for h in holes if h.va < end and seg["p_vaddr"] < h.va + h.size_bytes]
        if seg["p_filesz"]:
            assert not covering, hex(seg["p_vaddr"])
            continue
        entry = int(entry_format.unpack_p_flags(seg["p_flags"], seg["p_paddr"]))
        device = entry_format.memattr(entry) in entry_format.device_memattrs
        want_reason = ext.REASON_DEVICE_MEMORY if device else ext.REASON_BORROW_REFUSED
        region = next(
            i
            for i, r in enumerate(p.regions)
            if r.kind != ext.REGION_RAM and r.base <= seg["p_paddr"] < r.base + r.size_bytes
        )
        want_detail = (
            ext.DETAIL_MMIO if p.regions[region].kind == ext.REGION_MMIO else ext.DETAIL_NO_MAP
        )
        assert covering, hex(seg["p_vaddr"])
        assert covering[0].va <= seg["p_vaddr"]
        assert covering[-1].va + covering[-1].size_bytes >= end
        for h in covering:
            assert (h.reason, h.detail, h.region_index) == (want_reason, want_detail, region)
        seen.add((ext.REASON_NAMES[want_reason], ext.DETAIL_NAMES[want_detail]))
    assert ("device-memory", "mmio") in seen  # the MSI doorbell at least
    if fmt != "lpae-64k":  # 4K and 16K put a block in the no-map carveout
        assert ("borrow-refused", "no-map") in seen
    # The MSI doorbell: a device-memory page of the GIC ITS window.
    doorbell = next(s for s in p.loads if s["p_vaddr"] == SMMU_MSI_IOVA)
    assert doorbell["p_filesz"] == 0


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf not installed")
@pytest.mark.parametrize("fmt", FORMATS)
def test_readelf_lists_the_same_loads(dumps, parsed, fmt):
    path, _b = dumps[f"smmu-{fmt}"]
    proc = subprocess.run(["readelf", "-lnW", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "warning" not in proc.stdout.lower()
    loads = [line for line in proc.stdout.splitlines() if line.strip().startswith("LOAD")]
    assert len(loads) == len(parsed[f"smmu-{fmt}"].loads)
    assert all(line.split()[-1] == hex(GRANULES[fmt]) for line in loads)


# ---- the extension ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_geometry_space_and_table_section(dumps, parsed, fmt):
    _path, builder = dumps[f"smmu-{fmt}"]
    p = parsed[f"smmu-{fmt}"]
    granule = GRANULES[fmt]
    entry_format = BY_NAME[fmt]
    want = lpae.lpae_geometry(fmt.split("-")[1], ias=48, oas=48)
    g = p.geometry
    assert g.entry_format == entry_format.id
    assert ext.ENTRY_FORMAT_NAMES[g.entry_format] == fmt
    assert (g.page_shift, g.ias, g.oas, g.level_count, g.start_level, g.va_base) == (
        want.page_shift,
        48,
        48,
        want.level_count,
        want.start_level,
        0,
    )
    [space] = p.spaces
    assert space.context == 0 and space.flags == ext.SPACE_TTB_OWNED
    assert space.ttb_pa == builder.m.pgtable.ttb_pa
    assert (space.va_start, space.va_size_bytes) == (0, 1 << 48)
    assert (space.managed_va_start, space.managed_va_size_bytes) == (
        SMMU_IOVA_START,
        SMMU_IOVA_END - SMMU_IOVA_START,
    )
    section = p.sections[ext.TABLES_SECTION_NAME]
    assert section["sh_entsize"] == section["sh_addralign"] == granule
    assert section["sh_size"] == len(p.tables) * granule
    # Every table the page table can reach is carried, content equal to memory, no firmware.
    reachable = {pa for _lv, pa, _va, _span in builder.m.pgtable.tables()}
    assert {t.pa for t in p.tables} == reachable
    for t in p.tables:
        assert t.file_offset % granule == 0
        assert section["sh_offset"] <= t.file_offset < section["sh_offset"] + section["sh_size"]
        # A table's content is memory; a top table smaller than the granule (64K: 64
        # entries in one 16 KiB page) is zero-padded past its entries.
        used = builder.geometry.levels[0].entries * 8 if t.flags & ext.TABLE_IS_TTB else granule
        content = p.table_bytes(t, granule)
        assert content[:used] == builder.m.memory.read(t.pa, used)
        assert not any(content[max(used, 0x4000) :])
        assert not t.flags & ext.TABLE_FIRMWARE
        assert bool(t.flags & ext.TABLE_IS_TTB) == (t.pa == space.ttb_pa)


@pytest.mark.parametrize("fmt", FORMATS)
def test_block_entries_are_in_the_carried_tables(parsed, fmt):
    p = parsed[f"smmu-{fmt}"]
    granule = GRANULES[fmt]
    entry_format = BY_NAME[fmt]
    geometry = lpae.lpae_geometry(fmt.split("-")[1])
    loads = {s["p_vaddr"]: s for s in p.loads}
    sizes = set()
    for t in p.tables:
        if t.level not in entry_format.block_levels:
            continue
        span = geometry.level(t.level).entry_span_bytes
        raw = p.table_bytes(t, granule)
        values = np.frombuffer(raw, dtype="<u8")
        for index in np.flatnonzero((values & 3) == lpae.TYPE_BLOCK).tolist():
            parsed_entry = lpae.LpaeEntry.parse(raw[index * 8 : index * 8 + 8])
            assert parsed_entry.type == lpae.TYPE_BLOCK and parsed_entry.af
            va = t.va_start + index * span
            oa = lpae.output_address(int(values[index]), geometry.page_shift)
            # The block's first page starts a PT_LOAD at its output address (blocks are
            # never preceded by a contiguous, same-flags page in this scenario).
            seg = loads[va]
            assert seg["p_paddr"] == oa and seg["p_memsz"] >= span
            sizes.add(span)
    blocks = {geometry.level(level).entry_span_bytes for level in entry_format.block_levels}
    # Blocks above 512 MiB (the 4K granule's 1 GiB) need the huge_blocks knob.
    assert sizes == {size for size in blocks if size <= SMMU_HUGE_BLOCK}
    if fmt == "lpae-4k":  # the 2 MiB block is RAM-backed and dumped
        assert any(
            loads[va]["p_filesz"] >= 2 * MIB for va in loads if loads[va]["p_memsz"] == 2 * MIB
        )


def test_the_split_block_became_a_table_with_one_page_missing(dumps):
    _path, builder = dumps["smmu-lpae-4k"]
    pt = builder.m.pgtable
    assert pt.lookup(SMMU_SPLIT_IOVA)[0] == 3
    assert pt.lookup(SMMU_SPLIT_IOVA + MIB) is None
    assert pt.lookup(SMMU_SPLIT_IOVA + MIB + 0x1000)[0] == 3
    # The region mapped as pages and unmapped in one 2 MiB unmap left no table behind.
    assert pt.lookup(SMMU_SPLIT_IOVA + 2 * MIB) is None
    assert pt.entry(2, SMMU_SPLIT_IOVA + 2 * MIB) == 0


# ---- faults -----------------------------------------------------------------------------------


def test_faults_plants_an_rwx_mapping_and_the_rest(dumps, parsed):
    _path, builder = dumps["faults-lpae-4k"]
    p = parsed["faults-lpae-4k"]
    fmt = BY_NAME["lpae-4k"]
    entries = {s["p_vaddr"]: int(fmt.unpack_p_flags(s["p_flags"], s["p_paddr"])) for s in p.loads}
    wx = [
        va
        for va, e in entries.items()
        if any("W" in v and "X" in v for v in (lpae.privileged_view(e), lpae.unprivileged_view(e)))
    ]
    assert wx == [FAULT_LPAE_RWX_VA]
    assert lpae.unprivileged_view(entries[FAULT_LPAE_RWX_VA]) == "RWX"
    # One PA, write-back and non-cacheable.
    cached, nc = entries[FAULT_LPAE_ALIAS_CACHED_VA], entries[FAULT_LPAE_ALIAS_NC_VA]
    assert fmt.output_address(cached) == fmt.output_address(nc)
    assert (fmt.memattr(cached), fmt.memattr(nc)) == (lpae.MAIR_IDX_CACHE, lpae.MAIR_IDX_NC)
    # RAM as device memory, MMIO as normal memory: neither dumped.
    loads = {s["p_vaddr"]: s for s in p.loads}
    assert fmt.memattr(entries[FAULT_LPAE_DEVICE_ON_RAM_VA]) == lpae.MAIR_IDX_DEV
    assert fmt.memattr(entries[FAULT_LPAE_NORMAL_ON_MMIO_VA]) == lpae.MAIR_IDX_CACHE
    for va in (FAULT_LPAE_DEVICE_ON_RAM_VA, FAULT_LPAE_NORMAL_ON_MMIO_VA):
        assert loads[va]["p_filesz"] == 0
    # An output address with a bit at the 44-bit OAS; the geometry says 44.
    assert p.geometry.oas == SMMU_FAULTS_OAS
    assert loads[FAULT_LPAE_OA_BEYOND_OAS_VA]["p_paddr"] >> SMMU_FAULTS_OAS == 1
    # A leaf past the DMA aperture.
    assert FAULT_LPAE_OUTSIDE_RANGE_VA in loads
    space = p.spaces[0]
    assert space.managed_va_start + space.managed_va_size_bytes <= FAULT_LPAE_OUTSIDE_RANGE_VA
    # The unexpected type-01 entry sits in the top table's raw bytes; an empty leaf table is
    # carried.
    [top] = [t for t in p.tables if t.flags & ext.TABLE_IS_TTB]
    index = builder.geometry.levels[0].index_of(FAULT_LPAE_UNEXPECTED_VA)
    raw = p.table_bytes(top, 0x1000)
    assert int.from_bytes(raw[index * 8 : index * 8 + 8], "little") == FAULT_LPAE_UNEXPECTED_VALUE
    assert top.level not in lpae.block_levels(12)
    empty = [
        t
        for t in p.tables
        if t.level == 3 and t.va_start <= FAULT_LPAE_EMPTY_TABLE_VA < t.va_start + t.va_size_bytes
    ]
    assert len(empty) == 1 and not any(p.table_bytes(empty[0], 0x1000))


# ---- errors and the CLI -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"scenario": "smmu", "entry_format": "uat"}, "needs an lpae entry format"),
        ({"scenario": "smmu"}, "needs an lpae entry format"),
        ({"scenario": "minimal", "entry_format": "lpae-4k"}, "has no lpae-4k version"),
        ({"scenario": "user-contexts", "entry_format": "lpae-64k"}, "has no lpae-64k version"),
        ({"scenario": "smmu", "entry_format": "lpae-16k", "driver_layout": True}, "extension"),
        ({"scenario": "smmu", "entry_format": "lpae-8k"}, "unknown entry format"),
    ],
)
def test_bad_combinations_are_one_line_scenario_errors(tmp_path, kwargs, needle):
    out = tmp_path / "x.dump"
    with pytest.raises(ScenarioError) as info:
        generate_file(out, **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_cli_generates_lpae_16k_smmu(tmp_path):
    out = tmp_path / "s.dump"
    argv = ["generate", "--entry-format", "lpae-16k", "--scenario", "smmu", "-o", str(out)]
    proc = subprocess.run([sys.executable, "-m", "dumpview.cli", *argv], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[: len(elf.ELF_MAGIC)] == elf.ELF_MAGIC
    assert Parsed(out).geometry.page_shift == 14
    argv = [
        "generate",
        "--scenario",
        "smmu",
        "--entry-format",
        "uat",
        "-o",
        str(tmp_path / "u.dump"),
    ]
    bad = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *argv],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "needs an lpae entry format" in bad.stderr and not (tmp_path / "u.dump").exists()
