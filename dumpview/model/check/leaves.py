"""The checks over leaves (the pages of the dumped space and the leaves of other carried
spaces): memattr-alias, normal-on-non-ram, device-on-ram, ram-not-dumped,
outside-managed-range, oa-beyond-oas (leaves; table entries come from ``tables``) and
write-exec, and the runs their findings are reported in (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check.facts import Facts
from dumpview.model.check.findings import (
    DEVICE_ON_RAM,
    NORMAL_ON_NON_RAM,
    OA_BEYOND_OAS,
    OUTSIDE_MANAGED_RANGE,
    RAM_NOT_DUMPED,
    WRITE_EXEC,
    Anomaly,
)
from dumpview.model.check.permissions import (
    PERMISSION_VIEWS,
    pte_of_perm_code,
    write_exec_views,
)
from dumpview.model.pagearrays import hole_reasons
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.extension import Region

_U64 = np.uint64
_CHUNK_ROWS = 1 << 16  # rows whose hole reasons are looked up at once

# ---- runs ----------------------------------------------------------------------------------------


@dataclass
class _Runs:
    """Runs of selected leaf rows: each is (first row, pages, whether its PAs are contiguous)."""

    first: np.ndarray
    pages: np.ndarray
    pa_contiguous: np.ndarray

    def __iter__(self):
        return iter(
            zip(self.first.tolist(), self.pages.tolist(), self.pa_contiguous.tolist(), strict=True)
        )


def _runs(facts: Facts, mask: np.ndarray, key: np.ndarray) -> _Runs:
    """Cut the leaf rows where ``mask`` holds into runs of pages: consecutive in VA (+ page)
    in the same context with the same ``key``. Worked a chunk of rows at a time."""
    leaves = facts.leaves
    rows = np.flatnonzero(mask)
    if not len(rows):
        empty = np.zeros(0, dtype=np.int64)
        return _Runs(empty, empty, np.zeros(0, dtype=bool))
    step = _U64(facts.page)
    pairs = len(rows) - 1
    cont = np.empty(pairs, dtype=bool)  # row i + 1 continues row i (same run)
    pa_break = np.empty(pairs, dtype=bool)  # and its PA does not continue
    for lo in range(0, pairs, _CHUNK_ROWS):
        r = rows[lo : min(lo + _CHUNK_ROWS, pairs) + 1]
        va, pa, linear = leaves.va[r], facts.pa[r], leaves.linear[r]
        inner = (leaves.pages[r].astype(np.uint64) - _U64(1)) * step  # first page to last
        ctx, k = leaves.context[r], key[r]
        here = cont[lo : lo + len(r) - 1]
        np.equal(va[1:] - (va[:-1] + inner[:-1]), step, out=here)
        here &= (ctx[1:] == ctx[:-1]) & (k[1:] == k[:-1])
        pa_last = pa[:-1] + np.where(linear[:-1], inner[:-1], _U64(0))
        pa_break[lo : lo + len(r) - 1] = pa[1:] - pa_last != step
    starts = np.flatnonzero(np.concatenate(([True], ~cont)))
    pages = np.add.reduceat(leaves.pages[rows], starts, dtype=np.int64)
    # A run's PAs are contiguous unless a step inside it breaks PA + page: between two of its
    # rows, or inside a row whose pages share one PA.
    contiguous = np.ones(len(starts), dtype=bool)
    broken = np.flatnonzero(cont & pa_break) + 1  # the row after the break
    flat = np.flatnonzero((leaves.pages[rows] > 1) & ~leaves.linear[rows])
    for where in (broken, flat):
        contiguous[np.searchsorted(starts, where, side="right") - 1] = False
    return _Runs(rows[starts], pages, contiguous)


def _where(va: int, pages: int, page: int, context: int | None) -> str:
    """``VA 0x… (1 page)`` / ``VAs 0x…..0x… (n pages)``, with the context when not the dumped
    space."""
    if pages == 1:
        text = f"VA {va:#x} (1 page)"
    else:
        text = f"VAs {va:#x}..{va + pages * page:#x} ({pages} pages)"
    return text if context is None else f"{text} in context {context}"


def _maps(pages: int) -> str:
    return "maps" if pages == 1 else "map"


def _pa_text(pa: int, pages: int, page: int, contiguous: bool) -> str:
    if pages == 1:
        return f"PA {pa:#x}"
    if contiguous:
        return f"PAs {pa:#x}..{pa + pages * page:#x}"
    return f"scattered PAs (first {pa:#x})"


def _memattr_text(memattr: int, fmt: EntryFormat) -> str:
    return f"memattr {memattr}, {fmt.memattr_names[memattr]}"


def _region_text(region: Region) -> str:
    span = f"{region.base:#x}..{region.end:#x}"
    if region.kind == "mmio":
        return f"MMIO window {region.name!r} ({span})"
    if region.kind == "reserved":
        how = " no-map" if region.no_map else (" reusable" if region.reusable else "")
        return f"reserved{how} region {region.name!r} ({span})"
    return f"RAM {region.name!r} ({span})"


def _subject(
    facts: Facts, row: int, pages: int, contiguous: bool, in_context: bool = True, what: str = ""
) -> str:
    """The start of a run's message: ``VA(s) … map(s) [what at] PA(s) …`` (the context named
    when ``in_context`` and the run is not in the dumped space)."""
    ctx = facts.context_of_row(row) if in_context else None
    where = _where(int(facts.leaves.va[row]), pages, facts.page, ctx)
    pa = _pa_text(int(facts.pa[row]), pages, facts.page, contiguous)
    return f"{where} {_maps(pages)} {what + ' at ' if what else ''}{pa}"


def _run_anomaly(facts: Facts, kind: str, row: int, pages: int, message: str) -> Anomaly:
    va = int(facts.leaves.va[row])
    return Anomaly(
        kind=kind,
        message=message,
        va=va,
        va_end=va + pages * facts.page,
        pa=int(facts.pa[row]),
        context=facts.context_of_row(row),
        pages=pages,
        pa_raw=int(facts.leaves.pa_raw[row]),
    )


# ---- leaf checks ---------------------------------------------------------------------------------


def check_normal_on_non_ram(facts: Facts) -> list[Anomaly] | str:
    regions = facts.regions
    if isinstance(regions, str):
        return regions
    leaves = facts.leaves
    mmio, _memory, non_memory = facts.memory_class
    mask = facts.normal & facts.addressable & non_memory
    key = (mmio + 1) * 8 + leaves.memattr.astype(np.int64)
    out = []
    for row, pages, contiguous in _runs(facts, mask, key):
        window = int(mmio[row])
        place = (
            f"in {_region_text(regions[window])}"
            if window >= 0
            else "outside every region of the memory map"
        )
        message = (
            f"{_subject(facts, row, pages, contiguous)} as normal memory "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}), but that PA is {place}"
        )
        out.append(_run_anomaly(facts, NORMAL_ON_NON_RAM, row, pages, message))
    return out


def check_device_on_ram(facts: Facts) -> list[Anomaly] | str:
    regions = facts.regions
    if isinstance(regions, str):
        return regions
    leaves = facts.leaves
    _mmio, memory, non_memory = facts.memory_class
    mask = ~facts.normal & facts.addressable & (memory >= 0) & ~non_memory
    key = memory * 8 + leaves.memattr.astype(np.int64)
    out = []
    for row, pages, contiguous in _runs(facts, mask, key):
        message = (
            f"{_subject(facts, row, pages, contiguous)} as device memory "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}), but that PA is memory: "
            f"{_region_text(regions[int(memory[row])])}"
        )
        out.append(_run_anomaly(facts, DEVICE_ON_RAM, row, pages, message))
    return out


def check_ram_not_dumped(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    mask = (leaves.context == 0) & ~leaves.dumped & facts.normal & facts.addressable
    map_known = not isinstance(facts.regions, str)
    if map_known:
        mask &= ~facts.memory_class[2]
    rows = np.flatnonzero(mask)
    if not len(rows):
        return []
    # Why each row has no data, as an index into ``texts``, asked a chunk of rows at a time.
    texts: list[tuple[str, str | None]] = []
    text_ids: dict[tuple[str, str | None], int] = {}
    text_of_row = np.full(len(leaves), -1, dtype=np.int32)
    for lo in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[lo : lo + _CHUNK_ROWS]
        codes, table = hole_reasons(facts.dump, leaves.va[chunk], leaves.flags[chunk])
        for entry in table:
            if entry not in text_ids:
                text_ids[entry] = len(texts)
                texts.append(entry)
        ids = np.array([text_ids[entry] for entry in table], np.int32)
        text_of_row[chunk] = ids[codes]
    del rows
    key = text_of_row * 8 + leaves.memattr  # int32
    what = "RAM" if map_known else "normal memory"
    out = []
    for row, pages, contiguous in _runs(facts, mask, key):
        reason, detail = texts[int(text_of_row[row])]
        why = reason if detail is None else f"{reason} ({detail})"
        subject = _subject(facts, row, pages, contiguous, in_context=False, what=what)
        message = (
            f"{subject} "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}) but the dump has no data: "
            f"{why}"
        )
        out.append(_run_anomaly(facts, RAM_NOT_DUMPED, row, pages, message))
    return out


def check_outside_managed_range(facts: Facts) -> list[Anomaly] | str:
    ranges = facts.managed_ranges
    if isinstance(ranges, str):
        return ranges
    leaves = facts.leaves
    code_of = {key: code for code, key in enumerate(facts.context_keys)}
    mask = np.zeros(len(leaves), dtype=bool)
    for key, (start, end, _what) in ranges.items():
        if key not in code_of:
            continue
        here = leaves.context == code_of[key]
        va = leaves.va
        # A range ending before it starts (a hostile spaces record) allows nothing.
        size = _U64(max(0, min(end - start, (1 << 64) - 1)))
        mask |= here & ((va < _U64(start)) | (va - _U64(start) >= size))
    out = []
    for row, pages, contiguous in _runs(facts, mask, leaves.context):
        start, end, what = ranges[facts.context_keys[int(leaves.context[row])]]
        message = f"{_subject(facts, row, pages, contiguous)} outside {what} ({start:#x}..{end:#x})"
        out.append(_run_anomaly(facts, OUTSIDE_MANAGED_RANGE, row, pages, message))
    return out


def check_oa_beyond_oas(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    oas = facts.geometry.oas
    stray = leaves.pa_raw & ~_U64((1 << oas) - 1)
    mask = stray != 0
    out = []
    for row, pages, contiguous in _runs(facts, mask, stray):
        subject = _subject(facts, row, pages, contiguous)
        raw = int(leaves.pa_raw[row])
        beyond = f"bits at or above the {oas}-bit output address size, {int(stray[row]):#x}"
        if facts.fmt.oas_truncates:  # the walker went to the cut address
            says = f"{raw:#x}" if pages == 1 else f"{raw:#x}.. (first page)"
            message = f"{subject} (entry says {says}: {beyond})"
        else:
            message = f"{subject} ({beyond}: an SMMU raises an address size fault)"
        out.append(_run_anomaly(facts, OA_BEYOND_OAS, row, pages, message))
    if facts.index is not None:
        out.extend(facts.table_findings[2])
    return out


def _write_exec_lut(
    codes: np.ndarray, views: tuple[tuple[str, Callable[[int], str]], ...]
) -> dict[int, tuple[str, ...]]:
    """For each distinct permission code present: the views granting W and X."""
    return {
        int(code): write_exec_views(pte_of_perm_code(int(code)), views)
        for code in np.unique(codes).tolist()
    }


def check_write_exec(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    lut = _write_exec_lut(leaves.perm, PERMISSION_VIEWS[facts.fmt.id])
    bad = np.array([code for code, views in lut.items() if views], dtype=np.uint8)
    mask = np.isin(leaves.perm, bad)
    out = []
    for row, pages, contiguous in _runs(facts, mask, leaves.perm):
        views = ", ".join(lut[int(leaves.perm[row])])
        message = f"{_subject(facts, row, pages, contiguous)} writable and executable: {views}"
        out.append(_run_anomaly(facts, WRITE_EXEC, row, pages, message))
    return out
