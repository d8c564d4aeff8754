"""Where the inspector has been: back and forward over every jump, as a browser does.

Owns ``Location`` (what is needed to show a place again: the tab, the context and table, the
cursor rows, the exact byte of the page, the focused pane) and ``History`` (two bounded stacks).
A jump records where it came from (``History.record``) and forgets the forward stack; ``back``
and ``forward`` trade the current place for a recorded one. No Textual here: the main screen
captures and restores locations.
"""

from __future__ import annotations

from dataclasses import dataclass

from dumpview.model.levels import TableRef

HISTORY_LIMIT = 500  # places kept each way


@dataclass(frozen=True)
class Location:
    """A place the inspector showed. ``context`` is the address space being browsed (the
    table's); ``va`` the exact byte of the page cursor (None: no page shown); ``row`` the
    cursor row of the tab's list (the entries on the Tables tab)."""

    tab: str
    context: int | None = None
    table: TableRef | None = None
    row: int = 0
    va: int | None = None
    pane: str | None = None  # id of the focused widget

    def describe(self) -> str:
        """A few words for the status line."""
        if self.tab != "tables" or self.table is None:
            return f"{self.tab} tab, row {self.row + 1}"
        where = f"VA {self.va:#x}" if self.va is not None else f"L{self.table.level} table"
        return f"{where} (context {self.table.context})"


class History:
    """Back and forward stacks of ``Location``, each at most ``limit`` long."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self.limit = limit
        self._back: list[Location] = []
        self._forward: list[Location] = []

    def record(self, here: Location) -> None:
        """A jump is leaving ``here``: remember it, forget the forward stack. A place equal
        to the last one recorded is kept once."""
        if not self._back or self._back[-1] != here:
            self._back.append(here)
            del self._back[: -self.limit]
        self._forward.clear()

    def back(self, here: Location) -> Location | None:
        """The place before ``here`` (None at the start); ``here`` goes on the forward stack."""
        if not self._back:
            return None
        self._forward.append(here)
        del self._forward[: -self.limit]
        return self._back.pop()

    def forward(self, here: Location) -> Location | None:
        """The place ``back`` left (None when there is none); ``here`` goes back on the stack."""
        if not self._forward:
            return None
        self._back.append(here)
        del self._back[: -self.limit]
        return self._forward.pop()

    @property
    def depth(self) -> tuple[int, int]:
        """(places behind, places ahead)."""
        return len(self._back), len(self._forward)
