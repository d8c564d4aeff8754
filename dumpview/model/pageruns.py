"""The pages of a dump's dumped space as runs of alike pages, in bounded chunks: how ``check``
and ``diff`` read pages, so their work follows what the file holds, never the pages it claims.

Owns ``run_chunks(dump)``. A run (one row of ``PageRuns``) is pages ``k0 .. k0 + pages`` of one
PT_LOAD that share the PT_LOAD's p_flags, the dumped state, whether the entry is exact (read
from the carried leaf tables) and the entry's attribute bits; page ``k`` of the run has
``va + k * page``, ``pa_raw + k * page`` and, when dumped, ``file_offset + k * page``, and its
entry is ``pte`` with the output address advanced by ``k`` pages when ``pte_step`` (a rebuilt
entry, or page entries of the leaf tables) or ``pte`` itself (a block's own entry, the same for
all its pages, as ``TablesIndex.leaf_lookup`` gives it).

A PT_LOAD is cut where its data ends (the last whole page inside p_filesz), where ``pa_raw``
crosses a multiple of 2**OAS (so ``pa = pa_raw & Dump.pa_mask`` advances by a page inside a
run too), around each page the leaf tables map with a page entry and at each block's bounds.
Page entries that continue each other (same attributes, the output address a page further) are
joined again. So a driver dump has one or two runs per PT_LOAD whatever its p_memsz claims, and
a dump with tables at most about one per leaf entry it carries.

Expanded page by page, the runs are exactly ``pagearrays``' pages in the same order (VA, pa,
pa_raw, flags, dumped, file offset, pte, pte_exact); ``expand`` does that (for tests and small
answers). Chunks hold at most ``chunk_segments`` PT_LOADs each. Nothing here raises for a dump
that opened; the dump's guard is checked once per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.pagearrays import PageArrays, page_counts, ptes_from_segments, within

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

DEFAULT_CHUNK_SEGMENTS = 1 << 16
U64 = np.uint64
_K_BITS = 26  # a PT_LOAD holds at most MAX_PAGES = 2**25 pages: k (and k + 1) fit in 26 bits


@dataclass
class PageRuns:
    """Runs of alike pages in VA order, as parallel columns (see the module docstring)."""

    va: np.ndarray  # uint64: the first page's VA
    pages: np.ndarray  # int64: pages in the run (>= 1)
    pa_raw: np.ndarray  # uint64: the first page's p_paddr + offset
    flags: np.ndarray  # uint32: the PT_LOAD's p_flags
    dumped: np.ndarray  # bool
    file_offset: np.ndarray  # uint64: the first page's data (meaningful when dumped)
    pte: np.ndarray  # uint64: the first page's entry
    pte_exact: np.ndarray  # bool: read from the carried tables (else rebuilt)
    pte_step: np.ndarray  # bool: the entry's output address advances a page per page

    def __len__(self) -> int:
        return len(self.va)


def run_chunks(dump: Dump, chunk_segments: int = DEFAULT_CHUNK_SEGMENTS) -> Iterator[PageRuns]:
    """The runs of every page of ``dump``'s dumped space, ``chunk_segments`` PT_LOADs at a
    time, in VA order (a run never spans two chunks)."""
    counts = page_counts(dump)
    index = dump.tables_index
    leaves = None
    if index is not None:
        _ = index.nodes  # decides the dumped context
        leaves = index.leaf_runs(index.dumped_context)
    for lo in range(0, len(counts), chunk_segments):
        hi = min(lo + chunk_segments, len(counts))
        dump.guard.check()
        runs = _chunk(dump, lo, hi, counts[lo:hi], leaves)
        if len(runs):
            yield runs


def all_runs(dump: Dump, chunk_segments: int = DEFAULT_CHUNK_SEGMENTS) -> PageRuns:
    """Every run of ``dump`` as one ``PageRuns`` (for callers that keep them all)."""
    parts = list(run_chunks(dump, chunk_segments))
    if not parts:
        return _empty()
    if len(parts) == 1:
        return parts[0]
    names = PageRuns.__dataclass_fields__
    return PageRuns(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})


def gather(
    parts: Iterable[tuple[np.ndarray, ...]], dtypes: tuple[type, ...], capacity: int
) -> list[np.ndarray]:
    """Columns (one per dtype) filled in place from ``parts`` (tuples of equally long arrays,
    e.g. columns made from each chunk of runs): no list of parts and no concatenation copy.
    ``capacity`` rows are reserved first (the PT_LOAD count is a good guess) and grown by
    half when needed; the result is trimmed when much was left unused."""
    columns = [np.empty(capacity, dtype=t) for t in dtypes]
    used = 0
    for part in parts:
        n = len(part[0])
        if used + n > len(columns[0]):
            size = max(used + n, len(columns[0]) * 3 // 2)
            columns = [np.concatenate((c[:used], np.empty(size - used, c.dtype))) for c in columns]
        for column, values in zip(columns, part, strict=True):
            column[used : used + n] = values
        used += n
    if used * 4 < len(columns[0]) * 3:
        return [c[:used].copy() for c in columns]
    return [c[:used] for c in columns]


def expand(dump: Dump, runs: PageRuns) -> PageArrays:
    """The runs page by page, as ``pagearrays`` gives them (``index`` and ``segment`` are -1:
    runs do not keep them). Memory follows the pages: for tests and small answers."""
    page = U64(dump.page_size_bytes)
    n = runs.pages.astype(np.int64)
    row = np.repeat(np.arange(len(n)), n)
    k = within(n).astype(U64)
    off = k * page
    pa_raw = runs.pa_raw[row] + off
    fmt = dump.entry_format
    oa = fmt.output_address(runs.pte[row]) + np.where(runs.pte_step[row], off, U64(0))
    pte = (runs.pte[row] & _not_oa(dump)) | fmt.encode_output_address(oa)
    minus_one = np.full(len(row), -1, dtype=np.int64)
    return PageArrays(
        minus_one,
        runs.va[row] + off,
        dump.to_pa(pa_raw),
        pa_raw,
        runs.flags[row],
        runs.dumped[row],
        minus_one,
        runs.file_offset[row] + off,
        pte,
        runs.pte_exact[row],
        fmt.attribute_mask,
    )


def _not_oa(dump: Dump) -> np.uint64:
    """The entry bits outside the (page-aligned) output address: an entry is these bits of
    itself plus ``encode_output_address`` of its ``output_address``."""
    fmt = dump.entry_format
    oa_bits = fmt.page_oa_mask | (fmt.encode_output_address((1 << 52) - 1) & ~fmt.page_oa_mask)
    return U64(((1 << 64) - 1) & ~oa_bits)


def _empty() -> PageRuns:
    u64, b = np.zeros(0, U64), np.zeros(0, bool)
    return PageRuns(u64, np.zeros(0, np.int64), u64, np.zeros(0, np.uint32), b, u64, u64, b, b)


def _chunk(dump: Dump, lo: int, hi: int, n: np.ndarray, leaves) -> PageRuns:
    """The runs of PT_LOADs ``lo .. hi`` (``n`` pages each)."""
    page = dump.page_size_bytes
    step = U64(page)
    va = dump.seg_va[lo:hi]
    raw = dump.seg_pa_raw[lo:hi]
    last_va = va + (np.maximum(n, 1) - 1).astype(U64) * step  # the last page's VA
    dumped_pages = np.minimum(dump.seg_filesz[lo:hi] // step, n.astype(U64)).astype(np.int64)
    segs: list[np.ndarray] = [np.flatnonzero(n > 0)]
    ks: list[np.ndarray] = [np.zeros(len(segs[0]), np.int64)]

    def cut(s: np.ndarray, k: np.ndarray) -> None:
        inside = (k > 0) & (k < n[s])
        segs.append(s[inside])
        ks.append(k[inside])

    partly = np.flatnonzero((dumped_pages > 0) & (dumped_pages < n))
    cut(partly, dumped_pages[partly])
    _oas_cuts(dump, raw, n, cut)
    if leaves is not None:
        _table_cuts(leaves, va, last_va, n, page, cut)

    key = (np.concatenate(segs).astype(np.int64) << _K_BITS) | np.concatenate(ks)
    if len(segs) > 1 and len(key) > len(segs[0]):  # cuts: sorted, each once
        key.sort()
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    segs.clear()
    ks.clear()
    s = key >> _K_BITS
    k = key & ((1 << _K_BITS) - 1)
    following = np.append(k[1:], 0)
    same = np.append(s[1:] == s[:-1], False)
    pages = np.where(same, following, n[s]) - k
    off = k.astype(U64) * step
    row_va = va[s] + off
    row_raw = raw[s] + off
    flags = dump.seg_flags[lo:hi][s]
    dumped = k < dumped_pages[s]
    file_offset = dump.seg_offset[lo:hi][s] + off
    fmt = dump.entry_format
    exact = np.zeros(len(s), bool)
    pte_step = np.ones(len(s), bool)
    pte = ptes_from_segments(fmt, row_raw, flags)
    if leaves is not None:
        found, leaf_pte, level = dump.tables_index.leaf_lookup(row_va)
        exact = found
        pte[found] = leaf_pte[found]
        pte_step = ~found | (level == dump.geometry.levels[-1].level)
        # Page entries that continue each other (same PT_LOAD, attributes, dumped state,
        # output address a page further on the same side of the OAS) are one run again.
        oa = fmt.output_address(pte)
        not_oa = _not_oa(dump)
        oa_last = oa + (pages.astype(U64) - U64(1)) * step
        join = (
            (s[1:] == s[:-1])
            & exact[1:]
            & exact[:-1]
            & pte_step[1:]
            & pte_step[:-1]
            & (dumped[1:] == dumped[:-1])
            & ((pte[1:] & not_oa) == (pte[:-1] & not_oa))
            & (oa[1:] == oa_last[:-1] + step)
            & ((oa[1:] >> U64(dump.geometry.oas)) == (oa[:-1] >> U64(dump.geometry.oas)))
        )
        if join.any():
            starts = np.flatnonzero(np.concatenate(([True], ~join)))
            pages = np.add.reduceat(pages, starts)
            row_va, row_raw, flags, dumped = (
                row_va[starts],
                row_raw[starts],
                flags[starts],
                dumped[starts],
            )
            file_offset, pte = file_offset[starts], pte[starts]
            exact, pte_step = exact[starts], pte_step[starts]
    return PageRuns(row_va, pages, row_raw, flags, dumped, file_offset, pte, exact, pte_step)


def _oas_cuts(dump: Dump, raw: np.ndarray, n: np.ndarray, cut) -> None:
    """Cut PT_LOADs where ``p_paddr + k * page`` crosses a multiple of 2**OAS (or wraps past
    2**64): rare (hostile ``p_paddr``), so a Python loop over the PT_LOADs that do."""
    oas = dump.geometry.oas
    page = dump.page_size_bytes
    last = raw + (np.maximum(n, 1) - 1).astype(U64) * U64(page)
    crosses = (n > 1) & (((last >> U64(oas)) != (raw >> U64(oas))) | (last < raw))
    where = np.flatnonzero(crosses)
    if not len(where):
        return
    s_out: list[int] = []
    k_out: list[int] = []
    unit = 1 << oas
    for s in where.tolist():
        first, count = int(raw[s]), int(n[s])
        end = first + (count - 1) * page  # as a Python int: no wrap
        boundary = (first // unit + 1) * unit
        while boundary <= end:
            s_out.append(s)
            k_out.append(-(-(boundary - first) // page))
            boundary += unit
    cut(np.array(s_out, np.int64), np.array(k_out, np.int64))


def _table_cuts(leaves, va: np.ndarray, last_va: np.ndarray, n: np.ndarray, page: int, cut) -> None:
    """Cut PT_LOADs around every page a leaf table maps with a page entry and at the bounds
    of every block entry (``TablesIndex.leaf_runs``: sizes follow the entries, not the pages
    blocks claim)."""
    page_va, _pte, _level, block_va, block_span, _bpte, _blevel = leaves
    step = U64(page)
    if not len(va):
        return
    if len(page_va):
        j0 = int(np.searchsorted(page_va, va[0]))
        j1 = int(np.searchsorted(page_va, last_va[-1], side="right"))
        entry = page_va[j0:j1]
        s = np.searchsorted(va, entry, side="right").astype(np.int64) - 1
        ok = s >= 0
        s, entry = s[ok], entry[ok]
        ok = (n[s] > 0) & (entry <= last_va[s]) & ((entry - va[s]) % step == 0)
        s, entry = s[ok], entry[ok]
        k = ((entry - va[s]) // step).astype(np.int64)
        cut(s, k)
        cut(s, k + 1)
    if len(block_va):
        block_last = block_va + (block_span - U64(1))
        b0 = int(np.searchsorted(block_last, va[0]))
        b1 = int(np.searchsorted(block_va, last_va[-1], side="right"))
        first, final = block_va[b0:b1], block_last[b0:b1]
        s_lo = np.searchsorted(last_va, first)  # the first PT_LOAD reaching each block
        s_hi = np.searchsorted(va, final, side="right")
        count = np.maximum(s_hi - s_lo, 0)
        b = np.repeat(np.arange(len(first)), count)
        s = within(count) + np.repeat(s_lo, count)
        start, stop = first[b], final[b]
        seg_va = va[s]
        after = start > seg_va
        gap = np.where(after, start - seg_va, U64(0))
        k_start = gap // step + (gap % step != 0)
        k_stop = np.where(stop >= seg_va, (stop - seg_va) // step + U64(1), U64(0))
        cut(s, k_start.astype(np.int64))
        cut(s, k_stop.astype(np.int64))
