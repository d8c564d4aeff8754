"""The modal prompts of the main screen: go to, search, filter, a bookmark's note, a yes/no
question, the bookmark list, the context list and the key help.

Each is a small ``ModalScreen`` that answers through ``dismiss`` (None when cancelled); the main
screen decides what the answer does. The bookmark list edits the ``Bookmarks`` it is given and
asks before deleting one.

``open_modal`` keeps one installed instance of each and shows it again, prepared for the new
question: composing a screen and removing it when it closes each laid out the whole main screen
again (~20 ms on top of its repaint). The first opening still composes it (Textual composes a
screen when it is first shown).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from dumpview.model.bookmarks import Bookmark, Bookmarks
from dumpview.model.contexts import ContextInfo
from dumpview.model.kinds import DESCRIPTIONS, KIND_CODES
from dumpview.tui.keys import KEYS, NAVIGATION
from dumpview.tui.loading import os_error_text
from dumpview.tui.widgets import LinesSource, Row, RowList, plain_rows

GOTO_EXAMPLE = "0xffffffa000000000  or  p:0x10000000000"  # a dump with no PT_LOAD: UAT's
SEARCH_HELP = 'Search dumped pages: hex bytes, "text" in quotes, u32:N or u64:N (holes skipped)'
SEARCH_EXAMPLE = 'de ad be ef   "GPU firmware"   u64:0xffffffa000004000'
FILTER_HELP = "Filter ranges: dumped, not dumped, and words (memattr, permissions, reason, kind)"


def open_modal(app: App, screen: ModalScreen, callback=None) -> None:
    """Show ``screen``; from the second time on, the instance of its class shown before
    (installed, so closing it does not remove it), asking ``screen``'s question
    (``prepared_from``)."""
    name = f"dumpview-{type(screen).__name__}"
    if app.is_screen_installed(name) and app.get_screen(name).is_mounted:
        app.get_screen(name).prepared_from(screen)
    else:
        if app.is_screen_installed(name):
            app.uninstall_screen(name)
        app.install_screen(screen, name)
    app.push_screen(name, callback)


class PromptScreen(ModalScreen[str | None]):
    """One line of input under a label; Enter answers the text, Escape None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self, label: str, placeholder: str = "", value: str = "", input_id: str = ""
    ) -> None:
        super().__init__()
        self.label = label
        self.placeholder = placeholder
        self.value = value
        self.input_id = input_id or "prompt-input"

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label(Text(self.label), id="prompt-label")
            yield Input(self.value, placeholder=self.placeholder, id=self.input_id)

    def prepared_from(self, other: PromptScreen) -> None:
        """Ask ``other``'s question (label, placeholder, value) with this screen."""
        self.label, self.placeholder, self.value = other.label, other.placeholder, other.value
        self.query_one(Label).update(Text(self.label))
        entry = self.query_one(Input)
        entry.placeholder = self.placeholder
        entry.value = self.value
        entry.cursor_position = len(self.value)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_screen_resume(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class GotoScreen(PromptScreen):
    def __init__(self, example: str = GOTO_EXAMPLE, label: str = "") -> None:
        super().__init__(
            label or "Go to VA (0x… or decimal), CTX:VA (a context's VA), or p:PA",
            example,
            input_id="goto-input",
        )


class SearchScreen(PromptScreen):
    def __init__(self, text: str = "") -> None:
        super().__init__(SEARCH_HELP, SEARCH_EXAMPLE, text, input_id="search-input")


class FilterScreen(PromptScreen):
    def __init__(self, text: str = "") -> None:
        super().__init__(
            FILTER_HELP, "not dumped no-map   (empty: every range)", text, input_id="filter-input"
        )


class NoteScreen(PromptScreen):
    """A bookmark's note: Enter keeps it (empty is fine), Escape does not bookmark."""

    def __init__(self, va: int, label: str, note: str = "") -> None:
        super().__init__(
            f"Bookmark {va:#x} ({label}): a note, Enter to keep it, Escape to cancel",
            "what is here",
            note,
            input_id="note-input",
        )


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y answers True; n and Escape False."""

    BINDINGS = [
        Binding("y", "dismiss(True)", "Yes"),
        Binding("n,escape", "dismiss(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label(Text(self.question), id="confirm-question")
            yield Label("y: yes   n or Escape: no", id="confirm-hint")

    def prepared_from(self, other: ConfirmScreen) -> None:
        self.question = other.question
        self.query_one("#confirm-question", Label).update(Text(self.question))


class BookmarksScreen(ModalScreen[int | None]):
    """The bookmark list: Enter goes to one, e edits its note, d deletes it (after asking)."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("d,delete", "delete", "Delete"),
        Binding("e", "edit", "Edit note"),
    ]

    def __init__(self, bookmarks: Bookmarks) -> None:
        super().__init__()
        self.bookmarks = bookmarks

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt", id="bookmarks-box"):
            yield Label("Bookmarks (Enter: go, e: edit the note, d: delete, Esc: close)")
            yield OptionList(id="bookmark-list")

    def on_mount(self) -> None:
        self._fill()

    def prepared_from(self, other: BookmarksScreen) -> None:
        self.bookmarks = other.bookmarks
        self._fill()

    def _fill(self, highlight: int = 0) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        items = self.bookmarks.items
        if not items:
            options.add_option(Option("no bookmarks yet: press b on an entry", disabled=True))
        for bookmark in items:
            # Text: a label (hand-edited sidecar) is not markup; "[/b]" would crash the list
            text = f"{bookmark.va:#018x}  {bookmark.label}"
            if bookmark.note:
                text += f"  — {bookmark.note}"
            options.add_option(Option(Text(text), id=str(bookmark.va)))
        if items:  # Enter, e and d act on the highlighted one: start on one
            options.highlighted = min(highlight, len(items) - 1)
        options.focus()

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def _highlighted(self) -> Bookmark | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option = options.get_option_at_index(options.highlighted)
        return None if option.id is None else self.bookmarks.get(int(option.id))

    def _save(self) -> None:
        try:
            self.bookmarks.save()
        except OSError as exc:
            self.notify(f"bookmarks not saved: {os_error_text(exc)}", severity="error")

    def action_delete(self) -> None:
        bookmark = self._highlighted()
        if bookmark is None:
            return
        where = self.query_one(OptionList).highlighted or 0
        note = f" ({bookmark.note})" if bookmark.note else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self.bookmarks.remove(bookmark.va)
                self._save()
            self._fill(where)

        question = ConfirmScreen(f"Delete the bookmark at {bookmark.va:#x}{note}?")
        open_modal(self.app, question, answered)

    def action_edit(self) -> None:
        bookmark = self._highlighted()
        if bookmark is None:
            return
        where = self.query_one(OptionList).highlighted or 0

        def edited(note: str | None) -> None:
            if note is not None:
                self.bookmarks.add(bookmark.va, bookmark.label, note.strip())
                self._save()
            self._fill(where)

        open_modal(self.app, NoteScreen(bookmark.va, bookmark.label, bookmark.note), edited)


def ttb_words(context: ContextInfo, why: bool = True) -> str:
    """The context's TTB and who owns it, in words (``why``: and what that means)."""
    if context.ttb_pa is None:
        return "TTB not recorded (driver dump)"
    if context.ttb_owned:
        return f"TTB {context.ttb_pa:#x} owned" + (" (the driver allocated it)" if why else "")
    return f"TTB {context.ttb_pa:#x} borrowed" + (" (the firmware's, new_with_ttb)" if why else "")


def context_line(context: ContextInfo, current: int | None = None) -> str:
    """One context for the list: number, ASID, TTB, dumped or tables only, pages, VA half."""
    mark = "●" if context.context == current else " "
    if context.dumped:
        state = f"dumped: {context.pages_mapped:,} pages, {context.pages_dumped:,} with data"
    else:
        state = f"tables only: {context.pages_mapped:,} pages mapped, none dumped"
    return (
        f"{mark} ctx {context.context:<3} ASID {context.asid:<3} {ttb_words(context, False):<28}"
        f"  {state}  VA {context.va_start:#x}-{context.va_end - 1:#x}"
    )


class ContextsScreen(ModalScreen[int | None]):
    """The address spaces the dump carries; Enter browses one (its tables)."""

    BINDINGS = [Binding("escape,x", "dismiss(None)", "Close")]

    def __init__(self, contexts: Sequence[ContextInfo], current: int | None) -> None:
        super().__init__()
        self.contexts = tuple(contexts)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt", id="contexts-box"):
            yield Static(
                "Contexts: the address spaces the dump carries (a TTB is owned when the driver "
                "allocated it, borrowed when it is the firmware's). Enter: browse its tables, "
                "Esc: close",
                markup=False,
            )
            yield RowList(id="context-list")

    def on_mount(self) -> None:
        self._fill()

    def prepared_from(self, other: ContextsScreen) -> None:
        self.contexts, self.current = other.contexts, other.current
        self._fill()

    def _fill(self) -> None:
        lines = [context_line(context, self.current) for context in self.contexts]
        numbers = [c.context for c in self.contexts]
        cursor = numbers.index(self.current) if self.current in numbers else 0
        rows = self.query_one(RowList)
        rows.styles.height = min(len(lines), 20) + 1  # and the sideways scrollbar
        rows.set_source(plain_rows(lines), cursor)
        rows.focus()

    @on(RowList.Activated, "#context-list")
    def selected(self, event: RowList.Activated) -> None:
        if 0 <= event.row < len(self.contexts):
            self.dismiss(self.contexts[event.row].context)


LEGEND_EXTRA: tuple[tuple[str, str, str], ...] = (
    ("rowlist--mark", "› go", "an overview line Enter goes from (0: the overview)"),
    ("rowlist--mark", "! anomaly", "a finding of check is about this entry (6: the list)"),
    ("rowlist--hit", "search hit", "the bytes of the current search hit (n / N)"),
    ("rowlist--byte", "byte cursor", "the page's cursor byte (Enter follows its u64)"),
    ("rowlist--warn", "not recorded", "bits a driver dump lost (entry bits pane)"),
)


HELP_WRAP = 76  # columns of a key's description before it continues on the next line


def _key_rows(keys: str, what: str) -> list[Row]:
    lines = textwrap.wrap(what, HELP_WRAP) or [""]
    rows: list[Row] = [[(f"  {keys:<30} {lines[0]}", None)]]
    rows += [[(f"  {'':<30} {line}", None)] for line in lines[1:]]
    return rows


def help_rows(kinds: tuple[str, ...] = KIND_CODES) -> list[Row]:
    """The key table, the navigation keys, and the colour legend drawn in its own colours."""
    rows: list[Row] = [[("dumpview keys", "rowlist--title")], [("", None)]]
    for key in KEYS:
        rows += _key_rows(key.shown, key.help)
    rows.append([("", None)])
    for keys, what in NAVIGATION:
        rows += _key_rows(keys, what)
    rows += [[("", None)], [("colours", "rowlist--title")]]
    for name in ("table", *kinds):
        rows.append(
            [("  ", None), (f"{name:<30}", f"kind--{name}"), (f" {DESCRIPTIONS[name]}", None)]
        )
    for style, name, what in LEGEND_EXTRA:
        rows.append([("  ", None), (f"{name:<30}", style), (f" {what}", None)])
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def __init__(self, kinds: tuple[str, ...] = KIND_CODES) -> None:
        super().__init__()
        self.kinds = kinds  # the colours the open dump's entry format can show

    def prepared_from(self, other: HelpScreen) -> None:
        if other.kinds != self.kinds:
            self.kinds = other.kinds
            self.query_one(RowList).set_source(LinesSource(help_rows(self.kinds)))

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt", id="help-box"):
            yield RowList(LinesSource(help_rows(self.kinds)), id="help-list")
