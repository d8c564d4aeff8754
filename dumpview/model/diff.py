"""What changed between two dumps, by VA: mappings, page contents and tables.

Owns ``diff(a, b)`` and its records. Pages of the dumped address space are matched by VA as
runs of alike pages (``pageruns``; the matching and the data comparison are ``diffpages``), so
the work follows the runs the files hold and the answer, never the pages a PT_LOAD claims
(20.9M claimed pages without data are one run), and sorted into:

- added: a VA only B maps; removed: a VA only A maps;
- changed: a VA both map with a different PA ("pa": the walker's PA, or the entry's own output
  address where it has bits above the OAS), different attributes ("attributes": the
  PT_LOADs' ``p_flags`` differ, or, where both pages have exact entries from carried tables,
  the entries differ outside the output-address bits 51:14), or a different dumped state
  ("dumped"), in that order in ``MappingRun.changes``;
- contents: pages dumped in both (whatever their PA) whose bytes differ, with how many bytes
  differ. Data is compared straight off the two read-only maps in chunks of at most
  ``diffpages.CONTENT_CHUNK_BYTES`` (file-contiguous pages compared as one block), so memory
  stays flat; differing bytes are counted only for pages that are not equal.

Pages coalesce into runs (``MappingRun``, ``ContentRun``) when their VAs continue (VA + page),
they fall in the same category with the same change set, and, for mapping runs, the PA
continues (PA + page) on each side present while ``p_flags``, the entry's non-OA bits and the
dumped state stay the same on each side present. A run reports its first page's values.

Tables: when both dumps carry tables (dumpview's extension), a table is identified by
(context, level, VA start) over every walked table of every context; one present on only one
side is added/removed. A table at the same place whose PA differs is neither (it is not
reported: the mappings under it are what users compare). When either dump carries no tables,
both are compared as rebuilt, apples to apples: a table at each level below the top exists
where any page of that dump lies in its span (``TableChange.rebuilt`` True, ``pa`` None,
``context`` the dumped context); ``DiffResult.tables_rebuilt`` says which way it went.

Fails with ``DiffError`` (a ``ValueError``, one line naming both values) when the dumps cannot
be compared: different page size, table page size, entry format, IAS or VA base. The output
address size may differ (t8103 vs t600x): PAs are compared as numbers. Neither file is written.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.diffpages import (
    Pieces,
    SideRows,
    differing_pages,
    match,
    run_starts,
    table_starts,
)
from dumpview.model.text import hex_or_none, human_size
from formats import entryformat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

U64 = np.uint64
U64_MAX = (1 << 64) - 1


CHANGE_PA = 1
CHANGE_ATTRIBUTES = 2
CHANGE_DUMPED = 4
CHANGE_NAMES: tuple[tuple[int, str], ...] = (
    (CHANGE_PA, "pa"),
    (CHANGE_ATTRIBUTES, "attributes"),
    (CHANGE_DUMPED, "dumped"),
)


class DiffError(ValueError):
    """The two dumps cannot be compared (page size, entry format or address-space geometry)."""


@functools.lru_cache(maxsize=4096)
def _side_view(flags: int | None, fmt: EntryFormat) -> tuple[str | None, str | None, str | None]:
    """(memattr name, first view, second view) from a page's p_flags; Nones when the side is
    absent. Cached: a diff has few distinct p_flags and may have a million runs."""
    if flags is None:
        return None, None, None
    pte = fmt.unpack_attributes(flags)
    return fmt.memattr_names[fmt.memattr(pte)], *fmt.views(pte)


@contextlib.contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while building up to millions of small acyclic
    objects (runs): each collection would rescan all of them. Restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class MappingRun:
    """VA-contiguous pages added, removed or changed; values are those of the first page.

    ``va_end`` is exclusive. ``*_a`` are None when the run is added (absent in A), ``*_b`` when
    it is removed. ``changes`` is a subset of ("pa", "attributes", "dumped") for changed runs,
    () for added and removed ones."""

    va_start: int
    va_end: int
    pages: int
    pa_a: int | None
    pa_b: int | None
    flags_a: int | None
    flags_b: int | None
    dumped_a: bool | None
    dumped_b: bool | None
    changes: tuple[str, ...]
    pa_raw_a: int | None = None  # what A's entry says (differs from pa_a only above the OAS)
    pa_raw_b: int | None = None

    @property
    def size_bytes(self) -> int:
        return self.va_end - self.va_start

    def to_dict(self, fmt: EntryFormat = entryformat.UAT) -> dict:
        """JSON-ready: addresses and p_flags as lowercase "0x…" strings, null for an absent
        side; "size" as ptdump writes it; memattr and the format's two permission views per
        side (UAT: firmware_a/gpu_a; LPAE: privileged_a/unprivileged_a; null when absent)."""
        out: dict = {
            "va_start": hex_or_none(self.va_start),
            "va_end": hex_or_none(self.va_end),
            "pages": self.pages,
            "size": human_size(self.size_bytes),
            "pa_a": hex_or_none(self.pa_a),
            "pa_b": hex_or_none(self.pa_b),
            "pa_raw_a": None if self.pa_raw_a == self.pa_a else hex_or_none(self.pa_raw_a),
            "pa_raw_b": None if self.pa_raw_b == self.pa_b else hex_or_none(self.pa_raw_b),
            "flags_a": hex_or_none(self.flags_a),
            "flags_b": hex_or_none(self.flags_b),
            "dumped_a": self.dumped_a,
            "dumped_b": self.dumped_b,
            "changes": list(self.changes),
        }
        first, second = fmt.view_keys
        for side, flags in (("a", self.flags_a), ("b", self.flags_b)):
            memattr, view_1, view_2 = _side_view(flags, fmt)
            out[f"memattr_{side}"] = memattr
            out[f"{first}_{side}"] = view_1
            out[f"{second}_{side}"] = view_2
        return out


@dataclass(frozen=True)
class ContentRun:
    """VA-contiguous pages dumped in both dumps whose bytes differ (``va_end`` exclusive)."""

    va_start: int
    va_end: int
    pages: int
    bytes_changed: int  # differing bytes over the whole run

    @property
    def size_bytes(self) -> int:
        return self.va_end - self.va_start

    def to_dict(self) -> dict:
        return {
            "va_start": hex_or_none(self.va_start),
            "va_end": hex_or_none(self.va_end),
            "pages": self.pages,
            "size": human_size(self.size_bytes),
            "bytes_changed": self.bytes_changed,
        }


@dataclass(frozen=True)
class TableChange:
    """A table present in one dump only. ``level`` is the ARM lookup level (UAT: 1..3);
    ``pa`` is None for rebuilt tables (driver dumps record no table PAs)."""

    context: int
    level: int
    va_start: int
    va_end: int  # exclusive: the VA span the table maps
    pa: int | None
    rebuilt: bool

    def to_dict(self) -> dict:
        return {
            "context": self.context,
            "level": self.level,
            "va_start": hex_or_none(self.va_start),
            "va_end": hex_or_none(self.va_end),
            "size": human_size(self.va_end - self.va_start),
            "pa": hex_or_none(self.pa),
            "rebuilt": self.rebuilt,
        }


@dataclass
class DiffResult:
    """Everything ``diff`` found, each list in VA order (tables: context, VA, level)."""

    added: list[MappingRun]
    removed: list[MappingRun]
    changed: list[MappingRun]
    contents: list[ContentRun]
    tables_added: list[TableChange]
    tables_removed: list[TableChange]
    pages_compared: int  # pages dumped in both whose bytes were compared
    tables_rebuilt: bool = False  # True: tables compared as rebuilt (see module)
    entry_format: EntryFormat = entryformat.UAT  # both dumps' (checked comparable)

    @property
    def identical(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.contents
            or self.tables_added
            or self.tables_removed
        )

    def summary(self) -> dict[str, int]:
        """Counts: runs and pages per category, differing bytes, tables, pages compared."""
        out: dict[str, int] = {}
        for name, runs in (
            ("added", self.added),
            ("removed", self.removed),
            ("changed", self.changed),
            ("contents", self.contents),
        ):
            out[f"{name}_runs"] = len(runs)
            out[f"{name}_pages"] = sum(r.pages for r in runs)
        out["bytes_changed"] = sum(r.bytes_changed for r in self.contents)
        out["tables_added"] = len(self.tables_added)
        out["tables_removed"] = len(self.tables_removed)
        out["pages_compared"] = self.pages_compared
        return out

    def to_dict(self) -> dict:
        with _bulk_allocation():
            return self._to_dict()

    def _to_dict(self) -> dict:
        return {
            "identical": self.identical,
            "summary": self.summary(),
            "added": [r.to_dict(self.entry_format) for r in self.added],
            "removed": [r.to_dict(self.entry_format) for r in self.removed],
            "changed": [r.to_dict(self.entry_format) for r in self.changed],
            "contents": [r.to_dict() for r in self.contents],
            "tables_added": [t.to_dict() for t in self.tables_added],
            "tables_removed": [t.to_dict() for t in self.tables_removed],
            "tables_rebuilt": self.tables_rebuilt,
        }


# ---- comparability ---------------------------------------------------------------------------


def check_comparable(a: Dump, b: Dump) -> None:
    """Raise ``DiffError`` naming both values unless ``a`` and ``b`` share page size, entry
    format and address-space geometry (IAS, VA base)."""
    ga, gb = a.geometry, b.geometry
    for what, value_a, value_b, unit in (
        ("page size", a.page_size_bytes, b.page_size_bytes, " bytes"),
        ("entry format", a.entry_format.name, b.entry_format.name, ""),
        ("input address size (IAS)", ga.ias, gb.ias, " bits"),
        ("VA base", ga.va_base, gb.va_base, ""),
    ):
        if value_a != value_b:
            shown_a, shown_b = (
                (f"{value_a:#x}", f"{value_b:#x}")
                if what == "VA base"
                else (f"{value_a}{unit}", f"{value_b}{unit}")
            )
            raise DiffError(
                f"cannot compare the dumps: {what} is {shown_a} in {a.path} "
                f"but {shown_b} in {b.path}"
            )


# ---- mappings --------------------------------------------------------------------------------


def _mapping_runs(
    pieces_a: Pieces | None,
    pieces_b: Pieces | None,
    rows_a: SideRows,
    rows_b: SideRows,
    page: int,
    changes: np.ndarray | None,
) -> list[MappingRun]:
    """Coalesce pieces (of A, of B or matched: both given) into MappingRuns."""
    pieces = pieces_a if pieces_a is not None else pieces_b
    assert pieces is not None
    if not len(pieces):
        return []
    sides = [
        None if p is None else p.values(rows, page)
        for p, rows in ((pieces_a, rows_a), (pieces_b, rows_b))
    ]
    present = [v for v in sides if v is not None]
    equal = [v[name] for v in present for name in ("flags", "attr", "dumped")]
    if changes is not None:
        equal.append(changes)
    continuing = [v[name] for v in present for name in ("pa", "pa_raw")]
    starts = run_starts(pieces.va, pieces.pages, page, continuing, equal)
    counts = np.add.reduceat(pieces.pages, starts)
    va_start = pieces.va[starts]
    va_end = va_start + counts.astype(np.uint64) * U64(page)
    none = [None] * len(starts)

    def columns(values: dict[str, np.ndarray] | None) -> tuple[list, list, list, list]:
        if values is None:
            return none, none, none, none
        return (
            values["pa"][starts].tolist(),
            values["flags"][starts].tolist(),
            values["dumped"][starts].tolist(),
            values["pa_raw"][starts].tolist(),
        )

    pa_a, flags_a, dumped_a, raw_a = columns(sides[0])
    pa_b, flags_b, dumped_b, raw_b = columns(sides[1])
    if changes is not None:
        codes = changes[starts]
        names = {
            code: tuple(name for bit, name in CHANGE_NAMES if code & bit)
            for code in np.unique(codes).tolist()
        }
        change_list = [names[c] for c in codes.tolist()]
    else:
        change_list = [()] * len(starts)
    with _bulk_allocation():
        return list(
            map(
                MappingRun,
                va_start.tolist(),
                va_end.tolist(),
                counts.tolist(),
                pa_a,
                pa_b,
                flags_a,
                flags_b,
                dumped_a,
                dumped_b,
                change_list,
                raw_a,
                raw_b,
            )
        )


# ---- contents --------------------------------------------------------------------------------


def _content_runs(va: np.ndarray, byte_counts: np.ndarray, page: int) -> list[ContentRun]:
    starts = run_starts(va, np.ones(len(va), np.int64), page, [], [])
    if not len(starts):
        return []
    pages = np.diff(np.append(starts, len(va))).tolist()
    changed = np.add.reduceat(byte_counts, starts).tolist()
    with _bulk_allocation():
        return [
            ContentRun(v, v + n * page, n, c)
            for v, n, c in zip(va[starts].tolist(), pages, changed, strict=True)
        ]


# ---- tables ----------------------------------------------------------------------------------


def _dumped_context(dump: Dump) -> int:
    """The context whose pages the PT_LOADs hold (as ``levels.LevelTree`` decides)."""
    extension = dump.extension
    if extension is not None and extension.spaces:
        return extension.spaces[0].context
    return 0


def _carried_tables(dump: Dump) -> dict[tuple[int, int, int], TableChange]:
    return {
        (n.context, n.level, n.va_start): TableChange(
            n.context, n.level, n.va_start, n.va_end, n.pa, False
        )
        for n in dump.tables_index.nodes
    }


def _rebuilt_tables(dump: Dump, rows: SideRows) -> dict[tuple[int, int, int], TableChange]:
    """Tables below the top level where any page of the runs ``rows`` lies in their span."""
    context = _dumped_context(dump)
    out: dict[tuple[int, int, int], TableChange] = {}
    for lg in dump.geometry.levels[1:]:
        span_bytes = lg.entry_span_bytes << lg.index_bits
        for start in table_starts(rows.va, rows.pages, dump.page_size_bytes, span_bytes).tolist():
            # Keyed without the context: both sides are the dumped address space.
            out[(0, lg.level, start)] = TableChange(
                context, lg.level, start, start + span_bytes, None, True
            )
    return out


def _table_changes(
    a: Dump, b: Dump, rows_a: SideRows, rows_b: SideRows
) -> tuple[list[TableChange], list[TableChange], bool]:
    """(added, removed, compared as rebuilt)."""
    rebuilt = a.tables_index is None or b.tables_index is None
    if rebuilt:
        tables_a, tables_b = _rebuilt_tables(a, rows_a), _rebuilt_tables(b, rows_b)
    else:
        tables_a, tables_b = _carried_tables(a), _carried_tables(b)

    def order(key: tuple[int, int, int]) -> tuple[int, int, int]:
        context, level, va_start = key
        return context, va_start, level  # parents before children at the same VA

    added = [tables_b[k] for k in sorted(tables_b.keys() - tables_a.keys(), key=order)]
    removed = [tables_a[k] for k in sorted(tables_a.keys() - tables_b.keys(), key=order)]
    return added, removed, rebuilt


# ---- the diff --------------------------------------------------------------------------------


def diff(a: Dump, b: Dump, compare_contents: bool = True) -> DiffResult:
    """What changed from dump ``a`` to dump ``b``, by VA (see the module docstring).

    ``compare_contents`` False skips reading page data (``contents`` empty, ``pages_compared``
    0). Raises ``DiffError`` when the dumps cannot be compared, ``DumpChangedError`` when
    either file changes while they are compared."""
    with a.guard.reading(), b.guard.reading():
        return _diff(a, b, compare_contents)


def _diff(a: Dump, b: Dump, compare_contents: bool) -> DiffResult:
    check_comparable(a, b)
    page = a.page_size_bytes
    rows_a, rows_b = SideRows.of(a), SideRows.of(b)
    both_a, both_b, only_a, only_b = match(rows_a, rows_b, page)
    added = _mapping_runs(None, only_b, rows_a, rows_b, page, None)
    removed = _mapping_runs(only_a, None, rows_a, rows_b, page, None)

    side_a, side_b = both_a.values(rows_a, page), both_b.values(rows_b, page)
    exact = side_a["exact"] & side_b["exact"]
    attributes = (side_a["flags"] != side_b["flags"]) | (exact & (side_a["attr"] != side_b["attr"]))
    changes = (
        ((side_a["pa"] != side_b["pa"]) | (side_a["pa_raw"] != side_b["pa_raw"])).astype(np.uint8)
        * CHANGE_PA
        | attributes.astype(np.uint8) * CHANGE_ATTRIBUTES
        | (side_a["dumped"] != side_b["dumped"]).astype(np.uint8) * CHANGE_DUMPED
    )
    hit = np.flatnonzero(changes)
    changed = _mapping_runs(both_a.take(hit), both_b.take(hit), rows_a, rows_b, page, changes[hit])

    contents: list[ContentRun] = []
    pages_compared = 0
    if compare_contents:
        both = np.flatnonzero(side_a["dumped"] & side_b["dumped"])
        pages_compared = int(both_a.pages[both].sum())
        if pages_compared:
            vas, byte_counts = differing_pages(
                a,
                b,
                side_a["file_offset"][both],
                side_b["file_offset"][both],
                both_a.pages[both],
                both_a.va[both],
                page,
            )
            contents = _content_runs(vas, byte_counts, page)
    del side_a, side_b, both_a, both_b, only_a, only_b

    tables_added, tables_removed, rebuilt = _table_changes(a, b, rows_a, rows_b)
    return DiffResult(
        added=added,
        removed=removed,
        changed=changed,
        contents=contents,
        tables_added=tables_added,
        tables_removed=tables_removed,
        pages_compared=pages_compared,
        tables_rebuilt=rebuilt,
        entry_format=a.entry_format,
    )


__all__ = [
    "ContentRun",
    "DiffError",
    "DiffResult",
    "MappingRun",
    "TableChange",
    "check_comparable",
    "diff",
]
