"""The key table: one list feeds the bindings, the ``?`` help, the command palette and README.

Each ``Key`` names the key as typed, the key as Textual spells it, the main screen's action and
what it does. A test checks README's key table against this list.
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


KEYS: tuple[Key, ...] = (
    Key(
        "g",
        "g",
        "goto",
        "Go to",
        "Go to a VA (or p:PA): selects the leaf, shows its walk and "
        "page; an unmapped VA says where the walk stopped",
    ),
    Key(
        "/",
        "slash",
        "search",
        "Search",
        "Search dumped pages for hex bytes, a string, a u32 or "
        "a u64; holes are skipped and counted",
    ),
    Key("n", "n", "next_hit", "Next hit", "Go to the next search hit"),
    Key("N", "N", "previous_hit", "Prev hit", "Go to the previous search hit"),
    Key(
        "b",
        "b",
        "bookmark",
        "Bookmark",
        "Bookmark the selected VA (kept in a sidecar file beside the dump, never in it)",
    ),
    Key("B", "B", "bookmarks", "Bookmarks", "List bookmarks: Enter goes there, d deletes one"),
    Key("u", "u", "cycle_unit", "Units", "Page contents as u8, u16, u32 or u64 (little-endian)"),
    Key("1", "1", "tab('tables')", "Tables", "Tables: level tree, entries, entry bits, page"),
    Key("2", "2", "tab('memmap')", "Memory map", "Memory map: RAM, reserved, MMIO, minimap"),
    Key("3", "3", "tab('ranges')", "Ranges", "Ranges: coalesced mappings; Enter jumps there"),
    Key("4", "4", "tab('crashlog')", "Crash log", "Crash log: panic, ESR, FAR walk, stack, Ccdp"),
    Key("5", "5", "tab('gpu')", "GPU info", "GPU info from the AGX note, and the dump's summary"),
    Key("?", "question_mark", "help", "Help", "Show this key table"),
    Key("q", "q", "quit", "Quit", "Quit"),
)

# Keys every widget handles the usual way (listed in help and README, not bound here).
NAVIGATION: tuple[tuple[str, str], ...] = (
    ("Tab / Shift+Tab", "Move between panes"),
    ("Up/Down, PgUp/PgDn, Home/End", "Move the cursor"),
    ("Enter", "Open: descend into a table, jump to a range or an address on a line"),
    ("Ctrl+P", "Command palette (every command above)"),
    ("Mouse", "Click to select, double-click to open, wheel to scroll"),
)
