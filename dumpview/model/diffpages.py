"""Two dumps' pages matched by VA as runs, for ``diff``: work and memory follow the runs the
files hold (``pageruns``), never the pages their PT_LOADs claim.

Owns the array side of ``diff``: each dump's runs as the columns a comparison needs
(``SideRows``); matching two of them (``match``): pieces of runs both dumps map page for page
(the same VAs) and the pieces only one maps; where runs of pieces start (``run_starts``: VA
and PAs continue, everything else equal); comparing the data of pieces both dump
(``differing_pages``, straight off the two read-only maps in chunks of at most
``CONTENT_CHUNK_BYTES``, file-contiguous pieces compared as one block, so memory stays flat);
and the tables a dump's pages lie in (``table_starts``, for rebuilt tables).

A piece is pages ``k .. k + pages`` of one run of each side it belongs to; inside it VA, both
PAs and both file offsets advance by a page per page and everything else stays, so a piece is
decided by its first page. Pages match when their VAs are equal (a PT_LOAD not aligned to the
page only matches pages on its own grid). Nothing here raises for dumps that opened, but
``DumpChangedError`` from the guard when a file changes while its data is compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.pagearrays import within
from dumpview.model.pageruns import gather, run_chunks

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

U64 = np.uint64
CONTENT_CHUNK_BYTES = 1 << 20  # data compared per step (numpy equality on u64 views)
SMALL_COMPARE_BYTES = 1 << 16  # below this, bytes equality (memcmp) beats numpy's call cost


@dataclass
class SideRows:
    """One dump's runs (``pageruns``), as the columns a comparison reads (first page of each)."""

    va: np.ndarray  # uint64
    pages: np.ndarray  # int64
    pa: np.ndarray  # uint64: the walker's PA (pa_raw through Dump.pa_mask)
    pa_raw: np.ndarray  # uint64: p_paddr + offset
    flags: np.ndarray  # uint32
    dumped: np.ndarray  # bool
    attr: np.ndarray  # uint64: entry bits outside the output address (exact or rebuilt)
    exact: np.ndarray  # bool
    file_offset: np.ndarray  # uint64

    def __len__(self) -> int:
        return len(self.va)

    @classmethod
    def of(cls, dump: Dump) -> SideRows:
        attribute_mask = U64(dump.entry_format.attribute_mask)
        parts = (
            (
                r.va,
                r.pages,
                dump.to_pa(r.pa_raw),
                r.pa_raw,
                r.flags,
                r.dumped,
                r.pte & attribute_mask,
                r.pte_exact,
                r.file_offset,
            )
            for r in run_chunks(dump)
        )
        dtypes = (U64, np.int64, U64, U64, np.uint32, bool, U64, bool, U64)
        return cls(*gather(parts, dtypes, dump.segment_count))


@dataclass
class Pieces:
    """Pages ``k .. k + pages`` of run ``row`` of one side, in VA order; ``va`` the first."""

    row: np.ndarray  # int64
    k: np.ndarray  # int64
    pages: np.ndarray  # int64
    va: np.ndarray  # uint64
    whole: bool = False  # every run of the side, whole, in order (row = 0 .. n, k = 0)

    def __len__(self) -> int:
        return len(self.row)

    def take(self, which: np.ndarray) -> Pieces:
        return Pieces(self.row[which], self.k[which], self.pages[which], self.va[which])

    def values(self, side: SideRows, page: int) -> dict[str, np.ndarray]:
        """Every column of ``side`` at each piece's first page (the columns themselves for
        whole runs)."""
        names = ("pa", "pa_raw", "flags", "dumped", "attr", "exact", "file_offset")
        if self.whole:
            return {name: getattr(side, name) for name in names}
        off = self.k.astype(U64) * U64(page)
        row = self.row
        return {
            "pa": side.pa[row] + off,
            "pa_raw": side.pa_raw[row] + off,
            "flags": side.flags[row],
            "dumped": side.dumped[row],
            "attr": side.attr[row],
            "exact": side.exact[row],
            "file_offset": side.file_offset[row] + off,
        }


def whole(side: SideRows) -> Pieces:
    """Every run of ``side`` as one piece."""
    n = len(side)
    return Pieces(np.arange(n, dtype=np.int64), np.zeros(n, np.int64), side.pages, side.va, True)


def match(a: SideRows, b: SideRows, page: int) -> tuple[Pieces, Pieces, Pieces, Pieces]:
    """(pieces of A both map, the same pages' pieces of B, pieces only A maps, pieces only B
    maps), each in VA order."""
    if len(a) == len(b) and np.array_equal(a.va, b.va) and np.array_equal(a.pages, b.pages):
        none = Pieces(*(np.zeros(0, t) for t in (np.int64, np.int64, np.int64, U64)))
        return whole(a), whole(b), none, none
    shift = page.bit_length() - 1
    low = U64(page - 1)
    # Pages as (unit, residue): the VA's page number and its offset from the page grid.
    first_a = (a.va >> U64(shift)).astype(np.int64)
    first_b = (b.va >> U64(shift)).astype(np.int64)
    last_a, last_b = first_a + a.pages - 1, first_b + b.pages - 1
    lo = np.searchsorted(last_b, first_a, side="left")
    count = np.maximum(np.searchsorted(first_b, last_a, side="right") - lo, 0)
    row_a = np.repeat(np.arange(len(a), dtype=np.int64), count)
    row_b = np.repeat(lo, count) + within(count)
    start = np.maximum(first_a[row_a], first_b[row_b])
    stop = np.minimum(last_a[row_a], last_b[row_b])
    keep = (start <= stop) & ((a.va[row_a] & low) == (b.va[row_b] & low))
    row_a, row_b, start, stop = row_a[keep], row_b[keep], start[keep], stop[keep]
    pages = stop - start + 1
    va = (start.astype(U64) << U64(shift)) | (a.va[row_a] & low)
    both_a = Pieces(row_a, start - first_a[row_a], pages, va)
    both_b = Pieces(row_b, start - first_b[row_b], pages, va)
    only_a = _rest(a, first_a, last_a, row_a, start, stop, shift)
    only_b = _rest(b, first_b, last_b, row_b, start, stop, shift)
    return both_a, both_b, only_a, only_b


def _rest(
    side: SideRows,
    first: np.ndarray,
    last: np.ndarray,
    row: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    shift: int,
) -> Pieces:
    """The pieces of ``side``'s runs outside the matched ``start .. stop`` (inclusive page
    units) of run ``row`` (sorted by row, then start)."""
    n = len(side)
    rows = np.arange(n, dtype=np.int64)
    # Each run's matched parts between two sentinels just outside it; a gap between two
    # neighbours (in row, then page order) is a piece only this side maps.
    all_row = np.concatenate((rows, row, rows))
    all_start = np.concatenate((first - 1, start, last + 1))
    all_stop = np.concatenate((first - 1, stop, last + 1))
    order = np.lexsort((all_start, all_row))
    all_row, all_start, all_stop = all_row[order], all_start[order], all_stop[order]
    gap = (all_row[1:] == all_row[:-1]) & (all_start[1:] > all_stop[:-1] + 1)
    at = np.flatnonzero(gap)
    owner = all_row[at]
    begin = all_stop[at] + 1
    pages = all_start[at + 1] - begin
    va = (begin.astype(U64) << U64(shift)) | (side.va[owner] & U64((1 << shift) - 1))
    return Pieces(owner, begin - first[owner], pages, va)


def run_starts(
    va: np.ndarray,
    pages: np.ndarray,
    page: int,
    continuing: list[np.ndarray],
    equal: list[np.ndarray],
) -> np.ndarray:
    """Where runs of pieces start: a piece starts one unless its VA and every ``continuing``
    column go on a page after the last page of the piece before (uint64, modulo 2**64, as
    page by page) and every ``equal`` column stays the same."""
    n = len(va)
    if not n:
        return np.zeros(0, dtype=np.int64)
    span = pages[:-1].astype(U64) * U64(page)
    breaks = va[1:] != va[:-1] + span
    for column in continuing:
        breaks |= column[1:] != column[:-1] + span
    for column in equal:
        breaks |= column[1:] != column[:-1]
    return np.flatnonzero(np.concatenate(([True], breaks)))


def differing_pages(
    a: Dump,
    b: Dump,
    off_a: np.ndarray,
    off_b: np.ndarray,
    pages: np.ndarray,
    va: np.ndarray,
    page: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(VA, differing bytes) of each page of the pieces (data at ``off_a``/``off_b``, VA
    order) whose bytes differ, in VA order."""
    vas: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    buf_a, buf_b = a.buffer, b.buffer
    chunk_pages = max(1, CONTENT_CHUNK_BYTES // page)
    word = page % 8 == 0
    step = U64(page)
    total = np.cumsum(pages)  # pages of pieces 0..i
    span = pages[:-1].astype(U64) * step
    breaks = (off_a[1:] != off_a[:-1] + span) | (off_b[1:] != off_b[:-1] + span)
    starts = np.flatnonzero(np.concatenate(([True], breaks))).tolist()
    for start, end in zip(starts, [*starts[1:], len(pages)], strict=True):
        # Pieces start..end are one extent, contiguous in both files: pages g0..g1 of all.
        g0 = int(total[start] - pages[start])
        g1 = int(total[end - 1])
        base_a, base_b = int(off_a[start]), int(off_b[start])
        for g in range(g0, g1, chunk_pages):
            n = min(chunk_pages, g1 - g)
            at_a = base_a + (g - g0) * page
            at_b = base_b + (g - g0) * page
            size = n * page
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
            del x, y
            hit = np.flatnonzero(per_page)
            index = hit + g  # among all the pieces' pages
            piece = np.searchsorted(total, index, side="right")
            k = index - (total[piece] - pages[piece])
            vas.append(va[piece] + k.astype(U64) * step)
            counts.append(per_page[hit])
    if not vas:
        return np.zeros(0, dtype=U64), np.zeros(0, dtype=np.int64)
    return np.concatenate(vas), np.concatenate(counts).astype(np.int64)


def table_starts(va: np.ndarray, pages: np.ndarray, page: int, span_bytes: int) -> np.ndarray:
    """The sorted distinct starts of the ``span_bytes``-aligned blocks (a table's span) that
    the pages of runs (``va``, ``pages``) lie in: at most a run's pages over the entries of a
    table more than the runs."""
    if not len(va):
        return np.zeros(0, dtype=U64)
    shift = U64(span_bytes.bit_length() - 1)
    first = va >> shift
    last = (va + (pages.astype(U64) - U64(1)) * U64(page)) >> shift
    count = (last - first).astype(np.int64) + 1
    units = first if (count == 1).all() else np.repeat(first, count) + within(count).astype(U64)
    units = units[np.concatenate(([True], units[1:] != units[:-1]))]  # sorted, as runs are
    return units << shift
