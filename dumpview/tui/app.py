"""The dumpview Textual app: opens the dump in a thread worker with progress, then shows the main
screen (or the error screen, after which the app exits with code 2).

The screens live in their own modules: ``loading`` (progress and errors), ``main`` (the
inspector), ``modals`` (prompts). They are re-exported here for callers that know the app only.
The bookmarks sidecar is read by the loader's thread worker, never on the UI thread.

Whatever ends the app ends it through Textual's own exit, which restores the terminal: q, a
SIGTERM, SIGHUP or SIGINT (``signal_exit`` says which; exit code 128 + signal), a model error
anywhere (a dump that changed on disk: its one line on the error screen, exit code 2) and an
unexpected exception in a worker (Textual's handling). The loader is cancellable: quitting
while a stream is read or decompressed stops it within a poll slice (``_quitting``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import threading
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual import events, work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import WorkerFailed

from dumpview.model import Dump, DumpError
from dumpview.model.bookmarks import Bookmarks
from dumpview.model.levels import LevelTree, open_for_browsing
from dumpview.model.source import OpenCancelled
from dumpview.output import STOP_SIGNALS
from dumpview.tui.collector import Collector
from dumpview.tui.keys import KEYS
from dumpview.tui.loading import EXIT_BAD_INPUT, ErrorScreen, LoadingScreen
from dumpview.tui.main import MainScreen
from dumpview.tui.modals import (
    BookmarksScreen,
    ConfirmScreen,
    GotoScreen,
    HelpScreen,
    NoteScreen,
    SearchScreen,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "BookmarksScreen",
    "ConfirmScreen",
    "DumpviewApp",
    "ErrorScreen",
    "GotoScreen",
    "HelpScreen",
    "LoadingScreen",
    "MainScreen",
    "NoteScreen",
    "SearchScreen",
]


MMAP_THRESHOLD_BYTES = 256 << 10
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_big_frees_to_the_os() -> bool:
    """Keep allocations above ``MMAP_THRESHOLD_BYTES`` in their own mappings (glibc only).

    The inspector's background work (check, ranges) makes numpy temporaries of megabytes on a
    million-segment dump. glibc raises its mmap threshold each time such a block is freed, so
    the next ones come from the heap and stay in the process after they are freed: the RSS of
    a session kept check's peak (~80 MB more) for good. A fixed threshold returns them to the
    system when freed. False (nothing changed) on another C library."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


class DumpviewApp(App[None]):
    """``DumpviewApp(path).run()``; ``return_code`` is 2 when the dump could not be opened."""

    CSS_PATH = "app.tcss"
    TITLE = "dumpview"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.animation_level = "none"  # a key press redraws once: no tab-underline animation
        return_big_frees_to_the_os()
        self.path = str(path)
        self.dump: Dump | None = None
        self.error: str | None = None
        # Seconds: "index" (the loader thread), "first_screen" (main screen built and drawn).
        self.timings: dict[str, float] = {}
        self.signal_exit: int | None = None  # the signal that ended the app, if one did
        self._signals: list[int] = []
        self._loaded_at = 0.0
        # Set when the app ends: the loader stops reading a stream within a poll slice, so
        # quitting never waits on a FIFO without a writer (the loader's thread is joined).
        self._quitting = threading.Event()
        self.collector: Collector | None = None  # full collections off the keys (on mount)

    _kept_theme: tuple[str, Theme] | None = None

    @property
    def current_theme(self) -> Theme:
        """Textual's, kept per theme name: Textual asks for it on every pseudo-class check
        (``:dark``), and each answer copied its dict of themes (~30 ms of a tab switch)."""
        name = self.theme
        kept = self._kept_theme
        if kept is None or kept[0] != name:
            kept = self._kept_theme = (name, super().current_theme)
        return kept[1]

    def on_mount(self) -> None:
        self.collector = Collector(asyncio.get_running_loop())
        self.collector.start()
        self.set_interval(1.0, self.collector.idle_tick)
        self._catch_stop_signals()
        self.push_screen(LoadingScreen(self.path))
        self._load()

    # -- ending cleanly, whatever ends it --

    def _catch_stop_signals(self) -> None:
        """SIGTERM, SIGHUP and SIGINT (from kill: the terminal's Ctrl+C is a key here) end the
        app through its normal exit, which restores the terminal (alternate screen off, mouse
        reporting off, modes back); ``signal_exit`` says which, for a one-line message and exit
        code 128 + signal."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._stop_by_signal, signum)
                self._signals.append(signum)

    def _stop_by_signal(self, signum: int) -> None:
        self.signal_exit = signum
        self.exit(return_code=128 + signum)

    def _handle_exception(self, error: Exception) -> None:
        """A model error anywhere (the UI thread or a worker), such as the dump changing on
        disk: its one line on the error screen, never a traceback; exit code 2 on quit. A
        worker's error comes wrapped in ``WorkerFailed`` (the background check, a search)."""
        if isinstance(error, WorkerFailed) and isinstance(error.error, DumpError):
            error = error.error
        if isinstance(error, DumpError):
            message = str(error)
            if self.dump is not None and message.startswith(f"{self.dump.path}: "):
                message = message[len(self.dump.path) + 2 :]
            self.error = message
            if isinstance(self.screen, ErrorScreen):
                return
            self.call_later(self.switch_screen, ErrorScreen(self.path, message))
            return
        super()._handle_exception(error)

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        def stage(step: float, text: str) -> None:
            if self._quitting.is_set():
                raise OpenCancelled(self.path)
            self.call_from_thread(self._stage, step, text)

        started = time.perf_counter()
        try:
            dump, tree = open_for_browsing(self.path, stage, cancel=self._quitting.is_set)
        except OpenCancelled:
            return
        except DumpError as exc:
            self.call_from_thread(self._failed, str(exc))
            return
        except OSError as exc:
            self.call_from_thread(self._failed, exc.strerror or str(exc))
            return
        # The bookmarks sidecar is read here, in the worker: a small regular file or nothing.
        bookmarks = Bookmarks.load(dump.path)
        self.timings["index"] = time.perf_counter() - started
        try:
            stage(4, "drawing")
            self.call_from_thread(self._loaded, dump, tree, bookmarks)
        except (OpenCancelled, RuntimeError):  # the app ended meanwhile
            dump.close()

    def _stage(self, step: float, text: str) -> None:
        if isinstance(self.screen, LoadingScreen):
            self.screen.stage(step, text)

    def _failed(self, message: str) -> None:
        self.error = message
        self.switch_screen(ErrorScreen(self.path, message))

    def _loaded(self, dump: Dump, tree: LevelTree, bookmarks: Bookmarks) -> None:
        self.dump = dump
        self._loaded_at = time.perf_counter()
        self.switch_screen(MainScreen(dump, tree, bookmarks))

    def first_screen_drawn(self) -> None:
        """Called by the main screen after its first refresh."""
        self.timings.setdefault("first_screen", time.perf_counter() - self._loaded_at)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, MainScreen):
            for key in KEYS:
                yield SystemCommand(
                    key.palette_title, key.help, partial(screen.run_action, key.action)
                )

    async def on_event(self, event: events.Event) -> None:
        if self.collector is not None and isinstance(event, (events.Key, events.MouseEvent)):
            self.collector.note_input()  # not idle: no deep collection now
        await super().on_event(event)

    def on_unmount(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        self._quitting.set()
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for signum in self._signals:
                loop.remove_signal_handler(signum)
        if self.dump is not None:
            self.dump.close()
