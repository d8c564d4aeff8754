"""Round trips and reference-sheet checks for formats/{elf,uat,geometry,ext}.py and the numpy
views derived from them (dumpview.npstruct, the bulk entry decoder).

Expected values are written out by hand from the reference sheet
(shared/reference/agx-uat-and-devcoredump.md), never copied from the implementation's output.
"""

from __future__ import annotations

import struct

import construct
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpview.model.entries import bulk_fields, decode_entry
from dumpview.npstruct import dtype_from_struct
from formats import elf, ext, uat
from formats.geometry import Geometry, GeometryRecord

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFF_FFFF)
U64 = st.integers(0, (1 << 64) - 1)
I32 = st.integers(-(1 << 31), (1 << 31) - 1)


def round_trip(declaration: construct.Construct, raw: bytes) -> construct.Container:
    """parse -> build must give back the same bytes; returns the parsed value."""
    parsed = declaration.parse(raw)
    assert declaration.build(parsed) == raw
    return parsed


def build_parse_build(declaration: construct.Construct, value: dict) -> bytes:
    """build -> parse -> build, byte equality; returns the bytes."""
    raw = declaration.build(value)
    again = declaration.build(declaration.parse(raw))
    assert again == raw
    return raw


# ---- ELF ------------------------------------------------------------------------------------


def test_elf_sizes_and_constants_match_the_elf_spec() -> None:
    assert elf.Elf64_Ehdr.sizeof() == 64
    assert elf.Elf64_Phdr.sizeof() == 56
    assert elf.Elf64_Shdr.sizeof() == 64
    assert elf.Elf64_Nhdr.sizeof() == 12
    assert elf.ElfIdent.sizeof() == 16
    assert (elf.ET_CORE, elf.EM_AARCH64, elf.PT_LOAD, elf.PT_NOTE) == (4, 183, 1, 4)
    assert (elf.PF_X, elf.PF_W, elf.PF_R, elf.PN_XNUM) == (1, 2, 4, 0xFFFF)


@given(phnum=st.integers(0, 200_000), shoff=U64, entry=U64)
def test_core_ehdr_round_trip_and_hand_layout(phnum: int, shoff: int, entry: int) -> None:
    shnum = 1 if phnum >= elf.PN_XNUM else 0
    raw = elf.build_core_ehdr(phnum=phnum, shoff=shoff, shnum=shnum, entry=entry)
    parsed = round_trip(elf.Elf64_Ehdr, raw)
    assert raw[:16] == b"\x7fELF\x02\x01\x01" + bytes(9)
    e_type, e_machine, _ver, e_entry, e_phoff, e_shoff = struct.unpack_from("<HHIQQQ", raw, 16)
    assert (e_type, e_machine, e_entry, e_phoff, e_shoff) == (4, 183, entry, 64, shoff)
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", raw, 54)
    assert e_phentsize == 56
    assert e_phnum == min(phnum, 0xFFFF)
    assert (e_shentsize, e_shnum) == ((64, 1) if shnum else (0, 0))
    assert parsed.e_phnum == e_phnum


def test_ehdr_parse_rejects_a_wrong_magic() -> None:
    raw = bytearray(elf.build_core_ehdr(phnum=1))
    raw[0] = 0
    with pytest.raises(construct.ConstError):
        elf.Elf64_Ehdr.parse(bytes(raw))


@given(st.tuples(U32, U32, U64, U64, U64, U64, U64, U64))
def test_phdr_round_trip(values: tuple[int, ...]) -> None:
    raw = struct.pack("<IIQQQQQQ", *values)
    parsed = round_trip(elf.Elf64_Phdr, raw)
    names = [sc.name for sc in elf.Elf64_Phdr.subcons]
    assert [parsed[n] for n in names] == list(values)


@given(st.tuples(U32, U32, U64, U64, U64, U64, U32, U32, U64, U64))
def test_shdr_round_trip(values: tuple[int, ...]) -> None:
    raw = struct.pack("<IIQQQQIIQQ", *values)
    parsed = round_trip(elf.Elf64_Shdr, raw)
    assert (parsed.sh_type, parsed.sh_info, parsed.sh_entsize) == (values[1], values[7], values[9])


def test_build_shdr_defaults_to_zero_and_carries_sh_info() -> None:
    raw = elf.build_shdr(sh_info=70_001)
    assert raw == struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 70_001, 0, 0)


@given(st.tuples(U32, U32, U32))
def test_nhdr_round_trip(values: tuple[int, int, int]) -> None:
    raw = struct.pack("<III", *values)
    parsed = round_trip(elf.Elf64_Nhdr, raw)
    assert (parsed.n_namesz, parsed.n_descsz, parsed.n_type) == values


NOTE_NAMES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=12
)


@given(name=NOTE_NAMES, note_type=U32, desc=st.binary(max_size=100))
def test_note_round_trip_and_padding(name: str, note_type: int, desc: bytes) -> None:
    raw = elf.build_note(name, note_type, desc)
    parsed = round_trip(elf.ElfNote, raw)
    assert (parsed.name, parsed.n_type, parsed.desc) == (name, note_type, desc)
    # By hand: header, name + NUL padded to 4, descriptor padded to 4, zero padding.
    name_field = name.encode() + b"\0"
    name_field += b"\0" * (-len(name_field) % 4)
    expected = struct.pack("<III", len(name) + 1, len(desc), note_type)
    expected += name_field + desc + b"\0" * (-len(desc) % 4)
    assert raw == expected
    assert len(raw) == elf.note_size_bytes(name, len(desc))
    assert len(raw) % 4 == 0


def test_agx_note_record_is_72_bytes() -> None:
    # 12-byte header + "AGX\0" + 56-byte descriptor (reference sheet, section 3).
    assert elf.note_size_bytes("AGX", 56) == 72
    assert elf.note_size_bytes("RTKIT", 95) == 12 + 8 + 96


@pytest.mark.parametrize(
    ("value", "alignment", "expected"),
    [(0, 4, 0), (1, 4, 4), (4, 4, 4), (0x4001, 0x4000, 0x8000), (0x158, 0x4000, 0x4000)],
)
def test_align_up(value: int, alignment: int, expected: int) -> None:
    assert elf.align_up(value, alignment) == expected


# ---- UAT entries ----------------------------------------------------------------------------

# (lowest bit, width) of each field, from the reference sheet's bit table.
REFERENCE_FIELDS = {
    "type": (0, 2),
    "memattr": (2, 3),
    "ap": (6, 2),
    "sh": (8, 2),
    "af": (10, 1),
    "ng": (11, 1),
    "oa_pfn": (14, 38),  # output address bits 51:14
    "pxn": (53, 1),
    "uxn": (54, 1),
    "gpu_access": (55, 1),
}


def test_fields_are_derived_from_the_declaration_and_match_the_reference() -> None:
    for name, layout in REFERENCE_FIELDS.items():
        assert uat.FIELDS[name] == layout, name
    # The declaration covers all 64 bits exactly once.
    covered = 0
    for shift, width in uat.FIELDS.values():
        mask = ((1 << width) - 1) << shift
        assert covered & mask == 0
        covered |= mask
    assert covered == (1 << 64) - 1
    assert set(uat.FIELDS) == {sc.name for sc in uat.UatEntryBits.subcons}
    assert uat.OA_MASK_FULL == 0x000F_FFFF_FFFF_C000


@given(U64)
def test_uat_entry_round_trip_over_random_values(value: int) -> None:
    raw = value.to_bytes(8, "little")
    parsed = round_trip(uat.UatEntry, raw)
    # Field by field against the reference bit positions, computed independently.
    assert parsed.type == value & 3
    assert parsed.memattr == (value >> 2) & 7
    assert parsed.ap == (value >> 6) & 3
    assert parsed.sh == (value >> 8) & 3
    assert parsed.af == bool(value >> 10 & 1)
    assert parsed.ng == bool(value >> 11 & 1)
    assert parsed.oa_pfn == (value >> 14) & ((1 << 38) - 1)
    assert parsed.pxn == bool(value >> 53 & 1)
    assert parsed.uxn == bool(value >> 54 & 1)
    assert parsed.gpu_access == bool(value >> 55 & 1)
    for name, (shift, width) in uat.FIELDS.items():
        assert int(parsed[name]) == (value >> shift) & ((1 << width) - 1), name


@settings(max_examples=50)
@given(st.lists(U64, min_size=1, max_size=64))
def test_bulk_decoder_agrees_with_the_construct_declaration(values: list[int]) -> None:
    entries = np.array(values, dtype="<u8")
    bulk = bulk_fields(entries)
    assert set(bulk) == set(uat.FIELDS)
    for i, value in enumerate(values):
        parsed = uat.UatEntry.parse(value.to_bytes(8, "little"))
        for name in uat.FIELDS:
            assert int(bulk[name][i]) == int(parsed[name]), (hex(value), name)


def test_bulk_decoder_on_a_table_page_view() -> None:
    from dumpview.model.entries import table_entries

    rng = np.random.default_rng(5)
    raw = rng.integers(0, 1 << 63, size=2048, dtype=np.uint64).tobytes()
    entries = table_entries(memoryview(raw))
    assert entries.shape == (2048,)
    bulk = bulk_fields(entries)
    for i in (0, 1, 777, 2047):
        parsed = uat.UatEntry.parse(raw[i * 8 : i * 8 + 8])
        assert {n: int(bulk[n][i]) for n in uat.FIELDS} == {n: int(parsed[n]) for n in uat.FIELDS}


# Permission tables, copied by hand from the reference sheet, indexed [AP][(UXN << 1) | PXN].
REF_FW_NO_GPU = [
    ["--", "--", "--", "RW"],
    ["--", "RW", "--", "RW"],
    ["RX", "RX", "--", "R-"],
    ["RX", "RW", "--", "R-"],
]
REF_FW_GPU = [["--", "R-", "-W", "RW"], ["R-", "--", "RW", "RW"], ["--"] * 4, ["--"] * 4]
REF_GPU = [["--", "R-", "-W", "RW"], ["--", "--", "--", "R-"], ["R-", "-W", "RW", "--"], ["--"] * 4]
REF_EL1 = [
    ["--", "--", "--", "--"],
    ["--", "RW", "--", "RW"],
    ["--", "RX", "--", "--"],
    ["RX", "R-", "--", "R-"],
]
REF_GL1 = [
    ["--", "--", "--", "RW"],
    ["--", "--", "--", "RW"],
    ["RX", "--", "--", "R-"],
    ["RX", "RW", "--", "R-"],
]


def pte_with(ap: int, uxn: int, pxn: int, gpu: int) -> int:
    return (ap << 6) | (uxn << 54) | (pxn << 53) | (gpu << 55) | (1 << 10) | 3


@pytest.mark.parametrize("ap", range(4))
@pytest.mark.parametrize(("uxn", "pxn"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_permission_views_follow_the_reference_tables(ap: int, uxn: int, pxn: int) -> None:
    col = (uxn << 1) | pxn
    without = pte_with(ap, uxn, pxn, 0)
    with_gpu = pte_with(ap, uxn, pxn, 1)
    assert uat.perm_index(without) == (ap, col)
    assert uat.firmware_view(without) == REF_FW_NO_GPU[ap][col]
    assert uat.firmware_view(with_gpu) == REF_FW_GPU[ap][col]
    assert uat.gpu_view(without) == "--"
    assert uat.gpu_view(with_gpu) == REF_GPU[ap][col]
    assert uat.firmware_el1_gl1(without) == (REF_EL1[ap][col], REF_GL1[ap][col])
    assert uat.firmware_el1_gl1(with_gpu) == ("--", "--")


def test_bit55_clear_firmware_view_is_the_union_of_el1_and_gl1() -> None:
    for ap in range(4):
        for col in range(4):
            union = (set(REF_EL1[ap][col]) | set(REF_GL1[ap][col])) - {"-"}
            assert set(REF_FW_NO_GPU[ap][col]) - {"-"} == union, (ap, col)


# Named protections: (AP, UXN, PXN, memattr) and the firmware / GPU strings they give, read off
# the reference tables by hand (bit 55 is set on all of them: the bit-55 tables apply).
NAMED = {
    "FW_PRIV_RW": ((1, 1, 0, 0), "RW", "--"),
    "FW_SHARED_RW": ((1, 1, 0, 2), "RW", "--"),
    "FW_SHARED_RO": ((1, 0, 0, 2), "R-", "--"),
    "FW_MMIO_RW": ((1, 1, 0, 1), "RW", "--"),
    "FW_MMIO_RO": ((1, 0, 0, 1), "R-", "--"),
    "GPU_FW_SHARED_RW": ((0, 1, 1, 2), "RW", "RW"),
    "GPU_FW_PRIV_RW": ((0, 1, 1, 0), "RW", "RW"),
    "GPU_RO_FW_PRIV_RW": ((1, 1, 1, 0), "RW", "R-"),
    "GPU_SHARED_RW": ((2, 1, 0, 2), "--", "RW"),
    "GPU_SHARED_RO": ((2, 0, 0, 2), "--", "R-"),
    "GPU_SHARED_WO": ((2, 0, 1, 2), "--", "-W"),
}
# ELF p_flags R/W/X from the firmware view: PF_R = 4, PF_W = 2, PF_X = 1.
ELF_RWX = {"RW": 6, "R-": 4, "--": 0, "RX": 5, "-W": 2}


def test_every_named_protection_is_declared() -> None:
    assert set(uat.PROTS) == set(NAMED)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_protection_bits_and_views(name: str) -> None:
    (ap, uxn, pxn, memattr), firmware, gpu = NAMED[name]
    prot = uat.PROTS[name]
    assert (prot.ap, prot.uxn, prot.pxn, prot.memattr) == (ap, uxn, pxn, memattr)
    expected_bits = (ap << 6) | (uxn << 54) | (pxn << 53) | (memattr << 2) | (1 << 55) | (1 << 10)
    assert prot.bits == expected_bits
    pte = prot.bits | 0x8_1234_4000 | 3
    assert uat.firmware_view(pte) == firmware
    assert uat.gpu_view(pte) == gpu
    # p_flags bits 0-2 come from the firmware view, never from the GPU view.
    assert uat.pack_p_flags(pte) & 7 == ELF_RWX[firmware]


def test_elf_rwx_uses_the_firmware_view_not_the_gpu_view() -> None:
    # GPU_SHARED_WO: firmware "--", GPU "-W" -> no ELF permission at all.
    pte = uat.PROTS["GPU_SHARED_WO"].bits | 3
    assert uat.pack_p_flags(pte) & 7 == 0
    # AP2, bit 55 clear, UXN 0, PXN 0: firmware "RX" (GPU "--") -> R + X.
    pte = (2 << 6) | (1 << 10) | 3
    assert uat.pack_p_flags(pte) & 7 == elf.PF_R | elf.PF_X
    assert uat.elf_rwx("RWX") == 7
    assert uat.elf_rwx("--") == 0


def test_memattr_names_follow_the_reference() -> None:
    assert uat.MEMATTR_MAIR[0] == 0xFF
    assert uat.MEMATTR_MAIR[1] == 0x00
    assert uat.MEMATTR_MAIR[2] == 0xF4
    assert uat.MEMATTR_MAIR[3] == 0x4F
    assert uat.MEMATTR_MAIR[5] == 0xFF
    assert {m for m in range(8) if uat.MEMATTR_NAMES[m] == "device"} == {1, 4, 6, 7}
    assert {0, 2} == uat.DUMPABLE_MEMATTRS
    assert "0xf4" in uat.memattr_description(2)


# ---- p_flags packing -----------------------------------------------------------------------

# Recorded PTE bits of a driver dump: AP (7:6), memattr (4:2), bits 63:52, OA 51:14. AF (10)
# is in p_flags but always 1 (the driver rebuilds bits 0-11 from its Prot): not recorded.
RECORDED = (3 << 6) | (7 << 2) | (0xFFF << 52) | (((1 << 38) - 1) << 14)
AF = 1 << 10


def test_recorded_mask_matches_the_reference() -> None:
    assert RECORDED == 0xFFFF_FFFF_FFFF_C0DC
    assert uat.RECORDED_PTE_BITS_DRIVER == RECORDED
    assert "af" in uat.NOT_RECORDED_FIELDS_DRIVER


@given(U64)
def test_p_flags_pack_then_unpack_keeps_exactly_the_recorded_bits(pte: int) -> None:
    p_flags = uat.pack_p_flags(pte)
    assert 0 <= p_flags < 1 << 32
    assert p_flags & 0xF8 == 0  # bits 3-7 unused
    assert (p_flags >> 8) & 0xFFF == (pte & 0xDC) | 0x400  # AP, memattr; AF always 1
    assert p_flags >> 20 == pte >> 52  # PTE bits 52-63
    assert p_flags & 7 == ELF_RWX.get(uat.firmware_view(pte), -1)
    p_paddr = pte & 0x000F_FFFF_FFFF_C000  # the driver writes pte & bits 51:14
    rebuilt = uat.unpack_p_flags(p_flags, p_paddr)
    assert rebuilt == (pte & RECORDED) | AF
    # type, SH, nG (and bit 5, bits 13:12) are gone.
    assert rebuilt & ((3 << 0) | (3 << 8) | (1 << 11) | (1 << 5) | (3 << 12)) == 0


@given(p_flags=U32, p_paddr=U64)
def test_unpack_then_pack_gives_back_the_driver_p_flags(p_flags: int, p_paddr: int) -> None:
    # Only p_flags values a driver can write: low PTE byte restricted to AF/AP/memattr, ELF bits
    # from the firmware view.
    p_flags &= ~0xFF & ~(0xB23 << 8)  # clear ELF bits, 3-7, and type/bit5/SH/nG/13:12
    p_flags |= AF << 8  # the driver's Prot always sets AF
    pte = uat.unpack_p_flags(p_flags, p_paddr)
    repacked = uat.pack_p_flags(pte)
    assert repacked & ~7 == p_flags
    assert uat.unpack_p_flags(repacked, p_paddr) == pte


def test_pack_p_flags_by_hand_for_fw_priv_rw() -> None:
    # FW_PRIV_RW: AP1, UXN, bit 55, AF, memattr 0 -> ELF RW (6), low byte 0x440, high 0x00c.
    pte = uat.PROTS["FW_PRIV_RW"].bits | 0x8_0000_0000 | 3 | (1 << 11) | (2 << 8)
    assert uat.pack_p_flags(pte) == 6 | (0x440 << 8) | (0x00C << 20)
    assert uat.unpack_p_flags(uat.pack_p_flags(pte), 0x8_0000_0000) == 0x00C0_0008_0000_0440
    # The same entry with AF clear: the driver's p_flags still say AF (as_pte() sets UAT_AF).
    assert uat.pack_p_flags(pte & ~AF) == 6 | (0x440 << 8) | (0x00C << 20)


# ---- geometry ------------------------------------------------------------------------------


def test_uat_geometry_39_bit_levels() -> None:
    g = uat.uat_geometry()
    assert (g.page_shift, g.ias, g.page_size_bytes, g.entries_per_table) == (14, 39, 16384, 2048)
    assert g.level_count == 3
    spans = [(lg.level, lg.va_shift + lg.index_bits - 1, lg.va_shift) for lg in g.levels]
    assert spans == [(1, 38, 36), (2, 35, 25), (3, 24, 14)]
    assert [lg.entries for lg in g.levels] == [8, 2048, 2048]
    assert g.levels[1].entry_span_bytes == 32 << 20  # an L2 entry spans 32 MiB
    assert g.levels[0].entry_span_bytes == 64 << 30
    assert g.level(3) is g.levels[-1]
    with pytest.raises(ValueError):
        g.level(0)


def test_uat_geometry_42_bit_top_table_has_64_entries() -> None:
    g = uat.uat_geometry(ias=42)
    top = g.levels[0]
    assert (top.level, top.va_shift + top.index_bits - 1, top.va_shift) == (1, 41, 36)
    assert top.entries == 64
    assert [(lg.va_shift, lg.index_bits) for lg in g.levels[1:]] == [(25, 11), (14, 11)]


def test_lpae_4k_48_bit_levels() -> None:
    g = Geometry(page_shift=12, ias=48, oas=48)
    spans = [(lg.level, lg.va_shift + lg.index_bits - 1, lg.va_shift) for lg in g.levels]
    assert spans == [(0, 47, 39), (1, 38, 30), (2, 29, 21), (3, 20, 12)]


def test_index_of_and_rebuild_va() -> None:
    g = uat.uat_geometry()
    va = 0xFFFF_FFA0_0000_0000 + 5 * (32 << 20) + 7 * 0x4000 + 0x123
    assert [lg.index_of(va) for lg in g.levels] == [2, 5, 7]
    # A VA is rebuilt as (index bits) | (range start & ~IAS mask).
    assert g.rebuild_va(0x20_0000_0000) == 0xFFFF_FFA0_0000_0000
    assert g.in_space(0xFFFF_FF80_0000_0000)
    assert not g.in_space(0x0000_0000_0000_4000)
    assert g.oa_mask == ((1 << 42) - 1) & ~0x3FFF
    assert uat.uat_geometry(oas=40).oa_mask == ((1 << 40) - 1) & ~0x3FFF


@pytest.mark.parametrize(
    ("page_shift", "ias", "oas"),
    [(0, 39, 42), (14, 14, 42), (14, 39, 14), (12, 52, 48), (9, 52, 48), (10, 48, 48)],
)
def test_unwalkable_geometries_raise_value_error(page_shift: int, ias: int, oas: int) -> None:
    with pytest.raises(ValueError):
        Geometry(page_shift=page_shift, ias=ias, oas=oas)


def test_four_levels_is_still_walkable() -> None:
    assert Geometry(page_shift=12, ias=48, oas=48).level_count == 4
    assert Geometry(page_shift=16, ias=52, oas=52).level_count == 3


@given(fmt=U16, shift=U8, ias=U8, oas=U8, count=U8, start=U8, base=U64)
def test_geometry_record_round_trip(
    fmt: int, shift: int, ias: int, oas: int, count: int, start: int, base: int
) -> None:
    value = {
        "entry_format": fmt,
        "page_shift": shift,
        "ias": ias,
        "oas": oas,
        "level_count": count,
        "start_level": start,
        "va_base": base,
    }
    raw = build_parse_build(GeometryRecord, value)
    assert raw == struct.pack("<HBBBBBxQ", fmt, shift, ias, oas, count, start, base)


# ---- extension records ---------------------------------------------------------------------


@given(st.tuples(U32, U32, U64, U64, U64, U64, U64))
def test_space_record_round_trip(values: tuple[int, ...]) -> None:
    raw = struct.pack("<IIQQQQQ", *values)
    parsed = round_trip(ext.SpaceRecord, raw)
    assert (parsed.context, parsed.ttb_pa, parsed.managed_va_size_bytes) == (
        values[0],
        values[2],
        values[6],
    )


@given(st.tuples(U8, U8, U32, U64, U64, U64, U64))
def test_table_record_round_trip(values: tuple[int, ...]) -> None:
    level, flags, context, pa, va, size, offset = values
    value = {
        "level": level,
        "flags": flags,
        "context": context,
        "pa": pa,
        "va_start": va,
        "va_size_bytes": size,
        "file_offset": offset,
    }
    raw = build_parse_build(ext.TableRecord, value)
    assert raw == struct.pack("<BBxxIQQQQ", *values)


@given(st.tuples(U8, U8, U32, U64, U64))
def test_region_record_round_trip(values: tuple[int, ...]) -> None:
    kind, flags, name, base, size = values
    value = {"kind": kind, "flags": flags, "name_offset": name, "base": base, "size_bytes": size}
    raw = build_parse_build(ext.RegionRecord, value)
    assert raw == struct.pack("<BBxxIQQ", *values)


@given(st.tuples(U64, U64, U8, U8, I32))
def test_hole_record_round_trip(values: tuple[int, ...]) -> None:
    va, size, reason, detail, region = values
    value = {
        "va": va,
        "size_bytes": size,
        "reason": reason,
        "detail": detail,
        "region_index": region,
    }
    raw = build_parse_build(ext.HoleRecord, value)
    assert raw == struct.pack("<QQBBxxi", *values)


@given(st.tuples(U32, U32, U64, U64))
def test_dir_entry_round_trip(values: tuple[int, ...]) -> None:
    raw = struct.pack("<IIQQ", *values)
    parsed = round_trip(ext.ExtDirEntry, raw)
    assert (parsed.kind, parsed.count, parsed.offset, parsed.size_bytes) == values


@given(seed=U64, name=st.text(max_size=40), knobs=st.text(max_size=200), gen=st.text(max_size=20))
def test_scenario_record_round_trip(seed: int, name: str, knobs: str, gen: str) -> None:
    value = {"seed": seed, "name": name, "knobs_json": knobs, "generator": gen}
    raw = build_parse_build(ext.ScenarioRecord, value)
    parsed = ext.ScenarioRecord.parse(raw)
    assert (parsed.seed, parsed.name, parsed.knobs_json, parsed.generator) == (
        seed,
        name,
        knobs,
        gen,
    )
    encoded = name.encode()
    assert raw[:8] == struct.pack("<Q", seed)
    assert raw[8:10] == struct.pack("<H", len(encoded))
    assert raw[10 : 10 + len(encoded)] == encoded


@given(st.lists(st.tuples(U32, U32, U64, U64), max_size=8), U16)
def test_ext_header_with_directory_round_trip(
    directory: list[tuple[int, int, int, int]], version: int
) -> None:
    value = {
        "version": version,
        "header_size_bytes": ext.EXT_HEADER_FIXED_SIZE,
        "directory_count": len(directory),
        "directory": [
            dict(zip(("kind", "count", "offset", "size_bytes"), d, strict=True)) for d in directory
        ],
    }
    raw = build_parse_build(ext.ExtHeader, value)
    expected = b"DUMPVIEW" + struct.pack("<HHI", version, 16, len(directory))
    expected += b"".join(struct.pack("<IIQQ", *d) for d in directory)
    assert raw == expected
    assert len(raw) == ext.EXT_HEADER_FIXED_SIZE + 24 * len(directory)


def test_ext_header_rejects_a_wrong_magic() -> None:
    with pytest.raises(construct.ConstError):
        ext.ExtHeader.parse(b"DUMPVIEX" + struct.pack("<HHI", 1, 16, 0))


def test_string_at() -> None:
    blob = b"\0uat-pagetables\0mmio\0"
    assert ext.string_at(blob, 1) == "uat-pagetables"
    assert ext.string_at(blob, 16) == "mmio"
    assert ext.string_at(blob, 0) == ""
    with pytest.raises(ValueError):
        ext.string_at(blob, len(blob))


def test_section_types_are_in_the_user_range() -> None:
    for sh_type in (ext.SHT_DUMPVIEW, ext.SHT_DUMPVIEW_TABLES):
        assert 0x8000_0000 <= sh_type <= 0xFFFF_FFFF  # SHT_LOUSER..SHT_HIUSER


# ---- numpy dtypes derived from the declarations --------------------------------------------

FLAT_RECORDS = {
    "Elf64_Phdr": elf.Elf64_Phdr,
    "Elf64_Shdr": elf.Elf64_Shdr,
    "Elf64_Nhdr": elf.Elf64_Nhdr,
    "SpaceRecord": ext.SpaceRecord,
    "TableRecord": ext.TableRecord,
    "RegionRecord": ext.RegionRecord,
    "HoleRecord": ext.HoleRecord,
    "ExtDirEntry": ext.ExtDirEntry,
    "GeometryRecord": GeometryRecord,
}
SIGNED = {ext.HoleRecord: {"region_index"}}


def declared_fields(declaration: construct.Struct) -> list[tuple[str, int, int]]:
    """(name, offset, size) of every named field, walked from the declaration itself."""
    out, offset = [], 0
    for sub in declaration.subcons:
        if sub.name is not None:
            out.append((sub.name, offset, sub.sizeof()))
        offset += sub.sizeof()
    return out


@pytest.mark.parametrize("name", sorted(FLAT_RECORDS))
def test_dtype_matches_the_declaration(name: str) -> None:
    declaration = FLAT_RECORDS[name]
    dtype = dtype_from_struct(declaration)
    assert dtype.itemsize == declaration.sizeof()
    fields = declared_fields(declaration)
    assert list(dtype.names) == [f for f, _, _ in fields]
    for field, offset, size in fields:
        sub_dtype, sub_offset = dtype.fields[field][:2]
        assert sub_offset == offset, field
        assert sub_dtype.itemsize == size, field
        assert sub_dtype.byteorder in ("<", "|", "=")
        signed = field in SIGNED.get(declaration, set())
        assert sub_dtype.kind == ("i" if signed else "u"), field


@st.composite
def record_values(draw: st.DrawFn, declaration: construct.Struct) -> dict[str, int]:
    values = {}
    for field, _, size in declared_fields(declaration):
        if field in SIGNED.get(declaration, set()):
            values[field] = draw(st.integers(-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1))
        else:
            values[field] = draw(st.integers(0, (1 << (8 * size)) - 1))
    return values


@settings(max_examples=30)
@pytest.mark.parametrize("name", sorted(FLAT_RECORDS))
@given(data=st.data())
def test_numpy_decodes_construct_built_records_identically(name: str, data: st.DataObject) -> None:
    declaration = FLAT_RECORDS[name]
    rows = data.draw(st.lists(record_values(declaration), min_size=1, max_size=5))
    raw = b"".join(declaration.build(row) for row in rows)
    array = np.frombuffer(raw, dtype=dtype_from_struct(declaration))
    assert len(array) == len(rows)
    for i, row in enumerate(rows):
        for field, value in row.items():
            assert int(array[i][field]) == value, (name, field)
    # And back: numpy-built bytes parse to the same values with construct.
    rebuilt = np.zeros(len(rows), dtype=dtype_from_struct(declaration))
    for field in rebuilt.dtype.names:
        rebuilt[field] = [row[field] for row in rows]
    assert rebuilt.tobytes() == raw


@pytest.mark.parametrize(
    "declaration", [elf.Elf64_Ehdr, ext.ExtHeader, ext.ScenarioRecord, elf.ElfNote]
)
def test_dtype_from_struct_refuses_what_it_cannot_express(declaration: construct.Struct) -> None:
    with pytest.raises(TypeError):
        dtype_from_struct(declaration)


def test_dtype_from_struct_refuses_big_endian() -> None:
    with pytest.raises(TypeError):
        dtype_from_struct(construct.Struct("x" / construct.Int32ub))


# ---- decoded entries -----------------------------------------------------------------------


def test_decode_entry_exact_and_driver() -> None:
    g = uat.uat_geometry()
    pte = uat.PROTS["GPU_RO_FW_PRIV_RW"].bits | 0x8_0000_4000 | 3 | (1 << 11)
    exact = decode_entry(pte, 3, g)
    fields = {f.name: f for f in exact.fields}
    assert exact.type_name == "page"
    assert exact.output_address == 0x8_0000_4000
    assert (*exact.views, exact.ng, exact.af) == ("RW", "R-", True, True)
    assert fields["ap"].bits == "7:6" and fields["ap"].value == 1
    assert fields["oa_pfn"].bits == "51:14"
    assert fields["gpu_access"].bits == "55" and fields["gpu_access"].value == 1
    driver = decode_entry(pte & uat.RECORDED_PTE_BITS_DRIVER, 3, g, exact=False)
    dfields = {f.name: f for f in driver.fields}
    for lost in ("type", "sh", "ng", "af"):
        assert dfields[lost].value is None
        assert dfields[lost].meaning == "not recorded"
        assert not dfields[lost].recorded
    assert driver.ng is None and driver.af is None
    assert dfields["ap"].value == 1
    # A table entry at an upper level.
    table = decode_entry(0x7_0000_4003, 1, g)
    assert table.type_name == "table"
    assert table.output_address == 0x7_0000_4000
    assert decode_entry(0, 2, g).type_name == "empty"
