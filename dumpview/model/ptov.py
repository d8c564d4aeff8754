"""PA -> VA: every mapping of a physical address in the dump's own entries (aliases).

Owns the reverse lookup. The dumped address space answers from its PT_LOADs (``p_paddr`` +
offset, every segment that covers the PA, so aliases inside it all show), with the exact entry
when the dump carries the leaf tables; every other address space the dump carries tables for
(user contexts) answers from its leaf tables' type-3 entries. The page offset of the PA is kept
in each VA. The PA asked for is the one the walker uses (``pa``: UAT entries are matched
at their output address cut to the OAS); ``Mapping.pa_raw`` keeps what each entry says.
Nothing raises for a PA: one no entry maps is an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.entries import decode_entry
from dumpview.model.guard import guarded

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
    views: dict[str, str]  # the entry format's permission views by JSON key
    dumped: bool | None  # None: a context the walker did not dump (no data either way)
    source: str  # "tables" (exact entry) or "pt_load" (rebuilt from p_paddr/p_flags)
    pa: int = 0  # the PA asked for, as the walker reaches it
    pa_raw: int = 0  # what the entry says for this VA (differs only above the OAS)

    def to_dict(self) -> dict:
        return {
            "context": self.context,
            "va": f"{self.va:#x}",
            "pa": f"{self.pa:#x}",
            "pa_raw": None if self.pa_raw == self.pa else f"{self.pa_raw:#x}",
            "pte": f"{self.pte:#x}",
            "pte_exact": self.pte_exact,
            "memattr_name": self.memattr_name,
            **self.views,
            "dumped": self.dumped,
            "source": self.source,
        }


def _mapping(
    dump: Dump,
    context: int,
    va: int,
    pte: int,
    exact: bool,
    dumped,
    level: int | None = None,
    pa: int = 0,
    pa_raw: int = 0,
) -> Mapping:
    geometry = dump.geometry
    fmt = dump.entry_format
    level = geometry.levels[-1].level if level is None else level
    decoded = decode_entry(pte, level, geometry, exact=exact, fmt=fmt)
    return Mapping(
        context=context,
        va=va,
        pte=pte,
        pte_exact=exact,
        memattr_name=decoded.memattr_name,
        views=fmt.keyed_views(pte),
        dumped=dumped,
        source=SOURCE_TABLES if exact else SOURCE_PT_LOAD,
        pa=pa,
        pa_raw=pa_raw,
    )


@guarded
def ptov(dump: Dump, pa: int) -> list[Mapping]:
    """Every mapping of ``pa``, the dumped space first, then other contexts, each in VA
    order."""
    if not 0 <= pa < 1 << 64:
        return []
    out: list[Mapping] = []
    index = dump.tables_index
    dumped_context = 0
    if index is not None and index.nodes:
        dumped_context = index.dumped_context
    offset = pa & (dump.page_size_bytes - 1)
    for va in dump.vas_for_pa(pa):
        record = dump.page(va)
        if record is not None:
            out.append(
                _mapping(
                    dump,
                    dumped_context,
                    va,
                    record.pte,
                    record.pte_exact,
                    record.dumped,
                    record.leaf_level,
                    pa,
                    record.pa_raw | offset,
                )
            )
    if index is None:
        return out
    fmt = dump.entry_format
    for node in index.nodes:
        if node.context == dumped_context:
            continue
        leaves = index.leaf_entries(node)  # pages, or blocks at a block level
        if not len(leaves):
            continue
        span = dump.geometry.level(node.level).entry_span_bytes
        entries = index.entries_at(node.pa)
        inside = np.uint64(pa & ~(span - 1) & ((1 << 64) - 1))
        used = fmt.output_address(entries[leaves]) & np.uint64(dump.pa_mask)
        hits = leaves[(used & ~np.uint64(span - 1)) == inside]
        for i in hits.tolist():
            va = node.va_start + i * span + (pa & (span - 1))
            value = int(entries[i])
            raw = (fmt.output_address(value) & ~(span - 1)) | (pa & (span - 1))
            out.append(_mapping(dump, node.context, va, value, True, None, node.level, pa, raw))
    return out
