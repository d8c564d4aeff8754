"""ARM LPAE stage-1 dumps through the model, the CLI and the inspector's loader.

Every dump here comes from the generator (``smmu`` per granule, ``faults`` with lpae-4k); the
expected answers come from an independent source: the simulator's own page table (rebuilt with
the same scenario and seed, asked ``iova_to_phys``/``lookup``), ``formats.lpae`` decoding raw
table bytes, and pyelftools reading the PT_LOADs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st

from dumpview.cli import cli
from dumpview.model import check as check_module
from dumpview.model.diff import DiffError, diff
from dumpview.model.dump import open_dump
from dumpview.model.export import export, schema
from dumpview.model.levels import LevelTree, open_for_browsing
from dumpview.model.ranges import ranges
from dumpview.sim import smmu as smmu_soc
from dumpview.sim.scenarios import Builder, generate_file
from formats import entryformat, lpae
from formats.entryformat import LPAE_4K, LPAE_16K, LPAE_64K

GRANULES = {"lpae-4k": LPAE_4K, "lpae-16k": LPAE_16K, "lpae-64k": LPAE_64K}
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "smmu-lpae4k.dump"


@pytest.fixture(scope="module")
def smmu(tmp_path_factory) -> dict[str, Path]:
    out = {}
    base = tmp_path_factory.mktemp("lpae")
    for name in GRANULES:
        out[name] = base / f"smmu-{name}.dump"
        generate_file(out[name], scenario="smmu", entry_format=name)
    out["faults"] = base / "faults-lpae4k.dump"
    generate_file(out["faults"], scenario="faults", seed=7, entry_format="lpae-4k")
    out["huge"] = base / "smmu-huge.dump"  # the 4K granule's 1 GiB L1 block too
    generate_file(out["huge"], scenario="smmu", entry_format="lpae-4k", knobs={"huge_blocks": True})
    out["smmu-seed5"] = base / "smmu-seed5.dump"
    generate_file(out["smmu-seed5"], scenario="smmu", seed=5, entry_format="lpae-4k")
    return out


@pytest.fixture(scope="module")
def truth() -> dict[str, Builder]:
    """The simulator's page tables, rebuilt with the same scenario and seed."""
    out = {}
    for name in GRANULES:
        builder = Builder("smmu", 0, {}, entry_format=name)
        builder.build()
        out[name] = builder
    return out


# ---- formats -------------------------------------------------------------------------------


@given(st.integers(0, (1 << 64) - 1))
def test_lpae_entry_declaration_round_trips_and_agrees_with_fields(value: int) -> None:
    raw = value.to_bytes(8, "little")
    parsed = lpae.LpaeEntry.parse(raw)
    assert lpae.LpaeEntry.build(parsed) == raw
    for name, (shift, width) in lpae.FIELDS.items():
        assert int(parsed[name]) == (value >> shift) & ((1 << width) - 1), name
    assert parsed.type == value & 3 and parsed.attr_indx == (value >> 2) & 7
    assert parsed.ap_ro == bool(value >> 7 & 1) and parsed.uxn == bool(value >> 54 & 1)


@given(st.integers(0, (1 << 64) - 1), st.sampled_from(list(GRANULES.values())))
def test_p_flags_record_every_attribute_bit(value: int, fmt) -> None:
    """Unlike a UAT driver dump, an LPAE dump's p_flags lose nothing but the address."""
    flags = fmt.pack_p_flags(value)
    assert flags < 1 << 32
    attributes = value & fmt.attribute_mask
    assert fmt.unpack_attributes(flags) == attributes
    rebuilt = fmt.unpack_p_flags(flags, fmt.output_address(value))
    assert rebuilt & fmt.attribute_mask == attributes
    assert fmt.output_address(rebuilt) == fmt.output_address(value)


@given(st.integers(0, (1 << 52) - 1))
def test_64k_granule_carries_pa_51_48_in_bits_15_12(pa: int) -> None:
    pa &= ~0xFFFF
    bits = LPAE_64K.encode_output_address(pa)
    assert bits & 0xF000 == ((pa >> 48) & 0xF) << 12
    assert bits >> 48 == 0
    assert LPAE_64K.output_address(bits | 3) == pa


@pytest.mark.parametrize(
    ("granule", "ias", "levels", "top_bits"),
    [
        ("4k", 48, [0, 1, 2, 3], 9),
        ("4k", 39, [1, 2, 3], 9),
        ("4k", 32, [1, 2, 3], 2),
        ("16k", 48, [0, 1, 2, 3], 1),
        ("16k", 36, [2, 3], 11),
        ("64k", 48, [1, 2, 3], 6),
        ("64k", 52, [1, 2, 3], 10),
    ],
)
def test_geometry_per_granule(granule: str, ias: int, levels: list, top_bits: int) -> None:
    g = lpae.lpae_geometry(granule, ias)
    assert [lg.level for lg in g.levels] == levels
    assert g.levels[0].index_bits == top_bits
    assert g.levels[-1].va_shift == g.page_shift == lpae.GRANULE_SHIFTS[granule]
    # levels = ceil((IAS - page_shift) / (page_shift - 3)), as the reference sheet says
    assert len(levels) == -(-(ias - g.page_shift) // (g.page_shift - 3))


@pytest.mark.parametrize(("granule", "ias"), [("4k", 31), ("4k", 49), ("16k", 52), ("64k", 53)])
def test_geometry_refuses_what_the_format_does_not_allow(granule: str, ias: int) -> None:
    with pytest.raises(ValueError, match=f"IAS {ias}"):
        lpae.lpae_geometry(granule, ias)


def test_views_follow_the_arm_permission_model() -> None:
    rw_nx = lpae.prot_to_bits(lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_NOEXEC)
    assert (lpae.privileged_view(rw_nx), lpae.unprivileged_view(rw_nx)) == ("RW-", "RW-")
    ro = lpae.prot_to_bits(lpae.IOMMU_READ | lpae.IOMMU_NOEXEC)
    assert (lpae.privileged_view(ro), lpae.unprivileged_view(ro)) == ("R--", "R--")
    rwx = lpae.prot_to_bits(lpae.IOMMU_READ | lpae.IOMMU_WRITE)
    # EL0-writable memory is never privileged-executable; unprivileged gets RWX
    assert (lpae.privileged_view(rwx), lpae.unprivileged_view(rwx)) == ("RW-", "RWX")
    priv = lpae.prot_to_bits(lpae.IOMMU_READ | lpae.IOMMU_WRITE | lpae.IOMMU_PRIV)
    assert (lpae.privileged_view(priv), lpae.unprivileged_view(priv)) == ("RWX", "---")
    assert rwx & lpae.BIT_NG and (rwx >> 8) & 3 == lpae.SH_OUTER  # io-pgtable: nG, outer w/o cache


# ---- the model on LPAE dumps -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(GRANULES))
def test_open_reports_format_geometry_and_page_size(smmu, name: str) -> None:
    fmt = GRANULES[name]
    with open_dump(smmu[name]) as dump:
        assert dump.entry_format is fmt
        assert dump.page_size_bytes == 1 << fmt.page_shift
        assert dump.geometry.levels[-1].level == 3
        assert dump.all_warnings() == []
    with open(smmu[name], "rb") as fp:
        for seg in ELFFile(fp).iter_segments():
            if seg["p_type"] == "PT_LOAD":
                assert seg["p_align"] == 1 << fmt.page_shift
                assert seg["p_vaddr"] % (1 << fmt.page_shift) == 0


@pytest.mark.parametrize("name", list(GRANULES))
def test_every_page_translates_as_the_simulator_maps_it(smmu, truth, name: str) -> None:
    """translate(), va_to_pa() and translate_many() against the simulator's iova_to_phys, on
    every page of the dump plus offsets inside pages and unmapped VAs."""
    pgtable = truth[name].m.pgtable
    with open_dump(smmu[name]) as dump:
        page = dump.page_size_bytes
        vas = [record.va for record in dump.pages()]
        rng = random.Random(name)
        probes = [*rng.sample(vas, min(len(vas), 400)), vas[0], vas[-1]]
        probes += [va + rng.randrange(page) for va in probes[:100]]
        probes += [rng.randrange(1 << 48) for _ in range(100)]
        bulk = dump.translate_many(np.array(probes, dtype=np.uint64))
        for i, va in enumerate(probes):
            expected = pgtable.iova_to_phys(va)
            t = dump.translate(va)
            assert t.pa == expected, hex(va)
            assert dump.va_to_pa(va) == expected, hex(va)
            assert bool(bulk.mapped[i]) == (expected is not None), hex(va)
            if expected is not None:
                assert int(bulk.pa[i]) == expected
                record = dump.page(va)
                assert record is not None and record.pa == expected & ~(page - 1)


def _blocks(dump):
    """(level, table PA, index, entry) of every block entry in the dump's carried tables."""
    index = dump.tables_index
    out = []
    for node in index.nodes:
        entries = index.entries_at(node.pa)
        for i in index.block_entries(node).tolist():
            out.append((node, i, int(entries[i])))
    return out


@pytest.mark.parametrize("name", [*GRANULES, "huge"])
def test_translation_through_blocks_stops_at_the_block_level(smmu, name: str) -> None:
    fmt = GRANULES.get(name, LPAE_4K)
    with open_dump(smmu[name]) as dump:
        blocks = _blocks(dump)
        assert blocks, "the smmu scenario maps a block of every block size"
        sizes = set()
        for node, i, value in blocks:
            lg = dump.geometry.level(node.level)
            span = lg.entry_span_bytes
            sizes.add(span)
            parsed = lpae.LpaeEntry.parse(value.to_bytes(8, "little"))
            assert parsed.type == 1 and node.level in fmt.block_levels
            base = (parsed.oa << 12) & ~(span - 1)
            block_va = node.va_start + i * span
            for offset in (0, dump.page_size_bytes + 8, span - 1):
                t = dump.translate(block_va + offset)
                assert t.pa == base + offset
                assert t.steps[-1].level == node.level
                assert t.leaf.type_name == "block" and t.leaf.block_size_bytes == span
                assert [s.level for s in t.steps] == [
                    lg.level for lg in dump.geometry.levels if lg.level <= node.level
                ]
        expected = {1 << dump.geometry.level(level).va_shift for level in fmt.block_levels}
        if name != "huge":  # without the knob, blocks above 512 MiB are not mapped
            expected = {size for size in expected if size <= smmu_soc.SMMU_HUGE_BLOCK}
        assert sizes == expected


def test_vtop_per_level_on_the_cli(smmu) -> None:
    """One line per level walked: four for a page, three for a 2M block, two for a 1G block."""
    runner = CliRunner()
    with open_dump(smmu["huge"]) as dump:
        by_level = {}
        for node, i, _value in _blocks(dump):
            by_level.setdefault(
                node.level, node.va_start + i * dump.geometry.level(node.level).entry_span_bytes
            )
        page_va = next(r.va for r in dump.pages() if r.leaf_level == 3 and r.dumped)
    cases = [(page_va, ["L0", "L1", "L2", "L3"]), (by_level[2], ["L0", "L1", "L2"])]
    cases.append((by_level[1], ["L0", "L1"]))
    for va, levels in cases:
        result = runner.invoke(cli, ["vtop", str(smmu["huge"]), hex(va + 0x10)])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert [line.split()[0] for line in lines[:-1]] == levels
        assert lines[-1].startswith(f"VA {va + 0x10:#x} -> PA ")
        if len(levels) < 4:
            assert "block" in lines[-2] and f"L{levels[-1][1]} block of" in lines[-1]
        assert "privileged" in lines[-1] and "unprivileged" in lines[-1]
    unmapped = runner.invoke(cli, ["vtop", str(smmu["lpae-4k"]), "0x7000_0000_0000"])
    assert unmapped.exit_code == 1 and "walk stopped at L0" in unmapped.output


def test_pages_of_a_block_carry_the_block_entry_and_its_level(smmu) -> None:
    with open_dump(smmu["lpae-4k"]) as dump:
        node, i, value = next(b for b in _blocks(dump) if b[0].level == 2)
        span = dump.geometry.level(2).entry_span_bytes
        va = node.va_start + i * span
        records = list(dump.pages(va, va + span))
        assert len(records) == span // dump.page_size_bytes
        assert {r.pte for r in records} == {value}
        assert {r.leaf_level for r in records} == {2}
        assert [r.pa for r in records] == [
            LPAE_4K.output_address(value) + k * dump.page_size_bytes for k in range(len(records))
        ]


def test_write_exec_is_flagged_on_the_faults_dump(smmu) -> None:
    with open_dump(smmu["faults"]) as dump:
        result = check_module.check(dump)
        found = [a for a in result.anomalies if a.kind == "write-exec"]
        assert [a.va for a in found] == [smmu_soc.FAULT_LPAE_RWX_VA]
        assert "unprivileged RWX" in found[0].message
        counts = result.counts()
        for kind in (
            "memattr-alias",
            "device-on-ram",
            "normal-on-non-ram",
            "empty-table",
            "unexpected-table-entry",
            "oa-beyond-oas",
            "outside-managed-range",
        ):
            assert counts[kind] >= 1, kind
        unexpected = [a for a in result.anomalies if a.kind == "unexpected-table-entry"]
        assert any(a.va == smmu_soc.FAULT_LPAE_UNEXPECTED_VA for a in unexpected)
    with open_dump(smmu["lpae-4k"]) as dump:
        clean = check_module.check(dump).counts()
        assert clean["write-exec"] == 0 and clean["unexpected-table-entry"] == 0


def test_cli_check_and_info_json(smmu) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["check", str(smmu["faults"]), "--kind", "write-exec"])
    assert result.exit_code == 1 and "writable and executable" in result.output
    info = runner.invoke(cli, ["info", "--json", str(smmu["lpae-16k"])])
    doc = json.loads(info.output)
    assert doc["entry_format"] == "lpae-16k"
    assert doc["geometry"]["page_size"] == 16384
    assert doc["geometry"]["levels"] == ["L0", "L1", "L2", "L3"]
    detail = doc["geometry"]["level_detail"]
    assert [d["blocks"] for d in detail] == [False, False, True, False]
    assert detail[2]["entry_span_bytes"] == 32 << 20 and detail[0]["va_bits"] == "47:47"
    assert doc["geometry"]["permission_views"] == ["privileged", "unprivileged"]


@pytest.mark.parametrize("name", ["lpae-4k", "lpae-64k"])
def test_export_validates_and_paths_end_at_blocks(smmu, name: str, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema())
    out = tmp_path / "x.jsonl"
    with open_dump(smmu[name]) as dump, out.open("w") as fp:
        export(dump, fp, fmt="jsonl", include=("info", "tables", "pages", "ranges"))
        blocks = {(node.level, node.pa, i) for node, i, _ in _blocks(dump)}
    records = [json.loads(line) for line in out.read_text().splitlines()]
    pages = [r for r in records if r["record"] == "page"]
    # Every record that is not a page, and pages of every distinct shape (a 1 GiB block of
    # 4 KiB pages is 262,144 page records of one shape).
    shapes = {}
    for record in records:
        key = (record["record"], record.get("kind"), record.get("pte"))
        if record["record"] != "page" or key not in shapes:
            shapes[key] = record
            errors = list(validator.iter_errors(record))
            assert not errors, (record, errors[0].message)
    assert all("privileged" in p and "firmware" not in p for p in pages)
    ends = {
        (
            p["table_path"][-1]["level"],
            int(p["table_path"][-1]["table"], 16),
            p["table_path"][-1]["index"],
        )
        for p in pages
        if p["table_path"][-1]["level"] < 3
    }
    assert ends == blocks
    tables = [r for r in records if r["record"] == "table"]
    types = {e["type"] for t in tables for e in t["entries"]}
    assert "block" in types and "page" in types and "table" in types
    spans = {t["level"]: t["entry_span_bytes"] for t in tables}
    assert spans[3] == 1 << GRANULES[name].page_shift


def test_ranges_split_where_blocks_and_pages_meet(smmu) -> None:
    with open_dump(smmu["huge"]) as dump:
        table = ranges(dump)
        rows = [table.row(i) for i in range(len(table))]
        assert sum(r.size_bytes for r in rows) == dump.page_totals[0] * dump.page_size_bytes
        assert {r.kind for r in rows} <= {"unprivileged", "privileged", "device", "not-dumped"}
        assert any(r.kind == "device" and r.size_bytes >= 1 << 30 for r in rows)


def test_diff_of_two_lpae_dumps_and_refusal_against_uat(smmu) -> None:
    with open_dump(smmu["lpae-4k"]) as a, open_dump(smmu["smmu-seed5"]) as b:
        same = diff(a, a)
        assert same.identical
        result = diff(a, b)
        doc = result.to_dict()
        for run in doc["changed"] + doc["added"] + doc["removed"]:
            assert "privileged_a" in run and "firmware_a" not in run
    with (
        open_dump(smmu["lpae-4k"]) as a,
        open_dump(SAMPLE.parent / "minimal.dump") as uat,
        pytest.raises(DiffError, match="page size is 4096 bytes"),
    ):
        diff(a, uat)


def test_the_inspector_loads_an_lpae_dump_and_shows_blocks(smmu) -> None:
    dump, tree = open_for_browsing(smmu["huge"])
    with dump:
        assert isinstance(tree, LevelTree)
        root = tree.roots[0]
        rows = tree.rows(root)
        assert rows.level_geometry.level == 0
        states = []
        stack = [root]
        while stack:
            table = stack.pop()
            table_rows = tree.rows(table)
            for i in range(len(table_rows)):
                row = table_rows.row(i)
                if getattr(row, "type_name", None) == "block":
                    states.append(row.state)
                    assert row.pa is not None and row.views != ("-", "-")
            stack.extend(child for _, child in tree.children(table))
        assert any(s.startswith("block 2M: dumped") for s in states)
        assert any(s.startswith("block 1G: not dumped: device-memory") for s in states)


def test_uat_extension_claiming_4k_pages_is_refused(tmp_path: Path) -> None:
    """The entry format fixes the page size: a UAT geometry of 4 KiB pages is an error naming
    the record."""
    from dumpview.model.errors import DumpFormatError
    from formats.geometry import GeometryRecord

    src = SAMPLE.parent / "minimal.dump"
    with open_dump(src) as dump:
        record = dump.extension.geometry_record
        old = GeometryRecord.build(record)
        new = GeometryRecord.build({**record, "page_shift": 12, "level_count": 3})
    raw = src.read_bytes()
    bad = tmp_path / "uat4k.dump"
    bad.write_bytes(raw.replace(old, new))
    with pytest.raises(DumpFormatError, match="uat entries need 16 KiB pages"):
        open_dump(bad)
    assert entryformat.UAT.page_shift == 14
