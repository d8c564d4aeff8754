"""The checks over leaves (the pages of the dumped space and the leaves of other carried
spaces): memattr-alias, normal-on-non-ram, device-on-ram, ram-not-dumped,
outside-managed-range, oa-beyond-oas (leaves; table entries come from ``tables``) and
write-exec, and the runs their findings are reported in (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check.facts import DUMPED, Facts, Leaves
from dumpview.model.check.findings import (
    DEVICE_ON_RAM,
    MEMATTR_ALIAS,
    NO_MANAGED_RANGE,
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
from formats import uat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.extension import Region, Space

_U64 = np.uint64

# ---- runs ----------------------------------------------------------------------------------------


@dataclass
class _Runs:
    """Runs of selected leaves: ``rows`` are leaf indices, ``starts``/``lengths`` cut them."""

    rows: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    pa_contiguous: np.ndarray  # bool per run

    def __iter__(self):
        return iter(
            zip(
                self.rows[self.starts].tolist(),
                self.lengths.tolist(),
                self.pa_contiguous.tolist(),
                strict=True,
            )
        )


def _runs(leaves: Leaves, mask: np.ndarray, key: np.ndarray, page: int) -> _Runs:
    """Cut the leaves where ``mask`` holds into runs: consecutive in VA (+ page) in the same
    context with the same ``key``."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        empty = np.zeros(0, dtype=np.int64)
        return _Runs(rows, empty, empty, np.zeros(0, dtype=bool))
    step = _U64(page)
    va, pa, ctx, k = leaves.va[rows], leaves.pa[rows], leaves.context[rows], key[rows]
    cont = (ctx[1:] == ctx[:-1]) & (va[1:] - va[:-1] == step) & (k[1:] == k[:-1])
    starts = np.flatnonzero(np.concatenate(([True], ~cont)))
    lengths = np.diff(np.append(starts, len(rows)))
    # A run's PAs are contiguous when no step inside it breaks PA + page.
    pa_break = np.concatenate(([0], np.cumsum(pa[1:] - pa[:-1] != step)))
    last = starts + lengths - 1
    contiguous = pa_break[last] == pa_break[starts]
    return _Runs(rows, starts, lengths, contiguous)


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


def _run_anomaly(
    facts: Facts, kind: str, row: int, pages: int, message: str, pa: int | None = None
) -> Anomaly:
    leaves = facts.leaves
    va = int(leaves.va[row])
    return Anomaly(
        kind=kind,
        message=message,
        va=va,
        va_end=va + pages * facts.page,
        pa=int(leaves.pa[row]) if pa is None else pa,
        context=facts.context_of(int(leaves.context[row])),
        pages=pages,
        pa_raw=int(leaves.pa_raw[row]) if pa is None else None,
    )


# ---- leaf checks ---------------------------------------------------------------------------------


def check_memattr_alias(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    page = facts.page
    rows = np.flatnonzero(facts.addressable)
    if len(rows) < 2:
        return []
    pa_page = leaves.pa[rows] & ~_U64(page - 1)
    order = np.argsort(pa_page, kind="stable")  # keeps (context, VA) order inside a PA
    rows, pa_page = rows[order], pa_page[order]
    same = pa_page[1:] == pa_page[:-1]
    if not same.any():
        return []
    # Groups of rows sharing a PA page; keep those with differing memattr.
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    counts = np.diff(np.append(starts, len(rows)))
    attr = leaves.memattr[rows]
    differ = np.maximum.reduceat(attr, starts) != np.minimum.reduceat(attr, starts)
    starts, counts = starts[differ], counts[differ]  # a lone leaf never differs
    if not len(starts):
        return []
    # The alias groups' rows side by side: group g's members at first[g] .. first[g] + n.
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    j = np.arange(int(counts.sum()))
    members = np.repeat(starts, counts) + (j - np.repeat(first, counts))
    m_rows = rows[members]
    m_ctx, m_va, m_attr = leaves.context[m_rows], leaves.va[m_rows], attr[members]
    group_pa = pa_page[starts]
    # Group g continues group g - 1 when its PA is the next page and each alias (same place in
    # the group) is in the same context, one page further in VA, with the same memattr.
    per_member_count = np.repeat(counts, counts)
    prev = j - per_member_count
    ok = prev >= 0
    p = np.where(ok, prev, 0)
    ok &= (m_ctx == m_ctx[p]) & (m_va == m_va[p] + _U64(page)) & (m_attr == m_attr[p])
    all_ok = np.logical_and.reduceat(ok, first)
    cont = np.zeros(len(starts), dtype=bool)
    cont[1:] = (
        (group_pa[1:] == group_pa[:-1] + _U64(page)) & (counts[1:] == counts[:-1]) & all_ok[1:]
    )
    run_starts = np.flatnonzero(~cont)
    run_lengths = np.diff(np.append(run_starts, len(starts)))
    out = []
    for g, pages in zip(run_starts.tolist(), run_lengths.tolist(), strict=True):
        lo, n = int(first[g]), int(counts[g])
        aliases = []
        for k in range(lo, lo + n):
            ctx = facts.context_of(int(m_ctx[k]))
            where = f"VA {int(m_va[k]):#x}" + ("" if ctx is None else f" (context {ctx})")
            aliases.append(f"{where} {facts.fmt.memattr_names[int(m_attr[k])]}")
        pa = int(group_pa[g])
        what = f"PA {pa:#x}" if pages == 1 else f"PAs {pa:#x}..{pa + pages * page:#x}"
        va = int(m_va[lo])
        out.append(
            Anomaly(
                kind=MEMATTR_ALIAS,
                message=f"{what} ({pages} page{'s' if pages > 1 else ''}) "
                f"{'is' if pages == 1 else 'are'} mapped with "
                f"different memory attributes: {', '.join(aliases)}",
                va=va,
                va_end=va + pages * page,
                pa=pa,
                context=facts.context_of(int(m_ctx[lo])),
                vas=tuple(int(v) for v in m_va[lo : lo + n].tolist()),
                pages=pages,
            )
        )
    return out


def check_normal_on_non_ram(facts: Facts) -> list[Anomaly] | str:
    regions = facts.regions
    if isinstance(regions, str):
        return regions
    leaves = facts.leaves
    mmio, _memory, non_memory = facts.memory_class
    mask = facts.normal & facts.addressable & non_memory
    key = (mmio + 1) * 8 + leaves.memattr.astype(np.int64)
    out = []
    for row, pages, contiguous in _runs(leaves, mask, key, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        window = int(mmio[row])
        place = (
            f"in {_region_text(regions[window])}"
            if window >= 0
            else "outside every region of the memory map"
        )
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = (
            f"{where} {_maps(pages)} {pa} as normal memory "
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
    for row, pages, contiguous in _runs(leaves, mask, key, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = (
            f"{where} {_maps(pages)} {pa} as device memory "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}), but that PA is memory: "
            f"{_region_text(regions[int(memory[row])])}"
        )
        out.append(_run_anomaly(facts, DEVICE_ON_RAM, row, pages, message))
    return out


def check_ram_not_dumped(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    mask = leaves.in_dump & ~leaves.dumped & facts.normal & facts.addressable
    map_known = not isinstance(facts.regions, str)
    if map_known:
        mask &= ~facts.memory_class[2]
    rows = np.flatnonzero(mask)
    if not len(rows):
        return []
    codes, table = hole_reasons(facts.dump, leaves.va[rows], leaves.flags[rows])
    text_ids: dict[tuple[str, str | None], int] = {}
    ids = np.array([text_ids.setdefault(entry, len(text_ids)) for entry in table], np.int64)
    key = np.full(len(leaves), -1, dtype=np.int64)
    key[rows] = ids[codes] * 8 + leaves.memattr[rows].astype(np.int64)
    code_of_row = np.full(len(leaves), -1, dtype=np.int64)
    code_of_row[rows] = codes
    what = "RAM" if map_known else "normal memory"
    out = []
    for row, pages, contiguous in _runs(leaves, mask, key, facts.page):
        reason, detail = table[int(code_of_row[row])]
        why = reason if detail is None else f"{reason} ({detail})"
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        message = (
            f"{_where(int(leaves.va[row]), pages, facts.page, None)} {_maps(pages)} {what} at {pa} "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}) but the dump has no data: "
            f"{why}"
        )
        out.append(_run_anomaly(facts, RAM_NOT_DUMPED, row, pages, message))
    return out


def _managed_ranges(facts: Facts) -> dict[int, tuple[int, int, str]] | str:
    """Context key -> (allowed start, allowed end, what the range is)."""
    dump = facts.dump
    spaces: tuple[Space, ...] = dump.extension.spaces if dump.extension is not None else ()
    out: dict[int, tuple[int, int, str]] = {}
    if spaces:
        for i, space in enumerate(spaces):
            if not space.managed_va_size_bytes:
                continue
            end = space.managed_va_start + space.managed_va_size_bytes
            if space.ttb_owned:
                allowed = (space.managed_va_start, end, "the driver's managed range")
            else:
                start = space.va_start & ~facts.geometry.ias_mask
                allowed = (start, end, "the firmware's part and the driver's managed range")
            key = DUMPED if i == 0 else space.context
            out[key] = allowed
        return out
    if facts.geometry.va_base != uat.UAT_VA_BASE_UPPER:
        return NO_MANAGED_RANGE
    out[DUMPED] = (
        uat.UAT_KERNEL_FW_VA_START,
        uat.UAT_KERNEL_VA_END,
        "the firmware's part and the driver's range of the kernel context",
    )
    return out


def check_outside_managed_range(facts: Facts) -> list[Anomaly] | str:
    ranges = _managed_ranges(facts)
    if isinstance(ranges, str):
        return ranges
    leaves = facts.leaves
    mask = np.zeros(len(leaves), dtype=bool)
    for key, (start, end, _what) in ranges.items():
        here = leaves.context == key
        va = leaves.va
        # A range ending before it starts (a hostile spaces record) allows nothing.
        size = _U64(max(0, min(end - start, (1 << 64) - 1)))
        mask |= here & ((va < _U64(start)) | (va - _U64(start) >= size))
    out = []
    for row, pages, contiguous in _runs(leaves, mask, leaves.context, facts.page):
        key = int(leaves.context[row])
        start, end, what = ranges[key]
        ctx = facts.context_of(key)
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = f"{where} {_maps(pages)} {pa} outside {what} ({start:#x}..{end:#x})"
        out.append(_run_anomaly(facts, OUTSIDE_MANAGED_RANGE, row, pages, message))
    return out


def check_oa_beyond_oas(facts: Facts) -> list[Anomaly]:
    leaves = facts.leaves
    oas = facts.geometry.oas
    mask = leaves.stray != 0
    out = []
    for row, pages, contiguous in _runs(leaves, mask, leaves.stray, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        raw = int(leaves.pa_raw[row])
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        stray = f"bits at or above the {oas}-bit output address size, {int(leaves.stray[row]):#x}"
        if facts.fmt.oas_truncates:  # the walker went to the cut address
            says = f"{raw:#x}" if pages == 1 else f"{raw:#x}.. (first page)"
            message = f"{where} {_maps(pages)} {pa} (entry says {says}: {stray})"
        else:
            message = f"{where} {_maps(pages)} {pa} ({stray}: an SMMU raises an address size fault)"
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
    for row, pages, contiguous in _runs(leaves, mask, leaves.perm, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        views = ", ".join(lut[int(leaves.perm[row])])
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = f"{where} {_maps(pages)} {pa} writable and executable: {views}"
        out.append(_run_anomaly(facts, WRITE_EXEC, row, pages, message))
    return out
