"""The Tables tab: level tree, entries, the selected entry bit by bit with its walk, and the page.

Owns what these four panes show and how they follow each other (the tree's cursor shows a
table, the entries' cursor its entry and page, the page's byte cursor the data inspector), the
layout for the width it gets (``fit``), and the places a go-to lands on (``goto``). Navigation
(history, the status line, which tab shows) belongs to the main screen, which calls in.

Layout, from 100 to 250 columns: the tree takes ``TREE_WIDTH`` (it can be hidden); the entry
bits and the page sit side by side when the page has room for 16 or 32 bytes a row beside
``DETAILS_MIN`` columns of entry bits, else one above the other with as many bytes a row (32,
16, 8) as the width allows; the entries keep the columns that fit (``sources.fit_columns``)
unless every column was asked for, and scroll sideways.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from dumpview.model import Dump
from dumpview.model.anomalies import AnomalyMarks, leaf_entries
from dumpview.model.levels import EntryRow, FoldRow, LevelTree, TableRef, TableRows
from dumpview.model.ranges import human_size
from dumpview.model.text import HEX_UNITS, pa_text
from dumpview.model.translate import Translation
from dumpview.tui import sources
from dumpview.tui.hexview import HexView, inspect
from dumpview.tui.history import Location
from dumpview.tui.tree import LevelsTree, TreeNode
from dumpview.tui.widgets import RowList, plain_rows

TREE_WIDTH = 32  # the level tree's columns; TREE_NARROW below NARROW_SCREEN columns
TREE_NARROW = 24
NARROW_SCREEN = 140
DETAILS_MIN = 40  # columns the entry bits keep beside the page


def context_label(dump: Dump, context: int, dumped_context: int) -> str:
    """A context's tree label, "ctx 1 tables ASID 1 owned": dumped or only its tables carried
    (first: a narrow tree cuts the end), the ASID (the UAT's is the TTB slot), the TTB owned by
    the driver or borrowed from the firmware when the dump says."""
    extension = dump.extension
    spaces = {s.context: s for s in extension.spaces} if extension is not None else {}
    space = spaces.get(context)
    owned = (
        ""
        if space is None or space.ttb_owned is None
        else (" owned" if space.ttb_owned else " borrowed")
    )
    state = "dumped" if context == dumped_context else "tables"
    return f"ctx {context} {state} ASID {context}{owned}"


@dataclass(frozen=True)
class Arrangement:
    """How the Tables tab lays out at some width."""

    side_by_side: bool  # entry bits beside the page (else above it)
    row_bytes: int  # bytes per page row
    entries_cells: int  # columns of the entries pane (without its scrollbar)


def tree_width(width: int) -> int:
    return TREE_WIDTH if width >= NARROW_SCREEN else TREE_NARROW


def arrange(width: int, tree_shown: bool) -> Arrangement:
    """The layout for a Tables tab ``width`` columns wide."""
    right = width - (tree_width(width) if tree_shown else 0)
    for row_bytes in (32, 16):
        if right >= sources.hex_width(row_bytes) + 1 + DETAILS_MIN:
            return Arrangement(True, row_bytes, right - 1)
    return Arrangement(False, sources.row_bytes_for(right - 1), right - 1)


class TablesView(Horizontal):
    """The four panes of the Tables tab over one dump."""

    def __init__(self, dump: Dump, levels: LevelTree, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dump = dump
        self.levels = levels
        self.table: TableRef | None = None
        self.rows: TableRows | None = None
        self.unit = "u8"
        self.page_va: int | None = None
        self.highlight: tuple[int, int] | None = None  # (VA, length) of a search hit
        self.page_target: int | None = None  # the exact VA a go-to asked for
        self.all_columns = False
        self.marks: AnomalyMarks | None = None
        self.arrangement = arrange(160, True)
        self._table_marks: tuple[TableRef, np.ndarray] | None = None
        self._tree_nodes: dict[TableRef, TreeNode] = {}
        self._loaded: set[TableRef] = set()

    def compose(self) -> ComposeResult:
        with Vertical(id="tree-box", classes="pane"):
            yield Static("levels", id="tree-title", classes="title")
            yield LevelsTree("address spaces", id="levels")
        with Vertical(id="right"):
            with Vertical(id="entries-box", classes="pane"):
                yield Static(id="entries-title", classes="title")
                yield RowList(id="entries")
            with Horizontal(id="lower"):
                with Vertical(id="details-box", classes="pane"):
                    yield Static("entry", id="details-title", classes="title")
                    yield RowList(id="details")
                with Vertical(id="page-box", classes="pane"):
                    yield Static("page", id="page-title", classes="title")
                    yield Static(id="inspector")
                    yield HexView(id="page")

    def on_mount(self) -> None:
        tree = self.query_one(LevelsTree)
        for root in self.levels.roots:
            label = context_label(self.dump, root.context, self.levels.dumped_context)
            self._tree_nodes[root] = tree.root.add(label, data=root, allow_expand=root.carried)
        tree.on_expand = self.node_expanding
        tree.on_node = self.node_highlighted
        self.query_one("#entries", RowList).on_cursor = self.show_entry
        self.query_one(HexView).on_byte = self.show_inspector
        first = self.levels.roots[0]
        self._tree_nodes[first].expand()
        self.show_table(first)

    # -- layout --

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        """Lay the panes out for the current width (and the tree shown or not). The entries
        and the page are redrawn only when their columns or bytes a row change, the cursors
        kept (a tab switch resizes the tab without changing either)."""
        if not self.size.width:
            return
        tree_shown = self.query_one("#tree-box").display
        arrangement = arrange(self.size.width, tree_shown)
        before, self.arrangement = self.arrangement, arrangement
        self.query_one("#tree-box").styles.width = tree_width(self.size.width)
        self.query_one("#right").set_class(not arrangement.side_by_side, "-stacked")
        page_box = self.query_one("#page-box")
        width = sources.hex_width(arrangement.row_bytes) + 1
        page_box.styles.width = width if arrangement.side_by_side else "1fr"
        if self.rows is None:
            return
        entries = self.query_one("#entries", RowList)
        columns = self._columns()
        shown = (
            entries.source.columns if isinstance(entries.source, sources.EntriesSource) else None
        )
        if columns != shown or before.row_bytes != arrangement.row_bytes:
            self._redraw_entries(keep_x=True)

    def _redraw_entries(self, keep_x: bool) -> None:
        """Draw the entries again (new columns, marks or page width), the cursor and the page's
        byte kept (``page_target``: the page is shown again on the same byte)."""
        self.page_target = self.query_one(HexView).cursor_va
        self._show_entries(self.query_one("#entries", RowList).cursor, keep_x=keep_x)

    def _columns(self) -> tuple[sources.Column, ...]:
        columns = sources.entry_columns(self.dump.entry_format.view_short)
        if self.all_columns:
            return columns
        return sources.fit_columns(columns, self.arrangement.entries_cells)

    def toggle_tree(self) -> bool:
        """Hide or show the level tree; True when it is shown now."""
        box = self.query_one("#tree-box")
        box.display = not box.display
        if not box.display and self.query_one("#levels").has_focus:
            self.query_one("#entries", RowList).focus()
        self.call_after_refresh(self.fit)
        return bool(box.display)

    def toggle_columns(self) -> bool:
        """Show every entry column (scrolling sideways) or those that fit; True for every."""
        self.all_columns = not self.all_columns
        entries = self.query_one("#entries", RowList)
        entries.styles.scrollbar_size_horizontal = 1 if self.all_columns else 0
        if self.rows is not None:
            self._redraw_entries(keep_x=False)
        return self.all_columns

    # -- the tree --

    def _load_children(self, table: TableRef) -> None:
        if table in self._loaded:
            return
        self._loaded.add(table)
        node = self._tree_nodes[table]
        for index, child in self.levels.children(table):
            label = f"[{index}] {child.va_start:#x}" + ("" if child.carried else " missing")
            has_kids = child.carried and child.depth + 1 < len(self.dump.geometry.levels)
            self._tree_nodes[child] = node.add(label, data=child, allow_expand=has_kids)

    def node_expanding(self, node: TreeNode) -> None:
        if node.data is not None:
            self._load_children(node.data)

    def node_highlighted(self, node: TreeNode) -> None:
        table = node.data
        if table is not None and table != self.table:
            self.show_table(table)

    def reveal(self, table: TableRef) -> None:
        """Expand the tree down to ``table`` and put the tree cursor on it."""
        path = []
        for t, _ in self.levels.path_to(table.va_start, table.context):
            path.append(t)
            if t == table:
                break
        for t in path[:-1]:
            self._load_children(t)
            node = self._tree_nodes[t]
            node.expand()
        node = self._tree_nodes.get(table)
        if node is not None:
            tree = self.query_one(LevelsTree)
            tree.move_cursor(node)
            tree.scroll_to_cursor()

    # -- entries, details, page --

    def show_table(self, table: TableRef, index: int | None = None, row: int | None = None) -> None:
        """Show ``table``, the cursor on entry ``index`` (or display row ``row``; else the
        first entry that is not empty)."""
        self.table = table
        self.rows = self.levels.rows(table)
        span = human_size(table.va_size_bytes)
        where = (
            "rebuilt from the PT_LOADs (driver dump)" if table.pa is None else f"PA {table.pa:#x}"
        )
        if not table.carried:
            where += ": not carried in the dump"
        self.query_one("#entries-title", Static).update(
            Text(
                f"ctx {table.context}  L{table.level} table {where}  VA {table.va_start:#x} + "
                f"{span}  ({len(self.rows)} rows)"
            ),
            layout=False,
        )
        if row is None:
            row = self.rows.row_of_index(index) if index is not None else self._first_entry_row()
        self._show_entries(row)
        self.query_one("#entries", RowList).scroll_to_cursor(center=True)

    def _show_entries(self, row: int, keep_x: bool = False) -> None:
        rows = self.rows
        source = sources.EntriesSource(rows, self._columns(), self._marks_of(rows))
        entries = self.query_one("#entries", RowList)
        entries.set_header(source.header())
        entries.set_source(source, row, keep_x=keep_x)

    def _marks_of(self, rows: TableRows) -> np.ndarray | None:
        if self.marks is None:
            return None
        cached = self._table_marks
        if cached is not None and cached[0] == rows.table:
            return cached[1]
        marks = self.marks.marks(
            rows.table.context,
            rows.entry_vas,
            rows.level_geometry.entry_span_bytes,
            leaf_entries(rows),
        )
        self._table_marks = (rows.table, marks)
        return marks

    def set_marks(self, marks: AnomalyMarks | None) -> None:
        """Mark the entries ``check``'s findings are about (the rows redraw)."""
        self.marks = marks
        self._table_marks = None
        if self.rows is not None:
            self._redraw_entries(keep_x=True)

    def _first_entry_row(self) -> int:
        for i in range(len(self.rows)):
            if not isinstance(self.rows.row(i), FoldRow):
                return i
        return 0

    def selected_entry(self) -> EntryRow | FoldRow | None:
        if self.rows is None:
            return None
        return self.rows.row(self.query_one("#entries", RowList).cursor)

    def show_entry(self, row: int) -> None:
        wanted, self.page_target = self.page_target, None
        if wanted is None and self.highlight is not None:
            wanted = self.highlight[0]
        rows = self.rows
        entry = rows.row(row)
        table = self.table
        va = entry.va
        decoded = None if isinstance(entry, FoldRow) else rows.decoded(entry.index)
        walk = self.dump.translate(va, table.context)
        findings = []
        if self.marks is not None and not isinstance(entry, FoldRow):
            leaf = entry.type_name == "block" or (rows.is_leaf_level and entry.type_name != "empty")
            findings = self.marks.about(table.context, va, entry.span_bytes, leaf)
        self.query_one("#details", RowList).set_source(
            sources.details_source(table, entry, decoded, walk, findings)
        )
        self._show_page(entry, wanted)

    def _show_page(self, entry: EntryRow | FoldRow, wanted: int | None) -> None:
        page = self.query_one(HexView)
        title = self.query_one("#page-title", Static)
        rows, table = self.rows, self.table
        is_page = (
            not isinstance(entry, FoldRow) and rows.is_leaf_level and entry.type_name == "page"
        )
        is_block = not isinstance(entry, FoldRow) and entry.type_name == "block"
        if not (is_page or is_block) or entry.pa is None:
            self.page_va = None
            title.update("page", layout=False)
            self.query_one("#inspector", Static).update(
                Text("no page selected: no bytes to inspect", style="dim"), layout=False
            )
            page.set_source(
                plain_rows(["select a leaf (page) entry to see its contents"], "rowlist--dim")
            )
            return
        va, pa, pa_raw = entry.va, entry.pa, entry.pa_raw
        where = ""
        if is_block:
            # One page of the block: the one holding the VA asked for, else the first.
            size = self.dump.page_size_bytes
            inside = wanted is not None and va <= wanted < entry.va_end
            offset = (wanted - va) & ~(size - 1) if inside else 0
            va, pa = va + offset, pa + offset
            pa_raw = None if pa_raw is None else pa_raw + offset
            where = f"  (L{table.level} block of {human_size(entry.span_bytes)})"
        self.page_va = va
        note = None
        if not self.levels.is_dumped_context(table.context):
            note = (
                f"context {table.context} is not dumped: the walker dumps context "
                f"{self.levels.dumped_context}"
            )
        shown = pa_text(pa, pa_raw, self.dump.geometry.oas)
        title.update(Text(f"page {va:#x} -> {shown}  [{self.unit}]{where}"), layout=False)
        source = sources.PageSource(
            self.dump, va, pa, self.unit, self.highlight, note, self.arrangement.row_bytes
        )
        offset = 0
        if wanted is not None and va <= wanted < va + self.dump.page_size_bytes:
            offset = wanted - va
        page.show_page(source, offset)  # a page with data: its cursor told the inspector
        page.scroll_to_cursor(center=True)
        if page.page is None:
            self.show_inspector(page.byte_offset)  # no bytes: say so

    def show_inspector(self, offset: int) -> None:
        view = self.query_one(HexView)
        inspector = self.query_one("#inspector", Static)
        page = view.page
        if page is None:
            why = "" if self.page_va is None else "this page has no data in the dump: "
            inspector.update(Text(f"{why}no bytes to inspect", style="dim"), layout=False)
            return
        lines = inspect(self.dump, page, offset, self.table.context)
        inspector.update(Text("\n").join(lines), layout=False)

    def cycle_unit(self) -> str:
        units = list(HEX_UNITS)
        self.unit = units[(units.index(self.unit) + 1) % len(units)]
        if self.rows is not None:
            wanted = self.query_one(HexView).cursor_va
            if wanted is None and self.highlight is not None:
                wanted = self.highlight[0]
            self._show_page(self.selected_entry(), wanted)  # only the page changes
        return self.unit

    # -- places --

    def goto(self, va: int, context: int | None = None, depth: int | None = None) -> Translation:
        """Select the deepest table covering ``va`` (or the one at ``depth``), its entry, walk
        and page, the page cursor on the byte ``va``. The walk is returned; nothing moves
        when ``va`` is outside the address space (the walk says why)."""
        if context is None:
            context = self.table.context if self.table is not None else None
        path = self.levels.path_to(va, context)
        walk = self.dump.translate(va, context)
        if not path:
            return walk
        table, index = path[-1] if depth is None else path[min(depth, len(path) - 1)]
        # show_table moves the entries cursor, which rebuilds the page view with its cursor on
        # this VA's byte
        self.page_target = va
        self.show_table(table, index)
        self.reveal(table)
        self.query_one("#entries", RowList).focus()
        return walk

    def location(self, tab: str, pane: str | None) -> Location:
        """Where the Tables tab is now."""
        row = self.query_one("#entries", RowList).cursor
        va = self.query_one(HexView).cursor_va
        context = self.table.context if self.table is not None else None
        return Location(tab, context, self.table, row, va, pane)

    def restore(self, where: Location) -> None:
        """Show ``where`` again (its table, entry row and page byte)."""
        if where.table is None:
            return
        self.page_target = where.va
        self.show_table(where.table, row=where.row)
        self.reveal(where.table)

    def selected_address(self, focused: str | None) -> tuple[int, int | None, str] | None:
        """(VA, PA or None, label) of what the cursor is on: the page's byte when the page
        has focus, else the selected entry."""
        view = self.query_one(HexView)
        if focused == "page" and view.cursor_va is not None:
            va = view.cursor_va
            pa = view.page.pa
            return (
                va,
                None if pa is None else pa + view.byte_offset,
                (f"page {view.page.va:#x} + {view.byte_offset:#x}"),
            )
        if focused == "levels" and self.table is not None:
            return self.table.va_start, self.table.pa, self.table.label
        entry = self.selected_entry()
        if entry is None:
            return None
        if isinstance(entry, FoldRow):
            return entry.va, None, f"L{self.table.level} empty run"
        return entry.va, entry.pa, f"L{self.table.level}[{entry.index}] {entry.kind} {entry.state}"
