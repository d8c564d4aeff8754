"""PA -> VA: every mapping of a physical address in the dump's own entries (aliases).

Owns the reverse lookup. The dumped address space answers from its PT_LOADs (``p_paddr`` +
offset, every segment that covers the PA, so aliases inside it all show), with the exact entry
when the dump carries the leaf tables; every other address space the dump carries tables for
(user contexts) answers from its leaf tables' type-3 entries. The page offset of the PA is kept
in each VA. Nothing raises for a PA: one no entry maps is an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.entries import decode_entry
from formats import uat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

SOURCE_TABLES = "tables"
SOURCE_PT_LOAD = "pt_load"


@dataclass(frozen=True)
class Mapping:
    """One VA that maps the PA: its address space, entry and whether its page has data."""

    context: int
    va: int
    pte: int
    pte_exact: bool
    memattr_name: str
    firmware: str
    gpu: str
    dumped: bool | None  # None: a context the walker did not dump (no data either way)
    source: str  # "tables" (exact entry) or "pt_load" (rebuilt from p_paddr/p_flags)

    def to_dict(self) -> dict:
        return {
            "context": self.context,
            "va": f"{self.va:#x}",
            "pte": f"{self.pte:#x}",
            "pte_exact": self.pte_exact,
            "memattr_name": self.memattr_name,
            "firmware": self.firmware,
            "gpu": self.gpu,
            "dumped": self.dumped,
            "source": self.source,
        }


def _mapping(dump: Dump, context: int, va: int, pte: int, exact: bool, dumped) -> Mapping:
    decoded = decode_entry(pte, dump.geometry.levels[-1].level, dump.geometry, exact=exact)
    return Mapping(
        context=context,
        va=va,
        pte=pte,
        pte_exact=exact,
        memattr_name=decoded.memattr_name,
        firmware=decoded.firmware,
        gpu=decoded.gpu,
        dumped=dumped,
        source=SOURCE_TABLES if exact else SOURCE_PT_LOAD,
    )


def ptov(dump: Dump, pa: int) -> list[Mapping]:
    """Every mapping of ``pa``, the dumped space first, then other contexts, each in VA
    order."""
    if not 0 <= pa < 1 << 64:
        return []
    page = dump.page_size_bytes
    offset = pa & (page - 1)
    out: list[Mapping] = []
    index = dump.tables_index
    dumped_context = 0
    if index is not None and index.nodes:
        dumped_context = index.dumped_context
    for va in dump.vas_for_pa(pa):
        record = dump.page(va)
        if record is not None:
            out.append(
                _mapping(dump, dumped_context, va, record.pte, record.pte_exact, record.dumped)
            )
    if index is None:
        return out
    leaf = dump.geometry.levels[-1]
    page_pa = np.uint64(pa - offset)
    for node in index.nodes:
        if node.level != leaf.level or node.context == dumped_context:
            continue
        entries = index.entries_at(node.pa)[: leaf.entries]
        hits = np.flatnonzero(
            ((entries & np.uint64(uat.PTE_TYPE_MASK)) == uat.PTE_PAGE)
            & ((entries & np.uint64(uat.OA_MASK_FULL)) == page_pa)
        )
        for i in hits.tolist():
            va = node.va_start + i * leaf.entry_span_bytes + offset
            out.append(_mapping(dump, node.context, va, int(entries[i]), True, None))
    return out
