"""The inspector's conclusions and lists: the anomalies view and the entries' marks, the colour
legend, the ranges filter and go-to inside the tab, memory-map regions, one-line search.

Expected values come from the model (``check``, ``ranges``, ``RangeFilter``, ``memory_map``,
``search``) opened independently of the app.
"""

from __future__ import annotations

from rich.style import Style
from textual.pilot import Pilot
from tui_pilot import (
    FAULTS,
    MINIMAL,
    SAMPLES,
    all_rows,
    drive,
    fill_in,
    modal,
    model,
    row_text,
    run_search,
    status,
    text_of,
    wait_main,
    wait_until,
)

from dumpview.model.anomalies import grouped
from dumpview.model.check import SEVERE_KINDS, SEVERITY
from dumpview.model.kinds import kinds_of
from dumpview.model.levels import LevelTree
from dumpview.model.memmap import first_mapping, memory_map
from dumpview.model.ranges import RangeFilter, ranges
from dumpview.model.search import search
from dumpview.tui.app import GotoScreen, HelpScreen, MainScreen, SearchScreen
from dumpview.tui.bars import TabBar
from dumpview.tui.hexview import HexView
from dumpview.tui.modals import FilterScreen
from dumpview.tui.overview import tone_class
from dumpview.tui.tabs import (
    FOLD_ABOVE,
    MINIMAP_PADDING,
    AnomaliesView,
    MemoryMapView,
    RangesView,
    minimap_text,
)
from dumpview.tui.widgets import RowList

SMMU = SAMPLES / "smmu-lpae4k.dump"


async def checked(pilot: Pilot) -> MainScreen:
    screen = await wait_main(pilot)
    await wait_until(pilot, lambda: screen.check_result is not None, "check to finish")
    return screen


# ---- anomalies -----------------------------------------------------------------------------------


def test_anomalies_view_groups_by_kind_most_severe_first_and_enter_goes_there() -> None:
    with model(FAULTS) as dump:
        result = dump.check()
        groups = grouped(result)
        tree = LevelTree(dump)
        empty = next(a for a in result.anomalies if a.kind == "empty-table")
        page_finding = next(a for a in result.anomalies if a.kind == "device-on-ram")
        span = empty.va_end - empty.va
        parent, index = next(
            (t, i)
            for t, i in tree.path_to(empty.va)
            if tree.geometry.levels[t.depth].entry_span_bytes == span
        )
        assert tree.rows(parent).child(index).pa == empty.pa  # the entry points to it

    async def body(pilot: Pilot) -> None:
        screen = await checked(pilot)
        tabs = screen.query_one("#tabs")
        await pilot.press("6")
        assert tabs.active == "anomalies"
        bar = screen.query_one(TabBar)
        assert ("anomalies", "6", f"Anomalies ({len(result.anomalies)})") in bar.tabs
        title = text_of(screen.query_one("#anomalies-title"))
        assert title.startswith(f"{len(result.anomalies):,} findings of {len(groups)} kinds")
        listing = screen.query_one("#anomaly-list", RowList)
        lines = all_rows(listing)
        headings = [line for line in lines if line.startswith(("▼", "▶"))]
        assert [h.split()[1] for h in headings] == [g.kind for g in groups]
        assert [h.split()[1] for h in headings] == [
            k for k in SEVERITY if k in result.counts() and result.counts()[k]
        ]
        for heading, group in zip(headings, groups, strict=True):
            assert heading.startswith(f"▼ {group.kind}  {len(group):,}  {group.description}")
        # a kind's colour is the overview's and the command line's (SEVERE_KINDS red)
        classes = {
            pieces[0][0].split()[1]: pieces[0][1]
            for pieces in (listing.source.row(i) for i in range(len(listing.source)))
            if pieces[0][0].startswith(("▼", "▶"))
        }
        assert classes == {
            g.kind: "kind--invalid" if g.kind in SEVERE_KINDS else "rowlist--warn" for g in groups
        }
        assert all(tone_class(f"anomaly:{kind}") == cls for kind, cls in classes.items())
        for a in result.anomalies:  # every finding, under its kind, with its VA
            where = f"{a.va:016x}" if a.va is not None else "-" * 16
            assert any(line.endswith(f"{where}  {a.message}") for line in lines), a
        skipped = [kind for kind, _ in result.skipped]
        assert all(any(line.startswith(f"not checked: {k}: ") for line in lines) for k in skipped)

        # Enter on a heading folds its kind, again unfolds it
        view = screen.query_one(AnomaliesView)
        listing.focus()
        listing.cursor = 0
        await pilot.press("enter")
        assert row_text(listing, 0).startswith(f"▶ {groups[0].kind}  ")
        assert len(listing.source) == len(lines) - len(groups[0])
        await pilot.press("enter")
        assert all_rows(listing) == lines

        # Enter on a page finding: the leaf entry, the page cursor on its first byte
        listing.cursor = next(i for i in range(len(lines)) if view.anomaly_at(i) == page_finding)
        await pilot.press("enter")
        assert tabs.active == "tables"
        assert status(screen) == f"device-on-ram: {page_finding.message}"
        entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
        assert entry.va == page_finding.va and screen.rows.is_leaf_level
        # Enter on an empty table: the entry pointing to it, one level up
        await pilot.press("6")
        listing.cursor = next(i for i in range(len(lines)) if view.anomaly_at(i) == empty)
        await pilot.press("enter")
        assert screen.table == parent
        entry = screen.rows.row(screen.query_one("#entries", RowList).cursor)
        assert entry.index == index
        # its row carries the mark, and the entry bits pane says why
        assert screen.query_one("#entries", RowList).source.row(
            screen.query_one("#entries", RowList).cursor
        )[0] == ("!", "rowlist--mark")
        details = all_rows(screen.query_one("#details", RowList))
        assert details[0] == f"! empty-table: {empty.message}"

    drive(FAULTS, body)


def test_anomalous_entry_rows_carry_the_mark_others_do_not() -> None:
    with model(FAULTS) as dump:
        result = dump.check()
        finding = next(a for a in result.anomalies if a.kind == "memattr-alias")
        tree = LevelTree(dump)
        table, _ = tree.path_to(finding.va)[-1]
        rows = tree.rows(table)
        # every leaf of the table: marked when a finding's run covers it
        expected = {}
        for i in range(len(rows)):
            entry = rows.row(i)
            if hasattr(entry, "index") and entry.type_name == "page":
                expected[i] = any(
                    a.va is not None
                    and a.context is None
                    and (a.pages or a.va_end - a.va <= dump.page_size_bytes)
                    and any(v <= entry.va < v + (a.va_end - a.va) for v in (a.vas or (a.va,)))
                    for a in result.anomalies
                )
        assert any(expected.values()) and not all(expected.values())

    async def body(pilot: Pilot) -> None:
        screen = await checked(pilot)
        await pilot.press("g", *f"{finding.va:#x}", "enter")
        await wait_until(pilot, lambda: screen.table == table, "the go to")
        entries = screen.query_one("#entries", RowList)
        for i, marked in expected.items():
            first = entries.source.row(i)[0]
            assert (first == ("!", "rowlist--mark")) == marked, i
            assert row_text(entries, i).startswith("!" if marked else " ")

    drive(FAULTS, body)


def test_palette_finds_the_anomalies_by_anomal_and_by_check() -> None:
    async def body(pilot: Pilot) -> None:
        screen = await checked(pilot)
        app = pilot.app
        for query in ("anomal", "check"):
            await pilot.press("1")
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: app.screen is not screen, "the palette")
            await pilot.press(*query)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.screen is screen, "the palette to close")
            await wait_until(pilot, lambda: screen.query_one("#tabs").active == "anomalies", query)

    drive(FAULTS, body)


def test_a_kind_with_many_findings_starts_folded() -> None:
    with model(SMMU) as dump:
        groups = grouped(dump.check())
    big = [g for g in groups if len(g) > FOLD_ABOVE]

    async def body(pilot: Pilot) -> None:
        screen = await checked(pilot)
        lines = all_rows(screen.query_one("#anomaly-list", RowList))
        for group in groups:
            sign = "▶" if group in big else "▼"
            assert f"{sign} {group.kind}  {len(group):,}  {group.description}" in lines

    drive(SMMU, body)


# ---- the colour legend ---------------------------------------------------------------------------


def test_help_legend_draws_each_kind_in_its_own_colour() -> None:
    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await modal(pilot, "question_mark", HelpScreen)
        helplist = pilot.app.screen.query_one("#help-list", RowList)
        kinds = ("table", *kinds_of(screen.dump.entry_format))
        colours = {}
        for i in range(len(helplist.source)):
            pieces = helplist.source.row(i)
            for text, style in pieces:
                if style and style.startswith("kind--") and text.strip() in kinds:
                    colours[text.strip()] = helplist.get_component_rich_style(style).color
        assert set(colours) == set(kinds)
        plain = Style.parse(str(helplist.rich_style)).color
        assert all(c is not None and c != plain for c in colours.values())
        assert len({c for c in colours.values()}) >= len(kinds) - 1  # table may share one
        text = all_rows(helplist)
        assert any(line.startswith("  ! anomaly ") for line in text)

    drive(FAULTS, body)


# ---- ranges ------------------------------------------------------------------------------------


def test_ranges_filter_and_go_to_inside_the_tab() -> None:
    with model(FAULTS) as dump:
        table = ranges(dump)
        filt = RangeFilter(table)
        undumped = filt.rows("not dumped").tolist()
        device = filt.rows("not dumped device").tolist()
        dumped_row = next(i for i in range(len(table)) if table.row(i).dumped)
        inside = int(table.va_start[dumped_row]) + 0x123
        assert undumped and device and len(device) < len(undumped)

    async def filter_for(pilot: Pilot, screen: MainScreen, text: str) -> None:
        await modal(pilot, "f", FilterScreen)
        await fill_in(pilot, pilot.app.screen.query_one("#filter-input"), text, typed=False)
        view = screen.query_one(RangesView)
        await wait_until(pilot, lambda: view.filter_text == text.strip(), "the filter")

    async def body(pilot: Pilot) -> None:
        screen = await checked(pilot)
        await pilot.press("f")
        assert status(screen) == "filter: the Ranges tab (3) has a filter"
        await pilot.press("3")
        listing = screen.query_one("#ranges-list", RowList)
        view = screen.query_one(RangesView)
        await filter_for(pilot, screen, "not dumped")
        assert [view.range_index(i) for i in range(len(listing.source))] == undumped
        assert text_of(screen.query_one("#ranges-title")).startswith(
            f"{len(undumped):,} of {len(table):,} ranges match 'not dumped'"
        )
        assert all("not dumped" in row_text(listing, i) for i in range(len(listing.source)))
        await filter_for(pilot, screen, "not dumped device")
        assert [view.range_index(i) for i in range(len(listing.source))] == device
        # g inside the tab: a VA hidden by the filter says so; shown, the cursor goes there
        await modal(pilot, "g", GotoScreen)
        await fill_in(pilot, pilot.app.screen.query_one("#goto-input"), f"{inside:#x}", typed=False)
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the prompt")
        assert status(screen) == (
            f"VA {inside:#x} is in range {dumped_row + 1:,}, which the filter "
            "'not dumped device' hides (f, empty: all)"
        )
        assert screen.query_one("#tabs").active == "ranges"
        await filter_for(pilot, screen, "")
        assert len(listing.source) == len(table)
        await modal(pilot, "g", GotoScreen)
        await fill_in(pilot, pilot.app.screen.query_one("#goto-input"), f"{inside:#x}", typed=False)
        await wait_until(pilot, lambda: pilot.app.screen is screen, "the prompt")
        assert status(screen) == f"VA {inside:#x} is in range {dumped_row + 1:,}"
        assert listing.cursor == dumped_row and screen.query_one("#tabs").active == "ranges"
        await modal(pilot, "f", FilterScreen)
        await fill_in(
            pilot, pilot.app.screen.query_one("#filter-input"), "dumped not dumped", typed=False
        )
        await wait_until(pilot, lambda: status(screen).startswith("filter "), "the refusal")
        assert status(screen) == (
            "filter 'dumped not dumped': a range is either dumped or not dumped: pick one"
        )
        assert len(listing.source) == len(table)

    drive(FAULTS, body)


# ---- memory map ----------------------------------------------------------------------------------


def test_enter_on_a_region_goes_to_its_first_mapping_and_the_minimap_fills_the_width() -> None:
    with model(FAULTS) as dump:
        regions, _ = memory_map(dump)
        mapped = next(r for r in regions if r.mapped_pages and r.kind == "reserved")
        pa, va = first_mapping(dump, mapped.base, mapped.end)
        unmapped = next(r for r in regions if not r.mapped_pages)

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await pilot.press("2")
        view = screen.query_one(MemoryMapView)
        minimap = screen.query_one("#minimap")
        await wait_until(pilot, lambda: bool(text_of(minimap)), "the minimap")
        bars = [line for line in text_of(minimap).split("\n") if set(line) <= set("·█▓▒░")]
        assert len(bars) == 2 and {len(b) for b in bars} == {minimap.size.width}
        memrows = screen.query_one("#memrows", RowList)
        memrows.focus()
        rows = {r.name: i for i, r in view.regions.items()}
        memrows.cursor = rows[unmapped.name]
        await pilot.press("enter")
        assert status(screen) == (
            f"{unmapped.label} {unmapped.name!r} ({unmapped.base:#x}..{unmapped.end:#x}): "
            "no page of the dump maps it"
        )
        memrows.cursor = rows[mapped.name]
        await pilot.press("enter")
        assert screen.query_one("#tabs").active == "tables"
        assert status(screen) == (
            f"{mapped.label} {mapped.name!r} ({mapped.base:#x}..{mapped.end:#x}): first mapped "
            f"PA {pa:#x} at VA {va:#x}"
        )
        assert screen.query_one(HexView).cursor_va == va or screen.page_va is None

    drive(FAULTS, body, size=(120, 40))


def test_the_minimap_is_made_ahead_and_is_the_one_the_tab_would_draw() -> None:
    """The background worker makes the minimap for the screen's width before the tab is ever
    shown (a million segments: ~130 ms of its first visit); shown at that width it is kept,
    and it is what the tab draws for itself."""

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        view = screen.query_one(MemoryMapView)
        minimap = screen.query_one("#minimap")
        await wait_until(pilot, lambda: bool(text_of(minimap)), "the minimap made ahead")
        assert screen.query_one("#tabs").active != "memmap"  # never shown yet
        ahead = text_of(minimap)
        await pilot.press("2")
        await pilot.pause()
        width = view.size.width - MINIMAP_PADDING
        assert text_of(minimap) == ahead
        assert ahead == minimap_text(screen.dump, width).plain
        bars = [line for line in ahead.split("\n") if set(line) <= set("·█▓▒░")]
        assert len(bars) == 2 and {len(b) for b in bars} == {width}

    drive(FAULTS, body, size=(120, 40))


def test_the_minimap_redraws_for_a_new_width() -> None:
    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await pilot.press("2")
        minimap = screen.query_one("#minimap")
        await wait_until(pilot, lambda: bool(text_of(minimap)), "the minimap")
        first = {len(line) for line in text_of(minimap).split("\n") if set(line) <= set("·█▓▒░")}
        await pilot.resize_terminal(200, 50)
        await wait_until(
            pilot,
            lambda: (
                {len(x) for x in text_of(minimap).split("\n") if set(x) <= set("·█▓▒░")} == {198}
            ),
            "the wider minimap",
        )
        assert first == {118}

    drive(MINIMAL, body, size=(120, 40))


# ---- search --------------------------------------------------------------------------------------


def test_search_in_one_line_u64_prefix_and_the_hit_in_both_columns() -> None:
    with model(MINIMAL) as dump:
        page = next(p for p in dump.pages() if p.dumped)
        value = int.from_bytes(dump.read_va(page.va + 0x28, 8), "little")
        found = search(dump, value.to_bytes(8, "little"))
        hit = found.hits[0]

    async def body(pilot: Pilot) -> None:
        screen = await wait_main(pilot)
        await run_search(pilot, screen, f"u64:{value:#x}")
        assert status(screen).startswith(f"hit 1/{len(found.hits)} at VA {hit.va:#x}")
        view = screen.query_one(HexView)
        assert view.cursor_va == hit.va
        source = view.source
        row = source.row_of_va(hit.va)
        off = hit.va - source.va - row * source.row_bytes
        chunk = bytes(source.data[row * source.row_bytes : (row + 1) * source.row_bytes])
        marked = [t for t, s in source.row(row) if s == "rowlist--hit"]
        span = chunk[off : off + 8]
        assert marked[0] == span.hex(" ")
        assert marked[1] == "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in span)

    drive(MINIMAL, body)


def test_search_says_what_it_looks_for() -> None:
    async def body(pilot: Pilot) -> None:
        await wait_main(pilot)
        await modal(pilot, "slash", SearchScreen)
        label = text_of(pilot.app.screen.query_one("#prompt-label"))
        assert 'hex bytes, "text" in quotes, u32:N or u64:N' in label

    drive(MINIMAL, body)
