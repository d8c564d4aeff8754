"""Line-API widgets over lazy sources: one row list with a cursor, and the views built on it.

Owns how rows reach the screen. ``RowList`` is a ``ScrollView`` that renders only the visible
rows (``render_line``), asking its ``RowSource`` for each one, so a table of 2048 entries, a
16 KiB page or a million ranges cost the same per frame. Rows are lists of (text, style name)
pieces; style names are the widget's component classes, so colours come from the stylesheet.
A row list may have a header row that stays on top and scrolls sideways with its columns.

A row cut at the right edge ends in an ellipsis.

The cursor row is unmistakable where the keys go (Textual's block cursor: solid, bold) and
dimmer in a list without focus, like every other list of the app (tree, option lists).

Nothing here reads files or the dump directly: sources wrap the model's objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Piece = tuple[str, str | None]  # (text, component class or None)
Row = list[Piece]

KIND_CLASSES = (
    "kind--empty",
    "kind--table",
    "kind--invalid",
    "kind--device",
    "kind--not-dumped",
    "kind--firmware",
    "kind--gpu",
    "kind--privileged",
    "kind--unprivileged",
)


FOCUSED = {"rowlist--cursor": "rowlist--cursor-focused", "rowlist--byte": "rowlist--byte-focused"}


class RowSource:
    """What a RowList shows: a row count and one row at a time (override both)."""

    def __len__(self) -> int:
        return 0

    def row(self, index: int) -> Row:
        raise IndexError(index)

    def width(self) -> int:
        """Widest row in cells (for horizontal scrolling)."""
        return 80


@dataclass
class LinesSource(RowSource):
    """A fixed list of rows (crash log, memory map, help text), ``cells`` wide (default: its
    widest row, the sum of its pieces)."""

    rows: Sequence[Row]
    cells: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, index: int) -> Row:
        return list(self.rows[index])

    def width(self) -> int:
        if self.cells is None:
            self.cells = max((sum(len(text) for text, _ in row) for row in self.rows), default=0)
        return self.cells


def plain_rows(lines: Sequence[str], style: str | None = None) -> LinesSource:
    """A LinesSource of plain text lines."""
    return LinesSource([[(line, style)] for line in lines])


class RowMessage(Message):
    """Something happened on ``row`` of ``rowlist`` (``control`` for ``@on`` selectors)."""

    def __init__(self, rowlist: RowList, row: int) -> None:
        super().__init__()
        self.rowlist = rowlist
        self.row = row

    @property
    def control(self) -> RowList:
        return self.rowlist


class RowList(ScrollView, can_focus=True):
    """A scrollable list of rows with a cursor, rendered line by line from a RowSource."""

    COMPONENT_CLASSES = {
        "rowlist--cursor",
        "rowlist--cursor-focused",
        "rowlist--header",
        "rowlist--mark",
        "rowlist--byte",
        "rowlist--byte-focused",
        "rowlist--dim",
        "rowlist--title",
        "rowlist--hit",
        "rowlist--warn",
        *KIND_CLASSES,
    }
    DEFAULT_CSS = """
    RowList {
        background: $surface;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    RowList > .rowlist--cursor {
        background: $block-cursor-blurred-background;
        text-style: $block-cursor-blurred-text-style;
    }
    RowList > .rowlist--cursor-focused {
        color: $block-cursor-foreground;
        background: $block-cursor-background;
        text-style: $block-cursor-text-style;
    }
    RowList > .rowlist--header { color: $text-muted; background: $surface-lighten-1; }
    RowList > .rowlist--mark { color: $error; text-style: bold; }
    RowList > .rowlist--byte { background: $block-cursor-blurred-background; }
    RowList > .rowlist--byte-focused {
        color: $block-cursor-foreground;
        background: $block-cursor-background;
        text-style: $block-cursor-text-style;
    }
    RowList > .rowlist--dim { color: $text-muted; }
    RowList > .rowlist--title { text-style: bold; color: $primary; }
    RowList > .rowlist--hit { background: $warning 70%; color: $background; }
    RowList > .rowlist--warn { color: $warning; }
    RowList > .kind--empty { color: $text-disabled; }
    RowList > .kind--table { color: $secondary; }
    RowList > .kind--invalid { color: $error; text-style: bold; }
    RowList > .kind--device { color: magenta; }
    RowList > .kind--not-dumped { color: $error; }
    RowList > .kind--firmware { color: $warning; }
    RowList > .kind--gpu { color: $success; }
    RowList > .kind--privileged { color: $warning; }
    RowList > .kind--unprivileged { color: $success; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "Top", show=False),
        Binding("end", "jump(-1)", "Bottom", show=False),
        Binding("enter", "activate", "Open", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(RowMessage):
        """The cursor moved to ``row``."""

    class Activated(RowMessage):
        """Enter (or a double click) on ``row``."""

    def __init__(self, source: RowSource | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source: RowSource = source or RowSource()
        self.header: Row | None = None  # a row kept on top (column names)
        self._styles: dict[str | None, Style] = {}
        # Called synchronously when the cursor moves, for panes that must follow it in the
        # same frame (a Highlighted message is also posted, for everyone else).
        self.on_cursor: Callable[[int], None] | None = None
        # A scroll to the cursor asked for before the list had a size (a tab shown for the
        # first time): done on the first resize that gives it one (None: nothing waits).
        self._scroll_when_sized: bool | None = None

    @property
    def header_lines(self) -> int:
        return 0 if self.header is None else 1

    def set_header(self, header: Row | None) -> None:
        """Keep ``header`` on top of the rows (None: no header)."""
        if header != self.header:
            self.header = header
            self._set_virtual_size(self._content_size())
            self.refresh()

    def _content_size(self) -> Size:
        return Size(self.source.width(), len(self.source) + self.header_lines)

    def set_source(
        self, source: RowSource, cursor: int = 0, keep_x: bool = False, quiet: bool = False
    ) -> None:
        """Show ``source``, cursor on row ``cursor`` (clamped); ``keep_x`` keeps the sideways
        scroll (the same columns, other rows); ``quiet`` keeps the scroll and moves the
        cursor without telling anyone (the same rows, rearranged)."""
        self.source = source
        self._set_virtual_size(self._content_size())
        if quiet:
            self.set_reactive(RowList.cursor, self._clamp(cursor))
            self.refresh()
            return
        self.scroll_to(self.scroll_x if keep_x else 0, 0, animate=False, immediate=True)
        self.cursor = self._clamp(cursor)
        self.refresh()

    def _set_virtual_size(self, size: Size) -> None:
        """Resize the scrollable area without a layout of the whole screen (a key press would
        pay ~50 ms for it); scrollbars appearing or going still lay out, as they must."""
        if size != self.virtual_size:
            self.set_reactive(RowList.virtual_size, size)
            self._scroll_update(size)  # Textual's own path for a size change without layout

    def _clamp(self, row: int) -> int:
        return max(0, min(row, len(self.source) - 1))

    def on_resize(self) -> None:
        self._set_virtual_size(self._content_size())
        if self._scroll_when_sized is not None and self.size.height:
            center, self._scroll_when_sized = self._scroll_when_sized, None
            self.scroll_to_cursor(center)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def on_focus(self) -> None:
        self._styles.clear()  # the cursor's style depends on focus
        self.refresh()

    def on_blur(self) -> None:
        self._styles.clear()
        self.refresh()

    def _style(self, name: str | None) -> Style:
        """A component class's style; the cursor's and the byte cursor's are their focused
        classes' while the list has the keys (cached until the focus moves)."""
        style = self._styles.get(name)
        if style is None:
            if not name:
                style = Style()
            else:
                if self.has_focus:
                    name_now = FOCUSED.get(name, name)
                else:
                    name_now = name
                style = self.get_component_rich_style(name_now)
            self._styles[name] = style
        return style

    def watch_has_focus(self, _has_focus: bool) -> None:
        """Nothing to restyle: no rule of a list depends on ``:focus`` (the focused cursor is
        a component class of its own, picked when drawing: ``_style``). Textual's restyle of
        the list and its scrollbars on every focus move cost ~15 ms of a tab switch or Tab."""

    @property
    def _base_style(self) -> Style:
        style = self._styles.get("")  # the widget's own style, cached like the components
        if style is None:
            style = self._styles[""] = self.rich_style
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width  # not under the vertical scrollbar
        base = self._base_style
        if self.header is not None:
            if y == 0:
                style = base + self._style("rowlist--header")
                strip = Strip([Segment(text, style) for text, _ in self.header])
                return strip.crop_extend(scroll_x, scroll_x + width, style)
            y -= 1
        index = scroll_y + y
        if index >= len(self.source):
            return Strip.blank(width, base)
        if index == self.cursor and self.row_cursor:
            # The cursor's colours over each piece's (a post style: its background wins).
            base = base + self._style("rowlist--cursor")
            strip = Strip(
                [
                    Segment(text, base + self._style(name) + base)
                    for text, name in self.row_pieces(index)
                ]
            ).extend_cell_length(scroll_x + width, base)
        else:
            strip = Strip(
                [Segment(text, base + self._style(name)) for text, name in self.row_pieces(index)]
            )
        if strip.cell_length > scroll_x + width > scroll_x + 1:
            # Cut at the right edge: say so with an ellipsis in the last cell, in its style.
            body = strip.crop(scroll_x, scroll_x + width - 1)
            segments = list(body)
            style = segments[-1].style if segments else base
            return Strip([*segments, Segment("…", style)], width)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    row_cursor = True  # whether the cursor row is drawn as a whole (the page pane draws a byte)

    def row_pieces(self, index: int) -> Row:
        """The pieces of row ``index`` as drawn (subclasses add their own marks)."""
        return self.source.row(index)

    def refresh_row(self, index: int) -> None:
        """Redraw row ``index`` (a row of the source, below the header)."""
        self.refresh_line(index + self.header_lines)

    def watch_cursor(self, old: int, new: int) -> None:
        before = self.scroll_offset.y
        self.scroll_to_cursor()
        if self.scroll_offset.y == before:
            self.refresh_row(old)  # only the two rows that changed look
            self.refresh_row(new)
        else:
            self.refresh()
        if len(self.source):
            if self.on_cursor is not None:
                self.on_cursor(new)  # same frame as the cursor itself
            self.post_message(self.Highlighted(self, new))

    def scroll_to_cursor(self, center: bool = False) -> None:
        """Scroll so the cursor's row shows (in the middle with ``center``); before the list is
        laid out (no height yet), on the resize that lays it out (``on_resize``)."""
        if not self.size.height:
            self._scroll_when_sized = center
            return
        self._scroll_when_sized = None
        region = Region(self.scroll_x, self.cursor + self.header_lines, 1, 1)
        self.scroll_to_region(
            region,
            spacing=Spacing(self.header_lines, 0, 0, 0),
            animate=False,
            center=center,
            immediate=True,
            force=True,
            x_axis=False,
        )

    def validate_cursor(self, value: int) -> int:
        return self._clamp(value)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.size.height - 1 - self.header_lines)

    def action_jump(self, row: int) -> None:
        self.cursor = row if row >= 0 else len(self.source) - 1

    def action_activate(self) -> None:
        if len(self.source):
            self.post_message(self.Activated(self, self.cursor))

    def on_click(self, event: events.Click) -> None:
        if event.y < self.header_lines:
            return
        row = int(self.scroll_offset.y) + event.y - self.header_lines
        if 0 <= row < len(self.source):
            self.cursor = row
            if event.chain >= 2:
                self.action_activate()  # what Enter does (a subclass may say otherwise)


class CallbackSource(RowSource):
    """Rows produced on demand by a function (the lazy sources: entries, ranges, hex)."""

    def __init__(self, count: int, make_row: Callable[[int], Row], cells: int) -> None:
        self.count = count
        self.make_row = make_row
        self.cells = cells

    def __len__(self) -> int:
        return self.count

    def row(self, index: int) -> Row:
        return self.make_row(index)

    def width(self) -> int:
        return self.cells
