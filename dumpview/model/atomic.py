"""Atomic file writes: a temporary file in the target's directory, renamed over the target
only once everything was written (and, when durable, flushed to disk); removed if anything
fails. A reader never
sees a half-written file, and a failed write leaves the old file (or none) in place.

``atomic_text_writer`` raises whatever the file system raises (``OSError``); an exception in
the ``with`` body propagates after the temporary file is removed. New files get mode 0644
(less the umask), an existing target keeps its mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import TextIO

NEW_FILE_MODE = 0o644


def _mode_for(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return NEW_FILE_MODE & ~umask


@contextlib.contextmanager
def atomic_text_writer(
    path: str | os.PathLike[str], encoding: str = "utf-8", durable: bool = True
) -> Iterator[TextIO]:
    """A text stream whose content replaces ``path`` atomically when the block ends cleanly.
    ``durable`` also fsyncs before the rename (small files that must survive a power cut);
    without it a reader still never sees a partial file, only the rename may be lost."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    mode = _mode_for(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="\n", buffering=1 << 20) as fp:
            yield fp
            fp.flush()
            if durable:
                os.fsync(fp.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_text_writer(path) as fp:
        fp.write(text)
