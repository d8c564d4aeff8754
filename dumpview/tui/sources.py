"""Row sources that turn model objects into display rows: entries, entry bits, page, ranges.

Owns the columns and their colours. Each source asks the model for one row when the row list
renders it; nothing is precomputed per row, so a 2048-entry table, a 16 KiB page or a million
ranges cost the same per frame.
"""

from __future__ import annotations

from dumpview.model import AddressError, Dump, NotDumpedError
from dumpview.model.entries import DecodedEntry, source_notes
from dumpview.model.levels import EntryRow, FoldRow, TableRef, TableRows
from dumpview.model.ranges import RangeTable, human_size
from dumpview.model.text import data_state, hex_row, oas_flag, pa_text
from dumpview.model.translate import Translation
from dumpview.tui.widgets import CallbackSource, LinesSource, Row, RowSource, plain_rows


def _view_widths(names: tuple[str, str]) -> tuple[int, int]:
    """Column widths of the two permission views: UAT's "fw"/"gpu" over 2-letter permissions
    keep their historic 2 and 3; LPAE's "priv"/"unpriv" over "RWX" get their names' widths."""
    first, second = names
    return max(len(first), 2), max(len(second), 3)


def entry_header(view_short: tuple[str, str]) -> str:
    """The entries table's heading for a format's two permission views."""
    w1, w2 = _view_widths(view_short)
    return (
        " idx  VA                span  value               type   PA              memattr    "
        f"{view_short[0]:<{w1}} {view_short[1]:<{w2}} nG AF  state"
    )


def range_header(view_short: tuple[str, str]) -> str:
    """The ranges table's heading for a format's two permission views."""
    w1, w2 = _view_widths(view_short)
    return (
        " VA start          VA end              size  PA start        memattr    "
        f"{view_short[0]:<{w1}} {view_short[1]:<{w2}}  state"
    )


HEX_ROW_BYTES = 16


def _kind_class(kind: str) -> str:
    return f"kind--{kind}"


def _flag(value: bool | None) -> str:
    return "?" if value is None else str(int(value))


def entry_row(entry: EntryRow | FoldRow, view_short: tuple[str, str] = ("fw", "gpu")) -> Row:
    """One row of the entries table (``view_short``: the format's view headings)."""
    if isinstance(entry, FoldRow):
        last = entry.first_index + entry.count - 1
        return [
            (
                f" {entry.first_index:04d}-{last:04d} {entry.va:016x}  "
                f"{human_size(entry.span_bytes):>5}  {entry.count} empty entries",
                "kind--empty",
            )
        ]
    value = f"{entry.value:016x}" if entry.value is not None else "-" * 16
    if entry.value is not None and not entry.exact:
        value = value[:-1] + "~"  # rebuilt from p_flags: some bits not recorded
    pa = f"{entry.pa:#014x}" if entry.pa is not None else "-" * 14
    says = "" if entry.pa is None else oas_flag(entry.pa, entry.pa_raw, entry.oas)
    pa += "!" if says else " "  # the entry's own address differs (bits above the OAS)
    w1, w2 = _view_widths(view_short)
    text = (
        f" {entry.index:04d} {entry.va:016x}  {human_size(entry.span_bytes):>5}  {value}  "
        f"{entry.type_name:<6} {pa} {entry.memattr_name:<9}  {entry.views[0]:<{w1}} "
        f"{entry.views[1]:<{w2}} {_flag(entry.ng):<2} {_flag(entry.af):<2}  {entry.state}{says}"
    )
    return [(text, _kind_class(entry.kind))]


def entries_source(rows: TableRows) -> RowSource:
    short = rows.tree.dump.entry_format.view_short
    width = len(entry_header(short)) + 40
    return CallbackSource(len(rows), lambda i: entry_row(rows.row(i), short), width)


def details_source(
    table: TableRef, entry: EntryRow | FoldRow, decoded: DecodedEntry | None, walk: Translation
) -> LinesSource:
    """The selected entry bit by bit, then its walk."""
    rows: list[Row] = []
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
    return LinesSource(rows, 90)


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
    ) -> None:
        self.va = va
        self.unit = unit
        self.highlight = highlight  # (VA, length) of a search hit
        self.data = None
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
        return len(self.data) // HEX_ROW_BYTES

    def width(self) -> int:
        return 16 + 2 + 47 + 3 + 16 + 1

    def row(self, index: int) -> Row:
        if self.data is None:
            return self.message[index]
        off = index * HEX_ROW_BYTES
        chunk = self.data[off : off + HEX_ROW_BYTES]
        hexes, text = hex_row(chunk, self.unit, HEX_ROW_BYTES)
        va = self.va + off
        pieces: Row = [(f"{va:016x}  ", "rowlist--dim")]
        hit = self.highlight
        if hit is not None and hit[0] < va + HEX_ROW_BYTES and va < hit[0] + hit[1]:
            if self.unit == "u8":
                lo = max(hit[0], va) - va
                hi = min(hit[0] + hit[1], va + HEX_ROW_BYTES) - va
                pieces += [
                    (hexes[: lo * 3], None),
                    (hexes[lo * 3 : hi * 3 - 1], "rowlist--hit"),
                    (hexes[hi * 3 - 1 :], None),
                ]
            else:
                pieces.append((hexes, "rowlist--hit"))
        else:
            pieces.append((hexes, None))
        pieces.append((f"  |{text}|", "rowlist--dim"))
        return pieces

    def row_of_va(self, va: int) -> int:
        return max(0, (va - self.va) // HEX_ROW_BYTES)


def range_row(table: RangeTable, index: int, view_short: tuple[str, str] = ("fw", "gpu")) -> Row:
    r = table.row(index)
    state = data_state(r.dumped, r.reason, r.reason_detail)
    w1, w2 = _view_widths(view_short)
    text = (
        f" {r.va_start:016x}-{r.va_end:016x} {human_size(r.size_bytes):>6}  {r.pa_start:#014x}  "
        f"{r.memattr_name:<9}  {r.views[0]:<{w1}} {r.views[1]:<{w2}}  {state}"
    )
    return [(text, _kind_class(r.kind))]


def ranges_source(table: RangeTable) -> RowSource:
    short = table.entry_format.view_short
    width = len(range_header(short)) + 40
    return CallbackSource(len(table), lambda i: range_row(table, i, short), width)


def text_source(lines: list[str]) -> LinesSource:
    return plain_rows(lines)
