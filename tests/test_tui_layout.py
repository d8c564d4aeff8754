"""The inspector's layout from 100x30 to 250x70, and focus a person can see.

At each size and on every tab: no two widgets on screen overlap, each lies inside the screen,
and a one-line text or a row that does not fit ends in an ellipsis. The entries keep the
columns a driver developer reads first; the page shows 8, 16 or 32 bytes a row; the tree can be
hidden. Focus: the pane the keys go to has its title and cursor in the cursor colour, the other
panes a dimmer cursor, and the tree's cursor looks focused only when it is.
"""

from __future__ import annotations

import pytest
from rich.style import Style
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static
from tui_pilot import FAULTS, drive, go_to, model, wait_main, wait_until

from dumpview.tui.app import MainScreen
from dumpview.tui.bars import KeyBar, TabBar
from dumpview.tui.hexview import HexView
from dumpview.tui.widgets import RowList

SIZES = [(100, 30), (180, 50), (250, 70)]
TABS = ["1", "2", "3", "4", "5", "6"]
# Columns of the entries heading at each size (the tree shown): VA, type, PA, memattr and both
# permission views always; then the index, the raw value, the span, nG/AF as room allows.
COLUMNS = {
    (100, 30): ["VA", "type", "PA", "memattr", "fw gpu", "state"],
    (180, 50): ["idx", "VA", "span", "value", "type", "PA", "memattr", "fw gpu", "nG AF", "state"],
    (250, 70): ["idx", "VA", "span", "value", "type", "PA", "memattr", "fw gpu", "nG AF", "state"],
}
ROW_BYTES = {(100, 30): 8, (180, 50): 16, (250, 70): 32}


def leaves(screen: MainScreen) -> list[Widget]:
    """Widgets drawn on screen that have no drawn children (containers hold their children)."""
    out = []
    for widget in screen.walk_children(Widget):
        if not widget.display or not widget.region.area or not widget.is_on_screen:
            continue
        drawn = [c for c in widget.children if c.display and c.region.area and c.is_on_screen]
        if not drawn:
            out.append(widget)
    return out


def shown_lines(widget: Widget) -> list[str]:
    """The text the widget draws (padding and border included), line by line."""
    width, height = widget.outer_size
    return [strip.text for strip in widget.render_lines(Region(0, 0, width, height))]


def check_screen(screen: MainScreen, size: tuple[int, int], where: str) -> None:
    bounds = Region(0, 0, *size)
    drawn = leaves(screen)
    assert drawn
    for widget in drawn:
        assert bounds.contains_region(widget.region), (where, widget, widget.region)
    for i, a in enumerate(drawn):
        for b in drawn[i + 1 :]:
            assert not a.region.overlaps(b.region), (where, a, a.region, b, b.region)
    # one-line texts: what does not fit ends in an ellipsis
    for widget in drawn:
        if isinstance(widget, Static) and widget.size.height == 1 and widget.size.width:
            full = str(widget.visual)
            line = "\n".join(shown_lines(widget)).strip()
            if len(full) > widget.size.width:
                assert line.endswith("…"), (where, widget, full, line)
            else:
                assert line == full.strip(), (where, widget, full, line)
    # the bars: the key bar holds more than 100 columns, so it ends in an ellipsis there
    for bar in (screen.query_one(KeyBar), screen.query_one(TabBar)):
        (line,) = shown_lines(bar)
        assert len(line) == size[0]
        full = (
            sum(len(f" {shown} {what} ") for shown, what, _ in bar.keys)
            if isinstance(bar, KeyBar)
            else 0
        )
        if full > size[0]:
            assert line.endswith("…"), (where, bar, line)
    # rows of lists: a row longer than the list is cut with an ellipsis (before its scrollbar)
    for widget in drawn:
        visible = widget.scrollable_content_region.width if isinstance(widget, RowList) else 0
        if visible > 1:
            top = int(widget.scroll_offset.y)
            for y in range(widget.header_lines, widget.size.height):
                index = top + y - widget.header_lines
                if index >= len(widget.source):
                    break
                line = widget.render_line(y).text[:visible]
                full = "".join(t for t, _ in widget.row_pieces(index))
                if len(full) > int(widget.scroll_offset.x) + visible:
                    assert line.endswith("…"), (where, widget, index, line)
                else:
                    assert "…" not in line[-1:] or full.endswith("…"), (where, widget, line)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_no_overlap_nothing_cut_without_an_ellipsis_on_every_tab(size: tuple[int, int]) -> None:
    with model(FAULTS) as dump:
        page = next(p for p in dump.pages() if p.dumped)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await wait_until(pilot, lambda: screen.check_result is not None, "check")
        await go_to(pilot, f"{page.va + 0x44:#x}")
        for tab in TABS:
            await pilot.press(tab)
            await pilot.pause()
            check_screen(screen, size, f"tab {tab}")
        await pilot.press("1")
        entries = screen.query_one("#entries", RowList)
        heading = "".join(t for t, _ in entries.header).split()
        heading = " ".join(heading).replace("nG AF", "nG_AF").replace("fw gpu", "fw_gpu").split()
        expected = [c.replace(" ", "_") for c in COLUMNS[size]]
        assert heading == expected
        view = screen.query_one(HexView)
        assert view.page.row_bytes == ROW_BYTES[size]
        assert view.cursor_va == page.va + 0x44
        first = view.source.row(0)
        assert (
            len(bytes.fromhex("".join(t for t, s in first[2:-3]).replace(" ", "")))
            == (ROW_BYTES[size])
        )
        # the tree hides and shows; hidden, the entries get the columns its width held
        await pilot.press("t")
        await pilot.pause()
        assert not screen.query_one("#tree-box").display
        assert screen.query_one("#entries", RowList).has_focus
        check_screen(screen, size, "tree hidden")
        wider = "".join(t for t, _ in entries.header)
        assert len(wider.split()) >= len(heading)
        await pilot.press("t")
        await pilot.pause()
        assert screen.query_one("#tree-box").display
        # c: every column, scrolling sideways
        await pilot.press("c")
        await pilot.pause()
        full = "".join(t for t, _ in entries.header)
        assert "value" in full and "nG AF" in full and "idx" in full
        if len(heading) < len(COLUMNS[(250, 70)]):  # columns were dropped: now it scrolls
            assert entries.virtual_size.width > entries.size.width
            await pilot.press("right", "right", "right")
            assert entries.scroll_offset.x == 3
            assert entries.render_line(0).text.startswith(full[3:10])  # the heading scrolled too
        check_screen(screen, size, "every column")

    drive(FAULTS, body, size=size)


def background(widget: Widget, style: str) -> object:
    return widget.get_component_rich_style(style).bgcolor


def test_focus_is_unmistakable_and_the_tree_looks_focused_only_when_it_is() -> None:
    with model(FAULTS) as dump:
        page = next(p for p in dump.pages() if p.dumped)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await go_to(pilot, f"{page.va:#x}")
        entries = screen.query_one("#entries", RowList)
        details = screen.query_one("#details", RowList)
        tree = screen.query_one("#levels")
        assert entries.has_focus

        def title_bg(selector: str) -> object:
            return screen.query_one(selector, Static).styles.background

        def cursor_bg(rowlist: RowList) -> object:
            line = rowlist.render_line(
                rowlist.cursor + rowlist.header_lines - int(rowlist.scroll_offset.y)
            )
            return list(line)[1].style.bgcolor

        def tree_cursor_bg() -> object:
            y = tree.cursor - int(tree.scroll_offset.y)
            segments = [s for s in tree.render_line(y) if s.text.strip().startswith("[")]
            return segments[0].style.bgcolor

        focused_cursor = cursor_bg(entries)
        blurred_cursor = cursor_bg(details)
        assert focused_cursor != blurred_cursor
        plain = Style.parse(str(entries.rich_style)).bgcolor
        assert blurred_cursor != plain  # an unfocused pane still shows where its cursor is
        focused_title = title_bg("#entries-title")
        assert focused_title != title_bg("#details-title")
        assert title_bg("#details-title") == title_bg("#tree-title")
        # the tree's cursor, not focused, is not the focused cursor
        assert tree_cursor_bg() != focused_cursor
        await pilot.press("shift+tab")  # to the tree
        await pilot.pause()
        assert tree.has_focus
        assert tree_cursor_bg() == focused_cursor
        assert title_bg("#tree-title") == focused_title != title_bg("#entries-title")
        assert cursor_bg(entries) == blurred_cursor  # the entries lost the strong cursor
        await pilot.press("tab", "tab")  # entries, then the entry bits
        await pilot.pause()
        assert details.has_focus and cursor_bg(details) == focused_cursor
        await pilot.press("tab")  # the page: its byte in the cursor colour
        await pilot.pause()
        view = screen.query_one(HexView)
        assert view.has_focus
        assert title_bg("#page-title") == focused_title
        line = view.render_line(view.cursor - int(view.scroll_offset.y))
        strong = [s.text for s in line if s.style.bgcolor == focused_cursor]
        first = bytes(screen.dump.read_va(page.va, 1))[0]
        text = chr(first) if 0x20 <= first < 0x7F else "."
        assert strong == [f"{page.va:016x}", f"{first:02x}", text]  # VA, hex, ASCII

    drive(FAULTS, body, size=(180, 50))
