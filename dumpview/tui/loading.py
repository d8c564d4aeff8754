"""The screens around loading: progress while the dump opens, and the one-line reason when it
cannot be opened (quitting then exits with code 2)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, ProgressBar, Static

EXIT_BAD_INPUT = 2


def os_error_text(exc: OSError) -> str:
    """An OSError as one line: the file, then what is wrong (no "[Errno N]")."""
    text = exc.strerror or str(exc)
    return f"{exc.filename}: {text}" if exc.filename else text


class LoadingScreen(Screen):
    """Progress while the worker opens and indexes the dump (decompressing or reading a
    stream first, which can wait for a FIFO's writer: q, Escape or Ctrl+C quit at once)."""

    BINDINGS = [Binding("q,escape,ctrl+c", "app.quit", "Quit")]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="loading"):
            yield Label(f"opening {self.path}", id="loading-label", markup=False)
            yield ProgressBar(total=4, show_eta=False, id="loading-bar")

    def stage(self, step: float, text: str) -> None:
        self.query_one("#loading-label", Label).update(text)
        self.query_one("#loading-bar", ProgressBar).update(progress=step)


class ErrorScreen(Screen):
    """A dump that cannot be opened: the one-line reason; quitting exits with code 2."""

    BINDINGS = [Binding("q,escape,enter", "quit_error", "Quit")]

    def __init__(self, path: str, message: str) -> None:
        super().__init__()
        self.path = path
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error"):
            yield Label(f"dumpview cannot open {self.path}", id="error-title", markup=False)
            yield Static(self.message, id="error-message", markup=False)
            yield Label("press q to quit", id="error-hint")
        yield Footer()

    def action_quit_error(self) -> None:
        self.app.exit(return_code=EXIT_BAD_INPUT, message=f"dumpview: {self.path}: {self.message}")
