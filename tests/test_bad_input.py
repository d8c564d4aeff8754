"""Broken dumps: each is one DumpFormatError naming the offset, and through the CLI exactly one
line on stderr with exit code 2, no traceback. The input file is never written.

Offsets are worked out by hand from the ELF layout: e_ident at 0 (class at 4, data at 5),
e_machine at 18, e_phoff at 32, e_shoff at 40, e_phnum at 56; program headers from 64, 56 bytes
each; the default factory dump has 5 of them (PT_NOTE + 4 PT_LOAD), so its notes start at
64 + 5 * 56 = 0x158.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dumpview.model import DumpFormatError, open_dump
from dumpview.model.text import info_dict
from dumpview.sim.writer import HoleInfo
from formats import ext
from tests import factory
from tests.factory import BASE_VA, PAGE

PHOFF = 64
PHDR = 56
NOTE_OFFSET = PHOFF + 5 * PHDR  # 0x158


def phdr_at(index: int) -> int:
    return PHOFF + index * PHDR


def put(raw: bytearray, offset: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, raw, offset, value)


def truncated_header(raw: bytearray) -> bytearray:
    return raw[:40]


def wrong_magic(raw: bytearray) -> bytearray:
    raw[1:4] = b"ELG"
    return raw


def wrong_class(raw: bytearray) -> bytearray:
    raw[4] = 1  # ELFCLASS32
    return raw


def wrong_byte_order(raw: bytearray) -> bytearray:
    raw[5] = 2  # ELFDATA2MSB
    return raw


def wrong_machine(raw: bytearray) -> bytearray:
    put(raw, 18, "<H", 62)  # EM_X86_64
    return raw


def phnum_past_eof(raw: bytearray) -> bytearray:
    put(raw, 56, "<H", 0x2000)  # 8192 * 56 bytes from 64: far past the 64 KiB file
    return raw


def segment_data_past_eof(raw: bytearray) -> bytearray:
    put(raw, phdr_at(2) + 8, "<Q", len(raw) - 0x100)  # p_offset of the second PT_LOAD
    return raw


def overlapping_loads(raw: bytearray) -> bytearray:
    # The second PT_LOAD (1 page) moves into the first (2 pages at BASE_VA).
    put(raw, phdr_at(2) + 16, "<Q", BASE_VA + PAGE)
    return raw


def notes_overrun(raw: bytearray) -> bytearray:
    # PT_NOTE p_filesz 60: the 72-byte AGX note (the first one) no longer fits.
    put(raw, phdr_at(0) + 32, "<Q", 60)
    return raw


def pn_xnum_without_section_zero(raw: bytearray) -> bytearray:
    put(raw, 56, "<H", 0xFFFF)
    put(raw, 40, "<Q", 0)  # e_shoff
    return raw


# name -> (mutation of the default factory dump, the offset the error must name)
MUTATIONS: dict[str, tuple[Callable[[bytearray], bytearray], int]] = {
    "truncated-header": (truncated_header, 0),
    "wrong-magic": (wrong_magic, 0),
    "wrong-class": (wrong_class, 4),
    "wrong-byte-order": (wrong_byte_order, 5),
    "wrong-machine": (wrong_machine, 18),
    "phnum-past-eof": (phnum_past_eof, PHOFF),
    "segment-data-past-eof": (segment_data_past_eof, phdr_at(2)),
    "overlapping-loads": (overlapping_loads, phdr_at(2)),
    "notes-overrun": (notes_overrun, NOTE_OFFSET),
    "pn-xnum-without-section-0": (pn_xnum_without_section_zero, 56),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = factory.build_dump(tmp_path_factory.mktemp("good") / "good.dump")
    raw = path.read_bytes()
    # The layout the offsets above assume.
    assert struct.unpack_from("<QHH", raw, 32)[0] == PHOFF
    assert struct.unpack_from("<H", raw, 56)[0] == 5
    assert struct.unpack_from("<Q", raw, phdr_at(0) + 8)[0] == NOTE_OFFSET
    return raw


def bad_file(tmp_path: Path, good: bytes, name: str) -> tuple[Path, int]:
    mutate, offset = MUTATIONS[name]
    path = tmp_path / f"{name}.dump"
    path.write_bytes(bytes(mutate(bytearray(good))))
    return path, offset


def wrong_agx_note_size(tmp_path: Path) -> tuple[Path, int]:
    notes = [("AGX", 1, bytes(48)), factory.crashlog_note()]
    path = factory.build_dump(tmp_path / "agx48.dump", notes=notes)
    return path, NOTE_OFFSET + 12 + 4  # the descriptor, after the header and "AGX\0"


def load_everything(path: Path) -> None:
    """Open the dump and compute what ``dumpview info`` shows."""
    with open_dump(path) as dump:
        info_dict(dump)
        list(dump.notes)


def check_model(path: Path, offset: int) -> DumpFormatError:
    with pytest.raises(DumpFormatError) as info:
        load_everything(path)
    assert info.value.offset == offset, str(info.value)
    assert f"{offset:#x}" in str(info.value)
    return info.value


def check_cli(path: Path, offset: int) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", "info", str(path)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert f"{offset:#x}" in lines[0]
    assert str(path) in lines[0]
    assert proc.stdout == b""
    return lines[0]


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_bad_dump(tmp_path: Path, good_bytes: bytes, name: str) -> None:
    path, offset = bad_file(tmp_path, good_bytes, name)
    before = sha256(path)
    check_model(path, offset)
    check_cli(path, offset)
    assert sha256(path) == before


def test_agx_note_of_the_wrong_size(tmp_path: Path) -> None:
    path, offset = wrong_agx_note_size(tmp_path)
    before = sha256(path)
    error = check_model(path, offset)
    assert "56" in str(error)
    line = check_cli(path, offset)
    assert "56" in line
    assert sha256(path) == before


def test_messages_say_what_was_expected(tmp_path: Path, good_bytes: bytes) -> None:
    expectations = {
        "wrong-magic": "7f 45 4c 46",
        "wrong-class": "ELFCLASS64",
        "wrong-byte-order": "little-endian",
        "wrong-machine": "183",
        "pn-xnum-without-section-0": "section header 0",
        "overlapping-loads": "overlaps",
    }
    for name, expected in expectations.items():
        path, offset = bad_file(tmp_path, good_bytes, name)
        assert expected in str(check_model(path, offset)), name


def test_an_empty_file_and_a_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dump"
    empty.write_bytes(b"")
    check_model(empty, 0)
    check_cli(empty, 0)
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", "info", str(tmp_path / "missing.dump")],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.decode().splitlines()) == 1
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["read", "vtop"])
def test_bad_address_syntax(tmp_path: Path, good_bytes: bytes, command: str) -> None:
    path = tmp_path / "good.dump"
    path.write_bytes(good_bytes)
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", command, str(path), "0xfffffga0"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "0xfffffga0" in lines[0]
    assert b"Traceback" not in proc.stderr
    assert proc.stdout == b""


# ---- the extension -------------------------------------------------------------------------


def extension_dump(tmp_path: Path) -> tuple[Path, int]:
    """A dump with the extension (one hole record); returns it and the .dumpview offset."""
    pages = [(BASE_VA, 0x8_0000_0000, "FW_PRIV_RW", False)]
    holes = [HoleInfo(BASE_VA, PAGE, ext.REASON_BORROW_REFUSED)]
    path, _, _ = factory.build_dump_with_tables(tmp_path / "ext.dump", pages, holes=holes)
    raw = path.read_bytes()
    (e_shoff,) = struct.unpack_from("<Q", raw, 40)
    (e_shnum,) = struct.unpack_from("<H", raw, 60)
    for i in range(e_shnum):
        (sh_type,) = struct.unpack_from("<I", raw, e_shoff + i * 64 + 4)
        if sh_type == ext.SHT_DUMPVIEW:
            return path, struct.unpack_from("<Q", raw, e_shoff + i * 64 + 24)[0]
    raise AssertionError("no .dumpview section")


def test_extension_directory_running_past_its_section(tmp_path: Path) -> None:
    path, section = extension_dump(tmp_path)
    raw = bytearray(path.read_bytes())
    put(raw, section + 12, "<I", 1000)  # directory_count
    path.write_bytes(raw)
    before = sha256(path)
    check_model(path, section)
    line = check_cli(path, section)  # construct's two-line message arrives as one line
    assert "directory" in line
    assert sha256(path) == before


def test_extension_record_count_not_filling_its_array(tmp_path: Path) -> None:
    path, section = extension_dump(tmp_path)
    raw = bytearray(path.read_bytes())
    (count,) = struct.unpack_from("<I", raw, section + 12)
    for i in range(count):
        entry = section + 16 + 24 * i
        if struct.unpack_from("<I", raw, entry)[0] == ext.KIND_HOLES:
            put(raw, entry + 4, "<I", 2)  # two holes claimed, one stored
            hole_offset = section + struct.unpack_from("<Q", raw, entry + 8)[0]
            break
    else:
        raise AssertionError("no holes directory entry")
    path.write_bytes(raw)
    # Found when the dump is opened, not when a read first needs the holes.
    with pytest.raises(DumpFormatError) as info:
        open_dump(path).close()
    assert info.value.offset == hole_offset
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", "read", str(path), hex(BASE_VA)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.decode().splitlines()) == 1
    assert f"{hole_offset:#x}" in proc.stderr.decode()


def test_dump_format_error_is_always_one_line() -> None:
    error = DumpFormatError(0x40, "Error in path (parsing) -> x\nstream read less than expected\n")
    assert "\n" not in str(error)
    assert str(error) == "offset 0x40: Error in path (parsing) -> x; stream read less than expected"


# ---- lazily found errors through the other commands ----------------------------------------


@pytest.mark.parametrize("case", ["agx-note-size", "notes-overrun"])
def test_vtop_on_a_dump_with_bad_notes_exits_2(
    tmp_path: Path, good_bytes: bytes, case: str
) -> None:
    if case == "agx-note-size":
        path, offset = wrong_agx_note_size(tmp_path)
    else:
        path, offset = bad_file(tmp_path, good_bytes, "notes-overrun")
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", "vtop", str(path), hex(BASE_VA)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert b"Traceback" not in proc.stderr
    assert proc.returncode == 2
    assert len(proc.stderr.decode().splitlines()) == 1
    assert f"{offset:#x}" in proc.stderr.decode()
