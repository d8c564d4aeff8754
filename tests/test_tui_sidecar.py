"""The inspector and the bookmarks sidecar: read in the loader's thread worker (never on the UI
thread), only when it is a small regular file; anything else (a FIFO that would block, a link
to a device, a link to another file) is one line in the status bar, and ``b`` (then Enter on
its note prompt) keeps the bookmark for the session without writing anywhere.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_pilot import MINIMAL, copy_sample, drive, modal, status, wait_main, wait_until

from dumpview.model import bookmarks as bookmarks_module
from dumpview.model.bookmarks import sidecar_path
from dumpview.tui.modals import NoteScreen


def test_the_sidecar_is_read_off_the_ui_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump_path = copy_sample(MINIMAL, tmp_path)
    readers: list[threading.Thread] = []
    real = bookmarks_module.read_sidecar

    def recording(path, limit=bookmarks_module.MAX_SIDECAR_BYTES):
        readers.append(threading.current_thread())
        return real(path, limit)

    monkeypatch.setattr(bookmarks_module, "read_sidecar", recording)

    async def body(pilot: Pilot) -> None:
        await wait_main(pilot)

    drive(dump_path, body)
    assert readers and all(t is not threading.main_thread() for t in readers)


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-device", "symlink-to-file"])
def test_a_planted_sidecar_is_one_status_line_and_never_written(tmp_path: Path, kind: str) -> None:
    dump_path = copy_sample(MINIMAL, tmp_path)
    sidecar = sidecar_path(dump_path)
    victim = tmp_path / "victim.json"
    victim.write_text("not yours\n")
    if kind == "fifo":
        os.mkfifo(sidecar)
    elif kind == "symlink-to-device":
        device = tmp_path / "zero"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 5))
        sidecar.symlink_to(device)
    else:
        sidecar.symlink_to(victim)
    before = os.lstat(sidecar)

    async def body(pilot: Pilot) -> None:
        started = time.monotonic()
        screen = await wait_main(pilot)
        assert time.monotonic() - started < 10  # a FIFO did not hang the loader
        text = status(screen)
        assert "\n" not in text and "bookmarks file" in text and "kept for this session" in text
        await pilot.press("1")  # an entry of the tables to bookmark
        await modal(pilot, "b", NoteScreen)  # the note prompt; Enter keeps it without one
        await pilot.press("enter")
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the note prompt closed")
        assert status(screen).startswith("bookmark kept for this session only: ")
        assert "refusing" in status(screen)
        assert len(screen.bookmarks.items) == 1

    drive(dump_path, body)
    after = os.lstat(sidecar)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert victim.read_text() == "not yours\n"
