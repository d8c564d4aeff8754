"""The Textual app driven through Pilot, and SVG snapshots of its views.

Expected values come from the model (``open_dump``, ``LevelTree``, ``search``) opened
independently of the app, never from what the app itself displays. Tests are plain functions
that run their coroutine with ``asyncio.run`` (no async pytest plugin needed). Anything that
writes (bookmarks) works on a copy of a sample in ``tmp_path``, and checks the copy's bytes did
not change.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, OptionList, Static
from tui_pilot import (
    DRIVER,
    FAULTS,
    HEX_ROW,
    MINIMAL,
    ROOT,
    SAMPLES,
    SNAP_SIZE,
    USER_CONTEXTS,
    all_rows,
    copy_sample,
    drive,
    fill_in,
    first_page,
    go_to,
    modal,
    model,
    page_rows,
    row_text,
    run_search,
    sha256,
    status,
    text_of,
    wait_error,
    wait_main,
    wait_until,
)

from dumpview.model import DumpError, open_dump
from dumpview.model.bookmarks import sidecar_path
from dumpview.model.crash import crashlog_sections
from dumpview.model.levels import EntryRow, LevelTree
from dumpview.model.ranges import ranges
from dumpview.model.search import next_hit_index, search
from dumpview.tui.app import (
    BookmarksScreen,
    ConfirmScreen,
    DumpviewApp,
    GotoScreen,
    HelpScreen,
    MainScreen,
    NoteScreen,
)
from dumpview.tui.keys import KEYS
from dumpview.tui.sources import HEX_ROW_BYTES, PageSource
from dumpview.tui.tree import LevelsTree
from dumpview.tui.widgets import RowList

# ---- navigation ----------------------------------------------------------------------------------


def test_opens_on_the_overview_then_1_shows_the_ttb_of_context_0_and_enter_descends() -> None:
    """minimal.dump has a crash log: the overview comes first; 1 shows the tables with the
    keys on the entries of context 0's TTB."""
    with model(MINIMAL) as dump:
        tree = LevelTree(dump)
        ttb = tree.roots[0]
        rows = tree.rows(ttb)
        first = rows.row(0)
        assert isinstance(first, EntryRow)
        child = rows.child(first.index)
        total, dumped = dump.page_totals

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        assert screen.tab == "overview"
        assert pilot.app.focused is screen.query_one("#overview-list", RowList)
        await pilot.press("1")
        assert screen.table == ttb and ttb.context == 0 and ttb.depth == 0
        title = text_of(screen.query_one("#entries-title", Static))
        assert title.startswith(f"ctx 0  L{ttb.level} table PA {ttb.pa:#x}")
        assert f"{total:,} pages ({total - dumped:,} not dumped)" in status(screen)
        entries = screen.query_one("#entries", RowList)
        assert pilot.app.focused is entries
        assert entries.cursor == 0
        assert row_text(entries, 0).startswith(f" {first.index:04d} {first.va:016x}")
        await pilot.press("enter")
        assert screen.table == child
        assert child.depth == 1
        title = text_of(screen.query_one("#entries-title", Static))
        assert title.startswith(f"ctx 0  L{child.level} table PA {child.pa:#x}")
        assert f"VA {child.va_start:#x}" in title
        # the tree followed: its cursor is on the child's node
        assert screen.query_one(LevelsTree).cursor_node.data == child

    drive(MINIMAL, body)


def test_tree_loads_children_lazily() -> None:
    with model(MINIMAL) as dump:
        tree = LevelTree(dump)
        ttb = tree.roots[0]
        l2_index, l2 = tree.children(ttb)[-1]
        expected = tree.children(l2)
        assert expected, "the sample maps something under the last L2 table"

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        levels = screen.query_one(LevelsTree)
        (root_node,) = levels.root.children
        assert root_node.data == ttb and root_node.is_expanded
        node = next(n for n in root_node.children if n.data == l2)
        assert str(node.label).startswith(f"[{l2_index}] ")
        assert f"{l2.va_start:#x}" in str(node.label)
        assert node.allow_expand and not node.is_expanded
        assert list(node.children) == []  # not loaded until expanded
        levels.focus()
        levels.move_cursor(node)
        await pilot.pause()
        assert screen.table == l2  # highlighting a node shows its table
        await pilot.press("space")
        await wait_until(pilot, lambda: bool(node.children), "children to load")
        assert node.is_expanded
        assert [n.data for n in node.children] == [table for _, table in expected]
        for n, (index, table) in zip(node.children, expected, strict=True):
            assert str(n.label).startswith(f"[{index}] ")
            assert f"{table.va_start:#x}" in str(n.label)
            assert not n.allow_expand  # leaf tables have no tables under them
            assert list(n.children) == []

    drive(MINIMAL, body)


def test_a_double_click_on_a_tree_node_toggles_it_as_enter_does() -> None:
    with model(MINIMAL) as dump:
        tree = LevelTree(dump)
        l2 = tree.children(tree.roots[0])[-1][1]
        assert tree.children(l2), "the sample maps something under the last L2 table"

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await pilot.press("1")
        levels = screen.query_one(LevelsTree)
        (root_node,) = levels.root.children
        node = next(n for n in root_node.children if n.data == l2)
        levels.move_cursor(node)
        await pilot.pause()
        y = levels.cursor - int(levels.scroll_offset.y) + levels.header_lines
        assert not node.is_expanded
        assert await pilot.click(LevelsTree, offset=(6, y), times=2)
        await wait_until(pilot, lambda: bool(node.children), "children to load")
        assert node.is_expanded
        assert await pilot.click(LevelsTree, offset=(6, y), times=2)
        await pilot.pause()
        assert not node.is_expanded

    drive(MINIMAL, body)


def test_mouse_click_moves_the_cursor_double_click_opens_and_tab_keys() -> None:
    with model(MINIMAL) as dump:
        tree = LevelTree(dump)
        rows = tree.rows(tree.roots[0])
        entry = rows.row(2)
        assert isinstance(entry, EntryRow)
        child = rows.child(entry.index)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await pilot.press("1")
        entries = screen.query_one("#entries", RowList)
        assert entries.cursor == 0
        assert await pilot.click("#entries", offset=(10, 3))  # row 2, under the header
        await pilot.pause()
        assert entries.cursor == 2
        details = screen.query_one("#details", RowList)
        assert row_text(details, 0).startswith(f"L{screen.table.level}[{entry.index}] ")
        assert await pilot.click("#entries", offset=(10, 3), times=2)
        await pilot.pause()
        assert screen.table == child
        tabs = screen.query_one("#tabs")
        assert tabs.active == "tables"
        for key, pane in (("2", "memmap"), ("3", "ranges"), ("4", "crashlog"), ("5", "gpu")):
            await pilot.press(key)
            assert tabs.active == pane
        await pilot.press("1")
        assert tabs.active == "tables"

    drive(MINIMAL, body)


# ---- go to ---------------------------------------------------------------------------------------


def test_goto_a_dumped_va_selects_the_leaf_and_shows_the_page() -> None:
    with model(MINIMAL) as dump:
        page = first_page(dump)
        va = page.va + 0x48
        size = dump.page_size_bytes
        data = bytes(dump.read_va(page.va, size))
        tree = LevelTree(dump)
        table, index = tree.path_to(va)[-1]
        walk = dump.translate(va)
        assert walk.mapped

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{va:#x}", typed=True)
        assert screen.table == table
        assert screen.rows.is_leaf_level
        # the tree was expanded down to the leaf table (loaded just now) and its cursor is there
        assert screen.query_one(LevelsTree).cursor_node.data == table
        entries = screen.query_one("#entries", RowList)
        entry = screen.rows.row(entries.cursor)
        assert isinstance(entry, EntryRow)
        assert (entry.index, entry.va) == (index, page.va)
        assert entry.state == "dumped"
        assert status(screen) == f"VA {va:#x} -> PA {walk.pa:#x} dumped"
        assert screen.page_va == page.va
        hex_rows = page_rows(screen)
        assert hex_rows[0][0] == page.va
        assert [row_va for row_va, _ in hex_rows] == list(
            range(page.va, page.va + size, HEX_ROW_BYTES)
        )
        assert b"".join(chunk for _, chunk in hex_rows) == data
        page_view = screen.query_one("#page", RowList)
        assert page_view.cursor == 0x48 // HEX_ROW_BYTES  # the row holding the VA
        title = text_of(screen.query_one("#page-title", Static))
        assert title == f"page {page.va:#x} -> PA {page.pa:#x}  [u8]"
        # the walk is in the details pane
        details = all_rows(screen.query_one("#details", RowList))
        assert f" -> PA {page.pa:#x}" in details  # the walk of the selected entry

    drive(MINIMAL, body)


def test_goto_unmapped_vas_say_where_the_walk_stopped() -> None:
    with model(MINIMAL) as dump:
        tree = LevelTree(dump)
        leaf_table = tree.path_to(first_page(dump).va)[-1][0]
        empty_l1 = tree.roots[0].va_end - tree.geometry.levels[0].entry_span_bytes
        empty_l3 = leaf_table.va_end - dump.page_size_bytes
        cases = {}
        for va in (empty_l1, empty_l3):
            walk = dump.translate(va)
            assert not walk.mapped
            cases[va] = walk
        assert {walk.stopped_level for walk in cases.values()} == {1, 3}
        outside = 0x1000
        outside_walk = dump.translate(outside)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        for va, walk in cases.items():
            await go_to(pilot, f"{va:#x}")
            assert status(screen) == (
                f"VA {va:#x} is not mapped: the walk stopped at L{walk.stopped_level}: "
                f"{walk.stopped_reason}"
            )
            # the deepest table covering the VA is shown, cursor on its entry
            assert screen.table.level == walk.stopped_level
            entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
            assert entry.va <= va < entry.va + entry.span_bytes
        before = screen.table
        await go_to(pilot, hex(outside))
        assert status(screen) == f"VA {outside:#x}: {outside_walk.stopped_reason}"
        assert screen.table == before

    drive(MINIMAL, body)


def test_goto_pa_goes_to_the_va_that_maps_it() -> None:
    with model(FAULTS) as dump:
        single = first_page(dump)
        pa = single.pa + 0x10
        assert dump.vas_for_pa(pa) == [single.va + 0x10]
        # faults.dump plants a double mapping: one PA, two VAs
        alias = next(p for p in dump.pages() if len(dump.vas_for_pa(p.pa)) > 1)
        alias_vas = dump.vas_for_pa(alias.pa)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"p:{pa:#x}")
        assert status(screen) == f"PA {pa:#x} at VA {single.va + 0x10:#x}"
        assert screen.page_va == single.va
        assert page_rows(screen)[0][0] == single.va
        await go_to(pilot, f"p:{alias.pa:#x}")
        assert status(screen).startswith(f"PA {alias.pa:#x} at VA {alias_vas[0]:#x}")
        assert f"({len(alias_vas)} aliases: " in status(screen)
        assert screen.page_va == alias_vas[0]

    drive(FAULTS, body)


BAD_GOTO = {
    "0xZZ": "go to: '0xZZ' is not an address: use 0x… hex or decimal",
    "hello": "go to: 'hello' is not an address: use 0x… hex or decimal",
    "p:0xnope": "go to: '0xnope' is not an address: use 0x… hex or decimal",
    "0x10000000000000000": "go to: '0x10000000000000000' is outside 0..2^64-1",
}


def test_goto_bad_syntax_reports_in_the_status_line() -> None:
    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        table = screen.table
        for typed, message in BAD_GOTO.items():
            await go_to(pilot, typed)
            assert status(screen) == message
            assert screen.table == table
        await modal(pilot, "g", GotoScreen)
        await pilot.press("enter")  # an empty answer changes nothing
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the prompt to close")
        assert status(screen) == message and screen.table == table

    drive(MINIMAL, body)


def test_goto_a_page_that_is_not_dumped_says_why() -> None:
    with model(FAULTS) as dump:
        page = next(p for p in dump.pages() if not p.dumped and p.reason_detail)
        record = dump.page(page.va)
        assert record is not None and not record.dumped

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{page.va:#x}")
        assert status(screen) == (
            f"VA {page.va:#x} -> PA {page.pa:#x} not dumped ({record.reason})"
        )
        entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
        assert entry.va == page.va
        assert entry.state == f"not dumped: {record.reason} ({record.reason_detail})"
        view = screen.query_one("#page", RowList)
        assert isinstance(view.source, PageSource) and view.source.data is None
        lines = all_rows(view)
        assert lines[0] == f"page VA {page.va:#x} (PA {page.pa:#x}): not dumped"
        assert lines[1] == f"reason: {record.reason} ({record.reason_detail})"
        assert "it is not zeros" in lines[2]
        assert not any(HEX_ROW.match(line) for line in lines)

    drive(FAULTS, body)


def test_an_entry_beyond_the_oas_shows_one_pa_and_flags_the_other() -> None:
    """The PA column, the entry-bit pane, the page header and the status line all show the
    walker's PA and say what the entry itself holds."""
    from dumpview.sim.asahi import FAULT_OA_BEYOND_OAS_VA as va

    with open_dump(FAULTS) as dump:
        page = dump.page(va)
    says = f"entry says {page.pa_raw:#x}: bits above the 42-bit OAS"

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{va:#x}")
        entries = screen.query_one("#entries", RowList)
        row = row_text(entries, entries.cursor)
        assert f"{page.pa:#014x}!" in row and says in row
        details = all_rows(screen.query_one("#details", RowList))
        assert f"page: maps PA {page.pa:#x} ({says})" in details
        assert any("walker and the hardware use" in line for line in details)
        assert says in text_of(screen.query_one("#page-title", Static))
        assert f"VA {va:#x} -> PA {page.pa:#x} ({says}) dumped" == status(screen)

    drive(FAULTS, body)


# ---- driver dumps ------------------------------------------------------------------------------


def test_driver_dump_tables_are_rebuilt_and_leaves_carry_values() -> None:
    with model(DRIVER) as dump:
        assert dump.extension is None
        page = first_page(dump)
        pte = page.pte

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        assert screen.table.rebuilt
        title = text_of(screen.query_one("#entries-title", Static))
        assert "rebuilt from the PT_LOADs (driver dump)" in title
        details = all_rows(screen.query_one("#details", RowList))
        assert any("value not recorded" in line for line in details)  # an upper-level entry
        await go_to(pilot, f"{page.va:#x}")
        assert screen.rows.is_leaf_level and screen.table.rebuilt
        assert "rebuilt" in text_of(screen.query_one("#entries-title", Static))
        entries = screen.query_one("#entries", RowList)
        entry = screen.rows.row(entries.cursor)
        assert entry.value == pte and not entry.exact
        shown = row_text(entries, entries.cursor)
        assert f" {pte:016x}"[:-1] + "~" in shown  # value, marked inexact
        details = all_rows(screen.query_one("#details", RowList))
        assert f"value {pte:#018x}  (rebuilt from p_paddr/p_flags)" in details
        not_recorded = [line for line in details if line.endswith("not recorded")]
        assert any(re.search(r"\bng\b", line) for line in not_recorded)
        assert len(not_recorded) >= 3
        assert page_rows(screen)[0][0] == page.va

    drive(DRIVER, body)


# ---- search --------------------------------------------------------------------------------------


def test_search_hex_counts_hits_and_holes_and_n_N_cycle() -> None:
    with model(MINIMAL) as dump:
        page = first_page(dump)
        pattern = bytes(dump.read_va(page.va + 0x20, 8))
        result = search(dump, pattern)
        hits = result.hits
        assert len(hits) > 2 and result.holes_skipped > 0

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        start = next_hit_index(hits, screen.page_va or 0)
        await run_search(pilot, screen, pattern.hex(), typed=True)
        text = status(screen)
        hit = hits[start]
        assert text.startswith(f"hit {start + 1}/{len(hits)} at VA {hit.va:#x} (PA {hit.pa:#x})")
        assert f"{len(hits):,} hit(s) in {result.pages_searched:,} dumped pages" in text
        assert f"{result.holes_skipped:,} pages without data skipped" in text

        ascii_of = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in pattern)

        def check_highlight(hit_va: int) -> None:
            view = screen.query_one("#page", RowList)
            source = view.source
            assert isinstance(source, PageSource)
            assert source.highlight == (hit_va, len(pattern))
            row = source.row_of_va(hit_va)
            assert view.cursor == row
            assert view.cursor_va == hit_va  # the byte cursor is on the hit's first byte
            marked = [text for text, style in source.row(row) if style == "rowlist--hit"]
            assert marked == [pattern.hex(" "), ascii_of]  # in the hex and the ASCII column

        check_highlight(hit.va)
        index = start
        for key, step in (("n", 1), ("n", 1), ("N", -1), ("N", -1), ("N", -1)):
            await pilot.press(key)
            wraps = not 0 <= index + step < len(hits)
            index = (index + step) % len(hits)
            expected = (
                f"hit {index + 1}/{len(hits)} at VA {hits[index].va:#x} (PA {hits[index].pa:#x})"
            )
            if wraps:
                expected += "; wrapped past the first hit to the last"
            assert status(screen) == expected
            check_highlight(hits[index].va)
        assert index == len(hits) - 1  # N wrapped around from the first hit, and said so

    drive(MINIMAL, body)


def test_search_string_and_no_hits_and_bad_hex() -> None:
    with model(MINIMAL) as dump:
        text = "gpu-buffer @"
        found = search(dump, text.encode())
        assert found.hits
        absent = "de ad be ef 01 23 45 67 89"
        missing = search(dump, bytes.fromhex(absent.replace(" ", "")))
        assert not missing.hits

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await run_search(pilot, screen, f'"{text}"')
        first = found.hits[next_hit_index(found.hits, 0)]
        assert status(screen).startswith(f"hit 1/{len(found.hits)} at VA {first.va:#x}")
        assert screen.page_va == first.va & ~0x3FFF
        await run_search(pilot, screen, absent)
        assert status(screen) == (
            f"search: no hits; 0 hit(s) in {missing.pages_searched:,} dumped pages; "
            f"{missing.holes_skipped:,} pages without data skipped"
        )
        await pilot.press("n")
        assert status(screen) == "no search hits: press / to search"
        await run_search(pilot, screen, "zz 12")
        assert status(screen) == (
            "search: hex pattern: 'z' is not a hex digit (a string goes in quotes: \"zz 12\")"
        )
        await run_search(pilot, screen, "abc")
        assert status(screen) == (
            'search: hex pattern: 3 digits, need an even number (a string goes in quotes: "abc")'
        )

    drive(MINIMAL, body)


# ---- bookmarks -----------------------------------------------------------------------------------


def test_bookmarks_exact_va_note_list_go_edit_and_delete_asks(tmp_path: Path) -> None:
    dump_path = copy_sample(MINIMAL, tmp_path)
    digest = sha256(dump_path)
    sidecar = sidecar_path(dump_path)
    with model(dump_path) as dump:
        pages = [p for p in dump.pages() if p.dumped]
        target, elsewhere = pages[3], pages[-1]

    def saved() -> list[tuple[int, str]]:
        document = json.loads(sidecar.read_text())
        assert document["dump"] == dump_path.name
        return [(int(b["va"], 16), b.get("note", "")) for b in document["bookmarks"]]

    async def bookmark(pilot: Pilot, screen: MainScreen, note: str | None) -> None:
        """b, then the note (None: Escape)."""
        await modal(pilot, "b", NoteScreen)
        prompt = pilot.app.screen
        if note is None:
            await pilot.press("escape")
        else:
            await fill_in(pilot, prompt.query_one("#note-input", Input), note, typed=False)
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the note prompt to close")

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{target.va:#x}")
        assert not sidecar.exists()
        await bookmark(pilot, screen, None)  # Escape: no bookmark
        assert status(screen) == "bookmark: cancelled" and not sidecar.exists()
        await bookmark(pilot, screen, "ring buffer head")
        assert status(screen).startswith(f"bookmarked {target.va:#x}: L3[")
        assert status(screen).endswith(" — ring buffer head")
        assert sidecar.exists() and saved() == [(target.va, "ring buffer head")]
        # a second one from the page: Enter on the leaf focuses the page, then the exact byte
        await pilot.press("enter")
        assert pilot.app.focused is screen.query_one("#page", RowList)
        await pilot.press("down", "down", "right", "right", "right")
        in_page = target.va + 2 * HEX_ROW_BYTES + 3
        await bookmark(pilot, screen, "")
        assert status(screen) == f"bookmarked {in_page:#x}: page {target.va:#x} + 0x23"
        assert saved() == [(target.va, "ring buffer head"), (in_page, "")]

        await go_to(pilot, f"{elsewhere.va:#x}")
        assert screen.page_va == elsewhere.va
        await modal(pilot, "B", BookmarksScreen)
        options = pilot.app.screen.query_one("#bookmark-list", OptionList)
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert shown[0].startswith(f"{target.va:#018x}  L3[")
        assert shown[0].endswith("  — ring buffer head")
        assert shown[1] == f"{in_page:#018x}  page {target.va:#x} + 0x23"
        await pilot.press("down", "enter")  # the second one: the exact byte
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the list to close")
        assert screen.page_va == target.va
        assert screen.query_one("#page", RowList).cursor_va == in_page
        assert status(screen).startswith(f"VA {in_page:#x} -> PA {target.pa + 0x23:#x}")

        # e edits the note; d asks, n keeps, y deletes
        lists = await open_list(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, NoteScreen), "the note")
        note_input = pilot.app.screen.query_one("#note-input", Input)
        assert note_input.value == "ring buffer head"
        await fill_in(pilot, note_input, "ring head (tail at +0x40)", typed=False)
        await wait_until(pilot, lambda: pilot.app.screen is lists, "the list again")
        assert saved()[0] == (target.va, "ring head (tail at +0x40)")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the ask")
        question = text_of(pilot.app.screen.query_one("#confirm-question", Label))
        assert question == f"Delete the bookmark at {target.va:#x} (ring head (tail at +0x40))?"
        await pilot.press("n")
        await wait_until(pilot, lambda: pilot.app.screen is lists, "the list again")
        assert len(saved()) == 2  # kept
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the ask")
        await pilot.press("y")
        await wait_until(pilot, lambda: pilot.app.screen is lists, "the list again")
        assert saved() == [(in_page, "")]
        options = lists.query_one("#bookmark-list", OptionList)
        assert options.option_count == 1
        assert str(options.get_option_at_index(0).prompt).startswith(f"{in_page:#018x}")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the ask")
        await pilot.press("y")
        await wait_until(pilot, lambda: pilot.app.screen is lists, "the list again")
        assert saved() == []
        assert lists.query_one("#bookmark-list", OptionList).get_option_at_index(0).disabled
        await pilot.press("escape")
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the list to close")

    async def open_list(pilot: Pilot) -> BookmarksScreen:
        await modal(pilot, "B", BookmarksScreen)
        return pilot.app.screen

    drive(dump_path, body)
    assert sha256(dump_path) == digest
    assert sidecar.parent == dump_path.parent
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dump_path.name, sidecar.name])


def test_existing_sidecar_is_loaded_and_labels_are_text(tmp_path: Path) -> None:
    dump_path = copy_sample(MINIMAL, tmp_path)
    digest = sha256(dump_path)
    with model(dump_path) as dump:
        page = first_page(dump)
    label = "[/bold] hand-edited [red]label"  # markup-like: must show as written, not crash
    document = {
        "schema": "dumpview-bookmarks/1",
        "dump": dump_path.name,
        "bookmarks": [{"va": f"{page.va:#x}", "label": label}],
    }
    sidecar_path(dump_path).write_text(json.dumps(document))

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        assert "warning" not in status(screen)
        await modal(pilot, "B", BookmarksScreen)
        options = pilot.app.screen.query_one("#bookmark-list", OptionList)
        assert options.option_count == 1
        assert str(options.get_option_at_index(0).prompt) == f"{page.va:#018x}  {label}"
        await pilot.press("enter")
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the list to close")
        assert screen.page_va == page.va

    drive(dump_path, body)
    assert sha256(dump_path) == digest
    assert json.loads(sidecar_path(dump_path).read_text()) == document  # only read


def test_corrupt_bookmarks_sidecar_still_opens_with_a_warning(tmp_path: Path) -> None:
    dump_path = copy_sample(MINIMAL, tmp_path)
    digest = sha256(dump_path)
    sidecar = sidecar_path(dump_path)
    sidecar.write_text('{"schema": "dumpview-bookmarks/1", "bookmarks": [{"va": 12}')

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        text = status(screen)
        assert "1 warning(s): bookmarks file" in text
        assert "is not usable" in text
        assert screen.bookmarks.items == []
        await modal(pilot, "B", BookmarksScreen)
        options = pilot.app.screen.query_one("#bookmark-list", OptionList)
        assert options.option_count == 1 and options.get_option_at_index(0).disabled

    drive(dump_path, body)
    assert sha256(dump_path) == digest


# ---- units ---------------------------------------------------------------------------------------


def test_u_cycles_units_and_the_hex_grouping() -> None:
    with model(MINIMAL) as dump:
        page = first_page(dump)
        data = bytes(dump.read_va(page.va, HEX_ROW_BYTES))

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{page.va + 0x30:#x}")
        view = screen.query_one("#page", RowList)
        assert view.cursor == 3
        for unit, size in (("u16", 2), ("u32", 4), ("u64", 8), ("u8", 1)):
            await pilot.press("u")
            assert screen.unit == unit
            assert status(screen) == f"page contents as {unit}"
            title = text_of(screen.query_one("#page-title", Static))
            assert title.endswith(f"[{unit}]")
            assert view.cursor == 3  # the cursor stays put
            m = HEX_ROW.match(row_text(view, 0))
            assert m and int(m.group(1), 16) == page.va
            groups = m.group(2).split(" ")
            assert [len(g) for g in groups] == [2 * size] * (HEX_ROW_BYTES // size)
            expected = [
                int.from_bytes(data[i : i + size], "little") for i in range(0, len(data), size)
            ]
            assert [int(g, 16) for g in groups] == expected

    drive(MINIMAL, body)


# ---- error screen --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_bad_dump_shows_the_error_screen_and_exits_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}[bold].dump"  # a file name is text, not markup
    if kind == "garbage":
        path.write_bytes(b"this is not an ELF core, just text\n" * 3)
    else:
        path.write_bytes(MINIMAL.read_bytes()[:200])
    with pytest.raises(DumpError) as raised:
        open_dump(path)
    reason = str(raised.value)

    async def body(pilot: Pilot) -> None:
        screen = await wait_error(pilot)
        assert pilot.app.error == reason
        message = text_of(screen.query_one("#error-message", Static))
        assert message == reason and "\n" not in message
        title = text_of(screen.query_one("#error-title", Label))
        assert title == f"dumpview cannot open {path}"
        await pilot.press("q")

    app = drive(path, body)
    assert app.return_code == 2
    assert app.dump is None


# ---- help and the command palette ----------------------------------------------------------------


def test_help_and_the_command_palette_cover_every_key() -> None:
    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        app = pilot.app
        await modal(pilot, "question_mark", HelpScreen)
        lines = all_rows(app.screen.query_one("#help-list", RowList))
        text = "\n".join(lines).replace("\n" + " " * 33, " ")  # long descriptions continue
        for key in KEYS:
            assert f"  {key.shown:<30} {key.help}\n" in text, key
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "help to close")
        commands = {c.title: c for c in app.get_system_commands(screen)}
        for key in KEYS:
            command = commands.get(key.palette_title)
            assert command is not None, key
            assert command.help == key.help
        await commands["Ranges (3)"].callback()
        assert screen.query_one("#tabs").active == "ranges"
        # and through the palette itself
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: app.screen is not screen, "the palette")
        await pilot.press(*"GPU info", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the palette to close")
        await wait_until(
            pilot, lambda: screen.query_one("#tabs").active == "gpu", "the palette command"
        )

    drive(MINIMAL, body)


# ---- ranges and crash log tabs -----------------------------------------------------------------


def test_enter_on_a_range_jumps_to_its_va() -> None:
    with model(FAULTS) as dump:
        table = ranges(dump)
        k = next(
            i for i in range(len(table)) if table.row(i).dumped and table.row(i).views[1] != "--"
        )
        target = table.row(k)
        first_bytes = bytes(dump.read_va(target.va_start, HEX_ROW_BYTES))

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await wait_until(pilot, lambda: screen.range_table is not None, "the ranges")
        await pilot.press("3")
        listing = screen.query_one("#ranges-list", RowList)
        assert len(listing.source) == len(table)
        title = text_of(screen.query_one("#ranges-title", Static))
        assert title.startswith(f"{len(table):,} ranges")
        assert row_text(listing, k).startswith(f" {target.va_start:016x}-{target.va_end:016x}")
        assert await pilot.click("#ranges-list", offset=(5, k + 1))  # under the header
        await pilot.pause()
        assert listing.cursor == k and pilot.app.focused is listing
        await pilot.press("enter")
        assert screen.query_one("#tabs").active == "tables"
        entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
        assert entry.va == target.va_start
        assert screen.page_va == target.va_start
        assert page_rows(screen)[0] == (target.va_start, first_bytes)

    drive(FAULTS, body)


def test_crash_log_tab_and_enter_on_the_far_line() -> None:
    with model(FAULTS) as dump:
        sections = {s.title: s.lines for s in crashlog_sections(dump)}
        esr_line = sections["Exception"][0]
        far_line = sections["Fault address"][0]
        far = int(re.search(r"FAR (0x[0-9a-f]+)", far_line).group(1), 16)
        walk = dump.translate(far)
        assert not walk.mapped

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await pilot.press("4")
        assert screen.query_one("#tabs").active == "crashlog"
        crash = screen.query_one("#crash", RowList)
        lines = all_rows(crash)
        assert esr_line.startswith("ESR 0x") and f"  {esr_line}" in lines
        assert any("DISAGREE" in line for line in lines)
        disagree = next(i for i, line in enumerate(lines) if "DISAGREE" in line)
        assert crash.source.row(disagree)[0][1] == "kind--invalid"
        crash.focus()
        crash.cursor = lines.index(f"  {far_line}")
        await pilot.pause()
        await pilot.press("enter")
        assert screen.query_one("#tabs").active == "tables"
        assert status(screen) == (
            f"VA {far:#x} is not mapped: the walk stopped at L{walk.stopped_level}: "
            f"{walk.stopped_reason}"
        )
        # a line without an address says which one, and the cursor stays on it
        await pilot.press("4")
        crash.focus()
        crash.cursor = 0
        await pilot.press("enter")
        assert status(screen) == f"line 1 ({lines[0].strip()!r}): no VA on this line to go to"
        assert screen.query_one("#tabs").active == "crashlog"
        assert crash.cursor == 0 and pilot.app.focused is crash

    drive(FAULTS, body)


def test_goto_under_a_bad_entry_stops_at_the_table_holding_it() -> None:
    """Go to (and Enter on the crash log's FAR line) shows ``path_to(va)[-1]``: for the FAR of
    faults.dump that should be the L2 table whose entry stopped the walk, on that entry. Checked
    on the model, which is where the fault is (the app only follows it)."""
    with model(FAULTS) as dump:
        log = crashlog_sections(dump)
        far_line = next(s.lines[0] for s in log if s.title == "Fault address")
        far = int(re.search(r"FAR (0x[0-9a-f]+)", far_line).group(1), 16)
        walk = dump.translate(far)
        stop = walk.steps[-1]
        tree = LevelTree(dump)
        table, index = tree.path_to(far)[-1]
        assert (table.level, index) == (walk.stopped_level, stop.index)
        assert tree.rows(table).entry(index).state == "invalid at this level"


# ---- user contexts -------------------------------------------------------------------------------


def test_user_contexts_three_roots_and_undumped_leaves() -> None:
    with model(USER_CONTEXTS) as dump:
        tree = LevelTree(dump)
        roots = tree.roots
        ctx1 = roots[1]
        l2 = tree.children(ctx1)[0][1]
        l3 = tree.children(l2)[0][1]
        rows = tree.rows(l3)
        leaf = next(rows.row(i) for i in range(len(rows)) if isinstance(rows.row(i), EntryRow))

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await pilot.press("1")
        levels = screen.query_one(LevelsTree)
        nodes = list(levels.root.children)
        assert [n.data for n in nodes] == list(roots)
        assert [r.context for r in roots] == [0, 1, 2]
        assert [str(n.label) for n in nodes] == [
            "ctx 0 dumped ASID 0 borrowed",
            "ctx 1 tables ASID 1 owned",
            "ctx 2 tables ASID 2 owned",
        ]
        levels.move_cursor(nodes[1])
        await pilot.pause()
        assert screen.table == ctx1
        screen.query_one("#entries", RowList).focus()
        await pilot.press("enter")
        assert screen.table == l2
        await pilot.press("enter")
        assert screen.table == l3
        entries = screen.query_one("#entries", RowList)
        entry = screen.rows.row(entries.cursor)
        assert entry == leaf
        assert entry.state == "not walked (context 1 is not dumped)"
        assert row_text(entries, entries.cursor).endswith("not walked (context 1 is not dumped)")
        assert all_rows(screen.query_one("#page", RowList)) == [
            "context 1 is not dumped: the walker dumps context 0"
        ]
        # go to stays in the context being browsed
        await go_to(pilot, f"{leaf.va:#x}")
        assert screen.table == l3

    drive(USER_CONTEXTS, body)


# ---- CLI routing ---------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=60,
    )


def test_cli_without_a_terminal_prints_info() -> None:
    with model(MINIMAL) as dump:
        total, dumped = dump.page_totals
    proc = run_cli("samples/minimal.dump")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "dumpview: not a terminal: printing info instead of opening the app"
    ]
    lines = proc.stdout.splitlines()
    assert lines[0] == "samples/minimal.dump"
    assert f"{total:,} mapped, {dumped:,} dumped, {total - dumped:,} not dumped" in proc.stdout


def test_cli_open_a_garbage_file_without_a_terminal_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "garbage.dump"
    path.write_bytes(b"garbage, not a core\n")
    with pytest.raises(DumpError) as raised:
        open_dump(path)
    proc = run_cli("open", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "not a terminal" not in line]
    assert errors == [f"dumpview: {path}: {raised.value}"]


# ---- snapshots -----------------------------------------------------------------------------------


def snapshot_steps(name: str) -> Callable[[Pilot], Awaitable[None]]:
    """What to do before the screenshot of view ``name`` of samples/faults.dump."""
    with model(FAULTS) as dump:
        leaf = first_page(dump).va + 0x20
        hole = next(p for p in dump.pages() if not p.dumped and p.reason_detail).va

    async def steps(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await wait_until(pilot, lambda: screen.range_table is not None, "the ranges")
        await wait_until(pilot, lambda: screen.check_result is not None, "check")
        if name == "tables-leaf":
            await go_to(pilot, f"{leaf:#x}")
        elif name == "page-inspector":
            await go_to(pilot, f"{leaf + 0x13:#x}")
            screen.query_one("#page", RowList).focus()
        elif name == "not-dumped":
            await go_to(pilot, f"{hole:#x}")
        elif name == "memmap":
            await pilot.press("2")
            minimap = screen.query_one("#minimap", Static)
            await wait_until(pilot, lambda: bool(text_of(minimap)), "the minimap")
        elif name == "ranges":
            await pilot.press("3")
        elif name == "crashlog":
            await pilot.press("4")
        elif name == "gpu":
            await pilot.press("5")
        elif name == "anomalies":
            await pilot.press("6")
        elif name == "help":
            await modal(pilot, "question_mark", HelpScreen)
        elif name == "overview":
            assert screen.tab == "overview" and screen.triage is not None  # the first screen
        await pilot.pause()

    return steps


@pytest.mark.parametrize(
    "name", ["tables-leaf", "not-dumped", "memmap", "ranges", "crashlog", "gpu", "help"]
)
def test_snapshot_views(snap_compare, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(ROOT)  # the GPU info tab prints the path as given
    app = DumpviewApp("samples/faults.dump")
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=snapshot_steps(name))


@pytest.mark.parametrize("size", [(100, 30), (180, 50)], ids=["100x30", "180x50"])
@pytest.mark.parametrize("name", ["overview", "anomalies", "page-inspector"])
def test_snapshot_conclusions_and_the_page(
    snap_compare, monkeypatch: pytest.MonkeyPatch, name: str, size: tuple[int, int]
) -> None:
    """The overview (the triage report, the first screen of a dump with a crash log), the
    anomalies view, and the page pane with its byte cursor and data inspector, at the
    smallest and a common terminal size."""
    monkeypatch.chdir(ROOT)
    app = DumpviewApp("samples/faults.dump")
    assert snap_compare(app, terminal_size=size, run_before=snapshot_steps(name))


def test_snapshot_error_screen(
    snap_compare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "garbage.dump").write_bytes(b"this is not an ELF core, just text\n" * 3)
    monkeypatch.chdir(tmp_path)
    app = DumpviewApp("garbage.dump")
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=wait_error)


# ---- a second entry format ---------------------------------------------------------------------

SMMU = SAMPLES / "smmu-lpae4k.dump"


def test_lpae_block_row_shows_its_size_views_and_the_page_inside() -> None:
    """Go to a VA inside the 2 MiB RAM block of the LPAE sample: the cursor lands on the L2
    block entry (no table below it), the header names the LPAE views, the page pane shows the
    block's page holding the VA."""
    with model(SMMU) as dump:
        va = 0x4_0000_0000 + 5 * dump.page_size_bytes + 0x30
        walk = dump.translate(va)
        assert walk.leaf.type_name == "block"
        page_va = va & ~(dump.page_size_bytes - 1)
        data = bytes(dump.read_va(page_va, dump.page_size_bytes))

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        entries = screen.query_one("#entries", RowList)
        header = "".join(text for text, _ in entries.header)
        assert "priv unpriv nG AF" in header
        await go_to(pilot, f"{va:#x}", typed=False)
        assert screen.table.level == 2 and not screen.rows.is_leaf_level
        entries = screen.query_one("#entries", RowList)
        entry = screen.rows.row(entries.cursor)
        assert isinstance(entry, EntryRow) and entry.type_name == "block"
        assert entry.state == "block 2M: dumped" and entry.views == ("RW-", "RW-")
        text = row_text(entries, entries.cursor)
        assert " block  0x000080200000  write-back" in text and "RW-  RW-" in text
        title = text_of(screen.query_one("#page-title", Static))
        assert title == f"page {page_va:#x} -> PA {walk.pa & ~0xFFF:#x}  [u8]  (L2 block of 2M)"
        assert b"".join(chunk for _, chunk in page_rows(screen)) == data

    drive(SMMU, body)
