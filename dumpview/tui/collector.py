"""Python's full garbage collections, kept off the keys.

Once the screen settles, the main screen freezes (``settle``: ``gc.freeze``) what the open
dump's session holds, so that a full collection does not scan it. What the session makes afterwards
(Textual's caches of drawn lines, the rows of the tabs visited) is not frozen, and CPython runs
a full collection every ten middle ones whenever the long-lived objects it can see grew by a
quarter: after a freeze that is almost always, and each scanned everything made since the
freeze (30-75 ms on the 1M-segment dump, landing on whatever key was being pressed). Here:

- after every full collection its survivors are frozen as well (scheduled on the app's loop
  right after the collection, whichever thread ran it), so the next one scans only what was
  made since the last;
- a frozen object that later becomes cyclic garbage would never be freed: when no input came
  for ``IDLE_S`` and the last deep collection is ``DEEP_EVERY_S`` old, everything is thawed,
  collected and frozen again while nobody waits.

``stop()`` (the app's unmount) removes the callback and thaws everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

IDLE_S = 0.5  # no key or mouse event for this long: the app is idle
DEEP_EVERY_S = 60.0  # at most one deep (thawed) collection this often


class Collector:
    """Freezes the survivors of each full collection; deep collections at idle moments."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._last_input = time.monotonic()
        self._last_deep = time.monotonic()
        self._running = False
        self.deep_collections = 0  # how many ran (the tests read it)

    def start(self) -> None:
        if not self._running:
            gc.callbacks.append(self._after_collection)
            self._running = True

    def stop(self) -> None:
        """Remove the callback and thaw everything (frozen objects are never collected)."""
        if self._running:
            gc.callbacks.remove(self._after_collection)
            self._running = False
        gc.unfreeze()

    def settle(self) -> None:
        """Collect and freeze now: what exists lives as long as the dump is open (the main
        screen calls it once the first screen is drawn, and when check and ranges land).
        Full collections scanned it all (160K objects: up to 160 ms, on whatever key came)."""
        gc.collect()  # its callback schedules a freeze as well: freezing twice is harmless
        gc.freeze()

    def note_input(self) -> None:
        """A key or mouse event came: the app is not idle."""
        self._last_input = time.monotonic()

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            # Not here: the collection is still ending (and may run on a worker thread).
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to freeze
                self._loop.call_soon_threadsafe(gc.freeze)

    def idle_tick(self) -> bool:
        """Run a deep collection when the app is idle and the last one is old enough (from
        the app's timer); True when one ran."""
        now = time.monotonic()
        if now - self._last_input < IDLE_S or now - self._last_deep < DEEP_EVERY_S:
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._last_deep = time.monotonic()
        self.deep_collections += 1
        return True
