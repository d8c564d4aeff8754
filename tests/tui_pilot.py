"""Pilot helpers shared by the inspector's tests: run the app headless on a sample, wait for
screens and answers, press keys as a person does, read what the panes show.

Expected values in the tests come from the model opened independently of the app
(``model(path)``), never from what the app itself displays.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static

from dumpview.model import Dump, open_dump
from dumpview.tui.app import DumpviewApp, ErrorScreen, GotoScreen, MainScreen, SearchScreen
from dumpview.tui.widgets import RowList

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MINIMAL = SAMPLES / "minimal.dump"
FAULTS = SAMPLES / "faults.dump"
DRIVER = SAMPLES / "minimal-driver.dump"
USER_CONTEXTS = SAMPLES / "user-contexts.dump"
SIZE = (160, 48)
SNAP_SIZE = (140, 40)
WAIT_STEP = 0.05
WAIT_STEPS = 200  # 10 s: far beyond the ~0.5 s a sample takes to open
HEX_ROW = re.compile(r"^([0-9a-f]{16})  ([0-9a-f ]+?)  \|")


# ---- helpers -----------------------------------------------------------------------------------


def drive(path: str | Path, body: Callable[[Pilot], Awaitable[None]], size=SIZE) -> DumpviewApp:
    """Run the app on ``path`` headless, ``body(pilot)`` inside; return the app when it is done."""

    async def main() -> DumpviewApp:
        app = DumpviewApp(path)
        async with app.run_test(size=size) as pilot:
            await body(pilot)
        return app

    return asyncio.run(main())


async def wait_until(pilot: Pilot, ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` between short pauses, up to a bound (then fail naming ``what``)."""
    for _ in range(WAIT_STEPS):
        if ready():
            await pilot.pause()
            return
        await pilot.pause(WAIT_STEP)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_main(pilot: Pilot) -> MainScreen:
    """The main screen, once it is mounted and has drawn its first table and status."""
    app = pilot.app

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, MainScreen)
            and screen.is_mounted
            and screen.table is not None
            and bool(status(screen))
        )

    await wait_until(pilot, ready, "the main screen")
    return app.screen


async def wait_error(pilot: Pilot) -> ErrorScreen:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ErrorScreen), "the error screen")
    return pilot.app.screen


def text_of(widget: Static) -> str:
    """What a Static/Label shows (markup resolved), as plain text."""
    return str(widget.visual)


def status(screen: MainScreen) -> str:
    return text_of(screen.query_one("#status", Static))


def row_text(rowlist: RowList, index: int) -> str:
    return "".join(piece for piece, _ in rowlist.source.row(index))


def all_rows(rowlist: RowList) -> list[str]:
    return [row_text(rowlist, i) for i in range(len(rowlist.source))]


async def modal(pilot: Pilot, key: str, kind: type) -> None:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), kind.__name__)


async def fill_in(pilot: Pilot, entry: Input, text: str, typed: bool) -> None:
    """Put ``text`` in the focused ``entry`` (key by key when ``typed``: ~60 ms a key), Enter."""
    assert pilot.app.focused is entry
    if typed:
        entry.value = ""
        await pilot.press(*text)
        assert entry.value == text
    else:
        entry.value = text
    await pilot.press("enter")


# Put in the status line before a prompt's Enter: whatever the app reports replaces it, so
# waiting for it to go away waits for the prompt's callback (and the search worker) to have run.
PENDING = "(test: waiting for the app to answer)"


async def answered(pilot: Pilot, screen: MainScreen, what: str) -> None:
    def done() -> bool:
        text = status(screen)
        return pilot.app.screen is screen and text != PENDING and not text.startswith("searching")

    await wait_until(pilot, done, what)


async def go_to(pilot: Pilot, text: str, typed: bool = False) -> None:
    """g, ``text``, Enter: as a person does it; returns once the app has answered."""
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    await modal(pilot, "g", GotoScreen)
    screen.status(PENDING)
    await fill_in(pilot, pilot.app.screen.query_one("#goto-input", Input), text, typed)
    await answered(pilot, screen, f"go to {text!r}")


async def run_search(pilot: Pilot, screen: MainScreen, text: str, typed: bool = False) -> None:
    """/, ``text`` as one line ("quoted text", hex bytes, u32:/u64:), Enter; returns once the
    search worker has reported."""
    await modal(pilot, "slash", SearchScreen)
    prompt = pilot.app.screen
    screen.status(PENDING)
    await fill_in(pilot, prompt.query_one("#search-input", Input), text, typed)
    await answered(pilot, screen, f"the search for {text!r}")


def page_rows(screen: MainScreen) -> list[tuple[int, bytes]]:
    """(VA, bytes) of every hex row of the page view (u8 units)."""
    out = []
    for line in all_rows(screen.query_one("#page", RowList)):
        m = HEX_ROW.match(line)
        assert m, f"not a hex row: {line!r}"
        out.append((int(m.group(1), 16), bytes.fromhex(m.group(2))))
    return out


@contextmanager
def model(path: Path) -> Iterator[Dump]:
    with open_dump(path) as dump:
        yield dump


def first_page(dump: Dump, dumped: bool = True):
    return next(p for p in dump.pages() if p.dumped == dumped)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_sample(sample: Path, tmp_path: Path) -> Path:
    dest = tmp_path / sample.name
    shutil.copyfile(sample, dest)
    return dest
