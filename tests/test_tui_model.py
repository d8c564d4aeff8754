"""The model pieces the inspector reads: anomalies by severity and which entries they are about,
the one-line search query, a region's first mapping, the ranges filter, bookmark notes.

Expected values come from independent computations over the same dumps (plain loops over
``Dump.pages``, ``check``'s records, ``RangeTable.row``), never from the code under test.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from tui_pilot import FAULTS, MINIMAL, SAMPLES, copy_sample, model

from dumpview.model.anomalies import RANK, AnomalyMarks, grouped, leaf_entries
from dumpview.model.bookmarks import Bookmark, Bookmarks, sidecar_path
from dumpview.model.check import KINDS, SEVERITY, SEVERITY_RANK
from dumpview.model.levels import EntryRow, LevelTree
from dumpview.model.memmap import first_mapping, memory_map
from dumpview.model.ranges import RangeFilter, parse_range_filter, ranges
from dumpview.model.search import parse_query
from dumpview.model.text import data_state

SMMU = SAMPLES / "smmu-lpae4k.dump"


# ---- anomalies ---------------------------------------------------------------------------------


def test_groups_follow_severity_and_keep_every_finding() -> None:
    assert sorted(SEVERITY) == sorted(KINDS)
    assert RANK is SEVERITY_RANK  # one order of the kinds: check's
    with model(FAULTS) as dump:
        result = dump.check()
    groups = grouped(result)
    kinds = [g.kind for g in groups]
    assert kinds == [k for k in SEVERITY if k in {a.kind for a in result.anomalies}]
    assert len(kinds) == len(set(kinds)) >= 8  # faults.dump plants most kinds
    assert sum(len(g) for g in groups) == len(result.anomalies)
    for group in groups:
        assert all(a.kind == group.kind for a in group.anomalies)
        assert group.description and len(group) == result.counts()[group.kind]


def _entries_about(tree: LevelTree, marks: AnomalyMarks, table) -> dict[int, bool]:
    rows = tree.rows(table)
    span = rows.level_geometry.entry_span_bytes
    flags = marks.marks(table.context, rows.entry_vas, span, leaf_entries(rows))
    return {i: bool(flags[i]) for i in range(len(flags))}


@pytest.mark.parametrize("sample", [FAULTS, SMMU], ids=["faults", "smmu"])
def test_marks_are_the_entries_each_finding_is_about(sample: Path) -> None:
    """Every finding with a VA marks exactly the entries the module's rule names, checked
    against a plain loop over the findings for every table on the way to each of them."""
    with model(sample) as dump:
        result = dump.check()
        tree = LevelTree(dump)
        page = dump.page_size_bytes
        marks = AnomalyMarks(result.anomalies, page, tree.dumped_context)
        tables = set()
        for a in result.anomalies:
            if a.va is not None:
                ctx = tree.dumped_context if a.context is None else a.context
                for vas in a.vas or (a.va,):
                    tables.update(t for t, _ in tree.path_to(vas, ctx))
        assert tables
        for table in tables:
            rows = tree.rows(table)
            span = rows.level_geometry.entry_span_bytes
            got = _entries_about(tree, marks, table)
            for i, marked in got.items():
                va = table.va_start + i * span
                entry = rows.entry(i)
                leaf = entry.type_name == "block" or (
                    rows.is_leaf_level and entry.type_name != "empty"
                )
                expected = False
                for a in result.anomalies:
                    if (
                        a.va is None
                        or (tree.dumped_context if a.context is None else a.context)
                        != table.context
                    ):
                        continue
                    length = a.va_end - a.va
                    if a.pages or length <= page:
                        expected |= leaf and any(
                            v < va + span and va < v + length for v in (a.vas or (a.va,))
                        )
                    else:
                        expected |= a.va == va and length == span
                assert marked == expected, (table, i, hex(va))
                about = marks.about(table.context, va, span, leaf)
                assert bool(about) == expected
                assert [RANK_OF(a) for a in about] == sorted(RANK_OF(a) for a in about)


def RANK_OF(anomaly) -> int:
    return SEVERITY.index(anomaly.kind)


def test_an_empty_table_finding_marks_the_entry_pointing_to_it() -> None:
    with model(FAULTS) as dump:
        result = dump.check()
        tree = LevelTree(dump)
        marks = AnomalyMarks(result.anomalies, dump.page_size_bytes, tree.dumped_context)
        empty = next(a for a in result.anomalies if a.kind == "empty-table")
        parent, index = next(
            (t, i)
            for t, i in tree.path_to(empty.va)
            if tree.geometry.levels[t.depth].entry_span_bytes == empty.va_end - empty.va
        )
        assert _entries_about(tree, marks, parent)[index]
        rows = tree.rows(parent)
        assert rows.child(index).pa == empty.pa  # the entry points to the empty table


# ---- search query --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, kind, pattern",
    [
        ('"GPU firmware"', "string", b"GPU firmware"),
        ("'a b '", "string", b"a b "),
        ('"unterminated', "string", b"unterminated"),
        ('  "x"  ', "string", b"x"),
        ("de ad be ef", "hex", bytes.fromhex("deadbeef")),
        ("0xdeadbeef", "hex", bytes.fromhex("deadbeef")),
        ("u32:0x12345678", "u32", struct.pack("<I", 0x12345678)),
        ("U64:18", "u64", struct.pack("<Q", 18)),
    ],
)
def test_parse_query_reads_its_kind_from_the_line(typed: str, kind: str, pattern: bytes) -> None:
    assert parse_query(typed) == (kind, pattern)


@pytest.mark.parametrize(
    "typed, message",
    [
        ("zz 12", "hex pattern: 'z' is not a hex digit (a string goes in quotes: \"zz 12\")"),
        ("abc", 'hex pattern: 3 digits, need an even number (a string goes in quotes: "abc")'),
        ('""', "string pattern is empty"),
        ("u32:-1", "u32 pattern: -1 is out of range 0..0xffffffff"),
        ("u64:ten", "u64 pattern: 'ten' is not a decimal or 0x number"),
        ("u32:0x100000000", "u32 pattern: 0x100000000 is out of range 0..0xffffffff"),
    ],
)
def test_parse_query_errors_are_one_line(typed: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_query(typed)
    assert str(raised.value) == message


# ---- memory map --------------------------------------------------------------------------------


def test_first_mapping_is_the_lowest_mapped_pa_of_each_region() -> None:
    with model(FAULTS) as dump:
        rows, _ = memory_map(dump)
        pages = list(dump.pages())
        assert rows
        for row in rows:
            inside = [p for p in pages if row.base <= p.pa < row.end]
            found = first_mapping(dump, row.base, row.end)
            if not inside:
                assert found is None and row.mapped_pages == 0
                continue
            pa = min(p.pa for p in inside)
            assert found == (pa, min(p.va for p in inside if p.pa == pa))
        assert first_mapping(dump, 5, 5) is None
        assert first_mapping(dump, 0, 1 << 64) == (
            min(p.pa for p in pages),
            min(p.va for p in pages if p.pa == min(q.pa for q in pages)),
        )


# ---- ranges filter -------------------------------------------------------------------------------


def test_parse_range_filter_states_and_words() -> None:
    assert parse_range_filter("") == (None, ())
    assert parse_range_filter("Dumped cached") == (True, ("cached",))
    assert parse_range_filter("not dumped  no-map") == (False, ("no-map",))
    assert parse_range_filter("undumped") == (False, ())
    with pytest.raises(ValueError, match="either dumped or not dumped"):
        parse_range_filter("dumped not-dumped")


@pytest.mark.parametrize("sample", [FAULTS, SMMU, MINIMAL], ids=["faults", "smmu", "minimal"])
def test_range_filter_matches_a_row_by_row_reading(sample: Path) -> None:
    with model(sample) as dump:
        table = ranges(dump)
        rows = [table.row(i) for i in range(len(table))]
        texts = [
            f"{r.memattr_name} {r.views[0]} {r.views[1]} "
            f"{data_state(r.dumped, r.reason, r.reason_detail)} {r.kind}".lower()
            for r in rows
        ]
        filt = RangeFilter(table)
        for query in (
            "",
            "dumped",
            "not dumped",
            "device",
            "no-map",
            "cach",
            "rw",
            "not dumped mmio",
        ):
            state, words = parse_range_filter(query)
            expected = [
                i
                for i, (r, text) in enumerate(zip(rows, texts, strict=True))
                if (state is None or r.dumped == state)
                and all(
                    any(
                        token.startswith(w)
                        for token in text.replace("(", " ")
                        .replace(")", " ")
                        .replace(":", " ")
                        .replace(",", " ")
                        .split()
                    )
                    for w in words
                )
            ]
            assert filt.rows(query).tolist() == expected, query
        uncached = [i for i, r in enumerate(rows) if r.memattr_name == "uncached"]
        assert not set(uncached) & set(filt.rows("cached").tolist())  # words, not substrings


# ---- bookmarks -----------------------------------------------------------------------------------


def test_bookmark_notes_round_trip_and_old_sidecars_still_load(tmp_path: Path) -> None:
    dump_path = copy_sample(MINIMAL, tmp_path)
    marks = Bookmarks.load(dump_path)
    marks.add(0xFFFF_FF80_0000_0013, "page 0xffffff8000000000 + 0x13", "magic here")
    marks.add(0xFFFF_FF80_0000_4000, "L3[1] gpu dumped")
    marks.save()
    document = json.loads(sidecar_path(dump_path).read_text())
    assert document["bookmarks"] == [
        {
            "va": "0xffffff8000000013",
            "label": "page 0xffffff8000000000 + 0x13",
            "note": "magic here",
        },
        {"va": "0xffffff8000004000", "label": "L3[1] gpu dumped"},
    ]
    again = Bookmarks.load(dump_path)
    assert again.warning is None
    assert again.items == [
        Bookmark(0xFFFF_FF80_0000_0013, "page 0xffffff8000000000 + 0x13", "magic here"),
        Bookmark(0xFFFF_FF80_0000_4000, "L3[1] gpu dumped", ""),
    ]
    assert again.get(0xFFFF_FF80_0000_0013).note == "magic here"
    assert again.get(0xFFFF_FF80_0000_0014) is None
    document["bookmarks"][0]["note"] = 7
    sidecar_path(dump_path).write_text(json.dumps(document))
    bad = Bookmarks.load(dump_path)
    assert bad.items == [] and "bookmark #0: bookmark note 7 is not text" in bad.warning
    with pytest.raises(ValueError, match="not text"):
        again.add(1, "x", None)  # type: ignore[arg-type]


def test_leaf_entries_are_pages_and_blocks() -> None:
    with model(SMMU) as dump:
        tree = LevelTree(dump)
        seen_block = False
        for table in {t for p in dump.pages() for t, _ in tree.path_to(p.va)}:
            rows = tree.rows(table)
            mask = leaf_entries(rows)
            for i in np.flatnonzero(rows.present).tolist():
                entry = rows.entry(i)
                assert isinstance(entry, EntryRow)
                is_leaf = entry.type_name == "block" or (
                    rows.is_leaf_level and entry.type_name == "page"
                )
                seen_block |= entry.type_name == "block"
                assert bool(mask[i]) == is_leaf, (table, i, entry.type_name)
        assert seen_block
