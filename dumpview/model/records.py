"""The records of an export, one function per kind: what scripts read about pages, tables,
ranges, memory regions, anomalies, crash logs and the dump itself.

Owns each record's JSON text (schema ``dumpview-export/1``): page records formatted a chunk
at a time from numpy columns (``pagearrays``), the fields a run of pages shares rendered once
per distinct combination (``_PageWriter``); ranges a chunk at a time (``range_chunks``, which
``ranges``' text output shares); a table record per walked or rebuilt table; the region,
anomaly, crash-log and info records as dicts. ``dumpview.model.export`` puts them in their
container (JSON Lines or one JSON document) and writes them.

Addresses, entry values and ``p_flags`` are lowercase ``"0x…"`` strings; a page without data
has ``"dumped": false`` with its reason, never zeros. Nothing here raises for a dump that
opened, but ``DumpError`` through the model (a table the dump lacks, a changed file).
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dumpview.model import kinds
from dumpview.model.pagearrays import (
    DEFAULT_CHUNK_PAGES,
    LeafTables,
    PageArrays,
    hole_reasons,
    ptes_from_segments,
    unpack_p_flags_bulk,
)
from dumpview.model.ranges import RangeTable, human_size, ranges
from dumpview.model.text import hex_or_none, info_dict
from formats import entryformat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump


# ---- records ------------------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def attributes(
    pte: int,
    flags: int,
    dumped: bool,
    exact: bool,
    reason,
    fmt: EntryFormat = entryformat.UAT,
) -> dict:
    """The members every page (or range) sharing these attributes has, as a dict: the
    permission views under the format's keys (UAT: firmware, gpu; LPAE: privileged,
    unprivileged)."""
    memattr = fmt.memattr(pte)
    reason_name, detail = reason if not dumped else (None, None)
    return {
        "pte_exact": exact,
        "flags": f"{flags:#x}",
        "dumped": dumped,
        "reason": reason_name,
        "reason_detail": detail,
        "memattr": memattr,
        "memattr_name": fmt.memattr_names[memattr],
        **fmt.keyed_views(pte),
        "kind": kinds.leaf_kind(pte, dumped, fmt),
    }


def _members(attrs: dict) -> str:
    """A dict as JSON object members (no braces), ready to be baked into a % format."""
    return _dumps(attrs)[1:-1].replace("%", "%%")


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct value, group id per row) of a 1-D uint64 key."""
    _unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1).astype(np.uint64)


def _groups(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct combination, group id per row) of integer columns,
    folded one column at a time (1-D sorts: a 2-D ``np.unique`` is ten times slower)."""
    group = np.zeros(len(columns[0]), dtype=np.uint64)
    first = np.zeros(0, dtype=np.int64)
    for column in columns:
        _first, values = _factorize(column.astype(np.uint64))
        first, group = _factorize(group * np.uint64(len(_first)) + values)
    return first, group.astype(np.int64)


def _raw_texts(pa: np.ndarray, pa_raw: np.ndarray) -> list[str]:
    """The ``pa_raw`` member of each row as JSON: null where it equals ``pa`` (nearly always),
    else the entry's own address as a "0x…" string."""
    out = ["null"] * len(pa)
    for i in np.flatnonzero(pa != pa_raw).tolist():
        out[i] = f'"{int(pa_raw[i]):#x}"'
    return out


def _path_prefix(steps) -> str:
    """The table path up to (not including) the leaf entry's index."""
    parts = [f'{{"level":{s.level},"table":"{s.table_pa:#x}","index":{s.index}}}' for s in steps]
    return ",".join(parts)


class _PageWriter:
    """Page records of one dump, chunk by chunk."""

    def __init__(self, dump: Dump, with_data: bool) -> None:
        self.dump = dump
        self.with_data = with_data
        self.leaf_tables = LeafTables(dump) if dump.tables_index is not None else None
        lt = self.leaf_tables
        self.prefixes: list[str] = []
        if lt is not None:
            for position, pa in enumerate(lt.table_pa):
                above = _path_prefix(lt.paths[position])
                self.prefixes.append(
                    (above + "," if above else "")
                    + f'{{"level":{lt.level[position]},"table":"{pa:#x}","index":'
                )
            self.unit_shift = np.array(lt.shift, dtype=np.uint64)
            self.unit_index_mask = np.array(lt.index_mask, dtype=np.uint64)

    def lines(self, pages: PageArrays) -> list[str]:
        dump = self.dump
        fmt = dump.entry_format
        attrs = pages.pte & np.uint64(fmt.attribute_mask)
        codes = np.full(len(pages), -1, dtype=np.int64)
        undumped = np.flatnonzero(~pages.dumped)
        reasons: list = []
        if len(undumped):
            hole_codes, reasons = hole_reasons(dump, pages.va[undumped], pages.flags[undumped])
            codes[undumped] = hole_codes
        first, group = _groups(attrs, pages.flags, pages.dumped, pages.pte_exact, codes + 1)
        common = [
            _members(
                attributes(
                    int(pages.pte[f]),
                    int(pages.flags[f]),
                    bool(pages.dumped[f]),
                    bool(pages.pte_exact[f]),
                    reasons[int(codes[f])] if codes[f] >= 0 else None,
                    fmt,
                )
            )
            for f in first.tolist()
        ]
        # pa_raw is null but where the entry says another address (rare): patched below.
        head = '{"record":"page","va":"0x%x","pa":"0x%x","pa_raw":null,"pte":"0x%x",'
        rows = zip(pages.va.tolist(), pages.pa.tolist(), pages.pte.tolist(), strict=True)
        if self.leaf_tables is None:
            # One format per group, the shared members baked in: one % per page.
            formats = np.array([f'{head}{c},"table_path":null}}' for c in common], dtype=object)
            out = list(map(str.__mod__, formats[group].tolist(), rows))
        else:
            positions = self.leaf_tables.of_pages(pages.va)
            unit = np.maximum(positions, 0)
            index = (
                (pages.va >> self.unit_shift[unit]) & self.unit_index_mask[unit]
                if len(self.unit_shift)
                else np.zeros(len(pages.va), np.uint64)
            ).tolist()
            prefixes = self.prefixes
            with_path = [f'{head}{c},"table_path":[%s%d}}]}}' for c in common]
            no_path = [f'{head}{c},"table_path":null}}' for c in common]
            out = [
                with_path[g] % (*row, prefixes[pos], i) if pos >= 0 else no_path[g] % row
                for g, row, pos, i in zip(
                    group.tolist(), rows, positions.tolist(), index, strict=True
                )
            ]
        for k in np.flatnonzero(pages.pa != pages.pa_raw).tolist():
            raw = f'"pa_raw":"{int(pages.pa_raw[k]):#x}"'
            out[k] = out[k].replace('"pa_raw":null', raw, 1)
        if self.with_data:
            buffer = dump.buffer
            size = dump.page_size_bytes
            offsets = pages.file_offset.tolist()
            dumped = pages.dumped.tolist()
            for k, line in enumerate(out):
                if dumped[k]:
                    start = offsets[k]
                    data = binascii.b2a_base64(buffer[start : start + size], newline=False)
                    out[k] = f'{line[:-1]},"data_base64":"{data.decode("ascii")}"}}'
                else:
                    out[k] = line[:-1] + ',"data_base64":null}'
        return out


@dataclass
class RangeChunk:
    """Consecutive rows of a range table as Python lists, and the attributes (``attributes``
    dicts) shared by each group of rows: ``groups[group[i]]`` belongs to row i."""

    va_start: list[int]
    va_end: list[int]
    size: list[str]
    size_bytes: list[int]
    pages: list[int]
    pa_start: list[int]
    pa_start_raw: list[str]  # JSON: null where it equals pa_start
    pte: list[int]
    group: list[int]
    groups: list[dict]


def _range_chunk(dump: Dump, table: RangeTable, start: int, stop: int) -> RangeChunk:
    va_start = table.va_start[start:stop]
    va_end = table.va_end[start:stop]
    pa_start = table.pa_start[start:stop]
    pa_start_raw = table.pa_start_raw[start:stop]
    flags = table.flags[start:stop]
    dumped = table.dumped[start:stop]
    codes = np.full(len(va_start), -1, dtype=np.int64)
    undumped = np.flatnonzero(~dumped)
    reasons: list = []
    if table.reason is not None:  # one reason for every range (a context not dumped)
        codes[undumped], reasons = 0, [table.reason]
    elif len(undumped):
        hole_codes, reasons = hole_reasons(dump, va_start[undumped], flags[undumped])
        codes[undumped] = hole_codes
    fmt = dump.entry_format
    exact = table.pte is not None  # the entries themselves, from a context's tables
    if exact:
        attrs = table.pte[start:stop] & np.uint64(fmt.attribute_mask)
        first, group = _groups(attrs, dumped, codes + 1)
    else:
        attrs = unpack_p_flags_bulk(flags, fmt)
        first, group = _groups(flags, dumped, codes + 1)
    groups = [
        attributes(
            int(attrs[f]),
            int(flags[f]),
            bool(dumped[f]),
            exact,
            reasons[int(codes[f])] if codes[f] >= 0 else None,
            fmt,
        )
        for f in first.tolist()
    ]
    size = va_end - va_start
    page = np.uint64(dump.page_size_bytes)
    sizes_unique, size_inverse = np.unique(size, return_inverse=True)
    names = np.array([human_size(int(n)) for n in sizes_unique.tolist()], dtype=object)
    return RangeChunk(
        va_start=va_start.tolist(),
        va_end=table.end_list(start, stop),  # 2**64 where the uint64 wrapped
        size=names[size_inverse.reshape(-1)].tolist(),
        size_bytes=size.tolist(),
        pages=((size + page - np.uint64(1)) // page).tolist(),
        pa_start=pa_start.tolist(),
        pa_start_raw=_raw_texts(pa_start, pa_start_raw),
        pte=(fmt.encode_output_address(pa_start_raw) | attrs).tolist(),
        group=group.tolist(),
        groups=groups,
    )


def range_chunks(dump: Dump, table: RangeTable | None = None) -> Iterator[RangeChunk]:
    """Every row of ``table`` (default: every range of the dump), a chunk at a time."""
    table = ranges(dump) if table is None else table
    for start in range(0, len(table), DEFAULT_CHUNK_PAGES):
        yield _range_chunk(dump, table, start, min(start + DEFAULT_CHUNK_PAGES, len(table)))


def range_records(dump: Dump, table: RangeTable | None = None) -> Iterator[list[str]]:
    """Range records (JSON text, one per range) in chunks; ``table`` defaults to every range."""
    head = (
        '{"record":"range","va_start":"0x%x","va_end":"0x%x","size":"%s","size_bytes":%d,'
        '"pages":%d,"pa_start":"0x%x","pa_start_raw":%s,"pte":"0x%x",'
    )
    for chunk in range_chunks(dump, table):
        formats = [f"{head}{_members(g)}}}" for g in chunk.groups]
        rows = zip(
            chunk.va_start,
            chunk.va_end,
            chunk.size,
            chunk.size_bytes,
            chunk.pages,
            chunk.pa_start,
            chunk.pa_start_raw,
            chunk.pte,
            strict=True,
        )
        yield [formats[g] % row for g, row in zip(chunk.group, rows, strict=True)]


def region_records(dump: Dump) -> list[dict]:
    from dumpview.model.memmap import memory_map

    rows, _reason = memory_map(dump)
    return [
        {
            "record": "region",
            "kind": r.kind,
            "name": r.name,
            "label": r.label,
            "base": f"{r.base:#x}",
            "end": f"{r.end:#x}",
            "size_bytes": r.size_bytes,
            "no_map": r.no_map,
            "reusable": r.reusable,
            "mapped_pages": r.mapped_pages,
            "dumped_pages": r.dumped_pages,
        }
        for r in rows
    ]


def table_records(dump: Dump, context: int | None = None) -> Iterator[str]:
    """Every table of every address space (or only ``context``'s) as a JSON text, parents
    first: real tables with their non-empty entries, or (driver dumps) rebuilt tables whose
    upper entries' values were not recorded. A carried table reached again (shared by several
    entries, or a cycle) is written once, with the parent that reached it first."""
    from dumpview.model.levels import LevelTree

    tree = LevelTree(dump)
    geometry = dump.geometry
    written: set[int] = set()  # carried table PAs: a table shared (or in a cycle) goes once
    for root in tree.roots:
        if context is not None and root.context != context:
            continue
        stack = [(root, None, None)]
        while stack:
            table, parent, parent_index = stack.pop()
            if table.carried and table.pa is not None:
                if table.pa in written:
                    continue  # its parent's entry still names it
                written.add(table.pa)
            yield _table_record(dump, tree, table, parent, parent_index)
            if table.depth + 1 < len(geometry.levels):
                stack.extend(
                    (child, table, index) for index, child in reversed(tree.children(table))
                )


_ENTRY_EXACT = '{"index":%d,"va":"0x%x","value":"0x%x","exact":true,"type":"%s"}'
_ENTRY_REBUILT_LEAF = '{"index":%d,"va":"0x%x","value":"0x%x","exact":false,"type":"page"}'
_ENTRY_REBUILT_TABLE = '{"index":%d,"va":"0x%x","value":null,"exact":false,"type":"table"}'


def _table_record(dump: Dump, tree, table, parent, parent_index) -> str:
    """One table record as JSON text; its entries are formatted with one ``%`` each (a
    million leaf entries in about a second)."""
    rows = tree.rows(table) if table.carried else None
    entries: list[str] = []
    if rows is not None:
        fmt = dump.entry_format
        level = rows.level_geometry.level
        names = {t: fmt.type_name(t, level, rows.is_leaf_level) for t in range(4)}
        present = np.flatnonzero(rows.present)
        vas = rows.entry_vas[present].tolist()
        if rows.values is not None:
            values = rows.values[present]
            types = [names[t] for t in (values & np.uint64(entryformat.TYPE_MASK)).tolist()]
            entries = list(
                map(
                    _ENTRY_EXACT.__mod__,
                    zip(present.tolist(), vas, values.tolist(), types, strict=True),
                )
            )
        elif rows.is_leaf_level:
            segs = rows.segment[present]
            offs = rows.entry_vas[present] - dump.seg_va[segs]
            ptes = ptes_from_segments(fmt, dump.seg_pa_raw[segs] + offs, dump.seg_flags[segs])
            entries = list(
                map(
                    _ENTRY_REBUILT_LEAF.__mod__,
                    zip(present.tolist(), vas, ptes.tolist(), strict=True),
                )
            )
        else:
            entries = list(
                map(_ENTRY_REBUILT_TABLE.__mod__, zip(present.tolist(), vas, strict=True))
            )
    record = {
        "record": "table",
        "context": table.context,
        "level": table.level,
        "va_start": f"{table.va_start:#x}",
        "va_end": f"{table.va_end:#x}",
        "pa": hex_or_none(table.pa),
        "entry_span_bytes": dump.geometry.levels[table.depth].entry_span_bytes,
        "rebuilt": table.rebuilt,
        "carried": table.carried,
        "parent": None
        if parent is None
        else {"table": hex_or_none(parent.pa), "level": parent.level, "index": parent_index},
    }
    return f'{_dumps(record)[:-1]},"entries":[{",".join(entries)}]}}'


def _jsonable(value: Any) -> Any:
    """A decoded crash-log field as JSON: integers as "0x…", bytes as plain hex, containers
    as objects without construct's private keys."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return f"{value:#x}"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def crashlog_records(dump: Dump) -> list[dict]:
    """One record per crash log: header, the panic message and the FAR (null without a Cstr
    or a Crg8 entry), every entry (decoded fields or raw hex), the ESR decoded with the FAR's
    walk, the Ccdp pairs checked against the tables, and the rendered sections."""
    from dumpview.model.crash import check_ccdp, crashlog_sections, fault
    from formats import clhe

    out = []
    sections = crashlog_sections(dump)
    for number, log in enumerate(dump.crashlogs):
        entries = []
        esr = None
        for entry in log.entries:
            fields = entry.fields
            entries.append(
                {
                    "type": entry.kind,
                    "offset": entry.offset,
                    "flags": entry.flags,
                    "size_bytes": len(entry.payload),
                    "fields": None if fields is None else _jsonable(dict(fields)),
                    "raw_hex": entry.payload.hex() if fields is None else None,
                }
            )
        found = fault(dump, log)
        if found is not None:
            info = found.esr
            esr = {
                "esr": f"{info.esr:#x}",
                "far": f"{found.far:#x}",
                "ec": info.ec,
                "ec_name": info.ec_name,
                "il": info.il,
                "iss": f"{info.iss:#x}",
                "details": list(info.details),
                "far_pa": hex_or_none(found.walk.pa),
                "far_pa_raw": None
                if found.walk.pa_raw == found.walk.pa
                else hex_or_none(found.walk.pa_raw),
                "far_stopped": None
                if found.walk.mapped
                else f"L{found.walk.stopped_level}: {found.walk.stopped_reason}",
                "fault_status": found.comparison.fault_status,
                "fault_level": found.comparison.level,
                "walk_agrees": found.comparison.agrees,
                "walk_note": found.comparison.note,
            }
        ccdp = [
            {
                "va": f"{c.va:#x}",
                "pa_log": f"{c.pa_log:#x}",
                "pa_dump": hex_or_none(c.pa_dump),
                "pa_dump_raw": None if c.pa_dump_raw == c.pa_dump else hex_or_none(c.pa_dump_raw),
                "agree": c.agree,
                "note": c.note,
            }
            for c in check_ccdp(dump, log)
        ]
        out.append(
            {
                "record": "crashlog",
                "number": number,
                "format": log.format,
                "size_bytes": len(log.raw),
                "version": log.version,
                "total_size": log.total_size,
                "tag_order": log.tag_order,
                "closed": log.closed,
                "warnings": list(log.warnings),
                "panic": clhe.panic_message(log),
                "far": None if found is None else f"{found.far:#x}",
                "entries": entries,
                "esr": esr,
                "ccdp": ccdp,
                "sections": [{"title": s.title, "lines": list(s.lines)} for s in sections]
                if number == 0
                else [],
            }
        )
    return out


def anomaly_records(dump: Dump) -> list[dict]:
    from dumpview.model.check import check

    return [{"record": "anomaly", **a.to_dict()} for a in check(dump).anomalies]


def info_record(dump: Dump) -> dict:
    return {"record": "info", **info_dict(dump)}
