"""The inspector's garbage-collection policy (``dumpview.tui.collector``): survivors of a full
collection are frozen right after it, deep collections run only when the app is idle, and
stopping thaws everything. Each test runs its own event loop and stops its collector."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest
from tui_pilot import MINIMAL, drive, wait_main

from dumpview.tui import collector as collector_module
from dumpview.tui.collector import Collector


class Node:
    """An object in a reference cycle (only the cycle collector frees it)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def thawed():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_right_after_it() -> None:
    async def run() -> None:
        collector = Collector(asyncio.get_running_loop())
        collector.start()
        try:
            kept = [Node() for _ in range(1000)]
            assert gc.get_freeze_count() == 0
            gc.collect()  # a full collection: the freeze is scheduled, not done inside it
            assert gc.get_freeze_count() == 0
            await asyncio.sleep(0)
            assert gc.get_freeze_count() >= len(kept)
            # a young collection freezes nothing
            gc.unfreeze()
            gc.collect(0)
            await asyncio.sleep(0)
            assert gc.get_freeze_count() == 0
        finally:
            collector.stop()
        assert gc.get_freeze_count() == 0  # stop thaws everything
        gc.collect()
        await asyncio.sleep(0)
        assert gc.get_freeze_count() == 0  # and no longer freezes

    asyncio.run(run())


def test_a_full_collection_on_a_worker_thread_freezes_on_the_loop() -> None:
    async def run() -> None:
        collector = Collector(asyncio.get_running_loop())
        collector.start()
        try:
            kept = [Node() for _ in range(500)]
            worker = threading.Thread(target=gc.collect)
            worker.start()
            worker.join()
            assert gc.get_freeze_count() == 0
            await asyncio.sleep(0.05)
            assert gc.get_freeze_count() >= len(kept)
        finally:
            collector.stop()

    asyncio.run(run())


def test_deep_collections_free_frozen_cycles_only_when_idle_and_due(monkeypatch) -> None:
    async def run() -> None:
        collector = Collector(asyncio.get_running_loop())
        collector.start()
        try:
            node = Node()
            ref = weakref.ref(node)
            gc.collect()
            await asyncio.sleep(0)
            assert gc.get_freeze_count() > 0
            del node  # cyclic garbage, frozen: no ordinary collection frees it
            gc.collect()
            await asyncio.sleep(0)
            assert ref() is not None
            assert not collector.idle_tick()  # the last deep collection is not old enough
            monkeypatch.setattr(collector_module, "DEEP_EVERY_S", 0.0)
            collector.note_input()
            assert not collector.idle_tick()  # input just came: not idle
            monkeypatch.setattr(collector_module, "IDLE_S", 0.0)
            assert collector.idle_tick()
            assert ref() is None  # thawed and collected
            assert gc.get_freeze_count() > 0  # and what lives is frozen again
            assert collector.deep_collections == 1
        finally:
            collector.stop()

    asyncio.run(run())


def test_the_app_stops_its_collector_when_it_ends() -> None:
    seen: dict[str, object] = {}

    async def body(pilot) -> None:
        await wait_main(pilot)
        app = pilot.app
        seen["collector"] = app.collector
        assert app.collector._after_collection in gc.callbacks

    drive(MINIMAL, body)
    kept = seen["collector"]
    assert isinstance(kept, Collector)
    assert kept._after_collection not in gc.callbacks
    assert gc.get_freeze_count() == 0


def test_settle_collects_cyclic_garbage_and_freezes_what_lives() -> None:
    async def run() -> None:
        collector = Collector(asyncio.get_running_loop())
        node = Node()
        ref = weakref.ref(node)
        del node
        kept = [Node() for _ in range(100)]
        collector.settle()
        assert ref() is None
        assert gc.get_freeze_count() >= len(kept)
        collector.stop()

    asyncio.run(run())
