"""Every file dumpview writes goes through here: exports, generated dumps, the bookmarks sidecar,
the devcoredumps ``collect`` saves, the scratch files parallel export workers fill; and the
anonymous temporary files others need (the input spool) are made by the same helper.

Owns one decision, ``plan_output``, and one writer, ``open_output``. What is written where:

- ``-``: standard output, streamed (named ``<stdout>`` in errors).
- A regular file, or a path that does not exist yet: written atomically. The content goes to a
  temporary file in the target's own directory that no one can guess or redirect: anonymous
  (``O_TMPFILE``, mode 0600) where the file system has them, linked under an unpredictable name
  only once complete, so not even SIGKILL leaves it behind; else created exclusively, never
  through a link (``tempfile.mkstemp``: ``O_CREAT|O_EXCL|O_NOFOLLOW``). It is renamed over the
  target only when the writing block ended cleanly and no stop signal arrived
  (``stop_signal``), and removed on any failure or signal (the target is then untouched). An
  existing file keeps its mode (and, when we are root, its owner); a new file gets the mode
  ``open(2)`` would give it (0666 less the umask), or exactly ``new_mode`` when the caller
  asks (0600 for a crash dump that may hold secrets). Nothing is copied from anywhere else.
  ``durable``: the file is fsynced before it gets its name and the directory after, so a
  power cut leaves either the old content or the new, complete.
- ``no_clobber``: nothing is ever replaced. The finished file is linked (``linkat``, which
  fails on any name that exists, even a dangling link) under the target's name, or when that
  is taken under the first free of NAME-2, NAME-3… (``numbered_name``: the number goes
  before ``suffix``, by default before the last extension). A file that appears at a name
  after it was planned is therefore never overwritten. The stream's ``name`` is the path the
  content ended up at once the block has ended.
- A symbolic link: written to the file it points to (atomically there when that is a regular
  file or does not exist yet); the link itself stays. ``follow_symlinks=False`` refuses links
  instead (the bookmarks sidecar: a link planted beside a dump must not redirect our writes).
- A character device, a FIFO or a socket: streamed into directly, never renamed over. A FIFO
  with no reader is waited for without blocking in ``open(2)``: the wait polls, so a signal
  (SIGINT, SIGTERM) or ``cancelled()`` ends it.
- Never: a directory, a block device, and any file given in ``avoid`` (the dump being read: the
  same device and inode, whatever path or link leads there; standard output included).

Failure modes: ``OutputError`` (an ``OSError``) whose ``filename`` is the target as the user
named it (``<stdout>`` for standard output), never the temporary file. Write errors raised by
the stream (a full disk, a closed pipe) are ``OSError`` naming the target as well; errors the
``with`` body raises for other reasons propagate unchanged after the temporary file is removed.

``dumpview.tempfiles.temporary_file`` makes the files with no name anyone could guess or
redirect that all of the above start from (``scratch_file``'s, the atomic writer's, the input
spool's).

Standard library only: the simulator (which may not import the model) writes through it too.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from dumpview.tempfiles import (
    anonymous_file,
    fsync_directory,
    give_a_name,
    link_first_free,
    temporary_file,
)

STDOUT = "-"
# The signals that stop dumpview the conventional way (exit 128 + signal, one line, nothing
# committed: ``stop_signal``); the CLI, the inspector and the workers all use this tuple.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STDOUT_NAME = "<stdout>"
NEW_FILE_MODE = 0o666  # what open(2) with O_CREAT gives, less the umask
BUFFER_BYTES = 1 << 20
NO_CLOBBER_NAMES = 1000  # NAME, NAME-2 ... NAME-1000: then EEXIST
FIFO_POLL_SECONDS = 0.05
# Errors that can only come from the output side: an OSError without a file name carrying one
# of these, raised while the writing block runs, is about the target.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE, errno.ENXIO, errno.EROFS}
)

ATOMIC = "atomic"
STREAM = "stream"
STDOUT_KIND = "stdout"


# Set by the command line's signal handlers (SIGINT/SIGTERM/SIGHUP): once it is, no atomic
# write renames its file over a target. The handlers also raise, but an exception raised in a
# signal handler can be swallowed by C code it interrupts (an import, a finalizer); this flag
# cannot be.
stop_signal: int | None = None


class Stopped(BaseException):
    """A write refused at its commit because a stop signal (``stop_signal``) arrived."""

    def __init__(self, signum: int, target: str) -> None:
        super().__init__(signum, target)
        self.signum = signum
        self.target = target


class OutputError(OSError):
    """Why a target cannot be written: ``filename`` is the target as given."""

    def __init__(self, code: int, message: str, target: str) -> None:
        super().__init__(code, message, target)


@dataclass(frozen=True)
class OutputPlan:
    """How a target will be written: ``kind`` is "atomic", "stream" or "stdout"; ``path`` the
    file written (a link's destination), ``display`` the name errors give."""

    kind: str
    path: str
    display: str
    mode: int | None = None  # atomic: the permission bits (None: 0666 less the umask)
    owner: tuple[int, int] | None = None  # over an existing file: its (uid, gid)
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of an existing target
    no_clobber: bool = False  # linked under the first free name, never over anything
    suffix: str | None = None  # no_clobber: the number goes before it (None: the extension)

    @property
    def directory(self) -> str | None:
        """Where an atomic write puts its temporary file (and scratch files belong)."""
        if self.kind != ATOMIC:
            return None
        return os.path.dirname(os.path.abspath(self.path)) or "."


def _named(exc: OSError, display: str) -> OSError:
    """``exc`` as an OSError naming ``display`` (its errno and text kept)."""
    out = OSError(exc.errno, exc.strerror or str(exc), display)
    out.__cause__ = exc.__cause__
    return out


def _identities(avoid: Iterable[Any]) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of each path, descriptor or file object in ``avoid`` that exists."""
    out = set()
    for item in avoid:
        try:
            if isinstance(item, int):
                st = os.fstat(item)
            elif hasattr(item, "fileno"):
                st = os.fstat(item.fileno())
            else:
                st = os.stat(item)
        except (OSError, ValueError):
            continue
        out.add((st.st_dev, st.st_ino))
    return out


def current_umask() -> int:
    """The process umask, read without changing it where Linux says it (/proc/self/status)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # a brief change: only where /proc does not say it
    os.umask(mask)
    return mask


def plan_output(
    target: str | os.PathLike[str],
    *,
    avoid: Iterable[Any] = (),
    follow_symlinks: bool = True,
    no_clobber: bool = False,
    suffix: str | None = None,
    new_mode: int | None = None,
) -> OutputPlan:
    """Decide how ``target`` is written (see the module docstring): ``new_mode`` is the
    permission bits of a file this creates (an existing one keeps its own); ``no_clobber``
    (with ``suffix``) links the result under the first free name instead of replacing
    anything. Raises ``OutputError``."""
    display = os.fspath(target)
    if no_clobber and display != STDOUT:
        return _plan_new(display, suffix, new_mode)
    forbidden = _identities(avoid)
    if display == STDOUT:
        try:
            st = os.fstat(1)
        except (OSError, ValueError):
            st = None
        if st is not None and (st.st_dev, st.st_ino) in forbidden:
            raise OutputError(
                errno.EINVAL,
                "is the dump itself: refusing to write over the dump being read",
                STDOUT_NAME,
            )
        return OutputPlan(STDOUT_KIND, STDOUT, STDOUT_NAME)
    path = display
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _as_output_error(exc, display) from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        if not follow_symlinks:
            raise OutputError(
                errno.ELOOP, "is a symbolic link: not followed, not replaced", display
            )
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None  # a dangling link: the file it names is created
        except OSError as exc:
            raise _as_output_error(exc, display) from None
        path = os.path.realpath(path)
    if st is None:
        _check_directory(path, display)
        return OutputPlan(ATOMIC, path, display, new_mode)
    identity = (st.st_dev, st.st_ino)
    if identity in forbidden:
        raise OutputError(
            errno.EINVAL, "is the dump itself: refusing to write over the dump being read", display
        )
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return OutputPlan(
            ATOMIC, path, display, stat.S_IMODE(mode), (st.st_uid, st.st_gid), identity
        )
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        if not follow_symlinks:  # the sidecar: only a regular file (or none) is ours to write
            raise OutputError(errno.EINVAL, "is not a regular file: not written", display)
        return OutputPlan(STREAM, path, display, identity=identity)
    if stat.S_ISDIR(mode):
        raise OutputError(errno.EISDIR, "is a directory", display)
    raise OutputError(errno.EINVAL, "is a block device: refusing to write to it", display)


def _check_directory(path: str, display: str) -> None:
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise OutputError(errno.ENOENT, "its directory does not exist", display)


def _plan_new(display: str, suffix: str | None, new_mode: int | None) -> OutputPlan:
    """A no-clobber plan: whatever is at ``display`` (a file, a link, a device) is only a name
    that is taken; nothing is followed, nothing is opened."""
    _check_directory(display, display)
    name = os.path.basename(display)
    if not name or name in (".", ".."):
        raise OutputError(errno.EISDIR, "is a directory", display)
    return OutputPlan(ATOMIC, display, display, new_mode, no_clobber=True, suffix=suffix)


def numbered_name(name: str, number: int, suffix: str | None = None) -> str:
    """``name`` with ``-number`` before ``suffix`` (when ``name`` ends with it; by default its
    last extension): ``numbered_name("a.dump.zst", 2, ".dump.zst")`` is "a-2.dump.zst"."""
    if suffix is None or not name.endswith(suffix) or name == suffix:
        stem, ext = os.path.splitext(name)
        return f"{stem}-{number}{ext}"
    return f"{name.removesuffix(suffix)}-{number}{suffix}"


def _as_output_error(exc: OSError, display: str) -> OutputError:
    return OutputError(exc.errno or errno.EIO, exc.strerror or str(exc), display)


class _TargetFile(io.FileIO):
    """A raw file whose write errors name the target, not the descriptor or temporary file
    (and whose ``name`` is the target's)."""

    def __init__(self, fd: int, display: str) -> None:
        super().__init__(fd, "wb", closefd=True)
        self._display = display
        self.name = display

    def write(self, data: Any) -> int | None:
        try:
            return super().write(data)
        except OSError as exc:
            raise _named(exc, self._display) from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            raise _named(exc, self._display) from None


def _stream(fd: int, display: str, binary: bool, encoding: str) -> IO:
    raw = _TargetFile(fd, display)
    buffered = io.BufferedWriter(raw, buffer_size=BUFFER_BYTES)
    if binary:
        return buffered
    return io.TextIOWrapper(buffered, encoding=encoding, newline="\n")


def _open_special(
    plan: OutputPlan, cancelled: Callable[[], bool] | None, timeout: float | None
) -> int:
    """A descriptor on the device, FIFO or socket ``plan`` names (checked to be the file
    planned). A FIFO without a reader is polled for, not blocked on."""
    display = plan.display
    started = time.monotonic()
    while True:
        try:
            fd = os.open(plan.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            break
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                st = os.stat(plan.path)
                if stat.S_ISSOCK(st.st_mode):
                    return _connect(plan)
                if stat.S_ISFIFO(st.st_mode):  # no reader yet: wait for one, cancellably
                    if cancelled is not None and cancelled():
                        raise OutputError(errno.EINTR, "no reader: cancelled", display) from None
                    if timeout is not None and time.monotonic() - started > timeout:
                        raise OutputError(errno.ENXIO, "FIFO has no reader", display) from None
                    time.sleep(FIFO_POLL_SECONDS)
                    continue
            raise _as_output_error(exc, display) from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != plan.identity or stat.S_ISREG(st.st_mode):
            raise OutputError(errno.EAGAIN, "changed while being opened: not written", display)
        flags = os.get_blocking(fd)
        if not flags:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _connect(plan: OutputPlan) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(plan.path)
    except OSError as exc:
        sock.close()
        raise _as_output_error(exc, plan.display) from None
    return sock.detach()


@contextlib.contextmanager
def open_output(
    target: str | os.PathLike[str],
    *,
    binary: bool = False,
    encoding: str = "utf-8",
    avoid: Iterable[Any] = (),
    follow_symlinks: bool = True,
    durable: bool = False,
    no_clobber: bool = False,
    suffix: str | None = None,
    new_mode: int | None = None,
    cancelled: Callable[[], bool] | None = None,
    fifo_timeout: float | None = None,
    plan: OutputPlan | None = None,
) -> Iterator[IO]:
    """A stream whose content ends up in ``target`` as the module docstring says (text unless
    ``binary``). ``avoid``: files the target must not be (paths, descriptors or file objects).
    ``durable``: fsync the file before it gets its name and the directory after (files that
    must survive a power cut). ``no_clobber``/``suffix``: link under the first free name,
    never over anything; the stream's ``name`` is then that path once the block has ended.
    ``new_mode``: the permission bits of a file this creates (default 0666 less the umask).
    ``cancelled``/``fifo_timeout``: how long to wait for a FIFO's reader. ``plan``: one
    ``plan_output`` made already (then ``avoid``, ``follow_symlinks``, ``no_clobber``,
    ``suffix`` and ``new_mode`` are unused). Raises ``OutputError``/``OSError`` naming the
    target; the body's own exceptions propagate after the temporary file is removed."""
    if plan is None:
        plan = plan_output(
            target,
            avoid=avoid,
            follow_symlinks=follow_symlinks,
            no_clobber=no_clobber,
            suffix=suffix,
            new_mode=new_mode,
        )
    if plan.kind == STDOUT_KIND:
        import sys

        stream = sys.stdout.buffer if binary else sys.stdout
        try:
            yield stream
            stream.flush()
        except OSError as exc:
            raise _output_named(exc, plan.display) from None
        return
    if plan.kind == STREAM:
        fd = _open_special(plan, cancelled, fifo_timeout)
        stream = _stream(fd, plan.display, binary, encoding)
        try:
            yield stream
            stream.flush()
        except OSError as exc:
            raise _output_named(exc, plan.display) from None
        finally:
            with contextlib.suppress(OSError):
                stream.close()
        return
    with _atomic(plan, binary, encoding, durable) as stream:
        yield stream


def _output_named(exc: OSError, display: str) -> OSError:
    """An error raised while writing: named after the target when it is the target's."""
    if exc.filename is None and exc.errno in WRITE_ERRNOS:
        return _named(exc, display)
    return exc


def _link_free(fd: int, tmp: str | None, directory: str, plan: OutputPlan) -> str:
    """Link the finished file under the target's name or the first free numbered one; the
    path it got (spelt as the target was)."""
    name = os.path.basename(plan.path)
    names = (
        name if number == 1 else numbered_name(name, number, plan.suffix)
        for number in range(1, NO_CLOBBER_NAMES + 1)
    )
    got = link_first_free(fd, tmp, directory, names)
    if got is None:
        raise OutputError(
            errno.EEXIST, f"it and {NO_CLOBBER_NAMES - 1} numbered names are taken", plan.display
        )
    return os.path.join(os.path.dirname(plan.display), got)


@contextlib.contextmanager
def _atomic(plan: OutputPlan, binary: bool, encoding: str, durable: bool) -> Iterator[IO]:
    directory = plan.directory or "."
    name = os.path.basename(plan.path)
    try:
        fd, tmp = temporary_file(directory, f".{name}.")
    except OSError as exc:
        raise _as_output_error(exc, plan.display) from None
    stream = None
    try:
        try:
            os.fchmod(fd, NEW_FILE_MODE & ~current_umask() if plan.mode is None else plan.mode)
            if plan.owner is not None and plan.owner != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # only root may; others keep theirs
                    os.fchown(fd, *plan.owner)
                os.fchmod(fd, plan.mode)  # chown clears set-id bits
        except OSError as exc:
            raise _as_output_error(exc, plan.display) from None
        stream = _stream(fd, plan.display, binary, encoding)
        try:
            yield stream
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        except OSError as exc:
            raise _output_named(exc, plan.display) from None
        if stop_signal is not None:
            raise Stopped(stop_signal, plan.display)
        try:
            if plan.no_clobber:
                final = _link_free(stream.fileno(), tmp, directory, plan)
                stream.close()
                if tmp is not None:
                    os.unlink(tmp)
            else:
                if tmp is None:
                    tmp = give_a_name(stream.fileno(), directory, name)
                stream.close()
                os.replace(tmp, plan.path)
                final = plan.display
            tmp = None
            getattr(stream, "buffer", stream).raw.name = final  # where the content is
            if durable:
                fsync_directory(directory)
        except OSError as exc:
            raise _as_output_error(exc, plan.display) from None
    except BaseException:
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        else:
            with contextlib.suppress(OSError):
                os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def write_text(
    target: str | os.PathLike[str], text: str, *, durable: bool = True, **options: Any
) -> None:
    """Replace ``target`` with ``text`` through ``open_output`` (durable by default)."""
    with open_output(target, durable=durable, **options) as fp:
        fp.write(text)


def scratch_file(directory: str | None = None) -> IO[bytes]:
    """An anonymous temporary file, open for reading and writing (no name to guess, gone when
    closed or when the process dies) in ``directory`` (default: the system's temporary
    directory). ``OutputError`` naming the directory when none can be made."""
    where = directory or tempfile.gettempdir()
    try:
        return open(anonymous_file(where, ".dumpview-scratch-"), "w+b")
    except OSError as exc:
        raise _as_output_error(exc, where) from None


__all__ = [
    "STDOUT",
    "STDOUT_NAME",
    "OutputError",
    "OutputPlan",
    "numbered_name",
    "open_output",
    "plan_output",
    "scratch_file",
    "write_text",
]
