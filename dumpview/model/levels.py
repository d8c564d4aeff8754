"""The level tree and the rows of one table, for browsing: real tables or rebuilt ones.

Owns what a person navigates: address spaces (one root per context the dump carries), the
tables under each entry (loaded one table at a time, never the whole tree), and the entries of
one table as rows with every column a driver developer reads (index, VA span, raw value, type,
PA, memattr, the entry format's two permission views (UAT: firmware and GPU; LPAE: privileged
and unprivileged), nG/AF, dumped or why not, kind). A block entry (LPAE) is a row that maps its
whole span: its state names the block size and whether its pages were dumped. Runs of empty
entries fold into one row.

Two sources, one interface. Dumps with the extension give real tables: entries are the table
page's bytes. Driver dumps give none: upper levels are rebuilt (an entry is "present" when any
PT_LOAD lies in its span; its value was not recorded) and leaf tables are rebuilt from the
PT_LOADs (``p_paddr``/``p_flags``), each row marked inexact. Everything is computed with numpy
per table (2048 entries), so opening a table costs the same on a 1M-segment dump.

Nothing here raises for a hostile dump beyond what the model already raises at open: a table
the dump does not carry is a row that says so. ``open_for_browsing`` is the inspector's loader:
it opens a dump and reads everything the first screen needs, so a broken file fails there.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dumpview.model import kinds
from dumpview.model.dump import Dump
from dumpview.model.entries import DecodedEntry, decode_entry
from dumpview.model.source import CancelCallback, Progress, display_name, open_input
from dumpview.model.text import data_state, human_size, info_dict
from formats.entryformat import TYPE_MASK, TYPE_TABLE
from formats.geometry import LevelGeometry

NOT_WALKED = "not walked"  # leaves of a context the dump's walker did not dump
ROWS_CACHED = 256  # tables whose rows a LevelTree keeps (a table's rows: ~100 KB)
FOLD_MIN = 2  # runs of at least this many empty entries become one row


@dataclass(frozen=True)
class TableRef:
    """A table at some level: where it sits in VA space and, when carried, its PA."""

    context: int
    depth: int  # 0 = the top table (TTB)
    level: int  # ARM lookup level (UAT: 1, 2, 3)
    va_start: int
    va_size_bytes: int
    pa: int | None  # None: rebuilt (a driver dump does not record table PAs)
    carried: bool  # False: referenced by an entry but the dump has no copy of it

    @property
    def rebuilt(self) -> bool:
        return self.pa is None

    @property
    def va_end(self) -> int:
        return self.va_start + self.va_size_bytes

    @property
    def label(self) -> str:
        where = "rebuilt" if self.pa is None else f"PA {self.pa:#x}"
        if not self.carried:
            where += ", not in the dump"
        return f"L{self.level} {self.va_start:#x} ({where})"


@dataclass(frozen=True)
class EntryRow:
    """One entry of a table, every column resolved (``value`` None: not recorded)."""

    index: int
    va: int
    span_bytes: int
    value: int | None
    exact: bool
    type_name: str
    pa: int | None
    memattr_name: str
    views: tuple[str, str]  # the entry format's two permission views ("-" for tables)
    ng: bool | None
    af: bool | None
    dumped: bool | None  # leaves and blocks only; None for tables and undumped contexts
    state: str  # "dumped", the reason it is not, "table", "empty", ...
    kind: str  # a dumpview.model.kinds name
    pa_raw: int | None = None  # what the entry says (``pa`` is where the walker goes)
    oas: int = 64  # the geometry's output address size (for flagging ``pa_raw``)

    @property
    def va_end(self) -> int:
        return self.va + self.span_bytes


@dataclass(frozen=True)
class FoldRow:
    """A run of empty entries shown as one row."""

    first_index: int
    count: int
    va: int
    span_bytes: int  # of the whole run


class TableRows:
    """The entries of one table as display rows: entries, with empty runs folded."""

    def __init__(self, tree: LevelTree, table: TableRef) -> None:
        self.tree = tree
        self.table = table
        dump = tree.dump
        geometry = dump.geometry
        self.level_geometry: LevelGeometry = geometry.levels[table.depth]
        self.is_leaf_level = table.depth == len(geometry.levels) - 1
        count = self.level_geometry.entries
        span = self.level_geometry.entry_span_bytes
        self.entry_vas = np.uint64(table.va_start) + np.arange(count, dtype=np.uint64) * np.uint64(
            span
        )
        self.values: np.ndarray | None = None  # real entries
        self.present = np.zeros(count, dtype=bool)
        self.segment = np.full(count, -1, dtype=np.int64)  # PT_LOAD of each leaf (VA order)
        self.dumped = np.zeros(count, dtype=bool)
        if table.carried and table.pa is not None:
            entries = dump.tables_index.entries_at(table.pa)
            self.values = np.array(entries[:count], dtype=np.uint64)
            self.present = (self.values & np.uint64(TYPE_MASK)) != 0
        elif table.pa is None:
            self.present = dump.spans_with_segments(self.entry_vas, span)
        if self.is_leaf_level and tree.is_dumped_context(table.context):
            segs = np.searchsorted(dump.seg_va, self.entry_vas, side="right").astype(np.int64) - 1
            ok = segs >= 0
            offs = np.zeros(count, dtype=np.uint64)
            offs[ok] = self.entry_vas[ok] - dump.seg_va[segs[ok]]
            inside = ok.copy()
            inside[ok] = offs[ok] < dump.seg_memsz[segs[ok]]
            self.segment = np.where(inside, segs, -1)
            self.dumped[inside] = (
                offs[inside] + np.uint64(span) <= dump.seg_filesz[self.segment[inside]]
            )
            if table.pa is None:
                self.present = inside
        self.rows = _fold(self.present)
        self._row_firsts = np.array([first for first, _ in self.rows], dtype=np.int64)
        self._cache: dict[int, EntryRow] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, i: int) -> EntryRow | FoldRow:
        """Display row ``i``: an entry, or a fold of empty entries."""
        first, count = self.rows[i]
        span = self.level_geometry.entry_span_bytes
        if count:
            return FoldRow(first, count, int(self.entry_vas[first]), count * span)
        return self.entry(first)

    def row_of_index(self, index: int) -> int:
        """The display row holding entry ``index``."""
        return int(np.searchsorted(self._row_firsts, index, side="right")) - 1

    def entry(self, index: int) -> EntryRow:
        """Entry ``index`` with every column (cached: rendering asks often)."""
        cached = self._cache.get(index)
        if cached is None:
            cached = self._cache[index] = self._entry(index)
        return cached

    def decoded(self, index: int) -> DecodedEntry | None:
        """The entry decoded bit by bit; None for a rebuilt upper-level entry (no value)."""
        dump = self.tree.dump
        lg = self.level_geometry
        fmt = dump.entry_format
        if self.values is not None:
            return decode_entry(int(self.values[index]), lg.level, dump.geometry, fmt=fmt)
        if self.is_leaf_level and self.segment[index] >= 0:
            pte = dump.pte_from_segment(int(self.segment[index]), int(self.entry_vas[index]))
            return decode_entry(pte, lg.level, dump.geometry, exact=False, fmt=fmt)
        return None

    def child(self, index: int) -> TableRef | None:
        """The table entry ``index`` points to (None for leaves and empty entries)."""
        if self.is_leaf_level or not self.present[index]:
            return None
        if self.values is not None and int(self.values[index]) & TYPE_MASK != TYPE_TABLE:
            return None  # a block/invalid entry: the walk stops here, nothing below
        return self.tree.child(self.table, index, self.values)

    def _entry(self, index: int) -> EntryRow:
        dump = self.tree.dump
        lg = self.level_geometry
        va = int(self.entry_vas[index])
        span = lg.entry_span_bytes
        decoded = self.decoded(index)
        if decoded is None:  # rebuilt table: an empty entry, or one whose value was not recorded
            present = bool(self.present[index])
            return EntryRow(
                index=index,
                va=va,
                span_bytes=span,
                value=None,
                exact=False,
                type_name="table" if present else "empty",
                pa=None,
                memattr_name="-",
                views=("-", "-"),
                ng=None,
                af=None,
                dumped=None,
                state="table (rebuilt: value not recorded)" if present else "empty",
                kind=kinds.TABLE if present else kinds.EMPTY,
            )
        value = decoded.value
        type_name = decoded.type_name
        dumped: bool | None = None
        if type_name == "empty":
            state = "empty"
        elif type_name == "block":
            dumped, state = self._block_state(va, span)
        elif not self.is_leaf_level:
            child = self.child(index) if type_name == "table" else None
            state = (
                "table" if child is not None and child.carried else
                "table not in the dump" if child is not None else "invalid at this level"
            )  # fmt: skip
        elif not self.tree.is_dumped_context(self.table.context):
            state = f"{NOT_WALKED} (context {self.table.context} is not dumped)"
        elif self.segment[index] < 0:
            state = "no PT_LOAD for this page"
        else:
            dumped = bool(self.dumped[index])
            if dumped:
                state = "dumped"
            else:
                flags = int(dump.seg_flags[int(self.segment[index])])
                state = data_state(False, *dump.hole_reason(va, flags))
        kind = kinds.entry_kind(type_name, self.is_leaf_level, value, dumped)
        return EntryRow(
            index=index,
            va=va,
            span_bytes=span,
            value=value,
            exact=decoded.exact,
            type_name=type_name,
            pa=decoded.output_address if type_name in ("table", "page", "block") else None,
            memattr_name=decoded.memattr_name,
            views=decoded.views,
            ng=decoded.ng,
            af=decoded.af,
            dumped=dumped,
            state=state,
            kind=kind,
            pa_raw=decoded.output_address_raw if type_name in ("table", "page", "block") else None,
            oas=dump.geometry.oas,
        )

    def _block_state(self, va: int, span: int) -> tuple[bool | None, str]:
        """(dumped, state) of a block entry: "block 2 MiB: dumped", "...: not dumped: REASON",
        or how many of its pages have data when only some do."""
        size = f"block {human_size(span)}"
        if not self.tree.is_dumped_context(self.table.context):
            return None, f"{size}: {NOT_WALKED} (context {self.table.context} is not dumped)"
        dump = self.tree.dump
        page = dump.page_size_bytes
        pages = span // page
        with_data = 0
        first_hole: tuple[int, int] | None = None
        # The first PT_LOAD ending after the block's start, then every one starting inside it.
        seg = int(np.searchsorted(dump.seg_va, np.uint64(va), side="right")) - 1
        if seg < 0 or int(dump.seg_va[seg]) + int(dump.seg_memsz[seg]) <= va:
            seg += 1
        covered = 0
        while seg < dump.segment_count:
            seg_va, memsz = int(dump.seg_va[seg]), int(dump.seg_memsz[seg])
            if seg_va >= va + span:
                break
            start, end = max(seg_va, va), min(seg_va + memsz, va + span)
            data_end = min(end, seg_va + int(dump.seg_filesz[seg]))
            covered += end - start
            with_data += max(0, data_end - start) // page
            if data_end < end and first_hole is None:
                first_hole = (max(start, data_end), int(dump.seg_flags[seg]))
            seg += 1
        if covered < span:
            return None, f"{size}: {(span - covered) // page:,} of {pages:,} pages have no PT_LOAD"
        if with_data == pages:
            return True, f"{size}: dumped"
        hole_va, flags = first_hole if first_hole else (va, 0)
        state = data_state(False, *dump.hole_reason(hole_va, flags))
        if with_data:
            return False, f"{size}: {with_data:,} of {pages:,} pages dumped; {state}"
        return False, f"{size}: {state}"


class LevelTree:
    """Roots (one per address space) and children, resolved one table at a time."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump
        geometry = dump.geometry
        self.geometry = geometry
        top = geometry.levels[0]
        top_span = top.entry_span_bytes << top.index_bits
        index = dump.tables_index
        roots: list[TableRef] = []
        if index is not None and dump.extension.spaces:
            for space in dump.extension.spaces:
                va_start = space.va_start & ~geometry.ias_mask
                carried = index.offset_of(space.ttb_pa) is not None
                roots.append(
                    TableRef(space.context, 0, top.level, va_start, top_span, space.ttb_pa, carried)
                )
            self.dumped_context = dump.extension.spaces[0].context
        else:
            va_start = geometry.va_base & ~geometry.ias_mask
            roots.append(TableRef(0, 0, top.level, va_start, top_span, None, True))
            self.dumped_context = 0
        self.roots = tuple(roots)
        self._rows: OrderedDict[TableRef, TableRows] = OrderedDict()

    def is_dumped_context(self, context: int) -> bool:
        return context == self.dumped_context

    def rows(self, table: TableRef) -> TableRows:
        """The rows of ``table``, cached for the ``ROWS_CACHED`` tables used last (bounded: a
        hostile dump whose tables share one leaf table reaches it through thousands of
        entries, each a different ``TableRef``)."""
        rows = self._rows.get(table)
        if rows is None:
            rows = self._rows[table] = TableRows(self, table)
            if len(self._rows) > ROWS_CACHED:
                self._rows.popitem(last=False)
        else:
            self._rows.move_to_end(table)
        return rows

    def child(self, table: TableRef, index: int, values: np.ndarray | None = None) -> TableRef:
        """The table that entry ``index`` of ``table`` points to."""
        geometry = self.geometry
        lg = geometry.levels[table.depth]
        below = geometry.levels[table.depth + 1]
        va = table.va_start + index * lg.entry_span_bytes
        span = below.entry_span_bytes << below.index_bits
        if values is None and table.pa is not None:
            values = self.rows(table).values
        if values is None:
            return TableRef(table.context, table.depth + 1, below.level, va, span, None, True)
        pa = self.dump.entry_format.output_address(int(values[index])) & self.dump.pa_mask
        carried = self.dump.tables_index.offset_of(pa) is not None
        return TableRef(table.context, table.depth + 1, below.level, va, span, pa, carried)

    def children(self, table: TableRef) -> list[tuple[int, TableRef]]:
        """(entry index, child table) for every table entry of ``table``, in index order."""
        if table.depth + 1 >= len(self.geometry.levels) or not table.carried:
            return []
        rows = self.rows(table)
        out = []
        for index in np.flatnonzero(rows.present).tolist():
            if rows.values is not None and int(rows.values[index]) & TYPE_MASK != TYPE_TABLE:
                continue
            out.append((index, self.child(table, index, rows.values)))
        return out

    def path_to(self, va: int, context: int | None = None) -> list[tuple[TableRef, int]]:
        """(table, entry index) from the root down to the deepest table covering ``va``."""
        root = self.roots[0]
        if context is not None:
            root = next((r for r in self.roots if r.context == context), root)
        if not root.va_start <= va < root.va_end:
            return []
        out = []
        table: TableRef | None = root
        while table is not None:
            lg = self.geometry.levels[table.depth]
            index = lg.index_of(va)
            out.append((table, index))
            if not table.carried:
                break
            table = self.rows(table).child(index)
        return out

    @cached_property
    def contexts(self) -> tuple[int, ...]:
        return tuple(root.context for root in self.roots)


def open_for_browsing(
    path: str | os.PathLike[str],
    stage: Callable[[float, str], None] | None = None,
    cancel: CancelCallback | None = None,
) -> tuple[Dump, LevelTree]:
    """Open ``path`` and compute everything the inspector's first screen reads, so that a
    broken file fails here (where the app shows its error screen) and not while drawing: the
    warnings (table walk, notes, AGX note, crash logs), the info document (the scenario record
    included) and the level tree with the first root's rows; then it lets the program
    headers' mapped pages go (``Dump.release_header_pages``).

    ``stage(step, text)`` is called before each of the three steps, and while a compressed or
    streamed input is read (step 0 to 1 as it goes; see ``dumpview.model.source``). Raises
    ``DumpError`` (one line naming the offset; ``OpenCancelled`` once ``cancel()`` is true
    while an input is read) or ``OSError``; the dump is closed when it raises."""
    report = stage or (lambda step, text: None)
    report(0, f"opening {display_name(os.fspath(path))}")

    def reading(state: Progress) -> None:
        report(state.fraction or 0.0, state.text())

    fd, source = open_input(path, progress=reading, cancel=cancel)
    report(1, f"opening {display_name(source.name)}: validating program headers")
    dump = Dump(path, fd, source)
    try:
        report(2, "reading the extension and walking the tables")
        info_dict(dump)  # its walks and the warnings (all_warnings) read here, off the UI thread
        report(3, "indexing levels")
        tree = LevelTree(dump)
        tree.rows(tree.roots[0])
        dump.release_header_pages()  # the columns are copied: the headers' pages can go
    except BaseException:
        dump.close()
        raise
    return dump, tree


def _fold(present: np.ndarray) -> list[tuple[int, int]]:
    """Display rows as (first entry, fold count): count 0 is a single entry row. Runs of at
    least ``FOLD_MIN`` absent entries fold into one row (numpy: a 2048-entry table costs
    ~0.1 ms, so exporting a million leaf entries does not pay for display rows)."""
    present = np.asarray(present, dtype=bool)
    n = len(present)
    edges = np.flatnonzero(np.diff(np.concatenate(([True], present, [True])).astype(np.int8)))
    run_starts, run_ends = edges[0::2], edges[1::2]  # absent runs [start, end)
    long = run_ends - run_starts >= FOLD_MIN
    starts, ends = run_starts[long], run_ends[long]
    mark = np.zeros(n + 1, dtype=np.int64)
    np.add.at(mark, starts + 1, 1)
    np.add.at(mark, ends, -1)
    keep = np.cumsum(mark[:n]) == 0
    first = np.flatnonzero(keep)
    count = np.zeros(n, dtype=np.int64)
    count[starts] = ends - starts
    return list(zip(first.tolist(), count[first].tolist(), strict=True))
