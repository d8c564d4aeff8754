"""The Overview tab: the triage report (``dumpview.model.triage``), each line one Enter away
from the place it names.

Owns how the report reads on screen (the section's label on its first line, the text coloured
by its tone, a ``›`` before every line that goes somewhere, long lines wrapped to the pane's
width) and what each line goes to
(``Target``): the FAR in the context it was walked in, a neighbour's edge, the first finding of
an anomaly kind (as the Anomalies tab goes to it), the first page without data for a reason, a
context's tables. The report is computed by the main screen's background worker after check
(``set_report``); until then the tab says what it is waiting for.

Dumps with a crash log open on this tab; the others open on the tables (the report then has no
fault to explain: its anomaly counts, pages without data and contexts stay one key away).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from dumpview.model.check import Anomaly
from dumpview.model.contexts import ContextInfo
from dumpview.model.location import Location as Place
from dumpview.model.triage import Triage, TriageLine
from dumpview.model.triage_text import SECTION_LABELS
from dumpview.tui.views import anomaly_class
from dumpview.tui.widgets import LinesSource, Row, RowList

MIN_TEXT_CELLS = 30  # a narrower pane scrolls sideways instead of wrapping further
GO = "› "  # before a line Enter goes somewhere from
LABEL_CELLS = max(len(label) for label in SECTION_LABELS.values())
WAITING = "checking the dump for the triage report (the fault, its walk, every anomaly)…"
TONE_CLASSES = {
    "severe": "kind--invalid",
    "ok": "kind--gpu",
    "warning": "rowlist--warn",
    "not-dumped": "kind--not-dumped",
}


def tone_class(tone: str | None) -> str | None:
    """A row list's component class for a ``TriageLine.tone`` (the command line's colours:
    severe red, agreeing green, warnings yellow; anomaly kinds by ``check.SEVERE_KINDS``)."""
    if tone is None:
        return None
    if tone.startswith("anomaly:"):
        return anomaly_class(tone.split(":", 1)[1])
    return TONE_CLASSES.get(tone)


@dataclass(frozen=True)
class Target:
    """Where a line of the report goes: a ``place`` (a VA with its context, or ``p:PA``), the
    first ``finding`` of an anomaly kind, or a ``context``'s tables."""

    place: Place | None = None
    finding: Anomaly | None = None
    context: ContextInfo | None = None

    def describe(self) -> str:
        if self.context is not None:
            return f"context {self.context.context}"
        if self.finding is not None:
            return f"the first {self.finding.kind}"
        return str(self.place)


def target_of(line: TriageLine, report: Triage) -> Target | None:
    """What Enter on ``line`` goes to (None: nowhere). An anomaly line goes to its kind's first
    finding (the entry it is about, as the Anomalies tab does); a context line to the context."""
    if line.tone is not None and line.tone.startswith("anomaly:"):
        kind = line.tone.split(":", 1)[1]
        for counted in report.anomalies:
            if counted.kind == kind:
                return Target(place=line.location, finding=counted.first)
    number = line.text.split(" ", 1)[0]
    if line.section == "contexts" and number.isdigit():  # "1 tables only, TTB 0x… owned, …"
        for context in report.contexts:
            if context.context == int(number):
                return Target(context=context)
    return None if line.location is None else Target(place=line.location)


def report_rows(report: Triage, cells: int | None = None) -> tuple[list[Row], list[Target | None]]:
    """The report's rows and, per row, where Enter goes. With ``cells``, a line longer than
    the pane continues on the next rows (under its text, going to the same place)."""
    rows: list[Row] = []
    targets: list[Target | None] = []
    previous = None
    lead = len(GO) + LABEL_CELLS + 2
    for line in report.lines():
        label = SECTION_LABELS.get(line.section, line.section) if line.section != previous else ""
        previous = line.section
        target = target_of(line, report)
        style = "rowlist--title" if line.section == "signature" else tone_class(line.tone)
        pieces = [line.text]
        if cells is not None and len(line.text) > cells - lead:
            width = max(cells - lead, MIN_TEXT_CELLS)
            pieces = textwrap.wrap(line.text, width, subsequent_indent="  ") or [line.text]
        for n, piece in enumerate(pieces):
            go = GO if target is not None and n == 0 else "  "
            rows.append(
                [
                    (go, "rowlist--mark"),
                    (f"{label if n == 0 else '':<{LABEL_CELLS}}  ", "rowlist--dim"),
                    (piece, style),
                ]
            )
            targets.append(target)
    return rows, targets


class OverviewView(Vertical):
    """The triage report; Enter on a line marked ``›`` goes to what it names."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.report: Triage | None = None
        self.targets: list[Target | None] = []
        self._cells: int | None = None  # the text width the report was wrapped to

    def compose(self) -> ComposeResult:
        yield Static(WAITING, id="overview-title", classes="title")
        yield RowList(id="overview-list")

    def on_mount(self) -> None:
        self.query_one("#overview-list", RowList).set_source(
            LinesSource([[(WAITING, "rowlist--dim")]])
        )

    def on_resize(self) -> None:
        if self.report is not None and self._cells != self._pane_cells():
            self.set_report(self.report)

    def _pane_cells(self) -> int | None:
        width = self.query_one("#overview-list", RowList).scrollable_content_region.width
        return width - 1 if width > 0 else None

    def set_report(self, report: Triage) -> None:
        self.report = report
        self._cells = self._pane_cells()
        rows, self.targets = report_rows(report, self._cells)
        fault = "what most likely happened" if report.crashlogs else "no crash log: the dump"
        title = f"triage: {fault}; Enter on a line marked › goes there, [ comes back"
        self.query_one("#overview-title", Static).update(Text(title), layout=False)
        rowlist = self.query_one("#overview-list", RowList)
        rowlist.set_source(LinesSource(rows), rowlist.cursor)

    def set_failed(self, message: str) -> None:
        """The report could not be made (the dump's notes or tables): its one line."""
        self.query_one("#overview-title", Static).update(Text("triage: no report"), layout=False)
        self.query_one("#overview-list", RowList).set_source(
            LinesSource([[(message, "kind--invalid")]])
        )

    def target_at(self, row: int) -> Target | None:
        return self.targets[row] if 0 <= row < len(self.targets) else None
