"""What an input is, and turning any input into one open, mappable file.

Owns deciding what the user named, by what it is and what its first bytes are, never by its
name:

- a regular file that is not compressed is mapped in place (``kind`` "file"), as always;
- a file or stream compressed with zstd, xz, gzip or bzip2 (magic bytes) is decompressed;
- standard input (``-``), a FIFO, a pipe, a character or block device, a socket, or a regular
  file whose size reads as 0 but which has content (a sysfs devcoredump ``data``) is read as a
  stream (``kind`` "stream"), decompressed if its first bytes say so.

Everything that is not mapped in place is written once, in chunks (memory stays flat), into an
anonymous temporary file (``O_TMPFILE``: it never has a name, so nothing is left behind whatever
ends the program, SIGKILL included) in ``$TMPDIR``, else /var/tmp (meant for large temporary
files, often on disk where /tmp is RAM), else /tmp. Runs of zero bytes are not written: the
spool is sparse, as ``zstd -d`` writes files. The dump is then mapped from it like any file.
The compressions themselves (magic bytes, the decompression loop) are ``model.decompress``.

Waiting never blocks for long: FIFOs and devices are opened with ``O_NONBLOCK`` and read after
``poll`` in short slices, so a FIFO without a writer waits (reporting that it waits)
until the caller's ``cancel()`` says stop, or a signal's handler raises (SIGINT's does).

The size of a stream is not bounded: it is the user's own input. The spool stops with one line
when its file system is full (naming the directory and how much was written).

Failure modes: ``DumpFormatError`` with the compressed offset reached for a truncated or corrupt
compressed stream, and at offset 0 for a stream whose first bytes are no ELF header (found at
once, before anything is spooled); ``InputError`` for an input that cannot be read as a dump
(standard input is a terminal, the spool's file system is full); ``OpenCancelled`` when
``cancel()`` returned true; ``OSError`` from opening or reading the input.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from dumpview.model.decompress import (
    COMPRESSIONS,
    ELF_MAGIC,
    MAGIC_BYTES,
    Compression,
    check_elf,
    compression_of,
    decompressed,
    refuse_unsupported,
)
from dumpview.model.errors import DumpError, DumpFormatError
from dumpview.model.numbers import rounded_size
from dumpview.tempfiles import anonymous_file
from formats import elf

STDIN = "-"
STAGE_SIZE = 4 << 20  # uncompressed stream bytes gathered before writing
SPARSE_BLOCK = 16 << 10  # all-zero blocks of this size are skipped (the spool is sparse)
POLL_SLICE_MS = 100  # the longest a wait blocks before cancel() is asked again
PROGRESS_INTERVAL_S = 0.1  # progress() at most this often
SPOOL_DIRS = ("/var/tmp", "/tmp")  # after $TMPDIR

KIND_FILE = "file"
KIND_STREAM = "stream"

# What the input was, as ``Source.input`` names it.
INPUT_FILE = "file"
INPUT_STDIN = "stdin"
INPUT_FIFO = "fifo"
INPUT_CHAR_DEVICE = "character-device"
INPUT_BLOCK_DEVICE = "block-device"
INPUT_SOCKET = "socket"
INPUT_UNSIZED_FILE = "unsized-file"  # a regular file whose size reads as 0 (sysfs)


class InputError(DumpError):
    """The input cannot be read as a dump for a reason outside its bytes (one line)."""


class OpenCancelled(DumpError):
    """``cancel()`` asked to stop while the input was being read."""

    def __init__(self, name: str) -> None:
        super().__init__(f"cancelled while reading {display_name(name)}")


@dataclass(frozen=True)
class Source:
    """What a dump was opened from. ``size_bytes`` is the dump's own (decompressed) size;
    ``compressed_size_bytes`` the compressed input's (None when not compressed)."""

    name: str  # as the user gave it; "-" for standard input
    kind: str  # "file", "stream", or the compression: "zstd", "xz", "gzip", "bzip2"
    input: str  # INPUT_*: what was opened
    size_bytes: int
    compressed_size_bytes: int | None = None
    spooled: bool = False  # copied into an anonymous temporary file

    @property
    def compressed(self) -> bool:
        return self.kind in COMPRESSIONS

    def describe(self) -> str:
        """One phrase: "zstd, 1.0 GiB decompressed from 113 KiB", "stream from standard
        input, 12 MiB", "file, 1.0 GiB"."""
        where = "" if self.input == INPUT_FILE else f" from {INPUT_PHRASES[self.input]}"
        if self.compressed:
            packed = self.compressed_size_bytes
            of = "" if packed is None else f" from {_size(packed)}"
            return f"{self.kind}{where}, {_size(self.size_bytes)} decompressed{of}"
        return f"{self.kind}{where}, {_size(self.size_bytes)}"

    def as_dict(self) -> dict[str, Any]:
        """For ``info --json``: kind, input, sizes, spooled."""
        return {
            "kind": self.kind,
            "input": self.input,
            "size_bytes": self.size_bytes,
            "compressed_size_bytes": self.compressed_size_bytes,
            "spooled": self.spooled,
        }


INPUT_PHRASES = {
    INPUT_FILE: "a file",
    INPUT_STDIN: "standard input",
    INPUT_FIFO: "a FIFO",
    INPUT_CHAR_DEVICE: "a character device",
    INPUT_BLOCK_DEVICE: "a block device",
    INPUT_SOCKET: "a socket",
    INPUT_UNSIZED_FILE: "a file of unknown size",
}


class Progress(NamedTuple):
    """How far reading an input has come (passed to ``progress``)."""

    name: str
    kind: str  # "stream" or a compression
    waiting: bool  # the last wait for data timed out (a FIFO without a writer, a slow pipe)
    read_bytes: int  # input bytes consumed (compressed bytes when compressed)
    total_bytes: int | None  # of the input, when known (a regular compressed file)
    written_bytes: int  # dump bytes spooled so far

    @property
    def fraction(self) -> float | None:
        if not self.total_bytes:
            return None
        return min(1.0, self.read_bytes / self.total_bytes)

    def text(self) -> str:
        """One line for a progress display."""
        who = display_name(self.name)
        if self.waiting and not self.read_bytes:
            return f"waiting for data on {who}"
        if self.kind == KIND_STREAM:
            doing = f"reading {who}: {_size(self.written_bytes)}"
        else:
            of = f" of {_size(self.total_bytes)}" if self.total_bytes else ""
            doing = (
                f"decompressing {who} ({self.kind}): {_size(self.read_bytes)}{of} read, "
                f"{_size(self.written_bytes)} out"
            )
        return doing + (" (waiting for more)" if self.waiting else "")


ProgressCallback = Callable[[Progress], None]
CancelCallback = Callable[[], bool]


def display_name(name: str) -> str:
    """How messages name an input: "standard input" for ``-``, else the path."""
    return "standard input" if name == STDIN else name


def _size(size_bytes: int) -> str:
    return rounded_size(size_bytes, iec=True)


# ---- opening ------------------------------------------------------------------------------------


def open_input(
    name: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> tuple[int, Source]:
    """Open ``name`` (a path, or ``-`` for standard input) as a file descriptor holding the
    dump's bytes from offset 0 (mappable), and say what it was. The caller owns the
    descriptor. Raises as the module says; nothing is left open or on disk when it raises."""
    name = os.fspath(name)
    if name == STDIN:
        if os.isatty(0):
            raise InputError("standard input is a terminal: pipe a dump into it or name a file")
        fd = os.dup(0)
        input_kind = INPUT_STDIN
    else:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        input_kind = INPUT_FILE
    keep = False  # the input itself is returned (mapped in place): do not close it
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            head = os.pread(fd, MAGIC_BYTES, 0)
            compression = compression_of(head)
            if compression is None:
                refuse_unsupported(head)
                _blocking(fd)
                keep = True
                return fd, Source(name, KIND_FILE, input_kind, st.st_size)
            reader = _Reader(fd, name, pollable=False, cancel=cancel, positioned=True)
            return _spool(reader, name, compression, input_kind, st.st_size, progress)
        if input_kind == INPUT_FILE:
            input_kind = _input_kind(st.st_mode)
        pollable = not stat.S_ISREG(st.st_mode) and not stat.S_ISBLK(st.st_mode)
        reader = _Reader(fd, name, pollable=pollable, cancel=cancel)
        return _spool(reader, name, None, input_kind, None, progress)
    finally:
        if not keep:
            os.close(fd)


def _input_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return INPUT_FIFO
    if stat.S_ISCHR(mode):
        return INPUT_CHAR_DEVICE
    if stat.S_ISBLK(mode):
        return INPUT_BLOCK_DEVICE
    if stat.S_ISSOCK(mode):
        return INPUT_SOCKET
    return INPUT_UNSIZED_FILE


def _blocking(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.set_blocking(fd, True)


class _Reader:
    """Reads the input: ``pread`` from a position for regular files, else ``read`` after
    ``poll`` in short slices (asking ``cancel()`` between slices) for streams."""

    def __init__(
        self,
        fd: int,
        name: str,
        pollable: bool,
        cancel: CancelCallback | None,
        positioned: bool = False,
    ) -> None:
        self.fd = fd
        self.name = name
        self.cancel = cancel
        self.positioned = positioned
        self.poller: select.poll | None = None
        if pollable:
            self.poller = select.poll()
            self.poller.register(fd, select.POLLIN | select.POLLPRI)
        self.read_bytes = 0
        self.waiting = False
        self.on_wait: Callable[[], None] = lambda: None

    def _ready(self) -> bool:
        """Ask ``cancel()`` (``OpenCancelled``), then wait at most a poll slice for a stream to
        have bytes; False when it had none yet (the caller asks again)."""
        if self.cancel is not None and self.cancel():
            raise OpenCancelled(self.name)
        if self.positioned or self.poller is None or self.poller.poll(POLL_SLICE_MS):
            return True
        self.waiting = True
        self.on_wait()
        return False

    def _got(self, count: int) -> int:
        self.waiting = False
        self.read_bytes += count
        return count

    def readinto(self, out: memoryview) -> int:
        """Read at least one byte into ``out`` (0 at the end of the input)."""
        while True:
            if not self._ready():
                continue
            try:
                if self.positioned:
                    return self._got(os.preadv(self.fd, [out], self.read_bytes))
                return self._got(os.readv(self.fd, [out]))
            except BlockingIOError:  # woken for nothing: wait again
                continue

    def read(self, size: int) -> bytes:
        """At least one byte, at most ``size`` (b"" at the end of the input)."""
        while True:
            if not self._ready():
                continue
            try:
                if self.positioned:
                    data = os.pread(self.fd, size, self.read_bytes)
                else:
                    data = os.read(self.fd, size)
            except BlockingIOError:  # woken for nothing: wait again
                continue
            self._got(len(data))
            return data


class _Spool:
    """The anonymous temporary file the stream goes into, written sparsely in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.directory, self.fd = _anonymous_file()
        self.size_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``, skipping ``SPARSE_BLOCK``-aligned runs of zeros."""
        view = memoryview(data).cast("B")
        pos = self.size_bytes
        try:
            head = min(len(view), -pos % SPARSE_BLOCK)
            self._write_unless_zero(view[:head], pos)
            whole = (len(view) - head) // SPARSE_BLOCK
            if whole:
                body = view[head : head + whole * SPARSE_BLOCK]
                blocks = np.frombuffer(body, dtype=np.uint64).reshape(whole, SPARSE_BLOCK // 8)
                nonzero = blocks.any(axis=1)
                if nonzero.all():
                    self._write_all(body, pos + head)
                elif nonzero.any():
                    edges = np.flatnonzero(np.diff(nonzero, prepend=False, append=False))
                    for start, end in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
                        piece = body[start * SPARSE_BLOCK : end * SPARSE_BLOCK]
                        self._write_all(piece, pos + head + start * SPARSE_BLOCK)
            tail_at = head + whole * SPARSE_BLOCK
            self._write_unless_zero(view[tail_at:], pos + tail_at)
        except OSError as exc:
            self._raise_full(exc)
        self.size_bytes = pos + len(view)

    def _write_unless_zero(self, view: memoryview, pos: int) -> None:
        if len(view) and view.tobytes().strip(b"\0"):
            self._write_all(view, pos)

    def _write_all(self, view: memoryview, pos: int) -> None:
        while len(view):
            done = os.pwrite(self.fd, view, pos)
            view, pos = view[done:], pos + done

    def finish(self) -> int:
        """Give the file its full length (trailing zeros are a hole); returns the fd."""
        try:
            os.ftruncate(self.fd, self.size_bytes)
        except OSError as exc:
            self._raise_full(exc)
        return self.fd

    def _raise_full(self, exc: OSError) -> None:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise InputError(
                f"no room to spool {display_name(self.name)} in {self.directory} "
                f"({exc.strerror}) after {_size(self.size_bytes)}: set TMPDIR to a "
                f"directory with more space"
            ) from None
        raise exc

    def close(self) -> None:
        os.close(self.fd)


def spool_directories() -> list[str]:
    """Where spools go, in order of preference: $TMPDIR, /var/tmp, /tmp."""
    env = os.environ.get("TMPDIR")
    return [env, *SPOOL_DIRS] if env else list(SPOOL_DIRS)


def _anonymous_file() -> tuple[str, int]:
    """(directory, fd) of a new file that has no name (``dumpview.tempfiles.anonymous_file``),
    in the first spool directory that can make one."""
    failure: OSError | None = None
    for directory in spool_directories():
        try:
            return directory, anonymous_file(directory, ".dumpview-spool-")
        except OSError as exc:
            failure = exc
    raise InputError(f"no directory to spool into ({', '.join(spool_directories())}): {failure}")


def _spool(
    reader: _Reader,
    name: str,
    compression: str | None,
    input_kind: str,
    total_bytes: int | None,
    progress: ProgressCallback | None,
) -> tuple[int, Source]:
    """Copy the reader's bytes (decompressed when ``compression``, else as found at the
    start of the stream) into a spool; (its fd, the Source)."""
    report = _Reporter(name, reader, progress, total_bytes)
    head = b""
    while len(head) < MAGIC_BYTES:  # the stream's first bytes say what it is
        piece = reader.read(MAGIC_BYTES - len(head))
        if not piece:
            break
        head += piece
    if not head:  # nothing at all: no spool needed to say so
        raise DumpFormatError(
            0, f"truncated ELF header: file is 0 bytes, expected at least {elf.EHDR_SIZE}"
        )
    if compression is None:
        compression = compression_of(head)
        if compression is None:
            refuse_unsupported(head)
            if head and not ELF_MAGIC.startswith(head[:4]):
                raise DumpFormatError(
                    0, f"not an ELF file: magic is {head[:4].hex(' ')}, expected 7f 45 4c 46"
                )
    spool = _Spool(name)
    report.spool = spool
    try:
        if compression is None:
            spool.write(head)
            _copy(reader, spool, report)
        else:
            report.kind = compression
            _decompress(reader, spool, COMPRESSIONS[compression], head, report)
        fd = spool.finish()
    except BaseException:
        spool.close()
        raise
    report.done()
    source = Source(
        name,
        compression or KIND_STREAM,
        input_kind,
        spool.size_bytes,
        reader.read_bytes if compression else None,
        spooled=True,
    )
    return fd, source


class _Reporter:
    """Calls ``progress`` at most every ``PROGRESS_INTERVAL_S`` (and at once on waiting)."""

    def __init__(
        self, name: str, reader: _Reader, progress: ProgressCallback | None, total: int | None
    ) -> None:
        self.name = name
        self.reader = reader
        self.progress = progress
        self.total = total
        self.kind = KIND_STREAM
        self.spool: _Spool | None = None
        self.last = 0.0
        self.was_waiting = False
        reader.on_wait = self.tick

    def tick(self) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        waiting = self.reader.waiting
        if now - self.last < PROGRESS_INTERVAL_S and waiting == self.was_waiting:
            return
        self.last, self.was_waiting = now, waiting
        self.progress(self._state(waiting))

    def _state(self, waiting: bool) -> Progress:
        written = self.spool.size_bytes if self.spool is not None else 0
        return Progress(self.name, self.kind, waiting, self.reader.read_bytes, self.total, written)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(self._state(False))


def _copy(reader: _Reader, spool: _Spool, report: _Reporter) -> None:
    stage = bytearray(STAGE_SIZE)
    view = memoryview(stage)
    while True:
        filled = 0
        while filled < STAGE_SIZE:
            got = reader.readinto(view[filled:])
            if not got:
                break
            filled += got
            report.tick()
        spool.write(view[:filled])
        if filled < STAGE_SIZE:
            return


def _decompress(
    reader: _Reader, spool: _Spool, compression: Compression, head: bytes, report: _Reporter
) -> None:
    """Decompress into the spool, checking that the bytes start like an ELF file. (A thread
    decompressing ahead of the writes was measured: no gain on a loaded 2-core machine.)"""
    first = b""  # the first decompressed bytes, until the ELF magic is checked
    for out in decompressed(reader, compression, head):
        if len(first) < len(ELF_MAGIC):
            first += bytes(out[: len(ELF_MAGIC) - len(first)])
            if len(first) == len(ELF_MAGIC):
                check_elf(compression.name, first)
        spool.write(out)
        report.tick()
    if len(first) < len(ELF_MAGIC):
        check_elf(compression.name, first)


def decompress_file(
    path: str | os.PathLike[str], consume: Callable[[bytes], object]
) -> tuple[str, int]:
    """Decompress the file ``path`` (zstd, xz, gzip or bzip2) piece by piece into
    ``consume``, whatever the bytes are (no spool, no ELF check): (compression, compressed
    bytes read). DumpFormatError for a file that is not compressed, or corrupt or truncated
    data (as ``open_input`` names them); OSError from reading."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        compression = compression_of(os.pread(fd, MAGIC_BYTES, 0))
        if compression is None:
            raise DumpFormatError(0, "not compressed with zstd, xz, gzip or bzip2")
        reader = _Reader(fd, name, pollable=False, cancel=None, positioned=True)
        for piece in decompressed(reader, COMPRESSIONS[compression], b""):
            consume(piece)
        return compression, reader.read_bytes
    finally:
        os.close(fd)
