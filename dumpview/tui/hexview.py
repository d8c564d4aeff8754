"""The page pane: one page as hex rows with a byte cursor, and the data inspector's lines.

Owns ``HexView`` (a ``RowList`` whose cursor is a byte: Left/Right move by the unit shown,
Up/Down by a row, Home/End to the page's first and last byte, a click picks the byte under the
mouse) and ``inspect`` (what the bytes under the cursor are: u8, u16, u32, u64 little-endian,
the u64 as a VA walked through the tables and as a leaf entry decoded). Reads the model only.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.binding import Binding

from dumpview.model import Dump
from dumpview.model.entries import decode_entry
from dumpview.model.text import HEX_UNITS, describe_entry
from dumpview.tui.sources import PageSource
from dumpview.tui.widgets import Row, RowList, RowSource

VA_CELLS = 18  # the VA column and the two spaces after it


class HexView(RowList):
    """Hex rows of a ``PageSource`` with a byte cursor at ``offset`` (bytes into the page)."""

    BINDINGS = [
        Binding("left,h", "byte(-1)", "Byte left", show=False),
        Binding("right,l", "byte(1)", "Byte right", show=False),
        Binding("home", "edge(0)", "First byte", show=False),
        Binding("end", "edge(-1)", "Last byte", show=False),
    ]
    row_cursor = False  # the cursor is a byte (and its row's VA), not a whole row

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.byte_offset = 0
        # Called when the cursor byte moves (also within a row), with the new offset.
        self.on_byte: Callable[[int], None] | None = None

    @property
    def page(self) -> PageSource | None:
        """The page shown, when it has data."""
        source = self.source
        return source if isinstance(source, PageSource) and source.data is not None else None

    @property
    def cursor_va(self) -> int | None:
        page = self.page
        return None if page is None else page.va + self.byte_offset

    def show_page(self, source: PageSource, offset: int = 0) -> None:
        """Show ``source`` with the cursor on byte ``offset`` (clamped, aligned to the unit)."""
        self.byte_offset = self._aligned(source, offset)
        row = self.byte_offset // source.row_bytes if source.data is not None else 0
        self.set_source(source, row)

    def _aligned(self, source: RowSource, offset: int) -> int:
        if not isinstance(source, PageSource) or source.data is None or not len(source.data):
            return 0
        size = HEX_UNITS[source.unit]
        return max(0, min(offset, len(source.data) - 1)) // size * size

    def move_to(self, offset: int) -> None:
        """Put the cursor on byte ``offset`` of the page (clamped)."""
        page = self.page
        if page is None:
            return
        self.byte_offset = self._aligned(page, offset)
        row = self.byte_offset // page.row_bytes
        if row != self.cursor:
            self.cursor = row  # the watcher redraws both rows and tells on_byte
        else:
            self.refresh_row(row)
            if self.on_byte is not None:
                self.on_byte(self.byte_offset)

    def action_byte(self, direction: int) -> None:
        page = self.page
        if page is not None:
            self.move_to(self.byte_offset + direction * HEX_UNITS[page.unit])

    def action_edge(self, end: int) -> None:
        page = self.page
        if page is not None:
            self.move_to(len(page.data) - 1 if end else 0)
        else:
            self.action_jump(end)

    def watch_cursor(self, old: int, new: int) -> None:
        page = self.page
        if page is not None:
            column = self.byte_offset % page.row_bytes
            self.byte_offset = self._aligned(page, new * page.row_bytes + column)
        super().watch_cursor(old, new)
        if page is not None and self.on_byte is not None:
            self.on_byte(self.byte_offset)

    def row_pieces(self, index: int) -> Row:
        page = self.page
        if page is None:
            return self.source.row(index)
        return page.hex_row(index, self.byte_offset if index == self.cursor else None)

    def on_click(self, event: events.Click) -> None:
        page = self.page
        if page is None:
            super().on_click(event)
            return
        row = int(self.scroll_offset.y) + event.y
        x = int(self.scroll_offset.x) + event.x - VA_CELLS
        n = page.row_bytes
        size = HEX_UNITS[page.unit]
        hex_cells = (n // size) * (2 * size + 1) - 1
        if 0 <= x < hex_cells:
            column = x // (2 * size + 1) * size
        elif hex_cells + 3 <= x < hex_cells + 3 + n:
            column = x - hex_cells - 3
        else:
            column = self.byte_offset % n
        if 0 <= row < len(page):
            self.move_to(row * n + column)
            if event.chain >= 2:
                self.action_activate()  # what Enter does


def u64_at(source: PageSource, offset: int) -> int | None:
    """The little-endian u64 at ``offset`` of the page, None when fewer than 8 bytes remain."""
    if source.data is None or offset + 8 > len(source.data):
        return None
    return int.from_bytes(source.data[offset : offset + 8], "little")


def inspect(dump: Dump, source: PageSource, offset: int, context: int | None) -> list[Text]:
    """The data inspector's two lines for byte ``offset`` of the page: the byte's VA and the
    values starting there; then the u64 walked as a VA (in ``context``) and decoded as a leaf
    entry. Never raises for any bytes."""
    data = source.data
    if data is None or not len(data):
        return [Text("no data: no byte to inspect", style="dim"), Text("")]
    offset = max(0, min(offset, len(data) - 1))
    va = source.va + offset
    values = Text(f"{va:#x} +{offset:#05x} ", style="bold")
    for name, size in HEX_UNITS.items():
        if offset + size <= len(data):
            value = int.from_bytes(data[offset : offset + size], "little")
            values.append(f" {name} ", style="dim")
            values.append(f"{value:#0{2 + 2 * size}x}" + (f" ({value})" if size == 1 else ""))
    value = u64_at(source, offset)
    if value is None:
        return [values, Text("u64: fewer than 8 bytes left in the page", style="dim")]
    walk = dump.translate(value, context)
    meaning = Text("u64 as VA ", style="dim")
    if walk.mapped:
        state = ""
        if walk.page is not None:
            state = " dumped" if walk.page.dumped else f" not dumped ({walk.page.reason})"
        meaning.append(f"-> PA {walk.pa:#x}{state} (Enter follows)", style="bold")
    elif walk.stopped_level is not None:
        meaning.append(f"not mapped: stopped at L{walk.stopped_level}")
    else:
        meaning.append("not an address of this space")
    level = dump.geometry.levels[-1].level
    decoded = decode_entry(value, level, dump.geometry, fmt=dump.entry_format)
    meaning.append(f"; as L{level} entry: ", style="dim")
    meaning.append(describe_entry(decoded))
    return [values, meaning]
