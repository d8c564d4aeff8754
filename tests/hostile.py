"""Hostile dumps: one harness that runs a file through every entry point, and the corpus.

Owns three things the hostile-input tests (``tests/test_hostile.py``) and the fuzzer
(``tests/fuzz.py``) share:

- ``exercise(path)``: the file through every entry point a user has, in process, each bounded in
  time (``time_limit``, SIGALRM: main thread only), and one ``Result`` per entry point: ``ok``,
  ``error`` (exit 2 and exactly one ``dumpview: ...`` line on stderr, reached through a
  ``DumpError``/``OSError``), ``warning`` (partial results and visible warnings), ``UNHANDLED``
  (any other exception, a traceback, a multi-line error, an exit code outside the documented
  set, a model error that reached the CLI's error path through anything but ``DumpError``, an
  export that does not parse or whose page records disagree with ``info``) or ``HANG`` (the time
  limit, plus ``PER_PAGE_SECONDS`` per page the file claims: proportional work is not a hang).
  The file's sha256 is compared before and after.
  Entry points: the CLI commands ``info``, ``info --json``, ``vtop VA``, ``read VA 64``,
  ``export -o FILE`` and ``check`` through ``dumpview.cli.main`` (what a user runs: the last
  resort handler included) under click's ``CliRunner`` isolation, and the inspector's loader
  (``dumpview.model.levels.open_for_browsing``) plus the model calls its first screen makes.
  ``fast=True`` calls the model functions behind each command directly (the fuzzer's mode).
- ``Layout``: an independent ``struct`` reading of a dump's structure (not the model's), for
  boundaries to cut at and offsets an error must name.
- ``corpus()``: every hostile case, each built on the fly from ``tests/factory.py`` builders,
  ``samples/`` or the writer, then broken. ``python tests/hostile.py OUTDIR`` writes them all.

Nothing here raises for a hostile file: problems are results. ``time_limit`` raises ``Hang``
(a ``BaseException``, so no ``except Exception`` in the code under test can swallow it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``python tests/hostile.py`` from anywhere
    sys.path.insert(0, str(ROOT))

from dumpview.model.errors import DumpError  # noqa: E402
from dumpview.sim.writer import (  # noqa: E402
    HoleInfo,
    RegionInfo,
    SegmentTable,
    SpaceInfo,
    TableInfo,
    write_core,
)
from formats import clhe, elf, ext, uat  # noqa: E402
from tests import factory  # noqa: E402
from tests.factory import BASE_VA, PAGE  # noqa: E402

OK = "ok"
WARNING = "warning"
ERROR = "error"
UNHANDLED = "UNHANDLED"
HANG = "HANG"
BAD_OUTCOMES = frozenset({UNHANDLED, HANG})

DEFAULT_TIMEOUT = 20.0
# Work proportional to what a file claims is not a hang: each entry point's limit grows by this
# much per page its PT_LOADs claim (measured: export ~3 us per page, rebuilt tables included;
# the model refuses more than a whole 39-bit address space of pages).
PER_PAGE_SECONDS = 6e-6
FALLBACK_VA = BASE_VA
READ_SIZE = 64

# Entry points, and the exit codes each may end with (README: 2 bad input; 1 "no").
ENTRY_POINTS: tuple[str, ...] = ("info", "info-json", "vtop", "read", "export", "check", "tui")
EXIT_CODES: dict[str, frozenset[int]] = {
    "info": frozenset({0, 2}),
    "info-json": frozenset({0, 2}),
    "vtop": frozenset({0, 1, 2}),
    "read": frozenset({0, 1, 2}),
    "export": frozenset({0, 2}),
    "check": frozenset({0, 1, 2}),
}


# ---- time limits ---------------------------------------------------------------------------------


class Hang(BaseException):
    """An entry point ran past its time limit (a BaseException: ``except Exception`` in the code
    under test must not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` in the main thread if the body runs longer than ``seconds`` (SIGALRM).
    Python-level code is interrupted between bytecodes; one long C call finishes first."""

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- results -------------------------------------------------------------------------------------


@dataclass
class Result:
    """What one entry point did with the file. ``detail``: the error line, the first warning,
    or what made it UNHANDLED/HANG (one line)."""

    entry: str
    outcome: str
    detail: str = ""
    exit_code: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    pages: int | None = None  # the page count it reported (info: total; export: page records)


@dataclass
class Outcome:
    """Every entry point's result for one file, and whether the file stayed the same."""

    path: str
    results: dict[str, Result] = field(default_factory=dict)
    sha_before: str = ""
    sha_after: str = ""

    @property
    def changed(self) -> bool:
        return self.sha_before != self.sha_after

    @property
    def bad(self) -> list[Result]:
        """Results that are bugs (UNHANDLED or HANG)."""
        return [r for r in self.results.values() if r.outcome in BAD_OUTCOMES]

    @property
    def ok(self) -> bool:
        return not self.bad and not self.changed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results.values():
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return out

    def describe(self) -> str:
        """One line: the path, then each entry point's outcome (and detail when bad)."""
        parts = []
        for r in self.results.values():
            text = f"{r.entry}={r.outcome}"
            if r.outcome in BAD_OUTCOMES:
                text += f" ({r.detail})"
            parts.append(text)
        if self.changed:
            parts.append("FILE CHANGED")
        return f"{self.path}: " + ", ".join(parts)


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _one_line(text: str, limit: int = 300) -> str:
    line = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _exception_line(exc: BaseException) -> str:
    """``Type: message`` and where it was raised (the innermost frame in the project)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "/dumpview/" in frame.filename or "/formats/" in frame.filename:
            where = f" at {Path(frame.filename).name}:{frame.lineno}"
            break
    return _one_line(f"{type(exc).__name__}: {exc}{where}")


# ---- picking a VA --------------------------------------------------------------------------------


def pick_va(path: str | os.PathLike[str]) -> int:
    """A VA worth asking about: the first PT_LOAD whose first bytes are in the file, else the
    first PT_LOAD's VA, else ``FALLBACK_VA``. Reads the headers itself (never the model)."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(elf.EHDR_SIZE)
            size = os.fstat(fp.fileno()).st_size
            if len(head) < elf.EHDR_SIZE or head[:4] != elf.ELF_MAGIC:
                return FALLBACK_VA
            phoff, phnum = (
                struct.unpack_from("<Q", head, 32)[0],
                struct.unpack_from("<H", head, 56)[0],
            )
            phnum = min(phnum, 4096, max(0, (size - phoff) // elf.PHDR_SIZE) if phoff < size else 0)
            fp.seek(phoff)
            table = fp.read(phnum * elf.PHDR_SIZE)
    except (OSError, ValueError, OverflowError):
        return FALLBACK_VA
    first = None
    for i in range(len(table) // elf.PHDR_SIZE):
        p_type, _flags, offset, vaddr, _paddr, filesz, _memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", table, i * elf.PHDR_SIZE
        )
        if p_type != elf.PT_LOAD:
            continue
        if first is None:
            first = vaddr
        if filesz >= READ_SIZE and offset + READ_SIZE <= size:
            return vaddr
    return FALLBACK_VA if first is None else first


# ---- entry points: the CLI -----------------------------------------------------------------------


def run_cli(
    argv: list[str], timeout: float
) -> tuple[int | None, str, str, BaseException | None, list]:
    """``dumpview ARGV`` in process: (exit code, stdout, stderr, exception that escaped main or
    Hang, exceptions being handled when the CLI failed). Exit code None: no SystemExit."""
    from click.testing import CliRunner

    from dumpview import cli

    runner = CliRunner()
    code: int | None = 0
    escaped: BaseException | None = None
    handled: list[BaseException | None] = []
    with runner.isolation() as (out, err, _mixed):
        try:
            with time_limit(timeout):
                cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc, cli.common.CommandFailed):
                handled.append(exc.handled)
        except BaseException as exc:  # Hang, or anything main let through
            escaped = exc
            code = None
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    return code, stdout, stderr, escaped, handled


def _check_jsonl(path: str) -> tuple[str | None, int | None]:
    """(what is wrong with an export that claims success or None, its page records): every
    line JSON, a header first, an end last whose counts match the records."""
    try:
        with open(path, encoding="utf-8") as fp:
            lines = fp.read().splitlines()
    except OSError as exc:
        return f"export said it wrote {path} but it cannot be read: {exc}", None
    try:
        records = [json.loads(line) for line in lines]
    except ValueError as exc:
        return f"export wrote a line that is not JSON: {exc}", None
    if not records or records[0].get("record") != "header" or records[-1].get("record") != "end":
        return "export is not header ... end", None
    counts: dict[str, int] = {}
    for record in records[1:-1]:
        counts[record.get("record")] = counts.get(record.get("record"), 0) + 1
    claimed = {k: v for k, v in records[-1].get("counts", {}).items() if v}
    if counts != claimed:
        return f"export end counts {claimed} do not match the records {counts}", None
    return None, counts.get("page", 0)


def _classify_cli(
    entry: str,
    code: int | None,
    stdout: str,
    stderr: str,
    escaped: BaseException | None,
    handled: list[BaseException | None],
) -> tuple[str, str]:
    from click import ClickException

    if isinstance(escaped, Hang):
        return HANG, str(escaped)
    if escaped is not None:
        return UNHANDLED, f"escaped main: {_exception_line(escaped)}"
    if "Traceback" in stdout or "Traceback" in stderr:
        return UNHANDLED, "a traceback in the output"
    for exc in handled:
        if exc is None or isinstance(exc, DumpError | OSError):
            continue
        if isinstance(exc, ClickException):
            return UNHANDLED, f"usage error (harness bug?): {_exception_line(exc)}"
        return UNHANDLED, f"reached the error path through {_exception_line(exc)}"
    if code not in EXIT_CODES[entry]:
        return UNHANDLED, f"exit code {code}, documented: {sorted(EXIT_CODES[entry])}"
    lines = stderr.splitlines()
    if code == 2:
        if len(lines) != 1:
            return UNHANDLED, f"exit 2 with {len(lines)} stderr lines: {_one_line(stderr)}"
        line = lines[0]
        if not line.startswith("dumpview: ") or "internal error" in line:
            return UNHANDLED, line
        return ERROR, line
    warnings = [line for line in lines if line.startswith("dumpview: warning: ")]
    if warnings:
        return WARNING, warnings[0]
    return OK, ""


def _cli_entry(entry: str, path: str, va: int, workdir: str, timeout: float) -> Result:
    argv = {
        "info": ["info", path],
        "info-json": ["info", "--json", path],
        "vtop": ["vtop", path, hex(va)],
        "read": ["read", path, hex(va), str(READ_SIZE)],
        "check": ["check", path],
    }.get(entry)
    target = os.path.join(workdir, "export.jsonl")
    if entry == "export":
        argv = ["export", path, "-o", target]
    assert argv is not None, entry
    started = time.perf_counter()
    code, stdout, stderr, escaped, handled = run_cli(argv, timeout)
    seconds = time.perf_counter() - started
    outcome, detail = _classify_cli(entry, code, stdout, stderr, escaped, handled)
    pages = None
    if entry == "info-json" and outcome in (OK, WARNING):
        try:
            pages = int(json.loads(stdout)["pages"]["total"])
        except (ValueError, KeyError, TypeError) as exc:
            outcome, detail = UNHANDLED, f"info --json did not print its document: {exc}"
    if entry == "export" and outcome not in BAD_OUTCOMES:
        leftovers = sorted(set(os.listdir(workdir)) - {"export.jsonl"})
        if leftovers:
            outcome, detail = UNHANDLED, f"export left {leftovers} behind"
        elif outcome == ERROR and os.path.exists(target):
            outcome, detail = UNHANDLED, f"export failed but wrote {target}: {detail}"
        elif outcome in (OK, WARNING):
            problem, pages = _check_jsonl(target)
            if problem is not None:
                outcome, detail = UNHANDLED, problem
        with contextlib.suppress(OSError):
            os.unlink(target)
    return Result(entry, outcome, detail, code, seconds, stdout, stderr, pages)


# ---- entry points: the model (fast mode and the inspector's loader) ---------------------------


class _NullSink(io.TextIOBase):
    """A text stream that counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)


def _browse(path: str) -> list[str]:
    """What ``DumpviewApp._load`` and its first screen do: the shared loader, then the model
    calls the main screen makes on mount. Returns the warnings the inspector shows."""
    from dumpview.model.crash import crashlog_sections
    from dumpview.model.levels import FoldRow, open_for_browsing
    from dumpview.model.memmap import memory_map, minimap, used_extent
    from dumpview.model.ranges import ranges
    from dumpview.model.text import info_dict

    dump, tree = open_for_browsing(path)
    try:
        try:
            warnings = dump.all_warnings()
            crashlog_sections(dump)
            info_dict(dump)
            memory_map(dump)
            minimap(dump, 100)
            if dump.segment_count:
                lo, hi = used_extent(dump)
                if hi > lo:
                    minimap(dump, 100, lo, hi)
            ranges(dump)
            for root in tree.roots:
                tree.children(root)
            rows = tree.rows(tree.roots[0])
            for i in range(min(len(rows), 64)):
                row = rows.row(i)
                if not isinstance(row, FoldRow):
                    rows.decoded(row.index)
                    child = rows.child(row.index)
                    if child is not None and child.carried:
                        tree.rows(child)
        except DumpError as exc:
            # The loader succeeded, so the app is on its main screen: this would crash it.
            raise RuntimeError(f"after the loader succeeded: {exc}") from exc
    finally:
        dump.close()
    return warnings


def _model_entry(entry: str, path: str, va: int) -> tuple[list[str], int | None]:
    """The model calls behind one CLI command (fast mode): (the warnings it shows, the page
    count it reports: info's total, export's page records)."""
    from dumpview.model import open_dump
    from dumpview.model.export import export
    from dumpview.model.text import data_state, info_dict, walk_lines

    if entry == "tui":
        return _browse(path), None
    pages = None
    with open_dump(path) as dump:
        warnings = dump.all_warnings()
        if entry in ("info", "info-json"):
            pages = json.loads(json.dumps(info_dict(dump)))["pages"]["total"]
        elif entry == "vtop":
            t = dump.translate(va)
            walk_lines(t)
            if t.mapped and t.page is not None:
                data_state(t.page.dumped, t.page.reason, t.page.reason_detail)
        elif entry == "read":  # as the CLI reads: runs of data and marked gaps
            for run in dump.read_runs(va, READ_SIZE):
                if run.dumped:
                    bytes(run.data)
        elif entry == "export":
            pages = export(dump, _NullSink()).counts["page"]
        elif entry == "check":
            dump.check()
        return warnings, pages


def _fast_entry(entry: str, path: str, va: int, timeout: float) -> Result:
    started = time.perf_counter()
    try:
        with time_limit(timeout):
            warnings, pages = _model_entry(entry, path, va)
    except Hang as exc:
        return Result(entry, HANG, str(exc), seconds=time.perf_counter() - started)
    except (DumpError, OSError) as exc:
        seconds = time.perf_counter() - started
        text = str(exc)
        if "\n" in text or not text.strip():
            return Result(entry, UNHANDLED, f"not one line: {text!r}", seconds=seconds)
        return Result(entry, ERROR, text, seconds=seconds)
    except BaseException as exc:  # anything else is the bug we look for
        if isinstance(exc, KeyboardInterrupt):
            raise
        seconds = time.perf_counter() - started
        return Result(entry, UNHANDLED, _exception_line(exc), seconds=seconds)
    seconds = time.perf_counter() - started
    if warnings:
        return Result(entry, WARNING, warnings[0], seconds=seconds, pages=pages)
    return Result(entry, OK, seconds=seconds, pages=pages)


def claimed_pages(path: str | os.PathLike[str]) -> int:
    """The pages the file's PT_LOADs claim (``ceil(p_memsz / 16 KiB)`` each, read here, not by
    the model; PN_XNUM followed), at most ``dump.MAX_PAGES``; 0 when the headers do not read."""
    from dumpview.model.dump import MAX_PAGES
    from dumpview.sim.writer import PHDR_DTYPE

    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError):
        return 0
    if len(raw) < elf.EHDR_SIZE or bytes(raw[:4]) != elf.ELF_MAGIC:
        return 0
    head = bytes(raw[: elf.EHDR_SIZE])
    phoff, shoff = struct.unpack_from("<QQ", head, 32)
    (phnum,) = struct.unpack_from("<H", head, 56)
    if phnum == elf.PN_XNUM and 0 < shoff <= len(raw) - elf.SHDR_SIZE:
        (phnum,) = struct.unpack_from("<I", bytes(raw[shoff + 44 : shoff + 48]))
    if phoff >= len(raw):
        return 0
    phnum = min(phnum, (len(raw) - phoff) // elf.PHDR_SIZE)
    table = np.frombuffer(raw, dtype=PHDR_DTYPE, count=phnum, offset=phoff)
    memsz = table["p_memsz"][table["p_type"] == elf.PT_LOAD]
    pages = memsz // np.uint64(PAGE) + ((memsz % np.uint64(PAGE)) != 0)
    return int(min(pages.astype(float).sum(), MAX_PAGES))


def exercise(
    path: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    fast: bool = False,
    entries: tuple[str, ...] = ENTRY_POINTS,
    timeouts: dict[str, float] | None = None,
) -> Outcome:
    """Run ``path`` through ``entries`` (default: every entry point), each within ``timeout``
    seconds (``timeouts`` overrides per entry point) plus ``PER_PAGE_SECONDS`` for each page
    the file claims. ``fast``: the model calls behind each command instead of the CLI (the
    inspector's loader is always model calls).

    Never raises for a hostile file; must run in the main thread (SIGALRM)."""
    path = os.fspath(path)
    outcome = Outcome(path, sha_before=sha256_of(path))
    va = pick_va(path)
    allowance = claimed_pages(path) * PER_PAGE_SECONDS
    workdir = tempfile.mkdtemp(
        prefix="hostile-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )
    try:
        for entry in entries:
            limit = (timeouts or {}).get(entry, timeout) + allowance
            if fast or entry == "tui":
                result = _fast_entry(entry, path, va, limit)
            else:
                result = _cli_entry(entry, path, va, workdir, limit)
            outcome.results[entry] = result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _cross_check(outcome)
    outcome.sha_after = sha256_of(path)
    return outcome


def _cross_check(outcome: Outcome) -> None:
    """Entry points that answered must agree: the pages ``info`` counts are the page records
    ``export`` writes (a disagreement is a lie, reported as UNHANDLED on export)."""
    counted = {r.entry: r.pages for r in outcome.results.values() if r.pages is not None}
    export = outcome.results.get("export")
    for entry in ("info-json", "info"):
        if entry in counted and export is not None and export.pages is not None:
            if counted[entry] != export.pages:
                export.outcome = UNHANDLED
                export.detail = (
                    f"LIE: {entry} counts {counted[entry]:,} pages, export wrote "
                    f"{export.pages:,} page records"
                )
            return


# ---- reading a dump's structure independently ---------------------------------------------------


@dataclass
class Layout:
    """Where everything sits in a (well-formed) dump, read with ``struct`` alone."""

    size: int
    phoff: int
    phnum: int
    shoff: int
    shnum: int
    phdrs: list[dict]
    notes: list[dict]
    sections: list[dict]
    ext_offset: int | None = None
    ext_size: int = 0
    directory: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, raw: bytes) -> Layout:
        phoff, shoff = struct.unpack_from("<QQ", raw, 32)
        phnum, _shentsize, shnum = struct.unpack_from("<HHH", raw, 56)
        sections = []
        for i in range(shnum):
            at = shoff + i * elf.SHDR_SIZE
            _name, sh_type, _flags, _addr, offset, size, _link, info, _al, _ent = (
                struct.unpack_from("<IIQQQQIIQQ", raw, at)
            )
            sections.append(
                {
                    "index": i,
                    "at": at,
                    "type": sh_type,
                    "offset": offset,
                    "size": size,
                    "info": info,
                }
            )
        if phnum == elf.PN_XNUM:
            phnum = sections[0]["info"]
        phdrs = []
        for i in range(phnum):
            at = phoff + i * elf.PHDR_SIZE
            p_type, flags, offset, vaddr, paddr, filesz, memsz, _align = struct.unpack_from(
                "<IIQQQQQQ", raw, at
            )
            phdrs.append(
                {
                    "index": i,
                    "at": at,
                    "type": p_type,
                    "flags": flags,
                    "offset": offset,
                    "vaddr": vaddr,
                    "paddr": paddr,
                    "filesz": filesz,
                    "memsz": memsz,
                }
            )
        notes = []
        for ph in phdrs:
            if ph["type"] != elf.PT_NOTE:
                continue
            pos, end = ph["offset"], ph["offset"] + ph["filesz"]
            while pos + elf.NHDR_SIZE <= end:
                namesz, descsz, n_type = struct.unpack_from("<III", raw, pos)
                name_at = pos + elf.NHDR_SIZE
                desc_at = name_at + elf.align_up(namesz, 4)
                name = raw[name_at : name_at + namesz].rstrip(b"\0").decode("latin-1")
                notes.append(
                    {"at": pos, "name": name, "type": n_type, "desc_at": desc_at, "descsz": descsz}
                )
                pos = desc_at + elf.align_up(descsz, 4)
        layout = cls(len(raw), phoff, phnum, shoff, shnum, phdrs, notes, sections)
        for sec in sections:
            if sec["type"] == ext.SHT_DUMPVIEW:
                layout.ext_offset, layout.ext_size = sec["offset"], sec["size"]
                (count,) = struct.unpack_from("<I", raw, sec["offset"] + 12)
                for i in range(count):
                    at = sec["offset"] + ext.EXT_HEADER_FIXED_SIZE + i * 24
                    kind, n, offset, size = struct.unpack_from("<IIQQ", raw, at)
                    layout.directory.append(
                        {"at": at, "kind": kind, "count": n, "offset": offset, "size": size}
                    )
                break
        return layout

    @property
    def loads(self) -> list[dict]:
        return [ph for ph in self.phdrs if ph["type"] == elf.PT_LOAD]

    @property
    def note_segment(self) -> dict:
        return next(ph for ph in self.phdrs if ph["type"] == elf.PT_NOTE)

    def section(self, sh_type: int) -> dict:
        return next(sec for sec in self.sections if sec["type"] == sh_type)

    def record(self, kind: int) -> dict:
        return next(d for d in self.directory if d["kind"] == kind)

    def boundaries(self) -> list[tuple[str, int]]:
        """(name, file offset) where each structure starts (and a few middles), inside the file."""
        out = [("ehdr-ident", 0), ("ehdr-middle", 40), ("ehdr-end", elf.EHDR_SIZE - 1)]
        out += [(f"phdr{ph['index']}", ph["at"]) for ph in self.phdrs]
        notes = self.note_segment
        out += [
            ("notes-start", notes["offset"]),
            ("notes-middle", notes["offset"] + notes["filesz"] // 2),
        ]
        out += [(f"note-{n['name'] or 'noname'}-{i}", n["at"]) for i, n in enumerate(self.notes)]
        seen: set[int] = set()
        for ph in self.loads:
            if ph["filesz"] and ph["offset"] not in seen:
                seen.add(ph["offset"])
                out.append((f"load{ph['index']}-data", ph["offset"]))
        for sec in self.sections:
            if sec["size"]:
                out.append((f"section{sec['index']}-content", sec["offset"]))
        if self.ext_offset is not None:
            out.append(("ext-directory", self.ext_offset + ext.EXT_HEADER_FIXED_SIZE))
            out += [
                (f"ext-record-kind{d['kind']}", self.ext_offset + d["offset"])
                for d in self.directory
            ]
        if self.shnum:
            out.append(("shdrs", self.shoff))
            out += [(f"shdr{sec['index']}", sec["at"]) for sec in self.sections[1:]]
        unique: dict[int, str] = {}
        for name, offset in out:
            if 0 <= offset < self.size:
                unique.setdefault(offset, name)
        return sorted(((name, offset) for offset, name in unique.items()), key=lambda x: x[1])

    def truncation_error_offset(self, cut: int) -> int | None:
        """The offset the model must name when the file is cut to ``cut`` bytes (None: not
        knowable here). Checks run in the model's order: header, section headers, program
        headers, PT_LOADs in VA order."""
        if cut < elf.EHDR_SIZE:
            return 0
        if self.shnum and self.shoff + self.shnum * elf.SHDR_SIZE > cut:
            return self.shoff
        if self.phoff + self.phnum * elf.PHDR_SIZE > cut:
            return self.phoff
        for ph in sorted(self.loads, key=lambda p: p["vaddr"]):
            if ph["filesz"] and ph["offset"] + ph["filesz"] > cut:
                return ph["at"]
        notes = self.note_segment
        if notes["offset"] + notes["filesz"] > cut:
            return notes["at"]
        return None


# ---- bases: small dumps to break ---------------------------------------------------------------

RICH_CRASHLOG_FAR = BASE_VA + 0x40


def rich_crashlog(
    entries: list[tuple[str, bytes | dict]] | None = None,
    tag_order: str = clhe.TAG_ORDER_FIRMWARE,
) -> bytes:
    """A crash log with every payload kind (panic, registers with FAR/ESR, stack, mailbox, tasks,
    async errors, Ccdp pairs), built with ``formats.clhe`` (tags as the firmware writes them,
    or in reading order as dumpview 0.1.0 did)."""
    if entries is None:
        entries = rich_crashlog_entries()
    return clhe.build_crashlog(entries, tag_order=tag_order)


def rich_crashlog_entries() -> list[tuple[str, bytes | dict]]:
    return [
        ("Cver", {"uuid": bytes(range(16)), "version": "RTKit_iOS-hostile"}),
        ("Cstr", {"id": 0, "message": "GPU firmware panic: hostile test"}),
        ("Ctim", {"time": 0x1234}),
        (
            "Crg8",
            {
                "unk0": 0,
                "unk1": 0,
                "x": list(range(31)),
                "sp": BASE_VA + 0x3F00,
                "pc": BASE_VA + 0x1A40,
                "psr": 0x6000_03C5,
                "cpacr": 0,
                "fpsr": 0,
                "fpcr": 0,
                "unknown": [0] * 64,
                "far": RICH_CRASHLOG_FAR,
                "unknown2": 0,
                "esr": (0x25 << 26) | (1 << 25) | 0x07,
                "unknown3": 0,
            },
        ),
        ("Ccst", {"task": 1, "unknown": 0, "return_addresses": [BASE_VA + 0x10, BASE_VA + 0x20]}),
        (
            "Cmbx",
            {
                "header": [1, 0, 0, 0],
                "type": 1,
                "unknown": 0,
                "index": 0,
                "records": [{"endpoint": 0x20, "message": 0xDEAD, "timestamp": 1}],
            },
        ),
        (
            "Crtk",
            {
                "tasks": [
                    {
                        "id": 1,
                        "flags": 1,
                        "unk0": [0, 0, 0],
                        "ptr": BASE_VA,
                        "unk1": [0, 0, 0, 0],
                        "name": "rtk_ep",
                        "ptrs": [BASE_VA + 8],
                    }
                ]
            },
        ),
        (
            "CasC",
            {
                f: 0
                for f in (
                    "l2c_err_sts",
                    "l2c_err_adr",
                    "l2c_err_inf",
                    "lsu_err_sts",
                    "fed_err_sts",
                    "mmu_err_sts",
                )
            },
        ),
        (
            "Ccdp",
            {
                "pairs": [
                    {"va": BASE_VA, "pa": 0x8_0000_0000, "unknown": 0},
                    {"va": BASE_VA + PAGE, "pa": 0x8_0000_4000, "unknown": 0},
                ]
            },
        ),
    ]


def default_notes(log: bytes | None = None) -> list[tuple[str, int, bytes]]:
    return [factory.agx_note(), ("RTKIT", 1, rich_crashlog() if log is None else log)]


def _write(segments, notes, extension=None, read_table=None) -> bytes:
    table = segments if isinstance(segments, SegmentTable) else SegmentTable.from_rows(segments)
    buf = io.BytesIO()
    write_core(buf, table, factory.read_data, notes, extension, read_table)
    return buf.getvalue()


@cache
def driver_base() -> bytes:
    """The factory's default segments (two with data, two without) in the driver layout, with
    the AGX note and a crash log of every payload kind."""
    return _write(factory.default_segments(), default_notes())


EXT_TTB_PA = 0x7_0000_0000
# (va, pa, protection, has data): two L3 tables, dumped and undumped pages, MMIO.
EXT_PAGES: list[tuple[int, int, str, bool]] = [
    (BASE_VA, 0x8_0000_0000, "FW_PRIV_RW", True),
    (BASE_VA + PAGE, 0x8_0000_4000, "FW_PRIV_RW", True),
    (BASE_VA + 2 * PAGE, 0x8_1000_0000, "FW_SHARED_RW", False),
    (BASE_VA + 0x10_0000, 0x2_0000_0000, "FW_MMIO_RW", False),
    (BASE_VA + 0x400_0000, 0x8_0010_0000, "GPU_SHARED_RW", True),
]
EXT_REGIONS = [
    RegionInfo(ext.REGION_RAM, "dram", 0x8_0000_0000, 0x1_0000_0000),
    RegionInfo(ext.REGION_RESERVED, "carveout", 0x8_1000_0000, 0x10_0000, ext.REGION_NO_MAP),
    RegionInfo(ext.REGION_MMIO, "sgx", 0x2_0000_0000, 0x100_0000),
]
EXT_HOLES = [
    HoleInfo(BASE_VA + 2 * PAGE, PAGE, ext.REASON_BORROW_REFUSED, ext.DETAIL_NO_MAP, 1),
    HoleInfo(BASE_VA + 0x10_0000, PAGE, ext.REASON_DEVICE_MEMORY, ext.DETAIL_MMIO, 2),
]


def ext_parts(
    leaf_overrides: dict[int, int] | None = None,
) -> tuple[list, dict[int, bytes], list[TableInfo], SpaceInfo]:
    """The pieces of the extension base: segment rows, table contents by PA, table records and
    the space, for cases that rebuild the extension with one thing changed."""
    leaves = {va: factory.leaf_pte(pa, prot) for va, pa, prot, _ in EXT_PAGES}
    leaves.update(leaf_overrides or {})
    infos, contents = factory.build_tables(leaves, EXT_TTB_PA, EXT_TTB_PA + PAGE)
    geometry = uat.uat_geometry()
    space_start = geometry.va_base & ~geometry.ias_mask
    space = SpaceInfo(0, EXT_TTB_PA, space_start, 1 << geometry.ias, BASE_VA, 1 << 36)
    rows = [factory.segment(va, pa, 1, prot, data) for va, pa, prot, data in sorted(EXT_PAGES)]
    return rows, contents, infos, space


def build_ext(
    *,
    contents: dict[int, bytes] | None = None,
    tables: list[TableInfo] | None = None,
    spaces: list[SpaceInfo] | None = None,
    holes: list[HoleInfo] | None = None,
    geometry=None,
    entry_format: int = ext.ENTRY_FORMAT_UAT,
    version: int = ext.EXT_VERSION,
    knobs: dict | None = None,
    notes: list[tuple[str, int, bytes]] | None = None,
) -> bytes:
    """The extension base, with any part replaced (``geometry`` may be any object with the
    GeometryRecord's attributes: the writer only reads them)."""
    rows, base_contents, base_infos, space = ext_parts()
    from dumpview.sim.writer import Extension

    extension = Extension(
        entry_format=entry_format,
        geometry=uat.uat_geometry() if geometry is None else geometry,
        spaces=[space] if spaces is None else spaces,
        tables=base_infos if tables is None else tables,
        regions=EXT_REGIONS,
        holes=EXT_HOLES if holes is None else holes,
        scenario_name="hostile",
        seed=7,
        knobs={"pages": len(EXT_PAGES)} if knobs is None else knobs,
        version=version,
    )
    table_data = base_contents if contents is None else contents
    return _write(
        rows, default_notes() if notes is None else notes, extension, table_data.__getitem__
    )


@cache
def ext_base() -> bytes:
    """A dump carrying its tables (TTB, one L2, two L3), memory map and hole records, with the
    AGX note and a crash log of every payload kind."""
    return build_ext()


USER_TTB_PA = 0x7_1000_0000


@cache
def ext_two_spaces_base() -> bytes:
    """The extension base plus a user address space (context 1, an owned TTB in the lower
    half) whose tables map one of the kernel's PAs again, with another memattr."""
    _rows, contents, infos, space = ext_parts()
    user_leaves = {0x1000_0000: factory.leaf_pte(0x8_0000_0000, "GPU_SHARED_RW") | uat.BIT_NG}
    user_infos, user_contents = factory.build_tables(user_leaves, USER_TTB_PA, USER_TTB_PA + PAGE)
    for info in user_infos:
        info.context = 1
    user = SpaceInfo(1, USER_TTB_PA, 0, 1 << 39, 0x1000_0000, 1 << 30, ext.SPACE_TTB_OWNED)
    return build_ext(
        contents={**contents, **user_contents}, tables=[*infos, *user_infos], spaces=[space, user]
    )


@cache
def sample(name: str) -> bytes:
    return (ROOT / "samples" / name).read_bytes()


# ---- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile file. Every entry point's outcome must be in ``allowed``; an error line must
    contain every string of ``names`` (the offset or address that is knowable); a warning must
    contain ``warns`` when given. ``known_bug``: entry point -> what is wrong (reported, not
    failed, by the tests while the bug stands)."""

    name: str
    description: str
    build: Callable[[], bytes]
    allowed: frozenset[str] = frozenset({ERROR, WARNING})
    names: tuple[str, ...] = ()
    warns: str | None = None
    timeouts: dict[str, float] = field(default_factory=dict)
    known_bug: dict[str, str] = field(default_factory=dict)
    slow: bool = False
    # The entry points the case runs through (default: all). A case whose pages are its point
    # leaves out ``export``: its answer is a record per claimed page (millions), what the
    # amplification tests bound instead (``test_export_pages_memory_is_flat``).
    entries: tuple[str, ...] = ENTRY_POINTS


EITHER = frozenset({ERROR, WARNING})
ANY_CLEAN = frozenset({OK, ERROR, WARNING})
NOT_EXPORT = tuple(entry for entry in ENTRY_POINTS if entry != "export")


def put(raw: bytearray, offset: int, fmt: str, value: int) -> bytearray:
    struct.pack_into(fmt, raw, offset, value)
    return raw


def mutated(
    base: Callable[[], bytes], *edits: tuple[int | Callable[[Layout], int], str, int]
) -> Callable[[], bytes]:
    """A builder: ``base()`` with ``(offset or f(layout), struct format, value)`` overwritten."""

    def build() -> bytes:
        raw = bytearray(base())
        layout = Layout.read(bytes(raw))
        for where, fmt, value in edits:
            offset = where(layout) if callable(where) else where
            put(raw, offset, fmt, value)
        return bytes(raw)

    return build


def _hex(n: int) -> str:
    return f"{n:#x}"


def truncation_cases(label: str, base: Callable[[], bytes]) -> list[Case]:
    """The file cut at every structure boundary its own layout gives."""
    layout = Layout.read(base())
    cases = []
    for where, cut in layout.boundaries():
        offset = layout.truncation_error_offset(cut)
        cases.append(
            Case(
                f"truncate-{label}-{where}",
                f"{label} cut to {cut:#x} bytes ({where})",
                (lambda cut=cut: base()[:cut]),
                frozenset({ERROR}),
                names=() if offset is None else (_hex(offset),),
            )
        )
    return cases


def section_truncation_cases() -> list[Case]:
    """The ``.dumpview`` section's sh_size cut inside the header, the directory and at each
    record array: the file itself stays whole."""
    layout = Layout.read(ext_base())
    sec = layout.section(ext.SHT_DUMPVIEW)
    start = layout.ext_offset
    assert start is not None
    dir_end = ext.EXT_HEADER_FIXED_SIZE + 24 * len(layout.directory)
    cuts = [
        ("empty", 0),
        ("magic", 8),
        ("directory", ext.EXT_HEADER_FIXED_SIZE),
        ("directory-middle", dir_end - 12),
    ]
    cuts += [(f"record-kind{d['kind']}", d["offset"]) for d in layout.directory]
    cuts += [
        (f"record-kind{d['kind']}-middle", d["offset"] + d["size"] // 2)
        for d in layout.directory
        if d["size"] > 1
    ]
    cases = []
    for where, size in cuts:
        if size < ext.EXT_HEADER_FIXED_SIZE or size < dir_end:
            offset = start
        else:  # the directory entry whose array no longer fits
            offset = next(d["at"] for d in layout.directory if d["offset"] + d["size"] > size)
        cases.append(
            Case(
                f"ext-section-cut-{where}",
                f".dumpview sh_size cut to {size:#x} ({where})",
                mutated(ext_base, (sec["at"] + 32, "<Q", size)),
                frozenset({ERROR}),
                names=(_hex(offset),),
            )
        )
    return cases


def header_cases() -> list[Case]:
    """Program headers, sections and notes that lie."""
    d = Layout.read(driver_base())
    e = Layout.read(ext_base())
    first_load = d.loads[0]
    second_load = d.loads[1]
    notes = d.note_segment
    agx_note = next(n for n in d.notes if n["name"] == "AGX")
    return [
        Case(
            "phnum-past-eof",
            "e_phnum 0x2000: the table runs past the end",
            mutated(driver_base, (56, "<H", 0x2000)),
            frozenset({ERROR}),
            names=("0x40",),
        ),
        Case(
            "phnum-max-past-eof",
            "e_phnum 0xfffe",
            mutated(driver_base, (56, "<H", 0xFFFE)),
            frozenset({ERROR}),
            names=("0x40",),
        ),
        Case(
            "phnum-too-big",
            "e_phnum two more than written: page data read as headers",
            mutated(driver_base, (56, "<H", d.phnum + 2)),
            ANY_CLEAN,
        ),
        Case(
            "phnum-too-small",
            "e_phnum 2: only the PT_NOTE and one PT_LOAD",
            mutated(driver_base, (56, "<H", 2)),
            ANY_CLEAN,
        ),
        Case(
            "phnum-zero",
            "e_phnum 0: no notes, no segments",
            mutated(driver_base, (56, "<H", 0)),
            ANY_CLEAN,
        ),
        Case(
            "phnum-too-small-ext",
            "e_phnum 1 with the extension: tables and holes for segments that are gone",
            mutated(ext_base, (56, "<H", 1)),
            ANY_CLEAN,
        ),
        Case(
            "pn-xnum-without-section-0",
            "e_phnum PN_XNUM, e_shoff 0",
            mutated(driver_base, (56, "<H", elf.PN_XNUM)),
            frozenset({ERROR}),
            names=("0x38",),
        ),
        Case(
            "pn-xnum-count-past-eof",
            "PN_XNUM, section 0's sh_info 0x10000000",
            mutated(
                ext_base, (56, "<H", elf.PN_XNUM), (lambda lay: lay.shoff + 44, "<I", 0x1000_0000)
            ),
            frozenset({ERROR}),
            names=(_hex(e.phoff),),
        ),
        Case(
            "pn-xnum-count-small",
            "PN_XNUM, section 0's sh_info 0 (PN_XNUM is for 65,535 or more)",
            mutated(ext_base, (56, "<H", elf.PN_XNUM)),
            EITHER,
        ),
        Case(
            "phentsize-wrong",
            "e_phentsize 32",
            mutated(driver_base, (54, "<H", 32)),
            frozenset({ERROR}),
            names=("0x36",),
        ),
        Case(
            "shentsize-wrong",
            "e_shentsize 40",
            mutated(ext_base, (58, "<H", 40)),
            frozenset({ERROR}),
            names=("0x3a",),
        ),
        Case(
            "shoff-past-eof",
            "e_shoff past the end",
            mutated(ext_base, (40, "<Q", e.size + 8)),
            frozenset({ERROR}),
            names=(_hex(e.size + 8),),
        ),
        Case(
            "shnum-huge",
            "e_shnum 0xffff",
            mutated(ext_base, (60, "<H", 0xFFFF)),
            frozenset({ERROR}),
            names=(_hex(e.shoff),),
        ),
        Case(
            "shnum-zero-size-huge",
            "e_shnum 0, section 0's sh_size 2**40",
            mutated(ext_base, (60, "<H", 0), (lambda lay: lay.shoff + 32, "<Q", 1 << 40)),
            frozenset({ERROR}),
            names=(_hex(e.shoff),),
        ),
        Case(
            "phoff-huge",
            "e_phoff 2**64 - 8",
            mutated(driver_base, (32, "<Q", (1 << 64) - 8)),
            frozenset({ERROR}),
        ),
        Case(
            "load-offset-past-eof",
            "a PT_LOAD's p_offset past the end",
            mutated(driver_base, (second_load["at"] + 8, "<Q", d.size + PAGE)),
            frozenset({ERROR}),
            names=(_hex(second_load["at"]),),
        ),
        Case(
            "load-filesz-past-eof",
            "a PT_LOAD's p_filesz (and p_memsz) past the end",
            mutated(
                driver_base,
                (first_load["at"] + 32, "<Q", 1 << 40),
                (first_load["at"] + 40, "<Q", 1 << 40),
            ),
            frozenset({ERROR}),
            names=(_hex(first_load["at"]),),
        ),
        Case(
            "load-offset-wraps",
            "p_offset + p_filesz wraps past 2**64",
            mutated(driver_base, (first_load["at"] + 8, "<Q", (1 << 64) - 0x100)),
            frozenset({ERROR}),
            names=(_hex(first_load["at"]),),
        ),
        Case(
            "load-filesz-above-memsz",
            "p_filesz larger than p_memsz",
            mutated(driver_base, (first_load["at"] + 40, "<Q", PAGE)),
            frozenset({ERROR}),
            names=(_hex(first_load["at"]),),
        ),
        Case(
            "load-va-wraps",
            "p_vaddr + p_memsz wraps past 2**64",
            mutated(driver_base, (first_load["at"] + 16, "<Q", (1 << 64) - PAGE)),
            frozenset({ERROR}),
        ),
        Case(
            "load-overlap",
            "the second PT_LOAD starts inside the first",
            mutated(driver_base, (second_load["at"] + 16, "<Q", first_load["vaddr"] + PAGE)),
            frozenset({ERROR}),
            names=(_hex(second_load["at"]),),
        ),
        Case(
            "load-overlap-unsorted",
            "PT_LOADs out of VA order, two overlapping",
            mutated(driver_base, (first_load["at"] + 16, "<Q", d.loads[-1]["vaddr"])),
            frozenset({ERROR}),
        ),
        Case(
            "load-unaligned",
            "a PT_LOAD of 0x1001 bytes at an odd VA",
            mutated(
                driver_base,
                (d.loads[-1]["at"] + 16, "<Q", d.loads[-1]["vaddr"] + 1),
                (d.loads[-1]["at"] + 40, "<Q", 0x1001),
            ),
            EITHER,
        ),
        Case(
            "load-zero-length",
            "a PT_LOAD with p_memsz 0",
            mutated(driver_base, (d.loads[-1]["at"] + 40, "<Q", 0)),
            EITHER,
        ),
        Case(
            "load-huge-memsz",
            "a PT_LOAD of 1 GiB without data (65,536 pages)",
            mutated(driver_base, (d.loads[-1]["at"] + 40, "<Q", 1 << 30)),
            ANY_CLEAN,
        ),
        Case(
            "load-claims-too-many-pages",
            "a PT_LOAD at VA 0x4000 with p_memsz 2**57 (fuzz seed 3 case 7079: check ran out of "
            "memory, export never ended)",
            mutated(
                driver_base,
                (second_load["at"] + 16, "<Q", PAGE),
                (second_load["at"] + 40, "<Q", (1 << 57) + PAGE),
            ),
            frozenset({ERROR}),
            names=(_hex(second_load["at"]), "pages"),
        ),
        Case(
            "note-offset-past-eof",
            "PT_NOTE p_offset past the end",
            mutated(driver_base, (notes["at"] + 8, "<Q", d.size + 16)),
            frozenset({ERROR}),
            names=(_hex(notes["at"]),),
        ),
        Case(
            "notes-overrun",
            "PT_NOTE p_filesz 60: the first note no longer fits",
            mutated(driver_base, (notes["at"] + 32, "<Q", 60)),
            frozenset({ERROR}),
            names=(_hex(notes["offset"]),),
        ),
        Case(
            "notes-short-header",
            "PT_NOTE p_filesz leaves 8 bytes after the notes",
            mutated(driver_base, (notes["at"] + 32, "<Q", notes["filesz"] + 8)),
            frozenset({ERROR}),
            names=(_hex(notes["offset"] + notes["filesz"]),),
        ),
        Case(
            "note-descsz-huge",
            "the AGX note's n_descsz 0xffffffff",
            mutated(driver_base, (agx_note["at"] + 4, "<I", 0xFFFF_FFFF)),
            frozenset({ERROR}),
            names=(_hex(agx_note["at"]),),
        ),
        Case(
            "note-namesz-huge",
            "the AGX note's n_namesz 0xfffffffd",
            mutated(driver_base, (agx_note["at"], "<I", 0xFFFF_FFFD)),
            frozenset({ERROR}),
            names=(_hex(agx_note["at"]),),
        ),
        Case(
            "agx-note-48",
            "an AGX note of 48 bytes",
            lambda: _write(
                factory.default_segments(), [("AGX", 1, bytes(48)), ("RTKIT", 1, rich_crashlog())]
            ),
            frozenset({ERROR}),
            names=("56",),
        ),
        Case(
            "agx-note-empty",
            "an AGX note of 0 bytes",
            lambda: _write(
                factory.default_segments(), [("AGX", 1, b""), ("RTKIT", 1, rich_crashlog())]
            ),
            frozenset({ERROR}),
            names=("56",),
        ),
        Case(
            "agx-note-60",
            "an AGX note of 60 bytes",
            lambda: _write(
                factory.default_segments(), [("AGX", 1, bytes(60)), ("RTKIT", 1, rich_crashlog())]
            ),
            frozenset({ERROR}),
            names=("56",),
        ),
    ]


# ---- crash logs ------------------------------------------------------------------------------


def _crashlog_entry_offsets(log: bytes) -> list[int]:
    offsets, pos = [], clhe.CLHE_HEADER_SIZE
    while pos + clhe.ENTRY_HEADER_SIZE <= len(log):
        offsets.append(pos)
        kind, _flags, length = struct.unpack_from("<4s4xII", log, pos)
        closing = kind in (clhe.CLHE_MAGIC, clhe.CLHE_MAGIC_READING_ORDER)  # both tag orders
        if closing or length < clhe.ENTRY_HEADER_SIZE:
            break
        pos += length
    return offsets


def _broken_log(edit: Callable[[bytearray, list[int]], bytes]) -> Callable[[], bytes]:
    def build() -> bytes:
        log = bytearray(rich_crashlog())
        return _write(
            factory.default_segments(),
            default_notes(edit(log, _crashlog_entry_offsets(bytes(log)))),
        )

    return build


def crashlog_cases() -> list[Case]:
    """CLHE crash logs that lie: every one is a warning with the entries before the break."""

    def length(value: int, entry: int = 2):
        def edit(log: bytearray, at: list[int]) -> bytes:
            return bytes(put(log, at[entry] + 12, "<I", value))

        return edit

    def no_closing(log: bytearray, at: list[int]) -> bytes:
        return bytes(log[: at[-1]])

    def short_crg8(log: bytearray, at: list[int]) -> bytes:
        # Crg8 (entry 3) claims only its header and 8 bytes: the payload cannot decode.
        return bytes(put(log, at[3] + 12, "<I", clhe.ENTRY_HEADER_SIZE + 8))

    def truncated_entry_header(log: bytearray, at: list[int]) -> bytes:
        return bytes(log[: at[2] + 6])

    def total_size_lies(log: bytearray, at: list[int]) -> bytes:
        return bytes(put(log, 8, "<I", 0xFFFF_FFF0))

    def header_only(log: bytearray, at: list[int]) -> bytes:
        return bytes(log[:20])

    def bytes_past_total_size(log: bytearray, at: list[int]) -> bytes:
        # A whole well-formed entry after the closing one, outside the total size: not read.
        return bytes(log) + clhe.build_crashlog([("Cstr", {"id": 9, "message": "past"})])[32:]

    def total_size_inside_entries(log: bytearray, at: list[int]) -> bytes:
        return bytes(put(log, 8, "<I", at[3]))  # ends where Crg8 starts: no closing entry

    def total_size_below_header(log: bytearray, at: list[int]) -> bytes:
        return bytes(put(log, 8, "<I", 8))

    def reading_order(log: bytearray, at: list[int]) -> bytes:
        return rich_crashlog(tag_order=clhe.TAG_ORDER_READING)

    return [
        Case(
            "clhe-length-past-end",
            "the third entry's length runs past the log",
            _broken_log(length(0x7FFF_FFFF)),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-length-zero",
            "the third entry has length 0 (a walker that adds it loops)",
            _broken_log(length(0)),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-length-fifteen",
            "the third entry has length 15 (below its own header)",
            _broken_log(length(15)),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-no-closing-entry",
            "the closing CLHE entry is missing",
            _broken_log(no_closing),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-payload-undecodable",
            "the Crg8 entry is too short to decode",
            _broken_log(short_crg8),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-entry-header-truncated",
            "the log ends inside an entry header",
            _broken_log(truncated_entry_header),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-total-size-lies",
            "the CLHE header claims 0xfffffff0 bytes",
            _broken_log(total_size_lies),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-header-truncated",
            "the log is 20 bytes of a CLHE header",
            _broken_log(header_only),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-bytes-past-total-size",
            "a well-formed entry after the closing one, past the header's total size",
            _broken_log(bytes_past_total_size),
            EITHER,
            warns="past the header's total size",
        ),
        Case(
            "clhe-total-size-inside-entries",
            "the header's total size ends where the Crg8 entry starts",
            _broken_log(total_size_inside_entries),
            EITHER,
            warns="crash log",
        ),
        Case(
            "clhe-total-size-below-header",
            "the header's total size (8) is smaller than the header itself",
            _broken_log(total_size_below_header),
            EITHER,
            warns="smaller than the header",
        ),
        Case(
            "clhe-reading-order",
            'every tag in reading order ("CLHE" on disk), as dumpview 0.1.0 wrote them',
            _broken_log(reading_order),
            EITHER,
            warns="reading order",
        ),
    ]


# ---- the extension ---------------------------------------------------------------------------


def _table_with(contents: dict[int, bytes], pa: int, index: int, value: int) -> dict[int, bytes]:
    out = dict(contents)
    raw = bytearray(out[pa])
    struct.pack_into("<Q", raw, index * 8, value)
    out[pa] = bytes(raw)
    return out


def _ext_tables() -> tuple[dict[int, bytes], list[TableInfo]]:
    _rows, contents, infos, _space = ext_parts()
    return contents, infos


def _l2_pa(infos: list[TableInfo]) -> int:
    return next(t.pa for t in infos if t.level == 2)


def _l3_pas(infos: list[TableInfo]) -> list[int]:
    return [t.pa for t in infos if t.level == 3]


def _self_reference() -> bytes:
    contents, infos = _ext_tables()
    l2 = _l2_pa(infos)
    return build_ext(contents=_table_with(contents, l2, 100, l2 | uat.PTE_TABLE))


def _cycle_to_ttb() -> bytes:
    contents, infos = _ext_tables()
    return build_ext(contents=_table_with(contents, _l2_pa(infos), 100, EXT_TTB_PA | uat.PTE_TABLE))


def _shared_table() -> bytes:
    contents, infos = _ext_tables()
    return build_ext(
        contents=_table_with(contents, _l2_pa(infos), 100, _l3_pas(infos)[0] | uat.PTE_TABLE)
    )


def _shared_fanout() -> bytes:
    """Every L2 entry and all eight TTB entries point at the one L2 / L3 table: a walker that
    does not remember what it visited expands 8 x 2048 leaf tables."""
    contents, infos = _ext_tables()
    l2 = _l2_pa(infos)
    l3 = _l3_pas(infos)[0]
    geometry = uat.uat_geometry()
    top = geometry.levels[0]
    for i in range(top.entries):
        contents = _table_with(contents, EXT_TTB_PA, i, l2 | uat.PTE_TABLE)
    raw = bytearray(contents[l2])
    for i in range(geometry.levels[1].entries):
        struct.pack_into("<Q", raw, i * 8, l3 | uat.PTE_TABLE)
    contents[l2] = bytes(raw)
    leaf = np.uint64(0x8_0000_0000) + np.arange(
        geometry.levels[2].entries, dtype=np.uint64
    ) * np.uint64(PAGE)
    contents[l3] = (leaf | np.uint64(factory.leaf_pte(0))).astype("<u8").tobytes()
    return build_ext(contents=contents)


def _missing_table() -> bytes:
    contents, infos = _ext_tables()
    return build_ext(
        contents=_table_with(contents, _l2_pa(infos), 100, 0x6_0000_0000 | uat.PTE_TABLE)
    )


def _shared_ttb() -> bytes:
    _rows, _contents, _infos, space = ext_parts()
    other = SpaceInfo(
        5, space.ttb_pa, space.va_start, space.va_size_bytes, BASE_VA, 1 << 36, ext.SPACE_TTB_OWNED
    )
    return build_ext(spaces=[space, other])


def _many_missing() -> bytes:
    """Every L2 entry points at a different table the dump does not carry."""
    contents, infos = _ext_tables()
    l2 = _l2_pa(infos)
    entries = np.uint64(0x6_0000_0000) + np.arange(2048, dtype=np.uint64) * np.uint64(PAGE)
    contents[l2] = (entries | np.uint64(uat.PTE_TABLE)).astype("<u8").tobytes()
    return build_ext(contents=contents)


def _missing_ttb() -> bytes:
    _rows, _contents, _infos, space = ext_parts()
    other = SpaceInfo(
        5, 0x6_0000_0000, space.va_start, space.va_size_bytes, BASE_VA, 1 << 36, ext.SPACE_TTB_OWNED
    )
    return build_ext(spaces=[space, other])


def _table_offset(value: int) -> Callable[[], bytes]:
    def build() -> bytes:
        raw = bytearray(ext_base())
        layout = Layout.read(bytes(raw))
        tables = layout.record(ext.KIND_TABLES)
        return bytes(put(raw, layout.ext_offset + tables["offset"] + 32, "<Q", value))

    return build


def _geometry(**overrides: int) -> SimpleNamespace:
    g = uat.uat_geometry()
    fields = {
        "page_shift": g.page_shift,
        "ias": g.ias,
        "oas": g.oas,
        "level_count": g.level_count,
        "start_level": g.start_level,
        "va_base": g.va_base,
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


def _ext_field(kind: int, offset_in_record: int, fmt: str, value: int) -> Callable[[], bytes]:
    def build() -> bytes:
        raw = bytearray(ext_base())
        layout = Layout.read(bytes(raw))
        rec = layout.record(kind)
        return bytes(put(raw, layout.ext_offset + rec["offset"] + offset_in_record, fmt, value))

    return build


def _ext_directory(index: int, offset_in_entry: int, fmt: str, value: int) -> Callable[[], bytes]:
    def build() -> bytes:
        raw = bytearray(ext_base())
        layout = Layout.read(bytes(raw))
        return bytes(put(raw, layout.directory[index]["at"] + offset_in_entry, fmt, value))

    return build


def _ext_offset() -> int:
    offset = Layout.read(ext_base()).ext_offset
    assert offset is not None
    return offset


def extension_cases() -> list[Case]:
    """Extensions built with the writer that lie about their tables, geometry and records."""
    e = Layout.read(ext_base())
    ext_at = _hex(_ext_offset())
    geometry_at = _hex(e.ext_offset + e.record(ext.KIND_GEOMETRY)["offset"])
    second_hole_at = _hex(
        e.ext_offset + e.record(ext.KIND_HOLES)["offset"] + ext.HoleRecord.sizeof()
    )
    tables_count_at = next(i for i, d in enumerate(e.directory) if d["kind"] == ext.KIND_TABLES)
    unsorted_holes = list(reversed(EXT_HOLES))
    overlapping_holes = [
        HoleInfo(BASE_VA + 2 * PAGE, 0x10_0000, ext.REASON_BORROW_REFUSED),
        EXT_HOLES[1],
    ]
    return [
        Case(
            "table-self-reference",
            "an L2 entry points at its own table",
            _self_reference,
            EITHER,
            warns="referenced again",
        ),
        Case(
            "table-cycle-to-ttb",
            "an L2 entry points back at the TTB",
            _cycle_to_ttb,
            EITHER,
            warns="referenced again",
        ),
        Case(
            "table-shared",
            "an L2 entry points at an L3 table another entry reached",
            _shared_table,
            EITHER,
            warns="referenced again",
        ),
        Case(
            "table-shared-fanout",
            "every TTB entry -> one L2 whose every entry -> one full L3",
            _shared_fanout,
            EITHER,
            warns="referenced again",
            timeouts={"export": 2.0},
        ),
        Case(
            "table-missing",
            "an L2 entry points at a PA the dump does not carry",
            _missing_table,
            EITHER,
            warns="not carried",
        ),
        Case(
            "ttb-shared",
            "a second address space with the first one's TTB",
            _shared_ttb,
            EITHER,
            warns="a space's TTB",
        ),
        Case(
            "table-many-missing",
            "2048 L2 entries, each pointing at a different table the dump does not carry",
            _many_missing,
            EITHER,
            warns="not carried",
        ),
        Case(
            "ttb-missing",
            "a second address space whose TTB the dump does not carry",
            _missing_ttb,
            EITHER,
            warns="not carried",
        ),
        Case(
            "table-offset-past-eof",
            "a table record's content offset past the end",
            _table_offset(1 << 40),
            frozenset({ERROR}),
            names=(ext_at,),
        ),
        Case(
            "table-offset-unaligned",
            "a table record's content offset not 16 KiB aligned",
            _table_offset(0x4010),
            frozenset({ERROR}),
            names=(ext_at,),
        ),
        Case(
            "table-offset-wraps",
            "a table record's content offset 2**64 - 16 KiB (offset + page wraps to 0)",
            _table_offset((1 << 64) - PAGE),
            frozenset({ERROR}),
            names=(ext_at,),
        ),
        Case(
            "geometry-five-levels",
            "4 KiB granule, 52-bit IAS: 5 levels",
            lambda: build_ext(
                geometry=_geometry(page_shift=12, ias=52, level_count=5, start_level=0xFF)
            ),
            frozenset({ERROR}),
            names=(geometry_at,),
        ),
        Case(
            "geometry-page-size-0",
            "page shift 0",
            lambda: build_ext(geometry=_geometry(page_shift=0)),
            frozenset({ERROR}),
            names=(geometry_at,),
        ),
        Case(
            "geometry-4k-pages",
            "a UAT extension that says 4 KiB pages (read with that geometry: tables of 512)",
            lambda: build_ext(geometry=_geometry(page_shift=12, level_count=3)),
            ANY_CLEAN,
        ),
        Case(
            "geometry-level-count-lies",
            "level count 4 for a 3-level geometry",
            lambda: build_ext(geometry=_geometry(level_count=4)),
            frozenset({ERROR}),
            names=(geometry_at,),
        ),
        Case(
            "geometry-ias-64",
            "IAS 64",
            lambda: build_ext(geometry=_geometry(ias=64)),
            frozenset({ERROR}),
            names=(geometry_at,),
        ),
        Case(
            "entry-format-unknown",
            "entry format 99",
            lambda: build_ext(entry_format=99),
            frozenset({ERROR}),
            names=(geometry_at,),
        ),
        Case(
            "ext-version-2",
            "extension version 2",
            lambda: build_ext(version=2),
            frozenset({WARNING}),
            warns="version 2",
        ),
        Case(
            "ext-directory-count-huge",
            "directory count 0xffffffff",
            mutated(ext_base, (lambda lay: lay.ext_offset + 12, "<I", 0xFFFF_FFFF)),
            frozenset({ERROR}),
            names=(ext_at,),
        ),
        Case(
            "ext-record-count-lies",
            "the tables entry claims one record more than it holds",
            _ext_directory(tables_count_at, 4, "<I", e.directory[tables_count_at]["count"] + 1),
            frozenset({ERROR}),
        ),
        Case(
            "ext-record-offset-huge",
            "the tables entry's offset is 2**63",
            _ext_directory(tables_count_at, 8, "<Q", 1 << 63),
            frozenset({ERROR}),
        ),
        Case(
            "ext-magic",
            "the .dumpview section does not start with DUMPVIEW",
            mutated(ext_base, (lambda lay: lay.ext_offset, "<Q", 0)),
            frozenset({ERROR}),
            names=(ext_at,),
        ),
        Case(
            "holes-unsorted",
            "hole records out of VA order",
            lambda: build_ext(holes=unsorted_holes),
            frozenset({ERROR}),
            names=(second_hole_at,),
        ),
        Case(
            "holes-overlapping",
            "hole records that overlap",
            lambda: build_ext(holes=overlapping_holes),
            frozenset({ERROR}),
            names=(second_hole_at,),
        ),
        Case(
            "scenario-knobs-not-json",
            "the scenario's knobs are not JSON",
            _ext_field(ext.KIND_SCENARIO, 8 + 2 + len("hostile") + 4, "<B", ord("!")),
            frozenset({ERROR}),
        ),
        Case(
            "region-name-offset-huge",
            "a region's name offset past the strings",
            _ext_field(ext.KIND_REGIONS, 4, "<I", 0x7FFF_FFFF),
            EITHER,
            warns="name offset 0x7fffffff",
        ),
        Case(
            "hole-region-index-huge",
            "a hole's region index past the regions",
            _ext_field(ext.KIND_HOLES, 20, "<i", 1 << 30),
            EITHER,
            warns="region index 1073741824",
        ),
        Case(
            "space-managed-range-inverted",
            "the space's managed range ends below its walked start (fuzz seed 2 case 508: "
            "check raised OverflowError)",
            _ext_field(ext.KIND_SPACES, 32, "<Q", 0),
            ANY_CLEAN,
        ),
        Case(
            "space-ttb-zero",
            "the space's TTB PA is 0",
            _ext_field(ext.KIND_SPACES, 8, "<Q", 0),
            EITHER,
            warns="not carried",
        ),
    ]


# ---- a million empty segments -------------------------------------------------------------------

MILLION = 1_000_000


def million_empty_loads(count: int = MILLION) -> bytes:
    """The factory's segments plus ``count`` PT_LOADs of p_memsz 0 (one per page above them),
    program headers built in bulk with numpy: about 56 MB."""
    from dumpview.sim.writer import PHDR_DTYPE

    base = bytearray(driver_base())
    layout = Layout.read(bytes(base))
    real = np.frombuffer(bytes(base), dtype=PHDR_DTYPE, count=layout.phnum, offset=layout.phoff)
    extra = np.zeros(count, dtype=PHDR_DTYPE)
    extra["p_type"] = elf.PT_LOAD
    extra["p_flags"] = real[1]["p_flags"]
    extra["p_vaddr"] = np.uint64(BASE_VA + 0x1000_0000) + np.arange(
        count, dtype=np.uint64
    ) * np.uint64(PAGE)
    extra["p_paddr"] = np.uint64(0x9_0000_0000)
    extra["p_align"] = PAGE
    phnum = layout.phnum + count
    shift = count * elf.PHDR_SIZE
    table = np.concatenate([real, extra])
    table["p_offset"][: layout.phnum] += np.uint64(shift)  # everything after the headers moves
    body = bytes(base[layout.phoff + layout.phnum * elf.PHDR_SIZE :])
    # PN_XNUM: section header 0 at the end carries the count.
    head = bytearray(base[: elf.EHDR_SIZE])
    shoff = elf.align_up(len(head) + table.nbytes + len(body), 8)
    pad = shoff - (len(head) + table.nbytes + len(body))
    put(head, 40, "<Q", shoff)
    put(head, 56, "<H", elf.PN_XNUM)
    put(head, 58, "<H", elf.SHDR_SIZE)
    put(head, 60, "<H", 1)
    section0 = elf.build_shdr(sh_type=elf.SHT_NULL, sh_info=phnum)
    return bytes(head) + table.tobytes() + body + bytes(pad) + section0


# ---- amplification: counts the file claims must not drive the work ----------------------------

MILLION_PAIRS = 1_000_000


def ccdp_million_pairs() -> bytes:
    """One Ccdp entry of a million VA/PA pairs (a 20 MB crash log): check took 53 s and
    export --include crashlog 100 s and 1.8 GB when every pair was decoded and walked."""
    pairs = np.zeros(MILLION_PAIRS, dtype=[("va", "<u8"), ("pa", "<u8"), ("unknown", "<u4")])
    pairs["va"] = np.uint64(BASE_VA) + (np.arange(MILLION_PAIRS, dtype=np.uint64) % 4) * PAGE
    pairs["pa"] = np.uint64(0x8_0000_0000) + np.arange(MILLION_PAIRS, dtype=np.uint64)
    entries = [e for e in rich_crashlog_entries() if e[0] != "Ccdp"]
    log = rich_crashlog([*entries, ("Ccdp", pairs.tobytes())])
    return _write(factory.default_segments(), default_notes(log))


def ccdp_many_entries(count: int = 20_000) -> bytes:
    """Twenty thousand Ccdp entries of one pair each: past the entries a crash log is read for
    and the payload bytes it is decoded for."""
    pair = struct.pack("<QQI", BASE_VA, 0x8_0000_0000, 0)
    entries = [e for e in rich_crashlog_entries() if e[0] != "Ccdp"]
    log = rich_crashlog([*entries, *[("Ccdp", pair)] * count])
    return _write(factory.default_segments(), default_notes(log))


def crtk_huge_ptr_count() -> bytes:
    """A Crtk task whose ptr_count says 0xffffffff, then 2.5 MB of pointers."""
    task = bytearray(clhe.CrtkTask.build(
        {"id": 1, "flags": 0, "unk0": [0, 0, 0], "ptr": BASE_VA, "unk1": [0] * 4,
         "name": "rtk_ep", "ptrs": []}
    ))  # fmt: skip
    struct.pack_into("<I", task, 40, 0xFFFF_FFFF)
    payload = bytes(task) + bytes(8 * 320_000)
    entries = [e for e in rich_crashlog_entries() if e[0] != "Crtk"]
    log = rich_crashlog([*entries, ("Crtk", payload)])
    return _write(factory.default_segments(), default_notes(log))


def million_empty_notes() -> bytes:
    """The PT_NOTE moved to 12 MB of zeros: a million empty notes (info took 21 s, 390 MB)."""
    raw = bytearray(driver_base())
    note = Layout.read(bytes(raw)).note_segment
    start = len(raw)
    raw += bytes(12 * MILLION)
    put(raw, note["at"] + 8, "<Q", start)
    put(raw, note["at"] + 32, "<Q", 12 * MILLION)
    return bytes(raw)


def lpae_l1_blocks() -> bytes:
    """The smmu scenario (LPAE 4K, a 2.3 MB dump) with every entry of its L1 table turned into a
    1 GiB block: 512 blocks of 262,144 pages (vtop of one VA used 2 GB expanding them)."""
    from dumpview.npstruct import dtype_from_struct
    from dumpview.sim.scenarios import generate

    buf = io.BytesIO()
    generate(buf, scenario="smmu", entry_format="lpae-4k")
    raw = bytearray(buf.getvalue())
    layout = Layout.read(bytes(raw))
    record = layout.record(ext.KIND_TABLES)
    tables = np.frombuffer(
        bytes(raw),
        dtype=dtype_from_struct(ext.TableRecord),
        count=record["count"],
        offset=layout.ext_offset + record["offset"],
    )
    (l1,) = [t for t in tables if int(t["level"]) == 1][:1]
    attributes = 0x60_0000_0000_0E48  # nG, AF, inner shareable, UXN/PXN
    for index in range(512):
        put(raw, int(l1["file_offset"]) + 8 * index, "<Q", attributes | (index << 30) | 1)
    return bytes(raw)


# Under the model's MAX_PAGES (2**25, a whole 39-bit address space), so the dump opens and every
# command has to answer: the pages are claimed by one PT_LOAD, not held by the file.
CLAIMED_PAGES = 20_900_000
CLAIMED_VA = uat.UAT_VA_BASE_UPPER  # 0xffffff80_00000000: 20.9M pages end before the top


def load_claims_pages(pages: int = CLAIMED_PAGES) -> bytes:
    """The driver's layout with one PT_LOAD claiming ``pages`` pages without data (p_filesz 0;
    16 KB): when every claimed page was a row, check took 12 s and 2.7 GB, diff 6.4 s and
    3.5 GB, export 71 s and 2.8 GB (for 8 GB of output)."""
    rows = [factory.segment(CLAIMED_VA, 0x8_0000_0000, pages, "FW_PRIV_RW", data=False)]
    return _write(rows, default_notes())


EXT_CLAIMED_VA = BASE_VA + 0x1000_0000  # above the extension base's pages
MANY_REGIONS = 20_000


def ext_load_claims_pages(pages: int = CLAIMED_PAGES, extra_regions: int = 0) -> bytes:
    """The extension base (tables, memory map, hole records) plus one PT_LOAD claiming
    ``pages`` pages without data and without entries in the tables, whose PAs run from RAM
    through the no-map carveout and past the end of RAM (regions begin and end inside it),
    alias the base's pages with another memattr and half of whose first 2,048 pages a hole
    record covers (it begins and ends inside it too). ``extra_regions`` one-page MMIO windows
    (and reserved regions, every other one) follow RAM, a page apart, over its PAs."""
    rows, contents, infos, space = ext_parts()
    past_ram = EXT_REGIONS[0].base + EXT_REGIONS[0].size_bytes
    extra = [
        RegionInfo(
            ext.REGION_MMIO if i % 2 else ext.REGION_RESERVED,
            f"w{i}",
            past_ram + 2 * i * PAGE,
            PAGE,
            0 if i % 2 else ext.REGION_NO_MAP,
        )
        for i in range(extra_regions)
    ]
    huge = factory.segment(EXT_CLAIMED_VA, 0x8_0000_8000, pages, "FW_PRIV_RW", data=False)
    hole = HoleInfo(
        EXT_CLAIMED_VA + 1024 * PAGE, 1024 * PAGE, ext.REASON_BORROW_REFUSED, ext.DETAIL_NO_MAP, 1
    )
    from dumpview.sim.writer import Extension

    extension = Extension(
        entry_format=ext.ENTRY_FORMAT_UAT,
        geometry=uat.uat_geometry(),
        spaces=[space],
        tables=infos,
        regions=[*EXT_REGIONS, *extra],
        holes=[*EXT_HOLES, hole],
        scenario_name="hostile",
        seed=7,
        knobs={"pages": len(EXT_PAGES) + pages},
    )
    return _write([*rows, huge], default_notes(), extension, contents.__getitem__)


# The commands each amplification case made expensive, and what one run may cost at most (wall
# seconds, peak RSS in MiB), measured in a subprocess by ``tests/test_hostile.py`` (the case's
# description says what it cost before). ``OTHER`` is a second dump, ``AMPLIFICATION_OTHER``'s.
AMPLIFICATION_BOUNDS: dict[str, list[tuple[tuple[str, ...], float, int]]] = {
    "ccdp-million-pairs": [
        (("check", "DUMP"), 10.0, 300),
        (("export", "DUMP", "--include", "crashlog", "-o", "OUT"), 10.0, 400),
    ],
    "ccdp-many-entries": [(("export", "DUMP", "-o", "OUT"), 10.0, 300)],
    "crtk-huge-ptr-count": [(("check", "DUMP"), 10.0, 300)],
    "notes-million-empty": [(("info", "DUMP"), 10.0, 300)],
    "lpae-l1-blocks-512": [(("vtop", "DUMP", "0x40001000"), 10.0, 300)],
    "load-claims-20m-pages": [
        (("check", "DUMP"), 10.0, 300),
        (("diff", "DUMP", "DUMP"), 10.0, 300),
        (("diff", "DUMP", "OTHER"), 10.0, 300),
        (("diff", "OTHER", "DUMP"), 10.0, 300),
        (("export", "DUMP", "--include", "info,ranges,anomalies", "-o", "OUT"), 10.0, 300),
        (("ranges", "DUMP"), 10.0, 300),
    ],
    "ext-load-claims-many-regions": [(("check", "DUMP"), 10.0, 300)],
    "ext-load-claims-20m-pages": [
        (("check", "DUMP"), 10.0, 300),
        (("diff", "DUMP", "OTHER"), 10.0, 300),
        (("export", "DUMP", "--include", "info,ranges,anomalies", "-o", "OUT"), 10.0, 300),
    ],
}
AMPLIFICATION_OTHER: dict[str, Callable[[], bytes]] = {
    "load-claims-20m-pages": driver_base,
    "ext-load-claims-20m-pages": ext_base,
}


def amplification_cases() -> list[Case]:
    return [
        Case(
            "ccdp-million-pairs",
            "one Ccdp entry with a million pairs, 20 MB (was: check 53 s, export 100 s, 1.8 GB)",
            ccdp_million_pairs,
            frozenset({WARNING}),
            warns="kept raw",
        ),
        Case(
            "ccdp-many-entries",
            "twenty thousand one-pair Ccdp entries",
            ccdp_many_entries,
            frozenset({WARNING}),
            warns="crash log",
        ),
        Case(
            "crtk-huge-ptr-count",
            "a Crtk task claiming 0xffffffff pointers, 2.5 MB of them",
            crtk_huge_ptr_count,
            frozenset({WARNING}),
            warns="crash log",
        ),
        Case(
            "notes-million-empty",
            "a PT_NOTE of a million empty notes, 12 MB (was: info 21 s, 390 MB)",
            million_empty_notes,
            frozenset({WARNING}),
            warns="notes",
        ),
        Case(
            "lpae-l1-blocks-512",
            "512 LPAE L1 entries mapping 1 GiB blocks, 2.3 MB (was: vtop of one VA 2 GB)",
            lpae_l1_blocks,
            ANY_CLEAN,
        ),
        Case(
            "load-claims-20m-pages",
            "one PT_LOAD claiming 20.9M pages without data, 16 KB (was: check 12 s, 2.7 GB; "
            "diff 6.4 s, 3.5 GB)",
            load_claims_pages,
            ANY_CLEAN,
            entries=NOT_EXPORT,
        ),
        Case(
            "ext-load-claims-20m-pages",
            "the extension base plus a PT_LOAD claiming 20.9M pages without data across "
            "regions, aliases and a hole record",
            ext_load_claims_pages,
            ANY_CLEAN,
            entries=NOT_EXPORT,
        ),
        Case(
            "ext-load-claims-many-regions",
            "the same with 20,000 one-page regions over the PT_LOAD's PAs, 0.7 MB (was: check "
            "over 5 min, a pass over every row per region)",
            lambda: ext_load_claims_pages(extra_regions=MANY_REGIONS),
            ANY_CLEAN,
            entries=NOT_EXPORT,
        ),
    ]


# ---- everything --------------------------------------------------------------------------------


def corpus(*, include_slow: bool = True) -> list[Case]:
    """Every hostile case (``include_slow=False`` leaves out the ~56 MB million-segment file and
    other cases marked slow)."""
    cases = [
        *truncation_cases("driver", driver_base),
        *truncation_cases("ext", ext_base),
        *truncation_cases("sample-driver", lambda: sample("minimal-driver.dump")),
        *truncation_cases("sample-minimal", lambda: sample("minimal.dump")),
        *section_truncation_cases(),
        *header_cases(),
        *crashlog_cases(),
        *extension_cases(),
        *amplification_cases(),
        Case(
            "million-empty-loads",
            "a million PT_LOADs of p_memsz 0 (PN_XNUM, ~56 MB)",
            million_empty_loads,
            EITHER,
            warns="p_memsz 0",
            slow=True,
        ),
    ]
    if not include_slow:
        cases = [c for c in cases if not c.slow]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def judge(case: Case, outcome: Outcome) -> list[str]:
    """What is wrong with ``outcome`` for ``case`` (empty: nothing), one line each; known bugs
    are left out (``known_bugs`` lists them)."""
    problems = []
    if outcome.changed:
        problems.append(f"{case.name}: the file changed")
    for r in outcome.results.values():
        if r.entry in case.known_bug:
            continue
        if r.outcome not in case.allowed:
            problems.append(
                f"{case.name}: {r.entry} {r.outcome} ({r.detail}); allowed {sorted(case.allowed)}"
            )
            continue
        if r.outcome == ERROR:
            for name in case.names:
                if name not in r.detail:
                    problems.append(
                        f"{case.name}: {r.entry} error does not name {name}: {r.detail}"
                    )
        if (
            r.outcome == WARNING
            and case.warns
            and case.warns not in r.detail
            and case.warns not in r.stderr
        ):
            problems.append(
                f"{case.name}: {r.entry} warning does not say {case.warns!r}: {r.detail}"
            )
    return problems


def write_corpus(outdir: str | os.PathLike[str], *, include_slow: bool = True) -> list[Path]:
    """Write every case to ``outdir`` as NAME.dump, with an index (NAME: description)."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    index = []
    for case in corpus(include_slow=include_slow):
        path = out / f"{case.name}.dump"
        path.write_bytes(case.build())
        paths.append(path)
        index.append(f"{case.name}.dump: {case.description}")
    (out / "INDEX.txt").write_text("\n".join(index) + "\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python tests/hostile.py OUTDIR [--run]``: write the corpus; ``--run`` also exercises
    every file and prints one line per file (exit 1 if any is UNHANDLED/HANG or changed)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0].startswith("-"):
        print(main.__doc__, file=sys.stderr)
        return 2
    paths = write_corpus(args[0])
    print(f"{len(paths)} files in {args[0]}")
    if "--run" not in args:
        return 0
    failed = 0
    for case, path in zip(corpus(), paths, strict=True):
        outcome = exercise(path, timeouts=case.timeouts, entries=case.entries)
        problems = judge(case, outcome)
        failed += bool(problems or outcome.bad)
        print(outcome.describe() if (problems or outcome.bad) else f"{path}: {outcome.counts()}")
        for problem in problems:
            print(f"  {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
