"""The key table: one list feeds the bindings, the ``?`` help, the command palette and README.

Each ``Key`` names the key as typed, the key as Textual spells it, the main screen's action and
what it does. A test checks README's key table against this list.

Back and forward follow browsers and hex viewers: ``[`` and ``]``, Backspace for back, and
Alt+Left / Alt+Right where the terminal reports them as such (many send Escape then the arrow,
which Textual cannot tell from the two keys).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    shown: str  # as a person types it
    binding: str  # as Textual names it
    action: str  # the main screen's action (palette commands run the same)
    title: str  # short, for the footer and the palette
    help: str  # one sentence for ``?`` and README
    words: str = ""  # more words the command palette finds it by

    @property
    def palette_title(self) -> str:
        return f"{self.title} ({self.shown})" + (f": {self.words}" if self.words else "")


KEYS: tuple[Key, ...] = (
    Key(
        "g",
        "g",
        "goto",
        "Go to",
        "Go to a VA, CTX:VA (a context's VA) or p:PA: selects the leaf, its walk and page, the "
        "cursor on that byte; an unmapped VA says where the walk stopped; on the Ranges tab, "
        "the range holding it",
    ),
    Key(
        "/",
        "slash",
        "search",
        "Search",
        'Search dumped pages in one line: hex bytes, "text" in quotes, u32:N or u64:N; holes '
        "are skipped and counted",
    ),
    Key("n", "n", "next_hit", "Next hit", "Go to the next search hit (says when it wraps)"),
    Key("N", "N", "previous_hit", "Prev hit", "Go to the previous search hit (says when it wraps)"),
    Key(
        "[",
        "left_square_bracket,backspace,alt+left",
        "back",
        "Back",
        "Back to where the last jump left from (also Backspace, Alt+Left)",
        "history previous jump",
    ),
    Key(
        "]",
        "right_square_bracket,alt+right",
        "forward",
        "Forward",
        "Forward again after going back (also Alt+Right)",
        "history next jump",
    ),
    Key(
        "y",
        "y",
        "copy_va",
        "Copy VA",
        "Copy the VA under the cursor (the page's byte, the entry, the range, the line) to the "
        "clipboard",
        "clipboard yank address",
    ),
    Key(
        "Y",
        "Y",
        "copy_pa",
        "Copy PA",
        "Copy the PA under the cursor to the clipboard",
        "clipboard physical address",
    ),
    Key(
        "b",
        "b",
        "bookmark",
        "Bookmark",
        "Bookmark the exact VA under the cursor with a note (kept in a sidecar file beside the "
        "dump, never in it)",
    ),
    Key(
        "B",
        "B",
        "bookmarks",
        "Bookmarks",
        "List bookmarks: Enter goes there, e edits the note, d deletes one (after asking)",
    ),
    Key("u", "u", "cycle_unit", "Units", "Page contents as u8, u16, u32 or u64 (little-endian)"),
    Key(
        "f",
        "f",
        "filter",
        "Filter",
        "Filter the ranges: dumped, not dumped, and words (memattr, permissions, reason)",
    ),
    Key("t", "t", "toggle_tree", "Tree", "Hide or show the level tree"),
    Key(
        "c",
        "c",
        "toggle_columns",
        "Columns",
        "Entries: every column (scrolling sideways) or the columns that fit",
    ),
    Key(
        "x",
        "x",
        "contexts",
        "Contexts",
        "List the contexts (address spaces: number, ASID, TTB owned or borrowed, dumped or "
        "tables only); Enter browses one's tables",
        "context address space asid ttb switch",
    ),
    Key(
        "0",
        "0",
        "tab('overview')",
        "Overview",
        "Overview: the triage report (panic, exception, the FAR's walk and verdict, anomalies, "
        "pages not dumped, contexts); Enter on a line goes to its address",
        "triage summary report",
    ),
    Key("1", "1", "tab('tables')", "Tables", "Tables: level tree, entries, entry bits, page"),
    Key("2", "2", "tab('memmap')", "Memory map", "Memory map: RAM, reserved, MMIO, minimap"),
    Key("3", "3", "tab('ranges')", "Ranges", "Ranges: coalesced mappings; Enter jumps there"),
    Key("4", "4", "tab('crashlog')", "Crash log", "Crash log: panic, ESR, FAR walk, stack, Ccdp"),
    Key("5", "5", "tab('gpu')", "GPU info", "GPU info from the AGX note, and the dump's summary"),
    Key(
        "6",
        "6",
        "tab('anomalies')",
        "Anomalies",
        "Anomalies: every check finding by kind, most severe first; Enter goes to its entry",
        "check findings",
    ),
    Key("?", "question_mark", "help", "Help", "Show this key table"),
    Key("q", "q", "quit", "Quit", "Quit"),
)

# Keys every widget handles the usual way (listed in help and README, not bound here).
NAVIGATION: tuple[tuple[str, str], ...] = (
    ("Tab / Shift+Tab", "Move between panes"),
    ("Up/Down, PgUp/PgDn, Home/End", "Move the cursor"),
    ("Left/Right", "Page: move the byte cursor; other lists: scroll sideways"),
    (
        "Enter",
        "Open: descend into a table, follow the u64 under the page cursor, jump to a range, a "
        "finding or an address on a line, go to a region's first mapping",
    ),
    ("Ctrl+P", "Command palette (every command above)"),
    ("Mouse", "Click to select, double-click to open, wheel to scroll"),
)
