"""The checks over the carried tables: unexpected-table-entry, empty-table and the
oa-beyond-oas findings of upper-level table entries, found in one pass over every walked table
of every context (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check.findings import (
    EMPTY_TABLE,
    OA_BEYOND_OAS,
    UNEXPECTED_TABLE_ENTRY,
    Anomaly,
)
from formats import entryformat

if TYPE_CHECKING:
    from dumpview.model.check.facts import Facts
    from dumpview.model.tables import TableNode

_U64 = np.uint64


def _entry_anomaly(
    facts: Facts, node: TableNode, i: int, value: int, kind: str, problem: str
) -> Anomaly:
    """A finding about entry ``i`` (holding ``value``) of the walked table ``node``."""
    span = facts.geometry.level(node.level).entry_span_bytes
    va = node.va_start + i * span
    ctx = facts.context_of(node.context)
    in_ctx = "" if ctx is None else f" in context {ctx}"
    return Anomaly(
        kind=kind,
        message=f"L{node.level} table at PA {node.pa:#x} entry {i} (VAs {va:#x}.."
        f"{va + span:#x}{in_ctx}) holds {value:#x}: {problem}",
        va=va,
        va_end=va + span,
        pa=node.pa,
        context=ctx,
    )


def scan_tables(facts: Facts) -> tuple[list[Anomaly], list[Anomaly], list[Anomaly]]:
    """One pass over every walked table: (unexpected-table-entry, empty-table, oa-beyond-oas
    of upper-level table entries)."""
    index = facts.index
    geometry = facts.geometry
    unexpected: list[Anomaly] = []
    empty: list[Anomaly] = []
    beyond: list[Anomaly] = []
    if index is None:
        return unexpected, empty, beyond
    top = geometry.levels[0].level
    last = geometry.levels[-1].level
    by_pa = {node.pa: node for node in facts.nodes}
    fmt = facts.fmt
    oas_mask = (1 << geometry.oas) - 1
    type_mask = _U64(entryformat.TYPE_MASK)
    for node in facts.nodes:
        whole = index.entries_at(node.pa)
        if node.level != top and not whole.any():
            ctx = facts.context_of(node.context)
            in_ctx = "" if ctx is None else f" in context {ctx}"
            empty.append(
                Anomaly(
                    kind=EMPTY_TABLE,
                    message=f"L{node.level} table at PA {node.pa:#x} (VAs {node.va_start:#x}.."
                    f"{node.va_end:#x}{in_ctx}) has no entries: allocated and never used, or "
                    "left over after an unmap",
                    va=node.va_start,
                    va_end=node.va_end,
                    pa=node.pa,
                    context=ctx,
                )
            )
            continue
        entries = whole[: geometry.level(node.level).entries]
        types = entries & type_mask
        allowed = types != 0
        allowed &= types != _U64(entryformat.TYPE_TABLE)
        wanted = "a page" if node.level == last else "a table"
        if node.level in fmt.block_levels:
            allowed &= types != _U64(entryformat.TYPE_BLOCK)
            wanted = "a table or a block"
        for i in np.flatnonzero(allowed).tolist():
            value = int(entries[i])
            problem = (
                f"type {value & entryformat.TYPE_MASK} is neither empty nor {wanted} entry"
                + ("" if node.level == last else f" at L{node.level}")
            )
            unexpected.append(
                _entry_anomaly(facts, node, i, value, UNEXPECTED_TABLE_ENTRY, problem)
            )
        if node.level == last:
            continue
        for i in np.flatnonzero(types == _U64(entryformat.TYPE_TABLE)).tolist():
            value = int(entries[i])
            address = fmt.output_address(value)
            stray = address & ~oas_mask
            if stray:
                problem = (
                    f"its table address {address:#x} has bits at or above "
                    f"the {geometry.oas}-bit output address size ({stray:#x})"
                )
                beyond.append(_entry_anomaly(facts, node, i, value, OA_BEYOND_OAS, problem))
            child_pa = address & facts.dump.pa_mask
            child = by_pa.get(child_pa)
            if child is None:
                problem = f"it points to a table at PA {child_pa:#x} the dump does not carry"
            elif (child.parent_pa, child.parent_index) != (node.pa, i):
                if child.parent_pa is None:
                    seen = f"the TTB of context {child.context}"
                else:
                    seen = f"reached from PA {child.parent_pa:#x} entry {child.parent_index}"
                problem = (
                    f"it points to the L{child.level} table at PA {child_pa:#x}, {seen}: a "
                    "cycle or a shared table"
                )
            else:
                continue
            unexpected.append(
                _entry_anomaly(facts, node, i, value, UNEXPECTED_TABLE_ENTRY, problem)
            )
    return unexpected, empty, beyond


def check_unexpected_table_entry(facts: Facts) -> list[Anomaly] | str:
    return facts.tables_missing or facts.table_findings[0]


def check_empty_table(facts: Facts) -> list[Anomaly] | str:
    return facts.tables_missing or facts.table_findings[1]
