"""Files with no name anyone could guess or redirect, and giving them one: the primitives the
writer (``dumpview.output``: atomic outputs, scratch files) and the input spool start from.

``temporary_file`` makes the file (``O_TMPFILE`` where the file system has it, else
``mkstemp``), ``anonymous_file`` one that never has a name; ``link_into``, ``link_first_free``
and ``give_a_name`` link a finished one into its directory without following or replacing
anything there; ``fsync_directory`` makes a new name durable. Each
raises the file system's ``OSError``; naming the error after the user's target is the
caller's job.

Standard library only: the simulator writes through the writer too.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Iterable


def temporary_file(
    directory: str, prefix: str, *, linkable: bool = True, readable: bool = False
) -> tuple[int, str | None]:
    """A descriptor on a new file (mode 0600) in ``directory`` that no one can open or redirect
    by its name: anonymous (``O_TMPFILE``: no name, so nothing is left behind even by SIGKILL)
    where the file system has them, else created by ``mkstemp`` (exclusive, never through a
    link, an unpredictable name starting with ``prefix``, ending ".tmp"). ``linkable``: an
    anonymous file may be given a name later (``linkat`` through /proc/self/fd, as the atomic
    writer does; else ``O_EXCL`` says it never can);
    ``readable``: opened for reading too. Returns (fd, None) for an anonymous file, (fd, its
    name) otherwise: the caller unlinks that name. Raises ``OSError`` from the file system."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag and (not linkable or os.path.isdir("/proc/self/fd")):
        access = os.O_RDWR if readable else os.O_WRONLY
        try:
            return os.open(
                directory, flag | access | os.O_CLOEXEC | (0 if linkable else os.O_EXCL), 0o600
            ), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    return tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)


def link_into(fd: int, tmp: str | None, dir_fd: int, name: str) -> None:
    """Link the file (anonymous ``fd``, or named ``tmp``) as ``name`` in ``dir_fd``:
    ``linkat`` never follows or replaces what is there (``FileExistsError`` when taken)."""
    # linkat(AT_FDCWD, SOURCE, dir_fd, name, AT_SYMLINK_FOLLOW): a directory descriptor makes
    # Python call linkat, which follows /proc/self/fd/N, the magic link to the open file.
    os.link(tmp or f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)


def open_directory(directory: str) -> int:
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def link_first_free(fd: int, tmp: str | None, directory: str, names: Iterable[str]) -> str | None:
    """Link the file (anonymous ``fd``, or named ``tmp``) into ``directory`` under the first of
    ``names`` that is free (``link_into``: nothing there is followed or replaced); the name it
    got, or None when every one was taken."""
    dir_fd = open_directory(directory)
    try:
        for name in names:
            try:
                link_into(fd, tmp, dir_fd, name)
            except FileExistsError:
                continue
            return name
    finally:
        os.close(dir_fd)
    return None


def give_a_name(fd: int, directory: str, name: str) -> str:
    """Link the anonymous file ``fd`` into ``directory`` under a new unpredictable name (a name
    taken is tried again)."""
    names = (f".{name}.{secrets.token_hex(6)}.tmp" for _ in range(100))
    got = link_first_free(fd, None, directory, names)
    if got is None:
        raise FileExistsError(errno.EEXIST, "no free temporary name", directory)
    return os.path.join(directory, got)


def anonymous_file(directory: str, prefix: str) -> int:
    """A descriptor, open for reading and writing, on a new file in ``directory`` that has no
    name at all (``temporary_file`` never linkable; a ``mkstemp`` name is unlinked at once).
    Raises ``OSError`` from the file system."""
    fd, name = temporary_file(directory, prefix, linkable=False, readable=True)
    if name is not None:
        try:
            os.unlink(name)
        except OSError:
            os.close(fd)
            raise
    return fd


def fsync_directory(directory: str) -> None:
    """Make a new name in ``directory`` durable (a file system that cannot fsync a directory,
    EINVAL, has nothing more to do)."""
    dir_fd = open_directory(directory)
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(dir_fd)
