"""Files with no name anyone could guess or redirect, and giving them one: the primitives the
writer (``dumpview.output``: atomic outputs, scratch files) and the input spool start from.

``temporary_file`` makes the file (``O_TMPFILE`` where the file system has it, else
``mkstemp``); ``link_into`` and ``give_a_name`` link a finished one into its directory without
following or replacing anything there; ``fsync_directory`` makes a new name durable. Each
raises the file system's ``OSError``; naming the error after the user's target is the
caller's job.

Standard library only: the simulator writes through the writer too.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile


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


def give_a_name(fd: int, directory: str, name: str) -> str:
    """Link the anonymous file ``fd`` into ``directory`` under a new unpredictable name (a name
    taken is tried again)."""
    dir_fd = open_directory(directory)
    try:
        for _ in range(100):
            tmp = f".{name}.{secrets.token_hex(6)}.tmp"
            try:
                link_into(fd, None, dir_fd, tmp)
            except FileExistsError:
                continue
            return os.path.join(directory, tmp)
    finally:
        os.close(dir_fd)
    raise FileExistsError(errno.EEXIST, "no free temporary name", directory)


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
