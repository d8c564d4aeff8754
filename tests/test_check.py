"""``dumpview.model.check`` on real bytes: the faults scenario's plants found where the
simulation put them (an independent scalar oracle over the simulated page tables), nothing
spurious on it or on the clean samples, driver dumps skipping what they cannot know, runs
coalesced on large scattered dumps, and the table checks on hand-made tables."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import factory
import numpy as np
import pytest

from dumpview.model import check as check_module
from dumpview.model import open_dump
from dumpview.model.check import (
    DESCRIPTIONS,
    KINDS,
    Anomaly,
    CheckResult,
    check,
    grants_write_and_execute,
    write_exec_views,
)
from dumpview.sim.asahi import (
    FAULT_DEVICE_ON_RAM_VA,
    FAULT_OA_BEYOND_OAS_VA,
    FAULT_OUTSIDE_RANGE_VA,
)
from dumpview.sim.errors import EINVAL, ENOENT
from dumpview.sim.firmware import FW_VA_START
from dumpview.sim.scenarios import KERNEL_VA_END, RANGES, Builder, generate_file
from dumpview.sim.writer import SpaceInfo, TableInfo
from formats import clhe, entryformat, uat

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PAGE = uat.PAGE_SIZE
FAULTS_SEED = 7  # as samples/README.md generates samples/faults.dump
CARVEOUT_REASON = "borrow-refused (no-map: fw-carveout)"
BAD_L2_VA = RANGES["SHARED_RO"][0] + 0x8000_0000  # where _build_faults writes a bad L2 entry
LEAKED_TABLE_VA = RANGES["GPU_RO"][0] + 0x4000_0000  # tables allocated for nothing
NEEDS_MAP = {"normal-on-non-ram", "device-on-ram"}
NEEDS_TABLES = {"unexpected-table-entry", "empty-table"}


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("check")
    paths = {
        "faults": out / "faults.dump",
        "faults-driver": out / "faults-driver.dump",
        "scatter": out / "scatter.dump",
        "scatter-driver": out / "scatter-driver.dump",
        "contiguous": out / "contiguous.dump",
    }
    generate_file(paths["faults"], scenario="faults", seed=FAULTS_SEED)
    generate_file(paths["faults-driver"], scenario="faults", seed=FAULTS_SEED, driver_layout=True)
    scatter = {"mapped_mib": 32, "scatter": True, "dumped_percent": 70}
    generate_file(paths["scatter"], scenario="large", seed=3, knobs=scatter)
    generate_file(
        paths["scatter-driver"], scenario="large", seed=3, knobs=scatter, driver_layout=True
    )
    contiguous = {"mapped_mib": 32, "dumped_percent": 70}
    generate_file(paths["contiguous"], scenario="large", seed=4, knobs=contiguous)
    return paths


def run(path: Path, kinds=None) -> CheckResult:
    with open_dump(path) as dump:
        return check(dump, kinds)


def found(result: CheckResult) -> set[tuple[str, int | None, int | None, int]]:
    return {(a.kind, a.va, a.pa, a.pages) for a in result.anomalies}


# ---- the oracle: the faults machine itself, read entry by entry -----------------------------


def _coalesce(kind: str, pages: list[tuple[int, int]]) -> set[tuple[str, int, int, int]]:
    """(kind, first VA, first PA, pages) per run of VA-consecutive pages."""
    out = set()
    run: list[tuple[int, int]] = []
    for va, pa in [*sorted(pages), (-1, -1)]:
        if run and va != run[-1][0] + PAGE:
            out.add((kind, run[0][0], run[0][1], len(run)))
            run = []
        run.append((va, pa))
    return out


def planted_faults() -> set[tuple[str, int, int, int]]:
    """What check must report on the faults dump, from the simulated tables and memory map
    (scalar Python over the machine that wrote the dump, not over the dump)."""
    builder = Builder("faults", FAULTS_SEED, {})
    builder.build()
    kernel, memory, g = builder.m.kernel, builder.m.memory, builder.geometry
    per_kind: dict[str, list[tuple[int, int]]] = defaultdict(list)
    by_pa: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for va, pte in kernel.leaves():  # the whole kernel context, firmware part included
        memattr = (pte >> 2) & 7
        # Every check looks at the PA the walker uses: the entry's bits 51:14 cut to the OAS.
        oa = pte & uat.OA_MASK_FULL & ((1 << g.oas) - 1)
        if not FW_VA_START <= va < KERNEL_VA_END:
            per_kind["outside-managed-range"].append((va, oa))
        if (pte & uat.OA_MASK_FULL) >> g.oas:
            per_kind["oa-beyond-oas"].append((va, oa))
        by_pa[oa].append((va, memattr))
        what, _region = memory.classify(oa)
        device = memattr in uat.DEVICE_MEMATTRS
        memory_pa = what in ("ram", "reserved", "no-map")
        if device and memory_pa:
            per_kind["device-on-ram"].append((va, oa))
        if not device and not memory_pa:
            per_kind["normal-on-non-ram"].append((va, oa))
        has_data = memattr in uat.DUMPABLE_MEMATTRS and memory.page_is_ram(oa >> uat.PAGE_SHIFT)
        if not device and memory_pa and not has_data:
            per_kind["ram-not-dumped"].append((va, oa))
    out: set[tuple[str, int, int, int]] = set()
    for kind, pages in per_kind.items():
        out |= _coalesce(kind, pages)
    for pa, maps in by_pa.items():
        if len({attr for _va, attr in maps}) > 1:
            out.add(("memattr-alias", min(va for va, _ in maps), pa, 1))
    for level, table_pa, va_start, _span in kernel.tables():
        entries = np.frombuffer(memory.read(table_pa, PAGE), dtype="<u8")
        if level != g.levels[0].level and not entries.any():
            out.add(("empty-table", va_start, table_pa, 0))
        lg = g.level(level)
        for i in np.flatnonzero(np.isin(entries[: lg.entries] & np.uint64(3), [1, 2])):
            out.add(
                ("unexpected-table-entry", va_start + int(i) * lg.entry_span_bytes, table_pa, 0)
            )
    for va, pa in builder.m.ccdp:
        if kernel.translate(va) != pa:
            out.add(("crashlog-mismatch", va, pa, 0))
    # The ESR's fault status (translation fault, level N) against where the tables stop.
    far, fsc = builder.m.far, builder.fault_status()
    assert fsc & ~3 == 0x04  # a translation fault
    if builder.m.firmware.fault_level(far) != fsc & 3:
        out.add(("fault-mismatch", far, None, 0))
    return out


# ---- the faults scenario ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle() -> set[tuple[str, int, int, int]]:
    return planted_faults()


def test_the_oracle_sees_every_plant(oracle) -> None:
    at = {(kind, va) for kind, va, _pa, _pages in oracle}
    assert ("device-on-ram", FAULT_DEVICE_ON_RAM_VA) in at
    assert ("oa-beyond-oas", FAULT_OA_BEYOND_OAS_VA) in at
    assert ("outside-managed-range", FAULT_OUTSIDE_RANGE_VA) in at
    assert ("unexpected-table-entry", BAD_L2_VA) in at
    assert ("empty-table", LEAKED_TABLE_VA) in at
    assert ("crashlog-mismatch", RANGES["PRIV"][0]) in at
    assert ("fault-mismatch", BAD_L2_VA + 0x20) in at
    assert {kind for kind, *_ in oracle} == set(KINDS) - {"write-exec"}


@pytest.mark.parametrize("which", ["fresh", "sample"])
def test_faults_finds_exactly_what_was_planted(dumps, oracle, which) -> None:
    path = dumps["faults"] if which == "fresh" else SAMPLES / "faults.dump"
    result = run(path)
    assert result.skipped == []
    assert found(result) == oracle
    # Every kind UAT can produce is planted; write-exec cannot be (see the module docstring).
    assert {k for k, n in result.counts().items() if n} == set(KINDS) - {"write-exec"}
    by_kind = defaultdict(list)
    for anomaly in result.anomalies:
        by_kind[anomaly.kind].append(anomaly)
    (alias,) = by_kind["memattr-alias"]
    assert len(alias.vas) == 2 and alias.va == alias.vas[0]
    assert "cached" in alias.message and "uncached" in alias.message
    for va in alias.vas:
        assert f"{va:#x}" in alias.message
    carveout = [a for a in by_kind["ram-not-dumped"] if a.va == FW_VA_START + 0x3000_0000]
    assert carveout and carveout[0].pages == 2  # the firmware's own no-map mapping: honest
    assert all(CARVEOUT_REASON in a.message for a in by_kind["ram-not-dumped"])
    (normal,) = by_kind["normal-on-non-ram"]
    assert "MMIO window 'disp'" in normal.message
    (oa,) = by_kind["oa-beyond-oas"]
    # pa is where the walker goes (bits 51:14 cut to the 42-bit OAS), pa_raw what it says.
    assert oa.pa >> 42 == 0 and oa.pa_raw == oa.pa | 1 << 42
    assert f"{1 << 42:#x}" in oa.message and f"entry says {oa.pa_raw:#x}" in oa.message
    assert oa.to_dict()["pa_raw"] == f"{oa.pa_raw:#x}"
    (fault,) = by_kind["fault-mismatch"]
    assert (fault.va, fault.pa) == (BAD_L2_VA + 0x20, None)
    assert "translation fault, level 3" in fault.message and "stops at L2" in fault.message
    (bad,) = by_kind["unexpected-table-entry"]
    assert "L2 table" in bad.message and "0xbad00000001" in bad.message
    assert bad.va_end - bad.va == 32 << 20
    (empty,) = by_kind["empty-table"]
    assert empty.va_end - empty.va == 32 << 20
    (mismatch,) = by_kind["crashlog-mismatch"]
    assert mismatch.va_end == mismatch.va + PAGE
    assert all(a.context is None for a in result.anomalies)
    assert result.anomalies == sorted(
        result.anomalies, key=lambda a: (KINDS.index(a.kind), a.va, a.pa)
    )


def test_the_sample_is_the_regenerated_scenario(dumps) -> None:
    assert run(SAMPLES / "faults.dump").anomalies == run(dumps["faults"]).anomalies


def test_faults_driver_layout_skips_what_it_cannot_know(dumps) -> None:
    full = run(dumps["faults"])
    driver = run(dumps["faults-driver"])
    assert dict(driver.skipped).keys() == NEEDS_MAP | NEEDS_TABLES
    assert dict(driver.skipped)["empty-table"] == "driver dumps do not carry table entries"
    assert "memory map" in dict(driver.skipped)["device-on-ram"]
    assert not {a.kind for a in driver.anomalies} & (NEEDS_MAP | NEEDS_TABLES)

    def rows(result: CheckResult, kind: str) -> set:
        return {(a.va, a.pa, a.pages, a.vas) for a in result.anomalies if a.kind == kind}

    for kind in ("memattr-alias", "outside-managed-range", "crashlog-mismatch"):
        assert rows(driver, kind) == rows(full, kind) != set(), kind
    # Without the memory map the MMIO page mapped cached is RAM the dump lacks, as far as the
    # dump can tell: ram-not-dumped gains it.
    assert rows(driver, "ram-not-dumped") == rows(full, "ram-not-dumped") | rows(
        full, "normal-on-non-ram"
    )
    # oa-beyond-oas from p_paddr: the driver keeps bits 51:14, so the stray bit is there.
    with open_dump(dumps["faults-driver"]) as dump:
        page = dump.page(FAULT_OA_BEYOND_OAS_VA)
        assert page.pa_raw >> 42 == 1 and page.pa == page.pa_raw & ((1 << 42) - 1)
    assert rows(driver, "oa-beyond-oas") == rows(full, "oa-beyond-oas") != set()
    assert rows(driver, "fault-mismatch") == set()  # a rebuilt walk: it cannot see the L2 entry


@pytest.mark.parametrize("name", ["minimal", "minimal-driver", "user-contexts"])
def test_clean_samples_report_only_the_firmware_carveout(name: str) -> None:
    result = run(SAMPLES / f"{name}.dump")
    (carveout,) = result.anomalies
    assert carveout.kind == "ram-not-dumped"
    assert (carveout.va, carveout.pages) == (FW_VA_START + 0x3000_0000, 2)
    assert carveout.message.endswith(
        "borrow-refused" if name.endswith("driver") else CARVEOUT_REASON
    )
    assert not result.clean
    assert result.counts() == {kind: int(kind == "ram-not-dumped") for kind in KINDS}


# ---- runs ---------------------------------------------------------------------------------------


def normal_pages_without_data(path: Path) -> set[int]:
    """VAs of the pages check must call ram-not-dumped on a large dump (scalar)."""
    with open_dump(path) as dump:
        return {
            p.va
            for p in dump.pages()
            if not p.dumped and (p.pte >> 2) & 7 not in uat.DEVICE_MEMATTRS
        }


@pytest.mark.parametrize("name", ["scatter", "scatter-driver"])
def test_scattered_refused_pages_coalesce_into_runs(dumps, name: str) -> None:
    result = run(dumps[name], ["ram-not-dumped"])
    runs = result.anomalies
    expected = normal_pages_without_data(dumps[name])
    refused = (32 << 20) // PAGE * 30 // 100
    assert len(expected) == refused + 2  # the large scenario's plus the firmware carveout
    covered = [a.va + k * PAGE for a in runs for k in range(a.pages)]
    assert len(covered) == sum(a.pages for a in runs) == len(expected)
    assert set(covered) == expected
    with open_dump(dumps[name]) as dump:
        total_pages = dump.page_totals[0]
    assert len(runs) < len(expected) < total_pages / 3
    assert all(a.va_end == a.va + a.pages * PAGE for a in runs)
    assert any("scattered PAs" in a.message for a in runs)


def test_contiguous_refused_pages_are_one_anomaly(dumps) -> None:
    result = run(dumps["contiguous"], ["ram-not-dumped"])
    refused = (32 << 20) // PAGE * 30 // 100
    assert [a.pages for a in result.anomalies] == [2, refused]
    big = result.anomalies[1]
    assert f"PAs {big.pa:#x}..{big.pa + refused * PAGE:#x}" in big.message


# ---- records and arguments ------------------------------------------------------------------


def test_to_dict_is_json_with_lowercase_hex(dumps) -> None:
    result = run(dumps["faults"])
    for anomaly in result.anomalies:
        doc = json.loads(json.dumps(anomaly.to_dict()))
        keys = {"kind", "message", "va", "va_end", "pa", "pa_raw", "context", "vas", "pages"}
        assert set(doc) == keys
        for key in ("va", "va_end", "pa"):
            value = getattr(anomaly, key)
            assert doc[key] == (None if value is None else hex(value))
            assert doc[key] is None or doc[key] == doc[key].lower()
        assert doc["vas"] == [hex(va) for va in anomaly.vas]
        assert doc["context"] is None and doc["pages"] == anomaly.pages
    bare = Anomaly("crashlog-mismatch", "m", None, None, 0xABC0, 3)
    assert bare.to_dict() == {
        "kind": "crashlog-mismatch",
        "message": "m",
        "va": None,
        "va_end": None,
        "pa": "0xabc0",
        "pa_raw": None,
        "context": 3,
        "vas": [],
        "pages": 0,
    }


def test_kinds_selects_and_unknown_kinds_are_refused(dumps) -> None:
    with open_dump(dumps["faults-driver"]) as dump:
        only = check(dump, ["empty-table", "memattr-alias"])
        assert {a.kind for a in only.anomalies} == {"memattr-alias"}
        assert only.skipped == [("empty-table", "driver dumps do not carry table entries")]
        assert check(dump, "memattr-alias").counts()["memattr-alias"] == 1
        assert check(dump, []).clean
        with pytest.raises(ValueError) as info:
            check(dump, ["empty-table", "leaks"])
    message = str(info.value)
    assert "\n" not in message and "'leaks'" in message
    assert all(kind in message for kind in KINDS)
    assert set(DESCRIPTIONS) == set(KINDS)
    assert all(text.endswith(".") and "\n" not in text for text in DESCRIPTIONS.values())


def test_check_leaves_the_file_unchanged() -> None:
    path = SAMPLES / "faults.dump"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = run(path)
    assert result.anomalies
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# ---- write-exec ---------------------------------------------------------------------------------


def test_write_exec_helpers() -> None:
    assert grants_write_and_execute("RWX") and grants_write_and_execute("WX")
    assert not any(grants_write_and_execute(p) for p in ("RW", "RX", "-W", "R-", "--", "X"))
    every = [
        (gpu << 55) | (ap << 6) | (uxn << 54) | (pxn << 53)
        for gpu in (0, 1)
        for ap in range(4)
        for uxn in (0, 1)
        for pxn in (0, 1)
    ]
    assert not any(write_exec_views(pte) for pte in every)  # UAT's tables never grant W+X
    fake = (("fake", lambda pte: "RWX" if pte & uat.BIT_GPU else "R-"),)
    assert write_exec_views(uat.BIT_GPU, fake) == ("fake RWX",)
    assert write_exec_views(0, fake) == ()


@pytest.mark.parametrize("name", ["minimal", "minimal-driver", "faults", "user-contexts"])
def test_no_write_exec_on_any_sample(name: str) -> None:
    assert run(SAMPLES / f"{name}.dump", ["write-exec"]).counts()["write-exec"] == 0


def test_write_exec_in_bulk_with_a_view_that_grants_it(monkeypatch) -> None:
    """A view that says RWX for AP2 with bit 55 (GPU_SHARED_*): every such leaf, in every
    carried context, must come back, coalesced, with its context."""
    fake = (("fake", lambda pte: "RWX" if (pte >> 6) & 3 == 2 and pte & uat.BIT_GPU else "--"),)
    monkeypatch.setitem(check_module.PERMISSION_VIEWS, entryformat.UAT.id, fake)
    path = SAMPLES / "user-contexts.dump"
    result = run(path, ["write-exec"])
    with open_dump(path) as dump:
        expected = set()
        index = dump.tables_index
        for node in index.nodes:
            if node.level != 3:
                continue
            entries = index.entries_at(node.pa)
            for i in np.flatnonzero((entries & np.uint64(3)) == 3).tolist():
                pte = int(entries[i])
                if (pte >> 6) & 3 == 2 and pte & uat.BIT_GPU:
                    context = None if node.context == index.dumped_context else node.context
                    expected.add((context, node.va_start + i * PAGE))
    covered = {(a.context, a.va + k * PAGE) for a in result.anomalies for k in range(a.pages)}
    assert covered == expected
    assert {context for context, _va in expected} == {1, 2}  # only the user VMs use AP2
    assert all("fake RWX" in a.message for a in result.anomalies)
    assert len(result.anomalies) < len(expected)


# ---- PT_LOAD-only findings and hand-made tables -----------------------------------------------


def test_driver_dump_findings_from_p_paddr(tmp_path: Path) -> None:
    va = factory.BASE_VA
    rows = [
        factory.segment(va, 0x8_0000_0000, 2),
        # The same PA uncached: an alias; p_paddr with bit 42: beyond the t600x OAS.
        factory.segment(va + 0x10_0000, 0x8_0000_4000, 1, "FW_SHARED_RW"),
        factory.segment(va + 0x20_0000, (1 << 42) | 0x8_0010_0000, 3, data=False),
        factory.segment(uat.UAT_KERNEL_VA_END, 0x8_0020_0000, 1),
    ]
    path = factory.build_dump(tmp_path / "d.dump", rows)
    result = run(path)
    assert found(result) == {
        ("memattr-alias", va + PAGE, 0x8_0000_4000, 1),
        ("oa-beyond-oas", va + 0x20_0000, 0x8_0010_0000, 3),
        # The walker went to the cut address and got no data: that is RAM the dump lacks.
        ("ram-not-dumped", va + 0x20_0000, 0x8_0010_0000, 3),
        ("outside-managed-range", uat.UAT_KERNEL_VA_END, 0x8_0020_0000, 1),
    }
    beyond = [a for a in result.anomalies if a.kind in ("oa-beyond-oas", "ram-not-dumped")]
    assert {a.pa_raw for a in beyond} == {(1 << 42) | 0x8_0010_0000}
    assert dict(result.skipped)["crashlog-mismatch"] == "the dump's crash logs record no Ccdp pairs"


def test_memattr_alias_runs_follow_the_pa_and_every_alias(tmp_path: Path) -> None:
    va = factory.BASE_VA
    rows = [
        # Three pages mapped cached and uncached: one run.
        factory.segment(va, 0x8_0000_0000, 3),
        factory.segment(va + 0x10_0000, 0x8_0000_0000, 3, "FW_SHARED_RW"),
        # Only the second page of a cached pair aliased.
        factory.segment(va + 0x20_0000, 0x8_0010_0000, 2),
        factory.segment(va + 0x30_0000, 0x8_0010_4000, 1, "FW_SHARED_RW"),
        # Consecutive PAs whose uncached aliases are not consecutive VAs: two findings.
        factory.segment(va + 0x40_0000, 0x8_0020_0000, 2),
        factory.segment(va + 0x50_0000, 0x8_0020_4000, 1, "FW_SHARED_RW"),
        factory.segment(va + 0x60_0000, 0x8_0020_0000, 1, "FW_SHARED_RW"),
    ]
    path = factory.build_dump(tmp_path / "a.dump", rows)
    result = run(path, ["memattr-alias"])
    assert [(a.va, a.va_end, a.pa, a.pages, a.vas) for a in result.anomalies] == [
        (va, va + 3 * PAGE, 0x8_0000_0000, 3, (va, va + 0x10_0000)),
        (va + 0x20_4000, va + 0x20_8000, 0x8_0010_4000, 1, (va + 0x20_4000, va + 0x30_0000)),
        (va + 0x40_0000, va + 0x40_4000, 0x8_0020_0000, 1, (va + 0x40_0000, va + 0x60_0000)),
        (va + 0x40_4000, va + 0x40_8000, 0x8_0020_4000, 1, (va + 0x40_4000, va + 0x50_0000)),
    ]
    assert result.anomalies[0].message.startswith(
        f"PAs {0x8_0000_0000:#x}..{0x8_0000_C000:#x} (3 pages) are mapped with different memory "
        f"attributes: VA {va:#x} cached, VA {va + 0x10_0000:#x} uncached"
    )


def test_table_checks_on_hand_made_tables(tmp_path: Path) -> None:
    """Cycle back to the TTB, a table the dump does not carry, a table reached twice (its
    address with a bit beyond the OAS), a type-1 leaf, an empty table, an entry type 2."""
    va = factory.BASE_VA
    ttb_pa = 0x7_0000_0000
    leaves = {va: factory.leaf_pte(0x8_0000_0000), va + PAGE: 0x8_0000_4001}
    infos, contents = factory.build_tables(leaves, ttb_pa, ttb_pa + PAGE)
    geometry = uat.uat_geometry()
    _l1, l2, l3 = geometry.levels
    l2_pa = next(t.pa for t in infos if t.level == l2.level)
    l3_pa = next(t.pa for t in infos if t.level == l3.level)
    empty_pa = ttb_pa + 0x10 * PAGE
    i2 = l2.index_of(va)
    raw = bytearray(contents[l2_pa])
    extra = {
        i2 + 1: ttb_pa | 3,  # a cycle back to the TTB
        i2 + 2: 0x9_0000_0000 | 3,  # not carried
        i2 + 3: (1 << 42) | l3_pa | 3,  # the leaf table again, with a stray OA bit
        i2 + 4: empty_pa | 3,  # an empty leaf table
        i2 + 5: 0x2,  # a type the level does not allow
    }
    for index, value in extra.items():
        raw[index * 8 : index * 8 + 8] = value.to_bytes(8, "little")
    contents[l2_pa] = bytes(raw)
    contents[empty_pa] = bytes(PAGE)
    infos.append(TableInfo(l3.level, empty_pa, va + 4 * l2.entry_span_bytes, 1 << 25))
    space_start = geometry.va_base & ~geometry.ias_mask
    extension = factory.uat_extension(
        spaces=[SpaceInfo(0, ttb_pa, space_start, 1 << geometry.ias, va, 1 << 36)],
        tables=infos,
    )
    rows = [factory.segment(va, 0x8_0000_0000, 1)]
    path = factory.build_dump(
        tmp_path / "t.dump", rows, extension=extension, read_table=contents.__getitem__
    )
    result = run(path)
    span = l2.entry_span_bytes
    tables = {
        (a.kind, a.va, a.pa) for a in result.anomalies if a.kind in NEEDS_TABLES | {"oa-beyond-oas"}
    }
    assert tables == {
        ("unexpected-table-entry", va + PAGE, l3_pa),  # the type-1 leaf
        ("unexpected-table-entry", va + 1 * span, l2_pa),  # cycle
        ("unexpected-table-entry", va + 2 * span, l2_pa),  # not carried
        ("unexpected-table-entry", va + 3 * span, l2_pa),  # reached twice
        ("unexpected-table-entry", va + 5 * span, l2_pa),  # type 2
        ("oa-beyond-oas", va + 3 * span, l2_pa),
        ("empty-table", va + 4 * span, empty_pa),
    }
    messages = {a.va: a.message for a in result.anomalies if a.kind == "unexpected-table-entry"}
    assert "the TTB of context 0" in messages[va + span]
    assert "does not carry" in messages[va + 2 * span]
    assert f"reached from PA {l2_pa:#x} entry {i2}" in messages[va + 3 * span]
    assert "type 1 is neither empty nor a page entry" in messages[va + PAGE]
    assert "type 2 is neither empty nor a table entry" in messages[va + 5 * span]
    assert all(a.pages == 0 for a in result.anomalies if a.kind in NEEDS_TABLES)
    # No memory map in this extension: the region kinds say why they were skipped.
    assert dict(result.skipped)["device-on-ram"] == "the dump's extension records no memory regions"


def test_a_crash_log_without_ccdp_and_no_crash_log(tmp_path: Path) -> None:
    path = factory.build_dump(tmp_path / "n.dump", notes=[factory.agx_note()])
    assert dict(run(path).skipped)["crashlog-mismatch"] == "the dump carries no RTKit crash log"
    log = clhe.build_crashlog(
        [("Ccdp", {"pairs": [{"va": factory.BASE_VA, "pa": 0x1234_0000, "unknown": 0}]})]
    )
    path = factory.build_dump(tmp_path / "c.dump", notes=[("RTKIT", 1, log), ("RTKIT", 1, log)])
    result = run(path, ["crashlog-mismatch"])
    assert [(a.va, a.pa, a.pages) for a in result.anomalies] == [
        (factory.BASE_VA, 0x1234_0000, 0)
    ] * 2
    assert "crash log 1" in result.anomalies[1].message
    assert "dump maps it to PA 0x800000000" in result.anomalies[0].message


def test_a_dump_without_pages_is_clean(tmp_path: Path) -> None:
    result = run(factory.build_dump(tmp_path / "e.dump", []))
    assert result.clean and result.counts() == dict.fromkeys(KINDS, 0)


def test_raw_write_leaf_plants_what_map_pages_refuses() -> None:
    """The fault injection behind the new plants: a leaf past the managed range and one whose
    output address is beyond the OAS, written without reports; map_pages refuses both."""
    builder = Builder("faults", FAULTS_SEED, {})
    builder.build()
    kernel = builder.m.kernel
    outside = kernel.lookup(FAULT_OUTSIDE_RANGE_VA)
    assert outside is not None and (outside & uat.OA_MASK_FULL) >> 42 == 0
    beyond = kernel.lookup(FAULT_OA_BEYOND_OAS_VA)
    assert beyond is not None and (beyond & uat.OA_MASK_FULL) >> 42 == 1
    reports = list(kernel.reports)
    with pytest.raises(EINVAL, match="outside the managed range"):
        kernel.map_pages(FAULT_OUTSIDE_RANGE_VA + PAGE, 0x100_0000_0000, PAGE, "FW_PRIV_RW")
    with pytest.raises(EINVAL, match="beyond the 42-bit OAS"):
        kernel.map_pages(FAULT_OA_BEYOND_OAS_VA + PAGE, 1 << 42, PAGE, "FW_PRIV_RW")
    with pytest.raises(EINVAL, match="not a 16 KiB page"):
        kernel.raw_write_leaf(FAULT_OUTSIDE_RANGE_VA + 8, 0)
    with pytest.raises(EINVAL, match="does not fit 64 bits"):
        kernel.raw_write_leaf(FAULT_OUTSIDE_RANGE_VA, 1 << 64)
    kernel.raw_write_leaf(FAULT_OUTSIDE_RANGE_VA + PAGE, 0x100_0000_0000 | 3)
    assert kernel.lookup(FAULT_OUTSIDE_RANGE_VA + PAGE) == 0x100_0000_0000 | 3
    assert kernel.reports == reports
    with pytest.raises(ENOENT, match="unexpected upper-level entry"):
        kernel.raw_write_leaf(BAD_L2_VA, 0)
