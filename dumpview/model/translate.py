"""VA -> PA translation over a dump: one step per level, or where and why the walk stopped.

Owns the walk. With the extension's tables it reads the real entries (TTB, then each level's
table by the PA the entry above gives; a block entry ends the walk above the last level with
the block's output address plus the VA's offset inside the block), bounded by the geometry's
level count and checking that each table is carried. Without tables (driver dumps) it rebuilds
the levels from the VA's index bits and the PT_LOAD covering the VA; every rebuilt step is
marked ``rebuilt`` and the table PAs it cannot know are None. It never raises for an address:
an unmapped VA is a result.

``Translation.pa`` is the address the walker and the hardware use (UAT: the output address cut
to the OAS, as the driver masks every table and data address), ``pa_raw`` what the leaf entry
says (UAT bits 51:14, the driver's ``p_paddr``); they differ only for an entry with bits at or
above the OAS, the ``oa-beyond-oas`` finding. Tables are followed at their ``pa`` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dumpview.model.dump import Dump, PageRecord
from dumpview.model.entries import DecodedEntry, decode_entry
from formats import entryformat

PRESENT = "table entry present (rebuilt: value not recorded)"
EMPTY = "empty (rebuilt: no PT_LOAD in this entry's span)"


@dataclass(frozen=True)
class WalkStep:
    """One level of the walk."""

    level: int
    table_pa: int | None  # None: rebuilt, the dump does not carry the table
    index: int
    entry: int | None  # None: rebuilt upper level (a table entry existed, value unknown)
    decoded: DecodedEntry | None
    rebuilt: bool
    note: str = ""  # for rebuilt steps: what the dump implies ("table present", "empty")


@dataclass
class Translation:
    va: int
    context: int | None = None  # None: the dumped address space
    steps: list[WalkStep] = field(default_factory=list)
    pa: int | None = None  # the PA the walker and the hardware use
    pa_raw: int | None = None  # what the leaf entry says (None when not mapped)
    leaf: DecodedEntry | None = None
    stopped_level: int | None = None  # the level whose entry ended the walk (None: mapped)
    stopped_reason: str | None = None
    rebuilt: bool = False
    page: PageRecord | None = None  # only for the dumped space: other contexts have no pages
    context_dumped: bool = True  # False: a context whose pages the dump does not carry

    @property
    def mapped(self) -> bool:
        return self.pa is not None


def translate(dump: Dump, va: int, context: int | None = None) -> Translation:
    """Walk ``va`` through the dump's tables (real or rebuilt). ``context`` picks the address
    space (its TTB) when the dump carries several; None is the dumped space. A context the dump
    does not carry is a stopped walk, not an error. Each space has its own VA half (the
    kernel's upper half, a user context's lower half): a VA outside it stops at the top."""
    geometry = dump.geometry
    result = Translation(va=va, context=context)
    space = None
    if dump.tables_index is not None and dump.extension.spaces:
        spaces = dump.extension.spaces
        space = spaces[0]
        if context is not None:
            space = next((s for s in spaces if s.context == context), None)
            if space is None:
                result.stopped_level = geometry.levels[0].level
                result.stopped_reason = f"the dump carries no address space for context {context}"
                return result
        result.context_dumped = space is spaces[0]
    upper = (geometry.va_base if space is None else space.va_start) & ~geometry.ias_mask
    if not 0 <= va < 1 << 64 or va & ~geometry.ias_mask != upper:
        last = upper + geometry.ias_mask
        result.stopped_level = geometry.levels[0].level
        result.stopped_reason = (
            f"VA {va:#x} is outside the walked address space "
            f"({upper:#x}..{last:#x}, {geometry.ias}-bit)"
        )
        return result
    if space is not None:
        with dump.guard.reading():
            _walk_tables(dump, va, result, space.ttb_pa)
    else:
        _walk_rebuilt(dump, va, result)
    if result.pa is not None and result.context_dumped:
        result.page = dump.page(va)
    return result


def _walk_tables(dump: Dump, va: int, result: Translation, table_pa: int) -> None:
    geometry = dump.geometry
    fmt = dump.entry_format
    index_ = dump.tables_index
    seen: set[int] = set()
    for depth, lg in enumerate(geometry.levels):
        if table_pa in seen:
            result.stopped_level = lg.level
            result.stopped_reason = f"table at PA {table_pa:#x} was already visited (cycle)"
            return
        seen.add(table_pa)
        entries = index_.entries_at(table_pa)
        index = lg.index_of(va)
        if entries is None:
            result.stopped_level = lg.level
            result.stopped_reason = f"L{lg.level} table at PA {table_pa:#x} is not in the dump"
            return
        value = int(entries[index])
        decoded = decode_entry(value, lg.level, geometry, fmt=fmt)
        result.steps.append(WalkStep(lg.level, table_pa, index, value, decoded, False))
        entry_type = value & entryformat.TYPE_MASK
        is_last = depth == len(geometry.levels) - 1
        if entry_type == entryformat.TYPE_EMPTY:
            result.stopped_level = lg.level
            result.stopped_reason = f"L{lg.level} entry {index} is empty"
            return
        if is_last:
            if entry_type != entryformat.TYPE_PAGE:
                result.stopped_level = lg.level
                result.stopped_reason = (
                    f"L{lg.level} entry {index} has type {entry_type}: not a page"
                )
                return
            _set_leaf(result, decoded, va & (geometry.page_size_bytes - 1))
            return
        if fmt.is_block(entry_type, lg.level):
            _set_leaf(result, decoded, va & (lg.entry_span_bytes - 1))
            return
        if entry_type != entryformat.TYPE_TABLE:
            result.stopped_level = lg.level
            result.stopped_reason = (
                f"unexpected table entry value {value:#x} at L{lg.level} "
                f"index {index} (type {entry_type})"
            )
            return
        table_pa = fmt.output_address(value) & dump.pa_mask


def _set_leaf(result: Translation, decoded: DecodedEntry, offset: int) -> None:
    result.leaf = decoded
    result.pa = decoded.output_address | offset
    result.pa_raw = decoded.output_address_raw | offset


def _walk_rebuilt(dump: Dump, va: int, result: Translation) -> None:
    geometry = dump.geometry
    result.rebuilt = True
    seg = dump.segment_at(va)
    levels = geometry.levels
    if seg is None:
        # How far did the walk get, as far as the dump shows: a leaf table existed if any
        # PT_LOAD lies in the same last-level table span, and so on upwards.
        for depth in range(len(levels) - 1, 0, -1):
            parent = levels[depth - 1]
            span = parent.entry_span_bytes
            window = va & ~(span - 1)
            if dump.spans_with_segments([window], span)[0]:
                for lg in levels[:depth]:
                    result.steps.append(
                        WalkStep(lg.level, None, lg.index_of(va), None, None, True, PRESENT)
                    )
                lg = levels[depth]
                result.steps.append(
                    WalkStep(lg.level, None, lg.index_of(va), None, None, True, EMPTY)
                )
                result.stopped_level = lg.level
                result.stopped_reason = (
                    f"L{lg.level} entry {lg.index_of(va)} is empty (rebuilt:"
                    " no PT_LOAD maps this VA)"
                )
                return
        lg = levels[0]
        result.steps.append(WalkStep(lg.level, None, lg.index_of(va), None, None, True, EMPTY))
        result.stopped_level = lg.level
        result.stopped_reason = (
            f"L{lg.level} entry {lg.index_of(va)} is empty (rebuilt: no PT_LOAD in its span)"
        )
        return
    for lg in levels[:-1]:
        result.steps.append(WalkStep(lg.level, None, lg.index_of(va), None, None, True, PRESENT))
    leaf_level = levels[-1]
    page_va = va & ~(geometry.page_size_bytes - 1)
    pte = dump.pte_from_segment(seg, page_va)
    decoded = decode_entry(pte, leaf_level.level, geometry, exact=False, fmt=dump.entry_format)
    result.steps.append(
        WalkStep(leaf_level.level, None, leaf_level.index_of(va), pte, decoded, True)
    )
    _set_leaf(result, decoded, va & (geometry.page_size_bytes - 1))


# ---- the walk as JSON (``vtop --json``, schema ``walk``) ---------------------------------------

NO_PT_LOAD = "not-in-any-pt-load"  # a leaf the tables map but no PT_LOAD records


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def walk_state(t: Translation) -> tuple[bool, str | None, str | None] | None:
    """(dumped, reason, detail) of a mapped walk's page, None when unmapped: the page record's
    state; ``context-not-dumped`` for a context whose pages the dump does not carry."""
    from dumpview.model.contexts import CONTEXT_NOT_DUMPED, CONTEXT_NOT_DUMPED_DETAIL

    if not t.mapped:
        return None
    if not t.context_dumped:
        return False, CONTEXT_NOT_DUMPED, CONTEXT_NOT_DUMPED_DETAIL
    if t.page is None:
        return False, NO_PT_LOAD, "the tables map it but the dump has no PT_LOAD for it"
    return t.page.dumped, t.page.reason, t.page.reason_detail


def translation_dict(t: Translation) -> dict:
    """The walk as a JSON object (schema ``walk``): every step, the leaf decoded, the PA and
    whether its page has data, or where and why the walk stopped."""
    steps = [
        {
            "level": s.level,
            "table_pa": _hex(s.table_pa),
            "index": s.index,
            "entry": _hex(s.entry),
            "type": None if s.decoded is None else s.decoded.type_name,
            "rebuilt": s.rebuilt,
            "note": s.note or None,
        }
        for s in t.steps
    ]
    leaf = None
    if t.leaf is not None:
        d = t.leaf
        leaf = {
            "level": d.level,
            "entry": f"{d.value:#x}",
            "exact": d.exact,
            "type": d.type_name,
            "output_address": f"{d.output_address:#x}",
            "output_address_raw": None
            if d.output_address_raw == d.output_address
            else f"{d.output_address_raw:#x}",
            "block_size_bytes": d.block_size_bytes,
            "memattr": d.memattr,
            "memattr_name": d.memattr_name,
            **dict(zip(d.entry_format.view_keys, d.views, strict=True)),
            "ng": d.ng,
            "af": d.af,
        }
    state = walk_state(t)
    return {
        "va": f"{t.va:#x}",
        "context": t.context,
        "context_dumped": t.context_dumped,
        "mapped": t.mapped,
        "pa": _hex(t.pa),
        "pa_raw": None if t.pa_raw == t.pa else _hex(t.pa_raw),
        "rebuilt": t.rebuilt,
        "steps": steps,
        "leaf": leaf,
        "dumped": None if state is None else state[0],
        "reason": None if state is None else state[1],
        "reason_detail": None if state is None else state[2],
        "stopped_level": t.stopped_level,
        "stopped_reason": t.stopped_reason,
    }
