"""What the inspector does with addresses under the cursor and in the pages: search (one line,
hits marked in hex and ASCII, n/N stepping with the wrap announced), copy (``y`` the VA, ``Y``
the PA, through OSC 52) and bookmarks (the exact VA with a note; the list edits and deletes).

Owns ``AddressScreen``, the main screen's base above ``NavigatingScreen``: every move it makes
is a jump there (so back returns), and the one file it writes is the bookmarks sidecar,
through ``dumpview.model.bookmarks``.
"""

from __future__ import annotations

from textual import work

from dumpview.model.search import SearchResult, next_hit_index, parse_query, search
from dumpview.tui.loading import os_error_text
from dumpview.tui.modals import BookmarksScreen, NoteScreen, SearchScreen, open_modal
from dumpview.tui.navigation import LISTS, NavigatingScreen
from dumpview.tui.overview import OverviewView
from dumpview.tui.tabs import AnomaliesView, RangesView
from dumpview.tui.widgets import RowList


class AddressScreen(NavigatingScreen):
    """Search, copy and bookmarks over the places ``NavigatingScreen`` moves between."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.search_result: SearchResult | None = None
        self.search_len = 0
        self.search_last = ""
        self.hit_index: int | None = None

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
        if tab == "overview":
            target = self.query_one(OverviewView).target_at(
                self.query_one("#overview-list", RowList).cursor
            )
            if target is not None and target.finding is not None and target.finding.va is not None:
                return target.finding.va, target.finding.pa, target.finding.kind
            if target is not None and target.place is not None and not target.place.physical:
                return target.place.address, None, f"overview: {target.describe()}"
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
        va, first = self.line_addresses(rowlist, rowlist.cursor)  # Enter's VA, else the first
        value = va if va is not None else first
        return None if value is None else (value, None, f"line {rowlist.cursor + 1}")

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
