"""What the real driver and firmware write, read back on real bytes: the crash log in the
firmware's tag order (and the old reading order, with a warning) through info, export and the
crash-log sections; one PA everywhere (``pa`` the walker's, ``pa_raw`` the entry's) in the API,
the commands and the export; entries decoded by what they are; the firmware's fault status
checked against the dump's walk; where m1n1 reads an entry differently."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import factory
import jsonschema
import pytest

import dumpview
from dumpview.model.crash import compare_fault, crashlog_sections, decode_esr
from dumpview.model.entries import decode_entry, source_notes
from dumpview.model.export import schema
from dumpview.sim.asahi import FAULT_OA_BEYOND_OAS_VA
from dumpview.sim.scenarios import RANGES
from formats import clhe, entryformat, lpae, uat

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
BAD_L2_FAR = RANGES["SHARED_RO"][0] + 0x8000_0000 + 0x20  # the faults scenario's FAR
BEYOND = 1 << 42


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args], capture_output=True, text=True
    )


def export_records(path: Path, include: str) -> list[dict]:
    with dumpview.open_dump(path) as dump:
        out = io.StringIO()
        dump.export(out, include=include)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    validator = jsonschema.Draft202012Validator(schema())
    for line in lines:
        validator.validate(line)
    return lines[1:-1]


# ---- the crash log as the firmware writes it ---------------------------------------------------


def test_sample_crash_logs_are_in_the_firmware_tag_order() -> None:
    for name in ("minimal", "minimal-driver", "faults", "user-contexts"):
        with dumpview.open_dump(SAMPLES / f"{name}.dump") as dump:
            (note,) = [n for n in dump.notes if n.name == "RTKIT"]
            raw = bytes(note.desc)
            assert raw[:4] == b"EHLC" and b"rtsC" in raw and b"8grC" in raw and b"pdcC" in raw
            assert raw[-32:] == raw[:32]  # closed by a copy of the header
            log = dump.crashlog
            assert log.tag_order == clhe.TAG_ORDER_FIRMWARE and log.warnings == ()
            assert clhe.panic_message(log).startswith("GPU firmware panic: page fault at")


def test_info_shows_panic_fault_and_ccdp() -> None:
    proc = cli("info", str(SAMPLES / "faults.dump"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "panic        GPU firmware panic: page fault at 0xffffffaa80000020 (data abort)" in out
    assert "fault        FAR 0xffffffaa80000020, PC 0xffffff8000001a40, ESR 0x96000007" in out
    assert "translation fault, level 3: the tables DISAGREE: the dump's walk stops at L2" in out
    assert "ccdp         4 pairs, 1 disagree with the tables" in out
    doc = json.loads(cli("info", "--json", str(SAMPLES / "minimal.dump")).stdout)
    log = doc["crashlog"]
    assert (log["format"], log["tag_order"], log["entries"]) == ("clhe", "firmware", 8)
    assert log["fault"]["fault_status"] == "permission fault, level 3"
    assert log["fault"]["walk_agrees"] is True
    assert log["ccdp"] == {"pairs": 4, "disagree": 0}


def test_export_crashlog_has_registers_ccdp_and_the_fault_comparison() -> None:
    (record,) = export_records(SAMPLES / "faults.dump", "crashlog")
    assert (record["tag_order"], record["total_size"]) == ("firmware", record["size_bytes"])
    kinds = [e["type"] for e in record["entries"]]
    assert kinds == ["Cver", "Cstr", "Ctim", "Crg8", "Ccst", "Cmbx", "Crtk", "Ccdp"]
    crg8 = record["entries"][3]["fields"]
    assert (crg8["far"], crg8["esr"]) == (f"{BAD_L2_FAR:#x}", "0x96000007")
    assert len(crg8["x"]) == 31
    esr = record["esr"]
    assert (esr["fault_status"], esr["fault_level"], esr["walk_agrees"]) == (
        "translation fault, level 3",
        3,
        False,
    )
    assert "stops at L2" in esr["walk_note"] and esr["far_pa"] is None
    assert [c["agree"] for c in record["ccdp"]] == [True, True, True, False]
    titles = [s["title"] for s in record["sections"]]
    assert titles[:5] == ["Panic", "Crash log", "Registers", "Exception", "Fault address"]


def test_a_dump_with_a_reading_order_log_says_so(tmp_path: Path) -> None:
    entries = [("Cstr", {"id": 1, "message": "old dumpview"})]
    old = clhe.build_crashlog(entries, tag_order=clhe.TAG_ORDER_READING)
    assert old.startswith(b"CLHE")
    path = factory.build_dump(tmp_path / "old.dump", notes=[factory.agx_note(), ("RTKIT", 1, old)])
    with dumpview.open_dump(path) as dump:
        assert clhe.panic_message(dump.crashlog) == "old dumpview"
        (warning,) = [w for w in dump.all_warnings() if "RTKIT" in w]
        assert "reading order" in warning and "at 0x" in warning
        sections = {s.title: s.lines for s in crashlog_sections(dump)}
        assert sections["Panic"] == ["old dumpview (id 1)"]
        assert sections["Crash log"][0].endswith(", tags in reading order")
    out = cli("info", str(path)).stdout
    assert "tags in reading order (written by dumpview 0.1.0 or earlier)" in out
    assert "panic        old dumpview" in out


def test_bytes_past_the_total_size_are_not_read(tmp_path: Path) -> None:
    log = clhe.build_crashlog([("Cstr", {"id": 1, "message": "inside"})])
    extra = clhe.build_crashlog([("Cstr", {"id": 2, "message": "outside"})])[32:]
    note = ("RTKIT", 1, log + extra)
    path = factory.build_dump(tmp_path / "past.dump", notes=[factory.agx_note(), note])
    with dumpview.open_dump(path) as dump:
        assert [e.fields.message for e in dump.crashlog.entries] == ["inside"]
        assert any("past the header's total size" in w for w in dump.all_warnings())


def test_aarch32_registers_in_the_crash_log_view(tmp_path: Path) -> None:
    regs = {
        "unk0": 0,
        "unk1": 0,
        "r": list(range(0x100, 0x110)),
        "psr": 0x1D3,
        "unknown": 0,
        "stack": bytes(range(256)),
        "unknown2": [0, 0, 0, 0],
    }
    log = clhe.build_crashlog([("Cstr", {"id": 0, "message": "armv7"}), ("CrgA", regs)])
    path = factory.build_dump(tmp_path / "a32.dump", notes=[factory.agx_note(), ("RTKIT", 1, log)])
    with dumpview.open_dump(path) as dump:
        lines = {s.title: s.lines for s in crashlog_sections(dump)}["AArch32 registers"]
        assert dump.fault() is None  # CrgA records no FAR or ESR
    assert lines[0] == "AArch32 (CrgA): exception taken from Supervisor mode (psr 0x1d3)"
    assert lines[1].split() == [f"{x}" for i in range(4) for x in (f"r{i}", f"{0x100 + i:#010x}")]
    assert lines[5] == "stack (256 bytes):" and lines[6].startswith("0000000000000000  00 01 02")


# ---- one PA everywhere -------------------------------------------------------------------------


def test_one_pa_for_an_entry_beyond_the_oas() -> None:
    va = FAULT_OA_BEYOND_OAS_VA
    with dumpview.open_dump(SAMPLES / "faults.dump") as dump:
        page = dump.page(va)
        assert page.pa_raw >> 42 == 1 and page.pa == page.pa_raw - BEYOND
        # The walker read its data from the OAS-masked PA: it has data.
        assert page.dumped and page.reason is None
        walk = dump.translate(va + 8)
        assert (walk.pa, walk.pa_raw) == (page.pa + 8, page.pa_raw + 8)
        assert dump.va_to_pa(va + 8) == page.pa + 8
        bulk = dump.translate_many([va + 8])
        assert int(bulk.pa[0]) == page.pa + 8 and bool(bulk.dumped[0])
        (mapping,) = dump.ptov(page.pa + 8)
        assert (mapping.va, mapping.pa, mapping.pa_raw) == (va + 8, page.pa + 8, page.pa_raw + 8)
        assert dump.ptov(page.pa_raw) == []  # nothing lives at the address the entry names
        row = dump.ranges().row(dump.ranges().index_of_va(va))
        assert (row.pa_start, row.pa_start_raw) == (page.pa, page.pa_raw)
        (finding,) = dump.check(["oa-beyond-oas"]).anomalies
        assert (finding.pa, finding.pa_raw) == (page.pa, page.pa_raw)
        assert walk.leaf.beyond_oas and f"walker and the hardware use {page.pa:#x}" in next(
            f.meaning for f in walk.leaf.fields if f.name == "oa_pfn"
        )
    says = f"PA {page.pa:#x} (entry says {page.pa_raw:#x}: bits above the 42-bit OAS)"
    assert says in cli("vtop", str(SAMPLES / "faults.dump"), f"{va:#x}").stdout
    assert says in cli("ptov", str(SAMPLES / "faults.dump"), f"{page.pa:#x}").stdout
    assert f"(entry says {page.pa_raw:#x}" in cli("ranges", str(SAMPLES / "faults.dump")).stdout
    pages = [r for r in export_records(SAMPLES / "faults.dump", "pages") if r["va"] == hex(va)]
    assert (pages[0]["pa"], pages[0]["pa_raw"]) == (hex(page.pa), hex(page.pa_raw))
    others = export_records(SAMPLES / "minimal.dump", "pages,ranges")
    assert all(r.get("pa_raw", r.get("pa_start_raw")) is None for r in others)


def test_a_driver_dump_uses_the_same_pa(tmp_path: Path) -> None:
    driver = tmp_path / "faults-driver.dump"
    from dumpview.sim.scenarios import generate_file

    generate_file(driver, scenario="faults", seed=7, driver_layout=True)
    with (
        dumpview.open_dump(SAMPLES / "faults.dump") as full,
        dumpview.open_dump(driver) as bare,
    ):
        a, b = full.page(FAULT_OA_BEYOND_OAS_VA), bare.page(FAULT_OA_BEYOND_OAS_VA)
        assert (a.pa, a.pa_raw, a.dumped) == (b.pa, b.pa_raw, b.dumped)
        assert bytes(full.read_va(a.va, 64)) == bytes(bare.read_va(b.va, 64))
        # Without the extension the reason of an undumped page follows the masked PA too:
        # here there is none, the page has data.
        assert b.reason is None


# ---- entries decoded by what they are ----------------------------------------------------------


def test_uat_table_entries_have_a_type_and_an_address_only() -> None:
    g = uat.uat_geometry()
    table = decode_entry(0x100_0100_4003, 1, g)
    assert [f.name for f in table.fields] == ["oa_pfn", "type"]
    assert table.fields[0].meaning == "next-level table at 0x10001004000"
    assert (table.af, table.ng, table.views) == (None, None, ("-", "-"))
    odd = decode_entry(0x100_0100_4003 | uat.BIT_AF | uat.BIT_GPU, 2, g)
    assert [f.name for f in odd.fields] == ["oa_pfn", "type", "ignored"]
    assert odd.fields[-1].bits == "55,10"
    # UAT has no blocks: a type-01 entry is invalid for the driver and for m1n1's valid().
    assert decode_entry(0xBAD_0000_0001, 2, g).type_name == "invalid"
    page = decode_entry(uat.PROTS["FW_PRIV_RW"].bits | 0x100_0000_4003, 3, g)
    assert {f.name for f in page.fields} == set(uat.FIELDS)


def test_lpae_table_descriptors_and_leaves() -> None:
    fmt, g = entryformat.LPAE_4K, lpae.lpae_geometry("4k")
    value = (1 << 63) | (3 << 61) | (1 << 60) | 0x4000_0003
    table = decode_entry(value, 1, g, fmt=fmt)
    fields = {f.name: f.meaning for f in table.fields}
    assert list(fields) == ["ns_table", "ap_table", "uxn_table", "pxn_table", "oa", "type"]
    assert fields["ap_table"] == "APTable 3: no writes and no unprivileged access below"
    assert fields["uxn_table"].startswith("UXNTable/XNTable: unprivileged execute never")
    assert fields["pxn_table"] == "PXNTable 0"
    assert fields["oa"] == "next-level table at 0x40000000"
    block_value = 0x4000_0000 | lpae.prot_to_bits(lpae.IOMMU_READ) | 1 | (1 << 60)
    block = decode_entry(block_value, 1, g, fmt=fmt)
    names = [f.name for f in block.fields]
    assert block.type_name == "block" and not any(n.endswith("_table") for n in names)
    assert names[-1] == "ignored" and block.fields[-1].bits == "60"
    assert {"ap_ro", "ap_unpriv", "af", "attr_indx"} <= set(names)


def test_where_m1n1_reads_an_entry_differently() -> None:
    g = uat.uat_geometry()
    # bit 55, AP0, UXN=1, PXN=0: the driver's PROT_TO_PERMS_OS says -W, m1n1's access_fw -?.
    pte = uat.BIT_GPU | uat.BIT_UXN | uat.BIT_AF | 0x100_0000_4003
    decoded = decode_entry(pte, 3, g)
    assert decoded.views[0] == "-W"
    (note,) = source_notes(decoded)
    assert "m1n1's access_fw says -?" in note
    # Output address bits 51:48: m1n1 decodes 47:14.
    wide = decode_entry(uat.PROTS["FW_PRIV_RW"].bits | (1 << 49) | 0x100_0000_4003, 3, g)
    (note,) = source_notes(wide)
    assert "m1n1 decodes output address bits 47:14 only: it reads 0x10000004000" in note
    assert source_notes(decode_entry(uat.PROTS["FW_PRIV_RW"].bits | 0x4003, 3, g)) == []


# ---- the fault status against the tables ------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "va", "esr", "agrees", "needle"),
    [
        # The planted mismatch: ESR says L3, the walk stops at the bad L2 entry.
        ("faults", BAD_L2_FAR, 0x9600_0007, False, "stops at L2"),
        ("faults", BAD_L2_FAR, 0x9600_0006, True, "stops at L2"),
        # A translation fault on a mapped page disagrees.
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x9600_0007, False, "maps it to PA"),
        # A permission fault needs the mapping at that level.
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x8600_000F, True, "instruction fetch"),
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x9600_004E, False, "maps it to PA"),
        # Access flag: the exact entry has AF set (disagrees); a driver dump cannot tell.
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x9600_000B, False, "its AF is 1"),
        ("minimal-driver", 0xFFFF_FFA0_0000_0040, 0x9600_000B, None, "does not record AF"),
        # Address size fault at L3: the oa-beyond-oas leaf.
        ("faults", FAULT_OA_BEYOND_OAS_VA, 0x9600_0003, True, "at or above the 42-bit OAS at L3"),
        ("faults", FAULT_OA_BEYOND_OAS_VA, 0x9600_0001, False, "at or above the 42-bit OAS"),
        # Nothing to compare: FnV, no levelled status, no abort, a FAR outside the space.
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x9600_0407, None, "FnV"),
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x9600_0021, None, "names no table entry"),
        ("minimal", 0xFFFF_FFA0_0000_0040, 0x3F << 26, None, "not an abort"),
        ("minimal", 0x4000, 0x9600_0005, None, "outside the walked address space"),
    ],
)
def test_compare_fault(sample: str, va: int, esr: int, agrees: bool | None, needle: str) -> None:
    with dumpview.open_dump(SAMPLES / f"{sample}.dump") as dump:
        comparison = compare_fault(decode_esr(esr), dump.translate(va), dump.geometry.oas)
    assert comparison.agrees is agrees, comparison
    assert needle in comparison.note


def test_a_rebuilt_walk_cannot_see_an_empty_table_below() -> None:
    # The faults scenario's leaked empty L3 table: the extension shows the L3 stop, a driver
    # dump (no PT_LOAD in that L2 span) only knows the walk gets past L1.
    va = RANGES["GPU_RO"][0] + 0x4000_0000
    with dumpview.open_dump(SAMPLES / "faults.dump") as dump:
        exact = compare_fault(decode_esr(0x9600_0007), dump.translate(va), 42)
        assert exact.agrees is True
    with dumpview.open_dump(SAMPLES / "minimal-driver.dump") as dump:
        walk = dump.translate(va)
        assert walk.rebuilt and walk.stopped_level == 2
        below = compare_fault(decode_esr(0x9600_0007), walk, 42)
        assert below.agrees is None and "cannot tell" in below.note
        assert compare_fault(decode_esr(0x9600_0006), walk, 42).agrees is True
        assert compare_fault(decode_esr(0x9600_0005), walk, 42).agrees is False


def test_fault_mismatch_in_check_and_the_crash_log_view() -> None:
    with dumpview.open_dump(SAMPLES / "faults.dump") as dump:
        (finding,) = dump.check(["fault-mismatch"]).anomalies
        assert (finding.va, finding.pa) == (BAD_L2_FAR, None)
        lines = {s.title: s.lines for s in crashlog_sections(dump)}["Fault address"]
        assert dump.fault().comparison.agrees is False
    assert lines[1].startswith("ESR says translation fault, level 3; the dump's tables DISAGREE")
    for clean in ("minimal", "minimal-driver", "user-contexts"):
        with dumpview.open_dump(SAMPLES / f"{clean}.dump") as dump:
            assert dump.check(["fault-mismatch"]).anomalies == []
    proc = cli("check", str(SAMPLES / "faults.dump"), "--kind", "fault-mismatch")
    assert proc.returncode == 1 and "fault-mismatch" in proc.stdout
