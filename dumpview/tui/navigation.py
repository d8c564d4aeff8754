"""Navigation: where the inspector is (the tab shown, the pane with the keys, the place), and
every way it moves to another place.

Owns ``NavigatingScreen``, the main screen's base: the tab shown and the pane each tab gives the
keys to, the status line, and every jump: go to (VA, CTX:VA, p:PA), Enter on an overview line,
an entry, a range, a finding, a memory-map region or a line with an address, following a
pointer from the page, switching context (``x``). A jump records where it left from, context
included (``history``), so back and forward work over all of them. Search hits, copy and
bookmarks (``addresses``) jump through here too. The main screen (``main``) builds the tabs and
runs the background work.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual import on
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static

from dumpview.model import Dump
from dumpview.model.anomalies import entry_depth
from dumpview.model.bookmarks import Bookmarks
from dumpview.model.check import Anomaly
from dumpview.model.contexts import ContextInfo, context_numbers, contexts
from dumpview.model.levels import FoldRow, LevelTree, TableRef
from dumpview.model.location import Location as Place
from dumpview.model.location import parse_location
from dumpview.model.memmap import first_mapping
from dumpview.model.text import pa_text, parse_address
from dumpview.tui.bars import TabBar
from dumpview.tui.hexview import HexView, u64_at
from dumpview.tui.history import History, Location
from dumpview.tui.modals import GOTO_EXAMPLE, ContextsScreen, GotoScreen, open_modal, ttb_words
from dumpview.tui.overview import OverviewView
from dumpview.tui.tables import TablesView
from dumpview.tui.tabs import AnomaliesView, MemoryMapView, RangesView, StatusMessage
from dumpview.tui.widgets import RowList

ADDRESS_RE = re.compile(r"0x([0-9a-fA-F_]{6,16})\b")
LISTS = {"memmap": "#memrows", "ranges": "#ranges-list", "crashlog": "#crash", "gpu": "#gpuinfo"}
LISTS["anomalies"] = "#anomaly-list"
LISTS["overview"] = "#overview-list"
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
        self.history = History()
        self._contexts: list[ContextInfo] | None = None
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
            place = parse_location(text)
        except ValueError as exc:
            self.status(f"go to: {exc}")
            return
        self.go_to_place(place)

    def go_to_place(
        self, place: Place, note: str | None = None, context: int | None = None
    ) -> bool:
        """Go to a VA of the place's context (else ``context``, else the one browsed) or to a
        PA (its first VA, the aliases named); False (the status says why) when there is no
        such context or no VA maps the PA."""
        if place.physical:
            pa = place.address
            vas = self.dump.vas_for_pa(pa)
            if not vas:
                self.status(f"PA {pa:#x} is not mapped by any PT_LOAD of the dump")
                return False
            aliases = f" ({len(vas)} aliases: {', '.join(f'{v:#x}' for v in vas[:4])})"
            told = note or f"PA {pa:#x} at VA {vas[0]:#x}" + (aliases if len(vas) > 1 else "")
            return self.jump(vas[0], note=told, context=self.levels.dumped_context)
        if place.context is not None and place.context not in context_numbers(self.dump):
            self.status(f"go to: the dump has no context {place.context}")
            return False
        wanted = place.context if place.context is not None else context
        return self.jump(place.address, note=note, context=wanted)

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
        self.go_to_finding(anomaly)

    def go_to_finding(self, anomaly: Anomaly) -> bool:
        """The entry a finding is about (the table entry for a finding about a table entry,
        else the page), in the finding's context."""
        if anomaly.va is None:
            self.status(f"{anomaly.kind}: no VA to go to: {anomaly.message}")
            return False
        return self.jump(
            anomaly.va,
            note=f"{anomaly.kind}: {anomaly.message}",
            context=self.levels.dumped_context if anomaly.context is None else anomaly.context,
            depth=entry_depth(anomaly, self.dump.geometry),
        )

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

    def line_addresses(self, rowlist: RowList, row: int) -> tuple[int | None, int | None]:
        """(the first VA of the walked space or of a PT_LOAD on the line: what Enter goes to,
        the first address of any kind on it), each None when there is none."""
        text = "".join(piece for piece, _ in rowlist.source.row(row))
        first = None
        for match in ADDRESS_RE.finditer(text):
            value = int(match.group(1).replace("_", ""), 16)
            first = value if first is None else first
            if self.dump.geometry.in_space(value) or self.dump.segment_at(value) is not None:
                return value, first
        return None, first

    def address_line(self, rowlist: RowList, row: int) -> None:
        va, _first = self.line_addresses(rowlist, row)
        if va is not None:
            self.jump(va, context=self.levels.dumped_context)
            return
        text = "".join(piece for piece, _ in rowlist.source.row(row))
        shown = text.strip()
        shown = shown if len(shown) <= 40 else shown[:39] + "…"
        self.status(f"line {row + 1} ({shown!r}): no VA on this line to go to")

    @on(RowList.Activated, "#overview-list")
    def overview_activated(self, event: RowList.Activated) -> None:
        target = self.query_one(OverviewView).target_at(event.row)
        if target is None:
            self.address_line(event.rowlist, event.row)
            return
        if target.context is not None:
            self.browse_context(target.context.context)
        elif target.finding is not None:
            self.go_to_finding(target.finding)
        elif target.place is not None:
            self.go_to_place(target.place, context=self.levels.dumped_context)

    # -- contexts --

    def context_infos(self) -> list[ContextInfo]:
        """The dump's contexts (the triage report's once it is made, else counted now)."""
        view = self.query_one(OverviewView)
        if view.report is not None:
            return list(view.report.contexts)
        if self._contexts is None:
            self._contexts = contexts(self.dump)
        return self._contexts

    def action_contexts(self) -> None:
        current = self.table.context if self.table is not None else None
        open_modal(self.app, ContextsScreen(self.context_infos(), current), self._context_chosen)

    def _context_chosen(self, context: int | None) -> None:
        if context is not None:
            self.browse_context(context)

    def browse_context(self, context: int) -> bool:
        """Show ``context``'s top table on the Tables tab (a jump: back returns), the status
        saying what the context is."""
        root = next((r for r in self.levels.roots if r.context == context), None)
        if root is None:
            self.status(f"the dump has no context {context}")
            return False
        here = self.location()
        self.show_tab("tables", focus=False)
        self.tables.show_table(root)
        self.tables.reveal(root)
        self.query_one("#entries", RowList).focus()
        self.history.record(here)
        info = next((c for c in self.context_infos() if c.context == context), None)
        if info is None:
            self.status(f"context {context}")
            return True
        state = "dumped" if info.dumped else "tables only (its pages are not in the dump)"
        self.status(f"context {context}: ASID {info.asid}, {ttb_words(info)}, {state}")
        return True
