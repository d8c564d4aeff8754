"""The memory map and the minimap, cross-checked page by page against ``Dump.pages`` (plain
Python per page) on the samples, generated ``large`` dumps and hand-built factory dumps."""

from __future__ import annotations

import bisect
import collections
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dumpview.model import kinds, open_dump
from dumpview.model.dump import Dump
from dumpview.model.memmap import (
    DEFAULT_GLYPHS,
    NO_MEMORY_MAP,
    MemoryRow,
    Minimap,
    memory_map,
    minimap,
    render_bar,
    used_extent,
    walked_space,
)
from dumpview.model.pagearrays import unpack_p_flags_bulk
from dumpview.sim.asahi import FW_CARVEOUT_VA, FW_MMIO_VA
from dumpview.sim.scenarios import RANGES, generate_file
from dumpview.sim.writer import RegionInfo
from formats import entryformat, ext, uat
from tests import factory
from tests.factory import BASE_VA, PAGE

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_NAMES = ("minimal", "faults", "minimal-driver", "user-contexts")
EXTENSION_SAMPLES = ("minimal", "faults", "user-contexts")
UPPER_HALF = 0xFFFF_FF80_0000_0000
LARGE_KNOBS = {
    "large-scatter": {"mapped_mib": 8, "scatter": True, "dumped_percent": 50},
    "large-runs": {"mapped_mib": 4, "scatter": False, "dumped_percent": 75},
}


@pytest.fixture(scope="module")
def large_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("memmap")
    paths = {}
    for seed, (name, knobs) in enumerate(LARGE_KNOBS.items(), start=1):
        paths[name] = out / f"{name}.dump"
        generate_file(paths[name], scenario="large", seed=seed, knobs=knobs)
    return paths


def open_named(name: str, large_paths: dict[str, Path]) -> Dump:
    return open_dump(large_paths[name] if name in large_paths else SAMPLES / f"{name}.dump")


# ---- slow references: one page at a time, through Dump.pages --------------------------------


def slow_memory_counts(dump: Dump) -> dict[tuple[str, int], tuple[int, int]]:
    """{(name, base): (mapped, dumped)} by testing every page's PA against every region."""
    out = {}
    records = list(dump.pages())
    for region in dump.extension.regions:
        inside = [r for r in records if region.base <= r.pa < region.end]
        out[region.name, region.base] = (len(inside), sum(r.dumped for r in inside))
    return out


def slow_minimap(dump: Dump, columns: int, va_start: int, va_end: int):
    """(codes, counts): each page marks every column its bytes touch with its kind's code."""
    span = va_end - va_start
    bounds = [va_start + k * span // columns for k in range(columns + 1)]
    codes = [0] * columns
    counts: Counter[str] = Counter()
    for record in dump.pages():
        kind = kinds.leaf_kind(record.pte, record.dumped, dump.entry_format)
        first, last = max(record.va, va_start), min(record.va + dump.page_size_bytes, va_end) - 1
        if first > last:
            continue
        if va_start <= record.va < va_end:
            counts[kind] += 1
        for column in range(
            bisect.bisect_right(bounds, first) - 1, bisect.bisect_right(bounds, last)
        ):
            codes[column] = max(codes[column], kinds.CODE[kind])
    return codes, {name: counts[name] for name in kinds.kinds_of(dump.entry_format)[1:]}


# ---- the bulk p_flags unpacker ---------------------------------------------------------------


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64))
def test_bulk_unpack_equals_the_scalar_unpacker(flags: list[int]) -> None:
    bulk = unpack_p_flags_bulk(np.array(flags, dtype=np.uint32))
    assert bulk.dtype == np.uint64
    assert bulk.tolist() == [uat.unpack_p_flags(f, 0) for f in flags]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_bulk_unpack_on_every_sample_segment(name: str) -> None:
    with open_dump(SAMPLES / f"{name}.dump") as dump:
        flags = dump.seg_flags
        expected = [uat.unpack_p_flags(int(f), 0) for f in flags]
        assert unpack_p_flags_bulk(flags).tolist() == expected


def test_bulk_unpack_gives_back_the_recorded_bits_of_every_named_protection() -> None:
    ptes = [factory.leaf_pte(0, name) for name in uat.PROTS]
    packed = np.array([uat.pack_p_flags(pte) for pte in ptes], dtype=np.uint32)
    recorded = [pte & uat.RECORDED_PTE_BITS_DRIVER | uat.BIT_AF for pte in ptes]  # AF: always 1
    assert unpack_p_flags_bulk(packed).tolist() == recorded


# ---- the memory map ----------------------------------------------------------------------------


def test_memory_map_rows_sorted_by_base_ram_first_with_labels() -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        rows, reason = memory_map(dump)
    assert reason is None
    assert all(isinstance(r, MemoryRow) for r in rows)
    assert [(r.label, r.name) for r in rows] == [
        ("MMIO", "disp"),
        ("MMIO", "agx"),
        ("RAM", "ram"),
        ("reserved", "uat-ttbs"),
        ("reserved", "uat-pagetables"),
        ("reserved", "uat-handoff"),
        ("reserved", "gpu-fw"),
        ("reserved (no-map)", "fw-carveout"),
        ("reserved (reusable)", "linux,cma"),
    ]
    bases = [r.base for r in rows]
    assert bases == sorted(bases)
    ram = rows[2]
    assert (ram.kind, ram.base, ram.size_bytes) == ("ram", 0x100_0000_0000, 256 << 20)
    # Reserved regions lie inside the RAM bank and both are kept.
    for row in rows[3:]:
        assert row.kind == "reserved" and ram.base <= row.base < row.end <= ram.end
    carveout = rows[7]
    assert (carveout.no_map, carveout.reusable) == (True, False)
    assert (rows[8].no_map, rows[8].reusable) == (False, True)


@pytest.mark.parametrize("name", [*EXTENSION_SAMPLES, *LARGE_KNOBS])
def test_memory_map_counts_match_every_page(name: str, large_paths) -> None:
    with open_named(name, large_paths) as dump:
        rows, reason = memory_map(dump)
        expected = slow_memory_counts(dump)
    assert reason is None
    assert len(rows) == len(expected)
    assert {(r.name, r.base): (r.mapped_pages, r.dumped_pages) for r in rows} == expected
    # The RAM bank holds every dumped page: borrow_phys only accepts RAM.
    (ram,) = [r for r in rows if r.kind == "ram"]
    assert ram.dumped_pages == dump.page_totals[1]


@pytest.mark.parametrize("name", [*EXTENSION_SAMPLES, *LARGE_KNOBS])
def test_no_map_and_mmio_pages_are_mapped_but_never_dumped(name: str, large_paths) -> None:
    with open_named(name, large_paths) as dump:
        rows = {r.name: r for r in memory_map(dump)[0]}
    assert rows["fw-carveout"].mapped_pages > 0
    assert rows["fw-carveout"].dumped_pages == 0
    assert rows["agx"].mapped_pages > 0
    assert rows["agx"].dumped_pages == 0
    assert rows["gpu-fw"].dumped_pages == rows["gpu-fw"].mapped_pages > 0


def test_large_refused_pages_land_in_the_carveout(large_paths) -> None:
    with open_named("large-scatter", large_paths) as dump:
        rows = {r.name: r for r in memory_map(dump)[0]}
    refused = (8 << 20) // PAGE // 2  # dumped_percent 50 of 8 MiB
    # The carveout also holds the firmware's own carveout pages (2, as in minimal).
    assert rows["fw-carveout"].mapped_pages == refused + 2
    assert rows["fw-carveout"].dumped_pages == 0


def test_driver_layout_does_not_record_the_memory_map() -> None:
    with open_dump(SAMPLES / "minimal-driver.dump") as dump:
        rows, reason = memory_map(dump)
    assert rows == []
    assert reason == NO_MEMORY_MAP
    assert "does not record the memory map" in reason


RAM = 0x8_0000_0000
FIRMWARE_ONLY_FLAGS = uat.pack_p_flags(factory.leaf_pte(0, "FW_PRIV_RW") & ~uat.BIT_GPU)


@pytest.fixture
def straddling_dump(tmp_path: Path) -> Path:
    """Three PT_LOADs crossing region bounds in PA; the first keeps data for 3 of 5 pages.

    A  VA BASE_VA       PA RAM - 2P   5 pages, data on the first 3 (-2P, -1P, 0), FW_PRIV_RW
    B  VA BASE_VA + 16P PA RAM + 5P   3 pages, no data (device memory)
    C  VA BASE_VA + 32P PA RAM + 63P  2 pages, data, firmware only (bit 55 clear)
    RAM [RAM, RAM + 64P); reserved r1 [RAM, RAM + 2P); no-map r2 [RAM + 6P, RAM + 10P)
    """
    rows = [
        factory.segment(BASE_VA, RAM - 2 * PAGE, 5),
        factory.segment(BASE_VA + 16 * PAGE, RAM + 5 * PAGE, 3, "FW_MMIO_RW", data=False),
        (BASE_VA + 32 * PAGE, RAM + 63 * PAGE, 2 * PAGE, FIRMWARE_ONLY_FLAGS, True),
    ]
    regions = [
        RegionInfo(ext.REGION_RESERVED, "r1", RAM, 2 * PAGE),
        RegionInfo(ext.REGION_RESERVED, "r2", RAM + 6 * PAGE, 4 * PAGE, ext.REGION_NO_MAP),
        RegionInfo(ext.REGION_RAM, "ram", RAM, 64 * PAGE),
    ]
    path = factory.build_dump(
        tmp_path / "straddle.dump", rows, extension=factory.uat_extension(regions=regions)
    )
    raw = bytearray(path.read_bytes())
    filesz_at = 64 + 56 * 1 + 32  # PT_LOAD A is phdr 1; p_filesz at +32
    raw[filesz_at : filesz_at + 8] = (3 * PAGE).to_bytes(8, "little")
    path.write_bytes(raw)
    return path


def test_memory_map_counts_straddling_segments_page_by_page(straddling_dump: Path) -> None:
    with open_dump(straddling_dump) as dump:
        assert dump.page_totals == (10, 5)
        rows, reason = memory_map(dump)
        assert {(r.name, r.base): (r.mapped_pages, r.dumped_pages) for r in rows} == (
            slow_memory_counts(dump)
        )
    assert reason is None
    # RAM first at the shared base, then r1; RAM: A's PA 0 (data), 1P, 2P; all of B; C's 63P.
    assert [(r.name, r.mapped_pages, r.dumped_pages) for r in rows] == [
        ("ram", 3 + 3 + 1, 1 + 0 + 1),
        ("r1", 2, 1),
        ("r2", 2, 0),
    ]
    assert [r.label for r in rows] == ["RAM", "reserved", "reserved (no-map)"]


def test_many_scattered_segments_count_like_every_page(tmp_path: Path) -> None:
    table = factory.many_segments(3000, data_every=7)
    top = int(table.pa.max()) + PAGE
    regions = [
        RegionInfo(ext.REGION_RAM, "ram", RAM, top - RAM),
        RegionInfo(ext.REGION_RESERVED, "low", RAM + 101 * PAGE, 900 * PAGE),
        RegionInfo(ext.REGION_RESERVED, "mid", RAM + 4000 * PAGE, 1 * PAGE, ext.REGION_NO_MAP),
        RegionInfo(ext.REGION_RESERVED, "top", top - 3 * PAGE, 3 * PAGE, ext.REGION_REUSABLE),
        RegionInfo(ext.REGION_MMIO, "below-ram", 0, RAM),
    ]
    path = factory.build_dump(
        tmp_path / "many.dump", table, extension=factory.uat_extension(regions=regions)
    )
    with open_dump(path) as dump:
        rows, _ = memory_map(dump)
        assert {(r.name, r.base): (r.mapped_pages, r.dumped_pages) for r in rows} == (
            slow_memory_counts(dump)
        )
    by_name = {r.name: r for r in rows}
    assert by_name["ram"].mapped_pages == 3000
    assert by_name["ram"].dumped_pages == len(range(0, 3000, 7))
    assert by_name["below-ram"].mapped_pages == 0


# ---- the minimap -------------------------------------------------------------------------------


def minimap_ranges(dump: Dump) -> list[tuple[int, int]]:
    """The default range, the used extent, and one cutting through PT_LOADs at both ends."""
    start, end = used_extent(dump)
    return [walked_space(dump), (start, end), (start + PAGE + 123, end - PAGE - 7)]


@pytest.mark.parametrize("columns", [1, 7, 200])
@pytest.mark.parametrize("name", [*SAMPLE_NAMES, *LARGE_KNOBS])
def test_minimap_matches_every_page(name: str, columns: int, large_paths) -> None:
    with open_named(name, large_paths) as dump:
        for va_start, va_end in minimap_ranges(dump):
            m = minimap(dump, columns, va_start, va_end)
            codes, counts = slow_minimap(dump, columns, va_start, va_end)
            assert (m.va_start, m.va_end, m.columns) == (va_start, va_end, columns)
            assert m.codes.dtype == np.uint8
            assert m.codes.tolist() == codes, (va_start, va_end)
            assert m.counts == counts, (va_start, va_end)


@pytest.mark.parametrize("name", [*SAMPLE_NAMES, *LARGE_KNOBS])
def test_minimap_default_range_is_the_walked_space_and_counts_every_page(
    name: str, large_paths
) -> None:
    with open_named(name, large_paths) as dump:
        m = minimap(dump, 80)
        assert (m.va_start, m.va_end) == (UPPER_HALF, 1 << 64) == walked_space(dump)
        total, dumped = dump.page_totals
        assert sum(m.counts.values()) == total
        assert m.counts["gpu"] + m.counts["firmware"] == dumped
        assert m.counts == minimap(dump, 80, *used_extent(dump)).counts


def test_minimap_faults_shows_device_and_not_dumped_where_planted() -> None:
    with open_dump(SAMPLES / "faults.dump") as dump:
        m = minimap(dump, 200)

        def code_at(va: int) -> str:
            (column,) = [i for i in range(200) if m.column_range(i)[0] <= va < m.column_range(i)[1]]
            return kinds.KIND_CODES[m.codes[column]]

        assert code_at(FW_MMIO_VA) == kinds.DEVICE  # firmware's MMIO window
        assert code_at(FW_CARVEOUT_VA) == kinds.NOT_DUMPED  # no-map carveout, with fw code
        assert code_at(RANGES["MMIO"][0]) == kinds.DEVICE
        assert code_at(RANGES["PRIV"][0]) == kinds.NOT_DUMPED  # MMIO mapped cached
        assert code_at(RANGES["GPU"][0]) == kinds.GPU
        # Every page counted once by its kind (the scalar rule over the scalar page records).
        scalar = collections.Counter(kinds.leaf_kind(r.pte, r.dumped) for r in dump.pages())
        assert m.counts == dict(scalar)
        # The planted ones too; the oa-beyond-oas page has data (read from its OAS-cut PA).
        assert m.counts["device"] == 5 and m.counts["not-dumped"] == 4
        # One column per page: the planted pages exactly.
        priv = minimap(dump, 8, RANGES["PRIV"][0], RANGES["PRIV"][0] + 8 * PAGE)
        assert render_bar(priv) == "▓▓▓▓▓▓▓░"  # firmware private: the GPU view is --
        shared = minimap(dump, 8, RANGES["SHARED"][0], RANGES["SHARED"][0] + 8 * PAGE)
        assert render_bar(shared) == "▓▓▓▓▓▓▓░"  # the no-map page mapped cached
        mmio = minimap(dump, 4, RANGES["MMIO"][0], RANGES["MMIO"][0] + 4 * PAGE)
        assert render_bar(mmio) == "▒·▒·"  # 16 KiB gaps between MMIO mappings
        firmware = minimap(dump, 4, FW_CARVEOUT_VA - 2 * PAGE, FW_CARVEOUT_VA + 2 * PAGE)
        assert render_bar(firmware) == "··░░"


def test_one_undumped_page_shows_in_a_column_of_dumped_ones(tmp_path: Path) -> None:
    rows = [
        factory.segment(BASE_VA, RAM, 100, "GPU_SHARED_RW"),
        factory.segment(BASE_VA + 100 * PAGE, RAM + 100 * PAGE, 1, "GPU_SHARED_RW", data=False),
        (BASE_VA + 101 * PAGE, RAM + 101 * PAGE, 50 * PAGE, FIRMWARE_ONLY_FLAGS, True),
    ]
    path = factory.build_dump(tmp_path / "one.dump", rows)
    with open_dump(path) as dump:
        whole = minimap(dump, 1, BASE_VA, BASE_VA + 151 * PAGE)
        assert render_bar(whole) == "░"
        assert whole.counts == {"gpu": 100, "firmware": 50, "device": 0, "not-dumped": 1}
        # Without the undumped page, firmware outranks gpu.
        assert render_bar(minimap(dump, 1, BASE_VA, BASE_VA + 100 * PAGE)) == "█"
        # A column holding only the undumped page's last byte still shows it.
        edge = minimap(dump, 2, BASE_VA + 101 * PAGE - 1, BASE_VA + 103 * PAGE)
        assert render_bar(edge) == "░▓"
        # ... and so does one holding only its first byte.
        edge = minimap(dump, 2, BASE_VA + 99 * PAGE + 1, BASE_VA + 101 * PAGE + 1)
        assert render_bar(edge) == "░░"
        assert render_bar(minimap(dump, 2, BASE_VA + 99 * PAGE, BASE_VA + 101 * PAGE)) == "█░"


def test_partly_dumped_segment_is_two_runs(straddling_dump: Path) -> None:
    with open_dump(straddling_dump) as dump:
        m = minimap(dump, 34, BASE_VA, BASE_VA + 34 * PAGE)
        assert m.codes.tolist() == slow_minimap(dump, 34, BASE_VA, BASE_VA + 34 * PAGE)[0]
    # A (FW_PRIV_RW, firmware only): 3 pages with data then 2 without; B: device; C: firmware.
    assert render_bar(m) == "▓▓▓░░" + "·" * 11 + "▒▒▒" + "·" * 13 + "▓▓"
    assert m.counts == {"gpu": 0, "firmware": 5, "device": 3, "not-dumped": 2}


def test_minimap_of_a_range_without_segments_is_empty() -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        m = minimap(dump, 10, 0, 1 << 40)
        below = minimap(dump, 3, UPPER_HALF - 4 * PAGE, UPPER_HALF)
    for empty in (m, below):
        assert render_bar(empty) == "·" * empty.columns
        assert set(empty.counts.values()) == {0}


def test_used_extent_is_page_aligned_and_spans_every_segment() -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        start, end = used_extent(dump)
        assert start == int(dump.seg_va[0]) == UPPER_HALF
        assert end == int(dump.seg_va[-1]) + int(dump.seg_memsz[-1]) == 0xFFFF_FFAF_0000_C000
        assert start % PAGE == 0 and end % PAGE == 0
        zoomed = minimap(dump, 100, start, end)
    assert zoomed.codes[0] != 0 and zoomed.codes[-1] != 0


def test_used_extent_of_a_dump_without_segments(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "empty.dump", [])
    with open_dump(path) as dump:
        with pytest.raises(ValueError, match="no PT_LOAD"):
            used_extent(dump)
        m = minimap(dump, 5)
    assert render_bar(m) == "·····"


@pytest.mark.parametrize(
    ("columns", "va_start", "va_end"),
    [(0, None, None), (4, 10, 10), (4, 20, 10), (4, -1, 10), (4, 0, (1 << 64) + 1)],
)
def test_minimap_rejects_what_it_cannot_draw(columns: int, va_start, va_end) -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump, pytest.raises(ValueError):
        minimap(dump, columns, va_start, va_end)


def test_column_ranges_tile_the_range() -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        m = minimap(dump, 7)
    ranges = [m.column_range(i) for i in range(7)]
    assert ranges[0][0] == m.va_start and ranges[-1][1] == m.va_end == 1 << 64
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    with pytest.raises(IndexError):
        m.column_range(7)


def test_render_bar_glyphs() -> None:
    uat_kinds = kinds.kinds_of(entryformat.UAT)
    codes = np.array([kinds.CODE[name] for name in uat_kinds], dtype=np.uint8)
    m = Minimap(0, 5 * PAGE, 5, codes, {})
    assert render_bar(m) == "·█▓▒░"
    assert render_bar(m) == "".join(DEFAULT_GLYPHS[name] for name in uat_kinds)
    lpae_kinds = kinds.kinds_of(entryformat.LPAE_4K)
    assert lpae_kinds == ("empty", "unprivileged", "privileged", "device", "not-dumped")
    lpae_codes = np.array([kinds.CODE[name] for name in lpae_kinds], dtype=np.uint8)
    assert render_bar(Minimap(0, 5 * PAGE, 5, lpae_codes, {})) == "·█▓▒░"
    assert render_bar(m, {kinds.EMPTY: " ", kinds.NOT_DUMPED: "x"}) == " █▓▒x"
    with pytest.raises(ValueError, match="one character"):
        render_bar(m, {kinds.GPU: "##"})
