"""The inspector's overview (the triage report first, every line with an address one Enter away,
through the history) and its contexts (the tree saying what each is, ``x`` to switch, the
history keeping the context).

Expected values come from the model (``triage``, ``contexts``, ``LevelTree``) opened
independently of the app.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from tui_pilot import (
    DRIVER,
    FAULTS,
    MINIMAL,
    SAMPLES,
    USER_CONTEXTS,
    all_rows,
    drive,
    model,
    status,
    text_of,
    wait_main,
    wait_until,
)

from dumpview.model import DumpError
from dumpview.model.contexts import contexts
from dumpview.model.levels import EntryRow, LevelTree
from dumpview.model.triage import triage
from dumpview.model.triage_text import SECTION_LABELS
from dumpview.tui import main as main_module
from dumpview.tui.app import MainScreen
from dumpview.tui.bars import TabBar
from dumpview.tui.modals import ContextsScreen
from dumpview.tui.tree import LevelsTree
from dumpview.tui.widgets import RowList

SMMU = SAMPLES / "smmu-lpae4k.dump"
WIDE = (250, 60)  # no line of the sample reports wraps at this width


async def reported(pilot: Pilot) -> MainScreen:
    screen = await wait_main(pilot)
    await wait_until(pilot, lambda: screen.triage is not None, "the triage report")
    return screen


def overview_rows(screen: MainScreen) -> list[str]:
    return all_rows(screen.query_one("#overview-list", RowList))


def row_of(screen: MainScreen, start: str) -> int:
    rows = overview_rows(screen)
    return next(i for i, text in enumerate(rows) if text.startswith(start))


async def enter_on(pilot: Pilot, screen: MainScreen, row: int) -> None:
    overview = screen.query_one("#overview-list", RowList)
    overview.focus()
    overview.cursor = row
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def where(screen: MainScreen) -> tuple:
    entries = screen.query_one("#entries", RowList)
    return screen.tab, screen.table, entries.cursor


# ---- the report first ----------------------------------------------------------------------


def test_a_dump_with_a_crash_log_opens_on_its_triage_report() -> None:
    with model(FAULTS) as dump:
        lines = dump.triage().lines()

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        assert screen.tab == "overview"
        assert pilot.app.focused is screen.query_one("#overview-list", RowList)
        assert screen.query_one(TabBar).tabs[0][:2] == ("overview", "0")
        rows = overview_rows(screen)
        assert len(rows) == len(lines)
        previous = None
        for row, line in zip(rows, lines, strict=True):
            label = SECTION_LABELS[line.section] if line.section != previous else ""
            previous = line.section
            mark = "› " if line.location is not None else "  "
            assert row == f"{mark}{label:<10}  {line.text}"
        assert "DISAGREE" in rows[row_of(screen, "›             ESR says")]
        title = text_of(screen.query_one("#overview-title"))
        assert title.startswith("triage: what most likely happened")

    drive(FAULTS, body, size=WIDE)


def test_at_100_columns_a_long_line_wraps_and_every_piece_goes_to_the_same_place() -> None:
    with model(FAULTS) as dump:
        lines = dump.triage().lines()

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        rows = overview_rows(screen)
        overview = screen.query_one("#overview-list", RowList)
        width = overview.scrollable_content_region.width
        assert len(rows) > len(lines), "some lines wrap at 100 columns"
        assert all(len(row) <= width for row in rows), (width, max(map(len, rows)))
        firsts = [i for i, row in enumerate(rows) if not row.startswith(" " * 14)]
        assert len(firsts) == len(lines)  # each line starts a row; the rest continue it
        view = screen.query_one("OverviewView")
        for n, start in enumerate(firsts):
            end = firsts[n + 1] if n + 1 < len(firsts) else len(rows)
            joined = " ".join(rows[i][12:].strip() for i in range(start, end))
            assert joined == lines[n].text
            assert all(view.target_at(i) is view.target_at(start) for i in range(start, end))

    drive(FAULTS, body, size=(100, 30))


def test_enter_on_the_fault_verdict_goes_to_the_stopping_entry_and_back_returns() -> None:
    with model(FAULTS) as dump:
        report = dump.triage()
        stop = report.far_walk.stop_entry
        tree = LevelTree(dump)
        far = report.far_walk.walk.va
        table, index = tree.path_to(far)[-1]

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        row = row_of(screen, "›             ESR says")
        await enter_on(pilot, screen, row)
        assert screen.tab == "tables" and screen.table == table
        assert (table.level, table.pa, index) == (stop.level, stop.table_pa, stop.index)
        entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
        assert entry.index == stop.index and entry.value == stop.value
        assert f"VA {far:#x} is not mapped: the walk stopped at L{stop.level}" in status(screen)
        arrived = where(screen)
        await pilot.press("left_square_bracket")
        assert screen.tab == "overview"
        assert screen.query_one("#overview-list", RowList).cursor == row
        assert pilot.app.focused is screen.query_one("#overview-list", RowList)
        assert status(screen).startswith("back to overview tab, row")
        await pilot.press("right_square_bracket")
        assert where(screen) == arrived

    drive(FAULTS, body)


def test_enter_on_each_anomaly_line_goes_to_the_first_finding_of_its_kind() -> None:
    with model(FAULTS) as dump:
        report = dump.triage()
        dumped = LevelTree(dump).dumped_context
    assert len(report.anomalies) >= 8

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        for counted in report.anomalies:
            finding = counted.first
            row = next(
                i
                for i, text in enumerate(overview_rows(screen))
                if text.endswith(f"  {counted.count} {counted.kind}, first at {finding.va:#x}")
            )
            await enter_on(pilot, screen, row)
            assert screen.tab == "tables", counted.kind
            assert screen.table.context == (dumped if finding.context is None else finding.context)
            entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
            assert isinstance(entry, EntryRow)
            assert entry.va <= finding.va < entry.va + entry.span_bytes, counted.kind
            assert status(screen) == f"{finding.kind}: {finding.message}"
            await pilot.press("left_square_bracket")
            assert screen.tab == "overview"

    drive(FAULTS, body, size=WIDE)


def test_a_users_fault_goes_to_its_context_and_a_context_line_browses_that_context() -> None:
    with model(USER_CONTEXTS) as dump:
        report = dump.triage()
        infos = contexts(dump)
        roots = LevelTree(dump).roots
    far_walk = report.far_walk
    assert far_walk.context == 1 and not far_walk.walk.mapped

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        await enter_on(pilot, screen, row_of(screen, f"›             1:{far_walk.walk.va:#x}"))
        table = screen.table
        assert table.context == 1
        assert table.va_start <= far_walk.walk.va < table.va_start + table.va_size_bytes
        await pilot.press("left_square_bracket")
        for info in infos[1:]:
            await enter_on(pilot, screen, row_of(screen, f"›             {info.context} tables"))
            assert screen.table == roots[info.context]
            assert screen.query_one(LevelsTree).cursor_node.data == roots[info.context]
            assert status(screen) == (
                f"context {info.context}: ASID {info.asid}, TTB {info.ttb_pa:#x} owned (the "
                "driver allocated it), tables only (its pages are not in the dump)"
            )
            await pilot.press("left_square_bracket")
            assert screen.tab == "overview"

    drive(USER_CONTEXTS, body, size=WIDE)


def test_a_dump_without_a_crash_log_opens_on_the_tables_with_the_report_one_key_away() -> None:
    with model(SMMU) as dump:
        assert not dump.crashlogs
        lines = dump.triage().lines()

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        assert screen.tab == "tables"
        assert pilot.app.focused is screen.query_one("#entries", RowList)
        await pilot.press("0")
        assert screen.tab == "overview"
        assert text_of(screen.query_one("#overview-title")).startswith("triage: no crash log")
        rows = overview_rows(screen)
        assert [row[14:] for row in rows] == [line.text for line in lines]
        assert any("no crash log" in row for row in rows)

    drive(SMMU, body, size=WIDE)


def test_the_report_is_made_from_the_one_check_the_inspector_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for path in (FAULTS, USER_CONTEXTS, MINIMAL):
        with model(path) as dump:
            assert triage(dump, dump.check()).to_dict() == triage(dump).to_dict()

    def no_second_check(*args, **kwargs):
        raise AssertionError("triage ran check again")

    monkeypatch.setattr("dumpview.model.triage.check", no_second_check)

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        assert screen.triage.anomaly_total == len(screen.check_result.anomalies)

    drive(FAULTS, body)


def test_a_report_that_cannot_be_made_says_why_and_the_rest_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(dump, checked=None):
        raise DumpError(f"{dump.path}: crash log: bad tag at offset 0x40")

    monkeypatch.setattr(main_module, "triage", broken)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        overview = screen.query_one("#overview-list", RowList)
        await wait_until(pilot, lambda: "bad tag" in all_rows(overview)[0], "the report's error")
        assert text_of(screen.query_one("#overview-title")) == "triage: no report"
        await wait_until(pilot, lambda: screen.range_table is not None, "the ranges")
        await pilot.press("1")
        assert screen.table is not None and isinstance(pilot.app.screen, MainScreen)

    drive(MINIMAL, body)


# ---- contexts ------------------------------------------------------------------------------


def test_x_lists_the_contexts_and_enter_browses_one_through_the_history() -> None:
    with model(USER_CONTEXTS) as dump:
        infos = contexts(dump)
        roots = LevelTree(dump).roots
    assert [c.context for c in infos] == [0, 1, 2]

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        await pilot.press("1")
        assert screen.table.context == 0
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ContextsScreen), "contexts")
        listing = pilot.app.screen.query_one("#context-list", RowList)
        rows = all_rows(listing)
        assert len(rows) == len(infos) and listing.cursor == 0
        for row, info in zip(rows, infos, strict=True):
            owner = "owned" if info.ttb_owned else "borrowed"
            assert row.startswith(("● " if info.context == 0 else "  ") + f"ctx {info.context} ")
            assert f"ASID {info.asid} " in row and f"TTB {info.ttb_pa:#x} {owner}" in row
            if info.dumped:
                assert (
                    f"dumped: {info.pages_mapped:,} pages, {info.pages_dumped:,} with data" in row
                )
            else:
                assert f"tables only: {info.pages_mapped:,} pages mapped, none dumped" in row
            assert f"VA {info.va_start:#x}-{info.va_end - 1:#x}" in row
        await pilot.press("down", "down", "enter")
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the list to close")
        assert screen.tab == "tables" and screen.table == roots[2]
        assert pilot.app.focused is screen.query_one("#entries", RowList)
        assert screen.query_one(LevelsTree).cursor_node.data == roots[2]
        assert status(screen).startswith("context 2: ASID 2, TTB ")
        assert screen.history._back[-1].context == 0  # where it left from, context included
        await pilot.press("left_square_bracket")
        assert screen.table == roots[0]
        assert status(screen).startswith("back to L1 table (context 0)")
        await pilot.press("right_square_bracket")
        assert screen.table == roots[2]
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ContextsScreen), "contexts")
        listing = pilot.app.screen.query_one("#context-list", RowList)
        assert listing.cursor == 2 and all_rows(listing)[2].startswith("● ctx 2 ")
        await pilot.press("escape")
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the list to close")
        assert screen.table == roots[2]

    drive(USER_CONTEXTS, body)


def test_a_driver_dump_has_one_context_whose_ttb_it_does_not_record() -> None:
    with model(DRIVER) as dump:
        (info,) = contexts(dump)
    assert info.ttb_pa is None

    async def body(pilot: Pilot) -> None:
        screen = await reported(pilot)
        await pilot.press("1")
        (node,) = screen.query_one(LevelsTree).root.children
        assert node.label == "ctx 0 dumped ASID 0"
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ContextsScreen), "contexts")
        (row,) = all_rows(pilot.app.screen.query_one("#context-list", RowList))
        assert "TTB not recorded (driver dump)" in row and f"{info.pages_mapped:,} pages" in row

    drive(DRIVER, body)
