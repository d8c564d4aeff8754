"""Triage many dumps: which files to read, their reports in input order on several cores, and
the signatures grouped.

Owns:

- ``dump_paths(arguments)``: the files a list of arguments names. A file argument is read
  whatever it holds; a directory is walked (depth first, names sorted, symbolic links to
  directories not followed) for regular files that look like dumps (``looks_like_dump``: an
  ELF header, a compression ``model.decompress`` reads (zstd, xz, gzip, bzip2; opened as
  ``open_dump`` opens them), or lz4, whose error says to decompress it first), so the
  bookmarks, exports and notes that sit beside dumps are skipped. An argument that is missing
  or neither a regular file nor a directory (a FIFO, a device: ``dumpview triage`` reads one
  of those alone, as every command does), or a directory that cannot be listed, is an item with
  its one-line error: it is never opened.
- ``triage_many(items, jobs)``: one ``Outcome`` per item, in input order: the triage record
  (``Triage.to_dict``) or the one-line error that kept the dump from being read; the rest go
  on. With ``jobs`` > 1, forked worker processes (``multiprocessing``'s fork context: the
  parent's imports are shared) each triage one dump at a time; at most ``jobs * WINDOW_PER_JOB``
  results wait to be put in order, so memory does not grow with the number of dumps. A worker
  that dies (a signal, a crash in a native library) makes its dump an error and is replaced.
- ``SignatureGroups``: per signature, how many dumps and the first one's path (the only state
  kept across dumps), most frequent first.

Failure modes: nothing raises for a dump that cannot be read (it is an ``Outcome`` with an
error); ``KeyboardInterrupt`` stops and reaps the workers and propagates.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

LZ4_MAGIC = b"\x04\x22\x4d\x18"  # not read, but a dump: its error says to decompress it
WINDOW_PER_JOB = 8  # results that may wait to be put in order, per worker
_STOP_SECONDS = 5.0


@dataclass(frozen=True)
class Item:
    """A file to triage, or an argument that names none (``error``: the one-line reason, without
    the path)."""

    path: str
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A dump's triage record (schema ``triage``), or why it could not be read (``error``: one
    line, without the path: the record carries it)."""

    path: str
    record: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record: ``triage``, or ``triage-error`` with the one-line error."""
        if self.record is not None:
            return self.record
        return {"record": "triage-error", "path": self.path, "error": self.error}


# ---- the files --------------------------------------------------------------------------------


def looks_like_dump(path: str) -> bool:
    """Whether ``path`` (a regular file) starts like an ELF file, a compression dumpview reads,
    or lz4. ``OSError`` when it cannot be read."""
    from dumpview.model.decompress import ELF_MAGIC, MAGIC_BYTES, compression_of

    with open(path, "rb") as f:
        head = f.read(MAGIC_BYTES)
    return head.startswith((ELF_MAGIC, LZ4_MAGIC)) or compression_of(head) is not None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _walk(top: str) -> Iterator[Item]:
    """Regular files under ``top`` that look like dumps, depth first, names sorted."""
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Item(directory, _reason(exc))
            continue
        subdirectories = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.path)
                elif entry.is_file() and looks_like_dump(entry.path):
                    yield Item(entry.path)
            except OSError as exc:
                yield Item(entry.path, _reason(exc))
        stack.extend(reversed(subdirectories))


def dump_paths(arguments: Iterable[str]) -> Iterator[Item]:
    """The items ``arguments`` name (see the module docstring), lazily, in order."""
    for argument in arguments:
        try:
            mode = os.stat(argument).st_mode
        except OSError as exc:
            yield Item(argument, _reason(exc))
            continue
        if stat.S_ISDIR(mode):
            yield from _walk(argument)
        elif stat.S_ISREG(mode):
            yield Item(argument)
        else:
            yield Item(argument, "not a regular file or a directory")


# ---- one dump ---------------------------------------------------------------------------------


def triage_path(path: str) -> Outcome:
    """Open ``path``, triage it and close it; any failure is the ``Outcome``'s one-line error
    (the dump's own ``DumpError`` with its offset, the OS's reason, or an internal error)."""
    from dumpview.model import DumpError, open_dump

    try:
        with open_dump(path) as dump:
            return Outcome(path, dump.triage().to_dict())
    except DumpError as exc:
        return Outcome(path, None, str(exc))
    except OSError as exc:
        return Outcome(path, None, _reason(exc))
    except MemoryError:
        return Outcome(path, None, "out of memory")
    except Exception as exc:  # one bad dump must not end the batch
        return Outcome(path, None, f"internal error: {type(exc).__name__}: {exc}")


def _outcome(item: Item) -> Outcome:
    return Outcome(item.path, None, item.error) if item.error else triage_path(item.path)


# ---- many, in parallel ------------------------------------------------------------------------


def _serve(conn: Any) -> None:  # pragma: no cover - runs in the worker (measured through it)
    """A worker: triage each (sequence, path) received, send back (sequence, Outcome)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        sequence, path = task
        conn.send((sequence, triage_path(path)))


class _Worker:
    def __init__(self, context: Any) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[int, str] | None = None

    def died(self) -> str:
        """Why the process ended (after its pipe closed)."""
        self.process.join(_STOP_SECONDS)
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with status {code}"

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(_STOP_SECONDS)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(_STOP_SECONDS)
        self.conn.close()


def triage_many(items: Iterable[Item], jobs: int = 1) -> Iterator[Outcome]:
    """An ``Outcome`` per item, in input order (see the module docstring). ``jobs`` 1 (or a
    platform without fork) triages in this process."""
    import multiprocessing

    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for item in items:
            yield _outcome(item)
        return
    context = multiprocessing.get_context("fork")
    from multiprocessing.connection import wait

    source = enumerate(items)
    window = jobs * WINDOW_PER_JOB
    done: dict[int, Outcome] = {}
    following = 0  # the next sequence number to hand out
    exhausted = False
    workers = [_Worker(context) for _ in range(jobs)]
    try:
        while True:
            for worker in workers:  # hand out work while the reorder window allows
                while worker.task is None and not exhausted and len(done) < window:
                    step = next(source, None)
                    if step is None:
                        exhausted = True
                        break
                    sequence, item = step
                    if item.error:
                        done[sequence] = Outcome(item.path, None, item.error)
                        continue
                    worker.task = (sequence, item.path)
                    worker.conn.send(worker.task)
            while following in done:
                yield done.pop(following)
                following += 1
            busy = {w.conn: w for w in workers if w.task is not None}
            if not busy:
                if exhausted:
                    return
                continue
            for conn in wait(list(busy)):
                worker = busy[conn]
                sequence, path = worker.task
                try:
                    got, outcome = conn.recv()
                except (EOFError, OSError):
                    why = worker.died()
                    outcome = Outcome(path, None, f"the process triaging it {why}")
                    got = sequence
                    workers[workers.index(worker)] = _Worker(context)
                    worker.conn.close()
                done[got] = outcome
                worker.task = None
    finally:
        for worker in workers:
            worker.stop()


# ---- the signatures ---------------------------------------------------------------------------


class SignatureGroups:
    """Dumps per signature, with the first dump's path as the example; unreadable dumps are
    counted, not grouped."""

    def __init__(self) -> None:
        self._groups: dict[str, list] = {}  # signature -> [count, example]
        self.dumps = 0
        self.unreadable = 0

    def add(self, outcome: Outcome) -> None:
        self.dumps += 1
        if outcome.record is None:
            self.unreadable += 1
            return
        group = self._groups.setdefault(outcome.record["signature"], [0, outcome.path])
        group[0] += 1

    def groups(self) -> list[tuple[str, int, str]]:
        """(signature, count, example path), most frequent first, ties in the order first seen."""
        ordered = sorted(enumerate(self._groups.items()), key=lambda e: (-e[1][1][0], e[0]))
        return [(sig, count, example) for _i, (sig, (count, example)) in ordered]

    def to_dict(self) -> dict[str, Any]:
        """The JSONL ``triage-groups`` record."""
        return {
            "record": "triage-groups",
            "dumps": self.dumps,
            "unreadable": self.unreadable,
            "groups": [
                {"signature": sig, "count": count, "example": example}
                for sig, count, example in self.groups()
            ],
        }
