"""memattr-alias: one PA mapped by several leaves with different memory attributes.

Owns ``check_memattr_alias``. The leaf rows (``facts.Leaves``) are intervals of PA pages, so the
work follows the rows and the answer, never the pages rows claim: first the PA pages covered
with two memory attributes or more (each memattr's intervals joined, then where two joins
overlap), then, inside those only, the rows cut wherever one of them begins or ends. Each piece
between two cuts is one alias group per page whose members advance together, a page at a time.
Groups continue each other (one run, one ``Anomaly``) when the next PA page follows and each
alias (same place in the group; members in leaf order, (context, VA)) is in the same context,
a page further in VA, with the same memattr: the rule page by page, decided per piece.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check.findings import MEMATTR_ALIAS, Anomaly
from dumpview.model.pagearrays import within

if TYPE_CHECKING:
    from dumpview.model.check.facts import Facts

_U64 = np.uint64


def check_memattr_alias(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    page = facts.page
    shift = _U64(page.bit_length() - 1)
    addressable = facts.addressable
    every = bool(addressable.all())
    rows = np.arange(len(leaves)) if every else np.flatnonzero(addressable)
    if len(rows) < 2:
        return []
    attr = leaves.memattr if every else leaves.memattr[rows]
    if attr.min() == attr.max():
        return []
    # Only rows that overlap another one with a different memattr can alias: keep those.
    # (PA page numbers in 32 bits where they fit, as with a 16 KiB page and a 42-bit OAS.)
    start = facts.pa >> shift if every else facts.pa[rows] >> shift
    narrow = np.uint32 if facts.geometry.oas - int(shift) <= 31 else np.int64
    start = start.astype(narrow)
    linear = leaves.linear if every else leaves.linear[rows]
    pages = leaves.pages if every else leaves.pages[rows]
    keep = _overlapping(start, pages if linear.all() else np.where(linear, pages, 1), attr)
    del start, linear, pages
    if not len(keep):
        return []
    rows, attr = rows[keep], attr[keep]
    start = (facts.pa[rows] >> shift).astype(np.int64)  # in pages
    count = leaves.pages[rows].astype(np.int64)
    offset = np.zeros(len(rows), np.int64)  # the row's page the interval starts at
    flat = (count > 1) & ~leaves.linear[rows]
    if flat.any():
        # A row whose pages share one PA (a block entry with stray bits: never addressable
        # for the UAT, which has no blocks, nor for LPAE, which does not cut) is a one-page
        # interval per page, each page its own alias.
        reps = np.where(flat, count, 1)
        offset = within(reps)
        rows, attr, start = np.repeat(rows, reps), np.repeat(attr, reps), np.repeat(start, reps)
        count = np.where(np.repeat(flat, reps), 1, np.repeat(count, reps))
    end = start + count
    hot_start, hot_end = _covered_twice(start, end, attr)
    if not len(hot_start):
        return []

    # The rows' parts inside the doubly covered PA pages, then every piece between two cuts.
    lo = np.searchsorted(hot_end, start, side="right")
    inside = np.maximum(np.searchsorted(hot_start, end, side="left") - lo, 0)
    part = np.repeat(np.arange(len(rows)), inside)
    which = np.repeat(lo, inside) + within(inside)
    part_start = np.maximum(start[part], hot_start[which])
    part_end = np.minimum(end[part], hot_end[which])
    cuts = np.unique(np.concatenate((part_start, part_end)))
    first_cut = np.searchsorted(cuts, part_start)
    pieces = np.searchsorted(cuts, part_end) - first_cut
    member = np.repeat(part, pieces)  # index into rows
    piece = np.repeat(first_cut, pieces) + within(pieces)
    order = np.lexsort((member, piece))  # by piece, then leaf order
    member, piece = member[order], piece[order]

    group_first = np.flatnonzero(np.concatenate(([True], piece[1:] != piece[:-1])))
    counts = np.diff(np.append(group_first, len(piece)))
    group_piece = piece[group_first]
    group_pa = cuts[group_piece]  # the group's first PA page
    group_len = cuts[group_piece + 1] - group_pa  # pages
    m_rows = rows[member]
    m_ctx, m_attr = leaves.context[m_rows], attr[member]
    m_start = np.repeat(group_pa, counts) - start[member] + offset[member]
    m_va = leaves.va[m_rows] + m_start.astype(np.uint64) * _U64(page)

    # Group g continues group g - 1 when its PA follows and each alias (same place in the
    # group) is in the same context, as far further in VA, with the same memattr.
    j = np.arange(len(member))
    prev = j - np.repeat(counts, counts)
    ok = prev >= 0
    p = np.where(ok, prev, 0)
    step = np.repeat(np.append(0, group_len[:-1]), counts).astype(np.uint64) * _U64(page)
    ok &= (m_ctx == m_ctx[p]) & (m_va == m_va[p] + step) & (m_attr == m_attr[p])
    all_ok = np.logical_and.reduceat(ok, group_first)
    cont = np.zeros(len(group_first), dtype=bool)
    cont[1:] = (
        (group_pa[1:] == group_pa[:-1] + group_len[:-1]) & (counts[1:] == counts[:-1]) & all_ok[1:]
    )
    run_starts = np.flatnonzero(~cont)
    run_pages = np.add.reduceat(group_len, run_starts)
    out = []
    names = facts.fmt.memattr_names
    for g, pages in zip(run_starts.tolist(), run_pages.tolist(), strict=True):
        lo_m, n = int(group_first[g]), int(counts[g])
        aliases = []
        for k in range(lo_m, lo_m + n):
            ctx = facts.context_of_row(int(m_rows[k]))
            where = f"VA {int(m_va[k]):#x}" + ("" if ctx is None else f" (context {ctx})")
            aliases.append(f"{where} {names[int(m_attr[k])]}")
        pa = int(group_pa[g]) * page
        what = f"PA {pa:#x}" if pages == 1 else f"PAs {pa:#x}..{pa + pages * page:#x}"
        va = int(m_va[lo_m])
        out.append(
            Anomaly(
                kind=MEMATTR_ALIAS,
                message=f"{what} ({pages} page{'s' if pages > 1 else ''}) "
                f"{'is' if pages == 1 else 'are'} mapped with "
                f"different memory attributes: {', '.join(aliases)}",
                va=va,
                va_end=va + pages * page,
                pa=pa,
                context=facts.context_of_row(int(m_rows[lo_m])),
                vas=tuple(int(v) for v in m_va[lo_m : lo_m + n].tolist()),
                pages=pages,
            )
        )
    return out


def _overlapping(start: np.ndarray, span: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """The indices (sorted) of the intervals ``start .. start + span`` in a cluster of
    overlapping intervals that holds two ``attr`` values or more."""
    order = np.argsort(start)
    s = start[order]
    reach = s.astype(np.int64) + span[order]  # no wrap, whatever the width of ``start``
    np.maximum.accumulate(reach, out=reach)
    overlaps = s[1:] < reach[:-1]  # interval i + 1 overlaps one before it
    del s, reach
    if not overlaps.any():
        return np.zeros(0, np.int64)
    first = np.flatnonzero(np.concatenate(([True], ~overlaps)))  # of each cluster
    sizes = np.diff(np.append(first, len(order)))
    a = attr[order]
    mixed = (sizes > 1) & (np.maximum.reduceat(a, first) != np.minimum.reduceat(a, first))
    return np.sort(order[np.repeat(mixed, sizes)])


def _covered_twice(
    start: np.ndarray, end: np.ndarray, attr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the intervals where ``[start, end)`` intervals of at least two
    different ``attr`` values overlap, sorted."""
    edges: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    for value in np.unique(attr).tolist():
        s, e = start[attr == value], end[attr == value]
        order = np.argsort(s, kind="stable")
        s, e = s[order], e[order]
        reach = np.maximum.accumulate(e)
        joined = np.flatnonzero(np.concatenate(([True], s[1:] > reach[:-1])))
        edges += [s[joined], np.maximum.reduceat(e, joined)]
        deltas += [np.ones(len(joined), np.int64), -np.ones(len(joined), np.int64)]
    if len(edges) < 4:  # one memattr
        empty = np.zeros(0, np.int64)
        return empty, empty
    position = np.concatenate(edges)
    delta = np.concatenate(deltas)
    order = np.argsort(position, kind="stable")
    position, delta = position[order], delta[order]
    first = np.flatnonzero(np.concatenate(([True], position[1:] != position[:-1])))
    points = position[first]
    depth = np.cumsum(np.add.reduceat(delta, first))  # from points[i] to points[i + 1]
    hot = np.flatnonzero(depth[:-1] >= 2)
    return points[hot], points[hot + 1]
