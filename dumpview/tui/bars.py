"""The one-line bars of the main screen: the tabs on top (with what is open), the keys at the
bottom. Each is one widget drawing one line, so a tab switch or a focus move restyles nothing
here (Textual's tab bar and footer are a widget per tab or key, rebuilt or restyled on both).
A cut bar ends in an ellipsis; a click on a tab or a key does what pressing it does.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget


class TabBar(Widget):
    """The tabs on one line ("1 Tables  2 Memory map ...", the one shown in the cursor colour)
    and, right-aligned, what is open. One widget instead of Textual's tab bar (a widget per tab,
    an underline, a container): a tab switch restyles nothing here. A click picks a tab."""

    COMPONENT_CLASSES = {"tabbar--key", "tabbar--tab", "tabbar--active", "tabbar--title"}
    DEFAULT_CSS = """
    TabBar {
        height: 1;
        background: $panel;
        .tabbar--key { color: $text-muted; }
        .tabbar--tab { color: $text-muted; }
        .tabbar--active {
            color: $block-cursor-foreground;
            background: $block-cursor-background;
            text-style: bold;
        }
        .tabbar--title { color: $text-muted; }
    }
    """

    def __init__(self, tabs: Sequence[tuple[str, str, str]], active: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tabs = list(tabs)  # (id, key, title)
        self.active = active
        self.title = ""
        self._spans: list[tuple[int, int, str]] = []

    def show(self, tab: str) -> None:
        if tab != self.active:
            self.active = tab
            self.refresh()

    def set_title(self, tab: str, title: str) -> None:
        """Rename tab ``tab`` ("Anomalies (10)")."""
        self.tabs = [(t, k, title if t == tab else old) for t, k, old in self.tabs]
        self.refresh()

    def set_heading(self, text: str) -> None:
        self.title = text
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        style = self.get_component_rich_style
        segments: list[Segment] = []
        self._spans = []
        x = 0
        for tab, key, title in self.tabs:
            name = "tabbar--active" if tab == self.active else "tabbar--tab"
            piece = f" {key} {title} "
            segments.append(Segment(piece, base + style(name)))
            self._spans.append((x, x + len(piece), tab))
            x += len(piece)
        heading = f"  {self.title} " if self.title else ""
        room = width - x
        if heading and room > 4:
            if len(heading) > room:
                heading = heading[: room - 1] + "…"
            segments.append(Segment(heading.rjust(room), base + style("tabbar--title")))
        strip = Strip(segments)
        if strip.cell_length > width > 1:
            cut = list(strip.crop(0, width - 1))
            return Strip([*cut, Segment("…", base)], width)
        return strip.extend_cell_length(width, base)

    def on_click(self, event: events.Click) -> None:
        for start, end, tab in self._spans:
            if start <= event.x < end:
                self.post_message(self.Picked(tab))
                return

    class Picked(Message):
        """A tab was clicked."""

        def __init__(self, tab: str) -> None:
            super().__init__()
            self.tab = tab


class KeyBar(Widget):
    """The main keys on one line (key, then what it does), drawn once: Textual's ``Footer``
    rebuilds a widget per key whenever the focus moves, which cost a tab switch ~60 ms. A
    click on a key runs its action on the screen. Cut at the right edge with an ellipsis."""

    COMPONENT_CLASSES = {"keybar--key", "keybar--description"}
    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        background: $footer-background;
        .keybar--key { color: $footer-key-foreground; text-style: bold; }
        .keybar--description { color: $footer-description-foreground; }
    }
    """

    def __init__(self, keys: Sequence[tuple[str, str, str]], **kwargs) -> None:
        super().__init__(**kwargs)
        self.keys = tuple(keys)  # (key as shown, what it does, action)
        self._spans: list[tuple[int, int, str]] = []  # cells [start, end) -> action

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        key_style = self.get_component_rich_style("keybar--key")
        text_style = self.get_component_rich_style("keybar--description")
        base = self.rich_style
        segments: list[Segment] = []
        self._spans = []
        x = 0
        for shown, what, action in self.keys:
            piece = [
                Segment(f" {shown} ", base + key_style),
                Segment(f"{what} ", base + text_style),
            ]
            cells = len(shown) + 2 + len(what) + 1
            self._spans.append((x, x + cells, action))
            segments += piece
            x += cells
        strip = Strip(segments)
        if strip.cell_length > width > 1:
            cut = list(strip.crop(0, width - 1))
            return Strip([*cut, Segment("…", base + text_style)], width)
        return strip.extend_cell_length(width, base)

    async def on_click(self, event: events.Click) -> None:
        for start, end, action in self._spans:
            if start <= event.x < end:
                await self.screen.run_action(action)
                return
