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

Workers never outlive the call: each asks the kernel to kill it when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and whatever ends the call (an error, a signal turned
into an exception, the dump changing under us) kills and reaps every worker still running on
the way out. The stop signals (SIGINT, SIGTERM, SIGHUP) are blocked while a worker is forked
(so none reaches the child before it has dropped the parent's handlers: a forked copy of the
parent must never run the parent's clean-up) and while workers are reaped (so a second signal
cannot cut the reaping short). ``die_with_parent`` and ``stop_signals_blocked`` are the
helpers every forking command uses (``triage_batch`` too). Scratch files are anonymous
(``dumpview.output.scratch_file``): nothing is left to remove. With a ``guard`` (the dump's
``FileGuard``), the parent stops the workers as soon as the dump is being changed by another
process, before that change may go ahead, and raises the guard's one-line error.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import faulthandler
import itertools
import mmap
import os
import select
import signal
import struct
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from dumpview.model.errors import DumpError
from dumpview.output import STOP_SIGNALS, scratch_file

if TYPE_CHECKING:
    from dumpview.model.guard import FileGuard

JOBS_ENV = "DUMPVIEW_JOBS"  # "1" turns parallel formatting off; "N" caps the workers
MAX_JOBS = 4
_SLOT = struct.Struct("<q")
_COPY_BLOCK_BYTES = 1 << 22
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parallel_jobs(items: int, min_items: int) -> int:
    """How many workers to use for ``items`` (1: do it in this process).

    Parallel only with fork, with no other thread running (forking a threaded process can
    deadlock the child), with more than one usable core and at least ``min_items`` items.
    """
    if items < min_items or not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    return usable_jobs(MAX_JOBS)


def usable_jobs(cap: int) -> int:
    """The cores this process may run on, at most ``cap`` and at most ``DUMPVIEW_JOBS`` when
    that is set to a positive number; at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jobs = min(cores or 1, cap)
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
    guard: FileGuard | None = None,
) -> tuple[int, int]:
    """Write ``produce``'s text for items [0, total) to ``out``, ``jobs`` slices at once.

    ``produce(worker, start, stop)`` yields ``(text, items_done)`` pieces for its slice;
    ``worker`` is the slice's position (0 first), so it can shape separators. ``progress`` gets
    the number of items done so far. Text is encoded as ``out`` encodes (its ``encoding`` and
    ``errors``, UTF-8 when it has none). ``tmp_dir``: where the anonymous scratch files live.
    Returns (records written, characters of text).
    """
    parts = slices(total, jobs)
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(scratch_file(tmp_dir)) for _ in parts]
        shared = stack.enter_context(mmap.mmap(-1, _SLOT.size * len(parts)))
        return _run(out, parts, produce, progress, files, shared, guard)


def _codec(out: TextIO) -> tuple[str, str]:
    return getattr(out, "encoding", None) or "utf-8", getattr(out, "errors", None) or "strict"


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back (they stay pending) for the block: wrap every fork
    (the child drops the parent's handlers in ``die_with_parent`` before it takes them) and the
    reaping of workers. The signals arrive when the block ends. Only the calling thread."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child
    """First thing in a forked worker: ask the kernel to SIGKILL this process when its parent
    dies (Linux), leave now if the parent (pid ``parent``) is already gone, give the stop
    signals their default actions (a worker has nothing to clean up: its files are anonymous;
    and it must not run the parent's handlers, which raise into the parent's clean-up) and
    only then take them (``stop_signals_blocked`` held them back across the fork)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    faulthandler.disable()  # a worker's death is the parent's one line, not a traceback
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _run(out, parts, produce, progress, files, shared, guard) -> tuple[int, int]:
    """``write_in_parallel`` with its temporary files and shared map open."""
    children: dict[int, int] = {}  # pid -> worker
    pipes: dict[int, int] = {}  # read fd -> worker
    results: dict[int, bytes] = {}
    statuses: dict[int, int] = {}  # worker -> wait status
    parent = os.getpid()
    try:
        for worker, (start, stop) in enumerate(parts):
            read_fd, write_fd = os.pipe()
            pipes[read_fd] = worker
            try:
                with stop_signals_blocked():
                    pid = os.fork()
                    if pid == 0:  # pragma: no cover - the child (measured through the parent)
                        die_with_parent(parent)
                        os.close(read_fd)
                        codec = _codec(out)
                        fd = files[worker].fileno()
                        _child(worker, (start, stop), produce, fd, shared, write_fd, codec)
                    children[pid] = worker
            finally:
                os.close(write_fd)  # the parent's copy (the child never returns here)
        buffers = {fd: b"" for fd in pipes}
        while pipes:
            if guard is not None and guard.changing:
                _stop(children)  # before the change may go ahead: no worker reads a cut file
                guard.check()
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
            _, status = os.waitpid(pid, 0)
            statuses[children.pop(pid)] = status
        if guard is not None:
            guard.check()  # a worker killed by SIGBUS: the dump shrank under it
        for worker in range(len(parts)):
            message = results.get(worker, b"")
            if not message.startswith(b"ok "):
                text = message.decode("utf-8", "replace").strip() or _ended(statuses.get(worker))
                raise DumpError(f"export worker {worker}: {text}")
        records = sum(int(results[w].split()[1]) for w in range(len(parts)))
        chars = sum(int(results[w].split()[2]) for w in range(len(parts)))
        for handle in files:
            _copy(handle, out)
        return records, chars
    finally:
        with stop_signals_blocked():
            _stop(children)
            for fd in pipes:
                os.close(fd)


def _stop(children: dict[int, int]) -> None:
    """Kill and reap every worker still running (SIGKILL: they hold nothing to clean up)."""
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # an interrupted wait is retried by Python (PEP 475)
        del children[pid]


def _ended(status: int | None) -> str:
    """How a worker that sent no result ended, in words."""
    if status is not None and os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return f"killed by {signal.Signals(signum).name}"
    if status is not None and os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)} without a result"
    return "exited without a result"


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
