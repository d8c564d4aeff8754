"""Tests for formats.agx (the AGX info note) and formats.clhe (the RTKit crash log)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formats import agx, clhe

# --- AGX info note -------------------------------------------------------------------------

AGX_FIELDS: dict[str, Any] = {
    "initdata_address": 0xFFFFFFA0_00123400,
    "chip_id": 0x6000,
    "gpu_gen": 13,
    "gpu_variant": ord("S"),
    "gpu_rev": 0x11,
    "total_active_cores": 8,
    "firmware_version": [13, 5, 2, 0, 0, 0],
}


def agx_bytes_by_hand(fields: dict[str, Any]) -> bytes:
    return struct.pack(
        "<QIIIII6I4x",
        fields["initdata_address"],
        fields["chip_id"],
        fields["gpu_gen"],
        fields["gpu_variant"],
        fields["gpu_rev"],
        fields["total_active_cores"],
        *fields["firmware_version"],
    )


def test_agx_constants() -> None:
    assert agx.AGX_NOTE_NAME == "AGX"
    assert agx.AGX_NOTE_TYPE == 1
    assert agx.AGX_INFO_SIZE == 56
    assert agx.AgxInfo.sizeof() == 56


def test_agx_build_matches_hand_packed_bytes() -> None:
    built = agx.build_agx_info(**AGX_FIELDS)
    assert len(built) == 56
    assert built == agx_bytes_by_hand(AGX_FIELDS)
    assert built[-4:] == b"\0\0\0\0"


def test_agx_round_trip() -> None:
    raw = agx_bytes_by_hand(AGX_FIELDS)
    info = agx.parse_agx_info(raw)
    assert info.initdata_address == 0xFFFFFFA0_00123400
    assert info.chip_id == 0x6000
    assert info.gpu_gen == 13
    assert info.gpu_variant == 0x53
    assert info.gpu_rev == 0x11
    assert info.total_active_cores == 8
    assert list(info.firmware_version) == [13, 5, 2, 0, 0, 0]
    assert agx.AgxInfo.build(info) == raw
    assert agx.build_agx_info(**{k: info[k] for k in AGX_FIELDS}) == raw


def test_agx_names_in_build_and_short_firmware_version() -> None:
    fields = dict(
        AGX_FIELDS, gpu_gen="G13", gpu_variant="S", gpu_rev="B1", firmware_version=[13, 5, 2]
    )
    assert agx.build_agx_info(**fields) == agx_bytes_by_hand(AGX_FIELDS)


@pytest.mark.parametrize("size", [0, 55, 57, 64])
def test_agx_wrong_size_raises(size: int) -> None:
    with pytest.raises(ValueError, match=f"AGX note descriptor is {size} bytes, expected 56"):
        agx.parse_agx_info(bytes(size))


def test_agx_build_errors() -> None:
    with pytest.raises(ValueError, match="missing field"):
        agx.build_agx_info(chip_id=1)
    with pytest.raises(ValueError, match="unknown gpu_gen name"):
        agx.build_agx_info(**dict(AGX_FIELDS, gpu_gen="G99"))
    with pytest.raises(ValueError, match="at most 6"):
        agx.build_agx_info(**dict(AGX_FIELDS, firmware_version=[1] * 7))
    with pytest.raises(ValueError, match="cannot build"):
        agx.build_agx_info(**dict(AGX_FIELDS, chip_id=-1))


def test_agx_unknown_values_are_kept_as_numbers() -> None:
    fields = dict(AGX_FIELDS, gpu_gen=99, gpu_variant=ord("Z"), gpu_rev=0x42)
    info = agx.parse_agx_info(agx.build_agx_info(**fields))
    assert info.gpu_gen == 99
    assert info.gpu_variant == ord("Z")
    assert info.gpu_rev == 0x42
    assert agx.gpu_gen_name(info.gpu_gen) is None
    assert agx.gpu_variant_name(info.gpu_variant) is None
    assert agx.gpu_rev_name(info.gpu_rev) is None


@pytest.mark.parametrize(
    ("value", "name"),
    [(13, "G13"), (14, "G14"), (15, "G15"), (16, "G16"), (17, "G17"), (12, None), (99, None)],
)
def test_gpu_gen_names(value: int, name: str | None) -> None:
    assert agx.gpu_gen_name(value) == name


@pytest.mark.parametrize(
    ("value", "name"),
    [(0x50, "P"), (0x47, "G"), (0x53, "S"), (0x43, "C"), (0x44, "D"), (0x41, "A"), (0x5A, None)],
)
def test_gpu_variant_names(value: int, name: str | None) -> None:
    assert agx.gpu_variant_name(value) == name


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (0x00, "A0"),
        (0x01, "A1"),
        (0x10, "B0"),
        (0x11, "B1"),
        (0x20, "C0"),
        (0x21, "C1"),
        (0x02, None),
        (0x30, None),
    ],
)
def test_gpu_rev_names(value: int, name: str | None) -> None:
    assert agx.gpu_rev_name(value) == name


@pytest.mark.parametrize(
    ("words", "text"),
    [
        ([13, 5, 2, 0, 0, 0], "13.5.2"),
        ([12, 3, 0, 0, 0, 0], "12.3.0"),
        ([13, 5, 2, 1, 0, 0], "13.5.2.1"),
        ([13, 0, 0, 0, 0, 7], "13.0.0.0.0.7"),
        ([0, 0, 0, 0, 0, 0], "0.0.0"),
        ([14], "14.0.0"),
    ],
)
def test_firmware_version_string(words: list[int], text: str) -> None:
    assert agx.firmware_version_string(words) == text


# --- CLHE payload declarations -------------------------------------------------------------


def le(fmt: str, *values: int) -> bytes:
    return struct.pack("<" + fmt, *values)


CRG8_RAW = (
    le("II", 0xA, 0xB)
    + le("31Q", *range(0x100, 0x100 + 31))
    + le("6Q", 0x1000, 0x2000, 0x3C5, 0x300000, 0x10, 0x20)
    + le("64Q", *range(64))
    + le("4Q", 0xDEAD0000, 0x77, 0x96000045, 0x88)
)

# CrgA (AArch32), by hand from HoolockLinux's struct apple_rtkit_crashlog_armv7 (0x160 bytes):
# u32 unk_0, unk_4; u32 regs[16]; u32 psr; u32 unk_x1; u8 stack[0x100]; u32 unk_x2..unk_x5.
CRGA_RAW = (
    le("II", 0xC, 0xD)
    + le("16I", *range(0xA000, 0xA000 + 16))
    + le("II", 0x600001D3, 0x55)  # psr: Supervisor mode (0x13), IRQ/FIQ masked
    + bytes(range(256))
    + le("4I", 1, 2, 3, 4)
)

CRTK_RAW = (
    le("HH3IQ4II", 1, 0x8001, 1, 2, 3, 0xFFFFFE0000001000, 4, 5, 6, 7, 2)
    + b"rtkit".ljust(28, b"\0")
    + le("2Q", 0xAAA0, 0xBBB0)
    + le("HH3IQ4II", 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    + b"idle".ljust(28, b"\0")
)

# One well-formed payload per declaration, written by hand from the documented layouts.
PAYLOAD_SAMPLES: dict[str, bytes] = {
    "Cver": bytes(range(16)) + b"RTKit_iOS-1234.5.6\0",
    "Cstr": le("I", 7) + b"ASSERT failed: ptr != NULL\0",
    "Ctim": le("Q", 0x0123456789ABCDEF),
    "Cmbx": le("7I", 1, 2, 3, 4, 5, 6, 1)
    + le("QQI4x", 0x20, 0x0050000000000001, 111)
    + le("QQI4x", 0x21, 0x0060000000000002, 222),
    "Ccst": le("II", 3, 0) + le("3Q", 0xFFFFFE0000012340, 0xFFFFFE0000045670, 0),
    "CasC": le("6Q", 1, 2, 3, 4, 5, 6),
    "Crg8": CRG8_RAW,
    "CrgA": CRGA_RAW,
    "Crtk": CRTK_RAW,
    "Ccdp": le("QQI", 0xFFFFFA0000000000, 0x8_0000_4000, 1) + le("QQI", 0x1500000000, 0x9000, 2),
}


def test_every_declaration_has_a_sample() -> None:
    assert set(PAYLOAD_SAMPLES) == set(clhe.PAYLOADS)


@pytest.mark.parametrize("kind", sorted(PAYLOAD_SAMPLES))
def test_payload_round_trip(kind: str) -> None:
    raw = PAYLOAD_SAMPLES[kind]
    declaration = clhe.PAYLOADS[kind]
    fields = declaration.parse(raw)
    assert fields.trailing == b""
    assert declaration.build(fields) == raw


def test_payload_trailing_bytes_are_kept() -> None:
    raw = PAYLOAD_SAMPLES["Cstr"] + b"\0\0\0"
    fields = clhe.CstrPayload.parse(raw)
    assert fields.trailing == b"\0\0\0"
    assert clhe.CstrPayload.build(fields) == raw
    raw = PAYLOAD_SAMPLES["Ccdp"] + b"\x01\x02"
    fields = clhe.CcdpPayload.parse(raw)
    assert len(fields.pairs) == 2
    assert clhe.CcdpPayload.build(fields) == raw


def test_payload_values() -> None:
    cver = clhe.CverPayload.parse(PAYLOAD_SAMPLES["Cver"])
    assert cver.uuid == bytes(range(16))
    assert cver.version == "RTKit_iOS-1234.5.6"
    cstr = clhe.CstrPayload.parse(PAYLOAD_SAMPLES["Cstr"])
    assert (cstr.id, cstr.message) == (7, "ASSERT failed: ptr != NULL")
    assert clhe.CtimPayload.parse(PAYLOAD_SAMPLES["Ctim"]).time == 0x0123456789ABCDEF
    cmbx = clhe.CmbxPayload.parse(PAYLOAD_SAMPLES["Cmbx"])
    assert list(cmbx.header) == [1, 2, 3, 4]
    assert (cmbx.type, cmbx.unknown, cmbx.index) == (5, 6, 1)
    assert [(r.endpoint, r.message, r.timestamp) for r in cmbx.records] == [
        (0x20, 0x0050000000000001, 111),
        (0x21, 0x0060000000000002, 222),
    ]
    ccst = clhe.CcstPayload.parse(PAYLOAD_SAMPLES["Ccst"])
    assert (ccst.task, ccst.unknown) == (3, 0)
    assert list(ccst.return_addresses) == [0xFFFFFE0000012340, 0xFFFFFE0000045670, 0]
    casc = clhe.CascPayload.parse(PAYLOAD_SAMPLES["CasC"])
    assert (casc.l2c_err_sts, casc.fed_err_sts, casc.mmu_err_sts) == (1, 5, 6)
    crg8 = clhe.Crg8Payload.parse(CRG8_RAW)
    assert (crg8.unk0, crg8.unk1) == (0xA, 0xB)
    assert list(crg8.x) == list(range(0x100, 0x100 + 31))
    assert (crg8.sp, crg8.pc, crg8.psr, crg8.cpacr, crg8.fpsr, crg8.fpcr) == (
        0x1000,
        0x2000,
        0x3C5,
        0x300000,
        0x10,
        0x20,
    )
    assert list(crg8.unknown) == list(range(64))
    assert (crg8.far, crg8.unknown2, crg8.esr, crg8.unknown3) == (
        0xDEAD0000,
        0x77,
        0x96000045,
        0x88,
    )
    assert len(CRGA_RAW) == 0x160 == clhe.CRGA_SIZE
    crga = clhe.CrgaPayload.parse(CRGA_RAW)
    assert (crga.unk0, crga.unk1, crga.psr, crga.unknown) == (0xC, 0xD, 0x600001D3, 0x55)
    assert list(crga.r) == list(range(0xA000, 0xA000 + 16))
    assert crga.stack == bytes(range(256))
    assert list(crga.unknown2) == [1, 2, 3, 4]
    assert crga.trailing == b""
    crtk = clhe.CrtkPayload.parse(CRTK_RAW)
    assert [t.name for t in crtk.tasks] == ["rtkit", "idle"]
    assert crtk.tasks[0].ptr_count == 2
    assert list(crtk.tasks[0].ptrs) == [0xAAA0, 0xBBB0]
    assert (crtk.tasks[0].id, crtk.tasks[0].flags, crtk.tasks[0].ptr) == (
        1,
        0x8001,
        0xFFFFFE0000001000,
    )
    assert list(crtk.tasks[1].ptrs) == []
    ccdp = clhe.CcdpPayload.parse(PAYLOAD_SAMPLES["Ccdp"])
    assert [(p.va, p.pa, p.unknown) for p in ccdp.pairs] == [
        (0xFFFFFA0000000000, 0x8_0000_4000, 1),
        (0x1500000000, 0x9000, 2),
    ]


def test_crtk_ptr_count_is_rebuilt() -> None:
    task = {
        "id": 1,
        "flags": 0x8001,
        "unk0": [1, 2, 3],
        "ptr": 0xFFFFFE0000001000,
        "unk1": [4, 5, 6, 7],
        "name": "rtkit",
        "ptrs": [0xAAA0, 0xBBB0],
    }
    idle = dict(task, id=2, flags=0, unk0=[0, 0, 0], ptr=0, unk1=[0] * 4, name="idle", ptrs=[])
    assert clhe.CrtkPayload.build({"tasks": [task, idle]}) == CRTK_RAW


def test_header_declarations() -> None:
    raw = b"EHLC" + le("III", 1, 0x200, 5) + bytes(16)
    header = clhe.ClheHeader.parse(raw)
    assert (header.version, header.total_size, header.flags) == (1, 0x200, 5)
    assert clhe.ClheHeader.build(header) == raw
    raw = b"rtsC" + bytes(4) + le("II", 3, 0x30)
    entry = clhe.ClheEntryHeader.parse(raw)
    assert (entry.kind, entry.flags, entry.length) == ("Cstr", 3, 0x30)
    assert clhe.ClheEntryHeader.build(entry) == raw


# --- whole crash logs ----------------------------------------------------------------------


def tag(name: bytes) -> bytes:
    """A tag as the firmware writes it: the LE u32 whose value spells ``name`` from its top
    byte (Linux's FOURCC), so the characters land reversed."""
    return struct.pack("<I", int.from_bytes(name, "big"))


def entry_bytes(kind: bytes, payload: bytes, length: int | None = None, flags: int = 0) -> bytes:
    size = 16 + len(payload) if length is None else length
    return tag(kind) + bytes(4) + le("II", flags, size) + payload


def header_bytes(total: int, version: int = 1, flags: int = 0) -> bytes:
    return tag(b"CLHE") + le("III", version, total, flags) + bytes(16)


CLOSING = entry_bytes(b"CLHE", bytes(16))


def sample_log() -> bytes:
    return clhe.build_crashlog(
        [
            ("Cver", PAYLOAD_SAMPLES["Cver"]),
            ("Cstr", {"id": 7, "message": "ASSERT failed: ptr != NULL"}),
            ("Ctim", {"time": 0x0123456789ABCDEF}),
            ("Crg8", CRG8_RAW),
            ("Ccdp", PAYLOAD_SAMPLES["Ccdp"]),
            ("Zzzz", b"\x01\x02\x03"),
        ]
    )


def test_build_crashlog_layout() -> None:
    payload = PAYLOAD_SAMPLES["Cstr"]
    data = clhe.build_crashlog([("Cstr", payload)], version=3, flags=0x10)
    body = entry_bytes(b"Cstr", payload)
    header = header_bytes(32 + len(body) + 32, version=3, flags=0x10)
    assert data == header + body + header  # the closing entry is a copy of the header


def test_tags_are_little_endian_u32s_on_disk() -> None:
    """Linux: FOURCC('C','L','H','E') = 0x434c4845 compared with a native (LE) u32; m1n1's
    FourCC: Int32ul shown big-endian. Both read the bytes "EHLC" as CLHE."""
    data = sample_log()
    assert data[:4] == bytes.fromhex("45484c43") == b"EHLC"
    assert struct.unpack_from("<I", data)[0] == 0x434C4845
    log = clhe.parse_crashlog(data)
    assert log.tag_order == clhe.TAG_ORDER_FIRMWARE and log.warnings == ()
    for entry in log.entries:
        on_disk = data[entry.offset : entry.offset + 4]
        assert on_disk == entry.kind.encode("latin-1")[::-1]  # "rtsC", "8grC", ...
        assert struct.unpack("<I", on_disk)[0].to_bytes(4, "big").decode() == entry.kind
    assert data[log.entries[1].offset : log.entries[1].offset + 4] == b"rtsC"
    assert data[log.entries[3].offset : log.entries[3].offset + 4] == b"8grC"
    assert data[-32:] == data[:32]  # closed by a copy of the header


# What dumpview 0.1.0 wrote: tags in reading order, a closing entry of flags 0, length 0x20.
OLD_DUMPVIEW_LOG = (
    b"CLHE" + le("III", 1, 0x59, 0) + bytes(16)
    + b"Cstr" + bytes(4) + le("II", 0, 0x19) + le("I", 1) + b"oops\0"
    + b"CLHE" + bytes(4) + le("II", 0, 0x20) + bytes(16)
)  # fmt: skip


def test_reading_order_log_is_read_with_a_warning() -> None:
    assert len(OLD_DUMPVIEW_LOG) == 0x59
    log = clhe.parse_crashlog(OLD_DUMPVIEW_LOG)
    assert log.format == "clhe" and log.closed
    assert log.tag_order == clhe.TAG_ORDER_READING
    assert [e.kind for e in log.entries] == ["Cstr"]
    assert clhe.panic_message(log) == "oops"
    assert log.warnings == (clhe.READING_ORDER_WARNING,)
    assert '"CLHE" on disk' in log.warnings[0] and "0.1.0" in log.warnings[0]
    rebuilt = clhe.build_crashlog(
        [("Cstr", {"id": 1, "message": "oops"})], tag_order=clhe.TAG_ORDER_READING
    )
    assert rebuilt == OLD_DUMPVIEW_LOG
    with pytest.raises(ValueError, match="tag order"):
        clhe.build_crashlog([], tag_order="backwards")


def test_walk_stops_at_the_total_size() -> None:
    data = sample_log()
    extra = entry_bytes(b"Cstr", le("I", 9) + b"past the end\0") + bytes(5)
    log = clhe.parse_crashlog(data + extra)
    assert [e.kind for e in log.entries] == [e.kind for e in clhe.parse_crashlog(data).entries]
    assert log.closed
    assert log.warnings == (
        f"{len(extra):#x} bytes past the header's total size {len(data):#x} are not part of "
        "the crash log (not decoded)",
    )
    assert clhe.panic_message(log) == "ASSERT failed: ptr != NULL"
    # A total size that ends inside the entries: the walk stops there, without a closing entry.
    cut = bytearray(data)
    second = clhe.parse_crashlog(data).entries[2].offset  # Ctim starts here
    cut[8:12] = le("I", second)
    log = clhe.parse_crashlog(bytes(cut))
    assert [e.kind for e in log.entries] == ["Cver", "Cstr"]
    assert not log.closed
    assert log.warnings[-1] == "crash log has no closing CLHE entry"
    # A total size smaller than the header itself is ignored (the whole note is walked).
    small = bytearray(data)
    small[8:12] = le("I", 8)
    log = clhe.parse_crashlog(bytes(small))
    assert log.closed and len(log.entries) == 6
    assert "smaller than the header" in log.warnings[0]


def test_text_is_utf8_with_replacement() -> None:
    payload = le("I", 1) + "café ".encode() + b"\xff\xfe" + b"!\0"
    log = clhe.parse_crashlog(clhe.build_crashlog([("Cstr", payload)]))
    assert log.warnings == ()
    assert clhe.panic_message(log) == "café \ufffd\ufffd!"


def test_aarch32_registers() -> None:
    log = clhe.parse_crashlog(clhe.build_crashlog([("CrgA", CRGA_RAW)]))
    regs = clhe.aarch32_registers(log)
    assert regs is not None and regs.r[15] == 0xA00F and regs.psr & 0x1F == 0x13
    assert clhe.registers(log) is None  # no AArch64 set
    short = clhe.parse_crashlog(clhe.build_crashlog([("CrgA", CRGA_RAW[:0x100])]))
    assert clhe.aarch32_registers(short) is None
    assert "payload does not decode" in short.warnings[0]


def test_crashlog_parse_and_rebuild() -> None:
    data = sample_log()
    log = clhe.parse_crashlog(data)
    assert log.format == "clhe"
    assert log.raw == data
    assert (log.version, log.total_size, log.flags) == (1, len(data), 0)
    assert log.closed
    assert log.warnings == ()
    assert [e.kind for e in log.entries] == ["Cver", "Cstr", "Ctim", "Crg8", "Ccdp", "Zzzz"]
    assert log.entries[0].offset == 32
    assert log.entries[1].offset == 32 + 16 + len(PAYLOAD_SAMPLES["Cver"])
    assert log.entries[-1].fields is None
    assert log.entries[-1].payload == b"\x01\x02\x03"
    assert clhe.panic_message(log) == "ASSERT failed: ptr != NULL"
    assert clhe.ccdp_pairs(log) == [
        (0xFFFFFA0000000000, 0x8_0000_4000, 1),
        (0x1500000000, 0x9000, 2),
    ]
    regs = clhe.registers(log)
    assert regs is not None
    assert (regs.pc, regs.far, regs.esr) == (0x2000, 0xDEAD0000, 0x96000045)
    # build -> parse -> build: the decoded fields rebuild the same bytes
    rebuilt = clhe.build_crashlog(
        [(e.kind, dict(e.fields) if e.fields is not None else e.payload) for e in log.entries]
    )
    assert rebuilt == data


def test_helpers_on_log_without_entries() -> None:
    log = clhe.parse_crashlog(clhe.build_crashlog([]))
    assert log.closed and log.entries == () and log.warnings == ()
    assert clhe.panic_message(log) is None
    assert clhe.registers(log) is None
    assert clhe.ccdp_pairs(log) == []


def test_zero_length_entry_stops_walk() -> None:
    good = entry_bytes(b"Ctim", le("Q", 5))
    data = header_bytes(0x70) + good + entry_bytes(b"Cstr", b"", length=0) + bytes(40)
    assert len(data) == 0x70
    log = clhe.parse_crashlog(data)
    assert [e.kind for e in log.entries] == ["Ctim"]
    assert log.entries[0].fields.time == 5
    assert not log.closed
    assert log.warnings == (
        "crash log entry 'Cstr' at offset 0x38: length 0x0 is shorter than the 16-byte "
        "entry header",
    )


def test_short_length_entry_stops_walk() -> None:
    data = header_bytes(0x50) + entry_bytes(b"Cstr", b"", length=15) + CLOSING
    log = clhe.parse_crashlog(data)
    assert log.entries == ()
    assert not log.closed
    assert "length 0xf is shorter than the 16-byte entry header" in log.warnings[0]


def test_length_past_end_stops_walk() -> None:
    data = header_bytes(0x80) + entry_bytes(b"Cstr", bytes(80), length=0x200)
    assert len(data) == 0x80
    log = clhe.parse_crashlog(data)
    assert log.entries == ()
    assert log.warnings == (
        "crash log entry 'Cstr' at offset 0x20: length 0x200 runs past the end of the log "
        "(0x80 bytes)",
    )


def test_missing_closing_entry() -> None:
    data = sample_log()[: -len(CLOSING)]
    log = clhe.parse_crashlog(data)
    assert not log.closed
    assert len(log.entries) == 6
    assert log.warnings == (
        f"crash log header claims {len(data) + 32:#x} bytes but only {len(data):#x} are present",
        "crash log has no closing CLHE entry",
    )


def test_truncated_entry_header() -> None:
    data = sample_log()[: -len(CLOSING) + 5]
    log = clhe.parse_crashlog(data)
    assert not log.closed
    assert len(log.entries) == 6
    assert log.warnings[1] == (
        f"crash log entry header at offset {len(data) - 5:#x} is truncated: "
        "0x5 bytes left, expected 0x10"
    )
    assert log.warnings[-1] == "crash log has no closing CLHE entry"


def test_undecodable_known_payload_is_kept_raw() -> None:
    bad_cstr = le("I", 1) + b"no terminator"
    short_crg8 = bytes(100)
    data = clhe.build_crashlog([("Cstr", bad_cstr), ("Crg8", short_crg8)])
    log = clhe.parse_crashlog(data)
    assert log.closed
    assert [(e.kind, e.fields, e.payload) for e in log.entries] == [
        ("Cstr", None, bad_cstr),
        ("Crg8", None, short_crg8),
    ]
    assert len(log.warnings) == 2
    assert log.warnings[0].startswith("crash log entry 'Cstr' at offset 0x20: payload does not")
    assert clhe.panic_message(log) is None
    assert clhe.registers(log) is None


@pytest.mark.parametrize("data", [b"", b"CLHE", b"CLHE" + bytes(27), b"EHLC", b"EHLC" + bytes(27)])
def test_truncated_header_is_raw(data: bytes) -> None:
    log = clhe.parse_crashlog(data)
    assert log.format == "raw"
    assert log.raw == data
    assert (log.version, log.total_size, log.flags) == (None, None, None)
    assert log.entries == ()
    assert not log.closed
    if data:
        assert "truncated" in log.warnings[0]


def test_non_clhe_data_is_raw() -> None:
    data = b"panic: something went wrong\n" * 4
    log = clhe.parse_crashlog(data)
    assert log.format == "raw"
    assert log.raw == data
    assert log.entries == () and log.warnings == ()


def test_total_size_larger_than_data_is_warned() -> None:
    data = bytearray(sample_log())
    data[8:12] = le("I", 0x10000)
    log = clhe.parse_crashlog(bytes(data))
    assert log.closed
    assert log.total_size == 0x10000
    assert log.warnings == (
        f"crash log header claims 0x10000 bytes but only {len(data):#x} are present",
    )


def test_build_crashlog_errors() -> None:
    with pytest.raises(ValueError, match="4 characters"):
        clhe.build_crashlog([("Cst", b"")])
    with pytest.raises(ValueError, match="no payload declaration"):
        clhe.build_crashlog([("Zzzz", {"a": 1})])
    with pytest.raises(ValueError, match="cannot build 'Ctim' payload"):
        clhe.build_crashlog([("Ctim", {})])


# --- property tests ------------------------------------------------------------------------


def check_log_invariants(data: bytes) -> None:
    log = clhe.parse_crashlog(data)
    assert log.raw == data
    assert log.format in ("clhe", "raw")
    offsets = [e.offset for e in log.entries]
    assert offsets == sorted(set(offsets))
    for entry in log.entries:
        assert len(entry.kind) == 4
        assert entry.offset + 16 + len(entry.payload) <= len(data)
    clhe.panic_message(log)
    clhe.registers(log)
    clhe.ccdp_pairs(log)


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_parse_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    check_log_invariants(data)


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_parse_never_raises_after_clhe_magic(tail: bytes) -> None:
    check_log_invariants(b"EHLC" + tail)
    check_log_invariants(b"CLHE" + tail)


@settings(max_examples=300)
@given(st.data())
def test_parse_never_raises_on_mutated_log(data: st.DataObject) -> None:
    log = bytearray(sample_log())
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        action = data.draw(st.sampled_from(["set", "truncate", "insert", "delete"]))
        if not log:
            break
        index = data.draw(st.integers(min_value=0, max_value=len(log) - 1))
        if action == "set":
            log[index] = data.draw(st.integers(min_value=0, max_value=255))
        elif action == "truncate":
            del log[index:]
        elif action == "insert":
            log[index:index] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            del log[index : index + data.draw(st.integers(min_value=1, max_value=16))]
    check_log_invariants(bytes(log))


u64 = st.integers(min_value=0, max_value=2**64 - 1)
u32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(st.lists(st.tuples(u64, u64, u32), max_size=20))
def test_ccdp_round_trip(pairs: list[tuple[int, int, int]]) -> None:
    payload = b"".join(le("QQI", *pair) for pair in pairs)
    built = clhe.CcdpPayload.build(
        {"pairs": [{"va": v, "pa": p, "unknown": u} for v, p, u in pairs]}
    )
    assert built == payload
    assert clhe.CcdpPayload.build(clhe.CcdpPayload.parse(payload)) == payload
    log = clhe.parse_crashlog(clhe.build_crashlog([("Ccdp", payload)]))
    assert log.closed and log.warnings == ()
    assert clhe.ccdp_pairs(log) == pairs


@given(
    u32,
    st.text(alphabet=st.characters(min_codepoint=1, blacklist_categories=("Cs",)), max_size=200),
)
def test_cstr_round_trip(ident: int, message: str) -> None:
    payload = le("I", ident) + message.encode("utf-8") + b"\0"
    assert clhe.CstrPayload.build({"id": ident, "message": message}) == payload
    assert clhe.CstrPayload.build(clhe.CstrPayload.parse(payload)) == payload
    log = clhe.parse_crashlog(clhe.build_crashlog([("Cstr", {"id": ident, "message": message})]))
    assert log.closed and log.warnings == ()
    assert log.entries[0].fields.id == ident
    assert clhe.panic_message(log) == message
