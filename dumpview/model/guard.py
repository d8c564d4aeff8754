"""Reading a mapped file that may change under us: one-line errors instead of SIGBUS.

A dump is read through a read-only ``mmap``. When the file shrinks while it is mapped (a
devcoredump replaced by a newer one, a copy still in progress, a ``truncate``), touching a page
past the new end raises SIGBUS, which kills a Python process: nothing can catch it. This module
owns preventing that, for one open file (``FileGuard``):

- **Checks.** Every map access of the model sits inside ``FileGuard.reading()`` (an operation:
  the public queries, each lazily computed index, each chunk of a long loop), which first calls
  ``check()``. Without a lease, ``check()`` compares the size ``fstat`` gives (about 0.5 µs)
  with the size at open: a file that shrank between two operations, or between two chunks of
  one, is a ``DumpChangedError`` naming the file and the offset about to be read,
  deterministically. With a lease it only looks at a flag.
- **A read lease** (``fcntl(F_SETLEASE, F_RDLCK)``, taken at open when possible: the file is a
  local regular file we own or we run as root, no other process has it open for writing, and
  the signal handler can be installed). Another process that opens the file for writing or
  truncates it is then held back by the kernel (up to ``/proc/sys/fs/lease-break-time``, 45 s
  by default; a non-blocking open fails with EAGAIN) and we get SIGIO. The handler marks the
  file changed; it gives the lease up at once when no operation is reading the map, else when
  the last one ends, which happens at its next ``check()`` (a chunk boundary) with the one-line
  error. So a truncation while an export, check, search or diff runs stops it cleanly.
  Concurrent truncation is only guarded like this: without a lease (another owner and not
  root, a network file system, the file already open for writing elsewhere) a truncation in the
  middle of a chunk can still kill the process with SIGBUS.

Once a file changed, every later operation on it fails with the same error: reopen it.
Memoryviews the model returns (``Dump.read_va``) are slices of the map: a caller that keeps
one past the operation touches it unguarded (copy it with ``bytes(view)`` to keep it).

Only Linux has leases; elsewhere the checks alone apply. The SIGIO handler is installed by
``install_signal_handler`` (the CLI and the inspector call it on their main thread; a dump
opened on the main thread installs it itself); it chains to a handler that was there before.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import os
import signal
import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from dumpview.model.errors import DumpError

F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
F_GETLEASE = getattr(fcntl, "F_GETLEASE", 1025)
F_SETOWN_EX = getattr(fcntl, "F_SETOWN_EX", 15)
F_OWNER_TID = 0  # struct f_owner_ex.type: one thread
LEASE_SIGNAL = getattr(signal, "SIGIO", None)
LEASES_ENV = "DUMPVIEW_LEASES"  # "0" turns leases off (tests of the fstat-only path)

T = TypeVar("T")

_leased: weakref.WeakSet[FileGuard] = weakref.WeakSet()
_handler_lock = threading.Lock()
_handler_installed = False
_previous_handler: object = None


class DumpChangedError(DumpError):
    """The file changed (shrank, or another process opened it for writing) while it was open.
    One line: the file, what happened, and the offset that was about to be read."""

    def __init__(self, path: str, offset: int | None, what: str) -> None:
        self.path = path
        self.offset = offset
        self.what = what
        where = f"; stopped before reading offset {offset:#x}" if offset is not None else ""
        super().__init__(f"{path}: {what}{where}")


def install_signal_handler() -> bool:
    """Install the lease-break handler (SIGIO) if it is not yet; only the main thread can.
    Returns whether it is installed."""
    global _handler_installed, _previous_handler
    if _handler_installed:
        return True
    if LEASE_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        return False
    with _handler_lock:
        if not _handler_installed:
            _previous_handler = signal.signal(LEASE_SIGNAL, _on_lease_signal)
            _handler_installed = True
    return True


def _on_lease_signal(signum: int, frame: object) -> None:
    for guard in list(_leased):
        guard._lease_signalled()
    if callable(_previous_handler):
        _previous_handler(signum, frame)


def _leases_wanted() -> bool:
    return os.environ.get(LEASES_ENV, "1").strip() != "0"


class FileGuard:
    """The size and the lease of one open file, and the operations reading its map."""

    def __init__(self, path: str, fd: int, size_bytes: int) -> None:
        self.path = path
        self.fd = fd
        self.size_bytes = size_bytes
        self.changed: str | None = None  # what happened, once something did
        self.leased = False
        # One item per operation in progress, in any thread: deque append/pop are atomic, so
        # entering and leaving cost no lock (a translation is ~3 µs: this is ~0.1 µs of it).
        # ``enter``/``leave`` use it; a hot path may inline them (``Translator.va_to_pa``).
        self.operations: collections.deque[None] = collections.deque()
        self._lock = threading.RLock()
        if _leases_wanted() and install_signal_handler():
            self._take_lease()

    # ---- the lease ---------------------------------------------------------------------------

    def _take_lease(self) -> None:
        try:
            fcntl.fcntl(self.fd, F_SETLEASE, fcntl.F_RDLCK)
        except OSError:  # not ours, not local, already open for writing: checks only
            return
        self.leased = True
        _leased.add(self)
        # The break signal to the main thread itself (where Python runs handlers): delivered to
        # another thread it would wait until the main thread's blocking call returns.
        with contextlib.suppress(OSError):
            owner = struct.pack("ii", F_OWNER_TID, threading.main_thread().native_id)
            fcntl.fcntl(self.fd, F_SETOWN_EX, owner)

    def _release(self) -> None:
        with self._lock:
            if not self.leased:
                return
            self.leased = False
            _leased.discard(self)
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, F_SETLEASE, fcntl.F_UNLCK)

    def _lease_signalled(self) -> None:
        """SIGIO arrived (main thread): is our lease being broken? Then the file is about to
        change; let the change go ahead once nothing reads the map."""
        if not self.leased:
            return
        try:
            state = fcntl.fcntl(self.fd, F_GETLEASE)
        except OSError:
            state = fcntl.F_UNLCK
        if state == fcntl.F_RDLCK:
            return  # someone else's lease
        if self.changed is None:
            self.changed = (
                "another process opened the file for writing or truncated it while it was open"
            )
        # The flag first, then the count: an operation entering after this sees the flag.
        if not self.operations:
            self._release()

    @property
    def active(self) -> bool:
        """Whether some operation is reading the map now (views may be handed out)."""
        return bool(self.operations)

    @property
    def changing(self) -> bool:
        """Whether a change was seen (a broken lease or a smaller size); cheap, no syscall."""
        return self.changed is not None

    # ---- checks and operations ---------------------------------------------------------------

    def check(self, offset: int | None = None) -> None:
        """Raise ``DumpChangedError`` if the file changed since it was opened (``offset``: what
        was about to be read, for the message)."""
        if self.changed is None and self.leased:
            return  # the lease would have told us
        try:
            size = os.fstat(self.fd).st_size
        except (OSError, ValueError):
            size = None
        if self.changed is None and size is not None and size >= self.size_bytes:
            return
        if size is None:
            what = "the file can no longer be examined"
        elif size < self.size_bytes:
            what = (
                f"the file shrank from {self.size_bytes:,} to {size:,} bytes while it was open: "
                f"its data from offset {size:#x} on is gone"
            )
        else:
            what = self.changed or ""
        self.changed = self.changed or what
        if not self.operations:
            self._release()
        raise DumpChangedError(self.path, offset, what)

    @contextlib.contextmanager
    def reading(self, offset: int | None = None) -> Iterator[None]:
        """An operation that reads the map: checked first, and while it runs a lease break
        waits for it to end (its next ``check()`` raises)."""
        self.enter(offset)
        try:
            yield
        finally:
            self.leave()

    def enter(self, offset: int | None = None) -> None:
        """``reading()`` without the context manager (hot paths): pair with ``leave()``. The
        operation is counted before the flag is looked at (the signal handler does the
        opposite), so no lease is given up while it reads."""
        self.operations.append(None)
        if self.changed is not None or not self.leased:
            try:
                self.check(offset)
            except BaseException:
                self.leave()
                raise

    def leave(self) -> None:
        self.operations.pop()
        if self.changed is not None and not self.operations:
            self._release()

    def close(self) -> None:
        """Give the lease up (the file is being closed)."""
        self._release()


def guarded(function: Callable[..., T]) -> Callable[..., T]:
    """Run ``function(dump, ...)`` as one guarded operation on ``dump`` (its map is read only
    inside, and a change of the file stops it with ``DumpChangedError``)."""

    @functools.wraps(function)
    def wrapper(dump: Any, *args: Any, **kwargs: Any) -> T:
        with dump.guard.reading():
            return function(dump, *args, **kwargs)

    return wrapper
