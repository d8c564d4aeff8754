"""Contexts: the address spaces a dump carries (one TTB each), and queries scoped to one.

Owns which contexts a dump has (``contexts``: number, TTB PA, whether the driver owns the TTB
or borrowed it from the firmware, ASID, the VA half it walks, its tables and pages), which one
the walker dumped (``dumped_context``: its pages are the PT_LOADs), checking a context a person
asked for (``check_context``), and what a context other than the dumped one maps
(``context_leaves``, ``context_ranges``). The dump carries only the tables of those other
contexts, never their pages: every page they map is "not dumped" with the reason
``context-not-dumped``, never zeros.

A dump without dumpview's extension (the driver's own) has one context, 0, the dumped one,
whose TTB it does not record. ``check_context`` raises ``ContextError`` (a ``DumpError``) for
a context the dump does not carry; nothing else here raises for a dump that opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.errors import ContextError
from dumpview.model.ranges import RangeTable

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

CONTEXT_NOT_DUMPED = "context-not-dumped"
CONTEXT_NOT_DUMPED_DETAIL = "the dump carries this context's tables, not its pages"
U64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class ContextInfo:
    """One address space of the dump. ``ttb_pa``/``ttb_owned`` are None when the dump does not
    record them (driver dumps); ``asid`` is the TTB slot (the UAT's ASID = slot; 0 is the
    kernel context). ``pages_mapped`` counts pages the context's leaves map (the PT_LOAD pages
    for the dumped context), ``pages_dumped`` those with data (0 for the others)."""

    context: int
    asid: int
    ttb_pa: int | None
    ttb_owned: bool | None
    dumped: bool
    va_start: int
    va_end: int  # exclusive: the walked half
    tables: int
    pages_mapped: int
    pages_dumped: int

    def to_dict(self) -> dict:
        """The ``info --json`` form (schema ``context``)."""
        return {
            "context": self.context,
            "asid": self.asid,
            "ttb_pa": None if self.ttb_pa is None else f"{self.ttb_pa:#x}",
            "ttb_owned": self.ttb_owned,
            "dumped": self.dumped,
            "va_start": f"{self.va_start:#x}",
            "va_end": f"{self.va_end:#x}",
            "tables": self.tables,
            "pages_mapped": self.pages_mapped,
            "pages_dumped": self.pages_dumped,
        }


def dumped_context(dump: Dump) -> int:
    """The context whose pages the PT_LOADs hold: the extension's first space, else 0."""
    extension = dump.extension
    if extension is not None and extension.spaces:
        return extension.spaces[0].context
    return 0


def is_dumped_context(dump: Dump, context: int | None) -> bool:
    """Whether ``context`` (None: the default) is the one whose pages the dump holds."""
    return context is None or context == dumped_context(dump)


def context_numbers(dump: Dump) -> list[int]:
    """The contexts the dump carries, the dumped one first."""
    extension = dump.extension
    if extension is not None and extension.spaces:
        return [s.context for s in extension.spaces]
    return [0]


def check_context(dump: Dump, context: int | None) -> int:
    """``context`` if the dump carries it (None: the dumped context); ``ContextError`` naming
    the contexts it does carry otherwise."""
    if context is None:
        return dumped_context(dump)
    known = context_numbers(dump)
    if context not in known:
        listed = ", ".join(str(c) for c in known)
        why = "" if len(known) > 1 else " (a dump without per-context tables has only context 0)"
        raise ContextError(context, f"the dump has no context {context} (it carries {listed}){why}")
    return context


def contexts(dump: Dump) -> list[ContextInfo]:
    """Every context of the dump, the dumped one first (see ``ContextInfo``). Counting the
    pages of other contexts reads their leaf tables."""
    geometry = dump.geometry
    total, dumped = dump.page_totals
    extension = dump.extension
    spaces = extension.spaces if extension is not None else ()
    if not spaces:
        start = geometry.va_base & ~geometry.ias_mask
        end = start + (1 << geometry.ias)
        return [ContextInfo(0, 0, None, None, True, start, end, 0, total, dumped)]
    index = dump.tables_index
    nodes = index.nodes if index is not None else ()
    out = []
    for number, space in enumerate(spaces):
        start = space.va_start & ~geometry.ias_mask
        tables = sum(1 for n in nodes if n.context == space.context)
        if number == 0:
            mapped, with_data = total, dumped
        else:
            mapped, with_data = _leaf_page_count(dump, space.context), 0
        out.append(
            ContextInfo(
                context=space.context,
                asid=space.context,
                ttb_pa=space.ttb_pa,
                ttb_owned=space.ttb_owned,
                dumped=number == 0,
                va_start=start,
                va_end=start + (1 << geometry.ias),
                tables=tables,
                pages_mapped=mapped,
                pages_dumped=with_data,
            )
        )
    return out


def _leaf_page_count(dump: Dump, context: int) -> int:
    """Pages ``context``'s leaves map (a block counts its pages), counted per table without
    listing them: ``info`` on a table full of 1 GiB blocks costs its entries, not its pages."""
    index = dump.tables_index
    if index is None:
        return 0
    va, _pte, _level, _block_va, block_span, _block_pte, _block_level = index.leaf_runs(context)
    return len(va) + int((block_span // np.uint64(dump.page_size_bytes)).sum())


def context_leaves(dump: Dump, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(page VAs, entries, lookup levels) of every page ``context``'s tables map, in VA order
    (a block's pages each carry the block's entry); empty without tables."""
    index = dump.tables_index
    if index is None:
        empty = np.zeros(0, np.uint64)
        return empty, empty, np.zeros(0, np.uint8)
    return index.leaves_of(context)


def leaf_pas(
    dump: Dump, va: np.ndarray, pte: np.ndarray, level: np.ndarray, raw: bool = False
) -> np.ndarray:
    """The PA of each leaf page: its entry's output address (as the walk masks it to the OAS;
    as the entry says it with ``raw``, the ``pa_raw`` of the model), plus the page's offset
    inside a block."""
    geometry = dump.geometry
    pa = dump.entry_format.output_address(pte)
    if not raw:
        pa &= np.uint64(dump.pa_mask)
    for lg in geometry.levels[:-1]:
        at = level == lg.level
        if at.any():
            span = np.uint64(lg.entry_span_bytes - 1)
            pa[at] = (pa[at] & ~span) | (va[at] & span)
    return pa


def context_ranges(
    dump: Dump, va_start: int = 0, va_end: int = 1 << 64, context: int | None = None
) -> RangeTable:
    """Coalesced ranges of ``context`` clipped to [va_start, va_end) (the dumped context:
    ``ranges.ranges``, from the PT_LOADs). Another context's come from its tables: pages merge
    while VA and PA continue with the same attributes; none is dumped (reason
    ``context-not-dumped``), each range carries its first page's exact entry, and ``flags``
    the ``p_flags`` the driver would have written for it. ``ContextError`` for a context the
    dump does not carry."""
    from dumpview.model.ranges import ranges

    context = check_context(dump, context)
    if is_dumped_context(dump, context):
        return ranges(dump, va_start, va_end)
    va, pte, level = context_leaves(dump, context)
    page = dump.page_size_bytes
    lo = np.uint64(min(max(va_start, 0), U64_MAX))
    hi_va = min(max(va_end, 0), 1 << 64)
    first = int(np.searchsorted(va + np.uint64(page - 1), lo, side="left"))  # ends past lo
    last = len(va) if hi_va >= 1 << 64 else int(np.searchsorted(va, np.uint64(hi_va)))
    va, pte, level = va[first:last], pte[first:last], level[first:last]
    reason = (CONTEXT_NOT_DUMPED, CONTEXT_NOT_DUMPED_DETAIL)
    if not len(va):
        empty = np.zeros(0, np.uint64)
        return RangeTable(
            dump, empty, empty, empty, np.zeros(0, np.uint32), np.zeros(0, bool),
            pte=empty, reason=reason, context=context,
        )  # fmt: skip
    fmt = dump.entry_format
    pa = leaf_pas(dump, va, pte, level, raw=True)  # RangeTable masks it to the OAS
    start = va.copy()
    end = va + np.uint64(page - 1) + np.uint64(1)  # the last page of 2**64 ends at 0
    if start[0] < lo:  # clip the edge pages to the window
        pa[0] += lo - start[0]
        start[0] = lo
    if hi_va < 1 << 64 and (end[-1] > np.uint64(hi_va) or end[-1] == 0):
        end[-1] = np.uint64(hi_va)
    attrs = pte & np.uint64(fmt.attribute_mask)
    continues = (
        (end[:-1] == start[1:])
        & (pa[1:] - pa[:-1] == end[:-1] - start[:-1])
        & (pa[1:] > pa[:-1])
        & (attrs[1:] == attrs[:-1])
    )
    firsts = np.flatnonzero(np.concatenate(([True], ~continues)))
    lasts = np.concatenate((firsts[1:], [len(va)])) - 1
    first_pte = pte[firsts]
    packed = {a: fmt.pack_p_flags(a) for a in np.unique(first_pte).tolist()}
    flags = np.array([packed[a] for a in first_pte.tolist()], dtype=np.uint32)
    return RangeTable(
        dump,
        start[firsts],
        end[lasts],
        pa[firsts],
        flags,
        np.zeros(len(firsts), bool),
        pte=first_pte,
        reason=reason,
        context=context,
    )
