"""Coalesced ranges of the dumped address space, ptdump style: one row per run of pages that
continue in VA and PA with the same p_flags and the same dumped state.

Owns the range table (``ranges``): built with numpy over the dump's PT_LOAD arrays, with no
per-segment Python loop, so a 1M-segment dump coalesces in well under a second. A PT_LOAD whose
p_filesz is smaller than its p_memsz splits into a dumped part (its whole pages with data) and
an undumped part; pieces then merge across PT_LOADs only when VA and PA both continue and the
p_flags and dumped state are equal. ``RangeTable.row`` builds the presentation-neutral ``Range``
(entry, permissions, memattr, kind, why it is not dumped) for one row on demand; ``human_size``
writes sizes the way Linux's ptdump does ("16K", "2M", "1.5G"). ``pa_start`` is the address
the walker uses, ``pa_start_raw`` what the entries say (``p_paddr``; see
``formats.entryformat``); pieces continue only when both do. ``RangeFilter`` picks rows by
dumped state and by words of their text (memattr, permissions, state and reason, kind), with
numpy over the table: the text is built once per distinct (p_flags, state, hole reason).

Nothing here raises for a dump that opened: an empty or out-of-range window gives an empty
table; ``RangeTable.row`` raises ``IndexError`` for a row that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.guard import guarded
from dumpview.model.kinds import leaf_kind
from dumpview.model.pagearrays import hole_reasons
from dumpview.model.text import SIZE_UNITS, data_state, human_size  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

U64_MAX = (1 << 64) - 1
_WORD = re.compile(r"[\w!-]+")


@dataclass(frozen=True)
class Range:
    """One coalesced range: ``va_end`` is exclusive; ``pte`` is the entry rebuilt for its first
    page from p_paddr/p_flags (the exact entry for a context read from its tables);
    ``reason``/``reason_detail`` say why an undumped range has no data (None when dumped)."""

    va_start: int
    va_end: int
    pa_start: int  # the walker's PA (UAT: cut to the OAS)
    pa_start_raw: int  # what the entry says (p_paddr)
    flags: int
    pte: int
    memattr: int
    memattr_name: str
    views: tuple[str, str]  # the entry format's two permission views
    dumped: bool
    reason: str | None
    reason_detail: str | None
    kind: str

    @property
    def size_bytes(self) -> int:
        return self.va_end - self.va_start


class RangeTable:
    """Coalesced ranges in VA order as parallel numpy arrays (``va_end`` exclusive). A range
    ending exactly at 2**64 (a PT_LOAD holding the top page: the driver never writes one, other
    writers may) can only be the last row and has ``va_end`` 0 there, as uint64 wraps: read
    ends through ``end_of`` / ``end_list``, which give 2**64."""

    def __init__(
        self,
        dump: Dump,
        va_start: np.ndarray,
        va_end: np.ndarray,
        pa_start_raw: np.ndarray,
        flags: np.ndarray,
        dumped: np.ndarray,
        *,
        pte: np.ndarray | None = None,
        reason: tuple[str, str | None] | None = None,
        context: int | None = None,
    ) -> None:
        """``pte`` (exact entries of each range's first page, from a context's tables) and
        ``reason`` (why every undumped range has no data) replace what the PT_LOADs say:
        ranges of a context the dump did not dump (``context``)."""
        self._dump = dump
        self.entry_format = dump.entry_format
        self.va_start = va_start
        self.va_end = va_end
        self.pa_start_raw = pa_start_raw
        self.pa_start = dump.to_pa(pa_start_raw)
        self.flags = flags
        self.dumped = dumped
        self.pte = pte
        self.reason = reason
        self.context = context

    def __len__(self) -> int:
        return len(self.va_start)

    def row(self, i: int) -> Range:
        """Range ``i`` with everything a view shows; IndexError when there is no such row."""
        va_start, va_end = int(self.va_start[i]), self.end_of(i)
        pa_start, flags = int(self.pa_start[i]), int(self.flags[i])
        pa_start_raw = int(self.pa_start_raw[i])
        dumped = bool(self.dumped[i])
        fmt = self._dump.entry_format
        pte = fmt.unpack_p_flags(flags, pa_start_raw) if self.pte is None else int(self.pte[i])
        memattr = fmt.memattr(pte)
        if dumped:
            reason, detail = None, None
        else:
            reason, detail = self.reason or self._dump.hole_reason(va_start, flags)
        return Range(
            va_start=va_start,
            va_end=va_end,
            pa_start=pa_start,
            pa_start_raw=pa_start_raw,
            flags=flags,
            pte=pte,
            memattr=memattr,
            memattr_name=fmt.memattr_names[memattr],
            views=fmt.views(pte),
            dumped=dumped,
            reason=reason,
            reason_detail=detail,
            kind=leaf_kind(pte, dumped, fmt),
        )

    def end_of(self, i: int) -> int:
        """The exclusive end of range ``i`` as an int (2**64 for a range at the very top)."""
        return _end_int(int(self.va_end[i]))

    def end_list(self, start: int = 0, stop: int | None = None) -> list[int]:
        """``va_end[start:stop]`` as ints (2**64 where the array holds the wrapped 0)."""
        return [_end_int(end) for end in self.va_end[start:stop].tolist()]

    def index_of_va(self, va: int) -> int | None:
        """The row whose range contains ``va`` (binary search), or None."""
        if not 0 <= va <= U64_MAX:
            return None
        i = int(np.searchsorted(self.va_start, np.uint64(va), side="right")) - 1
        if i >= 0 and va < self.end_of(i):
            return i
        return None


def _end_int(end: int) -> int:
    """An exclusive range end from its uint64: 0 is 2**64 (no non-empty range ends at 0)."""
    return end or 1 << 64


@guarded
def ranges(dump: Dump, va_start: int = 0, va_end: int = 1 << 64) -> RangeTable:
    """The coalesced ranges of ``dump`` clipped to [va_start, va_end).

    A page is dumped when all of it lies within p_filesz (as ``Dump.pages`` counts it). Callers
    that show the whole table repeatedly should keep the result: it is rebuilt on every call.
    """
    seg_va, seg_memsz = dump.seg_va, dump.seg_memsz
    # Exclusive ends are uint64 where 2**64 wraps to 0 (a PT_LOAD may end exactly there), so
    # they are compared as inclusive last bytes (end - 1) and lengths taken modulo 2**64.
    one = np.uint64(1)
    lo_va = np.uint64(min(max(va_start, 0), U64_MAX))
    hi_va = np.uint64(max(va_end, 0) & U64_MAX)  # 2**64 wraps to 0, like the ends
    if va_end <= va_start:
        hi_va = lo_va
    seg_end = seg_va + seg_memsz
    seg_last = np.where(seg_memsz != 0, seg_end - one, seg_va)
    first = int(np.searchsorted(seg_last, lo_va, side="left"))  # first segment reaching lo
    last = len(seg_va) if hi_va == 0 and va_end else int(np.searchsorted(seg_va, hi_va))
    if last <= first:
        empty = np.zeros(0, np.uint64)
        return RangeTable(dump, empty, empty, empty, np.zeros(0, np.uint32), np.zeros(0, bool))
    window = slice(first, last)
    page = np.uint64(dump.page_size_bytes)
    va = seg_va[window].copy()
    end = seg_end[window]
    pa = dump.seg_pa_raw[window].copy()
    flags = dump.seg_flags[window]
    split = seg_va[window] + dump.seg_filesz[window] // page * page  # end of whole data pages
    # Only the two edge segments can stick out of the window. (PA - VA stays invariant.)
    if va[0] < lo_va:
        pa[0] += lo_va - va[0]
        va[0] = lo_va
        if split[0] != 0 and split[0] < lo_va:  # (0: the wrapped 2**64, never below lo)
            split[0] = lo_va
    hi_last = (int(hi_va) - 1) & U64_MAX  # compared as inclusive last bytes
    if (int(end[-1]) - 1) & U64_MAX > hi_last:  # past the window's end
        end[-1] = hi_va
        if (int(split[-1]) - 1) & U64_MAX > hi_last:
            split[-1] = hi_va
    has_data = split - va != 0  # lengths modulo 2**64: split may be the wrapped 2**64
    has_hole = end - split != 0
    if not np.all(has_data | has_hole):  # empty PT_LOADs (p_memsz 0) make no range
        keep = has_data | has_hole
        va, end, pa, flags = va[keep], end[keep], pa[keep], flags[keep]
        split, has_data, has_hole = split[keep], has_data[keep], has_hole[keep]

    # One piece per segment (its dumped part if any, else its undumped part), then the undumped
    # parts of segments that have both inserted after their dumped parts: VA order throughout.
    hole_pa = pa + (split - va)
    piece_start = np.where(has_data, va, split)
    piece_end = np.where(has_data, split, end)
    piece_pa = np.where(has_data, pa, hole_pa)
    piece_flags = flags
    piece_dumped = has_data
    both = np.flatnonzero(has_data & has_hole)
    if len(both):
        at = both + 1
        piece_start = np.insert(piece_start, at, split[both])
        piece_end = np.insert(piece_end, at, end[both])
        piece_pa = np.insert(piece_pa, at, hole_pa[both])
        piece_flags = np.insert(piece_flags, at, flags[both])
        piece_dumped = np.insert(piece_dumped, at, False)

    holes = dump.extension.holes if dump.extension is not None else None
    hole_key = None
    if holes is not None and len(holes):
        pieces = _split_at_holes(holes, piece_start, piece_end, piece_pa, piece_flags, piece_dumped)
        piece_start, piece_end, piece_pa, piece_flags, piece_dumped = pieces
        hole_key = _hole_keys(holes, piece_start, piece_dumped)

    # A piece continues the one before when VA, PA (as the entries say it and as the walker
    # uses it), flags and dumped state all continue (and, for holes, the recorded reason).
    step = piece_end[:-1] - piece_start[:-1]
    continues = (
        (piece_end[:-1] == piece_start[1:])
        & (piece_pa[1:] - piece_pa[:-1] == step)
        & (piece_pa[1:] > piece_pa[:-1])  # the difference above wraps when PA goes down
        & (piece_flags[:-1] == piece_flags[1:])
        & (piece_dumped[:-1] == piece_dumped[1:])
    )
    if dump.pa_mask != U64_MAX:
        used = dump.to_pa(piece_pa)
        continues &= (used[1:] - used[:-1] == step) & (used[1:] > used[:-1])
    if hole_key is not None:
        continues &= hole_key[:-1] == hole_key[1:]
    if not continues.any():
        return RangeTable(dump, piece_start, piece_end, piece_pa, piece_flags, piece_dumped)
    starts = np.flatnonzero(np.concatenate(([True], ~continues)))
    ends = np.concatenate((starts[1:], [len(piece_start)])) - 1
    return RangeTable(
        dump,
        piece_start[starts],
        piece_end[ends],
        piece_pa[starts],
        piece_flags[starts],
        piece_dumped[starts],
    )


def _split_at_holes(
    holes: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    pa: np.ndarray,
    flags: np.ndarray,
    dumped: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Cut the undumped pieces where a hole record starts or ends inside them, so one range
    never spans two recorded reasons (a PT_LOAD's hole may lie partly in a no-map region and
    partly outside the memory map)."""
    bounds = np.unique(np.concatenate((holes["va"], holes["va"] + holes["size_bytes"])))
    bounds = bounds[bounds != 0]  # 0 (or a wrapped 2**64) is never inside a piece
    lo = np.searchsorted(bounds, start, side="right")
    hi = np.searchsorted(bounds, end, side="left")
    hi[end == 0] = len(bounds)  # a piece ending at 2**64 (wrapped to 0)
    need = np.flatnonzero(~dumped & (hi > lo))
    if not len(need):
        return start, end, pa, flags, dumped
    end = end.copy()
    at: list[int] = []
    new_start: list[int] = []
    new_end: list[int] = []
    for k in need.tolist():
        cuts = bounds[lo[k] : hi[k]].tolist()
        piece_end = int(end[k])
        end[k] = cuts[0]
        for i, cut in enumerate(cuts):
            at.append(k + 1)
            new_start.append(cut)
            new_end.append(cuts[i + 1] if i + 1 < len(cuts) else piece_end)
    owner = np.array(at, dtype=np.intp) - 1
    starts = np.array(new_start, dtype=np.uint64)
    new_pa = pa[owner] + (starts - start[owner])
    return (
        np.insert(start, at, starts),
        np.insert(end, at, np.array(new_end, dtype=np.uint64)),
        np.insert(pa, at, new_pa),
        np.insert(flags, at, flags[owner]),
        np.insert(dumped, at, False),
    )


def _hole_keys(holes: np.ndarray, start: np.ndarray, dumped: np.ndarray) -> np.ndarray:
    """Per piece: the (reason, detail, region) of the hole record it lies in, as one number;
    -1 for dumped pieces and holes no record covers (their reason comes from the flags)."""
    i = np.searchsorted(holes["va"], start, side="right").astype(np.intp) - 1
    safe = np.maximum(i, 0)
    inside = (i >= 0) & ~dumped & (start - holes["va"][safe] < holes["size_bytes"][safe])
    record = holes[safe]
    key = (
        (record["reason"].astype(np.int64) << 40)
        | (record["detail"].astype(np.int64) << 20)
        | (record["region_index"].astype(np.int64) & 0xFFFFF)
    )
    return np.where(inside, key, -1)


# Words of a range filter that pick rows by dumped state rather than by text.
STATE_WORDS: dict[str, bool] = {
    "dumped": True,
    "not-dumped": False,
    "undumped": False,
    "!dumped": False,
}


def parse_range_filter(text: str) -> tuple[bool | None, tuple[str, ...]]:
    """(dumped state wanted or None, text words) of a filter as typed: ``dumped``,
    ``not dumped`` (or ``not-dumped``, ``undumped``), and any other words, which must all
    begin a word of a row's text (case-insensitive: ``cach`` finds "cached", not
    "uncached"). ``ValueError`` when it asks for both states."""
    words = text.lower().replace("not dumped", "not-dumped").split()
    states = {STATE_WORDS[w] for w in words if w in STATE_WORDS}
    if len(states) > 1:
        raise ValueError("a range is either dumped or not dumped: pick one")
    return (states.pop() if states else None), tuple(w for w in words if w not in STATE_WORDS)


class RangeFilter:
    """Rows of one ``RangeTable`` matching a filter (``parse_range_filter``'s words).

    A row's text is its memattr name, both permission views, its state ("dumped" or "not
    dumped: REASON (DETAIL)") and its kind. It depends only on (p_flags, dumped, hole reason),
    so it is built once per distinct triple; a filter then costs a few numpy passes over the
    table (524K rows: tens of milliseconds), never a Python loop per row.
    """

    def __init__(self, table: RangeTable) -> None:
        self.table = table
        n = len(table)
        reason = np.full(n, -1, dtype=np.int64)
        undumped = np.flatnonzero(~table.dumped)
        if len(undumped):
            codes, _ = hole_reasons(table._dump, table.va_start[undumped], table.flags[undumped])
            reason[undumped] = codes
        key = table.flags.astype(np.int64) * (int(reason.max(initial=-1)) + 2) + (reason + 1)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        self._inverse = inverse.reshape(-1)
        self.texts = [_row_words(table.row(i)) for i in first.tolist()]

    def rows(self, text: str) -> np.ndarray:
        """Indices (int64, ascending) of the rows matching ``text``; every row for an empty
        filter. ``ValueError`` from ``parse_range_filter``."""
        dumped, words = parse_range_filter(text)
        keep_key = np.array(
            [all(any(token.startswith(w) for token in t) for w in words) for t in self.texts],
            dtype=bool,
        )
        keep = keep_key[self._inverse]
        if dumped is not None:
            keep &= self.table.dumped == dumped
        return np.flatnonzero(keep)


def _row_words(r: Range) -> tuple[str, ...]:
    state = data_state(r.dumped, r.reason, r.reason_detail)
    return tuple(
        _WORD.findall(f"{r.memattr_name} {r.views[0]} {r.views[1]} {state} {r.kind}".lower())
    )
