"""The tabs besides Tables: memory map (regions and minimap), ranges (filter, go to inside the
list) and anomalies (``check``'s findings grouped by kind, most severe first).

Each is a widget that owns what it shows and answers the main screen's questions about its
cursor (which region, range or finding it is on); jumping to a place is the main screen's.
Big lists stay lazy: the ranges tab of a 524K-range dump filters with numpy
(``model.ranges.RangeFilter``, built in a thread worker) and draws only the visible rows.
"""

from __future__ import annotations

import bisect

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from dumpview.model import Dump
from dumpview.model.anomalies import AnomalyGroup, grouped
from dumpview.model.check import Anomaly, CheckResult
from dumpview.model.kinds import kinds_of
from dumpview.model.memmap import MemoryRow, memory_map, minimap, used_extent
from dumpview.model.numbers import rounded_size
from dumpview.model.ranges import RangeFilter, RangeTable, human_size
from dumpview.tui import sources
from dumpview.tui.views import (
    MINIMAP_GLYPHS,
    MINIMAP_STYLES,
    anomaly_class,
    append_bar,
    region_class,
)
from dumpview.tui.widgets import LinesSource, Row, RowList, RowSource

FOLD_ABOVE = 100  # a kind with more findings than this starts folded


# ---- memory map ----------------------------------------------------------------------------------


MINIMAP_PADDING = 2  # the minimap's padding, in cells (app.tcss)


def minimap_text(dump: Dump, columns: int) -> Text:
    """The memory map tab's minimap, ``columns`` glyphs a bar: the whole walked space, the
    extent in use, then the legend with page counts. Touches no widget: the main screen's
    background worker makes it ahead, off the UI thread."""
    text = Text(no_wrap=True, overflow="ellipsis")
    whole = minimap(dump, columns)
    text.append(
        f"address space {whole.va_start:#x}..{whole.va_end:#x} "
        f"({rounded_size(whole.va_end - whole.va_start)}, one column = "
        f"{rounded_size((whole.va_end - whole.va_start) // columns)})\n"
    )
    append_bar(text, whole)
    if dump.segment_count:
        lo, hi = used_extent(dump)
        used = minimap(dump, columns, lo, hi)
        text.append(
            f"\nused extent {lo:#x}..{hi:#x} ({rounded_size(hi - lo)}, one column = "
            f"{rounded_size((hi - lo) // columns)})\n"
        )
        append_bar(text, used)
    text.append("\n")
    for name in kinds_of(dump.entry_format):
        text.append(f" {MINIMAP_GLYPHS[name]} ", style=MINIMAP_STYLES[name])
        text.append(f"{name} ({whole.counts.get(name, 0):,} pages)  ")
    return text


class MemoryMapView(Vertical):
    """The minimap of the VA space (as wide as the tab) over the memory-map regions."""

    def __init__(self, dump: Dump, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dump = dump
        self.regions: dict[int, MemoryRow] = {}  # list row -> region
        self._drawn_width = 0

    def compose(self) -> ComposeResult:
        yield Static(id="minimap")
        yield Static(
            "memory map: Enter on a region goes to its first mapping",
            classes="title",
            id="mem-title",
        )
        yield RowList(id="memrows")

    def on_mount(self) -> None:
        rows, message = memory_map(self.dump)
        lines: list[Row] = []
        if message:
            lines.append([(message, "rowlist--warn")])
        memrows = self.query_one("#memrows", RowList)
        memrows.set_header([("  base            end             size    region", None)])
        for row in rows:
            self.regions[len(lines)] = row
            lines.append(
                [
                    (
                        f"  {row.base:#014x}  {row.end:#014x}  "
                        f"{human_size(row.size_bytes):>6}  {row.label:<20} {row.name:<24} "
                        f"{row.mapped_pages:,} mapped pages, {row.dumped_pages:,} dumped",
                        region_class(row),
                    )
                ]
            )
        memrows.set_source(LinesSource(lines))

    def on_resize(self) -> None:
        self.draw_minimap()

    def draw_minimap(self) -> None:
        """Draw both bars one glyph per column of the width the tab has (again on resize)."""
        width = self.size.width - MINIMAP_PADDING
        if width < 20 or width == self._drawn_width:
            return
        self._drawn_width = width
        self.query_one("#minimap", Static).update(minimap_text(self.dump, width))

    def set_minimap(self, columns: int, text: Text) -> None:
        """Show a minimap made ahead (``minimap_text``, by the main screen's background
        worker) while the tab was never drawn: its first showing then only draws it when
        the width is the same (a million segments: ~130 ms of the first visit); else the
        resize draws it again for the real width."""
        if not self._drawn_width and columns >= 20:
            self._drawn_width = columns
            self.query_one("#minimap", Static).update(text)

    def region_at(self, row: int) -> MemoryRow | None:
        return self.regions.get(row)


# ---- ranges ------------------------------------------------------------------------------------


class RangesView(Vertical):
    """Coalesced ranges, filtered by state and words, with go to inside the list."""

    def __init__(self, dump: Dump, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dump = dump
        self.table: RangeTable | None = None
        self.rows: np.ndarray | None = None  # indices shown (None: all)
        self.filter_text = ""
        self._filter: RangeFilter | None = None

    def compose(self) -> ComposeResult:
        yield Static("coalescing…", id="ranges-title", classes="title")
        yield RowList(id="ranges-list")

    def set_table(self, table: RangeTable) -> None:
        self.table = table
        listing = self.query_one("#ranges-list", RowList)
        listing.set_header([(sources.range_header(table.entry_format.view_short), None)])
        self._show(None, "")

    def _show(self, rows: np.ndarray | None, text: str, cursor: int = 0) -> None:
        table = self.table
        self.rows, self.filter_text = rows, text
        shown = len(table) if rows is None else len(rows)
        what = (
            f"{len(table):,} ranges (merged where VA, PA, attributes and dumped state all continue)"
            if rows is None
            else f"{shown:,} of {len(table):,} ranges match {text!r}"
        )
        self.query_one("#ranges-title", Static).update(
            Text(f"{what}; Enter jumps to one, f filters, g goes to a VA in the list"),
            layout=False,
        )
        self.query_one("#ranges-list", RowList).set_source(
            sources.ranges_source(table, rows), cursor
        )

    def filter(self, text: str) -> None:
        """Show the rows matching ``text`` (``model.ranges.parse_range_filter``); the
        filter is built in a thread the first time."""
        if self.table is None:
            return
        self.query_one("#ranges-title", Static).update(Text(f"filtering for {text!r}…"))
        self._run_filter(text)

    @work(thread=True, exclusive=True, group="range-filter")
    def _run_filter(self, text: str) -> None:
        try:
            if self._filter is None or self._filter.table is not self.table:
                self._filter = RangeFilter(self.table)
            rows = None if not text.strip() else self._filter.rows(text)
        except ValueError as exc:
            self.app.call_from_thread(self._filter_failed, text, str(exc))
            return
        self.app.call_from_thread(self._filtered, text, rows)

    def _filtered(self, text: str, rows: np.ndarray | None) -> None:
        keep = self.range_index(self.query_one("#ranges-list", RowList).cursor)
        cursor = 0
        if keep is not None:
            cursor = keep if rows is None else int(np.searchsorted(rows, keep))
        self._show(rows, text.strip(), cursor)
        self.post_message(StatusMessage(self.describe()))

    def _filter_failed(self, text: str, message: str) -> None:
        self._show(self.rows, self.filter_text, self.query_one("#ranges-list", RowList).cursor)
        self.post_message(StatusMessage(f"filter {text!r}: {message}"))

    def describe(self) -> str:
        shown = len(self.table) if self.rows is None else len(self.rows)
        if self.rows is None:
            return f"ranges: all {shown:,} shown"
        return f"ranges: {shown:,} of {len(self.table):,} match {self.filter_text!r}"

    def range_index(self, row: int) -> int | None:
        """The range table's row under list row ``row``."""
        if self.table is None or not len(self.table):
            return None
        if self.rows is None:
            return row if row < len(self.table) else None
        return int(self.rows[row]) if row < len(self.rows) else None

    def goto_va(self, va: int) -> str:
        """Put the cursor on the range holding ``va``; what happened, for the status line."""
        if self.table is None:
            return "ranges: still coalescing"
        index = self.table.index_of_va(va)
        if index is None:
            before = int(np.searchsorted(self.table.va_start, np.uint64(va), side="right"))
            index, what = max(0, before - 1), f"no range holds VA {va:#x}: the one before it"
            if before == 0:
                index, what = 0, f"no range holds VA {va:#x}: the first one"
        else:
            what = f"VA {va:#x} is in range {index + 1:,}"
        listing = self.query_one("#ranges-list", RowList)
        if self.rows is not None:
            row = int(np.searchsorted(self.rows, index))
            if row >= len(self.rows) or int(self.rows[row]) != index:
                return f"{what}, which the filter {self.filter_text!r} hides (f, empty: all)"
        else:
            row = index
        listing.cursor = row
        listing.scroll_to_cursor(center=True)
        listing.focus()
        return what


class StatusMessage(Message):
    """Something the status line should say."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


# ---- anomalies ---------------------------------------------------------------------------------


class AnomalySource(RowSource):
    """Findings grouped by kind: a heading row per kind (folded or not), then its findings."""

    def __init__(self, groups: list[AnomalyGroup], folded: set[str], tail: list[Row]) -> None:
        self.groups = groups
        self.folded = folded
        self.tail = tail  # kinds without findings, kinds not checked
        self.starts: list[int] = []
        n = 0
        for group in groups:
            self.starts.append(n)
            n += 1 + (0 if group.kind in folded else len(group))
        self.body = n

    def __len__(self) -> int:
        return self.body + len(self.tail)

    def width(self) -> int:
        return 240

    def locate(self, index: int) -> tuple[AnomalyGroup | None, int]:
        """(group, finding index or -1 for the heading) of row ``index``; (None, -1) past
        the groups."""
        if index >= self.body:
            return None, -1
        g = bisect.bisect_right(self.starts, index) - 1
        return self.groups[g], index - self.starts[g] - 1

    def row(self, index: int) -> Row:
        if index >= self.body:
            return self.tail[index - self.body]
        group, k = self.locate(index)
        if k < 0:
            sign = "▶" if group.kind in self.folded else "▼"
            return [
                (f"{sign} {group.kind}  {len(group):,}  ", anomaly_class(group.kind)),
                (group.description, "rowlist--dim"),
            ]
        a = group.anomalies[k]
        where = f"{a.va:016x}" if a.va is not None else "-" * 16
        ctx = "" if a.context is None else f"ctx {a.context} "
        return [(f"    {ctx}{where}  ", "rowlist--dim"), (a.message, None)]


class AnomaliesView(Vertical):
    """``check``'s findings, most severe kind first; Enter on a kind folds it, on a finding
    goes to its entry."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source: AnomalySource | None = None

    def compose(self) -> ComposeResult:
        yield Static("checking the dump for anomalies…", id="anomalies-title", classes="title")
        yield RowList(id="anomaly-list")

    def set_result(self, result: CheckResult) -> None:
        groups = grouped(result)
        folded = {g.kind for g in groups if len(g) > FOLD_ABOVE}
        counts = result.counts()
        tail: list[Row] = []
        clean = [kind for kind, n in counts.items() if not n]
        skipped = dict(result.skipped)
        clean = [kind for kind in clean if kind not in skipped]
        if clean:
            tail += [[("", None)], [(f"no findings: {', '.join(clean)}", "rowlist--dim")]]
        if skipped:
            tail.append([("", None)])
            tail += [[(f"not checked: {k}: {why}", "rowlist--dim")] for k, why in skipped.items()]
        self.source = AnomalySource(groups, folded, tail)
        total = len(result.anomalies)
        title = (
            f"{total:,} findings of {len(groups)} kinds, most severe first; Enter on a kind "
            "folds it, on a finding goes to its entry"
            if total
            else "check found nothing"
        )
        self.query_one("#anomalies-title", Static).update(Text(title), layout=False)
        self.query_one("#anomaly-list", RowList).set_source(self.source)

    def anomaly_at(self, row: int) -> Anomaly | None:
        if self.source is None:
            return None
        group, k = self.source.locate(row)
        return None if group is None or k < 0 else group.anomalies[k]

    def toggle(self, row: int) -> bool:
        """Fold or unfold the kind whose heading is row ``row``; False when it is no heading."""
        if self.source is None:
            return False
        group, k = self.source.locate(row)
        if group is None or k >= 0:
            return False
        folded = set(self.source.folded) ^ {group.kind}
        self.source = AnomalySource(self.source.groups, folded, self.source.tail)
        self.query_one("#anomaly-list", RowList).set_source(self.source, row)
        return True
