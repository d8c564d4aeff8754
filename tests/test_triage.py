"""Triage of one dump (``dumpview.model.triage``): every fact against the simulator's own plants
and an independent ELF reader (pyelftools), where the FAR sits (``model.place``), the driver's
VA layout in one place, the anomaly severity order, and the signature: stable across seeds of
one scenario, different across scenarios, numbers masked."""

from __future__ import annotations

import collections
import itertools
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

import dumpview
from dumpview.model.check import KINDS, SEVERE_KINDS, SEVERITY, SEVERITY_RANK
from dumpview.model.location import parse_location
from dumpview.model.place import nearest_mappings, region_of
from dumpview.model.triage import mask_numbers, panic_hash, triage
from dumpview.sim import asahi, crashlog, scenarios
from dumpview.sim.scenarios import RANGES, USER_VA_START, generate_file
from formats import uat

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
BAD_L2_VA = RANGES["SHARED_RO"][0] + 0x8000_0000  # the faults scenario's bad L2 entry
FAULTS_FAR = BAD_L2_VA + 0x20
GPU_HOLE_FAR = RANGES["GPU"][0] + 0x100_0000  # asahi-kernel's unmapped FAR


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One dump per scenario (two seeds of some), generated once for the module."""
    out = tmp_path_factory.mktemp("triage")
    specs = {
        "minimal": {"scenario": "minimal"},
        "asahi-kernel": {"scenario": "asahi-kernel", "seed": 1},
        "asahi-kernel-2": {"scenario": "asahi-kernel", "seed": 2},
        "faults-1": {"scenario": "faults", "seed": 1},
        "faults-2": {"scenario": "faults", "seed": 2},
        "user-contexts": {"scenario": "user-contexts", "seed": 5},
        "large": {"scenario": "large", "seed": 1, "knobs": {"mapped_mib": 2}},
        "smmu": {"scenario": "smmu", "entry_format": "lpae-4k"},
        "lpae-faults": {"scenario": "faults", "entry_format": "lpae-16k", "seed": 3},
        "lpae-faults-2": {"scenario": "faults", "entry_format": "lpae-16k", "seed": 4},
        "asahi-driver": {"scenario": "asahi-kernel", "seed": 1, "driver_layout": True},
    }
    paths = {}
    for name, spec in specs.items():
        paths[name] = out / f"{name}.dump"
        generate_file(paths[name], **spec)
    return paths


def extents_from_elf(path: Path) -> list[tuple[int, int]]:
    """Runs of VA-contiguous PT_LOADs, read with pyelftools (independent of the model)."""
    with open(path, "rb") as f:
        loads = sorted(
            (s["p_vaddr"], s["p_vaddr"] + s["p_memsz"])
            for s in ELFFile(f).iter_segments()
            if s["p_type"] == "PT_LOAD" and s["p_memsz"]
        )
    out: list[list[int]] = []
    for start, end in loads:
        if out and out[-1][1] == start:
            out[-1][1] = end
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def neighbours(extents: list[tuple[int, int]], va: int) -> tuple:
    below = [e for e in extents if e[1] <= va]
    above = [e for e in extents if e[0] > va]
    inside = [e for e in extents if e[0] <= va < e[1]]
    return (
        inside[0] if inside else None,
        below[-1] if below else None,
        above[0] if above else None,
    )


def assert_locations_parse(report) -> None:
    """Every line's location reads back through the one parser the inspector's go-to uses."""
    for line in report.lines():
        if line.location is not None:
            assert parse_location(str(line.location)) == line.location, line


# ---- one dump, fact by fact --------------------------------------------------------------------


def test_faults_sample_far_under_the_bad_l2_entry() -> None:
    path = SAMPLES / "faults.dump"
    with dumpview.open_dump(path) as dump:
        report = dump.triage()
        assert isinstance(report, type(triage(dump)))
        index = dump.tables_index
        e = report.exception
        assert (e.ec, e.fsc, e.fault_level, e.access, e.far) == (0x25, 0x07, 3, "read", FAULTS_FAR)
        w = report.far_walk
        assert w.context is None and w.outcome == "L2-invalid" and not w.walk.mapped
        stop = w.stop_entry
        assert stop.level == 2 and stop.index == (BAD_L2_VA >> 25) & 0x7FF
        # The entry, read from the carried table itself: the value the scenario planted.
        assert int(index.entries_at(stop.table_pa)[stop.index]) == stop.value == 0x0BAD_0000_0001
        assert w.comparison.agrees is False and w.comparison.level == 3
        assert report.region.name == "SHARED_RO"
        assert (report.region.va_start, report.region.va_end) == RANGES["SHARED_RO"][:2]
        n = report.nearest
        _inside, below, above = neighbours(extents_from_elf(path), FAULTS_FAR)
        assert n.inside is None
        assert (n.below.va_start, n.below.va_end) == below
        assert (n.above.va_start, n.above.va_end) == above
        assert n.below.distance_bytes == FAULTS_FAR - below[1]
        assert n.above.distance_bytes == above[0] - FAULTS_FAR
        assert n.below.edge.va == below[1] - uat.PAGE_SIZE and n.below.edge.mapped
        # Ccdp: exactly the planted pair disagrees.
        assert report.ccdp_pairs == 4
        assert [c.va for c in report.ccdp_disagree] == [RANGES["PRIV"][0]]
        # Anomalies: the counts check gives, most severe first.
        counts = {k: n for k, n in dump.check().counts().items() if n}
        assert {k.kind: k.count for k in report.anomalies} == counts
        ranks = [SEVERITY_RANK[k.kind] for k in report.anomalies]
        assert ranks == sorted(ranks) and report.anomalies[0].kind == "unexpected-table-entry"
        # Pages not dumped by reason, against the page records one by one.
        expected = collections.Counter(
            (p.reason, p.reason_detail) for p in dump.pages() if not p.dumped
        )
        assert {(c.reason, c.detail): c.pages for c in report.not_dumped} == dict(expected)
        total, dumped = dump.page_totals
        assert sum(c.pages for c in report.not_dumped) == total - dumped
        for c in report.not_dumped:
            assert dump.page(c.first_va).reason == c.reason
        assert [c.context for c in report.contexts] == [0]
        assert report.signature == (
            f"v1:data-abort:translation-l3:SHARED_RO:L2-invalid:{panic_hash(report.panic)}"
        )
    text = "\n".join(line.text for line in report.lines())
    assert "DISAGREE" in text and f"{FAULTS_FAR:#x}" in text and "[1344]" in text
    assert len(report.lines()) <= 40  # a screen
    assert_locations_parse(report)


def test_asahi_kernel_unmapped_gpu_far_and_its_nearest_mappings(generated) -> None:
    path = generated["asahi-kernel"]
    with dumpview.open_dump(path) as dump:
        report = dump.triage()
    w = report.far_walk
    assert report.exception.far == GPU_HOLE_FAR and not w.walk.mapped
    assert w.outcome == f"L{w.walk.stopped_level}-empty" and w.comparison.agrees is True
    assert report.region.name == "GPU" and report.region.source == "driver-layout"
    inside, below, above = neighbours(extents_from_elf(path), GPU_HOLE_FAR)
    n = report.nearest
    assert inside is None and n.inside is None
    assert below[0] == RANGES["GPU"][0]  # the GPU range's objects, below the hole
    assert (n.below.va_start, n.below.va_end, n.below.distance_bytes) == (
        *below,
        GPU_HOLE_FAR - below[1],
    )
    assert (n.above.va_start, n.above.va_end) == above
    phrase = n.below.phrase()
    assert phrase.startswith(f"{GPU_HOLE_FAR - below[1]:#x} bytes")
    assert f"past the end of {below[0]:#x}-{below[1]:#x}" in phrase
    assert_locations_parse(report)


def test_user_contexts_far_is_walked_in_a_user_context() -> None:
    with dumpview.open_dump(SAMPLES / "user-contexts.dump") as dump:
        report = dump.triage()
        vm1 = 0x1_0000_0000 + 1 * 0x1000_0000  # where the scenario maps context 1's buffers
        w = report.far_walk
        assert report.exception.far == USER_VA_START
        assert w.candidates == (1, 2) and w.context == 1
        assert w.walk.context == 1 and w.walk.steps  # its own tables, walked
        assert w.outcome == f"L{w.walk.stopped_level}-empty"
        assert report.region.name == "user" and report.region.context == 1
        assert (report.region.va_start, report.region.va_end) == (
            scenarios.USER_VA_START,
            scenarios.USER_VA_END,
        )
        n = report.nearest
        assert n.below is None and n.inside is None
        assert n.above.va_start == vm1 and n.above.context == 1
        assert n.above.edge.context_dumped is False  # the dump has context 1's tables only
        assert n.above.edge.pa == dump.translate(vm1, context=1).pa
    lines = report.lines()
    far_lines = [line for line in lines if line.section == "far"]
    assert all(line.location == parse_location("1:0x4000") for line in far_lines)
    assert "contexts whose half holds it: 1, 2" in far_lines[0].text
    assert report.signature.split(":")[3:5] == ["user", w.outcome]
    assert_locations_parse(report)


def test_driver_layout_dump_names_the_region_from_the_driver_layout() -> None:
    with (
        dumpview.open_dump(SAMPLES / "minimal-driver.dump") as driver,
        dumpview.open_dump(SAMPLES / "minimal.dump") as ours,
    ):
        a, b = driver.triage(), ours.triage()
    assert a.region.name == "PRIV" and a.region.source == "driver-layout"
    assert a.far_walk.walk.rebuilt and a.far_walk.walk.mapped
    assert a.nearest.inside.va_start == RANGES["PRIV"][0]
    assert a.contexts[0].ttb_pa is None
    # The same bug, with and without the extension: one signature.
    assert (
        a.signature
        == b.signature
        == f"v1:insn-abort:permission-l3:PRIV:mapped:{panic_hash(a.panic)}"
    )
    assert_locations_parse(a)


def test_lpae_dump_without_a_crash_log_still_gets_a_report(generated) -> None:
    with dumpview.open_dump(SAMPLES / "smmu-lpae4k.dump") as dump:
        report = dump.triage()
        kinds = [k for k in SEVERITY if dump.check().counts()[k]]
    assert report.crashlogs == 0 and report.exception is None and report.far_walk is None
    assert report.signature == f"v1:no-crashlog:lpae:{kinds[0]}"
    lines = report.lines()
    assert lines[1].text == "no crash log (no RTKIT note)"
    assert {line.section for line in lines} >= {"signature", "anomalies", "not-dumped", "contexts"}
    with dumpview.open_dump(generated["lpae-faults"]) as dump:
        faults = dump.triage()
    assert faults.signature == "v1:no-crashlog:lpae:unexpected-table-entry"


def test_report_dict_carries_what_the_lines_say(generated) -> None:
    with dumpview.open_dump(generated["faults-1"]) as dump:
        record = dump.triage().to_dict()
    assert record["record"] == "triage" and record["far_walk"]["outcome"] == "L2-invalid"
    assert record["far_walk"]["stop_entry"]["value"] == "0xbad00000001"
    assert record["exception"]["far"] == f"{FAULTS_FAR:#x}"
    assert [a["severity"] for a in record["anomalies"]] == sorted(
        a["severity"] for a in record["anomalies"]
    )


# ---- the signature -------------------------------------------------------------------------------


def test_signature_is_stable_across_seeds_and_differs_across_scenarios(generated) -> None:
    sig = {}
    for name, path in generated.items():
        with dumpview.open_dump(path) as dump:
            sig[name] = dump.triage().signature
    assert sig["faults-1"] == sig["faults-2"]
    assert sig["asahi-kernel"] == sig["asahi-kernel-2"]
    assert sig["lpae-faults"] == sig["lpae-faults-2"]
    distinct = [
        "minimal",
        "asahi-kernel",
        "faults-1",
        "user-contexts",
        "large",
        "smmu",
        "lpae-faults",
    ]
    assert len({sig[name] for name in distinct}) == len(distinct), sig
    assert all(s.startswith("v1:") for s in sig.values())


def test_masked_numbers() -> None:
    a = "GPU firmware panic: page fault at 0xffffffaa80000020 (data abort) after 12 ms"
    b = "GPU firmware panic: page fault at 0xFFFFFFA000000040 (data abort)  after 7 ms"
    assert mask_numbers(a) == "GPU firmware panic: page fault at <hex> (data abort) after <n> ms"
    assert mask_numbers(a) == mask_numbers(b) and panic_hash(a) == panic_hash(b)
    assert mask_numbers("ptr ffffffa000000040 task 3") == "ptr <hex> task <n>"
    assert mask_numbers("0x1_0000_0000 deadbeef") == "<hex> <hex>"
    assert panic_hash("ASSERT failed: ptr != NULL") != panic_hash("ASSERT failed: len < max")
    assert panic_hash(None) == "no-panic" and len(panic_hash("x")) == 8


# ---- where an address sits -----------------------------------------------------------------------


def test_driver_layout_lives_in_formats_and_the_simulator_uses_it() -> None:
    parts = uat.UAT_KERNEL_VA_LAYOUT
    assert [p.name for p in parts] == [
        "firmware", "PRIV", "GPU_RO", "SHARED", "SHARED_RO", "GPU", "RTKIT", "TIMESTAMP", "MMIO",
    ]  # fmt: skip
    assert all(a.va_end <= b.va_start for a, b in itertools.pairwise(parts))
    assert parts[0].va_start == uat.UAT_VA_BASE_UPPER and parts[-1].va_end == uat.UAT_KERNEL_VA_END
    assert {p.name: (p.va_start, p.va_end, p.prot) for p in parts if p.prot} == RANGES
    assert next(p for p in parts if p.name == "TIMESTAMP").va_start == 0xFFFF_FFAE_1000_0000
    assert all(p.prot is None or p.prot in uat.PROTS for p in parts)


def test_region_of_every_part_of_the_kernel_layout() -> None:
    with dumpview.open_dump(SAMPLES / "minimal-driver.dump") as dump:
        for part in uat.UAT_KERNEL_VA_LAYOUT:
            for va in (part.va_start, part.va_end - 1):
                region = region_of(dump, va)
                assert (region.name, region.va_start, region.va_end) == (
                    part.name,
                    part.va_start,
                    part.va_end,
                )
        assert region_of(dump, 0xFFFF_FFAE_2000_0000).name == "kernel-gap"
        assert region_of(dump, uat.UAT_KERNEL_VA_END).name == "beyond-kernel-range"
        assert region_of(dump, 0x4000).name == "outside"
    with dumpview.open_dump(SAMPLES / "smmu-lpae4k.dump") as dump:
        space = dump.extension.spaces[0]
        assert region_of(dump, space.managed_va_start).name == "managed"
        assert region_of(dump, space.managed_va_start - 1).name == "outside-managed"
        assert region_of(dump, 1 << 60).name == "outside"
        assert region_of(dump, 0x1000, context=7).name == "outside"


def test_nearest_mappings_inside_and_at_the_edges() -> None:
    path = SAMPLES / "minimal.dump"
    extents = extents_from_elf(path)
    with dumpview.open_dump(path) as dump:
        first, last = extents[0], extents[-1]
        n = nearest_mappings(dump, first[0])
        assert n.inside.va_start == first[0] and n.inside.distance_bytes == 0 and n.below is None
        assert (n.above.va_start, n.above.va_end) == extents[1]
        n = nearest_mappings(dump, last[1] + 0x40)
        assert n.above is None and n.below.distance_bytes == 0x40
        assert n.below.phrase().startswith("0x40 bytes past the end of")
        assert nearest_mappings(dump, 0x1000, context=9).all() == []


def test_severity_order_is_a_permutation_of_the_kinds() -> None:
    assert sorted(SEVERITY) == sorted(KINDS)
    assert SEVERITY[0] == "unexpected-table-entry" and SEVERITY[-1] == "empty-table"
    assert set(SEVERITY[:8]) == SEVERE_KINDS and "ram-not-dumped" not in SEVERE_KINDS


def test_far_on_a_leaf_beyond_the_oas_shows_both_pas(tmp_path: Path, monkeypatch) -> None:
    """The faults scenario with its FAR moved onto the leaf whose output address has a bit at
    the OAS: the walk line gives pa and what the entry says (pa_raw)."""
    far = asahi.FAULT_OA_BEYOND_OAS_VA + 0x18
    build = scenarios.Builder._build_faults

    def moved(self) -> None:
        build(self)
        self.m.far, self.m.fsc = far, crashlog.ESR_FSC_PERMISSION | 3

    monkeypatch.setattr(scenarios.Builder, "_build_faults", moved)
    path = tmp_path / "beyond.dump"
    generate_file(path, scenario="faults", seed=1)
    with dumpview.open_dump(path) as dump:
        report = dump.triage()
        walk = dump.translate(far)
    w = report.far_walk
    assert w.walk.mapped and w.walk.pa == walk.pa and w.walk.pa_raw == walk.pa_raw
    assert walk.pa_raw == walk.pa | (1 << dump.geometry.oas)
    (line,) = [x.text for x in report.lines() if x.section == "far" and "->" in x.text]
    assert f"PA {walk.pa:#x} (entry says {walk.pa_raw:#x}: bits above the 42-bit OAS)" in line
    assert report.region.name == "SHARED" and w.outcome == "mapped"
    assert report.to_dict()["far_walk"]["walk"]["pa_raw"] == f"{walk.pa_raw:#x}"
