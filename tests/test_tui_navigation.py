"""The inspector as a hex viewer: the byte cursor, the data inspector, following a pointer,
copying addresses, and back/forward over every kind of jump.

Expected values come from the model (``read_va``, ``translate``, ``decode_entry``, ``check``,
``ranges``) opened independently of the app. Dumps that need a pointer in a page are copies of
a sample with eight bytes changed in ``tmp_path``.
"""

from __future__ import annotations

import re
from pathlib import Path

from textual.pilot import Pilot
from tui_pilot import (
    FAULTS,
    MINIMAL,
    all_rows,
    copy_sample,
    drive,
    fill_in,
    first_page,
    go_to,
    modal,
    model,
    row_text,
    run_search,
    status,
    wait_main,
    wait_until,
)

from dumpview.model.crash import crashlog_sections
from dumpview.model.entries import decode_entry
from dumpview.model.levels import EntryRow, LevelTree
from dumpview.model.memmap import first_mapping, memory_map
from dumpview.model.ranges import ranges
from dumpview.model.text import describe_entry
from dumpview.tui.app import BookmarksScreen, MainScreen, NoteScreen
from dumpview.tui.hexview import HexView
from dumpview.tui.widgets import RowList

LISTS = {"memmap": "#memrows", "ranges": "#ranges-list", "crashlog": "#crash"}
LISTS |= {"gpu": "#gpuinfo", "anomalies": "#anomaly-list", "overview": "#overview-list"}


def entries_cursor(screen: MainScreen) -> int:
    return screen.query_one("#entries", RowList).cursor


def where(screen: MainScreen) -> tuple:
    """What back and forward restore: on the Tables tab (tab, table, entries cursor row, page
    cursor VA), on another tab (tab, its list's cursor row)."""
    tab = screen.query_one("#tabs").active
    if tab != "tables":
        return tab, screen.query_one(LISTS[tab], RowList).cursor
    return (
        tab,
        screen.table,
        screen.query_one("#entries", RowList).cursor,
        screen.query_one(HexView).cursor_va,
    )


def styled(rowlist: RowList, index: int, style: str) -> list[str]:
    return [text for text, name in rowlist.row_pieces(index) if name == style]


# ---- byte cursor and data inspector --------------------------------------------------------------


def test_goto_puts_the_byte_cursor_on_the_exact_byte_and_the_inspector_reads_it() -> None:
    with model(MINIMAL) as dump:
        page = first_page(dump)
        va = page.va + 0x13  # not aligned to anything
        data = bytes(dump.read_va(page.va, dump.page_size_bytes))
        off = 0x13
        u64 = int.from_bytes(data[off : off + 8], "little")
        walk = dump.translate(u64)
        level = dump.geometry.levels[-1].level
        as_entry = describe_entry(decode_entry(u64, level, dump.geometry, fmt=dump.entry_format))

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{va:#x}")
        view = screen.query_one(HexView)
        assert view.cursor_va == va and view.byte_offset == off
        row = view.cursor
        assert row == off // 16
        assert styled(view, row, "rowlist--byte") == [
            f"{data[off]:02x}",
            chr(data[off]) if 0x20 <= data[off] < 0x7F else ".",
        ]
        assert styled(view, row, "rowlist--cursor") == [f"{page.va + row * 16:016x}"]
        lines = str(screen.query_one("#inspector").visual).split("\n")
        expected = (
            f"{va:#x} +{off:#05x}  u8 {data[off]:#04x} ({data[off]})"
            f" u16 {int.from_bytes(data[off : off + 2], 'little'):#06x}"
            f" u32 {int.from_bytes(data[off : off + 4], 'little'):#010x}"
            f" u64 {u64:#018x}"
        )
        assert lines[0] == expected
        assert lines[1].startswith("u64 as VA ")
        if walk.mapped:
            assert f"-> PA {walk.pa:#x}" in lines[1]
        else:
            assert "not mapped" in lines[1] or "not an address" in lines[1]
        assert lines[1].endswith(f"; as L{level} entry: {as_entry}")

    drive(MINIMAL, body)


def test_byte_cursor_keys_move_by_the_unit_shown() -> None:
    with model(MINIMAL) as dump:
        page = first_page(dump)
        size = dump.page_size_bytes

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{page.va + 0x21:#x}")
        view = screen.query_one(HexView)
        view.focus()
        await pilot.pause()
        moves = [("right", 0x22), ("right", 0x23), ("left", 0x22), ("down", 0x32), ("up", 0x22)]
        for key, offset in moves:
            await pilot.press(key)
            assert view.byte_offset == offset, key
        await pilot.press("end")
        assert view.byte_offset == size - 1 and view.cursor == size // 16 - 1
        await pilot.press("home")
        assert view.byte_offset == 0 and view.cursor == 0
        await pilot.press("u", "u")  # u32: the cursor is a unit, and moves by one
        assert screen.unit == "u32"
        await pilot.press("right", "right")
        assert view.byte_offset == 8
        assert (
            styled(view, 0, "rowlist--byte")[0]
            == bytes(screen.dump.read_va(page.va + 8, 4))[::-1].hex()
        )
        # a click picks the byte under the mouse: byte 5 of row 1 in the ASCII column, which
        # starts after the VA (18 cells), four u32 groups (35) and "  |"
        assert view.scroll_offset == (0, 0)
        assert await pilot.click(HexView, offset=(18 + 35 + 3 + 5, 1))
        await pilot.pause()
        assert view.cursor == 1 and view.byte_offset == 16 + 4  # the u32 holding byte 5
        assert await pilot.click(HexView, offset=(18 + 2 * 9, 2))  # the third group of row 2
        await pilot.pause()
        assert view.byte_offset == 32 + 8

    drive(MINIMAL, body)


# ---- following a pointer -----------------------------------------------------------------------


def pointer_dump(tmp_path: Path) -> tuple[Path, int, int]:
    """A copy of minimal.dump whose first dumped page holds, at +0x40, the VA of a byte in
    another dumped page; (path, VA of the pointer, VA it points to)."""
    path = copy_sample(MINIMAL, tmp_path)
    with model(path) as dump:
        pages = [p for p in dump.pages() if p.dumped]
        source, target = pages[0], pages[5]
        at = source.va + 0x40
        seg = dump.segment_at(at)
        file_offset = int(dump.seg_offset[seg]) + (at - int(dump.seg_va[seg]))
        pointee = target.va + 0x18
    with path.open("r+b") as f:
        f.seek(file_offset)
        f.write(pointee.to_bytes(8, "little"))
    return path, at, pointee


def test_enter_on_a_u64_that_is_a_mapped_va_follows_it_and_back_returns(tmp_path: Path) -> None:
    path, at, pointee = pointer_dump(tmp_path)
    with model(path) as dump:
        walk = dump.translate(pointee)
        assert walk.mapped
        not_va = dump.read_va(at + 8, 8)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{at:#x}")
        inspector = str(screen.query_one("#inspector").visual)
        assert f"u64 {pointee:#018x}" in inspector
        assert f"u64 as VA -> PA {walk.pa:#x} dumped (Enter follows)" in inspector
        view = screen.query_one(HexView)
        view.focus()
        await pilot.press("enter")
        assert view.cursor_va == pointee and screen.page_va == pointee & ~0x3FFF
        assert status(screen) == f"followed u64 at VA {at:#x}: {pointee:#x} -> PA {walk.pa:#x}"
        await pilot.press("left_square_bracket")
        assert view.cursor_va == at
        assert status(screen).startswith(f"back to VA {at:#x} (context 0)")
        await pilot.press("right_square_bracket")
        assert view.cursor_va == pointee
        # the next u64 is no VA: Enter says so and stays
        await pilot.press("left_square_bracket")
        view.focus()
        await pilot.press(*["right"] * 8)
        assert view.cursor_va == at + 8
        await pilot.press("enter")
        value = int.from_bytes(not_va, "little")
        assert status(screen).startswith(f"u64 at VA {at + 8:#x} is {value:#x}: not a mapped VA")
        assert view.cursor_va == at + 8

    drive(path, body)


# ---- copy ----------------------------------------------------------------------------------------


def test_y_on_a_text_line_copies_the_address_enter_goes_to() -> None:
    """On the crash log's register line (psr, then far), y copies the FAR, the address Enter
    goes to, not the first number of the line."""
    with model(FAULTS) as dump:
        far = dump.fault().far

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        app = pilot.app
        await pilot.press("4")
        crash = screen.query_one("#crash", RowList)
        crash.focus()
        rows = all_rows(crash)
        row = next(i for i, text in enumerate(rows) if "psr" in text and f"{far:#x}" in text)
        assert rows[row].index("psr") < rows[row].index(f"{far:#x}")
        crash.cursor = row
        await pilot.press("y")
        assert app.clipboard == f"{far:#x}"
        await pilot.press("enter")
        assert screen.query_one("#tabs").active == "tables"
        assert f"{far:#x}" in status(screen)

    drive(FAULTS, body)


def test_y_copies_the_va_and_Y_the_pa_under_the_cursor() -> None:
    with model(MINIMAL) as dump:
        page = first_page(dump)
        table = ranges(dump)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        app = pilot.app
        await go_to(pilot, f"{page.va + 0x31:#x}")
        await pilot.press("y")  # the entries have focus: the entry's VA
        assert app.clipboard == f"{page.va:#x}"
        assert status(screen).startswith(f"copied VA {page.va:#x} (L3[")
        screen.query_one(HexView).focus()
        await pilot.press("y")
        assert app.clipboard == f"{page.va + 0x31:#x}"
        assert status(screen) == (
            f"copied VA {page.va + 0x31:#x} (page {page.va:#x} + 0x31) to the clipboard"
        )
        await pilot.press("Y")
        assert app.clipboard == f"{page.pa + 0x31:#x}"
        await wait_until(pilot, lambda: screen.range_table is not None, "the ranges")
        await pilot.press("3")
        listing = screen.query_one("#ranges-list", RowList)
        listing.focus()
        listing.cursor = 2
        await pilot.press("y")
        assert app.clipboard == f"{int(table.va_start[2]):#x}"
        await pilot.press("5")  # GPU info: a line without an address copies nothing
        gpu = screen.query_one("#gpuinfo", RowList)
        gpu.focus()
        gpu.cursor = 0
        await pilot.press("y")
        assert status(screen) == "copy: no VA under the cursor"

    drive(MINIMAL, body)


# ---- back and forward over every kind of jump ----------------------------------------------------


def test_back_and_forward_walk_every_kind_of_jump(tmp_path: Path) -> None:
    path = copy_sample(FAULTS, tmp_path)
    with model(path) as dump:
        tree = LevelTree(dump)
        pages = [p for p in dump.pages() if p.dumped]
        a_va = pages[1].va + 0x10
        result = dump.check()
        finding = next(a for a in result.anomalies if a.pages and a.va is not None)
        table = ranges(dump)
        range_row = 3
        region = next(r for r in memory_map(dump)[0] if r.mapped_pages)
        region_va = first_mapping(dump, region.base, region.end)[1]
        far_line = next(s.lines[0] for s in crashlog_sections(dump) if s.title == "Fault address")
        far = int(re.search(r"FAR (0x[0-9a-f]+)", far_line).group(1), 16)
        needle = bytes(dump.read_va(pages[2].va + 0x30, 6))
        top = tree.rows(tree.roots[0])
        first_child = next(
            i
            for i in range(len(top))
            if isinstance(top.row(i), EntryRow)
            and (child := top.child(top.row(i).index)) is not None
            and child.carried
        )

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await wait_until(pilot, lambda: screen.check_result is not None, "check")
        left: list[tuple] = []  # where each jump left from
        arrived: list[tuple] = []  # and where it went

        def leaving() -> None:
            left.append(where(screen))

        async def jumped() -> None:
            await pilot.pause()
            arrived.append(where(screen))
            assert arrived[-1] != left[-1]

        # Enter on the overview's FAR line (faults.dump opens on the overview)
        await wait_until(pilot, lambda: screen.triage is not None, "the triage report")
        assert where(screen) == ("overview", 0)
        overview = screen.query_one("#overview-list", RowList)
        overview.cursor = next(
            i for i in range(len(overview.source)) if row_text(overview, i).startswith("› FAR")
        )
        leaving()
        await pilot.press("enter")
        await jumped()
        assert screen.table.context == 0 and screen.rows.row(entries_cursor(screen)).va <= far
        # Enter descends into a table
        await pilot.press("1")
        entries = screen.query_one("#entries", RowList)
        entries.focus()
        entries.cursor = first_child
        await pilot.pause()
        leaving()
        await pilot.press("enter")
        await jumped()
        leaving()
        await go_to(pilot, f"{a_va:#x}")  # go to
        await jumped()
        leaving()
        await run_search(pilot, screen, needle.hex(" "))  # a search hit
        await jumped()
        await pilot.press("6")  # a finding
        listing = screen.query_one("#anomaly-list", RowList)
        listing.focus()
        view = screen.query_one("AnomaliesView")
        listing.cursor = next(
            i for i in range(len(listing.source)) if view.anomaly_at(i) == finding
        )
        leaving()
        await pilot.press("enter")
        await jumped()
        assert screen.query_one(HexView).cursor_va in (finding.va, None)
        await pilot.press("3")  # a range
        ranges_list = screen.query_one("#ranges-list", RowList)
        ranges_list.focus()
        ranges_list.cursor = range_row
        leaving()
        await pilot.press("enter")
        await jumped()
        assert screen.rows.row(entries.cursor).va <= int(table.va_start[range_row])
        await pilot.press("2")  # a memory-map region
        memrows = screen.query_one("#memrows", RowList)
        memrows.focus()
        memrows.cursor = next(
            i for i, r in screen.query_one("MemoryMapView").regions.items() if r == region
        )
        leaving()
        await pilot.press("enter")
        await jumped()
        assert screen.query_one(HexView).cursor_va in (region_va, None)
        await pilot.press("4")  # a crash-log line
        crash = screen.query_one("#crash", RowList)
        crash.focus()
        crash.cursor = [row_text(crash, i) for i in range(len(crash.source))].index(f"  {far_line}")
        leaving()
        await pilot.press("enter")
        await jumped()
        # a bookmark
        await modal(pilot, "b", NoteScreen)
        await fill_in(pilot, pilot.app.screen.query_one("#note-input"), "", typed=False)
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the note")
        leaving()
        await go_to(pilot, f"{pages[-1].va:#x}")
        await jumped()
        await modal(pilot, "B", BookmarksScreen)
        leaving()
        await pilot.press("enter")
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the list")
        await jumped()

        # Back through all of them (to where each jump left from), then forward again (to
        # where the next one left from, and where the last one went), as a browser does.
        assert len(left) == len(arrived) == 10
        for step, expected in enumerate(reversed(left)):
            await pilot.press("backspace")
            assert where(screen) == expected, (step, status(screen))
        await pilot.press("left_square_bracket")
        assert status(screen) == "back: no earlier place (every jump records one)"
        for expected in [*left[1:], arrived[-1]]:
            await pilot.press("right_square_bracket")
            assert where(screen) == expected
        await pilot.press("right_square_bracket")
        assert status(screen) == "forward: nothing ahead (go back first)"
        # a new jump after going back forgets what was ahead
        await pilot.press("left_square_bracket", "left_square_bracket")
        await go_to(pilot, f"{far:#x}")
        await pilot.press("right_square_bracket")
        assert status(screen) == "forward: nothing ahead (go back first)"

    drive(path, body)
