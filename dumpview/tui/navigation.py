"""Navigation: where the inspector is (the tab shown, the pane with the keys, the place), and
every way it moves to another place.

Owns ``NavigatingScreen``, the main screen's base: the tab shown and the pane each tab gives the
keys to, the status line, and every jump: go to, Enter on an entry, a range, a finding, a
memory-map region or a line with an address, following a pointer from the page, search hits
and bookmarks. A jump records where it left from (``history``), so back and forward work over
all of them; ``y``/``Y`` copy the address under the cursor. The main screen (``main``) builds
the tabs and runs the background work.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual import on, work
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static

from dumpview.model import Dump
from dumpview.model.bookmarks import Bookmarks
from dumpview.model.check import Anomaly
from dumpview.model.contexts import context_numbers
from dumpview.model.levels import FoldRow, LevelTree, TableRef
from dumpview.model.location import parse_location
from dumpview.model.memmap import first_mapping
from dumpview.model.search import SearchResult, next_hit_index, parse_query, search
from dumpview.model.text import pa_text, parse_address
from dumpview.tui.bars import TabBar
from dumpview.tui.hexview import HexView, u64_at
from dumpview.tui.history import History, Location
from dumpview.tui.loading import os_error_text
from dumpview.tui.modals import (
    GOTO_EXAMPLE,
    BookmarksScreen,
    GotoScreen,
    NoteScreen,
    SearchScreen,
    open_modal,
)
from dumpview.tui.tables import TablesView
from dumpview.tui.tabs import AnomaliesView, MemoryMapView, RangesView, StatusMessage
from dumpview.tui.widgets import RowList

ADDRESS_RE = re.compile(r"0x([0-9a-fA-F_]{6,16})\b")
LISTS = {"memmap": "#memrows", "ranges": "#ranges-list", "crashlog": "#crash", "gpu": "#gpuinfo"}
LISTS["anomalies"] = "#anomaly-list"
FIRST_FOCUS = {"tables": "entries", **{tab: selector[1:] for tab, selector in LISTS.items()}}


class Tabs(ContentSwitcher):
    """The tabs' panes, one shown (``active``: its id)."""

    @property
    def active(self) -> str:
        return self.current or ""

    @active.setter
    def active(self, tab: str) -> None:
        self.current = tab


class NavigatingScreen(Screen):
    """Places and jumps over one open dump (the main screen composes the tabs)."""

    def __init__(self, dump: Dump, tree: LevelTree, bookmarks: Bookmarks | None = None) -> None:
        super().__init__()
        self.dump = dump
        self.levels = tree
        self.search_result: SearchResult | None = None
        self.search_len = 0
        self.search_last = ""
        self.hit_index: int | None = None
        self.history = History()
        self._tab_focus: dict[str, str] = {}  # tab: id of the widget focused there last
        # Read by the loader's thread worker (never here, on the UI thread).
        self.bookmarks = bookmarks if bookmarks is not None else Bookmarks(dump.path)

    # -- what the tests and the benchmark read --

    @property
    def tables(self) -> TablesView:
        return self.query_one(TablesView)

    @property
    def table(self) -> TableRef | None:
        return self.tables.table

    @property
    def rows(self):
        return self.tables.rows

    @property
    def page_va(self) -> int | None:
        return self.tables.page_va

    @property
    def unit(self) -> str:
        return self.tables.unit

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(Text(text), layout=False)

    @on(StatusMessage)
    def status_message(self, message: StatusMessage) -> None:
        self.status(message.text)

    @property
    def tab(self) -> str:
        return self.query_one(Tabs).active

    def show_tab(self, tab: str, focus: bool = True) -> None:
        """Show ``tab`` and, with ``focus``, put the keys on the pane last used there (its list
        at first) in the same frame (a jump focuses where it lands instead)."""
        self.query_one(Tabs).active = tab
        self.query_one(TabBar).show(tab)
        if focus:
            self._focus_tab(tab)

    def _focus_tab(self, tab: str) -> None:
        focused = self.focused
        pane = self.query_one(f"#{tab}")
        if focused is not None and pane in focused.ancestors:
            return  # already there
        wanted = self._tab_focus.get(tab) or FIRST_FOCUS.get(tab)
        found = self.query(f"#{wanted}") if wanted else None
        if found:
            found.first().focus(scroll_visible=False)

    def on_descendant_focus(self, event) -> None:
        if event.widget.id:
            self._tab_focus[self.tab] = event.widget.id
        self._mark_title(event.widget, True)

    def on_descendant_blur(self, event) -> None:
        self._mark_title(event.widget, False)

    @staticmethod
    def _mark_title(widget, focused: bool) -> None:
        """The title of the pane holding ``widget`` in the cursor's colour while it has the
        keys (one Static restyled, not the pane)."""
        for node in widget.ancestors:
            if node.has_class("pane"):
                for title in node.query_children(".title"):
                    title.set_class(focused, "-focused")
                return

    @on(TabBar.Picked)
    def tab_picked(self, event: TabBar.Picked) -> None:
        self.show_tab(event.tab)

    # -- places and history --

    def location(self) -> Location:
        """Where the screen is now (tab, table, cursor rows, page byte, focused pane)."""
        focused = self.focused.id if self.focused is not None else None
        tab = self.tab
        if tab == "tables":
            return self.tables.location(tab, focused)
        selector = LISTS.get(tab)
        row = self.query_one(selector, RowList).cursor if selector else 0
        return Location(tab, row=row, pane=focused)

    def restore(self, where: Location) -> None:
        self.show_tab(where.tab, focus=not where.pane)
        if where.tab == "tables":
            self.tables.restore(where)
        elif where.tab in LISTS:
            self.query_one(LISTS[where.tab], RowList).cursor = where.row
        if where.pane:
            found = self.query(f"#{where.pane}")
            if found:
                found.first().focus()

    def action_back(self) -> None:
        where = self.history.back(self.location())
        if where is None:
            self.status("back: no earlier place (every jump records one)")
            return
        self.restore(where)
        behind, ahead = self.history.depth
        self.status(f"back to {where.describe()} ({behind} behind, {ahead} ahead)")

    def action_forward(self) -> None:
        where = self.history.forward(self.location())
        if where is None:
            self.status("forward: nothing ahead (go back first)")
            return
        self.restore(where)
        behind, ahead = self.history.depth
        self.status(f"forward to {where.describe()} ({behind} behind, {ahead} ahead)")

    def jump(
        self, va: int, note: str | None = None, context: int | None = None, depth: int | None = None
    ) -> bool:
        """Go to ``va`` on the Tables tab, remembering where this left from; False (and the
        status says why) when ``va`` is outside the address space."""
        if context is None and self.tables.table is not None:
            context = self.tables.table.context
        if not self.levels.path_to(va, context):
            self.status(f"VA {va:#x}: {self.dump.translate(va, context).stopped_reason}")
            return False
        here = self.location()
        self.show_tab("tables", focus=False)
        walk = self.tables.goto(va, context, depth)
        self.history.record(here)
        if walk.mapped:
            state = ""
            if walk.page is not None:
                state = "dumped" if walk.page.dumped else f"not dumped ({walk.page.reason})"
            elif not walk.context_dumped:
                state = f"(context {context} not dumped: its tables only)"
            shown = pa_text(walk.pa, walk.pa_raw, self.dump.geometry.oas)
            self.status(note or f"VA {va:#x} -> {shown} {state}")
        else:
            self.status(
                note
                or f"VA {va:#x} is not mapped: the walk stopped at L{walk.stopped_level}: "
                f"{walk.stopped_reason}"
            )
        return True

    # -- go to --

    def action_goto(self) -> None:
        if self.tab == "ranges":
            label = "Go to the range holding a VA (0x… or decimal)"
            open_modal(self.app, GotoScreen(GOTO_EXAMPLE, label), self._ranges_goto)
            return
        example = GOTO_EXAMPLE
        if self.dump.segment_count:  # the first mapped page of this dump
            va, pa = int(self.dump.seg_va[0]), int(self.dump.seg_pa[0])
            example = f"{va:#x}  or  p:{pa:#x}"
        open_modal(self.app, GotoScreen(example), self._goto_text)

    def _ranges_goto(self, text: str | None) -> None:
        if text and text.strip():
            try:
                self.status(self.query_one(RangesView).goto_va(parse_address(text)))
            except ValueError as exc:
                self.status(f"go to: {exc}")

    def _goto_text(self, text: str | None) -> None:
        if not text:
            return
        try:
            where = parse_location(text)
            if where.physical:
                pa = where.address
                vas = self.dump.vas_for_pa(pa)
                if not vas:
                    self.status(f"PA {pa:#x} is not mapped by any PT_LOAD of the dump")
                    return
                aliases = f" ({len(vas)} aliases: {', '.join(f'{v:#x}' for v in vas[:4])})"
                self.jump(
                    vas[0], note=f"PA {pa:#x} at VA {vas[0]:#x}" + (aliases if len(vas) > 1 else "")
                )
                return
            if where.context is not None and where.context not in context_numbers(self.dump):
                self.status(f"go to: the dump has no context {where.context}")
                return
            self.jump(where.address, context=where.context)
        except ValueError as exc:
            self.status(f"go to: {exc}")

    # -- Enter in the panes --

    @on(RowList.Activated, "#entries")
    def entry_activated(self, event: RowList.Activated) -> None:
        tables = self.tables
        entry = tables.rows.row(event.row)
        if isinstance(entry, FoldRow):
            return
        child = tables.rows.child(entry.index)
        if child is not None and child.carried:
            self.history.record(self.location())
            tables.show_table(child)
            tables.reveal(child)
        elif tables.page_va is not None:
            self.query_one(HexView).focus()

    @on(RowList.Activated, "#page")
    def follow_pointer(self, event: RowList.Activated) -> None:
        view = self.query_one(HexView)
        page = view.page
        if page is None:
            return
        value = u64_at(page, view.byte_offset)
        at = f"u64 at VA {page.va + view.byte_offset:#x}"
        if value is None:
            self.status(f"{at}: fewer than 8 bytes left in the page")
            return
        context = self.tables.table.context
        walk = self.dump.translate(value, context)
        if not walk.mapped:
            why = walk.stopped_reason or "outside the address space"
            self.status(f"{at} is {value:#x}: not a mapped VA ({why})")
            return
        self.jump(value, note=f"followed {at}: {value:#x} -> PA {walk.pa:#x}", context=context)

    @on(RowList.Activated, "#ranges-list")
    def range_activated(self, event: RowList.Activated) -> None:
        view = self.query_one(RangesView)
        index = view.range_index(event.row)
        if index is not None:
            self.jump(int(view.table.va_start[index]), context=self.levels.dumped_context)

    @on(RowList.Activated, "#anomaly-list")
    def anomaly_activated(self, event: RowList.Activated) -> None:
        view = self.query_one(AnomaliesView)
        anomaly = view.anomaly_at(event.row)
        if anomaly is None:
            view.toggle(event.row)
            return
        if anomaly.va is None:
            self.status(f"{anomaly.kind}: no VA to go to: {anomaly.message}")
            return
        self.jump(
            anomaly.va,
            note=f"{anomaly.kind}: {anomaly.message}",
            context=self.levels.dumped_context if anomaly.context is None else anomaly.context,
            depth=self._depth_of(anomaly),
        )

    def _depth_of(self, anomaly: Anomaly) -> int | None:
        """The level whose entries span the finding's VA run (a table entry or table finding
        goes to that entry), else None (the deepest table: a page)."""
        span = (anomaly.va_end or 0) - (anomaly.va or 0)
        if anomaly.pages or span <= self.dump.page_size_bytes:
            return None
        for depth, level in enumerate(self.dump.geometry.levels):
            if level.entry_span_bytes == span:
                return depth
        return None

    @on(RowList.Activated, "#memrows")
    def region_activated(self, event: RowList.Activated) -> None:
        region = self.query_one(MemoryMapView).region_at(event.row)
        if region is None:
            self.address_line(event.rowlist, event.row)
            return
        found = first_mapping(self.dump, region.base, region.end)
        what = f"{region.label} {region.name!r} ({region.base:#x}..{region.end:#x})"
        if found is None:
            self.status(f"{what}: no page of the dump maps it")
            return
        pa, va = found
        self.jump(va, note=f"{what}: first mapped PA {pa:#x} at VA {va:#x}")

    @on(RowList.Activated, "#crash, #gpuinfo")
    def address_line_activated(self, event: RowList.Activated) -> None:
        self.address_line(event.rowlist, event.row)

    def address_line(self, rowlist: RowList, row: int) -> None:
        text = "".join(piece for piece, _ in rowlist.source.row(row))
        for match in ADDRESS_RE.finditer(text):
            va = int(match.group(1).replace("_", ""), 16)
            if self.dump.geometry.in_space(va) or self.dump.segment_at(va) is not None:
                self.jump(va, context=self.levels.dumped_context)
                return
        shown = text.strip()
        shown = shown if len(shown) <= 40 else shown[:39] + "…"
        self.status(f"line {row + 1} ({shown!r}): no VA on this line to go to")

    # -- search --

    def action_search(self) -> None:
        open_modal(self.app, SearchScreen(self.search_last), self._search_text)

    def _search_text(self, text: str | None) -> None:
        if not text or not text.strip():
            return
        self.search_last = text.strip()
        try:
            kind, pattern = parse_query(text)
        except ValueError as exc:
            self.status(f"search: {exc}")
            return
        self.status(f"searching for {kind} {pattern.hex(' ') if kind != 'string' else text!r}…")
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
        self.hit_index = next_hit_index(result.hits, self.page_va or 0, forward=True)
        self._show_hit(summary)

    def _show_hit(self, summary: str = "") -> None:
        hit = self.search_result.hits[self.hit_index]
        self.tables.highlight = (hit.va, self.search_len)
        self.jump(hit.va, context=self.levels.dumped_context)
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
        step = self.hit_index + (1 if forward else -1)
        self.hit_index = step % n
        wrapped = ""
        if step >= n:
            wrapped = "wrapped past the last hit to the first"
        elif step < 0:
            wrapped = "wrapped past the first hit to the last"
        self._show_hit(wrapped)

    def action_next_hit(self) -> None:
        self._step_hit(True)

    def action_previous_hit(self) -> None:
        self._step_hit(False)

    # -- addresses under the cursor: copy, bookmark --

    def selected_address(self) -> tuple[int, int | None, str] | None:
        """(VA, PA or None, label) of what the cursor is on, in any tab."""
        focused = self.focused.id if self.focused is not None else None
        tab = self.tab
        if tab == "tables":
            return self.tables.selected_address(focused)
        if tab == "ranges":
            view = self.query_one(RangesView)
            index = view.range_index(self.query_one("#ranges-list", RowList).cursor)
            if index is None:
                return None
            r = view.table
            return int(r.va_start[index]), int(r.pa_start[index]), f"range {index + 1}"
        if tab == "anomalies":
            view = self.query_one(AnomaliesView)
            a = view.anomaly_at(self.query_one("#anomaly-list", RowList).cursor)
            return None if a is None or a.va is None else (a.va, a.pa, a.kind)
        selector = LISTS.get(tab)
        if selector is None:
            return None
        rowlist = self.query_one(selector, RowList)
        if not len(rowlist.source):
            return None
        text = "".join(piece for piece, _ in rowlist.source.row(rowlist.cursor))
        match = ADDRESS_RE.search(text)
        if match is None:
            return None
        value = int(match.group(1).replace("_", ""), 16)
        return value, None, f"line {rowlist.cursor + 1}"

    def _copy(self, physical: bool) -> None:
        selected = self.selected_address()
        name = "PA" if physical else "VA"
        if selected is None or (physical and selected[1] is None):
            self.status(f"copy: no {name} under the cursor")
            return
        va, pa, label = selected
        value = pa if physical else va
        self.app.copy_to_clipboard(f"{value:#x}")
        self.status(f"copied {name} {value:#x} ({label}) to the clipboard")

    def action_copy_va(self) -> None:
        self._copy(False)

    def action_copy_pa(self) -> None:
        self._copy(True)

    def action_bookmark(self) -> None:
        selected = self.selected_address()
        if selected is None:
            self.status("bookmark: nothing with an address under the cursor")
            return
        va, _pa, label = selected
        existing = self.bookmarks.get(va)
        note = existing.note if existing is not None else ""

        def noted(text: str | None) -> None:
            if text is None:
                self.status("bookmark: cancelled")
                return
            self.bookmarks.add(va, label, text.strip())
            try:
                self.bookmarks.save()
            except OSError as exc:
                self.status(f"bookmark kept for this session only: {os_error_text(exc)}")
                return
            self.status(f"bookmarked {va:#x}: {label}" + (f" — {text.strip()}" if text else ""))

        open_modal(self.app, NoteScreen(va, label, note), noted)

    def action_bookmarks(self) -> None:
        open_modal(self.app, BookmarksScreen(self.bookmarks), self._bookmark_chosen)

    def _bookmark_chosen(self, va: int | None) -> None:
        if va is not None:
            bookmark = self.bookmarks.get(va)
            note = bookmark.note if bookmark is not None else ""
            if self.jump(va) and note:
                self.status(f"bookmark {va:#x}: {note}")
