"""The dump model on small factory dumps: the zero-copy index, pages, reads, translation,
PN_XNUM, the extension, and cross-checks against readelf, pyelftools and gdb."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from dumpview.model import AddressError, NotDumpedError, open_dump
from dumpview.npstruct import dtype_from_struct
from dumpview.sim.writer import HoleInfo, RegionInfo
from formats import elf, ext, uat
from tests import factory
from tests.factory import BASE_VA, PAGE, page_bytes

READELF = "/usr/bin/readelf"
GDB = shutil.which("gdb-multiarch")

# The default factory dump, by hand (factory.default_segments):
#   BASE_VA          2 pages  PA 0x8_0000_0000  FW_PRIV_RW     data
#   BASE_VA + 2P     1 page   PA 0x8_0010_0000  FW_SHARED_RW   data
#   BASE_VA + 1 MiB  1 page   PA 0x2_0000_0000  FW_MMIO_RW     no data (device memory)
#   BASE_VA + 2 MiB  1 page   PA 0x9_0000_0000  GPU_SHARED_RW  no data (memattr 2: borrow refused)
MMIO_VA = BASE_VA + 0x10_0000
REFUSED_VA = BASE_VA + 0x20_0000

# Leaf entries as the driver writes them (AP, UXN, PXN, memattr, bit 55, AF), by hand.
FW_PRIV_RW = (1 << 55) | (1 << 54) | (1 << 6) | (1 << 10)
FW_SHARED_RW = FW_PRIV_RW | (2 << 2)
FW_MMIO_RW = FW_PRIV_RW | (1 << 2)
GPU_SHARED_RW = (1 << 55) | (1 << 54) | (2 << 6) | (2 << 2) | (1 << 10)


@pytest.fixture
def dump_path(tmp_path: Path) -> Path:
    return factory.build_dump(tmp_path / "default.dump")


@pytest.fixture
def dump(dump_path: Path):
    with open_dump(dump_path) as d:
        yield d


# ---- opening: the zero-copy index ----------------------------------------------------------


def test_header_and_program_headers_are_a_zero_copy_view(dump, dump_path: Path) -> None:
    raw = dump_path.read_bytes()
    file_view = np.frombuffer(dump.buffer, dtype=np.uint8)
    assert dump.phdrs.dtype == dtype_from_struct(elf.Elf64_Phdr)
    assert np.shares_memory(dump.phdrs, file_view)
    assert not dump.phdrs.flags.writeable
    assert dump.phnum == 5 == len(dump.phdrs)
    for i in range(dump.phnum):
        off = 64 + i * 56
        parsed = elf.Elf64_Phdr.parse(raw[off : off + 56])
        for name in dump.phdrs.dtype.names:
            assert int(dump.phdrs[i][name]) == parsed[name], (i, name)
    assert dump.header.e_phoff == 64
    assert dump.header.e_machine == 183
    assert dump.size_bytes == len(raw)
    assert dump.warnings == []


def test_segments_are_indexed_in_va_order_even_when_the_file_is_not(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "unsorted.dump")
    raw = bytearray(path.read_bytes())
    # Reverse the four PT_LOAD headers (phdr 1..4) in place.
    loads = [bytes(raw[64 + i * 56 : 64 + (i + 1) * 56]) for i in range(1, 5)]
    raw[64 + 56 : 64 + 5 * 56] = b"".join(reversed(loads))
    path.write_bytes(raw)
    with open_dump(path) as d:
        assert [int(v) for v in d.seg_va] == [BASE_VA, BASE_VA + 2 * PAGE, MMIO_VA, REFUSED_VA]
        assert [int(p) for p in d.seg_pa] == [
            0x8_0000_0000,
            0x8_0010_0000,
            0x2_0000_0000,
            0x9_0000_0000,
        ]
        assert list(d.phdrs["p_vaddr"][1:]) == sorted(d.phdrs["p_vaddr"][1:], reverse=True)
        assert bytes(d.read_va(BASE_VA + PAGE, 16)) == page_bytes(0x8_0000_4000)[:16]
        assert [r.va for r in d.pages()] == sorted(r.va for r in d.pages())


def test_page_totals(dump) -> None:
    assert dump.segment_count == 4
    assert dump.page_totals == (5, 3)


def test_layout_and_geometry_of_a_driver_dump(dump) -> None:
    assert dump.layout == "agx-devcoredump"
    assert dump.extension is None
    assert dump.entry_format.name == "uat"
    assert dump.table_count == 0
    assert dump.tables_index is None
    g = dump.geometry
    assert (g.page_shift, g.ias, g.oas) == (14, 39, 42)  # chip 0x6000 is t600x: OAS 42


def test_oas_40_for_t8103(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "t8103.dump", notes=[factory.agx_note(chip_id=0x8103)])
    with open_dump(path) as d:
        assert d.geometry.oas == 40


# ---- pages -------------------------------------------------------------------------------


def test_pages_in_va_order_with_rebuilt_entries_and_reasons(dump) -> None:
    records = list(dump.pages())
    assert [r.va for r in records] == [
        BASE_VA,
        BASE_VA + PAGE,
        BASE_VA + 2 * PAGE,
        MMIO_VA,
        REFUSED_VA,
    ]
    assert [r.pa for r in records] == [
        0x8_0000_0000,
        0x8_0000_4000,
        0x8_0010_0000,
        0x2_0000_0000,
        0x9_0000_0000,
    ]
    assert [r.pte for r in records] == [
        FW_PRIV_RW | 0x8_0000_0000,
        FW_PRIV_RW | 0x8_0000_4000,
        FW_SHARED_RW | 0x8_0010_0000,
        FW_MMIO_RW | 0x2_0000_0000,
        GPU_SHARED_RW | 0x9_0000_0000,
    ]
    assert all(r.pte_exact is False for r in records)
    assert [r.dumped for r in records] == [True, True, True, False, False]
    assert [r.reason for r in records] == [None, None, None, "device-memory", "borrow-refused"]
    assert records[0].reason_detail is None
    assert "memattr 1" in records[3].reason_detail
    assert records[4].reason_detail is None
    assert records[0].flags == int(dump.seg_flags[0])
    # p_flags of FW_PRIV_RW, by hand: ELF RW, PTE bits 0-11 0x440, PTE bits 52-63 0x00c.
    assert records[0].flags == 6 | (0x440 << 8) | (0x00C << 20)


def test_pages_window_and_page(dump) -> None:
    window = list(dump.pages(BASE_VA + PAGE, MMIO_VA + 1))
    assert [r.va for r in window] == [BASE_VA + PAGE, BASE_VA + 2 * PAGE, MMIO_VA]
    record = dump.page(MMIO_VA + 0x123)
    assert record is not None and record.va == MMIO_VA and not record.dumped
    assert dump.page(BASE_VA + 0x10000) is None


# ---- reads -------------------------------------------------------------------------------


def test_read_va_returns_the_pa_stamped_bytes_as_a_view_of_the_map(dump) -> None:
    data = dump.read_va(BASE_VA + 0x40, 64)
    assert bytes(data) == page_bytes(0x8_0000_0000)[0x40:0x80]
    assert isinstance(data, memoryview)
    assert np.shares_memory(np.frombuffer(data, np.uint8), np.frombuffer(dump.buffer, np.uint8))
    # The stamp says which PA a page came from.
    assert bytes(dump.read_va(BASE_VA + PAGE, 8)) == (0x8_0000_4000).to_bytes(8, "little")


def test_read_va_across_two_segments(dump) -> None:
    data = bytes(dump.read_va(BASE_VA + 2 * PAGE - 32, 64))
    assert data == page_bytes(0x8_0000_4000)[-32:] + page_bytes(0x8_0010_0000)[:32]
    whole = bytes(dump.read_va(BASE_VA, 3 * PAGE))
    assert whole == page_bytes(0x8_0000_0000) + page_bytes(0x8_0000_4000) + page_bytes(
        0x8_0010_0000
    )


def test_not_dumped_names_the_first_va_without_data_never_zeros(tmp_path: Path) -> None:
    rows = [
        factory.segment(BASE_VA, 0x8_0000_0000, 1),
        factory.segment(BASE_VA + PAGE, 0x2_0000_0000, 1, "FW_MMIO_RW", data=False),
    ]
    path = factory.build_dump(tmp_path / "hole.dump", rows)
    with open_dump(path) as d:
        with pytest.raises(NotDumpedError) as info:
            d.read_va(BASE_VA + PAGE - 8, 16)
        assert info.value.va == BASE_VA + PAGE
        assert info.value.reason == "device-memory"
        assert f"{BASE_VA + PAGE:#x}" in str(info.value)
        with pytest.raises(NotDumpedError) as info:
            d.read_va(BASE_VA + PAGE + 0x100, 4)
        assert info.value.va == BASE_VA + PAGE + 0x100


def test_not_dumped_reasons_on_the_default_dump(dump) -> None:
    with pytest.raises(NotDumpedError) as info:
        dump.read_va(REFUSED_VA, 1)
    assert info.value.reason == "borrow-refused"
    with pytest.raises(NotDumpedError) as info:
        dump.read_va(MMIO_VA + 4, 4)
    assert (info.value.va, info.value.reason) == (MMIO_VA + 4, "device-memory")


def test_unmapped_va_is_an_address_error(dump) -> None:
    with pytest.raises(AddressError) as info:
        dump.read_va(BASE_VA + 0x10000, 4)
    assert info.value.address == BASE_VA + 0x10000
    # A read running off the end of the mapped VAs names the first unmapped VA.
    with pytest.raises(AddressError) as info:
        dump.read_va(BASE_VA + 3 * PAGE - 4, 8)
    assert info.value.address == BASE_VA + 3 * PAGE
    assert bytes(dump.read_va(BASE_VA + 0x10000, 0)) == b""


def test_read_pa(dump) -> None:
    assert bytes(dump.read_pa(0x8_0000_4010, 32)) == page_bytes(0x8_0000_4000)[16:48]
    assert bytes(dump.read_pa(0x8_0010_0000, 8)) == (0x8_0010_0000).to_bytes(8, "little")
    with pytest.raises(AddressError):
        dump.read_pa(0x5_0000_0000, 4)
    with pytest.raises(NotDumpedError) as info:
        dump.read_pa(0x2_0000_0010, 4)
    assert info.value.va == MMIO_VA + 0x10


def test_read_pa_never_runs_into_a_va_neighbour_with_other_pas(dump) -> None:
    # PA 0x8_0000_4000 is the last page of the first run; the VA after it maps PA 0x8_0010_0000.
    # Reading on past the run's end in PA space must not return that other page's bytes.
    with pytest.raises(AddressError) as info:
        dump.read_pa(0x8_0000_4000, 2 * PAGE)
    assert info.value.address == 0x8_0000_8000


def test_read_pa_follows_pa_contiguity_and_aliases(tmp_path: Path) -> None:
    rows = [
        factory.segment(BASE_VA, 0x8_0000_0000, 1),
        factory.segment(BASE_VA + 8 * PAGE, 0x8_0000_4000, 1),  # PA-next, VA-far
        factory.segment(BASE_VA + 16 * PAGE, 0x8_0000_8000, 1, "FW_SHARED_RW", data=False),
        factory.segment(BASE_VA + 24 * PAGE, 0x8_0000_8000, 1, "FW_SHARED_RW"),  # alias
    ]
    path = factory.build_dump(tmp_path / "alias.dump", rows)
    with open_dump(path) as d:
        assert d.vas_for_pa(0x8_0000_8010) == [
            BASE_VA + 16 * PAGE + 0x10,
            BASE_VA + 24 * PAGE + 0x10,
        ]
        data = bytes(d.read_pa(0x8_0000_4000 - 16, 32))
        assert data == page_bytes(0x8_0000_0000)[-16:] + page_bytes(0x8_0000_4000)[:16]
        # The first alias has no data; the second one does.
        assert bytes(d.read_pa(0x8_0000_8000, 16)) == page_bytes(0x8_0000_8000)[:16]


# ---- translation (levels rebuilt from the VA) ---------------------------------------------


def test_translate_rebuilt_mapped(dump) -> None:
    va = BASE_VA + PAGE + 0x123
    t = dump.translate(va)
    assert t.mapped and t.rebuilt
    assert t.pa == 0x8_0000_4123
    assert [s.level for s in t.steps] == [1, 2, 3]
    assert [s.index for s in t.steps] == [2, 0, 1]  # bits 38:36, 35:25, 24:14 of the VA
    assert all(s.rebuilt for s in t.steps)
    assert all(s.table_pa is None for s in t.steps)  # a driver dump does not carry tables
    assert [s.entry for s in t.steps[:2]] == [None, None]
    assert t.steps[2].entry == FW_PRIV_RW | 0x8_0000_4000
    leaf = t.leaf
    assert leaf is not None and not leaf.exact
    assert (*leaf.views, leaf.memattr_name) == ("RW", "--", "cached")
    assert t.page is not None and t.page.dumped


def test_decoded_driver_entry_names_lost_bits_not_recorded(dump) -> None:
    leaf = dump.translate(REFUSED_VA).leaf
    fields = {f.name: f for f in leaf.fields}
    for lost in ("type", "sh", "ng"):
        assert fields[lost].value is None, lost
        assert fields[lost].meaning == "not recorded", lost
        assert fields[lost].recorded is False
    assert leaf.ng is None
    assert fields["ap"].value == 2
    assert fields["memattr"].value == 2
    assert fields["gpu_access"].value == 1
    assert fields["oa_pfn"].value == 0x9_0000_0000 >> 14
    assert leaf.views == ("--", "RW")
    assert {f.name for f in leaf.fields} == set(uat.FIELDS)


@pytest.mark.parametrize(
    ("va", "level"),
    [
        (BASE_VA + 0x10000, 3),  # same 32 MiB as mapped pages: the leaf table existed
        (BASE_VA + 0x400_0000, 2),  # same 64 GiB, another 32 MiB
        (BASE_VA + (64 << 30), 1),  # another L1 entry
    ],
)
def test_translate_rebuilt_stop_level(dump, va: int, level: int) -> None:
    t = dump.translate(va)
    assert not t.mapped
    assert t.pa is None and t.leaf is None
    assert t.rebuilt
    assert t.stopped_level == level
    assert [s.level for s in t.steps] == list(range(1, level + 1))
    assert all(s.rebuilt for s in t.steps)
    assert f"L{level}" in t.stopped_reason


def test_translate_outside_the_walked_space(dump) -> None:
    t = dump.translate(0x4000)
    assert not t.mapped
    assert t.stopped_level == 1
    assert "outside" in t.stopped_reason


# ---- the extension: real tables, holes, regions -------------------------------------------

TABLE_PAGES = [
    (BASE_VA, 0x8_0000_0000, "FW_PRIV_RW", True),
    (BASE_VA + 5 * PAGE, 0x2_0000_0000, "FW_MMIO_RW", False),
    (BASE_VA + 0x200_0000, 0x8_0004_0000, "GPU_SHARED_RW", False),  # next L2 entry
]


def test_translate_walks_real_tables(tmp_path: Path) -> None:
    path, leaves, contents = factory.build_dump_with_tables(tmp_path / "t.dump", TABLE_PAGES)
    with open_dump(path) as d:
        assert d.extension is not None
        assert d.table_count == 4  # TTB, one L2, two L3
        va = BASE_VA + 0x200_0000 + 0x18
        t = d.translate(va)
        assert t.mapped and not t.rebuilt
        assert t.pa == 0x8_0004_0018
        ttb = 0x7_0000_0000
        assert t.steps[0].table_pa == ttb
        assert [s.index for s in t.steps] == [2, 1, 0]
        for step in t.steps:
            raw = contents[step.table_pa]
            assert step.entry == int.from_bytes(raw[step.index * 8 : step.index * 8 + 8], "little")
            assert not step.rebuilt
        assert t.steps[0].entry & 3 == 3 and t.steps[1].entry & 3 == 3
        assert t.steps[2].entry == leaves[BASE_VA + 0x200_0000]
        assert t.leaf.exact and t.leaf.ng is False
        assert {f.name: f.value for f in t.leaf.fields}["type"] == 3
        # Unmapped in a leaf table that exists: stops at L3 with the real (empty) entry.
        t = d.translate(BASE_VA + 2 * PAGE)
        assert not t.mapped and t.stopped_level == 3
        assert t.steps[-1].entry == 0
        # Top-table entry 3 is empty.
        t = d.translate(BASE_VA + (64 << 30))
        assert (t.stopped_level, len(t.steps)) == (1, 1)


def test_pages_use_exact_entries_from_the_tables(tmp_path: Path) -> None:
    path, leaves, _ = factory.build_dump_with_tables(tmp_path / "t.dump", TABLE_PAGES)
    with open_dump(path) as d:
        records = list(d.pages())
        assert [r.va for r in records] == [va for va, *_ in TABLE_PAGES]
        assert all(r.pte_exact for r in records)
        assert [r.pte for r in records] == [leaves[r.va] for r in records]
        assert all(r.pte & 3 == 3 for r in records)


def test_hole_reasons_from_the_extension(tmp_path: Path) -> None:
    regions = [
        RegionInfo(ext.REGION_RAM, "ram", 0x8_0000_0000, 1 << 30),
        RegionInfo(ext.REGION_RESERVED, "uat-handoff", 0x8_0004_0000, 0x4000, ext.REGION_NO_MAP),
        RegionInfo(ext.REGION_MMIO, "sgx", 0x2_0000_0000, 1 << 24),
    ]
    holes = [
        HoleInfo(BASE_VA + 5 * PAGE, PAGE, ext.REASON_DEVICE_MEMORY, ext.DETAIL_MMIO, 2),
        HoleInfo(BASE_VA + 0x200_0000, PAGE, ext.REASON_BORROW_REFUSED, ext.DETAIL_NO_MAP, 1),
    ]
    path, _, _ = factory.build_dump_with_tables(
        tmp_path / "holes.dump", TABLE_PAGES, regions=regions, holes=holes
    )
    with open_dump(path) as d:
        assert [r.name for r in d.extension.regions] == ["ram", "uat-handoff", "sgx"]
        assert d.extension.regions[1].no_map and not d.extension.regions[0].no_map
        records = {r.va: r for r in d.pages()}
        mmio = records[BASE_VA + 5 * PAGE]
        assert (mmio.reason, mmio.reason_detail) == ("device-memory", "mmio: sgx")
        refused = records[BASE_VA + 0x200_0000]
        assert (refused.reason, refused.reason_detail) == ("borrow-refused", "no-map: uat-handoff")
        with pytest.raises(NotDumpedError) as info:
            d.read_va(BASE_VA + 0x200_0000 + 8, 8)
        assert info.value.detail == "no-map: uat-handoff"
        assert d.extension.scenario.name == "factory" and d.extension.scenario.seed == 7


def test_unknown_extension_version_warns_and_falls_back(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "v99.dump", extension=factory.uat_extension(version=99))
    with open_dump(path) as d:
        # The warning is there as soon as the dump is open, before anyone asks.
        assert len(d.warnings) == 1
        assert "version 99" in d.warnings[0]
        assert "driver layout" in d.warnings[0]
        assert d.extension is None
        assert d.table_count == 0
        assert d.page_totals == (5, 3)
        assert d.translate(BASE_VA).rebuilt


def test_extension_does_not_change_what_elf_readers_see(tmp_path: Path) -> None:
    pages = [(va, pa, prot, True) for va, pa, prot, _ in TABLE_PAGES]
    rows = [factory.segment(va, pa, 1, prot) for va, pa, prot, _ in pages]
    plain = factory.build_dump(tmp_path / "plain.dump", rows)
    with_ext, _, _ = factory.build_dump_with_tables(tmp_path / "ext.dump", pages)
    a, b = plain.read_bytes(), with_ext.read_bytes()
    phdr_end = 64 + (1 + len(pages)) * 56
    assert a[64:phdr_end] == b[64:phdr_end]  # the same program headers, byte for byte
    plain_out = run_readelf("-lnW", plain)
    ext_out = run_readelf("-lnW", with_ext)
    assert len(load_lines(ext_out)) == len(pages)
    assert load_lines(plain_out) == load_lines(ext_out)
    assert note_lines(plain_out) == note_lines(ext_out) == [("AGX", 56), ("RTKIT", 95)]
    with with_ext.open("rb") as f:
        names = [s.name for s in ELFFile(f).iter_sections()]
    assert names == ["", ".shstrtab", ".dumpview.tables", ".dumpview"]


# ---- PN_XNUM -------------------------------------------------------------------------------

XNUM_SEGMENTS = 70_000


@pytest.fixture(scope="module")
def xnum_dump(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    table = factory.many_segments(XNUM_SEGMENTS, data_every=5000)
    path = factory.build_dump(tmp_path_factory.mktemp("xnum") / "xnum.dump", table)
    return path, table


def test_pn_xnum_header_and_section_zero(xnum_dump) -> None:
    path, _ = xnum_dump
    with path.open("rb") as f:
        head = f.read(64)
        e_shoff = struct.unpack_from("<Q", head, 40)[0]
        assert struct.unpack_from("<H", head, 56)[0] == 0xFFFF  # e_phnum = PN_XNUM
        f.seek(e_shoff)
        sh0 = elf.Elf64_Shdr.parse(f.read(64))
    assert sh0.sh_type == elf.SHT_NULL
    assert sh0.sh_info == XNUM_SEGMENTS + 1


def test_pn_xnum_dump_opens_with_the_right_count(xnum_dump) -> None:
    path, table = xnum_dump
    with open_dump(path) as d:
        assert d.phnum == XNUM_SEGMENTS + 1
        assert d.segment_count == XNUM_SEGMENTS
        assert d.page_totals == (XNUM_SEGMENTS, XNUM_SEGMENTS // 5000)
        assert np.array_equal(d.seg_va, table.va)
        assert np.array_equal(d.seg_pa, table.pa)
        for i in (0, 5000, 65_000):
            va, pa = int(table.va[i]), int(table.pa[i])
            assert bytes(d.read_va(va + 8, 16)) == page_bytes(pa)[8:24]
        with pytest.raises(NotDumpedError):
            d.read_va(int(table.va[1]), 1)


def test_pn_xnum_readelf_and_pyelftools_agree(xnum_dump) -> None:
    path, table = xnum_dump
    out = run_readelf("-lW", path)
    assert f"There are {XNUM_SEGMENTS + 1} program headers" in out
    loads = load_lines(out)
    assert len(loads) == XNUM_SEGMENTS
    with path.open("rb") as f:
        elffile = ELFFile(f)
        assert elffile.num_segments() == XNUM_SEGMENTS + 1
        with open_dump(path) as d:
            for i in (1, 2, 5001, 65_535, 65_536, XNUM_SEGMENTS):
                seg = elffile.get_segment(i)
                j = i - 1  # VA order == file order here
                assert seg["p_type"] == "PT_LOAD"
                assert seg["p_vaddr"] == int(d.seg_va[j]) == int(table.va[j])
                assert seg["p_paddr"] == int(d.seg_pa[j])
                assert seg["p_filesz"] == int(d.seg_filesz[j])
                assert seg["p_memsz"] == int(d.seg_memsz[j]) == PAGE
                assert seg["p_offset"] == int(d.seg_offset[j])
                assert seg["p_flags"] == int(d.seg_flags[j])
                assert loads[j][:5] == (
                    seg["p_offset"],
                    seg["p_vaddr"],
                    seg["p_paddr"],
                    seg["p_filesz"],
                    PAGE,
                )


# ---- cross-checks against ELF readers ------------------------------------------------------


def run_readelf(flags: str, path: Path) -> str:
    proc = subprocess.run(
        [READELF, flags, str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stderr == "", proc.stderr
    return proc.stdout


LOAD_RE = re.compile(
    r"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)"
    r" (...) 0x([0-9a-f]+)$"
)


def load_lines(out: str) -> list[tuple[int, int, int, int, int, str, int]]:
    rows = []
    for line in out.splitlines():
        m = LOAD_RE.match(line)
        if m:
            g = m.groups()
            rows.append((*(int(x, 16) for x in g[:5]), g[5], int(g[6], 16)))
    return rows


def note_lines(out: str) -> list[tuple[str, int]]:
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s+(\S+)\s+0x([0-9a-f]{8})\s", line)
        if m:
            rows.append((m.group(1), int(m.group(2), 16)))
    return rows


def elf_flag_string(p_flags: int) -> str:
    return (
        ("R" if p_flags & 4 else " ")
        + ("W" if p_flags & 2 else " ")
        + ("E" if p_flags & 1 else " ")
    )


def test_readelf_sees_the_same_loads_and_notes(dump, dump_path: Path) -> None:
    out = run_readelf("-lnW", dump_path)
    loads = load_lines(out)
    expected = [
        (
            int(dump.seg_offset[i]),
            int(dump.seg_va[i]),
            int(dump.seg_pa[i]),
            int(dump.seg_filesz[i]),
            int(dump.seg_memsz[i]),
            elf_flag_string(int(dump.seg_flags[i])),
            0x4000,
        )
        for i in range(dump.segment_count)
    ]
    assert loads == expected
    # By hand for the first run: data at the first 16 KiB boundary, 2 pages, RW.
    assert loads[0] == (0x4000, BASE_VA, 0x8_0000_0000, 0x8000, 0x8000, "RW ", 0x4000)
    assert loads[3][5] == "   "  # GPU_SHARED_RW: firmware "--", whatever the GPU may do
    assert note_lines(out) == [("AGX", 56), ("RTKIT", len(factory.crashlog_note()[2]))]


def test_pyelftools_sees_the_same_segments_and_notes(dump, dump_path: Path) -> None:
    with dump_path.open("rb") as f:
        elffile = ELFFile(f)
        assert elffile["e_type"] == "ET_CORE"
        assert elffile["e_machine"] == "EM_AARCH64"
        assert elffile["e_entry"] == 0xFFFF_FF80_0000_0000
        segments = list(elffile.iter_segments())
        assert segments[0]["p_type"] == "PT_NOTE"
        loads = [s for s in segments if s["p_type"] == "PT_LOAD"]
        assert len(loads) == dump.segment_count
        for i, seg in enumerate(loads):
            assert seg["p_vaddr"] == int(dump.seg_va[i])
            assert seg["p_paddr"] == int(dump.seg_pa[i])
            assert seg["p_offset"] == int(dump.seg_offset[i])
            assert seg["p_filesz"] == int(dump.seg_filesz[i])
            assert seg["p_flags"] == int(dump.seg_flags[i])
            if seg["p_filesz"]:
                assert seg.data()[:16] == bytes(dump.read_va(int(dump.seg_va[i]), 16))
        notes = list(segments[0].iter_notes())
    assert [(n["n_name"], n["n_descsz"]) for n in notes] == [
        (n.name, len(n.desc)) for n in dump.notes
    ]
    assert notes[0]["n_descdata"] == bytes(dump.notes[0].desc) == factory.agx_note()[2]
    assert notes[1]["n_descdata"] == bytes(dump.notes[1].desc) == factory.crashlog_note()[2]
    info = dump.agx_info
    assert (info.chip_id, info.gpu_gen, info.gpu_rev) == (0x6000, 13, 0x11)


@pytest.mark.skipif(GDB is None, reason="gdb-multiarch is not installed")
def test_gdb_reads_the_dump(dump_path: Path) -> None:
    proc = subprocess.run(
        [
            GDB,
            "-nx",
            "-batch",
            "-ex",
            "set architecture aarch64",
            "-ex",
            f"core-file {dump_path}",
            "-ex",
            f"x/16xb {BASE_VA + PAGE:#x}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    values = [int(v, 16) for v in re.findall(r"\t0x([0-9a-f]{2})\b", proc.stdout)]
    assert values == list(page_bytes(0x8_0000_4000)[:16]), proc.stdout + proc.stderr
