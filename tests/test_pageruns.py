"""Runs of alike pages (``dumpview.model.pageruns``), and what check and diff do with them.

- Expanded page by page, the runs are ``pagearrays``' pages, field for field, on the samples,
  generated dumps (UAT and LPAE with 1 GiB blocks, driver layout, scattered) and every hostile
  case that opens (partial p_filesz, unaligned PT_LOADs, PAs across the OAS, stray bits, shared
  and missing tables, ...), in one chunk and in chunks of a few PT_LOADs.
- Their number follows the file: a PT_LOAD claiming 20.9M pages is one run.
- check and diff do not depend on how pages are grouped into PT_LOADs: the same pages written
  one PT_LOAD per page give the same anomalies and diffs (random layouts: multi-page PT_LOADs
  across memory regions, hole records and managed ranges, aliases between partly overlapping
  PT_LOADs, PAs across the OAS, exact entries that differ from p_flags).
- The hostile PT_LOAD claiming 20.9M pages over the extension base: check's findings, cut
  where regions and hole records begin and end, as the scalar model states them.
- Where a PA falls in the memory map: the sweep used for many regions answers as one pass per
  region does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpview.model import open_dump
from dumpview.model.check.facts import memory_class_by_region, memory_class_by_sweep
from dumpview.model.diff import diff
from dumpview.model.errors import DumpError
from dumpview.model.extension import Region
from dumpview.model.pagearrays import all_pages
from dumpview.model.pageruns import all_runs, expand
from dumpview.sim.scenarios import generate_file
from dumpview.sim.writer import HoleInfo, RegionInfo, SpaceInfo
from formats import ext, uat
from tests import factory, hostile
from tests.factory import BASE_VA, PAGE

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FIELDS = ("va", "pa", "pa_raw", "flags", "dumped", "pte", "pte_exact")


def assert_runs_are_the_pages(path: Path, chunk_segments: int | None = None) -> int:
    """Runs of ``path`` expanded == its pages (every field; file offsets where dumped).
    Returns the number of runs."""
    with open_dump(path) as dump:
        runs = all_runs(dump) if chunk_segments is None else all_runs(dump, chunk_segments)
        pages, got = all_pages(dump), expand(dump, runs)
        for name in FIELDS:
            assert np.array_equal(getattr(pages, name), getattr(got, name)), (path.name, name)
        dumped = pages.dumped
        assert np.array_equal(pages.file_offset[dumped], got.file_offset[dumped]), path.name
        assert np.all(runs.pages >= 1)
        return len(runs)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("pageruns")
    specs = [
        ("faults", "uat", False, None),
        ("faults", "uat", True, None),
        ("user-contexts", "uat", False, None),
        ("smmu", "lpae-4k", False, {"huge_blocks": True}),
        ("faults", "lpae-16k", False, None),
        ("faults", "lpae-64k", False, None),
        ("large", "uat", False, {"mapped_mib": 32, "scatter": True, "dumped_percent": 70}),
        ("large", "uat", True, {"mapped_mib": 32, "dumped_percent": 60}),
    ]
    paths = []
    for i, (scenario, fmt, driver, knobs) in enumerate(specs):
        path = out / f"{i}-{scenario}-{fmt}{'-driver' if driver else ''}.dump"
        generate_file(
            path, scenario=scenario, seed=i, knobs=knobs, driver_layout=driver, entry_format=fmt
        )
        paths.append(path)
    return paths


@pytest.mark.parametrize("chunk_segments", [None, 3])
def test_runs_expand_to_the_pages(generated: list[Path], chunk_segments: int | None) -> None:
    for path in [*sorted(SAMPLES.glob("*.dump")), *generated]:
        runs = assert_runs_are_the_pages(path, chunk_segments)
        with open_dump(path) as dump:
            assert runs <= dump.page_totals[0]


def test_runs_join_page_entries_and_follow_the_file(generated: list[Path]) -> None:
    """Page entries that continue each other are one run again: the contiguous large dump
    (2,048 pages in a few PT_LOADs, each page an exact entry) has as many runs as PT_LOADs;
    a driver dump has one or two per PT_LOAD."""
    with open_dump(generated[-1]) as dump:  # the contiguous large, driver layout
        assert len(all_runs(dump)) <= 2 * dump.segment_count
    with open_dump(generated[0]) as dump:  # faults, with its tables
        assert len(all_runs(dump)) < dump.page_totals[0]


def test_runs_of_every_hostile_case_that_opens(tmp_path: Path) -> None:
    opened = 0
    for case in hostile.corpus(include_slow=False):
        path = tmp_path / f"{case.name}.dump"
        path.write_bytes(case.build())
        if hostile.claimed_pages(path) > 1 << 20:
            continue  # expanding 20.9M claimed pages is what runs avoid: the next test
        try:
            assert_runs_are_the_pages(path, 2)
        except DumpError:
            continue
        opened += 1
    assert opened >= 30  # the others are refused when opened (one-line errors)


def test_a_pt_load_claiming_millions_of_pages_is_one_run(tmp_path: Path) -> None:
    path = tmp_path / "claims.dump"
    path.write_bytes(hostile.load_claims_pages())
    with open_dump(path) as dump:
        runs = all_runs(dump)
        assert runs.pages.tolist() == [hostile.CLAIMED_PAGES]
        assert runs.va.tolist() == [hostile.CLAIMED_VA]
        assert not runs.dumped.any() and not runs.pte_exact.any()


# ---- check and diff on runs: the grouping of pages into PT_LOADs changes nothing ----------------

PROTS = ("FW_PRIV_RW", "FW_SHARED_RW", "FW_MMIO_RW", "GPU_SHARED_RW", "GPU_RO_FW_PRIV_RW")
RAM = 0x8_0000_0000


@st.composite
def layouts(draw: st.DrawFn) -> dict:
    """PT_LOADs of 1 to 40 pages over a small pool of PAs (so they alias and straddle region
    bounds), a few across the 42-bit OAS or with stray bits, optional tables (with entries
    that differ from p_flags), regions, hole records and a short managed range."""
    segments = []
    va = BASE_VA + draw(st.integers(0, 64)) * PAGE
    for _ in range(draw(st.integers(1, 6))):
        pages = draw(st.sampled_from([1, 2, 3, 5, 17, 40]))
        pa = RAM + draw(st.integers(0, 48)) * PAGE
        bend = draw(st.sampled_from(["", "", "", "", "oas", "stray"]))
        if bend == "oas":
            pa = (1 << uat.OAS_T600X) - draw(st.integers(1, 8)) * PAGE
        elif bend == "stray":
            pa |= 1 << 45
        segments.append((va, pa, pages, draw(st.sampled_from(PROTS)), draw(st.booleans())))
        va += pages * PAGE + draw(st.sampled_from([0, 0, PAGE, 7 * PAGE, 1 << 25]))
    regions = [
        RegionInfo(
            draw(st.sampled_from([ext.REGION_RAM, ext.REGION_RESERVED, ext.REGION_MMIO])),
            f"r{i}",
            RAM + draw(st.integers(0, 60)) * PAGE,
            draw(st.integers(1, 20)) * PAGE,
            draw(st.sampled_from([0, ext.REGION_NO_MAP])),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    holes = []
    for seg_va, _pa, pages, _prot, data in segments:
        if not data and draw(st.booleans()):
            k = draw(st.integers(0, pages - 1))
            size = draw(st.integers(1, pages - k)) * PAGE
            reason = draw(st.sampled_from([ext.REASON_BORROW_REFUSED, ext.REASON_DEVICE_MEMORY]))
            detail = draw(st.sampled_from(sorted(ext.DETAIL_NAMES)))
            region = draw(st.integers(-1, len(regions)))
            holes.append(HoleInfo(seg_va + k * PAGE, size, reason, detail, region))
    overrides = {}
    if draw(st.booleans()):
        for seg_va, pa, pages, _prot, _data in segments:
            for k in draw(st.sets(st.integers(0, pages - 1), max_size=2)):
                overrides[seg_va + k * PAGE] = factory.leaf_pte(
                    pa + k * PAGE, draw(st.sampled_from(PROTS))
                )
    return {
        "segments": segments,
        "tables": draw(st.booleans()),
        "regions": regions,
        "holes": holes,
        "overrides": overrides,
        "managed": (
            BASE_VA + draw(st.sampled_from([0, 8 * PAGE])),
            draw(st.sampled_from([1 << 36, 40 * PAGE])),
        ),
    }


def write_layout(path: Path, layout: dict, one_page_loads: bool) -> Path:
    """The layout as a dump; ``one_page_loads``: every page its own PT_LOAD (same pages)."""
    segments = layout["segments"]
    if one_page_loads:
        segments = [
            (va + k * PAGE, pa + k * PAGE, 1, prot, data)
            for va, pa, pages, prot, data in segments
            for k in range(pages)
        ]
    rows = [factory.segment(va, pa, pages, prot, data) for va, pa, pages, prot, data in segments]
    if not layout["tables"]:
        return factory.build_dump(path, rows)
    leaves = {
        va + k * PAGE: factory.leaf_pte(pa + k * PAGE, prot)
        for va, pa, pages, prot, _data in segments
        for k in range(pages)
    }
    leaves.update(layout["overrides"])
    ttb = 0x7_0000_0000
    infos, contents = factory.build_tables(leaves, ttb, ttb + PAGE)
    geometry = uat.uat_geometry()
    start = geometry.va_base & ~geometry.ias_mask
    extension = factory.uat_extension(
        spaces=[SpaceInfo(0, ttb, start, 1 << geometry.ias, *layout["managed"])],
        tables=infos,
        regions=layout["regions"],
        holes=sorted(layout["holes"], key=lambda h: h.va),
        scenario_name="pageruns",
        seed=1,
    )
    return factory.build_dump(path, rows, extension=extension, read_table=contents.__getitem__)


def check_dicts(path: Path) -> tuple[list[dict], list]:
    with open_dump(path) as dump:
        result = dump.check()
        return [a.to_dict() for a in result.anomalies], result.skipped


def diff_dict(path_a: Path, path_b: Path) -> dict:
    with open_dump(path_a) as a, open_dump(path_b) as b:
        return diff(a, b).to_dict()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=layouts(), other=layouts())
def test_check_and_diff_do_not_depend_on_how_pages_are_grouped(
    tmp_path: Path, layout: dict, other: dict
) -> None:
    whole = write_layout(tmp_path / "whole.dump", layout, False)
    split = write_layout(tmp_path / "split.dump", layout, True)
    versus = write_layout(tmp_path / "other.dump", other, False)
    assert check_dicts(whole) == check_dicts(split)
    assert assert_runs_are_the_pages(whole) <= assert_runs_are_the_pages(split)
    assert diff_dict(whole, split)["identical"]
    assert diff_dict(whole, versus) == diff_dict(split, versus)
    assert diff_dict(versus, whole) == diff_dict(versus, split)


# ---- the 20.9M-page PT_LOAD over the extension base ---------------------------------------------


def test_check_cuts_a_claimed_pt_load_where_regions_and_holes_begin_and_end(tmp_path: Path) -> None:
    path = tmp_path / "ext-claims.dump"
    path.write_bytes(hostile.ext_load_claims_pages())
    pages = hostile.CLAIMED_PAGES
    start, pa = hostile.EXT_CLAIMED_VA, 0x8_0000_8000
    ram_end = RAM + 0x1_0000_0000  # EXT_REGIONS' RAM
    with open_dump(path) as dump:
        anomalies = dump.check().anomalies
    found: dict[str, list] = {}
    for a in anomalies:
        if a.va is not None and start <= a.va < start + pages * PAGE:
            why = a.message.split("no data: ", 1)[1] if a.kind == "ram-not-dumped" else None
            found.setdefault(a.kind, []).append((a.va, a.pages, a.pa, why))
    in_ram = (ram_end - pa) // PAGE
    hole_va = start + 1024 * PAGE
    # Before the hole record and after it the memattr says why; the record (no-map) begins
    # and ends inside the PT_LOAD.
    assert found["ram-not-dumped"] == [
        (start, 1024, pa, "borrow-refused"),
        (hole_va, 1024, pa + 1024 * PAGE, "borrow-refused (no-map: carveout)"),
        (hole_va + 1024 * PAGE, in_ram - 2048, pa + 2048 * PAGE, "borrow-refused"),
    ]
    assert found["normal-on-non-ram"] == [(start + in_ram * PAGE, pages - in_ram, ram_end, None)]
    managed_end = BASE_VA + (1 << 36)
    outside = (start + pages * PAGE - managed_end) // PAGE
    assert found["outside-managed-range"] == [
        (managed_end, outside, pa + (managed_end - start), None)
    ]
    # The base's uncached pages at 0x8_0010_0000 and 0x8_1000_0000 are cached here too.
    aliases = sorted((a.pa, a.vas) for a in anomalies if a.kind == "memattr-alias")
    assert [pa_ for pa_, _vas in aliases] == [0x8_0010_0000, 0x8_1000_0000]
    for alias_pa, vas in aliases:
        assert vas[-1] == start + (alias_pa - pa) // PAGE * PAGE


# ---- where a PA falls in the memory map: one sweep for many regions -----------------------------

KINDS = ("ram", "reserved", "mmio")
U64_MAX = (1 << 64) - 1


@st.composite
def memory_maps(draw: st.DrawFn) -> tuple[tuple[Region, ...], np.ndarray]:
    """Overlapping regions (some reaching the top of the address space, some empty) and PAs
    on, around and between their bounds."""
    regions = []
    for i in range(draw(st.integers(0, 40))):
        base = draw(st.integers(0, 64)) * PAGE
        # Up to the last byte, and past 2**64 (a record's base + size may wrap).
        size = draw(st.sampled_from([0, PAGE, 3 * PAGE, 17 * PAGE, (1 << 64) - 1 - base, U64_MAX]))
        regions.append(Region(draw(st.sampled_from(KINDS)), f"r{i}", base, size, False, False))
    pas = draw(st.lists(st.integers(0, 70 * PAGE), max_size=64))
    pas += [e for r in regions if r.size_bytes for e in (r.base, min(r.end - 1, U64_MAX))]
    return tuple(regions), np.array([*pas, (1 << 64) - 1], dtype=np.uint64)


@given(memory_maps())
def test_the_memory_map_sweep_agrees_with_a_pass_per_region(drawn) -> None:
    regions, pas = drawn
    by_region = memory_class_by_region(regions, pas)
    by_sweep = memory_class_by_sweep(regions, pas)
    for got, expected in zip(by_sweep, by_region, strict=True):
        assert got.tolist() == expected.tolist()
