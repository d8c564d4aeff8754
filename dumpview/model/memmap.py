"""The physical memory map and the address-space minimap, as rows and codes (no presentation).

Owns two views every front end shares:

- ``memory_map``: the extension's memory regions (RAM banks, ``/reserved-memory`` children,
  MMIO windows) sorted by base, each with how many mapped pages of the dump have their PA inside
  it and how many of those carry data. Reserved regions lie inside RAM banks; both rows are kept
  (the bank first at an equal base), so a page inside a reserved region counts in both.
  A driver-layout dump does not record the memory map: no rows, and a reason that says so.
  ``first_mapping`` finds where a region is first mapped (its lowest mapped PA and a VA).
- ``minimap``: a VA range cut into equal columns, each coded with the most notable kind of page
  touching it (``kinds.KIND_CODES``: empty < gpu < firmware < device < not-dumped), so one
  undumped page still shows in a column of a million dumped ones; ``render_bar`` draws it.

Pages are those of ``Dump.pages``: a PT_LOAD of ``p_memsz`` bytes holds ``ceil(p_memsz / page)``
pages, the first ``p_filesz // page`` of them with data. Everything is numpy over the PT_LOAD
columns, never a Python loop per segment (a million segments: tens of milliseconds).
``minimap`` raises ``ValueError`` for a column count or VA range it cannot draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dumpview.model import kinds
from dumpview.model.dump import Dump
from dumpview.model.guard import guarded
from dumpview.model.pagearrays import unpack_p_flags_bulk
from formats.entryformat import EntryFormat

ADDRESS_LIMIT = 1 << 64  # VA and PA ranges end at most here
NO_MEMORY_MAP = "the dump does not record the memory map (driver layout: no dumpview extension)"
REGION_LABELS = {"ram": "RAM", "reserved": "reserved", "mmio": "MMIO"}
DEFAULT_GLYPHS: dict[str, str] = {
    kinds.EMPTY: "·",
    kinds.GPU: "█",
    kinds.UNPRIVILEGED: "█",
    kinds.FIRMWARE: "▓",
    kinds.PRIVILEGED: "▓",
    kinds.DEVICE: "▒",
    kinds.NOT_DUMPED: "░",
}
_EMPTY = np.uint8(kinds.CODE[kinds.EMPTY])


def _flag_runs(flags: np.ndarray, fmt: EntryFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of neighbouring PT_LOADs with equal ``p_flags`` (most neighbours share them): the
    first segment of each run and ``kinds.leaf_kinds`` of its entry for pages with data and
    for pages without. Classifying per run keeps it cheap for a million segments."""
    starts = np.flatnonzero(np.concatenate(([True], flags[1:] != flags[:-1])))
    ptes = unpack_p_flags_bulk(flags[starts], fmt)
    with_data = kinds.leaf_kinds(ptes, np.ones(len(starts), dtype=bool), fmt)
    without = kinds.leaf_kinds(ptes, np.zeros(len(starts), dtype=bool), fmt)
    return starts, with_data, without


def _page_counts(dump: Dump, segments: slice) -> tuple[np.ndarray, np.ndarray]:
    """(pages, pages with data) of the PT_LOADs in ``segments``, as ``Dump.pages`` counts."""
    shift = np.uint64(dump.page_size_bytes.bit_length() - 1)
    round_up = np.uint64(dump.page_size_bytes - 1)
    return (dump.seg_memsz[segments] + round_up) >> shift, dump.seg_filesz[segments] >> shift


def _pages_below(x: int, start: np.ndarray, pages: np.ndarray, page: int) -> np.ndarray:
    """Per run of ``pages`` pages at ``start + k * page``: how many begin below ``x``."""
    if x >= ADDRESS_LIMIT:
        return pages
    ux = np.uint64(x)
    shift = np.uint64(page.bit_length() - 1)
    # ceil((x - start) / page); x - start wraps where start >= x, which the where masks out.
    ceil = ((ux - start - np.uint64(1)) >> shift) + np.uint64(1)
    return np.where(start < ux, np.minimum(pages, ceil), np.uint64(0))


def _pages_in(lo: int, hi: int, start: np.ndarray, pages: np.ndarray, page: int) -> np.ndarray:
    """Per run of ``pages`` pages at ``start + k * page``: how many begin in ``[lo, hi)``."""
    return _pages_below(hi, start, pages, page) - _pages_below(lo, start, pages, page)


# ---- the memory map ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryRow:
    """One memory-map region (a PA range) and how many of the dump's pages lie in it."""

    kind: str  # "ram" | "reserved" | "mmio" ("kind-N" for a kind this dumpview does not know)
    name: str
    base: int  # pa
    size_bytes: int
    no_map: bool
    reusable: bool
    label: str  # "RAM", "reserved (no-map)", "reserved (reusable)", "reserved", "MMIO"
    mapped_pages: int  # mapped pages of the dump whose PA lies inside the region
    dumped_pages: int  # how many of those have data

    @property
    def end(self) -> int:
        return self.base + self.size_bytes


def _label(kind: str, no_map: bool, reusable: bool) -> str:
    if kind == "reserved" and no_map:
        return "reserved (no-map)"
    if kind == "reserved" and reusable:
        return "reserved (reusable)"
    return REGION_LABELS.get(kind, kind)


def _pages_below_pas(dump: Dump, bounds: list[int]) -> list[tuple[int, int]]:
    """For each PA bound ``x`` of ``bounds`` (ascending, distinct): how many mapped pages of
    the dump have their PA below ``x``, and how many of those have data.

    One binary search per PT_LOAD finds the first bound above its first page; a PT_LOAD whose
    last page lies below that bound too counts whole, through a histogram; the few that
    straddle a bound (or wrap past 2**64) count page by page."""
    page = dump.page_size_bytes
    pages, dumped = _page_counts(dump, slice(None))
    pa = dump.seg_pa
    finite = [x for x in bounds if x < ADDRESS_LIMIT]
    edges = np.array(finite, dtype=np.uint64)
    above = np.searchsorted(edges, pa, side="right")
    next_bound = np.append(edges, np.uint64(ADDRESS_LIMIT - 1))[above]
    last_pa = pa + ((pages - np.uint64(1)) << np.uint64(page.bit_length() - 1))
    whole = (last_pa >= pa) & (last_pa < next_bound)
    straddle = np.flatnonzero(~whole)
    straddle_pa = pa[straddle]
    below = []
    for n in (pages, dumped):
        # A whole PT_LOAD lies below every bound from ``above`` on, and below no other. (Float
        # sums are exact: page counts stay far below 2**53.)
        weights = np.where(whole, n, np.uint64(0))
        whole_below = np.cumsum(np.bincount(above, weights=weights, minlength=len(edges) + 1))
        straddle_n = n[straddle]
        below.append(
            [
                int(whole_below[k]) + int(_pages_below(x, straddle_pa, straddle_n, page).sum())
                for k, x in enumerate(finite)
            ]
            + [int(n.sum())] * (len(bounds) - len(finite))
        )
    return list(zip(*below, strict=True))


@guarded
def memory_map(dump: Dump) -> tuple[list[MemoryRow], str | None]:
    """The extension's memory regions with page counts, and ``None``; or ``([], reason)`` for a
    dump without the extension (the driver layout does not record the memory map).

    Rows are sorted by base; at an equal base RAM comes first, then the larger region. A page
    counts in a region when its PA (``p_paddr`` + its offset in the PT_LOAD) lies inside it, so
    a PT_LOAD straddling a region bound counts page by page. Regions overlap (reserved inside
    RAM): the rows' counts do not add up to the dump's.
    """
    if dump.extension is None:
        return [], NO_MEMORY_MAP
    regions = sorted(dump.extension.regions, key=lambda r: (r.base, r.kind != "ram", -r.size_bytes))
    bounds = sorted({r.base for r in regions} | {r.end for r in regions})
    below = dict(zip(bounds, _pages_below_pas(dump, bounds), strict=True))
    return [
        MemoryRow(
            kind=r.kind,
            name=r.name,
            base=r.base,
            size_bytes=r.size_bytes,
            no_map=r.no_map,
            reusable=r.reusable,
            label=_label(r.kind, r.no_map, r.reusable),
            mapped_pages=below[r.end][0] - below[r.base][0],
            dumped_pages=below[r.end][1] - below[r.base][1],
        )
        for r in regions
    ], None


def first_mapping(dump: Dump, pa_start: int, pa_end: int) -> tuple[int, int] | None:
    """``(pa, va)``: the lowest PA in ``[pa_start, pa_end)`` that a PT_LOAD maps, and the lowest
    VA mapping it; None when no page of the dump maps a PA in the range. Numpy over the
    PT_LOAD columns (no loop per segment)."""
    if pa_end <= pa_start or dump.segment_count == 0:
        return None
    lo = np.uint64(min(max(pa_start, 0), ADDRESS_LIMIT - 1))
    hi = np.uint64(min(pa_end, ADDRESS_LIMIT - 1))
    pa = dump.seg_pa
    # A segment meets the range when it starts below its end and ends above its start (its
    # last byte: p_paddr + p_memsz may be 2**64 exactly).
    meets = (pa < hi) & (pa + (dump.seg_memsz - np.uint64(1)) >= lo) & (dump.seg_memsz > 0)
    if not meets.any():
        return None
    first_pa = int(np.maximum(pa[meets], lo).min())
    vas = dump.vas_for_pa(first_pa)
    return (first_pa, vas[0]) if vas else None


# ---- the minimap -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Minimap:
    """``[va_start, va_end)`` in ``columns`` equal slices. ``codes[i]`` indexes
    ``kinds.KIND_CODES``: the highest code of any page touching column i, empty when no PT_LOAD
    does. ``counts``: pages per kind (every kind but empty) whose VA lies in the range."""

    va_start: int
    va_end: int  # may be 2**64
    columns: int
    codes: np.ndarray  # uint8, one per column
    counts: dict[str, int]

    def column_range(self, column: int) -> tuple[int, int]:
        """The VAs ``[start, end)`` of column ``column``; ``IndexError`` outside the bar."""
        if not 0 <= column < self.columns:
            raise IndexError(f"column {column} is not in 0..{self.columns - 1}")
        span = self.va_end - self.va_start
        return (
            self.va_start + column * span // self.columns,
            self.va_start + (column + 1) * span // self.columns,
        )


def walked_space(dump: Dump) -> tuple[int, int]:
    """``[start, end)`` of the address space the dump walked: the geometry's ``va_base`` with
    the IAS bits cleared, ``2 ** ias`` bytes (the kernel upper half ends at ``2 ** 64``)."""
    geometry = dump.geometry
    start = geometry.va_base & ~geometry.ias_mask
    return start, start + (1 << geometry.ias)


def _saturated(ends: np.ndarray) -> np.ndarray:
    """Exclusive PT_LOAD ends with the wrapped 2**64 (0) held at 2**64 - 1: the byte ranges
    the minimap draws lose the address space's last byte, never a page."""
    return np.where(ends == 0, np.uint64((1 << 64) - 1), ends)


def used_extent(dump: Dump) -> tuple[int, int]:
    """``[lowest mapped VA, end of the highest mapping)``, page aligned: the range worth
    zooming a minimap to. ``ValueError`` when the dump has no PT_LOAD."""
    if dump.segment_count == 0:
        raise ValueError("the dump maps nothing: it has no PT_LOAD")
    page = dump.page_size_bytes
    start = int(dump.seg_va[0]) // page * page
    end = int(dump.seg_va[-1]) + int(dump.seg_memsz[-1])  # sorted and not overlapping
    return start, -(-end // page) * page


def _column_max(
    bounds: list[int], start: np.ndarray, end: np.ndarray, code: np.ndarray
) -> np.ndarray:
    """Per column ``[bounds[k], bounds[k + 1])``: the highest ``code`` of the byte runs
    ``[start, end)`` touching it (empty if none). Runs are sorted and disjoint, so a column's
    runs are one slice, found by binary search; ``reduceat`` takes each slice's maximum."""
    # The slice of column k: runs ending after its first byte up to those starting after its
    # last byte.
    first = np.searchsorted(end, np.array(bounds[:-1], dtype=np.uint64), side="right")
    last_va = np.array([b - 1 for b in bounds[1:]], dtype=np.uint64)
    stop = np.searchsorted(start, last_va, side="right")
    padded = np.append(code, _EMPTY)  # reduceat indices must stay below the length
    highest = np.maximum.reduceat(padded, np.stack((first, stop), axis=1).ravel())[::2]
    return np.where(first < stop, highest, _EMPTY)


@guarded
def minimap(
    dump: Dump, columns: int, va_start: int | None = None, va_end: int | None = None
) -> Minimap:
    """Cut ``[va_start, va_end)`` (default: ``walked_space``) into ``columns`` equal columns
    and code each with the highest ``kinds`` code of any page touching it.

    Each PT_LOAD is two runs of bytes: its pages with data (gpu, firmware, or device by its
    p_flags), then the rest (not-dumped, or device); empty runs never show.
    ``ValueError`` when ``columns < 1`` or the range is empty or not inside ``0..2**64``.
    """
    space_start, space_end = walked_space(dump)
    va_start = space_start if va_start is None else va_start
    va_end = space_end if va_end is None else va_end
    if columns < 1:
        raise ValueError(f"a minimap needs at least one column, not {columns}")
    if not 0 <= va_start < va_end <= ADDRESS_LIMIT:
        raise ValueError(f"cannot draw the VA range {va_start:#x}..{va_end:#x}")
    page = dump.page_size_bytes
    size = len(kinds.KIND_CODES)
    shown = [name for name in kinds.kinds_of(dump.entry_format) if name != kinds.EMPTY]
    # The PT_LOADs touching the range are one slice; only its first and last can reach outside.
    ends = _saturated(dump.seg_va + dump.seg_memsz)  # a PT_LOAD may end exactly at 2**64
    lo = int(np.searchsorted(ends, np.uint64(va_start), side="right"))
    hi = int(np.searchsorted(dump.seg_va, np.uint64(va_end - 1), side="right"))
    if lo >= hi:
        counts = dict.fromkeys(shown, 0)
        return Minimap(va_start, va_end, columns, np.full(columns, _EMPTY), counts)
    va, end = dump.seg_va[lo:hi], ends[lo:hi]
    pages, dumped = _page_counts(dump, slice(lo, hi))
    middle = np.minimum(_saturated(va + (dumped << np.uint64(page.bit_length() - 1))), end)
    starts, run_data_code, run_rest_code = _flag_runs(dump.seg_flags[lo:hi], dump.entry_format)
    data_code = np.repeat(run_data_code, np.diff(np.append(starts, hi - lo)))
    rest_code = np.repeat(run_rest_code, np.diff(np.append(starts, hi - lo)))

    # Pages per kind: summed per run of equal p_flags, less the edge PT_LOADs' pages outside
    # the range. (Float sums are exact: page counts stay far below 2**53.)
    data_pages, all_pages = np.add.reduceat(dumped, starts), np.add.reduceat(pages, starts)
    totals = np.bincount(run_data_code, weights=data_pages, minlength=size) + np.bincount(
        run_rest_code, weights=all_pages - data_pages, minlength=size
    )
    edge = np.unique([0, hi - lo - 1])
    in_all = _pages_in(va_start, va_end, va[edge], pages[edge], page)
    in_data = _pages_in(va_start, va_end, va[edge], dumped[edge], page)
    out_data = dumped[edge] - in_data
    out_rest = (pages[edge] - dumped[edge]) - (in_all - in_data)
    totals -= np.bincount(data_code[edge], weights=out_data, minlength=size)
    totals -= np.bincount(rest_code[edge], weights=out_rest, minlength=size)
    counts = {name: int(totals[kinds.CODE[name]]) for name in shown}

    data_code[dumped == 0] = _EMPTY  # an empty run must never show
    rest_code[middle == end] = _EMPTY
    span = va_end - va_start
    bounds = [va_start + k * span // columns for k in range(columns + 1)]
    codes = np.maximum(
        _column_max(bounds, va, middle, data_code), _column_max(bounds, middle, end, rest_code)
    )
    return Minimap(va_start, va_end, columns, codes, counts)


def render_bar(minimap: Minimap, glyphs: dict[str, str] | None = None) -> str:
    """The minimap as text, one character per column; ``glyphs`` ({kind name: character})
    overrides ``DEFAULT_GLYPHS``. ``ValueError`` for a glyph that is not one character."""
    table = {**DEFAULT_GLYPHS, **(glyphs or {})}
    for name, glyph in table.items():
        if len(glyph) != 1:
            raise ValueError(f"the glyph for {name!r} must be one character, not {glyph!r}")
    lookup = [table[name] for name in kinds.KIND_CODES]
    return "".join(lookup[code] for code in minimap.codes.tolist())
