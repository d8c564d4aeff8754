"""The modal prompts of the main screen: go to, search, the bookmark list and the key help.

Each is a small ``ModalScreen`` that answers through ``dismiss`` (None when cancelled); the main
screen decides what the answer does. The bookmark list edits the ``Bookmarks`` it is given.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select
from textual.widgets.option_list import Option

from dumpview.model.bookmarks import Bookmarks
from dumpview.model.kinds import DESCRIPTIONS, KIND_CODES
from dumpview.tui.keys import KEYS, NAVIGATION
from dumpview.tui.widgets import RowList, plain_rows

GOTO_EXAMPLE = "0xffffffa000000000  or  p:0x10000000000"  # a dump with no PT_LOAD: UAT's


class GotoScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, example: str = GOTO_EXAMPLE) -> None:
        super().__init__()
        self.example = example  # addresses of the open dump, as a hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label("Go to VA (0x… or decimal), or p:PA")
            yield Input(placeholder=self.example, id="goto-input")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class SearchScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, kind: str = "hex", text: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label("Search dumped pages (holes are skipped and counted)")
            with Horizontal(id="search-row"):
                yield Select(
                    [(k, k) for k in ("hex", "string", "u32", "u64")],
                    value=self.kind,
                    allow_blank=False,
                    id="search-kind",
                )
                yield Input(self.text, placeholder="de ad be ef", id="search-input")

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        kind = str(self.query_one("#search-kind", Select).value)
        self.dismiss((kind, event.value))


class BookmarksScreen(ModalScreen[int | None]):
    """The bookmark list: Enter goes to one, d deletes one."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("d", "delete", "Delete"),
    ]

    def __init__(self, bookmarks: Bookmarks) -> None:
        super().__init__()
        self.bookmarks = bookmarks

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt", id="bookmarks-box"):
            yield Label("Bookmarks (Enter: go, d: delete, Esc: close)")
            yield OptionList(id="bookmark-list")

    def on_mount(self) -> None:
        self._fill()

    def _fill(self, highlight: int = 0) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        items = self.bookmarks.items
        if not items:
            options.add_option(Option("no bookmarks yet: press b on an entry", disabled=True))
        for bookmark in items:
            options.add_option(
                # Text: a label (hand-edited sidecar) is not markup; "[/b]" would crash the list
                Option(Text(f"{bookmark.va:#018x}  {bookmark.label}"), id=str(bookmark.va))
            )
        if items:  # Enter and d act on the highlighted one: start on one
            options.highlighted = min(highlight, len(items) - 1)
        options.focus()

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_delete(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        option = options.get_option_at_index(options.highlighted)
        if option.id is None:
            return
        self.bookmarks.remove(int(option.id))
        try:
            self.bookmarks.save()
        except OSError as exc:
            self.notify(f"bookmarks not saved: {exc}", severity="error")
        self._fill(options.highlighted)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def __init__(self, kinds: tuple[str, ...] = KIND_CODES) -> None:
        super().__init__()
        self.kinds = kinds  # the colours the open dump's entry format can show

    def compose(self) -> ComposeResult:
        lines = ["dumpview keys", ""]
        lines += [f"  {key.shown:<30} {key.help}" for key in KEYS]
        lines += [""] + [f"  {keys:<30} {what}" for keys, what in NAVIGATION]
        lines += ["", "colours"]
        lines += [f"  {name:<30} {DESCRIPTIONS[name]}" for name in ("table", *self.kinds)]
        with Vertical(classes="prompt", id="help-box"):
            yield RowList(plain_rows(lines), id="help-list")
