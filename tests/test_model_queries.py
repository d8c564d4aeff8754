"""Queries over the dump model: coalesced ranges, byte search, the crash log, bookmarks.

Ranges and search are checked against slow, obviously right oracles built from
``Dump.pages`` and ``Dump.read_va`` on samples, generated scatter dumps and hand-patched files
(partly dumped PT_LOADs, page data out of file order)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpview.model import open_dump
from dumpview.model.bookmarks import MAX_SIDECAR_BYTES, Bookmark, Bookmarks, sidecar_path
from dumpview.model.crash import check_ccdp, crashlog_sections, decode_esr, fault_status_name
from dumpview.model.ranges import human_size, ranges
from dumpview.model.search import SearchHit, next_hit_index, parse_pattern, search
from dumpview.sim.scenarios import RANGES, generate_file
from formats import clhe, uat
from tests import factory
from tests.factory import BASE_VA, PAGE, page_bytes

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_NAMES = ("minimal", "faults", "minimal-driver", "user-contexts")
LARGE_KNOBS = {"mapped_mib": 8, "scatter": True, "dumped_percent": 70}
PHDR_SIZE = 56
PHDR_OFFSET_FIELD = 8  # p_offset inside an Elf64_Phdr
PHDR_FILESZ_FIELD = 32  # p_filesz inside an Elf64_Phdr


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``large`` scatter dumps (scattered PAs, 30% refused pages), with and without tables."""
    out = tmp_path_factory.mktemp("generated")
    paths = {}
    for name, driver_layout in (("large", False), ("large-driver", True)):
        paths[name] = out / f"{name}.dump"
        generate_file(
            paths[name], scenario="large", seed=5, knobs=LARGE_KNOBS, driver_layout=driver_layout
        )
    return paths


def all_dump_paths(generated: dict[str, Path]) -> list[Path]:
    return [SAMPLES / f"{name}.dump" for name in SAMPLE_NAMES] + list(generated.values())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def patch_phdr(path: Path, load_index: int, field_offset: int, value: int) -> None:
    """Overwrite one u64 field of PT_LOAD ``load_index`` (phdr 0 is the PT_NOTE)."""
    raw = bytearray(path.read_bytes())
    at = 64 + (1 + load_index) * PHDR_SIZE + field_offset
    raw[at : at + 8] = struct.pack("<Q", value)
    path.write_bytes(raw)


def read_phdr(path: Path, load_index: int, field_offset: int) -> int:
    raw = path.read_bytes()
    at = 64 + (1 + load_index) * PHDR_SIZE + field_offset
    return struct.unpack_from("<Q", raw, at)[0]


# ---- ranges ------------------------------------------------------------------------------------


def slow_ranges(dump, va_start: int = 0, va_end: int = 1 << 64) -> list[tuple]:
    """Coalesce ``Dump.pages`` page by page in plain Python: (va_start, va_end, pa, flags,
    dumped) rows."""
    rows: list[list] = []
    for p in dump.pages(va_start, va_end):
        if rows:
            last = rows[-1]
            if (
                last[1] == p.va
                and last[2] + (last[1] - last[0]) == p.pa
                and last[3] == p.flags
                and last[4] == p.dumped
            ):
                last[1] += PAGE
                continue
        rows.append([p.va, p.va + PAGE, p.pa, p.flags, p.dumped])
    return [tuple(row) for row in rows]


def table_rows(table) -> list[tuple]:
    return list(
        zip(
            table.va_start.tolist(),
            table.va_end.tolist(),
            table.pa_start.tolist(),
            table.flags.tolist(),
            table.dumped.tolist(),
            strict=True,
        )
    )


def test_ranges_match_page_by_page_coalescing(generated: dict[str, Path]) -> None:
    for path in all_dump_paths(generated):
        with open_dump(path) as dump:
            table = ranges(dump)
            expected = slow_ranges(dump)
            assert table_rows(table) == expected, path.name
            assert len(table) == len(expected)
            # The scatter dumps must actually exercise mixed dumped/undumped neighbours.
            if path.name.startswith("large"):
                assert len(expected) > 100
                assert 0 < sum(not row[4] for row in expected) < len(expected)


def test_ranges_clip_to_a_window(generated: dict[str, Path]) -> None:
    with open_dump(generated["large"]) as dump:
        full = ranges(dump)
        middle = len(full) // 2
        # A window that starts and ends inside multi-page ranges somewhere in the middle.
        va_start = int(full.va_start[middle - 3]) + PAGE
        va_end = int(full.va_end[middle + 3]) - PAGE
        clipped = ranges(dump, va_start, va_end)
        assert table_rows(clipped) == slow_ranges(dump, va_start, va_end)
        assert int(clipped.va_start[0]) >= va_start
        assert int(clipped.va_end[-1]) <= va_end
        assert len(ranges(dump, va_end, va_start)) == 0
        assert len(ranges(dump, 0, int(full.va_start[0]))) == 0


def test_range_rows_on_minimal(tmp_path: Path) -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        table = ranges(dump)
        rows = [table.row(i) for i in range(len(table))]
    by_kind: dict[str, list] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
        assert row.pte == uat.unpack_p_flags(row.flags, row.pa_start)
        assert row.memattr == (row.pte >> 2) & 7
        assert row.memattr_name == uat.MEMATTR_NAMES[row.memattr]
        assert row.views[0] == uat.firmware_view(row.pte)
        assert row.views[1] == uat.gpu_view(row.pte)
        assert row.size_bytes == row.va_end - row.va_start > 0
        assert (row.reason is None) == row.dumped
    assert set(by_kind) == {"firmware", "gpu", "device", "not-dumped"}
    (carveout,) = by_kind["not-dumped"]
    assert (carveout.reason, carveout.reason_detail) == ("borrow-refused", "no-map: fw-carveout")
    assert carveout.size_bytes == 2 * PAGE
    assert {r.reason for r in by_kind["device"]} == {"device-memory"}
    assert all(r.views[1] == "--" for r in by_kind["firmware"])
    assert any(r.views[1] == "RW" for r in by_kind["gpu"])


def test_index_of_va() -> None:
    with open_dump(SAMPLES / "faults.dump") as dump:
        table = ranges(dump)
        for i in range(len(table)):
            start, end = int(table.va_start[i]), int(table.va_end[i])
            assert table.index_of_va(start) == i
            assert table.index_of_va(end - 1) == i
            if i + 1 == len(table) or int(table.va_start[i + 1]) != end:
                assert table.index_of_va(end) is None
        assert table.index_of_va(int(table.va_start[0]) - 1) is None
        assert table.index_of_va(-1) is None
        assert table.index_of_va(1 << 64) is None


def test_ranges_merge_segments_only_when_everything_continues(tmp_path: Path) -> None:
    pa = 0x8_0000_0000
    rows = [
        factory.segment(BASE_VA, pa, 1),
        factory.segment(BASE_VA + PAGE, pa + PAGE, 2),  # continues: merges
        factory.segment(BASE_VA + 3 * PAGE, pa + 3 * PAGE, 1, data=False),  # undumped
        factory.segment(BASE_VA + 4 * PAGE, pa + 4 * PAGE, 1, "FW_SHARED_RW"),  # flags differ
        factory.segment(BASE_VA + 5 * PAGE, pa + 0x10_0000, 1, "FW_SHARED_RW"),  # PA jumps
        factory.segment(BASE_VA + 7 * PAGE, pa + 0x10_0000 + PAGE, 1, "FW_SHARED_RW"),  # VA gap
    ]
    with open_dump(factory.build_dump(tmp_path / "merge.dump", rows)) as dump:
        assert dump.segment_count == 6
        table = ranges(dump)
        assert table_rows(table) == slow_ranges(dump)
        assert [(int(s), int(e)) for s, e in zip(table.va_start, table.va_end, strict=True)] == [
            (BASE_VA, BASE_VA + 3 * PAGE),
            (BASE_VA + 3 * PAGE, BASE_VA + 4 * PAGE),
            (BASE_VA + 4 * PAGE, BASE_VA + 5 * PAGE),
            (BASE_VA + 5 * PAGE, BASE_VA + 6 * PAGE),
            (BASE_VA + 7 * PAGE, BASE_VA + 8 * PAGE),
        ]
        assert table.dumped.tolist() == [True, False, True, True, True]


@pytest.fixture
def partly_dumped(tmp_path: Path) -> Path:
    """The default factory dump with its first PT_LOAD (2 pages of data) cut to p_filesz = one
    page: the second page's bytes are still in the file, but not dumped."""
    path = factory.build_dump(tmp_path / "partial.dump")
    patch_phdr(path, 0, PHDR_FILESZ_FIELD, PAGE)
    return path


def test_a_partly_dumped_segment_splits(partly_dumped: Path) -> None:
    with open_dump(partly_dumped) as dump:
        table = ranges(dump)
        assert table_rows(table) == slow_ranges(dump)
        first, second = table.row(0), table.row(1)
    assert (first.va_start, first.va_end, first.dumped) == (BASE_VA, BASE_VA + PAGE, True)
    assert (second.va_start, second.va_end, second.dumped) == (
        BASE_VA + PAGE,
        BASE_VA + 2 * PAGE,
        False,
    )
    assert second.pa_start == 0x8_0000_0000 + PAGE
    assert second.flags == first.flags
    assert second.reason == "borrow-refused"  # cached memory without data: borrow refused
    assert second.kind == "not-dumped"


def test_ranges_of_many_segments_stay_vectorised(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "many.dump", factory.many_segments(70_000))
    with open_dump(path) as dump:
        table = ranges(dump)
        assert len(table) == 70_000  # two pages apart: nothing merges
        assert np.array_equal(table.va_start, dump.seg_va)
        assert np.array_equal(table.dumped, dump.seg_filesz > 0)
        assert table.index_of_va(int(dump.seg_va[12_345]) + 5) == 12_345
        assert table.index_of_va(int(dump.seg_va[12_345]) + PAGE) is None


def test_a_dump_without_segments_has_no_ranges_and_no_hits(tmp_path: Path) -> None:
    with open_dump(factory.build_dump(tmp_path / "empty.dump", [])) as dump:
        assert len(ranges(dump)) == 0
        result = search(dump, b"x")
        assert (result.hits, result.pages_searched, result.holes_skipped) == ([], 0, 0)


@pytest.mark.parametrize(
    ("size_bytes", "text"),
    [
        (0, "0B"),
        (512, "512B"),
        (1024, "1K"),
        (1536, "1.5K"),
        (16 << 10, "16K"),
        (2 << 20, "2M"),
        (3 << 29, "1.5G"),
        (2064 << 10, "2064K"),
        (5 << 40, "5T"),
        (16 * 1024 * 100_001, "1600016K"),
    ],
)
def test_human_size(size_bytes: int, text: str) -> None:
    assert human_size(size_bytes) == text


# ---- search: patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "pattern"),
    [
        ("de ad be ef", "hex", b"\xde\xad\xbe\xef"),
        ("DEADBEEF", "hex", b"\xde\xad\xbe\xef"),
        ("0xdeadbeef", "hex", b"\xde\xad\xbe\xef"),
        ("0xde 0xad", "hex", b"\xde\xad"),
        ("héllo", "string", "héllo".encode()),
        ("0xdeadbeef", "u32", b"\xef\xbe\xad\xde"),
        ("4294967295", "u32", b"\xff\xff\xff\xff"),
        ("1", "u64", b"\x01" + bytes(7)),
        ("0xffffff8000000000", "u64", struct.pack("<Q", 0xFFFF_FF80_0000_0000)),
    ],
)
def test_parse_pattern(text: str, kind: str, pattern: bytes) -> None:
    assert parse_pattern(text, kind) == pattern


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("abc", "hex", "3 digits"),
        ("de ag", "hex", "'g' is not a hex digit"),
        ("", "hex", "empty"),
        ("0x", "hex", "empty"),
        ("", "string", "empty"),
        ("4294967296", "u32", "out of range"),
        ("-1", "u64", "out of range"),
        ("0x1" + "0" * 16, "u64", "out of range"),
        ("12z", "u32", "not a decimal or 0x number"),
        ("1", "u16", "unknown pattern kind"),
    ],
)
def test_parse_pattern_errors_are_one_line(text: str, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_pattern(text, kind)
    assert "\n" not in str(info.value)


# ---- search: against an oracle ---------------------------------------------------------------


def slow_search(dump, pattern: bytes, va_start: int = 0, va_end: int = 1 << 64) -> list[int]:
    """Join the data of VA-contiguous dumped pages (through read_va) and bytes.find in it."""
    runs: list[tuple[int, bytearray]] = []
    for p in dump.pages():
        if not p.dumped:
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) == p.va:
            runs[-1][1].extend(dump.read_va(p.va, PAGE))
        else:
            runs.append((p.va, bytearray(dump.read_va(p.va, PAGE))))
    hits = []
    for va, data in runs:
        pos = data.find(pattern)
        while pos >= 0:
            if va_start <= va + pos and va + pos + len(pattern) <= va_end:
                hits.append(va + pos)
            pos = data.find(pattern, pos + 1)
    return hits


def hit_vas(result) -> list[int]:
    return [hit.va for hit in result.hits]


def test_search_finds_planted_bytes_with_their_pa() -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        table = ranges(dump)
        checked = 0
        for i in range(len(table)):
            row = table.row(i)
            if not row.dumped:
                continue
            va = row.va_start + row.size_bytes // 2 + 100
            pattern = bytes(dump.read_va(va, 24))
            if not any(pattern):
                continue  # page-table pages are mostly zeros: too many hits to be a plant
            result = search(dump, pattern, limit=None)
            assert va in hit_vas(result)
            assert result.hits == sorted(set(result.hits), key=lambda h: h.va)
            assert hit_vas(result) == slow_search(dump, pattern)
            for hit in result.hits[:8]:
                assert bytes(dump.read_va(hit.va, len(pattern))) == pattern
                assert hit.pa == dump.translate(hit.va).pa
            checked += 1
        assert checked >= 8


def test_search_counts_pages_holes_and_bytes(generated: dict[str, Path]) -> None:
    for path in all_dump_paths(generated):
        with open_dump(path) as dump:
            total, dumped = dump.page_totals
            result = search(dump, b"\x00never-in-a-dump\x00")
            assert result.hits == []
            assert not result.truncated
            assert result.pages_searched == dumped
            assert result.holes_skipped == total - dumped
            assert result.bytes_searched == dumped * PAGE


def test_search_across_va_contiguous_segments(generated: dict[str, Path]) -> None:
    """Scattered PAs make one PT_LOAD per page: find a boundary between two dumped segments
    whose second page carries the generator's unique stamp, and search bytes spanning it."""
    for name in ("large", "large-driver"):
        with open_dump(generated[name]) as dump:
            va, memsz, filesz = dump.seg_va, dump.seg_memsz, dump.seg_filesz
            joins = np.flatnonzero(
                (va[:-1] + memsz[:-1] == va[1:]) & (filesz[:-1] == memsz[:-1]) & (filesz[1:] > 0)
            )
            boundary = None
            for i in joins.tolist():
                if bytes(dump.read_va(int(va[i + 1]), 10)) == b"large page":
                    boundary = i
                    break
            assert boundary is not None
            joint = int(va[boundary + 1])
            pattern = bytes(dump.read_va(joint - 6, 6 + 30))
            result = search(dump, pattern)
            expected_pa = int(dump.seg_pa[boundary]) + int(memsz[boundary]) - 6
            assert result.hits == [SearchHit(joint - 6, expected_pa)]
            assert hit_vas(result) == slow_search(dump, pattern)


def test_search_never_reads_past_p_filesz(partly_dumped: Path) -> None:
    second_page = page_bytes(0x8_0000_0000 + PAGE)[:16]  # its PA stamp: unique to that page
    raw = partly_dumped.read_bytes()
    assert second_page in raw  # the bytes are in the file ...
    with open_dump(partly_dumped) as dump:
        result = search(dump, second_page)
        assert result.hits == []  # ... but not dumped: never searched
        assert result.pages_searched == 2
        assert result.holes_skipped == 3
        assert result.bytes_searched == 2 * PAGE
        first_page = page_bytes(0x8_0000_0000)[:16]  # once per 64-byte row of the page
        assert hit_vas(search(dump, first_page)) == list(range(BASE_VA, BASE_VA + PAGE, 64))


def test_undumped_pages_are_not_zeros() -> None:
    with open_dump(SAMPLES / "minimal.dump") as dump:
        table = ranges(dump)
        hole = next(table.row(i) for i in range(len(table)) if not table.dumped[i])
        result = search(dump, bytes(16), hole.va_start, hole.va_end)
        assert result.hits == []
        assert result.bytes_searched == 0
        assert result.pages_searched == 0
        assert result.holes_skipped == hole.size_bytes // PAGE


def test_search_respects_the_va_window() -> None:
    with open_dump(SAMPLES / "faults.dump") as dump:
        table = ranges(dump)
        row = next(table.row(i) for i in range(len(table)) if table.dumped[i])
        va = row.va_start + 40
        pattern = bytes(dump.read_va(va, 16))
        assert va in hit_vas(search(dump, pattern, va, va + 16))
        assert va not in hit_vas(search(dump, pattern, va, va + 15))
        assert va not in hit_vas(search(dump, pattern, va + 1, va + 16))
        window = search(dump, pattern, row.va_start, row.va_end, limit=None)
        assert hit_vas(window) == slow_search(dump, pattern, row.va_start, row.va_end)
        assert window.pages_searched == row.size_bytes // PAGE
        assert window.holes_skipped == 0


def test_search_limit_and_truncation(tmp_path: Path) -> None:
    with open_dump(factory.build_dump(tmp_path / "d.dump")) as dump:
        everything = search(dump, b"dumpview-page", limit=None)
        count = len(everything.hits)
        assert count == 3 * PAGE // 64  # once per 64-byte row, three dumped pages
        limited = search(dump, b"dumpview-page", limit=5)
        assert limited.hits == everything.hits[:5]
        assert limited.truncated
        exact = search(dump, b"dumpview-page", limit=count)
        assert exact.hits == everything.hits
        assert not exact.truncated
        assert not everything.truncated
        with pytest.raises(ValueError, match="empty"):
            search(dump, b"")


# VA-contiguous runs of dumped data in ``shuffled_file``: (first VA, size in bytes).
SHUFFLED_CHAINS = ((BASE_VA, 4 * PAGE), (BASE_VA + 5 * PAGE, PAGE), (BASE_VA + 7 * PAGE, PAGE))


@pytest.fixture(scope="module")
def shuffled_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four VA-contiguous one-page PT_LOADs (scattered PAs) whose data sit in the file in
    another order than their VAs (every joint needs the window, patterns can span several),
    then a VA gap, a dumped page, a hole and a dumped page whose data follow each other in the
    file (one stretch for ``mmap.find`` across a VA gap)."""
    pas = [0x8_0000_0000, 0x8_0040_0000, 0x8_0010_0000, 0x8_0070_0000]
    rows = [factory.segment(BASE_VA + i * PAGE, pa, 1) for i, pa in enumerate(pas)]
    rows += [
        factory.segment(BASE_VA + 5 * PAGE, 0x8_0090_0000, 1),
        factory.segment(BASE_VA + 6 * PAGE, 0x8_00A0_0000, 1, data=False),
        factory.segment(BASE_VA + 7 * PAGE, 0x8_00B0_0000, 1),
    ]
    path = factory.build_dump(tmp_path_factory.mktemp("shuffled") / "s.dump", rows)
    offsets = [read_phdr(path, i, PHDR_OFFSET_FIELD) for i in range(4)]
    for i, offset in enumerate([offsets[2], offsets[0], offsets[3], offsets[1]]):
        patch_phdr(path, i, PHDR_OFFSET_FIELD, offset)
    return path


def test_search_across_joints_the_file_does_not_continue(shuffled_file: Path) -> None:
    with open_dump(shuffled_file) as dump:
        # Through the VA, page 0 shows page_bytes of the third PA: the file order is shuffled.
        assert bytes(dump.read_va(BASE_VA, 8)) == page_bytes(0x8_0010_0000)[:8]
        # The last row of page 0 (its PA stamp) and the first row of page 1 (another stamp).
        pattern = bytes(dump.read_va(BASE_VA + PAGE - 64, 64 + 16))
        assert pattern not in shuffled_file.read_bytes()
        result = search(dump, pattern)
        assert result.hits == [SearchHit(BASE_VA + PAGE - 64, 0x8_0000_0000 + PAGE - 64)]
        # A pattern longer than a page crosses two joints and is reported once.
        long_pattern = bytes(dump.read_va(BASE_VA + PAGE - 10, PAGE + 20))
        assert hit_vas(search(dump, long_pattern)) == [BASE_VA + PAGE - 10]


def test_search_never_matches_across_a_va_gap(shuffled_file: Path) -> None:
    with open_dump(shuffled_file) as dump:
        # The pages at +5P and +7P sit back to back in the file, a hole between their VAs.
        across = bytes(dump.read_va(BASE_VA + 6 * PAGE - 64, 64)) + bytes(
            dump.read_va(BASE_VA + 7 * PAGE, 16)
        )
        assert across in shuffled_file.read_bytes()
        result = search(dump, across)
        assert result.hits == []
        assert (result.pages_searched, result.holes_skipped) == (6, 1)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chain=st.sampled_from(SHUFFLED_CHAINS),
    start=st.integers(0, 4).flatmap(lambda k: st.integers(k * PAGE - 200, k * PAGE + 200)),
    size=st.integers(1, 400),
    window=st.one_of(
        st.just((0, 8 * PAGE)), st.tuples(st.integers(0, 8 * PAGE), st.integers(0, 8 * PAGE))
    ),
)
def test_search_agrees_with_the_oracle(
    shuffled_file: Path,
    chain: tuple[int, int],
    start: int,
    size: int,
    window: tuple[int, int],
) -> None:
    chain_va, chain_size = chain
    start %= chain_size  # starts cluster around page joints
    size = min(size, chain_size - start)
    va_start, va_end = BASE_VA + min(window), BASE_VA + max(window)
    with open_dump(shuffled_file) as dump:
        pattern = bytes(dump.read_va(chain_va + start, size))
        result = search(dump, pattern, va_start, va_end, limit=None)
        assert hit_vas(result) == slow_search(dump, pattern, va_start, va_end)
        for hit in result.hits:
            seg = dump.segment_at(hit.va)
            assert hit.pa == int(dump.seg_pa[seg]) + hit.va - int(dump.seg_va[seg])


def test_next_hit_index_wraps() -> None:
    hits = [SearchHit(va, va) for va in (0x100, 0x200, 0x300)]
    assert next_hit_index(hits, 0x50) == 0
    assert next_hit_index(hits, 0x100) == 1
    assert next_hit_index(hits, 0x250) == 2
    assert next_hit_index(hits, 0x300) == 0  # wraps
    assert next_hit_index(hits, 0x300, forward=False) == 1
    assert next_hit_index(hits, 0x150, forward=False) == 0
    assert next_hit_index(hits, 0x100, forward=False) == 2  # wraps
    assert next_hit_index([], 0x100) is None
    assert next_hit_index([], 0x100, forward=False) is None


# ---- crash log -------------------------------------------------------------------------------


def test_decode_esr_data_abort_translation_fault_level_3() -> None:
    info = decode_esr(0x9600_0007)
    assert (info.ec, info.il, info.iss) == (0x25, 1, 0x07)
    assert info.ec_name == "data abort, same EL"
    assert info.details[0] == "DFSC 0x07: translation fault, level 3"
    assert "WnR 0: read" in info.details
    assert "ISV 0: no instruction syndrome" in info.details
    assert "FnV 0: FAR is valid" in info.details


def test_decode_esr_data_abort_with_syndrome() -> None:
    # EC 0x24, IL, ISV, SAS 2 (4 bytes), SRT 3, SF, FnV, S1PTW, WnR, DFSC 0x0A
    esr = (0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (3 << 16) | (1 << 15)
    esr |= (1 << 10) | (1 << 7) | (1 << 6) | 0x0A
    info = decode_esr(esr)
    assert info.ec_name == "data abort from a lower EL"
    assert info.details == [
        "DFSC 0x0a: access flag fault, level 2",
        "WnR 1: write",
        "ISV 1: 4-byte access, register x3",
        "FnV 1: FAR is not valid",
        "S1PTW 1: fault on the stage 2 walk of a stage 1 translation table",
    ]


@pytest.mark.parametrize(
    ("esr", "ec_name", "detail"),
    [
        (0x8600_000F, "instruction abort, same EL", "IFSC 0x0f: permission fault, level 3"),
        (
            0x8200_0000,
            "instruction abort from a lower EL",
            "IFSC 0x00: address size fault, level 0",
        ),
        (0x9600_0021, "data abort, same EL", "DFSC 0x21: alignment fault"),
        (
            0x9600_0010,
            "data abort, same EL",
            "DFSC 0x10: synchronous external abort, not on translation table walk",
        ),
        (
            0x9600_0015,
            "data abort, same EL",
            "DFSC 0x15: synchronous external abort on translation table walk, level 1",
        ),
        (0x5600_1234, "SVC, AArch64", "immediate 0x1234"),
        (0xF200_0800, "BRK, AArch64", "BRK comment 0x0800"),
        (
            (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 10) | (7 << 5) | 1,
            "trapped MSR/MRS/system instruction, AArch64",
            "read (MRS) of S3_0_C5_C0_0 into x7",
        ),
        (0xBE00_0011, "SError interrupt", "DFSC 0x11: asynchronous SError interrupt"),
    ],
)
def test_decode_esr_classes(esr: int, ec_name: str, detail: str) -> None:
    info = decode_esr(esr)
    assert info.ec_name == ec_name
    assert detail in info.details


def test_decode_esr_names_what_it_does_not_know() -> None:
    assert decode_esr(0x0000_0000).ec_name == "unknown reason"
    assert decode_esr(0x3F << 26).ec_name == "implementation defined exception (IMPDEF)"
    assert decode_esr(0x3E << 26).ec_name == "EC 0x3e"
    assert decode_esr(0x8A << 24).details == []  # EC 0x22: PC alignment, no ISS decode
    assert fault_status_name(0x3F) == "reserved fault status 0x3f"
    assert fault_status_name(0x09) == "access flag fault, level 1"
    info = decode_esr((1 << 64) - 1)
    assert info.ec == 0x3F
    assert any("63:37" in line for line in info.details)


@given(st.integers(0, (1 << 64) - 1))
def test_decode_esr_is_total(esr: int) -> None:
    info = decode_esr(esr)
    assert (info.ec << 26) | (info.il << 25) | info.iss == esr & 0xFFFF_FFFF
    assert info.ec_name
    assert all(isinstance(line, str) and line for line in info.details)


def test_check_ccdp_finds_the_planted_disagreement() -> None:
    with open_dump(SAMPLES / "faults.dump") as dump:
        checks = check_ccdp(dump, dump.crashlog)
    assert len(checks) == 4
    wrong = [c for c in checks if not c.agree]
    assert len(wrong) == 1
    (bad,) = wrong
    assert bad.va == RANGES["PRIV"][0]
    assert bad.pa_log == bad.pa_dump + 0x10_0000
    assert bad.note == f"dump maps it to PA {bad.pa_dump:#x}"
    assert all(c.pa_dump == c.pa_log for c in checks if c.agree)


def test_check_ccdp_agrees_on_clean_samples() -> None:
    for name in ("minimal", "minimal-driver", "user-contexts"):
        with open_dump(SAMPLES / f"{name}.dump") as dump:
            checks = check_ccdp(dump, dump.crashlog)
        assert checks
        assert all(c.agree for c in checks), name


def test_check_ccdp_on_an_unmapped_va() -> None:
    log = clhe.parse_crashlog(
        clhe.build_crashlog(
            [("Ccdp", {"pairs": [{"va": BASE_VA + 0x40_0000, "pa": 0x1000, "unknown": 0}]})]
        )
    )
    with open_dump(SAMPLES / "minimal.dump") as dump:
        (check,) = check_ccdp(dump, log)
    assert check.pa_dump is None
    assert not check.agree
    assert check.note.startswith("not mapped in the dump: walk stopped at L")


def sections_by_title(path: Path) -> dict[str, list[str]]:
    with open_dump(path) as dump:
        return {s.title: s.lines for s in crashlog_sections(dump)}


def test_crashlog_sections_of_faults() -> None:
    sections = sections_by_title(SAMPLES / "faults.dump")
    assert list(sections) == [
        "Panic",
        "Crash log",
        "Registers",
        "Exception",
        "Fault address",
        "Call stack",
        "Mailbox",
        "Tasks",
        "Ccdp pairs",
    ]
    assert sections["Panic"][0].startswith("GPU firmware panic: page fault at 0xffffffaa80000020")
    assert "firmware RTKit_iOS-2404.120.14.release" in sections["Crash log"]
    assert any("pc 0xffffff8000001a40" in line for line in sections["Registers"])
    assert sections["Exception"][0] == "ESR 0x96000007: EC 0x25 data abort, same EL"
    assert "DFSC 0x07: translation fault, level 3" in sections["Exception"]
    assert sections["Fault address"][0].startswith(
        "FAR 0xffffffaa80000020 is not mapped: walk stopped at L2: unexpected table entry"
    )
    assert sections["Call stack"][1] == "#0  0xffffff8000001a40"
    assert len(sections["Mailbox"]) == 5
    assert [line.split()[1] for line in sections["Tasks"]] == ["rtk_ep", "gpu_main", "power"]
    ccdp = sections["Ccdp pairs"]
    assert len(ccdp) == 4
    assert sum("DISAGREE" in line for line in ccdp) == 1
    assert sum(line.endswith(": agree") for line in ccdp) == 3


def test_crashlog_fault_address_through_a_driver_dump() -> None:
    lines = sections_by_title(SAMPLES / "minimal-driver.dump")["Fault address"]
    assert lines[0] == "FAR 0xffffffa000000040 -> PA 0x10001008040"
    assert lines[1] == "cached, firmware RW, GPU -- (entry rebuilt from the PT_LOAD)"
    # The instruction abort's permission fault at L3: the (rebuilt) walk maps the FAR at L3.
    assert lines[2].startswith(
        "ESR says permission fault, level 3; the dump's tables agree: the dump's walk "
        "(rebuilt walk) maps it to PA 0x10001008040 (leaf at L3), firmware RW, GPU --; "
        "the access was an instruction fetch"
    )
    assert len(lines) == 3 + 3  # one line per (rebuilt) level
    assert lines[-1].endswith("AF:not recorded nG:not recorded")


def dump_with_notes(directory: Path, notes: list) -> Path:
    return factory.build_dump(directory / "notes.dump", notes=[factory.agx_note(), *notes])


def test_crashlog_sections_without_a_crash_log(tmp_path: Path) -> None:
    with open_dump(dump_with_notes(tmp_path, [])) as dump:
        sections = crashlog_sections(dump)
    assert [(s.title, s.lines) for s in sections] == [
        ("Crash log", ["this dump has no crash log (no RTKIT note)"])
    ]


def test_crashlog_sections_of_raw_and_truncated_logs(tmp_path: Path) -> None:
    raw = b"panic: something odd\x00" + bytes(range(100))
    with open_dump(dump_with_notes(tmp_path, [("RTKIT", 1, raw)])) as dump:
        (section,) = crashlog_sections(dump)
    assert section.title == "Crash log (raw)"
    assert section.lines[0] == f"{len(raw)} bytes, not a CLHE crash log; first bytes:"
    assert len(section.lines) == 1 + 4  # 64 bytes, 16 per row
    assert "|panic: something|" in section.lines[1]

    (tmp_path / "t").mkdir()
    with open_dump(dump_with_notes(tmp_path / "t", [("RTKIT", 1, b"CLHE\x01\x00")])) as dump:
        sections = {s.title: s.lines for s in crashlog_sections(dump)}
    assert sections["Crash log warnings"] == ["crash log header is truncated: 6 bytes, expected 32"]


def test_crashlog_sections_of_several_logs_and_undecodable_entries(tmp_path: Path) -> None:
    broken = clhe.build_crashlog(
        [("Cstr", {"id": 2, "message": "second"}), ("Crg8", b"\x01" * 40), ("Xyzw", b"abc")]
    )
    notes = [factory.crashlog_note(), ("RTKIT", 1, broken)]
    with open_dump(dump_with_notes(tmp_path, notes)) as dump:
        sections = {s.title: s.lines for s in crashlog_sections(dump)}
    assert sections["log 1: Panic"] == ["test panic (id 1)"]
    assert sections["log 2: Panic"] == ["second (id 2)"]
    for title in ("Registers", "Exception", "Fault address"):
        assert sections[f"log 2: {title}"] == [
            "Crg8 entry at offset 0x3b did not decode (see warnings)"
        ]
    assert sections["log 2: Other entries"] == ["'Xyzw' at offset 0x73, 3 bytes"]
    assert len(sections["log 2: Crash log warnings"]) == 1
    assert "'Crg8'" in sections["log 2: Crash log warnings"][0]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([*clhe.PAYLOADS, "Junk"]), st.binary(max_size=300)),
        max_size=6,
    )
)
def test_crashlog_sections_never_raise_on_hostile_payloads(entries: list) -> None:
    log = clhe.build_crashlog(entries)
    with (
        tempfile.TemporaryDirectory() as directory,
        open_dump(dump_with_notes(Path(directory), [("RTKIT", 1, log)])) as dump,
    ):
        sections = crashlog_sections(dump)
    assert sections[0].title == "Panic"
    assert all(isinstance(line, str) for s in sections for line in s.lines)


# ---- bookmarks -------------------------------------------------------------------------------


@pytest.fixture
def dump_copy(tmp_path: Path) -> Path:
    path = tmp_path / "minimal.dump"
    path.write_bytes((SAMPLES / "minimal.dump").read_bytes())
    return path


def test_sidecar_path() -> None:
    assert sidecar_path("/a/b/crash.dump") == Path("/a/b/crash.dump.bookmarks.json")
    assert sidecar_path(Path("x.core")) == Path("x.core.bookmarks.json")


def test_bookmarks_round_trip(dump_copy: Path) -> None:
    before = sha256(dump_copy)
    marks = Bookmarks.load(dump_copy)
    assert (marks.items, marks.warning) == ([], None)
    marks.add(0xFFFF_FFA0_0000_4000, "second")
    marks.add(0xFFFF_FF80_0000_0000, "fw code")
    marks.add(0xFFFF_FFA0_0000_4000, "initdata")  # same VA: replaces
    marks.add(0xFFFF_FFAF_0000_0000, "mmio")
    assert marks.remove(0xFFFF_FFAF_0000_0000)
    assert not marks.remove(0x1234)
    marks.save()
    assert json.loads(sidecar_path(dump_copy).read_text()) == {
        "schema": "dumpview-bookmarks/1",
        "dump": "minimal.dump",
        "bookmarks": [
            {"va": "0xffffff8000000000", "label": "fw code"},
            {"va": "0xffffffa000004000", "label": "initdata"},
        ],
    }
    again = Bookmarks.load(dump_copy)
    assert again.items == [
        Bookmark(0xFFFF_FF80_0000_0000, "fw code"),
        Bookmark(0xFFFF_FFA0_0000_4000, "initdata"),
    ]
    assert again.warning is None
    again.add(0, "zero")
    again.save()  # replaces the sidecar
    assert len(Bookmarks.load(dump_copy).items) == 3
    assert sorted(os.listdir(dump_copy.parent)) == [
        "minimal.dump",
        "minimal.dump.bookmarks.json",
    ]
    assert sha256(dump_copy) == before


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not usable"),
        (b"\xff\xfe\x00garbage", "unreadable"),
        (b"[]", "top level is not a JSON object"),
        (b'{"schema": "other/2", "bookmarks": []}', "schema is 'other/2'"),
        (b'{"schema": "dumpview-bookmarks/1", "bookmarks": {}}', '"bookmarks" is not a list'),
        (
            b'{"schema": "dumpview-bookmarks/1", "bookmarks": [{"va": "zz", "label": "a"}]}',
            "bookmark #0: VA 'zz' is not hex",
        ),
        (
            b'{"schema": "dumpview-bookmarks/1", "bookmarks": [{"va": 16, "label": "a"}]}',
            'bookmark #0 has no "va" string',
        ),
        (
            b'{"schema": "dumpview-bookmarks/1", "bookmarks": [{"va": "0x10", "label": 5}]}',
            "is not text",
        ),
        (
            b'{"schema": "dumpview-bookmarks/1", "bookmarks": [{"va": "-0x10", "label": "a"}]}',
            "is not an address",
        ),
    ],
)
def test_corrupt_sidecar_loads_empty_with_a_warning(
    dump_copy: Path, content: bytes, problem: str
) -> None:
    sidecar_path(dump_copy).write_bytes(content)
    marks = Bookmarks.load(dump_copy)
    assert marks.items == []
    assert marks.warning is not None
    assert str(sidecar_path(dump_copy)) in marks.warning
    assert problem in marks.warning


def test_unreadable_sidecar_loads_empty_with_a_warning(dump_copy: Path) -> None:
    sidecar_path(dump_copy).mkdir()
    marks = Bookmarks.load(dump_copy)
    assert marks.items == []
    assert "unreadable" in marks.warning


def test_add_rejects_bad_addresses(dump_copy: Path) -> None:
    marks = Bookmarks.load(dump_copy)
    for va in (-1, 1 << 64, "0x10", True):
        with pytest.raises(ValueError, match="is not an address"):
            marks.add(va, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_save_refuses_to_write_over_the_dump(dump_copy: Path, link) -> None:
    before = sha256(dump_copy)
    link(dump_copy, sidecar_path(dump_copy))
    marks = Bookmarks.load(dump_copy)
    assert marks.warning is not None  # the "sidecar" is the dump: not JSON
    marks.add(0x4000, "x")
    with pytest.raises(OSError, match="refusing"):
        marks.save()
    assert sha256(dump_copy) == before


def test_failed_save_leaves_no_temporary_file(
    dump_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = Bookmarks.load(dump_copy)
    marks.add(0x4000, "x")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        marks.save()
    assert os.listdir(dump_copy.parent) == ["minimal.dump"]


# ---- the sidecar is only ever a small regular file ----------------------------------------------


def _planted(kind: str, sidecar: Path, tmp_path: Path) -> Path | None:
    """Put a ``kind`` of thing at the sidecar path; returns a victim file it leads to, if any."""
    victim = tmp_path / "victim.json"
    victim.write_text('{"schema": "dumpview-bookmarks/1", "bookmarks": []}')
    if kind == "symlink":
        sidecar.symlink_to(victim)
        return victim
    if kind == "symlink-to-device":
        device = tmp_path / "zero"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # endless zeros
        sidecar.symlink_to(device)
    elif kind == "fifo":
        os.mkfifo(sidecar)
    elif kind == "device":
        os.mknod(sidecar, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    elif kind == "too-large":
        sidecar.write_bytes(b" " * (MAX_SIDECAR_BYTES + 1))
    return None


@pytest.mark.parametrize("kind", ["symlink", "symlink-to-device", "fifo", "device", "too-large"])
def test_a_sidecar_that_is_not_a_small_regular_file_is_neither_read_nor_written(
    dump_copy: Path, tmp_path: Path, kind: str
) -> None:
    sidecar = sidecar_path(dump_copy)
    victim = _planted(kind, sidecar, tmp_path)
    before = os.lstat(sidecar)
    started = time.monotonic()
    marks = Bookmarks.load(dump_copy)  # a FIFO must not block, a device must not be read
    assert time.monotonic() - started < 2
    assert marks.items == [] and not marks.writable
    assert "\n" not in marks.warning and str(sidecar) in marks.warning
    assert "kept for this session only" in marks.warning
    marks.add(0x4000, "x")
    with pytest.raises(OSError, match="refusing"):
        marks.save()
    after = os.lstat(sidecar)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if victim is not None:
        assert json.loads(victim.read_text())["bookmarks"] == []


def test_a_link_planted_after_loading_is_replaced_not_followed(
    dump_copy: Path, tmp_path: Path
) -> None:
    """Between load and save a link appears at the sidecar path: the writer refuses it."""
    victim = tmp_path / "victim"
    victim.write_text("victim\n")
    marks = Bookmarks.load(dump_copy)
    marks.add(0x4000, "x")
    sidecar_path(dump_copy).symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        marks.save()
    assert victim.read_text() == "victim\n"


def test_a_new_sidecar_gets_the_umask_default_not_a_link_targets_mode(dump_copy: Path) -> None:
    from dumpview.output import current_umask

    os.chmod(dump_copy, 0o600)
    marks = Bookmarks.load(dump_copy)
    marks.add(0x4000, "x")
    marks.save()
    mode = stat.S_IMODE(sidecar_path(dump_copy).stat().st_mode)
    assert mode == 0o666 & ~current_umask()
    os.chmod(sidecar_path(dump_copy), 0o640)
    marks.add(0x8000, "y")
    marks.save()
    assert stat.S_IMODE(sidecar_path(dump_copy).stat().st_mode) == 0o640  # kept
