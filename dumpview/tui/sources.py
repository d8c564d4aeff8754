"""Row sources that turn model objects into display rows: entries, entry bits, page, ranges.

Owns the columns and their colours. Each source asks the model for one row when the row list
renders it; nothing is precomputed per row, so a 2048-entry table, a 16 KiB page or a million
ranges cost the same per frame.

The entries table's columns have a rank: a narrow pane drops the least important first
(nG/AF, span, the raw value, the index) and keeps VA, type, PA, memattr, both permission
views and the state, which comes last and scrolls sideways when it does not fit. The page shows
8, 16 or 32 bytes a row, with marks (search hits, the byte cursor) in both the hex and the
ASCII column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dumpview.model import AddressError, Dump, NotDumpedError
from dumpview.model.check import Anomaly
from dumpview.model.entries import DecodedEntry, source_notes
from dumpview.model.levels import EntryRow, FoldRow, TableRef, TableRows
from dumpview.model.ranges import RangeTable, human_size
from dumpview.model.text import HEX_UNITS, beyond_oas, data_state, hex_row, oas_flag, pa_text
from dumpview.model.translate import Translation
from dumpview.tui.widgets import CallbackSource, LinesSource, Row, RowSource

HEX_ROW_BYTES = 16  # the page's bytes per row when the pane has room for 16, not 32
ROW_BYTE_CHOICES = (32, 16, 8)
STATE_MIN = 12  # cells the entries' state column keeps before columns are dropped
MARK = "!"  # the anomaly mark at the start of an entry row


def _view_widths(names: tuple[str, str]) -> tuple[int, int]:
    """Column widths of the two permission views: UAT's "fw"/"gpu" over 2-letter permissions
    keep their historic 2 and 3; LPAE's "priv"/"unpriv" over "RWX" get their names' widths."""
    first, second = names
    return max(len(first), 2), max(len(second), 3)


# ---- the entries table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the entries table: ``sep`` spaces before it, ``width`` cells, ``rank``
    (columns of a lower rank are dropped first when the pane is narrow)."""

    key: str
    title: str
    width: int
    rank: int
    sep: int = 1


def entry_columns(view_short: tuple[str, str]) -> tuple[Column, ...]:
    """Every column but the state (which is always last), in display order."""
    w1, w2 = _view_widths(view_short)
    return (
        Column("idx", "idx", 4, 4, sep=0),
        Column("va", "VA", 16, 9),
        Column("span", "span", 5, 2, sep=2),
        Column("value", "value", 16, 3, sep=2),
        Column("type", "type", 6, 8, sep=2),
        Column("pa", "PA", 15, 7),  # 14 and "!" when the entry's own address differs
        Column("memattr", "memattr", 9, 6),
        Column("views", f"{view_short[0]:<{w1}} {view_short[1]:<{w2}}", w1 + 1 + w2, 5, sep=2),
        Column("ngaf", "nG AF", 5, 1),
    )


def fit_columns(columns: Sequence[Column], cells: int | None) -> tuple[Column, ...]:
    """The columns that fit in ``cells`` (None: all) with the mark and ``STATE_MIN`` cells of
    state, dropping the lowest ranks first; display order is kept."""
    if cells is None:
        return tuple(columns)
    budget = cells - len(MARK) - 2 - STATE_MIN
    kept: set[str] = set()
    for column in sorted(columns, key=lambda c: -c.rank):
        if column.sep + column.width <= budget:
            kept.add(column.key)
            budget -= column.sep + column.width
        else:
            break  # never keep a less important column in place of a more important one
    return tuple(c for c in columns if c.key in kept)


def columns_width(columns: Sequence[Column]) -> int:
    return len(MARK) + sum(c.sep + c.width for c in columns) + 2


def entry_header(view_short: tuple[str, str], columns: Sequence[Column] | None = None) -> str:
    """The entries table's heading for a format's two permission views (all columns unless
    ``columns`` says which)."""
    columns = entry_columns(view_short) if columns is None else columns
    text = " " * len(MARK) + "".join(" " * c.sep + f"{c.title:<{c.width}}" for c in columns)
    return text + "  state"


def range_header(view_short: tuple[str, str]) -> str:
    """The ranges table's heading for a format's two permission views."""
    w1, w2 = _view_widths(view_short)
    return (
        " VA start          VA end              size  PA start        memattr    "
        f"{view_short[0]:<{w1}} {view_short[1]:<{w2}}  state"
    )


def _kind_class(kind: str) -> str:
    return f"kind--{kind}"


def _flag(value: bool | None) -> str:
    return "?" if value is None else str(int(value))


def _cell(entry: EntryRow, key: str, view_short: tuple[str, str]) -> str:
    if key == "idx":
        return f"{entry.index:04d}"
    if key == "va":
        return f"{entry.va:016x}"
    if key == "span":
        return f"{human_size(entry.span_bytes):>5}"
    if key == "value":
        value = f"{entry.value:016x}" if entry.value is not None else "-" * 16
        if entry.value is not None and not entry.exact:
            value = value[:-1] + "~"  # rebuilt from p_flags: some bits not recorded
        return value
    if key == "type":
        return entry.type_name
    if key == "pa":
        if entry.pa is None:
            return "-" * 14
        # "!": the entry's own address differs from the walker's (bits above the OAS)
        return f"{entry.pa:#014x}" + ("!" if beyond_oas(entry.pa, entry.pa_raw, entry.oas) else "")
    if key == "memattr":
        return entry.memattr_name
    if key == "views":
        w1, w2 = _view_widths(view_short)
        return f"{entry.views[0]:<{w1}} {entry.views[1]:<{w2}}"
    if key == "ngaf":
        return f"{_flag(entry.ng):<2} {_flag(entry.af):<2}"
    raise KeyError(key)


def entry_row(
    entry: EntryRow | FoldRow,
    view_short: tuple[str, str] = ("fw", "gpu"),
    columns: Sequence[Column] | None = None,
    marked: bool = False,
) -> Row:
    """One row of the entries table (``view_short``: the format's view headings; ``columns``:
    those shown, default all; ``marked``: a finding of ``check`` is about this entry)."""
    columns = entry_columns(view_short) if columns is None else columns
    mark: Row = [(MARK, "rowlist--mark")] if marked else [(" ", None)]
    if isinstance(entry, FoldRow):
        last = entry.first_index + entry.count - 1
        keys = {c.key for c in columns}
        lead = f"{entry.first_index:04d}-{last:04d} " if "idx" in keys else " "
        text = (
            f"{lead}{entry.va:016x}  {human_size(entry.span_bytes):>5}  {entry.count} empty entries"
        )
        return [*mark, (text, "kind--empty")]
    text = "".join(" " * c.sep + f"{_cell(entry, c.key, view_short):<{c.width}}" for c in columns)
    says = "" if entry.pa is None else oas_flag(entry.pa, entry.pa_raw, entry.oas)
    return [*mark, (f"{text}  {entry.state}{says}", _kind_class(entry.kind))]


class EntriesSource(RowSource):
    """The rows of one table with the columns that fit and the anomaly marks."""

    def __init__(
        self,
        rows: TableRows,
        columns: Sequence[Column] | None = None,
        marks: np.ndarray | None = None,
    ) -> None:
        self.rows = rows
        self.view_short = rows.tree.dump.entry_format.view_short
        self.columns = entry_columns(self.view_short) if columns is None else tuple(columns)
        self.marks = marks  # a bool per entry index, or None

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, index: int) -> Row:
        entry = self.rows.row(index)
        marked = False
        if self.marks is not None:
            if isinstance(entry, FoldRow):
                first = entry.first_index
                marked = bool(self.marks[first : first + entry.count].any())
            else:
                marked = bool(self.marks[entry.index])
        return entry_row(entry, self.view_short, self.columns, marked)

    def width(self) -> int:
        return columns_width(self.columns) + 60

    def header(self) -> Row:
        return [(entry_header(self.view_short, self.columns), None)]


def entries_source(rows: TableRows) -> RowSource:
    """Every column, no marks (the whole table as ``entry_row`` writes it)."""
    return EntriesSource(rows)


# ---- the selected entry ------------------------------------------------------------------------


def details_source(
    table: TableRef,
    entry: EntryRow | FoldRow,
    decoded: DecodedEntry | None,
    walk: Translation,
    findings: Sequence[Anomaly] = (),
) -> LinesSource:
    """The findings about the selected entry, the entry bit by bit, then its walk."""
    rows: list[Row] = [[(f"{MARK} {a.kind}: {a.message}", "kind--invalid")] for a in findings]
    if isinstance(entry, FoldRow):
        last = entry.first_index + entry.count - 1
        rows.append(
            [
                (
                    f"entries {entry.first_index}..{last} of L{table.level}: empty "
                    f"({human_size(entry.span_bytes)} of VA from {entry.va:#x})",
                    "kind--empty",
                )
            ]
        )
        return LinesSource(rows, 80)
    where = "rebuilt table" if table.pa is None else f"table PA {table.pa:#x}"
    rows.append([(f"L{table.level}[{entry.index}] of {where}, VA {entry.va:#x}", "rowlist--title")])
    if decoded is None:
        rows.append([("value not recorded: a driver dump keeps only leaf entries", "rowlist--dim")])
        rows.append([(f"  {entry.state}", _kind_class(entry.kind))])
    else:
        exact = "exact" if decoded.exact else "rebuilt from p_paddr/p_flags"
        rows.append([(f"value {decoded.value:#018x}  ({exact})", None)])
        if decoded.type_name in ("table", "page", "block"):
            what = "next table at" if decoded.type_name == "table" else "maps"
            shown = pa_text(decoded.pa, decoded.pa_raw, decoded.oas)
            style = "rowlist--warn" if decoded.beyond_oas else None
            rows.append([(f"{decoded.type_name}: {what} {shown}", style)])
        else:
            rows.append([(decoded.type_name, None)])
        rows.extend([(f"note: {line}", "rowlist--warn")] for line in source_notes(decoded))
        rows.append([("bits  field       value  meaning", "rowlist--dim")])
        for field in decoded.fields:
            if field.name.startswith(("ignored", "bits_", "bit5", "bit52")) and field.value == 0:
                continue
            value = "-" if field.value is None else f"{field.value:#x}"
            style = "rowlist--warn" if not field.recorded else None
            rows.append([(f"{field.bits:>5} {field.name:<10} {value:>6}  {field.meaning}", style)])
        rows.append([(f"state: {entry.state}", _kind_class(entry.kind))])
    rows.append([("", None)])
    rows.append([("walk", "rowlist--title")])
    for step in walk.steps:
        table_text = f"{step.table_pa:#x}" if step.table_pa is not None else "rebuilt"
        value = f"{step.entry:#x}" if step.entry is not None else step.note or "-"
        rows.append([(f" L{step.level}[{step.index}] in {table_text}: {value}", None)])
    if walk.mapped:
        oas = walk.leaf.oas if walk.leaf is not None else 64
        rows.append([(f" -> {pa_text(walk.pa, walk.pa_raw, oas)}", "kind--gpu")])
    else:
        rows.append(
            [(f" stopped at L{walk.stopped_level}: {walk.stopped_reason}", "kind--invalid")]
        )
    return LinesSource(rows)


# ---- the page ----------------------------------------------------------------------------------


def hex_width(bytes_per_row: int) -> int:
    """Cells of one hex row: VA, two spaces, the hex column, two spaces, the ASCII column."""
    return 16 + 2 + 3 * bytes_per_row - 1 + 2 + bytes_per_row + 2


def row_bytes_for(cells: int) -> int:
    """The most bytes a row (32, 16 or 8) whose hex row fits in ``cells``; 8 at least."""
    return next((n for n in ROW_BYTE_CHOICES if hex_width(n) <= cells), ROW_BYTE_CHOICES[-1])


Mark = tuple[int, int, str]  # bytes [start, end) of a row (offsets in the row) and a style


def _runs(cells: list[str], styles: list[str | None], sep: str) -> Row:
    """Cells joined by ``sep`` as pieces of equal style; a separator between two cells of one
    style takes that style (a hit over several bytes is one highlighted run)."""
    pieces: Row = []
    for i, (cell, style) in enumerate(zip(cells, styles, strict=True)):
        if i and sep:
            between = style if styles[i - 1] == style else None
            if pieces and pieces[-1][1] == between:
                pieces[-1] = (pieces[-1][0] + sep, between)
            else:
                pieces.append((sep, between))
        if pieces and pieces[-1][1] == style:
            pieces[-1] = (pieces[-1][0] + cell, style)
        else:
            pieces.append((cell, style))
    return pieces


def hex_pieces(chunk: bytes, unit: str, row_bytes: int, marks: Sequence[Mark]) -> tuple[Row, Row]:
    """(hex pieces, ASCII pieces) of one row with ``marks`` (later marks win): a unit group
    takes the style of a mark over any of its bytes; the ASCII column is marked byte by byte."""
    hexes, text = hex_row(chunk, unit, row_bytes)
    if not marks:
        return [(hexes, None)], [(text, None)]
    size = HEX_UNITS[unit]
    groups = hexes.split(" ")
    group_styles: list[str | None] = [None] * len(groups)
    char_styles: list[str | None] = [None] * len(text)
    for start, end, style in marks:
        for g in range(max(0, start // size), min(len(groups), -(-end // size))):
            group_styles[g] = style
        for b in range(max(0, start), min(len(text), end)):
            char_styles[b] = style
    return _runs(groups, group_styles, " "), _runs(list(text), char_styles, "")


class PageSource(RowSource):
    """One page as hex rows, or the reason it has no data (never zeros)."""

    def __init__(
        self,
        dump: Dump,
        va: int,
        pa: int | None,
        unit: str,
        highlight: tuple[int, int] | None = None,
        context_note: str | None = None,
        row_bytes: int = HEX_ROW_BYTES,
    ) -> None:
        self.va = va
        self.pa = pa
        self.unit = unit
        self.row_bytes = row_bytes
        self.highlight = highlight  # (VA, length) of a search hit
        self.data: memoryview | bytes | None = None
        self.message: list[Row] = []
        size = dump.page_size_bytes
        if context_note:
            self.message = [[(context_note, "rowlist--dim")]]
            return
        try:
            # A copy (one page): rows are drawn later, and nothing drawn may touch the map
            # after the file changed under us.
            self.data = bytes(dump.read_va(va, size))
        except NotDumpedError as exc:
            where = f"page VA {va:#x}" + (f" (PA {pa:#x})" if pa is not None else "")
            self.message = [
                [(f"{where}: not dumped", "kind--not-dumped")],
                [(f"reason: {exc.reason}" + (f" ({exc.detail})" if exc.detail else ""), None)],
                [("the walker recorded no data for this page: it is not zeros", "rowlist--dim")],
            ]
        except AddressError as exc:  # no PT_LOAD for this VA
            self.message = [[(f"page VA {va:#x}: {exc}", "kind--invalid")]]

    def __len__(self) -> int:
        if self.data is None:
            return len(self.message)
        return -(-len(self.data) // self.row_bytes)

    def width(self) -> int:
        return hex_width(self.row_bytes)

    def row(self, index: int) -> Row:
        return self.hex_row(index)

    def hex_row(self, index: int, cursor: int | None = None) -> Row:
        """Row ``index``; ``cursor``: the page offset of the byte cursor when it is on this row
        (its unit is marked, and the VA column)."""
        if self.data is None:
            return self.message[index]
        n = self.row_bytes
        off = index * n
        va = self.va + off
        marks: list[Mark] = []
        hit = self.highlight
        if hit is not None and hit[0] < va + n and va < hit[0] + hit[1]:
            marks.append((hit[0] - va, hit[0] + hit[1] - va, "rowlist--hit"))
        if cursor is not None and off <= cursor < off + n:
            size = HEX_UNITS[self.unit]
            start = (cursor - off) // size * size
            marks.append((start, start + size, "rowlist--byte"))
        hexes, text = hex_pieces(self.data[off : off + n], self.unit, n, marks)
        va_style = "rowlist--cursor" if cursor is not None else "rowlist--dim"
        return [
            (f"{va:016x}", va_style),
            ("  ", None),
            *hexes,
            ("  |", "rowlist--dim"),
            *text,
            ("|", "rowlist--dim"),
        ]

    def row_of_va(self, va: int) -> int:
        return max(0, (va - self.va) // self.row_bytes)


# ---- ranges ------------------------------------------------------------------------------------


def range_row(table: RangeTable, index: int, view_short: tuple[str, str] = ("fw", "gpu")) -> Row:
    r = table.row(index)
    state = data_state(r.dumped, r.reason, r.reason_detail)
    w1, w2 = _view_widths(view_short)
    text = (
        f" {r.va_start:016x}-{r.va_end:016x} {human_size(r.size_bytes):>6}  {r.pa_start:#014x}  "
        f"{r.memattr_name:<9}  {r.views[0]:<{w1}} {r.views[1]:<{w2}}  {state}"
    )
    return [(text, _kind_class(r.kind))]


def ranges_source(table: RangeTable, rows: np.ndarray | None = None) -> RowSource:
    """The ranges of ``table``, or only its rows ``rows`` (indices, ascending)."""
    short = table.entry_format.view_short
    width = len(range_header(short)) + 40
    if rows is None:
        return CallbackSource(len(table), lambda i: range_row(table, i, short), width)
    return CallbackSource(len(rows), lambda i: range_row(table, int(rows[i]), short), width)
