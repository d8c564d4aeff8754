"""Regenerate README's screenshots (Textual SVG export) from the bundled samples.

    .venv/bin/python docs/screenshots.py

Writes docs/screenshots/*.svg: the tables view on a dumped leaf, a page that is not dumped,
the memory map and the crash log of samples/faults.dump, at 150x42.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from dumpview.tui.app import DumpviewApp, MainScreen

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
SIZE = (150, 42)


async def shoot() -> None:
    os.chdir(ROOT)  # the dump path shown in the app stays "samples/faults.dump"
    OUT.mkdir(exist_ok=True)
    app = DumpviewApp("samples/faults.dump")
    async with app.run_test(size=SIZE) as pilot:
        while not isinstance(app.screen, MainScreen) or app.screen.range_table is None:
            await pilot.pause(0.05)

        async def goto(va: str) -> None:
            await pilot.press("g", *va, "enter")
            await pilot.pause(0.2)

        await goto("0xffffffa000000040")
        app.save_screenshot("tables.svg", str(OUT))
        await goto("0xffffff8030000000")
        app.save_screenshot("not-dumped.svg", str(OUT))
        await pilot.press("2")
        await pilot.pause(0.2)
        app.save_screenshot("memory-map.svg", str(OUT))
        await pilot.press("4")
        await pilot.pause(0.2)
        app.save_screenshot("crash-log.svg", str(OUT))


if __name__ == "__main__":
    asyncio.run(shoot())
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.svg')))} in {OUT}")
