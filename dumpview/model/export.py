"""Export a dump as JSON or JSON Lines, schema ``dumpview-export/1``, streamed.

Owns the record objects scripts read (one per page, table, range, memory region, anomaly, crash
log, plus the info document), their two containers, and writing them:

- JSONL: a ``header`` line (``"schema": "dumpview-export/1"``), one line per record (each with
  ``"record"``: ``info``, ``region``, ``range``, ``table``, ``page``, ``anomaly``,
  ``crashlog``), then an ``end`` line with the count of each record written, so a truncated
  file is detectable.
- JSON: one object with the header's keys and one array per included kind (``info`` is an
  object), then ``counts``. The record objects are the same in both.

Addresses, entry values and ``p_flags`` are lowercase ``"0x…"`` strings (jq reads numbers as
doubles); counts and small enumerations are numbers. A page without data has ``"dumped":
false`` with its reason, and ``data_base64`` null under ``--with-data``: never zeros. The JSON
Schema is ``dumpview/schema/dumpview-export-1.schema.json`` (``schema_text``).

Pages and ranges are formatted a chunk at a time from numpy columns (``pagearrays``): the
fields a run of pages shares are rendered once per distinct combination, so memory stays flat
and a million pages take about a second. ``export`` raises ``ValueError`` for unknown kinds or
formats, ``DumpError`` through the model, and ``OSError`` from the stream; ``export_file``
writes atomically (a temporary file in the target's directory, renamed over it on success,
removed on failure; ``dumpview.output`` decides) and refuses to write over the dump itself.
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from dumpview import __version__
from dumpview.model import kinds
from dumpview.model.guard import guarded
from dumpview.model.pagearrays import (
    DEFAULT_CHUNK_PAGES,
    LeafTables,
    PageArrays,
    PageIndex,
    hole_reasons,
    ptes_from_segments,
    unpack_p_flags_bulk,
)
from dumpview.model.parallel import parallel_jobs, write_in_parallel
from dumpview.model.ranges import RangeTable, human_size, ranges
from dumpview.model.text import hex_or_none, info_dict
from formats import entryformat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

SCHEMA_ID = "dumpview-export/1"
SCHEMA_RESOURCE = "dumpview-export-1.schema.json"
# Kinds in the order they are written; the CLI spells them with hyphens.
EXPORT_KINDS: tuple[str, ...] = (
    "info",
    "memory-map",
    "ranges",
    "tables",
    "pages",
    "anomalies",
    "crashlog",
)
RECORD_NAMES = {
    "info": "info",
    "memory-map": "region",
    "ranges": "range",
    "tables": "table",
    "pages": "page",
    "anomalies": "anomaly",
    "crashlog": "crashlog",
}
JSON_KEYS = {kind: kind.replace("-", "_") for kind in EXPORT_KINDS}
FORMATS = ("jsonl", "json")
# Below this many pages one process formats them (forking costs more than it saves).
PARALLEL_MIN_PAGES = 1 << 18
PARALLEL_CHUNK_PAGES = 1 << 14
TABLE_BATCH_CHARS = 1 << 22

Progress = Callable[[int, int], None]


def parse_kinds(text: str | Iterable[str]) -> tuple[str, ...]:
    """Kinds from "pages,tables" (or an iterable), in export order; "all" means every kind.
    ValueError names the first unknown kind and lists the known ones."""
    items = text.split(",") if isinstance(text, str) else list(text)
    wanted: set[str] = set()
    for item in items:
        name = item.strip().lower().replace("_", "-")
        if not name:
            continue
        if name == "all":
            wanted.update(EXPORT_KINDS)
        elif name in EXPORT_KINDS:
            wanted.add(name)
        else:
            raise ValueError(f"unknown kind {item.strip()!r} (known: {', '.join(EXPORT_KINDS)})")
    if not wanted:
        raise ValueError(f"no kinds given (known: {', '.join(EXPORT_KINDS)})")
    return tuple(k for k in EXPORT_KINDS if k in wanted)


def schema_text() -> str:
    """The JSON Schema of every export (``dumpview schema`` prints it)."""
    return resources.files("dumpview").joinpath("schema", SCHEMA_RESOURCE).read_text("utf-8")


def schema() -> dict:
    return json.loads(schema_text())


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


# ---- writing ------------------------------------------------------------------------------------


@dataclass
class ExportStats:
    """What an export wrote: records per record name, and the bytes of text."""

    counts: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0


def header(dump: Dump, include: tuple[str, ...], with_data: bool) -> dict:
    return {
        "schema": SCHEMA_ID,
        "generator": f"dumpview {__version__}",
        "dump": {
            "path": dump.path if dump.source.input == "stdin" else os.path.abspath(dump.path),
            "size_bytes": dump.size_bytes,
            "layout": dump.layout,
            "entry_format": dump.entry_format.name,
            "page_size": dump.page_size_bytes,
        },
        "include": list(include),
        "with_data": with_data,
    }


def _kind_chunks(
    dump: Dump, kind: str, with_data: bool, progress: Progress | None, context: int | None = None
) -> Iterator[list[str]]:
    """The records of one kind, as lists of JSON texts; ``context`` scopes ranges, pages and
    tables to one address space (a context not dumped: from its tables, ``export_context``)."""
    from dumpview.model.contexts import context_ranges, is_dumped_context

    dump.guard.check()
    if kind == "pages" and not is_dumped_context(dump, context):
        from dumpview.model.export_context import context_page_lines

        yield from context_page_lines(dump, context, with_data)
    elif kind == "pages":
        index = PageIndex(dump)
        writer = _PageWriter(dump, with_data)
        done = 0
        chunk = DEFAULT_CHUNK_PAGES if not with_data else 1 << 10
        for pages in index.chunks(chunk):
            yield writer.lines(pages)
            done += len(pages)
            if progress is not None:
                progress(done, index.total)
    elif kind == "ranges":
        yield from range_records(dump, context_ranges(dump, context=context))
    elif kind == "tables":
        batch: list[str] = []
        size = 0
        for record in table_records(dump, context):
            dump.guard.check()
            batch.append(record)
            size += len(record)
            if size >= TABLE_BATCH_CHARS:  # a leaf table's record can be ~150 KB
                yield batch
                batch, size = [], 0
        yield batch
    elif kind == "memory-map":
        yield [_dumps(r) for r in region_records(dump)]
    elif kind == "anomalies":
        yield [_dumps(r) for r in anomaly_records(dump)]
    elif kind == "crashlog":
        yield [_dumps(r) for r in crashlog_records(dump)]
    elif kind == "info":
        yield [_dumps(info_record(dump))]


def _pages_in_parallel(
    dump: Dump,
    out: TextIO,
    fmt: str,
    with_data: bool,
    progress: Progress | None,
    jobs: int | None,
    scratch_dir: str | None,
) -> tuple[int, int] | None:
    """Write every page record with several workers (``parallel.write_in_parallel``), exactly
    as ``_kind_chunks`` would; None when one process should do it (small dumps, no fork,
    threads running, ``jobs`` 1). Returns (records, bytes written)."""
    total = dump.page_totals[0]  # counted at open, as PageIndex numbers them
    if jobs is None:
        jobs = parallel_jobs(total, PARALLEL_MIN_PAGES)
    jobs = min(jobs, total)
    if jobs <= 1:
        return None  # decided before building anything the serial path builds again
    dump.guard.check()
    index = PageIndex(dump)
    writer = _PageWriter(dump, with_data)
    # Smaller chunks than one process uses: every worker's peak RSS counts the parent's pages
    # too. The columns every chunk reads are built before the fork, so workers share them.
    chunk = PARALLEL_CHUNK_PAGES if not with_data else 1 << 10
    _ = dump.seg_va, dump.seg_pa_raw, dump.seg_memsz, dump.seg_filesz, dump.seg_offset
    _ = dump.seg_flags
    last_line = "\n" if fmt == "jsonl" else ""
    join = "\n" if fmt == "jsonl" else ",\n"

    def produce(worker: int, start: int, stop: int) -> Iterator[tuple[str, int]]:
        for first in range(start, stop, chunk):
            lines = writer.lines(index.chunk(first, min(first + chunk, stop)))
            lead = "" if fmt == "jsonl" else ("\n" if worker == 0 and first == start else ",\n")
            yield lead + join.join(lines) + last_line, min(first + chunk, stop) - start

    report = None if progress is None else (lambda done: progress(done, index.total))
    return write_in_parallel(out, index.total, jobs, produce, report, scratch_dir, dump.guard)


@guarded
def export(
    dump: Dump,
    out: TextIO,
    fmt: str = "jsonl",
    include: Iterable[str] | str | None = None,
    with_data: bool = False,
    progress: Progress | None = None,
    jobs: int | None = None,
    context: int | None = None,
    scratch_dir: str | None = None,
) -> ExportStats:
    """Write ``dump`` to the text stream ``out`` as ``fmt`` ("jsonl" or "json"); ``include``
    picks kinds (default: all). ``progress(done, total)`` is called per chunk of pages.
    ``jobs``: worker processes for page records (None: decided by ``parallel_jobs``, 1: none);
    the output is the same bytes either way. ``context`` scopes ranges, pages and tables to
    one address space (the header says which); ``ContextError`` for one the dump lacks.
    ``scratch_dir``: where workers keep their (anonymous) scratch files, default the system's
    temporary directory."""
    from dumpview.model.contexts import check_context, is_dumped_context

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    kinds_ = EXPORT_KINDS if include is None else parse_kinds(include)
    stats = ExportStats(counts={RECORD_NAMES[k]: 0 for k in kinds_})
    head = header(dump, kinds_, with_data)
    if context is not None:
        head["context"] = check_context(dump, context)
        if not is_dumped_context(dump, context):
            jobs = 1  # a context's pages come from its tables, in one process

    def write(text: str) -> None:
        out.write(text)
        stats.size_bytes += len(text)

    def parallel_pages() -> bool:
        done = _pages_in_parallel(dump, out, fmt, with_data, progress, jobs, scratch_dir)
        if done is None:
            return False
        stats.counts["page"] += done[0]
        stats.size_bytes += done[1]
        return True

    if fmt == "jsonl":
        write(_dumps({"record": "header", **head}) + "\n")
        for kind in kinds_:
            name = RECORD_NAMES[kind]
            if kind == "pages" and parallel_pages():
                continue
            for lines in _kind_chunks(dump, kind, with_data, progress, context):
                if lines:
                    write("\n".join(lines) + "\n")
                    stats.counts[name] += len(lines)
        write(_dumps({"record": "end", "counts": stats.counts}) + "\n")
        return stats

    write(_dumps(head)[:-1])
    for kind in kinds_:
        name = RECORD_NAMES[kind]
        key = JSON_KEYS[kind]
        if kind == "info":
            record = info_record(dump)
            write(f',\n"{key}":{_dumps(record)}')
            stats.counts[name] += 1
            continue
        write(f',\n"{key}":[')
        if kind == "pages" and parallel_pages():
            write("]")
            continue
        first = True
        for lines in _kind_chunks(dump, kind, with_data, progress, context):
            if not lines:
                continue
            write(("\n" if first else ",\n") + ",\n".join(lines))
            first = False
            stats.counts[name] += len(lines)
        write("]")
    write(f',\n"counts":{_dumps(stats.counts)}}}\n')
    return stats


def export_file(dump: Dump, path: str | os.PathLike[str], **options: Any) -> ExportStats:
    """``export`` to ``path`` through ``dumpview.output.open_output``: atomically over a
    regular file or a new path (not fsynced: an export is cheap to redo, and fsyncing hundreds
    of MiB doubled its time), through a link to its file, streamed into a device, FIFO or
    socket, ``-`` for standard output. ``OutputError`` (an ``OSError`` naming ``path``) when
    ``path`` is the dump itself (by inode, through any link) or cannot be written."""
    from dumpview.output import open_output, plan_output

    avoid = [dump.fileno()] + ([] if dump.source.input == "stdin" else [dump.path])
    plan = plan_output(path, avoid=avoid)
    with open_output(path, plan=plan) as out:
        return export(dump, out, scratch_dir=plan.directory, **options)
