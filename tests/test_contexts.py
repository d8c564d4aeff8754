"""Contexts everywhere: the location syntax (``VA``, ``CTX:VA``, ``p:PA``), the address spaces a
dump carries, and every command that takes an address or a range working in any of them.

Expected values come from the simulator that made the dump (a twin ``Builder`` run with the
same scenario, seed and knobs: its page tables' own ``translate`` and ``leaves``), and from the
sample dumps' extension records; a page of a context the walker did not dump is "context not
dumped", never zeros.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import dumpview
from dumpview.model.contexts import CONTEXT_NOT_DUMPED
from dumpview.model.export import schema
from dumpview.model.location import Location, parse_location, parse_location_range
from dumpview.sim.scenarios import Builder, generate_file
from formats import uat

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
VALIDATOR = jsonschema.Draft202012Validator(schema())
SEED, KNOBS = 11, {"contexts": 2}
PAGE = uat.PAGE_SIZE


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def validate(doc: object) -> None:
    errors = sorted(VALIDATOR.iter_errors(doc), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:3]]


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Builder]:
    """user-contexts with two user VMs, and its twin builder (the same page tables)."""
    path = tmp_path_factory.mktemp("ctx") / "users.dump"
    generate_file(path, scenario="user-contexts", seed=SEED, knobs=KNOBS)
    twin = Builder("user-contexts", SEED, KNOBS)
    twin.build()
    return path, twin


def twin_leaves(twin: Builder, slot: int) -> list[tuple[int, int, int]]:
    """(va, pa, pte) of every page user VM ``slot`` maps, from the simulator."""
    vm = twin.m.users[slot - 1]
    return [(va, vm.translate(va), pte) for va, pte in vm.leaves()]


# ---- the syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0xffffffa000000040", Location(0xFFFF_FFA0_0000_0040)),
        ("4096", Location(4096)),
        ("1:0x110000000", Location(0x1_1000_0000, context=1)),
        (" 12:0x1_0000 ", Location(0x1_0000, context=12)),
        ("p:0x10001040000", Location(0x100_0104_0000, physical=True)),
        ("P:4096", Location(4096, physical=True)),
    ],
)
def test_parse_location(text: str, expected: Location) -> None:
    assert parse_location(text) == expected
    assert parse_location(str(expected)) == expected  # str() writes what parses back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x:0x10", "'x' is not a context number"),
        ("1:zz", "'zz' is not an address"),
        ("p:", "'' is not an address"),
        ("99999999999:0x1", "out of range"),
        ("1:0x1_0000_0000_0000_0000", "outside 0..2^64-1"),
    ],
)
def test_parse_location_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_location(text)
    assert "\n" not in str(caught.value)


def test_parse_location_refusals_and_ranges() -> None:
    with pytest.raises(ValueError, match="physical address is not accepted"):
        parse_location("p:0x1000", physical_ok=False)
    with pytest.raises(ValueError, match="context prefix is not accepted"):
        parse_location("1:0x1000", context_ok=False)
    assert parse_location_range("0x1000-0x2000") == (None, 0x1000, 0x2000)
    assert parse_location_range("2:0x1000+0x4000") == (2, 0x1000, 0x5000)
    with pytest.raises(ValueError, match="PA range is not accepted"):
        parse_location_range("p:0x1000-0x2000")


# ---- the model ---------------------------------------------------------------------------------


def test_contexts_are_the_simulators_spaces(users: tuple[Path, Builder]) -> None:
    path, twin = users
    with dumpview.open_dump(path) as dump:
        found = dump.contexts()
        assert [c.context for c in found] == [0, 1, 2]
        kernel, *user = found
        assert kernel.dumped and not kernel.ttb_owned  # the firmware's TTB, borrowed
        assert kernel.ttb_pa == twin.m.kernel.ttb
        assert (kernel.pages_mapped, kernel.pages_dumped) == dump.page_totals
        assert kernel.va_start == 0xFFFF_FF80_0000_0000 and kernel.va_end == 1 << 64
        for slot, c in enumerate(user, start=1):
            vm = twin.m.users[slot - 1]
            assert (c.context, c.asid, c.ttb_pa, c.ttb_owned) == (slot, slot, vm.ttb, True)
            assert not c.dumped and c.pages_dumped == 0
            assert c.pages_mapped == vm.count_leaves() > 0
            assert c.tables == sum(1 for _ in vm.tables())
            assert (c.va_start, c.va_end) == (0, 1 << 39)
    with dumpview.open_dump(SAMPLES / "minimal-driver.dump") as dump:
        (only,) = dump.contexts()
        assert (only.context, only.ttb_pa, only.ttb_owned, only.dumped) == (0, None, None, True)


def test_user_context_walks_agree_with_the_simulator(users: tuple[Path, Builder]) -> None:
    path, twin = users
    with dumpview.open_dump(path) as dump:
        for slot in (1, 2):
            leaves = twin_leaves(twin, slot)
            vas = [va + 0x123 for va, _, _ in leaves]
            for va, (_, pa, pte) in zip(vas, leaves, strict=True):
                t = dump.translate(va, slot)
                assert t.pa == pa + 0x123 and t.leaf.value == pte
                assert not t.context_dumped and t.page is None
                assert dump.va_to_pa(va, slot) == pa + 0x123
            bulk = dump.translate_many(np.array(vas, np.uint64), slot)
            assert bulk.pa.tolist() == [pa + 0x123 for _, pa, _ in leaves]
            assert not bulk.dumped.any()
            # A user VA in the kernel context is outside its (upper) half: a stopped walk.
            outside = dump.translate(vas[0])
            assert not outside.mapped and "outside the walked address space" in (
                outside.stopped_reason or ""
            )


def test_context_ranges_cover_exactly_the_simulators_pages(users: tuple[Path, Builder]) -> None:
    path, twin = users
    with dumpview.open_dump(path) as dump:
        for slot in (1, 2):
            table = dump.ranges(context=slot)
            pages = []
            for i in range(len(table)):
                r = table.row(i)
                assert not r.dumped and r.reason == CONTEXT_NOT_DUMPED
                fmt = dump.entry_format
                assert r.flags == uat.pack_p_flags(r.pte)  # what the driver would have written
                for off in range(0, r.size_bytes, PAGE):
                    pages.append((r.va_start + off, r.pa_start + off, r.pte & fmt.attribute_mask))
            expected = [
                (va, pa, pte & fmt.attribute_mask) for va, pa, pte in twin_leaves(twin, slot)
            ]
            assert pages == expected
            # Ranges merge only what continues: two neighbours never could have merged.
            for i in range(1, len(table)):
                a, b = table.row(i - 1), table.row(i)
                assert not (
                    a.va_end == b.va_start
                    and a.pa_start + a.size_bytes == b.pa_start
                    and a.pte & fmt.attribute_mask == b.pte & fmt.attribute_mask
                )
            # A window clips the first and last range.
            first_va = expected[0][0]
            clipped = dump.ranges(first_va + 0x1000, first_va + 0x3000, context=slot)
            assert len(clipped) == 1
            assert (int(clipped.va_start[0]), int(clipped.va_end[0])) == (
                first_va + 0x1000,
                first_va + 0x3000,
            )
            assert int(clipped.pa_start[0]) == expected[0][1] + 0x1000
        with pytest.raises(dumpview.model.errors.ContextError, match="no context 7"):
            dump.ranges(context=7)


def test_read_runs_of_a_user_context_are_marked_never_zeros(users: tuple[Path, Builder]) -> None:
    path, twin = users
    with dumpview.open_dump(path) as dump:
        va, pa, _ = twin_leaves(twin, 1)[0]
        runs = dump.read_runs(va - 0x10, 0x20, 1)
        assert [(r.address, r.size_bytes, r.dumped, r.reason) for r in runs] == [
            (va - 0x10, 0x10, False, "not-mapped"),
            (va, 0x10, False, CONTEXT_NOT_DUMPED),
        ]
        assert "the walk stopped at L" in runs[0].detail
        assert f"PA {pa:#x}" in runs[1].detail


# ---- the command line --------------------------------------------------------------------------


def test_vtop_ctx_va_walks_the_user_context(users: tuple[Path, Builder]) -> None:
    path, twin = users
    va, pa, pte = twin_leaves(twin, 2)[1]
    proc = run("vtop", str(path), f"2:{va + 0x40:#x}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert [ln[:2] for ln in lines[:3]] == ["L1", "L2", "L3"]
    assert f"table {twin.m.users[1].ttb:#014x}" in lines[0]  # context 2's TTB, not the kernel's
    assert f"{pte:#018x}" in lines[2]
    assert lines[3].startswith(f"VA {va + 0x40:#x} -> PA {pa + 0x40:#x}")
    assert lines[3].endswith(
        "context not dumped (the dump carries this context's tables, not its pages)"
    )
    # --context N is the same thing; the prefix and the option must agree.
    assert run("vtop", "--context", "2", str(path), hex(va + 0x40)).stdout == proc.stdout
    clash = run("vtop", "--context", "1", str(path), f"2:{va:#x}")
    assert clash.returncode == 2
    assert clash.stderr.decode().splitlines() == ["dumpview: vtop: contexts 1 and 2 both given"]
    missing = run("vtop", str(path), f"5:{va:#x}")
    assert missing.returncode == 2 and missing.stdout == b""
    assert missing.stderr.decode().splitlines() == [
        f"dumpview: vtop: {path}: the dump has no context 5 (it carries 0, 1, 2)"
    ]


def test_vtop_on_the_sample_no_longer_exits_blank() -> None:
    proc = run("vtop", str(SAMPLES / "user-contexts.dump"), "1:0x110000000")
    assert proc.returncode == 0 and proc.stderr == b""
    assert proc.stdout.decode().splitlines()[-1].startswith("VA 0x110000000 -> PA 0x10001040000")


def walk_docs(*args: str, code: int = 0) -> dict:
    proc = run("vtop", "--json", *args)
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc)
    return doc


def test_vtop_json_validates_and_says_what_the_text_says(users: tuple[Path, Builder]) -> None:
    path, twin = users
    va, pa, pte = twin_leaves(twin, 1)[0]
    walk = walk_docs(str(path), f"1:{va:#x}")["vtop"]
    assert (walk["mapped"], walk["pa"], walk["context"], walk["context_dumped"]) == (
        True,
        f"{pa:#x}",
        1,
        False,
    )
    assert [s["level"] for s in walk["steps"]] == [1, 2, 3]
    assert walk["steps"][0]["table_pa"] == f"{twin.m.users[0].ttb:#x}"
    assert walk["leaf"]["entry"] == f"{pte:#x}" and walk["leaf"]["ng"] is True
    assert (walk["dumped"], walk["reason"]) == (False, CONTEXT_NOT_DUMPED)
    # A dumped kernel page, an unmapped VA (exit 1, still a document), a driver dump's rebuilt
    # walk, an LPAE block and a PA's walks.
    kernel_va = twin.m.kernel.leaves().__next__()[0]
    walk = walk_docs(str(path), hex(kernel_va))["vtop"]
    assert walk["dumped"] is True and walk["reason"] is None and walk["context"] == 0
    hole = (va & ~((32 << 20) - 1)) + (31 << 20)  # in the same leaf table, not mapped
    assert twin.m.users[0].translate(hole) is None
    walk = walk_docs(str(path), f"1:{hole:#x}", code=1)["vtop"]
    assert not walk["mapped"] and walk["pa"] is None and walk["stopped_level"] == 3
    walk = walk_docs(str(SAMPLES / "minimal-driver.dump"), "0xffffffa000000040")["vtop"]
    assert walk["rebuilt"] and walk["steps"][0]["table_pa"] is None
    assert walk["leaf"]["ng"] is None  # not recorded by a driver dump
    walk = walk_docs(str(SAMPLES / "smmu-lpae4k.dump"), "0x400000010")["vtop"]
    assert walk["leaf"]["block_size_bytes"] == 2 << 20 and "privileged" in walk["leaf"]
    doc = walk_docs(str(path), f"p:{pa + 8:#x}")["vtop_pa"]
    assert {(w["context"], w["va"]) for w in doc["walks"]} >= {(1, f"{va + 8:#x}")}
    assert all(w["pa"] == f"{pa + 8:#x}" for w in doc["walks"])


def test_read_in_a_user_context_and_through_its_pa(users: tuple[Path, Builder]) -> None:
    path, twin = users
    va, pa, _ = twin_leaves(twin, 1)[0]
    proc = run("read", str(path), f"1:{va:#x}", "64")
    assert proc.returncode == 1
    (line,) = proc.stdout.decode().splitlines()
    assert line.startswith(f"{va:016x}  ** 64 bytes context not dumped (PA {pa:#x}")
    assert len(proc.stderr.decode().splitlines()) == 1
    raw = run("read", "--raw", str(path), f"1:{va:#x}", "64")
    assert raw.returncode == 1 and raw.stdout == b""
    # The first BO of each user VM is also mapped by the kernel: p:PA reads it from there.
    kernel_vas = [v for v, _ in twin.m.kernel.leaves() if twin.m.kernel.translate(v) == pa]
    assert kernel_vas
    by_pa = run("read", "--raw", str(path), f"p:{pa:#x}", "64")
    by_va = run("read", "--raw", str(path), hex(kernel_vas[0]), "64")
    assert by_pa.returncode == by_va.returncode == 0
    assert by_pa.stdout == by_va.stdout and len(by_pa.stdout) == 64
    assert b"user1-bo0" in by_pa.stdout  # the scenario stamps each BO with its name


def test_ranges_search_and_ptov_with_contexts(users: tuple[Path, Builder]) -> None:
    path, twin = users
    leaves = twin_leaves(twin, 1)
    proc = run("ranges", str(path), "--context", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc)
    assert doc["context"] == 1
    assert sum(r["pages"] for r in doc["ranges"]) == len(leaves)
    assert all(r["reason"] == CONTEXT_NOT_DUMPED and r["pte_exact"] for r in doc["ranges"])
    assert doc["ranges"][0]["va_start"] == f"{leaves[0][0]:#x}"
    text = run("ranges", str(path), "--range", f"1:0-{1 << 39:#x}").stdout.decode().splitlines()
    assert len(text) == len(doc["ranges"])
    assert all(line.endswith("context not dumped") for line in text)
    assert text[0].startswith(f"{leaves[0][0]:#018x}-")

    found = run("search", str(path), "--string", "user1-bo0", "--context", "1", "--json")
    assert found.returncode == 1  # the data lives in the kernel context only
    doc = json.loads(found.stdout)
    validate(doc)
    assert doc["search"]["hits"] == [] and doc["search"]["holes_skipped"] == len(leaves)
    text = run("search", str(path), "--string", "user1-bo0", "--context", "1")
    assert text.returncode == 1 and text.stdout == b""
    assert text.stderr.decode().splitlines() == [
        f"0 hit(s) in 0 bytes of 0 dumped page(s); {len(leaves)} page(s) without data skipped; "
        "context 1 is not dumped (the dump carries its tables, not its pages)"
    ]
    kernel = run(
        "search",
        str(path),
        "--string",
        "user1-bo0",
        "--range",
        "0:0xffffff8000000000-0xffffffffffffc000",
    )
    assert kernel.returncode == 0 and kernel.stdout.decode().count("VA ") >= 1

    va, pa, _ = leaves[0]
    aliases = run("ptov", str(path), f"1:{va + 4:#x}")
    assert aliases.returncode == 0
    assert aliases.stdout == run("ptov", str(path), f"{pa + 4:#x}").stdout
    assert f"VA {va + 4:#x}  context 1" in aliases.stdout.decode()
    assert aliases.stderr.decode().splitlines() == [f"VA 1:{va + 4:#x} -> PA {pa + 4:#x}"]


def test_export_context_pages_are_the_simulators(users: tuple[Path, Builder]) -> None:
    path, twin = users
    proc = run("export", str(path), "--context", "2", "--include", "ranges,tables,pages")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    for record in records:
        validate(record)
    assert records[0]["record"] == "header" and records[0]["context"] == 2
    pages = [r for r in records if r["record"] == "page"]
    assert [(int(r["va"], 16), int(r["pa"], 16), int(r["pte"], 16)) for r in pages] == (
        twin_leaves(twin, 2)
    )
    assert all(not r["dumped"] and r["reason"] == CONTEXT_NOT_DUMPED for r in pages)
    vm = twin.m.users[1]
    assert all(r["table_path"][0]["table"] == f"{vm.ttb:#x}" for r in pages)
    assert all(int(r["flags"], 16) == uat.pack_p_flags(int(r["pte"], 16)) for r in pages)
    tables = [r for r in records if r["record"] == "table"]
    assert {t["context"] for t in tables} == {2}
    assert len(tables) == sum(1 for _ in vm.tables())
    ranges = [r for r in records if r["record"] == "range"]
    counts = {"range": len(ranges), "table": len(tables), "page": len(pages)}
    assert records[-1] == {"record": "end", "counts": counts}
    # --with-data: null data, never zeros; the dumped context's export is unchanged by --context 0.
    with_data = run("export", str(path), "--context", "2", "--include", "pages", "--with-data")
    lines = [json.loads(line) for line in with_data.stdout.decode().splitlines()[1:-1]]
    assert lines and all(r["data_base64"] is None for r in lines)
    plain = run("export", str(path), "--include", "pages,ranges").stdout.decode().splitlines()
    zero = run("export", str(path), "--include", "pages,ranges", "--context", "0")
    assert zero.stdout.decode().splitlines()[1:] == plain[1:]
    assert run("export", str(path), "--context", "9").returncode == 2
    document = run("export", str(path), "--context", "1", "--format", "json", "--include", "pages")
    doc = json.loads(document.stdout)
    validate(doc)
    assert doc["context"] == 1 and len(doc["pages"]) == len(twin_leaves(twin, 1))


def test_info_lists_the_contexts(users: tuple[Path, Builder]) -> None:
    path, twin = users
    proc = run("info", "--json", str(path))
    doc = json.loads(proc.stdout)
    info_schema = {"$ref": "#/$defs/info", "$defs": schema()["$defs"]}
    jsonschema.Draft202012Validator(info_schema).validate(doc)
    assert [c["context"] for c in doc["contexts"]] == [0, 1, 2]
    assert doc["contexts"][1]["ttb_pa"] == f"{twin.m.users[0].ttb:#x}"
    assert [c["ttb_owned"] for c in doc["contexts"]] == [False, True, True]
    text = run("info", str(path)).stdout.decode().splitlines()
    rows = [line for line in text if "ASID" in line]
    assert len(rows) == 3 and rows[0].lstrip().startswith("contexts     0   dumped")
    assert "tables only" in rows[1] and f"TTB {twin.m.users[0].ttb:#x} owned" in rows[1]
    assert f"{twin.m.users[0].count_leaves()} pages" in rows[1]


# ---- the inspector's go-to prompt: the same parser ----------------------------------------------


def test_inspector_goto_takes_ctx_va() -> None:
    from tests.test_tui import USER_CONTEXTS, drive, go_to, status, wait_main

    async def body(pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, "1:0x110000010")
        assert status(screen) == (
            "VA 0x110000010 -> PA 0x10001040010 (context 1 not dumped: its tables only)"
        )
        assert screen.table.context == 1 and screen.table.level == 3
        await go_to(pilot, "5:0x110000000")
        assert status(screen) == "go to: the dump has no context 5"
        await go_to(pilot, "x:0x1")
        assert status(screen).startswith("go to: 'x:0x1': 'x' is not a context number")

    drive(USER_CONTEXTS, body)
