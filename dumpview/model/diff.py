"""What changed between two dumps, by VA: mappings, page contents and tables.

Owns ``diff(a, b)``. Pages of the dumped address space (``pagearrays.all_pages`` of each dump)
are matched by VA with numpy (no Python loop per page) and sorted into:

- added: a VA only B maps; removed: a VA only A maps;
- changed: a VA both map with a different PA ("pa": the walker's PA, or the entry's own output
  address where it has bits above the OAS), different attributes ("attributes": the
  PT_LOADs' ``p_flags`` differ, or, where both pages have exact entries from carried tables,
  the entries differ outside the output-address bits 51:14), or a different dumped state
  ("dumped"), in that order in ``MappingRun.changes``;
- contents: pages dumped in both (whatever their PA) whose bytes differ, with how many bytes
  differ. Data is compared straight off the two read-only maps in chunks of at most
  ``CONTENT_CHUNK_BYTES`` (file-contiguous pages compared as one block), so memory stays flat;
  differing bytes are counted only for pages that are not equal.

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

from dumpview.model.pagearrays import PageArrays, all_pages
from dumpview.model.text import hex_or_none, human_size
from formats import entryformat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

U64 = np.uint64
U64_MAX = (1 << 64) - 1
CONTENT_CHUNK_BYTES = 1 << 20  # data compared per step (numpy equality on u64 views)
SMALL_COMPARE_BYTES = 1 << 16  # below this, bytes equality (memcmp) beats numpy's call cost


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


def _match(va_a: np.ndarray, va_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in A, in B) of the VAs both sorted, duplicate-free arrays hold."""
    if len(va_a) == len(va_b) and np.array_equal(va_a, va_b):
        both = np.arange(len(va_a), dtype=np.int64)
        return both, both
    if not len(va_a) or not len(va_b):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    j = np.searchsorted(va_b, va_a)
    hit = j < len(va_b)
    hit[hit] = va_b[j[hit]] == va_a[hit]
    return np.flatnonzero(hit), j[hit].astype(np.int64)


def _run_starts(
    va: np.ndarray, page: int, continuing: list[np.ndarray], equal: list[np.ndarray]
) -> np.ndarray:
    """Where runs start: a row starts one unless its VA and every ``continuing`` column go on
    by one page from the row before and every ``equal`` column stays the same."""
    n = len(va)
    if not n:
        return np.zeros(0, dtype=np.int64)
    step = U64(page)
    breaks = va[1:] != va[:-1] + step
    for column in continuing:
        breaks |= column[1:] != column[:-1] + step
    for column in equal:
        breaks |= column[1:] != column[:-1]
    return np.flatnonzero(np.concatenate(([True], breaks)))


@dataclass
class _Side:
    """The columns of one dump's pages that a mapping run needs."""

    pa: np.ndarray
    flags: np.ndarray
    dumped: np.ndarray
    attr: np.ndarray  # entry bits outside OA (exact where carried, else rebuilt from p_flags)
    pa_raw: np.ndarray

    @classmethod
    def of(cls, pages: PageArrays, rows: np.ndarray) -> _Side:
        return cls(
            pages.pa[rows],
            pages.flags[rows],
            pages.dumped[rows],
            pages.pte[rows] & U64(pages.attribute_mask),
            pages.pa_raw[rows],
        )

    def take(self, rows: np.ndarray) -> _Side:
        return _Side(
            self.pa[rows], self.flags[rows], self.dumped[rows], self.attr[rows], self.pa_raw[rows]
        )


def _mapping_runs(
    va: np.ndarray,
    page: int,
    side_a: _Side | None,
    side_b: _Side | None,
    changes: np.ndarray | None,
) -> list[MappingRun]:
    """Coalesce pages (rows of the columns given) into MappingRuns."""
    sides = [s for s in (side_a, side_b) if s is not None]
    equal = [c for s in sides for c in (s.flags, s.attr, s.dumped)]
    if changes is not None:
        equal.append(changes)
    starts = _run_starts(va, page, [c for s in sides for c in (s.pa, s.pa_raw)], equal)
    if not len(starts):
        return []
    counts = np.diff(np.append(starts, len(va)))
    va_start = va[starts]
    va_end = va_start + counts.astype(np.uint64) * U64(page)
    none = [None] * len(starts)

    def columns(side: _Side | None) -> tuple[list, list, list, list]:
        if side is None:
            return none, none, none, none
        return (
            side.pa[starts].tolist(),
            side.flags[starts].tolist(),
            side.dumped[starts].tolist(),
            side.pa_raw[starts].tolist(),
        )

    pa_a, flags_a, dumped_a, raw_a = columns(side_a)
    pa_b, flags_b, dumped_b, raw_b = columns(side_b)
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


def _extents(
    off_a: np.ndarray, off_b: np.ndarray, page: int, chunk_pages: int
) -> Iterator[tuple[int, int]]:
    """(first row, rows) of blocks whose data is contiguous in both files, at most
    ``chunk_pages`` rows each."""
    step = U64(page)
    breaks = (off_a[1:] != off_a[:-1] + step) | (off_b[1:] != off_b[:-1] + step)
    starts = np.flatnonzero(np.concatenate(([True], breaks))).tolist()
    for start, end in zip(starts, [*starts[1:], len(off_a)], strict=True):
        for first in range(start, end, chunk_pages):
            yield first, min(chunk_pages, end - first)


def _differing_pages(
    a: Dump, b: Dump, off_a: np.ndarray, off_b: np.ndarray, page: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, differing bytes) of the pages at ``off_a``/``off_b`` whose bytes differ."""
    rows: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    buf_a, buf_b = a.buffer, b.buffer
    chunk_pages = max(1, CONTENT_CHUNK_BYTES // page)
    word = page % 8 == 0
    for first, n in _extents(off_a, off_b, page, chunk_pages):
        at_a, at_b, size = int(off_a[first]), int(off_b[first]), n * page
        a.guard.check(at_a)
        b.guard.check(at_b)
        if size <= SMALL_COMPARE_BYTES or not word:
            equal = buf_a[at_a : at_a + size].tobytes() == buf_b[at_b : at_b + size].tobytes()
        else:
            equal = np.array_equal(
                np.frombuffer(buf_a, U64, size // 8, at_a),
                np.frombuffer(buf_b, U64, size // 8, at_b),
            )
        if equal:
            continue
        x = np.frombuffer(buf_a, np.uint8, size, at_a).reshape(n, page)
        y = np.frombuffer(buf_b, np.uint8, size, at_b).reshape(n, page)
        per_page = np.count_nonzero(x != y, axis=1)
        hit = np.flatnonzero(per_page)
        rows.append(hit + first)
        counts.append(per_page[hit])
        del x, y
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows).astype(np.int64), np.concatenate(counts).astype(np.int64)


def _content_runs(va: np.ndarray, byte_counts: np.ndarray, page: int) -> list[ContentRun]:
    starts = _run_starts(va, page, [], [])
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


def _rebuilt_tables(dump: Dump, va: np.ndarray) -> dict[tuple[int, int, int], TableChange]:
    """Tables below the top level where any page (``va``, sorted) lies in their span."""
    context = _dumped_context(dump)
    out: dict[tuple[int, int, int], TableChange] = {}
    for lg in dump.geometry.levels[1:]:
        span_bytes = lg.entry_span_bytes << lg.index_bits
        starts = va & U64(U64_MAX & ~(span_bytes - 1))
        if len(starts):
            starts = starts[np.concatenate(([True], starts[1:] != starts[:-1]))]
        for start in starts.tolist():
            # Keyed without the context: both sides are the dumped address space.
            out[(0, lg.level, start)] = TableChange(
                context, lg.level, start, start + span_bytes, None, True
            )
    return out


def _table_changes(
    a: Dump, b: Dump, va_a: np.ndarray, va_b: np.ndarray
) -> tuple[list[TableChange], list[TableChange], bool]:
    """(added, removed, compared as rebuilt)."""
    rebuilt = a.tables_index is None or b.tables_index is None
    if rebuilt:
        tables_a, tables_b = _rebuilt_tables(a, va_a), _rebuilt_tables(b, va_b)
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
    pages_a, pages_b = all_pages(a), all_pages(b)
    ia, ib = _match(pages_a.va, pages_b.va)
    only_a = np.ones(len(pages_a), dtype=bool)
    only_a[ia] = False
    only_b = np.ones(len(pages_b), dtype=bool)
    only_b[ib] = False
    rows_a, rows_b = np.flatnonzero(only_a), np.flatnonzero(only_b)
    added = _mapping_runs(pages_b.va[rows_b], page, None, _Side.of(pages_b, rows_b), None)
    removed = _mapping_runs(pages_a.va[rows_a], page, _Side.of(pages_a, rows_a), None, None)

    side_a, side_b = _Side.of(pages_a, ia), _Side.of(pages_b, ib)
    exact = pages_a.pte_exact[ia] & pages_b.pte_exact[ib]
    attributes = (side_a.flags != side_b.flags) | (exact & (side_a.attr != side_b.attr))
    changes = (
        ((side_a.pa != side_b.pa) | (side_a.pa_raw != side_b.pa_raw)).astype(np.uint8) * CHANGE_PA
        | attributes.astype(np.uint8) * CHANGE_ATTRIBUTES
        | (side_a.dumped != side_b.dumped).astype(np.uint8) * CHANGE_DUMPED
    )
    hit = np.flatnonzero(changes)
    changed = _mapping_runs(
        pages_a.va[ia[hit]],
        page,
        side_a.take(hit),
        side_b.take(hit),
        changes[hit],
    )

    contents: list[ContentRun] = []
    pages_compared = 0
    if compare_contents:
        both = np.flatnonzero(side_a.dumped & side_b.dumped)
        pages_compared = len(both)
        if pages_compared:
            off_a = pages_a.file_offset[ia[both]]
            off_b = pages_b.file_offset[ib[both]]
            rows, byte_counts = _differing_pages(a, b, off_a, off_b, page)
            contents = _content_runs(pages_a.va[ia[both[rows]]], byte_counts, page)

    tables_added, tables_removed, rebuilt = _table_changes(a, b, pages_a.va, pages_b.va)
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
