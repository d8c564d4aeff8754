"""TUI benchmark: first screen and CPU per key press on the 1M-segment dump, with a peer.

Run on demand (not part of the test suite):

    .venv/bin/python tests/bench/bench_tui.py [--runs 5] [--dump PATH]

It uses (and builds when missing, with the generator) the 1,048,592-segment driver dump of
bench_trunk.py under tests/bench/out/. Measured through Textual's Pilot, headless, 160x48:

- indexing (the loader thread: open, validate 1M program headers, level tree) and the first
  screen after indexing (main screen built and drawn, on the Overview: the dump has a crash
  log; target <= 0.5 s); then, from the first screen, the triage report on the Overview
  ("report": check and triage in the background worker) and the whole background work
  ("background": ranges too), which the key presses wait for;
- CPU time (process time, all threads) per key press, for the keys a person uses: cursor
  moves in the overview and Enter on its FAR line (and back), moves and pages in the entries,
  go to a VA, the page's byte cursor, back and forward, tab switches, the anomalies tab, page
  units, opening and closing the bookmarks list, the help and the context list (targets:
  <= 30 ms a key, <= 50 ms a tab switch or a modal opening or closing), against an unbound
  key (``z``: Textual's own floor);
- the peak RSS of the whole session (target <= 250 MB), background ranges and check included;
- the peer, in the same run: loading the same leaf table's 2048 rows into Textual's
  ``DataTable`` versus pointing our Line-API ``RowList`` at them.

Prints medians over ``--runs`` app sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DUMP_1M = OUT / "1m-driver.dump"
SIZE = (160, 48)


def build_1m() -> None:
    if DUMP_1M.exists():
        return
    OUT.mkdir(exist_ok=True)
    print(f"building {DUMP_1M.name} (about 15 s)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "dumpview.cli", "generate", "--scenario", "large",
         "--mapped-mib", "16384", "--scatter", "--dumped-percent", "2", "--driver-layout",
         "-o", str(DUMP_1M)],
        check=True,
    )  # fmt: skip


async def wait_main(app, pilot) -> None:
    from dumpview.tui.app import MainScreen

    for _ in range(2000):
        if isinstance(app.screen, MainScreen) and "first_screen" in app.timings:
            return
        await pilot.pause(0.005)
    raise SystemExit("the main screen did not come up")


async def timed_keys(pilot, keys: list[str]) -> float:
    """CPU seconds for pressing ``keys`` and letting the screen settle, per key."""
    await pilot.pause()
    start = time.process_time()
    for key in keys:
        await pilot.press(key)
    await pilot.pause()
    return (time.process_time() - start) / len(keys)


async def session(path: Path) -> dict[str, float]:
    from dumpview.tui.app import DumpviewApp, MainScreen
    from dumpview.tui.hexview import HexView

    app = DumpviewApp(path)
    out: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        await wait_main(app, pilot)
        out["index"] = app.timings["index"]
        out["first_screen"] = app.timings["first_screen"]
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert screen.tab == "overview", "a dump with a crash log opens on the overview"
        drawn = time.perf_counter()
        for _ in range(3000):  # the background work: check, the triage report, then ranges
            if screen.triage is not None and "report" not in out:
                out["report"] = time.perf_counter() - drawn
            if screen.range_table is not None:
                break
            await pilot.pause(0.01)
        out["background"] = time.perf_counter() - drawn
        out["report"] = out.get("report", out["background"])
        # The overview comes first: down its lines, Enter on the FAR's line and back.
        out["key: overview down"] = await timed_keys(pilot, ["down"] * 3)
        # Enter on the FAR's line shows it on the Tables tab, back returns: tab switches.
        out["tab: overview enter (the FAR on the tables) / back"] = await timed_keys(
            pilot, ["enter", "left_square_bracket"] * 3
        )
        await pilot.press("1")  # what follows moves on the Tables tab
        # Into the busiest leaf table: go to a VA in the GEM range, then move around.
        va = int(app.dump.seg_va[len(app.dump.seg_va) // 2])
        start = time.process_time()
        await pilot.press("g")
        await pilot.press(*f"{va + 0x48:#x}", "enter")
        await pilot.pause()
        out["key: go to (g, 18 chars, enter) per key"] = (time.process_time() - start) / 21
        out["key: z (unbound: Textual's own floor)"] = await timed_keys(pilot, ["z"] * 20)
        out["key: down"] = await timed_keys(pilot, ["down"] * 20)
        out["key: pagedown"] = await timed_keys(pilot, ["pagedown"] * 5)
        out["key: end/home"] = await timed_keys(pilot, ["end", "home"])
        out["key: u (units)"] = await timed_keys(pilot, ["u"] * 4)
        out["key: back/forward ([ ])"] = await timed_keys(
            pilot, ["left_square_bracket", "right_square_bracket"] * 3
        )
        screen.query_one(HexView).focus()
        await pilot.pause()
        out["key: page byte cursor (right)"] = await timed_keys(pilot, ["right"] * 20)
        out["key: page row (down)"] = await timed_keys(pilot, ["down"] * 20)
        out["tab: switch 0-6"] = await timed_keys(pilot, ["2", "3", "4", "5", "6", "0", "1"])
        out["tab: anomalies (6)"] = await timed_keys(pilot, ["6", "1"] * 2)
        await pilot.press("6")
        out["key: anomalies down"] = await timed_keys(pilot, ["down"] * 20)
        await pilot.press("3")
        out["key: ranges pagedown"] = await timed_keys(pilot, ["pagedown"] * 5)
        out["key: ranges down"] = await timed_keys(pilot, ["down"] * 20)
        await pilot.press("1")
        out["modal: B (open)"] = await timed_keys(pilot, ["B"])
        out["modal: escape (close)"] = await timed_keys(pilot, ["escape"])
        out["modal: ? (open)"] = await timed_keys(pilot, ["question_mark"])
        out["modal: escape (close help)"] = await timed_keys(pilot, ["escape"])
        out["modal: x (contexts, open)"] = await timed_keys(pilot, ["x"])
        out["modal: escape (close contexts)"] = await timed_keys(pilot, ["escape"])
    return out


async def peer(path: Path) -> dict[str, float]:
    """DataTable vs RowList on the same 2048 entry rows of one leaf table."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from dumpview.model import open_dump
    from dumpview.model.levels import LevelTree
    from dumpview.tui import sources
    from dumpview.tui.widgets import RowList

    dump = open_dump(path)
    tree = LevelTree(dump)
    va = int(dump.seg_va[len(dump.seg_va) // 2])
    table, _ = tree.path_to(va)[-1]
    rows = tree.rows(table)
    texts = ["".join(p for p, _ in sources.entry_row(rows.entry(i))) for i in range(2048)]

    class Peer(App):
        def compose(self) -> ComposeResult:
            yield DataTable(id="dt")
            yield RowList(id="rl")

    out: dict[str, float] = {}
    app = Peer()
    async with app.run_test(size=SIZE) as pilot:
        dt = app.query_one(DataTable)
        dt.add_columns("idx", "va", "entry")
        await pilot.pause()
        start = time.process_time()
        dt.add_rows([(str(i), f"{va:#x}", text) for i, text in enumerate(texts)])
        await pilot.pause()
        out["DataTable 2048 rows"] = time.process_time() - start
        rl = app.query_one(RowList)
        fresh = LevelTree(dump).rows(table)  # no cached rows: the full cost of ours
        start = time.process_time()
        rl.set_source(sources.entries_source(fresh))
        await pilot.pause()
        out["RowList 2048 rows"] = time.process_time() - start
    dump.close()
    return out


def target_of(key: str) -> str:
    """The target for a metric: a key press 30 ms, a tab switch or a modal 50 ms."""
    return "<= 50 ms" if key.startswith(("tab: ", "modal: ")) else "<= 30 ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dump", type=Path, default=DUMP_1M)
    parser.add_argument("--json", action="store_true", help="one JSON object of medians")
    args = parser.parse_args()
    if args.dump == DUMP_1M:
        build_1m()
    if args.json:
        runs = [asyncio.run(session(args.dump))]
        # The app's own peak: one session, before later sessions and the peer add garbage.
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs += [asyncio.run(session(args.dump)) for _ in range(args.runs - 1)]
        peers = [asyncio.run(peer(args.dump)) for _ in range(args.runs)]
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        medians.update({key: statistics.median(p[key] for p in peers) for key in peers[0]})
        medians["peak_rss_mb"] = peak_rss_mb
        print(json.dumps(medians))
        return
    print(f"{platform.machine()}, Python {platform.python_version()}, dump {args.dump.name}")
    runs = [asyncio.run(session(args.dump))]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs += [asyncio.run(session(args.dump)) for _ in range(args.runs - 1)]
    peers = [asyncio.run(peer(args.dump)) for _ in range(args.runs)]
    title = f"metric (median of {args.runs} runs)"
    print(f"\n{title:<44} {'ours':>10} {'target':>10}")
    for key in runs[0]:
        value = statistics.median(r[key] for r in runs)
        worst = max(r[key] for r in runs)
        if key in ("index", "first_screen", "report", "background"):
            target = "<= 500 ms" if key == "first_screen" else ""
            print(f"{key:<44} {value * 1000:>8.0f} ms {target:>10}  (worst {worst * 1000:.0f})")
        else:
            print(f"CPU per {key:<36} {value * 1000:>8.1f} ms {target_of(key):>10}  "
                  f"(worst {worst * 1000:.1f})")  # fmt: skip
    print(f"peak RSS of the first session{'':<22} {peak_rss_mb:>8.1f} MB {'<= 250 MB':>10}")
    dt = statistics.median(p["DataTable 2048 rows"] for p in peers)
    rl = statistics.median(p["RowList 2048 rows"] for p in peers)
    print(f"\npeer: one leaf table's 2048 rows into DataTable {dt * 1000:.0f} ms CPU, "
          f"into our RowList {rl * 1000:.1f} ms CPU: ratio {rl / dt:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
