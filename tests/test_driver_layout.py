"""The driver layout byte for byte: a small address space placed by hand, walked and written by
the simulator, checked against program headers worked out by hand from the rules of
crashdump.rs / pgtable.rs (reference sheet section 3), and every scenario's
``--driver-layout`` dump checked against the same rules.

The rules pinned here:
- PT_NOTE first: p_flags R, p_align 1, p_offset/p_filesz set, everything else 0 (p_memsz 0);
- page data starts at ``align(note_offset + notes, 16 KiB)`` (a round-up: no extra page when
  the notes end on a boundary);
- one PT_LOAD per run (VA+16K, p_paddr+16K, same p_flags, same has-data); runs with data take
  consecutive offsets from the data start, runs without data have p_offset = the data start;
- p_flags: ELF RWX from the firmware view, bits 8-19 the PTE's AP and memattr with AF always
  1 (so an entry with AF clear never splits a run), bits 20-31 PTE bits 52-63;
- p_paddr is the entry's bits 51:14, but whether a page has data, and the bytes, come from
  ``pte & OAS mask``;
- the walk covers 0xffffff80_00000000 up to, not including, the last 16 KiB page.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

import dumpview
from dumpview.sim.asahi import RAM_BASE
from dumpview.sim.firmware import FW_CODE_RX
from dumpview.sim.scenarios import KERNEL_WALK_END, SCENARIOS, Builder, generate_file
from dumpview.sim.writer import write_core
from formats import agx, clhe, elf, uat

PAGE = uat.PAGE_SIZE
V = 0xFFFF_FFA0_0000_0000  # the driver's PRIV range
FW_VA = 0xFFFF_FF80_0000_0000  # the firmware's part of the kernel context
TOP_PAGE = (1 << 64) - PAGE  # 0xffffffff_ffffc000: never walked
R0 = RAM_BASE + 0x800_0000  # free RAM of the simulated machine
BEYOND = 1 << 42  # a bit at the t600x OAS
MARKER = b"read from the OAS-masked PA\n"


def _prot(name: str) -> int:
    return uat.PROTS[name].bits | uat.PTE_PAGE


def _hand_placed_dump(path: Path) -> tuple[int, bytes, bytes]:
    """A machine with only hand-placed leaves, walked and written as generate does;
    returns (the carveout's PA, the notes' bytes, the crash log)."""
    builder = Builder("minimal", 0, {})
    k, memory = builder.m.kernel, builder.m.memory
    carveout = builder.regions["fw-carveout"].base
    builder.m.firmware.map(FW_VA, R0 + 0x30000, PAGE, FW_CODE_RX)
    k.raw_write_leaf(V, R0 | _prot("FW_PRIV_RW"))
    k.raw_write_leaf(V + PAGE, (R0 + PAGE) | _prot("FW_PRIV_RW") & ~uat.BIT_AF)  # AF clear
    k.raw_write_leaf(V + 2 * PAGE, (R0 + 2 * PAGE) | _prot("FW_MMIO_RW"))  # device: no data
    k.raw_write_leaf(V + 3 * PAGE, carveout | _prot("FW_PRIV_RW"))  # no-map: borrow refused
    for i in (4, 5):  # bit 42 set: p_paddr keeps it, the walker reads the masked PA
        k.raw_write_leaf(V + i * PAGE, BEYOND | (R0 + i * PAGE) | _prot("FW_PRIV_RW"))
    memory.write(R0 + 4 * PAGE, MARKER)
    k.raw_write_leaf(TOP_PAGE, (R0 + 0x40000) | _prot("FW_PRIV_RW"))  # the last page
    log = clhe.build_crashlog([("Cstr", {"id": 0, "message": "golden"})])
    info = agx.build_agx_info(
        initdata_address=V,
        chip_id=0x6000,
        gpu_gen=13,
        gpu_variant=ord("C"),
        gpu_rev=0x11,
        total_active_cores=8,
        firmware_version=[13, 5, 0, 0, 0, 0],
    )
    notes = [("AGX", 1, info), ("RTKIT", 1, log)]
    walk = builder.walk()
    with path.open("wb") as fp:
        write_core(
            fp,
            walk.segments,
            builder.read_data,
            notes,
            data_pa_mask=(1 << 42) - 1,
        )
    return carveout, b"".join(elf.build_note(*note) for note in notes), log


def test_golden_program_headers(tmp_path: Path) -> None:
    path = tmp_path / "golden.dump"
    carveout, note_bytes, log = _hand_placed_dump(path)
    # Worked out by hand. Notes: AGX = 12 + 4 ("AGX\0") + 56; RTKIT = 12 + 8 ("RTKIT\0"
    # padded) + the log padded to 4.
    assert len(note_bytes) == (12 + 4 + 56) + (12 + 8 + -(-len(log) // 4) * 4)
    phnum = 1 + 5
    note_offset = 64 + phnum * 56
    data_start = -(-(note_offset + len(note_bytes)) // PAGE) * PAGE
    assert data_start == 0x4000
    fw_rx = 0x5 | (0x480 << 8)  # RX; AP2 | AF; bits 52-63 zero (firmware only)
    priv_rw = 0x6 | (0x440 << 8) | (0x00C << 20)  # RW; AP1 | AF; bit 55 + UXN
    mmio_rw = 0x6 | (0x444 << 8) | (0x00C << 20)  # RW; AP1 | AF | memattr 1
    golden = [
        # (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align)
        (elf.PT_NOTE, elf.PF_R, note_offset, 0, 0, len(note_bytes), 0, 1),
        (elf.PT_LOAD, fw_rx, data_start, FW_VA, R0 + 0x30000, PAGE, PAGE, PAGE),
        # Two pages: the second's AF is clear, which p_flags cannot say, so one run.
        (elf.PT_LOAD, priv_rw, data_start + PAGE, V, R0, 2 * PAGE, 2 * PAGE, PAGE),
        # Device memory: no data, p_offset = the data start.
        (elf.PT_LOAD, mmio_rw, data_start, V + 2 * PAGE, R0 + 2 * PAGE, 0, PAGE, PAGE),
        # The no-map carveout: borrow_phys refuses it, no data.
        (elf.PT_LOAD, priv_rw, data_start, V + 3 * PAGE, carveout, 0, PAGE, PAGE),
        # p_paddr keeps bit 42; the data comes from the OAS-masked PA (RAM).
        (
            elf.PT_LOAD,
            priv_rw,
            data_start + 3 * PAGE,
            V + 4 * PAGE,
            BEYOND | (R0 + 4 * PAGE),
            2 * PAGE,
            2 * PAGE,
            PAGE,
        ),
        # (No PT_LOAD for 0xffffffff_ffffc000: the walk ends below the last page.)
    ]
    raw = path.read_bytes()
    ehdr = elf.Elf64_Ehdr.parse(raw[:64])
    assert (ehdr.e_type, ehdr.e_machine, ehdr.e_entry) == (elf.ET_CORE, elf.EM_AARCH64, FW_VA)
    assert (ehdr.e_phoff, ehdr.e_phnum, ehdr.e_shoff, ehdr.e_shnum) == (64, phnum, 0, 0)
    got = [struct.unpack_from("<IIQQQQQQ", raw, 64 + i * 56) for i in range(phnum)]
    assert got == golden
    assert raw[note_offset : note_offset + len(note_bytes)] == note_bytes
    assert raw[note_offset + len(note_bytes) : data_start] == bytes(
        data_start - note_offset - len(note_bytes)
    )
    assert len(raw) == data_start + 5 * PAGE
    beyond = data_start + 3 * PAGE
    assert raw[beyond : beyond + len(MARKER)] == MARKER
    # An independent reader agrees, and the model reads the masked PA's bytes.
    with path.open("rb") as f:
        segments = list(ELFFile(f).iter_segments())
        assert (segments[0]["p_type"], segments[0]["p_memsz"]) == ("PT_NOTE", 0)
    with dumpview.open_dump(path) as dump:
        page = dump.page(V + 4 * PAGE)
        assert (page.pa, page.pa_raw, page.dumped) == (R0 + 4 * PAGE, BEYOND | R0 + 4 * PAGE, True)
        assert bytes(dump.read_pa(R0 + 4 * PAGE, len(MARKER))) == MARKER
        assert dump.translate(TOP_PAGE).stopped_level is not None
        second = dump.translate(V + PAGE).leaf
        assert second.af is None and {f.name for f in second.fields if not f.recorded} >= {
            "af",
            "type",
        }


def test_data_start_is_a_round_up(tmp_path: Path) -> None:
    """Notes that end exactly on a 16 KiB boundary add no page before the data."""
    from dumpview.sim.writer import SegmentTable

    segments = SegmentTable.from_rows([(V, R0, PAGE, 0x00C44006, True)])
    note_offset = 64 + 2 * 56
    desc = bytes(PAGE - note_offset - 12 - 8)  # header, "RTKIT\0" padded to 8, descriptor
    path = tmp_path / "aligned.dump"
    with path.open("wb") as fp:
        write_core(fp, segments, lambda pa, size: bytes([7]) * size, [("RTKIT", 1, desc)])
    raw = path.read_bytes()
    load = struct.unpack_from("<IIQQQQQQ", raw, 64 + 56)
    assert load[2] == PAGE  # p_offset: exactly where the notes end
    assert raw[PAGE : PAGE + 4] == b"\x07" * 4 and len(raw) == 2 * PAGE


DRIVER_SCENARIOS = [name for name in SCENARIOS if name != "large"]


@pytest.mark.parametrize("name", [*DRIVER_SCENARIOS, "large"])
def test_every_scenario_driver_layout_follows_the_rules(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.dump"
    knobs = {"mapped_mib": 4, "scatter": True, "dumped_percent": 50} if name == "large" else {}
    generate_file(path, scenario=name, seed=2, knobs=knobs, driver_layout=True)
    raw = path.read_bytes()
    ehdr = elf.Elf64_Ehdr.parse(raw[:64])
    rows = [struct.unpack_from("<IIQQQQQQ", raw, 64 + i * 56) for i in range(ehdr.e_phnum)]
    note, loads = rows[0], rows[1:]
    assert note[0] == elf.PT_NOTE and note[1] == elf.PF_R and note[7] == 1
    assert (note[3], note[4], note[6]) == (0, 0, 0)  # vaddr, paddr, memsz: never set
    data_start = -(-(note[2] + note[5]) // PAGE) * PAGE
    offset = data_start
    previous = None
    for p_type, flags, p_offset, va, pa, filesz, memsz, align in loads:
        assert (p_type, align) == (elf.PT_LOAD, PAGE)
        assert flags & (uat.BIT_AF << 8), "AF is always 1 in the driver's p_flags"
        assert flags & ((0x3 | 0x300 | 0x800 | 0x20) << 8) == 0  # type, SH, nG, bit 5: 0
        assert va + memsz <= KERNEL_WALK_END and va >= FW_VA
        if filesz:
            assert (p_offset, filesz) == (offset, memsz)
            offset += filesz
        else:
            assert p_offset == data_start
        if previous is not None:  # a run ends only where VA, PA, flags or has-data break
            p_va, p_pa, p_memsz, p_flags, p_data = previous
            assert (va, pa, flags, bool(filesz)) != (
                p_va + p_memsz,
                p_pa + p_memsz,
                p_flags,
                p_data,
            )
        previous = (va, pa, memsz, flags, bool(filesz))
    assert len(raw) == offset  # nothing after the page data in a driver dump
