"""The main inspector screen: the tabs over one open dump, the keys, the background work.

Owns what the screen is made of (tab bar, the tabs' panes, status line, key bar), which tab
comes first (the Overview for a dump with a crash log, else the Tables), the bindings of
``dumpview.tui.keys``, the view keys (units, filter, tree, columns, help) and the background
worker that runs ``check``, makes the triage report from its findings and then coalesces the
ranges (one after the other, so their peaks do not add up). Places and jumps are
``navigation``'s, search, copy and bookmarks ``addresses``'; each tab owns what it shows
(``overview``, ``tables``, ``tabs``). Reads the model only; the one file it writes is the
bookmarks sidecar, through ``dumpview.model.bookmarks``.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Static

from dumpview.model import Dump, DumpChangedError, DumpError
from dumpview.model.anomalies import AnomalyMarks
from dumpview.model.bookmarks import Bookmarks
from dumpview.model.check import CheckResult
from dumpview.model.crash import crashlog_sections
from dumpview.model.kinds import kinds_of
from dumpview.model.levels import LevelTree
from dumpview.model.ranges import RangeTable, ranges
from dumpview.model.text import info_dict
from dumpview.model.triage import Triage, triage
from dumpview.tui.addresses import AddressScreen
from dumpview.tui.bars import KeyBar, TabBar
from dumpview.tui.keys import KEYS
from dumpview.tui.modals import (
    FilterScreen,
    HelpScreen,
    open_modal,
)
from dumpview.tui.navigation import Tabs
from dumpview.tui.overview import OverviewView
from dumpview.tui.tables import TablesView
from dumpview.tui.tabs import (
    MINIMAP_PADDING,
    AnomaliesView,
    MemoryMapView,
    RangesView,
    minimap_text,
)
from dumpview.tui.views import info_lines, sections_source
from dumpview.tui.widgets import RowList, plain_rows

FOOTER_KEYS = ("?", "g", "/", "[", "]", "y", "b", "B", "x", "n", "6", "q")  # the key bar
TABS = [
    (key.action[5:-2], key.shown, key.title) for key in KEYS if key.action.startswith("tab(")
]  # (id, key, title)


class MainScreen(AddressScreen):
    """Tabs over one open dump: the Overview says what happened, the Tables tab is where a
    person spends their time."""

    BINDINGS = [Binding(key.binding, key.action, key.title, show=False) for key in KEYS]

    def __init__(
        self,
        dump: Dump,
        tree: LevelTree,
        bookmarks: Bookmarks | None = None,
    ) -> None:
        super().__init__(dump, tree, bookmarks)
        # a dump with a crash log opens on what most likely happened
        self.initial_tab = "overview" if dump.crashlogs else "tables"
        self.range_table: RangeTable | None = None
        self.check_result: CheckResult | None = None
        self.triage: Triage | None = None

    # -- layout --

    def compose(self) -> ComposeResult:
        yield TabBar(TABS, self.initial_tab, id="tabbar")
        with Tabs(initial=self.initial_tab, id="tabs"):
            with Container(id="overview"):
                yield OverviewView(classes="pane")
            with Container(id="tables"):
                yield TablesView(self.dump, self.levels, id="tables-view")
            with Container(id="memmap"):
                yield MemoryMapView(self.dump, classes="pane")
            with Container(id="ranges"):
                yield RangesView(self.dump, classes="pane")
            with Container(id="crashlog"):
                yield RowList(id="crash")
            with Container(id="gpu"):
                yield RowList(id="gpuinfo")
            with Container(id="anomalies"):
                yield AnomaliesView(classes="pane")
        yield Static(id="status")
        by_key = {key.shown: key for key in KEYS}
        shown = [(k, by_key[k].title, by_key[k].action) for k in FOOTER_KEYS]
        yield KeyBar([*shown[:-1], ("^p", "Palette", "app.command_palette"), shown[-1]])

    def on_mount(self) -> None:
        name = Path(self.dump.path).name
        self.app.title = f"dumpview {name}"
        self.app.sub_title = self.dump.layout + (" + extension" if self.dump.extension else "")
        self.query_one(TabBar).set_heading(f"{name} — {self.app.sub_title}")
        self._focus_tab(self.initial_tab)
        self.query_one("#crash", RowList).set_source(sections_source(crashlog_sections(self.dump)))
        info = info_dict(self.dump)  # warm: the loader made it (its walks are kept on the dump)
        self.query_one("#gpuinfo", RowList).set_source(plain_rows(info_lines(info, self.dump)))
        warnings = list(info["warnings"])  # what the GPU info tab lists
        if self.bookmarks.warning:
            warnings.append(self.bookmarks.warning)
        total, dumped = self.dump.page_totals
        self.status(
            f"{self.dump.segment_count:,} PT_LOAD, {total:,} pages ({total - dumped:,} not "
            f"dumped)" + (f"; {len(warnings)} warning(s): {warnings[0]}" if warnings else "")
        )
        self.call_after_refresh(self._first_screen_drawn)

    def _first_screen_drawn(self) -> None:
        self.app.first_screen_drawn()
        self._settled()
        self._background()  # after the first screen: the thread would slow its drawing

    # -- background work --

    @work(thread=True, exclusive=True, group="background")
    def _background(self) -> None:
        """Check, the triage report (from check's findings: check runs once), then ranges:
        one after the other, and check's transient columns (~130 bytes a page at its peak)
        gone before the range table (~30 bytes a range) stays."""
        result = self.dump.check()
        marks = AnomalyMarks(
            result.anomalies, self.dump.page_size_bytes, self.levels.dumped_context
        )
        self.app.call_from_thread(self._check_ready, result, marks)
        try:
            report = triage(self.dump, result)
        except DumpChangedError:
            raise  # the app's error screen says it
        except DumpError as exc:  # a crash log or notes the report cannot read: its line
            self.app.call_from_thread(self.query_one(OverviewView).set_failed, str(exc))
        else:
            self.app.call_from_thread(self._triage_ready, report)
        table = ranges(self.dump)
        self.app.call_from_thread(self._ranges_ready, table)
        columns = self.app.size.width - MINIMAP_PADDING  # the memory map tab's, when shown
        if columns >= 20:
            text = minimap_text(self.dump, columns)
            self.app.call_from_thread(self.query_one(MemoryMapView).set_minimap, columns, text)

    def _settled(self) -> None:
        """What exists now lives as long as the dump is open (widgets, the model, check's
        findings): out of the garbage collector's sight (``Collector.settle``)."""
        collector = self.app.collector
        if collector is not None:
            collector.settle()

    def _ranges_ready(self, table: RangeTable) -> None:
        self._settled()
        self.range_table = table
        self.query_one(RangesView).set_table(table)

    def _triage_ready(self, report: Triage) -> None:
        self.triage = report
        self.query_one(OverviewView).set_report(report)

    def _check_ready(self, result: CheckResult, marks: AnomalyMarks) -> None:
        self._settled()
        self.check_result = result
        self.query_one(AnomaliesView).set_result(result)
        self.tables.set_marks(marks)
        self.query_one(TabBar).set_title("anomalies", f"Anomalies ({len(result.anomalies):,})")

    # -- views --

    def action_cycle_unit(self) -> None:
        unit = self.tables.cycle_unit()
        self.status(f"page contents as {unit}")

    def action_filter(self) -> None:
        if self.tab != "ranges":
            self.status("filter: the Ranges tab (3) has a filter")
            return
        view = self.query_one(RangesView)
        if view.table is None:
            self.status("filter: the ranges are still being coalesced")
            return
        open_modal(self.app, FilterScreen(view.filter_text), self._filter_text)

    def _filter_text(self, text: str | None) -> None:
        if text is not None:
            self.query_one(RangesView).filter(text)

    def action_toggle_tree(self) -> None:
        shown = self.tables.toggle_tree()
        self.show_tab("tables")
        self.status("level tree shown" if shown else "level tree hidden (t shows it)")

    def action_toggle_columns(self) -> None:
        every = self.tables.toggle_columns()
        self.show_tab("tables")
        self.status(
            "entries: every column (Left/Right scroll)" if every else "entries: columns that fit"
        )

    def action_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def action_help(self) -> None:
        open_modal(self.app, HelpScreen(kinds_of(self.dump.entry_format)))

    def action_quit(self) -> None:
        self.app.exit()
