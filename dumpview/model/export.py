"""Export a dump as JSON or JSON Lines, schema ``dumpview-export/1``, streamed.

Owns the two containers of the record objects scripts read (one per page, table, range,
memory region, anomaly, crash log, plus the info document: ``dumpview.model.records`` makes
each) and writing them:

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

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO

from dumpview import __version__
from dumpview.model.guard import guarded
from dumpview.model.pagearrays import (
    DEFAULT_CHUNK_PAGES,
    PageIndex,
)
from dumpview.model.parallel import parallel_jobs, write_in_parallel
from dumpview.model.records import (
    _dumps,
    _PageWriter,
    anomaly_records,
    crashlog_records,
    info_record,
    range_records,
    region_records,
    table_records,
)
from dumpview.model.source import INPUT_STDIN

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
            "path": dump.path if dump.source.input == INPUT_STDIN else os.path.abspath(dump.path),
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

    avoid = [dump.fileno()] + ([] if dump.source.input == INPUT_STDIN else [dump.path])
    plan = plan_output(path, avoid=avoid)
    with open_output(path, plan=plan) as out:
        return export(dump, out, scratch_dir=plan.directory, **options)
