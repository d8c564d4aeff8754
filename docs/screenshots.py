"""Regenerate README's screenshots (Textual SVG export) from the bundled samples.

    .venv/bin/python docs/screenshots.py

Writes docs/screenshots/*.svg from samples/faults.dump at 160x44: the overview (the triage
report, the first screen), the tables view with the page focused (byte cursor and data
inspector), a page that is not dumped, the anomalies, the memory map and the crash log; the
tables view at 100x30; and the context list of samples/user-contexts.dump.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from dumpview.tui.app import DumpviewApp, MainScreen

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
SIZE = (160, 44)
NARROW = (100, 30)


async def shoot(size: tuple[int, int], shots: list[str], path: str = "samples/faults.dump") -> None:
    app = DumpviewApp(path)
    async with app.run_test(size=size) as pilot:
        while not isinstance(app.screen, MainScreen) or app.screen.range_table is None:
            await pilot.pause(0.05)  # check, the triage report and the ranges are in

        async def goto(va: str) -> None:
            await pilot.press("g", *va, "enter")
            await pilot.pause(0.2)

        async def save(name: str) -> None:
            await pilot.pause(0.2)
            app.save_screenshot(name, str(OUT))

        for shot in shots:
            if shot == "overview":  # the first screen of a dump with a crash log
                await pilot.press("0")
                await save("overview.svg")
            elif shot == "contexts":
                await pilot.press("1", "x")
                await save("contexts.svg")
                await pilot.press("escape")
            elif shot.startswith("tables"):
                await pilot.press("1")
                await goto("0xffffffa000000048")
                await pilot.press("tab", "tab")  # the page: its byte cursor and the inspector
                await save(f"{shot}.svg")
            elif shot == "not-dumped":
                await pilot.press("1")
                await goto("0xffffff8030000000")
                await save("not-dumped.svg")
            elif shot == "anomalies":
                await pilot.press("6")
                await save("anomalies.svg")
            elif shot == "memory-map":
                await pilot.press("2")
                await save("memory-map.svg")
            elif shot == "crash-log":
                await pilot.press("4")
                await save("crash-log.svg")


async def main() -> None:
    os.chdir(ROOT)  # the dump path shown in the app stays "samples/faults.dump"
    OUT.mkdir(exist_ok=True)
    await shoot(SIZE, ["overview", "tables", "not-dumped", "anomalies", "memory-map", "crash-log"])
    await shoot(NARROW, ["tables-100x30"])
    await shoot(SIZE, ["contexts"], "samples/user-contexts.dump")


if __name__ == "__main__":
    asyncio.run(main())
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.svg')))} in {OUT}")
