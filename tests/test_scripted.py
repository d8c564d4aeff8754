"""The scripted surface: export (JSON/JSONL, schema dumpview-export/1), schema, ranges, ptov,
search, check and diff on the command line and through the Python API.

Every export and every --json document here is validated against the shipped JSON Schema.
Expected values come from independent readers: the scalar model (``Dump.pages``), pyelftools
over the same file, and plain byte searches over the file's segments.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from elftools.elf.elffile import ELFFile

import dumpview
from dumpview.model import open_dump
from dumpview.model.export import (
    EXPORT_KINDS,
    RECORD_NAMES,
    SCHEMA_ID,
    export,
    parse_kinds,
    schema,
)
from dumpview.model.ranges import human_size
from dumpview.sim.scenarios import generate_file
from formats import lpae, uat

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_DUMPS = sorted(SAMPLES.glob("*.dump"))
VALIDATOR = jsonschema.Draft202012Validator(schema())


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def validate(obj: object) -> None:
    errors = sorted(VALIDATOR.iter_errors(obj), key=lambda e: list(e.absolute_path))
    assert not errors, f"{list(errors[0].absolute_path)}: {errors[0].message[:500]}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def scatter(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Scattered PAs, 30% refused pages: with tables and in the driver layout."""
    out = tmp_path_factory.mktemp("scripted")
    knobs = {"mapped_mib": 16, "scatter": True, "dumped_percent": 70}
    paths = {}
    for name, driver in (("tables", False), ("driver", True)):
        paths[name] = out / f"scatter-{name}.dump"
        generate_file(paths[name], scenario="large", seed=11, knobs=knobs, driver_layout=driver)
    return paths


def all_paths(scatter: dict[str, Path]) -> list[Path]:
    return [*SAMPLE_DUMPS, *scatter.values()]


# ---- the schema ---------------------------------------------------------------------------------


def test_schema_command_prints_the_shipped_schema() -> None:
    proc = run("schema")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert doc == schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["title"] == SCHEMA_ID == "dumpview-export/1"


@pytest.mark.parametrize(
    "bad",
    [
        {"record": "page", "va": 4096},  # a number where a hex string belongs
        {"schema": "dumpview-export/2"},
        {"schema": SCHEMA_ID, "pages": [{"record": "page", "va": "0xABC"}]},  # uppercase hex
        {"schema": SCHEMA_ID, "surprise": 1},
    ],
)
def test_schema_rejects_what_it_should(bad: dict) -> None:
    assert list(VALIDATOR.iter_errors(bad))


# ---- export -------------------------------------------------------------------------------------


def expected_page(record, dump) -> dict:
    """A page record's members as formats/ computes them (UAT or LPAE views, by format)."""
    memattr = (record.pte >> 2) & 7
    if dump.entry_format.name == "uat":
        names = uat.MEMATTR_NAMES
        views = {"firmware": uat.firmware_view(record.pte), "gpu": uat.gpu_view(record.pte)}
    else:
        names = lpae.MEMATTR_NAMES
        views = {
            "privileged": lpae.privileged_view(record.pte),
            "unprivileged": lpae.unprivileged_view(record.pte),
        }
    return {
        "va": f"{record.va:#x}",
        "pa": f"{record.pa:#x}",
        "pte": f"{record.pte:#x}",
        "pte_exact": record.pte_exact,
        "flags": f"{record.flags:#x}",
        "dumped": record.dumped,
        "reason": record.reason,
        "reason_detail": record.reason_detail,
        "memattr": memattr,
        "memattr_name": names[memattr],
        **views,
    }


def test_jsonl_pages_match_the_model_and_validate(scatter: dict[str, Path]) -> None:
    for path in all_paths(scatter):
        with open_dump(path) as dump:
            out = io.StringIO()
            stats = export(dump, out, fmt="jsonl")
            lines = jsonl(out.getvalue())
            for line in lines:
                validate(line)
            assert lines[0]["record"] == "header" and lines[0]["schema"] == SCHEMA_ID
            assert lines[0]["include"] == list(EXPORT_KINDS)
            assert lines[-1] == {"record": "end", "counts": stats.counts}
            pages = [r for r in lines if r["record"] == "page"]
            records = list(dump.pages())
            assert len(pages) == len(records) == stats.counts["page"]
            for got, want in zip(pages, records, strict=True):
                subset = {k: got[k] for k in expected_page(want, dump)}
                assert subset == expected_page(want, dump), path.name
                if dump.tables_index is not None:
                    steps = dump.translate(want.va).steps
                    assert got["table_path"] == [
                        {"level": s.level, "table": f"{s.table_pa:#x}", "index": s.index}
                        for s in steps
                    ]
                else:
                    assert got["table_path"] is None
            counts = {name: sum(r["record"] == name for r in lines) for name in stats.counts}
            assert counts == stats.counts
            assert counts["info"] == 1 and counts["crashlog"] == len(dump.crashlogs)


def test_pages_agree_with_pyelftools(scatter: dict[str, Path]) -> None:
    """An independent ELF reader: every page's VA, PA and dumped state from the PT_LOADs."""
    path = scatter["driver"]
    expected = []
    with path.open("rb") as fp:
        for seg in ELFFile(fp).iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            for off in range(0, seg["p_memsz"], uat.PAGE_SIZE):
                dumped = off + uat.PAGE_SIZE <= seg["p_filesz"]
                expected.append((seg["p_vaddr"] + off, seg["p_paddr"] + off, dumped))
    expected.sort()
    with open_dump(path) as dump:
        out = io.StringIO()
        export(dump, out, include="pages")
    got = [
        (int(r["va"], 16), int(r["pa"], 16), r["dumped"])
        for r in jsonl(out.getvalue())
        if r["record"] == "page"
    ]
    assert got == expected


def test_json_document_validates_and_holds_the_same_records(scatter: dict[str, Path]) -> None:
    for path in all_paths(scatter):
        with open_dump(path) as dump:
            lines_out, doc_out = io.StringIO(), io.StringIO()
            export(dump, lines_out, fmt="jsonl")
            export(dump, doc_out, fmt="json")
        doc = json.loads(doc_out.getvalue())
        validate(doc)
        lines = jsonl(lines_out.getvalue())
        assert doc["schema"] == SCHEMA_ID
        assert doc["counts"] == lines[-1]["counts"]
        for kind in EXPORT_KINDS:
            key = kind.replace("-", "_")
            from_lines = [r for r in lines if r["record"] == RECORD_NAMES[kind]]
            if kind == "info":
                assert [doc[key]] == from_lines
            else:
                assert doc[key] == from_lines, (path.name, kind)


def test_with_data_carries_each_dumped_page_and_null_for_holes(scatter: dict[str, Path]) -> None:
    path = scatter["tables"]
    with open_dump(path) as dump:
        out = io.StringIO()
        export(dump, out, include=["pages"], with_data=True)
        pages = [r for r in jsonl(out.getvalue()) if r["record"] == "page"]
        assert any(not p["dumped"] for p in pages) and any(p["dumped"] for p in pages)
        for page in pages:
            validate(page)
            if page["dumped"]:
                data = base64.b64decode(page["data_base64"])
                assert data == bytes(dump.read_va(int(page["va"], 16), uat.PAGE_SIZE))
            else:
                assert page["data_base64"] is None
                assert page["reason"]  # why not: never zeros


def test_ranges_records_match_the_range_table(scatter: dict[str, Path]) -> None:
    for path in all_paths(scatter):
        with open_dump(path) as dump:
            table = dump.ranges()
            out = io.StringIO()
            export(dump, out, include="ranges")
            records = [r for r in jsonl(out.getvalue()) if r["record"] == "range"]
            assert len(records) == len(table)
            for i, record in enumerate(records):
                row = table.row(i)
                assert record["va_start"] == f"{row.va_start:#x}"
                assert record["va_end"] == f"{row.va_end:#x}"
                assert record["size"] == human_size(row.size_bytes)
                assert record["pa_start"] == f"{row.pa_start:#x}"
                assert record["pte"] == f"{row.pte:#x}"
                assert (record["dumped"], record["reason"], record["reason_detail"]) == (
                    row.dumped,
                    row.reason,
                    row.reason_detail,
                )
                keys = dump.entry_format.view_keys
                assert (record[keys[0]], record[keys[1]], record["kind"]) == (
                    *row.views,
                    row.kind,
                )


def test_tables_records_cover_every_carried_table() -> None:
    path = SAMPLES / "user-contexts.dump"
    with open_dump(path) as dump:
        out = io.StringIO()
        export(dump, out, include="tables")
        tables = [r for r in jsonl(out.getvalue()) if r["record"] == "table"]
        nodes = dump.tables_index.nodes
        assert {(t["context"], int(t["pa"], 16)) for t in tables} == {
            (n.context, n.pa) for n in nodes
        }
        for table in tables:
            entries = dump.tables_index.entries_at(int(table["pa"], 16))
            nonzero = [i for i, v in enumerate(entries.tolist()) if v & 3]
            assert [e["index"] for e in table["entries"]] == nonzero
            for e in table["entries"]:
                assert int(e["value"], 16) == int(entries[e["index"]])


def test_driver_dump_tables_are_rebuilt_with_unrecorded_upper_values() -> None:
    with open_dump(SAMPLES / "minimal-driver.dump") as dump:
        out = io.StringIO()
        export(dump, out, include="tables")
        tables = [r for r in jsonl(out.getvalue()) if r["record"] == "table"]
        total_pages = dump.page_totals[0]
    assert tables and all(t["rebuilt"] and t["pa"] is None for t in tables)
    leaf_level = max(t["level"] for t in tables)
    leaves = [e for t in tables if t["level"] == leaf_level for e in t["entries"]]
    upper = [e for t in tables if t["level"] != leaf_level for e in t["entries"]]
    assert len(leaves) == total_pages and all(not e["exact"] for e in leaves)
    assert upper and all(e["value"] is None for e in upper)


def test_parse_kinds() -> None:
    assert parse_kinds("pages, tables") == ("tables", "pages")
    assert parse_kinds("memory_map") == ("memory-map",)
    assert parse_kinds("all") == EXPORT_KINDS
    for bad in ("pages,nope", "", " , "):
        with pytest.raises(ValueError):
            parse_kinds(bad)


def test_export_cli_file_is_atomic_and_the_dump_unchanged(tmp_path: Path) -> None:
    dump_path = tmp_path / "faults.dump"
    shutil.copyfile(SAMPLES / "faults.dump", dump_path)
    before = sha256(dump_path)
    target = tmp_path / "out.jsonl"
    target.write_text("old content\n")
    proc = run("export", str(dump_path), "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    lines = jsonl(target.read_text())
    assert lines[0]["record"] == "header" and lines[-1]["record"] == "end"
    assert f"{lines[-1]['counts']['page']:,} page" in proc.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faults.dump", "out.jsonl"]
    assert sha256(dump_path) == before

    # A failing export (a directory that does not exist) leaves nothing behind.
    proc = run("export", str(dump_path), "-o", str(tmp_path / "missing" / "x.json"))
    assert proc.returncode == 2
    assert len(proc.stderr.decode().splitlines()) == 1
    # Over the dump itself: refused, dump untouched.
    proc = run("export", str(dump_path), "-o", str(dump_path))
    assert proc.returncode == 2 and b"dump itself" in proc.stderr
    assert sha256(dump_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faults.dump", "out.jsonl"]


def test_export_failure_mid_stream_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    from dumpview.model import export as export_module

    target = tmp_path / "out.json"
    target.write_text("old content\n")

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(export_module, "crashlog_records", boom)
    with open_dump(SAMPLES / "faults.dump") as dump, pytest.raises(RuntimeError):
        export_module.export_file(dump, target, fmt="json")
    assert target.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_export_cli_stdout_json_and_bad_input() -> None:
    path = str(SAMPLES / "minimal.dump")
    proc = run("export", path, "--format", "json", "--include", "info,ranges")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    validate(doc)
    assert set(doc) == {"schema", "generator", "dump", "include", "with_data", "info", "ranges",
                        "counts"}  # fmt: skip
    assert doc["info"]["segments"] == open_dump(path).segment_count
    proc = run("export", path, "-o", "-", "--include", "pages,bogus")
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "dumpview: export: --include: unknown kind 'bogus' (known: info, memory-map, ranges, "
        "tables, pages, anomalies, crashlog)"
    ]
    assert proc.stdout == b""
    proc = run("export", path, "--format", "xml")
    assert proc.returncode == 2 and len(proc.stderr.decode().splitlines()) == 1


def test_export_api_parity(tmp_path: Path) -> None:
    with open_dump(SAMPLES / "faults.dump") as dump:
        stats = dump.export(tmp_path / "a.jsonl", include="pages")
        stream = io.StringIO()
        dump.export(stream, include="pages")
    assert (tmp_path / "a.jsonl").read_text() == stream.getvalue()
    assert stats.counts == {"page": open_dump(SAMPLES / "faults.dump").page_totals[0]}


# ---- ranges -------------------------------------------------------------------------------------


def test_ranges_cli_text_and_json(scatter: dict[str, Path]) -> None:
    path = scatter["driver"]
    proc = run("ranges", str(path))
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    with open_dump(path) as dump:
        table = dump.ranges()
        assert len(lines) == len(table)
        for i in (0, len(table) // 2, len(table) - 1):
            row = table.row(i)
            fields = lines[i].split()
            assert fields[0] == f"{row.va_start:#018x}-{row.va_end:#018x}"
            assert fields[1] == human_size(row.size_bytes)
            assert fields[3] == f"{row.pa_start:#x}"
            assert ("not dumped" in lines[i]) == (not row.dumped)
    proc = run("ranges", str(path), "--json")
    doc = json.loads(proc.stdout)
    validate(doc)
    assert len(doc["ranges"]) == len(lines)


def test_ranges_merge_only_when_everything_continues() -> None:
    """ptdump's rule, checked against the pages themselves."""
    with open_dump(SAMPLES / "faults.dump") as dump:
        records = list(dump.pages())
        table = dump.ranges()
        page = dump.page_size_bytes
        covered = 0
        for i in range(len(table)):
            row = table.row(i)
            inside = [r for r in records if row.va_start <= r.va < row.va_end]
            assert len(inside) * page == row.size_bytes
            for prev, cur in itertools.pairwise(inside):
                assert cur.va == prev.va + page and cur.pa == prev.pa + page
                assert (cur.flags, cur.dumped) == (prev.flags, prev.dumped)
            covered += len(inside)
            if i + 1 < len(table):
                nxt = table.row(i + 1)
                last = inside[-1]
                first = next(r for r in records if r.va == nxt.va_start)
                assert not (
                    first.va == last.va + page
                    and first.pa == last.pa + page
                    and (first.flags, first.dumped) == (last.flags, last.dumped)
                )
        assert covered == len(records)


def test_ranges_window_and_bad_range() -> None:
    path = str(SAMPLES / "faults.dump")
    proc = run("ranges", path, "--range", "0xffffffa0_00000000-0xffffffb0_00000000")
    assert proc.returncode == 0
    for line in proc.stdout.decode().splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        assert 0xFFFF_FFA0_0000_0000 <= start < end <= 0xFFFF_FFB0_0000_0000
    for bad in ("zz", "0x20-0x10", "0x10-", "0xffffffa000000000-0xfffffffffffffffffff"):
        proc = run("ranges", path, "--range", bad)
        assert proc.returncode == 2, bad
        assert len(proc.stderr.decode().splitlines()) == 1
        assert proc.stderr.decode().startswith("dumpview: ranges: --range:")


# ---- ptov ---------------------------------------------------------------------------------------


def test_ptov_finds_every_alias_across_contexts() -> None:
    path = SAMPLES / "user-contexts.dump"
    with open_dump(path) as dump:
        # Independent answer: every carried leaf entry of every context with that output address.
        leaf_level = dump.geometry.levels[-1]
        by_pa: dict[int, set[tuple[int, int]]] = {}
        for node in dump.tables_index.nodes:
            if node.level != leaf_level.level:
                continue
            for i, value in enumerate(dump.tables_index.entries_at(node.pa).tolist()):
                if value & 3 == 3:
                    va = node.va_start + i * leaf_level.entry_span_bytes
                    by_pa.setdefault(value & uat.OA_MASK_FULL, set()).add((node.context, va))
        aliased = [pa for pa, vas in by_pa.items() if len({c for c, _ in vas}) > 1]
        assert aliased
        for pa in aliased[:5]:
            got = {(m.context, m.va) for m in dump.ptov(pa + 0x123)}
            assert got == {(c, va + 0x123) for c, va in by_pa[pa]}
    proc = run("ptov", str(path), f"{aliased[0]:#x}", "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    validate(doc)
    assert {(m["context"], int(m["va"], 16)) for m in doc["ptov"]["mappings"]} == by_pa[aliased[0]]
    proc = run("ptov", str(path), f"{aliased[0]:#x}")
    assert len(proc.stdout.decode().splitlines()) == len(by_pa[aliased[0]])


def test_ptov_driver_dump_uses_pt_loads_and_unmapped_exits_1() -> None:
    path = SAMPLES / "minimal-driver.dump"
    with open_dump(path) as dump:
        record = next(r for r in dump.pages() if r.dumped)
        mappings = dump.ptov(record.pa)
        assert [(m.va, m.source, m.pte_exact) for m in mappings] == [(record.va, "pt_load", False)]
    proc = run("ptov", str(path), "0x1000")
    assert proc.returncode == 1
    assert proc.stderr.decode() == "dumpview: PA 0x1000 is not mapped by any entry of the dump\n"
    proc = run("ptov", str(path), "0xnope")
    assert proc.returncode == 2 and len(proc.stderr.decode().splitlines()) == 1


# ---- search -------------------------------------------------------------------------------------


def naive_hits(path: Path, needle: bytes) -> list[int]:
    """Byte search with pyelftools segments: data runs that continue in VA and in the file."""
    runs: list[tuple[int, bytes]] = []
    with path.open("rb") as fp:
        elf = ELFFile(fp)
        segs = sorted(
            (s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"]),
            key=lambda s: s["p_vaddr"],
        )
        for seg in segs:
            data = seg.data()[: seg["p_filesz"] // uat.PAGE_SIZE * uat.PAGE_SIZE]
            if runs and runs[-1][0] + len(runs[-1][1]) == seg["p_vaddr"]:
                runs[-1] = (runs[-1][0], runs[-1][1] + data)
            else:
                runs.append((seg["p_vaddr"], data))
    hits = []
    for va, data in runs:
        at = data.find(needle)
        while at >= 0:
            hits.append(va + at)
            at = data.find(needle, at + 1)
    return hits


def test_search_cli_matches_a_naive_search(scatter: dict[str, Path]) -> None:
    path = scatter["driver"]
    needle = b"large page @ pa"
    expected = naive_hits(path, needle)
    assert len(expected) > 10
    proc = run("search", str(path), "--string", "large page @ pa", "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    validate(doc)
    assert [int(h["va"], 16) for h in doc["search"]["hits"]] == expected
    with open_dump(path) as dump:
        for hit in doc["search"]["hits"][:20]:
            va = int(hit["va"], 16)
            assert bytes(dump.read_va(va, len(needle))) == needle
            assert int(hit["pa"], 16) == dump.translate(va).pa
        assert doc["search"]["holes_skipped"] == dump.page_totals[0] - dump.page_totals[1]
    proc = run("search", str(path), needle.hex())
    assert proc.returncode == 0
    assert [int(x.split()[1], 16) for x in proc.stdout.decode().splitlines()] == expected


def test_search_kinds_and_range(scatter: dict[str, Path]) -> None:
    path = scatter["tables"]
    with open_dump(path) as dump:
        page = next(r for r in dump.pages() if r.dumped)
        value = int.from_bytes(bytes(dump.read_va(page.va, 8)), "little")
        expected = naive_hits(path, value.to_bytes(8, "little"))
        api = dump.search(f"{value:#x}", kind="u64")
        assert [h.va for h in api.hits] == expected
        window = dump.search(str(value), "u64", page.va, page.va + uat.PAGE_SIZE)
        assert [h.va for h in window.hits] == [h for h in expected if h < page.va + uat.PAGE_SIZE
                                               and h >= page.va]  # fmt: skip
    proc = run(
        "search", str(path), "--u64", f"{value:#x}", "--range",
        f"{page.va:#x}+{uat.PAGE_SIZE:#x}",
    )  # fmt: skip
    assert proc.returncode == 0
    assert [int(x.split()[1], 16) for x in proc.stdout.decode().splitlines()] == [
        h.va for h in window.hits
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hex", "xyz"], "hex pattern"),
        (["--hex", "abc"], "even number"),
        (["--u32", "0x1_0000_0000"], "out of range"),
        (["--u64", "twelve"], "not a decimal or 0x number"),
        (["--string", ""], "empty"),
        (["--hex", "00", "--range", "0x10-0x5"], "--range"),
    ],
)
def test_search_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    proc = run("search", str(SAMPLES / "minimal.dump"), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_search_without_hits_exits_1() -> None:
    proc = run("search", str(SAMPLES / "minimal.dump"), "--string", "no such text in any page")
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert "0 hit(s)" in proc.stderr.decode()


# ---- Python API ---------------------------------------------------------------------------------


def test_api_parity_with_the_cli() -> None:
    path = SAMPLES / "faults.dump"
    with open_dump(path) as dump:
        table = dump.ranges()
        proc = run("ranges", str(path), "--json")
        assert [r["va_start"] for r in json.loads(proc.stdout)["ranges"]] == [
            f"{table.row(i).va_start:#x}" for i in range(len(table))
        ]
        assert dump.search(b"\x00" * 8).hits == dump.search("00" * 8).hits
    assert callable(dumpview.diff)
    assert os.path.exists(path)


# ---- check and diff on the command line ---------------------------------------------------------


def test_check_cli_exit_codes_json_and_kinds(tmp_path: Path) -> None:
    faults = SAMPLES / "faults.dump"
    with open_dump(faults) as dump:
        expected = dump.check()
    assert not expected.clean
    proc = run("check", str(faults), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    validate(doc)
    assert doc["anomalies"] == [a.to_dict() for a in expected.anomalies]
    assert doc["check"]["counts"] == expected.counts()
    proc = run("check", str(faults))
    assert proc.returncode == 1
    assert len(proc.stdout.decode().splitlines()) == len(expected.anomalies)
    assert proc.stderr.decode().splitlines()[-1].startswith(f"{faults}: ")
    # Only one kind, or everything but the kinds found: exit 1, then 0.
    proc = run("check", str(faults), "--kind", "oa-beyond-oas", "--json")
    assert proc.returncode == 1
    assert {a["kind"] for a in json.loads(proc.stdout)["anomalies"]} == {"oa-beyond-oas"}
    ignore = [arg for kind in expected.counts() if expected.counts()[kind]
              for arg in ("--ignore", kind)]  # fmt: skip
    proc = run("check", str(faults), *ignore)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout == b""
    assert proc.stderr.decode().splitlines()[-1] == f"{faults}: no anomalies"
    proc = run("check", str(faults), "--kind", "nonsense")
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("dumpview: check: unknown kind 'nonsense' (known: ")
    assert len(proc.stderr.decode().splitlines()) == 1


def test_check_cli_on_a_driver_dump_says_what_it_could_not_check() -> None:
    proc = run("check", str(SAMPLES / "minimal-driver.dump"), "--json")
    doc = json.loads(proc.stdout)
    validate(doc)
    skipped = {s["kind"] for s in doc["check"]["skipped"]}
    assert {"unexpected-table-entry", "empty-table", "device-on-ram"} <= skipped
    proc = run("check", str(SAMPLES / "minimal-driver.dump"))
    assert "dumpview: not checked: empty-table:" in proc.stderr.decode()


def test_diff_cli_exit_codes_and_json(tmp_path: Path) -> None:
    minimal, faults = SAMPLES / "minimal.dump", SAMPLES / "faults.dump"
    proc = run("diff", str(minimal), str(minimal))
    assert proc.returncode == 0 and proc.stdout.decode().strip() == "identical"
    proc = run("diff", str(minimal), str(faults), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    validate(doc)
    expected = dumpview.diff(minimal, faults)
    assert doc["diff"] == expected.to_dict()
    assert doc["dumps"]["a"]["path"] == str(minimal.resolve())
    added = {int(r["va_start"], 16) for r in doc["diff"]["added"]}
    assert 0xFFFF_FFB0_0000_0000 in added  # the planted leaf past the driver's range
    proc = run("diff", str(minimal), str(faults))
    text = proc.stdout.decode().splitlines()
    assert sum(line.startswith("+ added") for line in text) == len(expected.added)
    assert sum(line.startswith("~ contents") for line in text) == len(expected.contents)
    proc = run("diff", str(minimal), str(tmp_path / "missing.dump"))
    assert proc.returncode == 2 and len(proc.stderr.decode().splitlines()) == 1


# ---- the README's triage script -----------------------------------------------------------------


def test_readme_triage_script_runs_on_the_samples(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index("```python\nimport collections, pathlib, sys")
    script = readme[start + len("```python\n") : readme.index("```", start + 10)]
    assert len(script.strip().splitlines()) <= 10
    (tmp_path / "triage.py").write_text(script)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "triage.py"), str(SAMPLES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [p.name for p in SAMPLE_DUMPS]
    faults = next(line for line in lines if line.startswith("faults.dump"))
    with open_dump(SAMPLES / "faults.dump") as dump:
        fault = dump.fault()
        total, dumped = dump.page_totals
        for kind, count in dump.check().counts().items():
            if count:
                assert f"'{kind}': {count}" in faults
    assert f"FAR {fault.far:#x}" in faults and f"{total - dumped}/{total} pages" in faults
