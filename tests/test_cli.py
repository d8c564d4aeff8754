"""The command line, run as users run it: in a subprocess, checking stdout, stderr and the exit
code. Expected values come from the factory's inputs and the issue's wording, not from the
CLI's own output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests import factory
from tests.factory import BASE_VA, PAGE, page_bytes

MMIO_VA = BASE_VA + 0x10_0000
INITDATA = 0xFFFF_FFA0_00AB_C000  # hex letters: the JSON must spell them in lowercase


def run(*args: str, check_clean: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if check_clean:
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def stderr_lines(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    return proc.stderr.decode().splitlines()


@pytest.fixture(scope="module")
def dump_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    notes = [factory.agx_note(initdata_address=INITDATA), factory.crashlog_note()]
    return factory.build_dump(tmp_path_factory.mktemp("cli") / "cli.dump", notes=notes)


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"dumpview, version {version('dumpview')}"
    assert proc.stderr == b""


# ---- info ----------------------------------------------------------------------------------


def test_info_json_keys_and_values(dump_path: Path) -> None:
    proc = run("info", str(dump_path), "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    doc = json.loads(proc.stdout)
    assert doc["layout"] == "agx-devcoredump"
    assert doc["extension"] is False
    assert doc["entry_format"] == "uat"
    assert doc["segments"] == 4
    assert doc["tables"] == 0
    assert doc["pages"] == {"total": 5, "dumped": 3, "not_dumped": 2}
    assert doc["gpu"] == {
        "chip_id": "0x6000",
        "generation": "G13",
        "variant": "C",
        "revision": "B1",
        "cores": 8,
        "firmware_version": "13.5.2",
        "initdata_address": "0xffffffa000abc000",
    }
    assert doc["crashlog"] == {
        "size": len(factory.crashlog_note()[2]),
        "format": "clhe",
        "tag_order": "firmware",
        "entries": 1,
        "panic": "test panic",
        "fault": None,
        "ccdp": None,
    }
    assert doc["crashlog"]["size"] == 95  # 32-byte header + Cstr entry (31) + closing entry (32)


def walk_strings(node: object, key: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in walk_strings(v, k)]
    if isinstance(node, list):
        return [p for v in node for p in walk_strings(v, key)]
    return [(key, node)] if isinstance(node, str) else []


def test_info_json_addresses_are_lowercase_hex_strings(dump_path: Path) -> None:
    doc = json.loads(run("info", str(dump_path), "--json").stdout)
    hexlike = [(k, v) for k, v in walk_strings(doc) if v[:2].lower() == "0x"]
    assert ("initdata_address", "0xffffffa000abc000") in hexlike
    for key, value in hexlike:
        assert re.fullmatch(r"0x[0-9a-f]+", value), (key, value)


def test_info_json_nulls_without_notes(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "bare.dump", notes=[])
    doc = json.loads(run("info", str(path), "--json").stdout)
    assert doc["gpu"] is None
    assert doc["crashlog"] is None
    assert doc["pages"] == {"total": 5, "dumped": 3, "not_dumped": 2}


def test_info_json_raw_crashlog_unknown_values_and_long_firmware(tmp_path: Path) -> None:
    notes = [
        factory.agx_note(
            gpu_gen=14, gpu_variant=ord("S"), gpu_rev=0x20, firmware_version=[12, 3, 0, 1, 0, 0]
        ),
        ("RTKIT", 1, b"not a CLHE log"),
    ]
    path = factory.build_dump(tmp_path / "raw.dump", notes=notes)
    doc = json.loads(run("info", str(path), "--json").stdout)
    assert doc["crashlog"] == {
        "size": 14,
        "format": "raw",
        "tag_order": None,
        "entries": 0,
        "panic": None,
        "fault": None,
        "ccdp": None,
    }
    gpu = doc["gpu"]
    assert (gpu["generation"], gpu["variant"], gpu["revision"]) == ("G14", "S", "C0")
    assert gpu["firmware_version"] == "12.3.0.1"


def test_info_json_with_the_extension(tmp_path: Path) -> None:
    pages = [
        (BASE_VA, 0x8_0000_0000, "FW_PRIV_RW", True),
        (BASE_VA + 0x200_0000, 0x8_0004_0000, "GPU_SHARED_RW", False),
    ]
    path, _, _ = factory.build_dump_with_tables(tmp_path / "ext.dump", pages)
    doc = json.loads(run("info", str(path), "--json").stdout)
    assert doc["extension"] is True
    assert doc["entry_format"] == "uat"
    assert doc["tables"] == 4  # TTB, one L2 table, two L3 tables
    assert doc["pages"] == {"total": 2, "dumped": 1, "not_dumped": 1}


def test_info_text(dump_path: Path) -> None:
    proc = run("info", str(dump_path))
    assert proc.returncode == 0
    assert proc.stderr == b""
    text = proc.stdout.decode()
    assert "agx-devcoredump" in text
    assert re.search(r"\b4 PT_LOAD\b", text)
    assert re.search(r"\b5 mapped, 3 dumped, 2 not dumped\b", text)
    assert "0x6000" in text and "13.5.2" in text and "0xffffffa000abc000" in text
    assert "clhe" in text


def test_info_warns_about_an_unknown_extension_version(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "v9.dump", extension=factory.uat_extension(version=9))
    proc = run("info", str(path))
    assert proc.returncode == 0
    lines = stderr_lines(proc)
    assert len(lines) == 1
    assert "warning" in lines[0] and "version 9" in lines[0]
    assert "dumpview extension" not in proc.stdout.decode()


# ---- read ----------------------------------------------------------------------------------

HEX_LINE = re.compile(r"^([0-9a-f]{16})  ((?:[0-9a-f]{2} ){0,15}[0-9a-f]{2}) *  \|(.*)\|$")


def parse_hexdump(text: str) -> list[tuple[int, bytes, str]]:
    rows = []
    for line in text.splitlines():
        m = HEX_LINE.match(line)
        assert m, f"not a hexdump line: {line!r}"
        rows.append((int(m.group(1), 16), bytes.fromhex(m.group(2)), m.group(3)))
    return rows


def printable(data: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)


def test_read_hexdump(dump_path: Path) -> None:
    va = BASE_VA + PAGE + 8
    proc = run("read", str(dump_path), hex(va), "40")
    assert proc.returncode == 0, proc.stderr
    rows = parse_hexdump(proc.stdout.decode())
    expected = page_bytes(0x8_0000_4000)[8:48]
    assert [r[0] for r in rows] == [va, va + 16, va + 32]
    assert b"".join(r[1] for r in rows) == expected
    assert [len(r[1]) for r in rows] == [16, 16, 8]
    assert [r[2] for r in rows] == [printable(expected[i : i + 16]) for i in (0, 16, 32)]
    assert rows[0][2].startswith("dumpview")  # the stamp's text starts at byte 8


def test_read_raw_bytes_across_segments(dump_path: Path) -> None:
    va = BASE_VA + 2 * PAGE - 100
    proc = run("read", "--raw", str(dump_path), hex(va), "300")
    assert proc.returncode == 0
    assert proc.stdout == page_bytes(0x8_0000_4000)[-100:] + page_bytes(0x8_0010_0000)[:200]


def test_read_default_size_is_256(dump_path: Path) -> None:
    proc = run("read", "--raw", str(dump_path), hex(BASE_VA))
    assert proc.stdout == page_bytes(0x8_0000_0000)[:256]


def test_addresses_accept_hex_and_decimal(dump_path: Path) -> None:
    va = BASE_VA + 0x20
    by_hex = run("read", "--raw", str(dump_path), f"{va:#x}", "0x20")
    by_dec = run("read", "--raw", str(dump_path), str(va), "32")
    upper = run("read", "--raw", str(dump_path), f"0X{va:X}", "0x20")
    assert by_hex.returncode == by_dec.returncode == upper.returncode == 0
    assert by_hex.stdout == by_dec.stdout == upper.stdout == page_bytes(0x8_0000_0000)[0x20:0x40]


def test_read_not_dumped_exits_1_with_a_marked_line(dump_path: Path) -> None:
    proc = run("read", str(dump_path), hex(MMIO_VA + 0x10), "16")
    assert proc.returncode == 1
    # No bytes, no zeros: one marked line naming the address, the size and the reason.
    assert proc.stdout.decode().splitlines() == [
        f"{MMIO_VA + 0x10:016x}  ** 16 bytes not dumped: device-memory (memattr 1 (device)) **"
    ]
    lines = stderr_lines(proc)
    assert len(lines) == 1
    assert f"{MMIO_VA + 0x10:#x}" in lines[0]
    assert "not dumped" in lines[0]


def test_read_unmapped_exits_1_with_a_marked_line(dump_path: Path) -> None:
    proc = run("read", str(dump_path), hex(BASE_VA + 0x10000))
    assert proc.returncode == 1
    out = proc.stdout.decode().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{BASE_VA + 0x10000:016x}  ** 256 bytes not mapped: ")
    assert "the walk stopped at L3" in out[0]
    assert len(stderr_lines(proc)) == 1


# ---- vtop ----------------------------------------------------------------------------------


def test_vtop_mapped(dump_path: Path) -> None:
    va = BASE_VA + PAGE + 0x123
    proc = run("vtop", str(dump_path), hex(va))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 4
    # One line per level: level, table PA (rebuilt here), index, entry, decoded.
    for line, level, index in zip(lines[:3], (1, 2, 3), (2, 0, 1), strict=True):
        assert line.startswith(f"L{level} ")
        assert re.search(rf"\[\s*{index}\]", line), line
        assert "rebuilt" in line
    # The leaf entry, rebuilt by hand: FW_PRIV_RW (AP1, UXN, bit 55, AF) | PA 0x8_0000_4000.
    entry = (1 << 55) | (1 << 54) | (1 << 6) | (1 << 10) | 0x8_0000_4000
    assert f"{entry:#018x}" in lines[2]
    assert "not recorded" in lines[2]  # nG
    assert "0x800004123" in lines[3]
    assert "RW" in lines[3]


def test_vtop_with_real_tables(tmp_path: Path) -> None:
    pages = [(BASE_VA + 0x200_0000, 0x8_0004_0000, "GPU_SHARED_RW", True)]
    path, leaves, _ = factory.build_dump_with_tables(tmp_path / "t.dump", pages)
    proc = run("vtop", str(path), str(BASE_VA + 0x200_0010))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert [ln[:2] for ln in lines[:3]] == ["L1", "L2", "L3"]
    assert "0x000700000000" in lines[0]  # the TTB's PA
    assert f"{leaves[BASE_VA + 0x200_0000]:#018x}" in lines[2]
    assert "0x800040010" in lines[3]


@pytest.mark.parametrize(
    ("va", "level"),
    [(BASE_VA + 0x10000, 3), (BASE_VA + 0x400_0000, 2), (BASE_VA + (64 << 30), 1)],
)
def test_vtop_unmapped_exits_1_naming_the_stop_level(dump_path: Path, va: int, level: int) -> None:
    proc = run("vtop", str(dump_path), hex(va))
    assert proc.returncode == 1
    lines = stderr_lines(proc)
    assert len(lines) == 1
    assert f"L{level}" in lines[0]
    assert f"{va:#x}" in lines[0]
    out = proc.stdout.decode().splitlines()
    assert [ln[:2] for ln in out] == [f"L{n}" for n in range(1, level + 1)]


@pytest.mark.parametrize("bad", ["0xZZ", "12ab", "hello", "0x1_0000_0000_0000_0000"])
def test_bad_address_syntax_exits_2_with_one_line(dump_path: Path, bad: str) -> None:
    proc = run("vtop", str(dump_path), bad)
    assert proc.returncode == 2
    assert proc.stdout == b""
    lines = stderr_lines(proc)
    assert len(lines) == 1, lines
    assert bad in lines[0]
