"""The main inspector screen: tabs over one open dump and the keys that move through it.

Owns the views (level tree, entries, entry bits, page contents, memory map, ranges, crash log,
GPU info) and what the keys do in them (see ``dumpview.tui.keys``). Reads the model only; the
one file it writes is the bookmarks sidecar, through ``dumpview.model.bookmarks``.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane, Tree

from dumpview.model import Dump
from dumpview.model.bookmarks import Bookmarks
from dumpview.model.crash import crashlog_sections
from dumpview.model.kinds import kinds_of
from dumpview.model.levels import FoldRow, LevelTree, TableRef
from dumpview.model.memmap import memory_map, minimap, used_extent
from dumpview.model.ranges import RangeTable, human_size, ranges
from dumpview.model.search import SearchResult, next_hit_index, parse_pattern, search
from dumpview.model.text import HEX_UNITS, info_dict, parse_address
from dumpview.tui import sources
from dumpview.tui.keys import KEYS
from dumpview.tui.modals import GOTO_EXAMPLE, BookmarksScreen, GotoScreen, HelpScreen, SearchScreen
from dumpview.tui.views import (
    MINIMAP_GLYPHS,
    MINIMAP_STYLES,
    append_bar,
    approx_size,
    info_lines,
    region_class,
    sections_source,
)
from dumpview.tui.widgets import LinesSource, Row, RowList, plain_rows

ADDRESS_RE = re.compile(r"0x([0-9a-fA-F_]{6,16})\b")


class MainScreen(Screen):
    """Tabs over one open dump; the Tables tab is where a person spends their time."""

    BINDINGS = [
        Binding(key.binding, key.action, key.title, show=key.shown in "g/bBu?q") for key in KEYS
    ]

    def __init__(self, dump: Dump, tree: LevelTree) -> None:
        super().__init__()
        self.dump = dump
        self.levels = tree
        self.table: TableRef | None = None
        self.rows = None
        self.unit = "u8"
        self.page_va: int | None = None
        self.highlight: tuple[int, int] | None = None
        self.page_target: int | None = None  # a VA go-to asked for: the page cursor's row
        self.search_result: SearchResult | None = None
        self.search_len = 0
        self.search_last: tuple[str, str] = ("hex", "")
        self.hit_index: int | None = None
        self.range_table: RangeTable | None = None
        self.bookmarks = Bookmarks.load(dump.path)
        self._tree_nodes: dict[TableRef, object] = {}
        self._loaded: set[TableRef] = set()

    # -- layout --

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="tables", id="tabs"):
            with TabPane("Tables", id="tables"), Horizontal():
                yield Tree("address spaces", id="levels")
                with Vertical(id="right"):
                    yield Static(id="entries-title", classes="title")
                    yield Static(
                        sources.entry_header(self.dump.entry_format.view_short), classes="header"
                    )
                    yield RowList(id="entries")
                    with Horizontal(id="lower"):
                        with Vertical(id="details-box"):
                            yield Static("entry", id="details-title", classes="title")
                            yield RowList(id="details")
                        with Vertical(id="page-box"):
                            yield Static("page", id="page-title", classes="title")
                            yield RowList(id="page")
            with TabPane("Memory map", id="memmap"), Vertical():
                yield Static(id="minimap")
                yield RowList(id="memrows")
            with TabPane("Ranges", id="ranges"), Vertical():
                yield Static("coalescing…", id="ranges-title", classes="title")
                yield Static(
                    sources.range_header(self.dump.entry_format.view_short), classes="header"
                )
                yield RowList(id="ranges-list")
            with TabPane("Crash log", id="crashlog"):
                yield RowList(id="crash")
            with TabPane("GPU info", id="gpu"):
                yield RowList(id="gpuinfo")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        name = Path(self.dump.path).name
        self.app.title = f"dumpview {name}"
        self.app.sub_title = self.dump.layout + (" + extension" if self.dump.extension else "")
        tree = self.query_one("#levels", Tree)
        tree.show_root = False
        tree.guide_depth = 2
        for root in self.levels.roots:
            dumped = " (dumped)" if self.levels.is_dumped_context(root.context) else ""
            label = f"ctx {root.context} L{root.level}{dumped}"
            node = tree.root.add(label, data=root, allow_expand=root.carried)
            self._tree_nodes[root] = node
        tree.root.expand()
        self.query_one("#entries", RowList).on_cursor = self.show_entry
        first = self.levels.roots[0]
        self._load_children(first)
        self._tree_nodes[first].expand()
        self.show_table(first)
        self.query_one("#entries", RowList).focus()
        self._fill_static_tabs()
        warnings = list(self.dump.warnings)
        index = self.dump.tables_index
        if index is not None:
            warnings += index.warnings
        if self.bookmarks.warning:
            warnings.append(self.bookmarks.warning)
        total, dumped = self.dump.page_totals
        self.status(
            f"{self.dump.segment_count:,} PT_LOAD, {total:,} pages ({total - dumped:,} not "
            f"dumped)" + (f"; {len(warnings)} warning(s): {warnings[0]}" if warnings else "")
        )
        self.call_after_refresh(self.app.first_screen_drawn)
        self._coalesce()

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(Text(text), layout=False)

    # -- tree --

    def _load_children(self, table: TableRef) -> None:
        if table in self._loaded:
            return
        self._loaded.add(table)
        node = self._tree_nodes[table]
        for index, child in self.levels.children(table):
            label = f"[{index}] {child.va_start:#x}" + ("" if child.carried else " missing")
            has_kids = child.carried and child.depth + 1 < len(self.dump.geometry.levels)
            self._tree_nodes[child] = node.add(label, data=child, allow_expand=has_kids)

    @on(Tree.NodeExpanded)
    def node_expanded(self, event: Tree.NodeExpanded) -> None:
        if event.node.data is not None:
            self._load_children(event.node.data)

    @on(Tree.NodeHighlighted)
    def node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        table = event.node.data
        if table is not None and table != self.table:
            self.show_table(table)

    def _reveal(self, table: TableRef) -> None:
        """Expand the tree down to ``table`` and put the tree cursor on it."""
        path = []
        for t, _ in self.levels.path_to(table.va_start, table.context):
            path.append(t)
            if t == table:
                break
        for t in path[:-1]:
            self._load_children(t)
            self._tree_nodes[t].expand()
        node = self._tree_nodes.get(table)
        if node is not None:
            tree = self.query_one("#levels", Tree)
            _ = tree.last_line  # nodes just added have no line yet: this numbers them
            tree.move_cursor(node)
            tree.scroll_to_node(node, animate=False)

    # -- entries, details, page --

    def show_table(self, table: TableRef, index: int | None = None) -> None:
        self.table = table
        self.rows = self.levels.rows(table)
        span = human_size(table.va_size_bytes)
        where = (
            "rebuilt from the PT_LOADs (driver dump)" if table.pa is None else f"PA {table.pa:#x}"
        )
        if not table.carried:
            where += ": not carried in the dump"
        self.query_one("#entries-title", Static).update(
            f"ctx {table.context}  L{table.level} table {where}  VA {table.va_start:#x} + {span}"
            f"  ({len(self.rows)} rows)",
            layout=False,
        )
        entries = self.query_one("#entries", RowList)
        row = self.rows.row_of_index(index) if index is not None else self._first_entry_row()
        entries.set_source(sources.entries_source(self.rows), row)
        entries.scroll_to_cursor(center=True)

    def _first_entry_row(self) -> int:
        for i in range(len(self.rows)):
            if not isinstance(self.rows.row(i), FoldRow):
                return i
        return 0

    def show_entry(self, row: int) -> None:
        wanted, self.page_target = self.page_target, None
        if wanted is None and self.highlight is not None:
            wanted = self.highlight[0]
        rows = self.rows
        entry = rows.row(row)
        table = self.table
        if isinstance(entry, FoldRow):
            va = entry.va
            decoded = None
        else:
            va = entry.va
            decoded = rows.decoded(entry.index)
        walk = self.dump.translate(va, table.context)
        self.query_one("#details", RowList).set_source(
            sources.details_source(table, entry, decoded, walk)
        )
        page = self.query_one("#page", RowList)
        title = self.query_one("#page-title", Static)
        is_page = (
            not isinstance(entry, FoldRow) and rows.is_leaf_level and entry.type_name == "page"
        )
        is_block = not isinstance(entry, FoldRow) and entry.type_name == "block"
        if not (is_page or is_block) or entry.pa is None:
            self.page_va = None
            title.update("page", layout=False)
            page.set_source(
                plain_rows(["select a leaf (page) entry to see its contents"], "rowlist--dim")
            )
            return
        pa = entry.pa
        where = ""
        if is_block:
            # One page of the block: the one holding the VA asked for, else the first.
            size = self.dump.page_size_bytes
            inside = wanted is not None and va <= wanted < entry.va_end
            offset = (wanted - va) & ~(size - 1) if inside else 0
            va, pa = va + offset, pa + offset
            where = f"  (L{table.level} block of {human_size(entry.span_bytes)})"
        self.page_va = va
        note = None
        if not self.levels.is_dumped_context(table.context):
            note = (
                f"context {table.context} is not dumped: the walker dumps context "
                f"{self.levels.dumped_context}"
            )
        title.update(Text(f"page {va:#x} -> PA {pa:#x}  [{self.unit}]{where}"), layout=False)
        source = sources.PageSource(self.dump, va, pa, self.unit, self.highlight, note)
        target = 0
        if wanted is not None and va <= wanted < va + self.dump.page_size_bytes:
            target = source.row_of_va(wanted)
        page.set_source(source, target)
        page.scroll_to_cursor(center=True)

    @on(RowList.Activated, "#entries")
    def entry_activated(self, event: RowList.Activated) -> None:
        entry = self.rows.row(event.row)
        if isinstance(entry, FoldRow):
            return
        child = self.rows.child(entry.index)
        if child is not None and child.carried:
            self.show_table(child)
            self._reveal(child)
        elif self.page_va is not None:
            self.query_one("#page", RowList).focus()

    # -- go to --

    def action_goto(self) -> None:
        example = GOTO_EXAMPLE
        if self.dump.segment_count:  # the first mapped page of this dump
            va, pa = int(self.dump.seg_va[0]), int(self.dump.seg_pa[0])
            example = f"{va:#x}  or  p:{pa:#x}"
        self.app.push_screen(GotoScreen(example), self._goto_text)

    def _goto_text(self, text: str | None) -> None:
        if not text:
            return
        text = text.strip()
        try:
            if text.lower().startswith("p:"):
                pa = parse_address(text[2:])
                vas = self.dump.vas_for_pa(pa)
                if not vas:
                    self.status(f"PA {pa:#x} is not mapped by any PT_LOAD of the dump")
                    return
                aliases = f" ({len(vas)} aliases: {', '.join(f'{v:#x}' for v in vas[:4])})"
                self.goto(
                    vas[0], note=f"PA {pa:#x} at VA {vas[0]:#x}" + (aliases if len(vas) > 1 else "")
                )
                return
            self.goto(parse_address(text))
        except ValueError as exc:
            self.status(f"go to: {exc}")

    def goto(self, va: int, note: str | None = None, context: int | None = None) -> None:
        """Select the deepest table covering ``va``, its entry, walk and page."""
        if context is None:
            context = self.table.context if self.table is not None else None
        self.query_one("#tabs", TabbedContent).active = "tables"
        path = self.levels.path_to(va, context)
        walk = self.dump.translate(va, context)
        if not path:
            self.status(f"VA {va:#x}: {walk.stopped_reason}")
            return
        table, index = path[-1]
        # show_table moves the entries cursor; its Highlighted message then rebuilds the page
        # view, which puts its cursor on this VA's row
        self.page_target = va if walk.mapped else None
        self.show_table(table, index)
        self._reveal(table)
        self.query_one("#entries", RowList).focus()
        if walk.mapped:
            state = ""
            if walk.page is not None:
                state = "dumped" if walk.page.dumped else f"not dumped ({walk.page.reason})"
            self.status(note or f"VA {va:#x} -> PA {walk.pa:#x} {state}")
        else:
            self.status(
                f"VA {va:#x} is not mapped: the walk stopped at L{walk.stopped_level}: "
                f"{walk.stopped_reason}"
            )

    # -- search --

    def action_search(self) -> None:
        kind, text = self.search_last
        self.app.push_screen(SearchScreen(kind, text), self._search_text)

    def _search_text(self, answer: tuple[str, str] | None) -> None:
        if not answer:
            return
        kind, text = answer
        self.search_last = (kind, text)
        try:
            pattern = parse_pattern(text, kind)
        except ValueError as exc:
            self.status(f"search: {exc}")
            return
        self.status(f"searching for {kind} {text!r}…")
        self._run_search(pattern)

    @work(thread=True, exclusive=True, group="search")
    def _run_search(self, pattern: bytes) -> None:
        result = search(self.dump, pattern)
        self.app.call_from_thread(self._search_done, pattern, result)

    def _search_done(self, pattern: bytes, result: SearchResult) -> None:
        self.search_result = result
        self.search_len = len(pattern)
        more = " (first hits only: limit reached)" if result.truncated else ""
        summary = (
            f"{len(result.hits):,} hit(s){more} in {result.pages_searched:,} dumped pages; "
            f"{result.holes_skipped:,} pages without data skipped"
        )
        if not result.hits:
            self.hit_index = None
            self.status(f"search: no hits; {summary}")
            return
        start = self.page_va or 0
        self.hit_index = next_hit_index(result.hits, start, forward=True)
        self._show_hit(summary)

    def _show_hit(self, summary: str = "") -> None:
        hit = self.search_result.hits[self.hit_index]
        self.highlight = (hit.va, self.search_len)
        self.goto(hit.va, note=None, context=self.levels.dumped_context)
        self.status(
            f"hit {self.hit_index + 1}/{len(self.search_result.hits)} at VA {hit.va:#x} "
            f"(PA {hit.pa:#x})" + (f"; {summary}" if summary else "")
        )

    def _step_hit(self, forward: bool) -> None:
        result = self.search_result
        if result is None or not result.hits:
            self.status("no search hits: press / to search")
            return
        n = len(result.hits)
        self.hit_index = (self.hit_index + (1 if forward else -1)) % n
        self._show_hit()

    def action_next_hit(self) -> None:
        self._step_hit(True)

    def action_previous_hit(self) -> None:
        self._step_hit(False)

    # -- bookmarks --

    def _selected_va(self) -> tuple[int, str] | None:
        if self.query_one("#page", RowList).has_focus and self.page_va is not None:
            page = self.query_one("#page", RowList)
            va = self.page_va + page.cursor * sources.HEX_ROW_BYTES
            return va, f"page {self.page_va:#x} + {va - self.page_va:#x}"
        if self.rows is None:
            return None
        entry = self.rows.row(self.query_one("#entries", RowList).cursor)
        if isinstance(entry, FoldRow):
            return entry.va, f"L{self.table.level} empty run"
        return entry.va, f"L{self.table.level}[{entry.index}] {entry.kind} {entry.state}"

    def action_bookmark(self) -> None:
        selected = self._selected_va()
        if selected is None:
            return
        va, label = selected
        self.bookmarks.add(va, label)
        try:
            self.bookmarks.save()
        except OSError as exc:
            self.status(f"bookmark kept for this session only: {exc}")
            return
        self.status(f"bookmarked {va:#x}: {label}")

    def action_bookmarks(self) -> None:
        self.app.push_screen(BookmarksScreen(self.bookmarks), self._bookmark_chosen)

    def _bookmark_chosen(self, va: int | None) -> None:
        if va is not None:
            self.goto(va)

    # -- views --

    def action_cycle_unit(self) -> None:
        units = list(HEX_UNITS)
        self.unit = units[(units.index(self.unit) + 1) % len(units)]
        if self.rows is not None:
            page = self.query_one("#page", RowList)
            cursor = page.cursor
            self.show_entry(self.query_one("#entries", RowList).cursor)
            page.cursor = cursor
        self.status(f"page contents as {self.unit}")

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(kinds_of(self.dump.entry_format)))

    def action_quit(self) -> None:
        self.app.exit()

    # -- other tabs --

    def _fill_static_tabs(self) -> None:
        dump = self.dump
        self.query_one("#crash", RowList).set_source(sections_source(crashlog_sections(dump)))
        info = info_dict(dump)
        lines = info_lines(info, dump)
        self.query_one("#gpuinfo", RowList).set_source(plain_rows(lines))
        rows, message = memory_map(dump)
        mem_lines: list[Row] = []
        if message:
            mem_lines.append([(message, "rowlist--warn")])
        mem_lines.append([("  base            end             size    region", "rowlist--dim")])
        for row in rows:
            mem_lines.append(
                [
                    (
                        f"  {row.base:#014x}  {row.base + row.size_bytes:#014x}  "
                        f"{human_size(row.size_bytes):>6}  {row.label:<20} {row.name:<24} "
                        f"{row.mapped_pages:,} mapped pages, {row.dumped_pages:,} dumped",
                        region_class(row),
                    )
                ]
            )
        self.query_one("#memrows", RowList).set_source(LinesSource(mem_lines, 120))
        self.call_after_refresh(self._draw_minimap)

    def _draw_minimap(self) -> None:
        widget = self.query_one("#minimap", Static)
        columns = max(20, (widget.size.width or 100) - 2)
        text = Text()
        whole = minimap(self.dump, columns)
        text.append(
            f"address space {whole.va_start:#x}..{whole.va_end:#x} "
            f"({approx_size(whole.va_end - whole.va_start)}, one column = "
            f"{approx_size((whole.va_end - whole.va_start) // columns)})\n"
        )
        append_bar(text, whole)
        lo, hi = used_extent(self.dump)
        if hi > lo:
            used = minimap(self.dump, columns, lo, hi)
            text.append(
                f"\nused extent {lo:#x}..{hi:#x} ({approx_size(hi - lo)}, one column = "
                f"{approx_size((hi - lo) // columns)})\n"
            )
            append_bar(text, used)
        text.append("\n")
        for name in kinds_of(self.dump.entry_format):
            text.append(f" {MINIMAP_GLYPHS[name]} ", style=MINIMAP_STYLES[name])
            text.append(f"{name} ({whole.counts.get(name, 0):,} pages)  ")
        widget.update(text)

    @work(thread=True, exclusive=True, group="ranges")
    def _coalesce(self) -> None:
        table = ranges(self.dump)
        self.app.call_from_thread(self._ranges_ready, table)

    def _ranges_ready(self, table: RangeTable) -> None:
        self.range_table = table
        self.query_one("#ranges-title", Static).update(
            f"{len(table):,} ranges (merged where VA, PA, attributes and dumped state all "
            "continue); Enter jumps to one"
        )
        self.query_one("#ranges-list", RowList).set_source(sources.ranges_source(table))

    @on(RowList.Activated, "#ranges-list")
    def range_activated(self, event: RowList.Activated) -> None:
        if self.range_table is not None:
            self.goto(int(self.range_table.va_start[event.row]), context=self.levels.dumped_context)

    @on(RowList.Activated, "#crash, #gpuinfo, #memrows")
    def address_line_activated(self, event: RowList.Activated) -> None:
        text = "".join(piece for piece, _ in event.rowlist.source.row(event.row))
        for match in ADDRESS_RE.finditer(text):
            va = int(match.group(1).replace("_", ""), 16)
            if self.dump.geometry.in_space(va) or self.dump.segment_at(va) is not None:
                self.goto(va, context=self.levels.dumped_context)
                return
        self.status("no VA on this line to go to")
