"""Formatting many text records on several cores, in order, without moving text between processes.

Owns one mechanism: ``write_in_parallel`` forks ``jobs`` workers over contiguous slices of a
numbered range of items; each formats its slice and writes the text to its own unlinked
temporary file; the parent then copies the files into the output in slice order (``sendfile``
when the output is a file descriptor, a block copy otherwise), so the result is byte for byte
what one process would write. Progress is shared through an anonymous shared map.

Used only where it pays (a single-threaded process that can fork, hundreds of thousands of
items); ``parallel_jobs`` decides. A failing worker fails the whole call: the first worker's
one-line message is raised as ``DumpError``; the other workers are stopped and reaped, and the
temporary files disappear with their descriptors.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import mmap
import os
import select
import signal
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from dumpview.model.errors import DumpError

JOBS_ENV = "DUMPVIEW_JOBS"  # "1" turns parallel formatting off; "N" caps the workers
MAX_JOBS = 4
_SLOT = struct.Struct("<q")
_COPY_BLOCK_BYTES = 1 << 22


def parallel_jobs(items: int, min_items: int) -> int:
    """How many workers to use for ``items`` (1: do it in this process).

    Parallel only with fork, with no other thread running (forking a threaded process can
    deadlock the child), with more than one usable core and at least ``min_items`` items.
    """
    if items < min_items or not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jobs = min(cores or 1, MAX_JOBS)
    wanted = os.environ.get(JOBS_ENV, "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        jobs = min(jobs, int(wanted))
    return max(1, jobs)


def slices(total: int, jobs: int) -> list[tuple[int, int]]:
    """``total`` items cut into ``jobs`` contiguous, nearly equal slices (none empty)."""
    bounds = [total * k // jobs for k in range(jobs + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def write_in_parallel(
    out: TextIO,
    total: int,
    jobs: int,
    produce: Callable[[int, int, int], Iterator[tuple[str, int]]],
    progress: Callable[[int], None] | None = None,
    tmp_dir: str | None = None,
) -> tuple[int, int]:
    """Write ``produce``'s text for items [0, total) to ``out``, ``jobs`` slices at once.

    ``produce(worker, start, stop)`` yields ``(text, items_done)`` pieces for its slice;
    ``worker`` is the slice's position (0 first), so it can shape separators. ``progress`` gets
    the number of items done so far. Text is encoded as ``out`` encodes (its ``encoding`` and
    ``errors``, UTF-8 when it has none). Returns (records written, characters of text).
    """
    parts = slices(total, jobs)
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile(dir=tmp_dir)) for _ in parts]
        shared = stack.enter_context(mmap.mmap(-1, _SLOT.size * len(parts)))
        return _run(out, parts, produce, progress, files, shared)


def _codec(out: TextIO) -> tuple[str, str]:
    return getattr(out, "encoding", None) or "utf-8", getattr(out, "errors", None) or "strict"


def _run(out, parts, produce, progress, files, shared) -> tuple[int, int]:
    """``write_in_parallel`` with its temporary files and shared map open."""
    children: dict[int, int] = {}  # pid -> worker
    pipes: dict[int, int] = {}  # read fd -> worker
    results: dict[int, bytes] = {}
    try:
        for worker, (start, stop) in enumerate(parts):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child (measured through the parent)
                os.close(read_fd)
                codec = _codec(out)
                _child(
                    worker, (start, stop), produce, files[worker].fileno(), shared, write_fd, codec
                )
            os.close(write_fd)
            children[pid] = worker
            pipes[read_fd] = worker
        buffers = {fd: b"" for fd in pipes}
        while pipes:
            ready, _, _ = select.select(list(pipes), [], [], 0.1)
            for fd in ready:
                data = os.read(fd, 4096)
                if data:
                    buffers[fd] += data
                    continue
                results[pipes.pop(fd)] = buffers.pop(fd)
                os.close(fd)
            if progress is not None:
                done = sum(_SLOT.unpack_from(shared, k * _SLOT.size)[0] for k in range(len(parts)))
                progress(done)
        for pid in list(children):
            os.waitpid(pid, 0)
            del children[pid]
        for worker in range(len(parts)):
            message = results.get(worker, b"")
            if not message.startswith(b"ok "):
                text = message.decode("utf-8", "replace").strip() or "exited without a result"
                raise DumpError(f"export worker {worker}: {text}")
        records = sum(int(results[w].split()[1]) for w in range(len(parts)))
        chars = sum(int(results[w].split()[2]) for w in range(len(parts)))
        for handle in files:
            _copy(handle, out)
        return records, chars
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for fd in pipes:
            os.close(fd)


def _child(
    worker: int,
    part: tuple[int, int],
    produce: Callable[[int, int, int], Iterator[tuple[str, int]]],
    fd: int,
    shared: mmap.mmap,
    result_fd: int,
    codec: tuple[str, str],
) -> None:  # pragma: no cover - runs in the child
    """Format one slice into ``fd``; report "ok RECORDS CHARS" or a one-line error; never
    return."""
    status = 1
    try:
        records = chars = 0
        for text, done in produce(worker, *part):
            chars += len(text)
            data = text.encode(*codec)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            records = done
            _SLOT.pack_into(shared, worker * _SLOT.size, done)
        os.write(result_fd, f"ok {records} {chars}".encode())
        status = 0
    except BaseException as exc:  # the parent raises it as one line
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        with contextlib.suppress(OSError):
            os.write(result_fd, message.encode("utf-8", "replace")[:4000])
    finally:
        os._exit(status)


def _copy(handle, out: TextIO) -> None:
    """Append the whole temporary file ``handle`` (encoded as ``out`` encodes) to ``out``."""
    size = os.fstat(handle.fileno()).st_size
    if not size:
        return
    out.flush()
    try:
        out_fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        out_fd = None
    offset = 0
    if out_fd is not None:
        try:
            while offset < size:
                sent = os.sendfile(out_fd, handle.fileno(), offset, size - offset)
                if sent == 0:
                    break
                offset += sent
        except OSError as exc:
            if offset or exc.errno not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP
                raise
        if offset == size:
            if out.seekable():
                out.seek(0, os.SEEK_END)
            return
    handle.seek(offset)
    decoder = codecs.getincrementaldecoder(_codec(out)[0])(_codec(out)[1])
    while True:
        block = handle.read(_COPY_BLOCK_BYTES)
        out.write(decoder.decode(block, final=not block))
        if not block:
            break
