"""Bookmarks: labelled VAs kept in a sidecar file beside the dump, never in the dump itself.

Owns the sidecar's name (``sidecar_path``: "<dump file name>.bookmarks.json" in the dump's
directory), its JSON layout (schema "dumpview-bookmarks/1", VAs as "0x..." strings, an optional
"note" per bookmark) and the in-memory set (``Bookmarks``: one label and note per exact VA,
listed in VA order).

The sidecar is read only when it is a small regular file: ``read_sidecar`` looks at it with
``lstat`` (a symbolic link is not followed), opens it ``O_NOFOLLOW|O_NONBLOCK`` (a FIFO planted
there cannot block), checks with ``fstat`` that it is a regular file of at most
``MAX_SIDECAR_BYTES`` and reads at most that many bytes. Anything else (a link, a FIFO, a
device, a directory, a file too large) is not read and not written: the bookmarks are kept for
the session only and ``warning`` says why in one line. A link planted beside a dump must never
make dumpview read or write another file. The inspector calls ``Bookmarks.load`` in a thread
worker, never on its UI thread.

Failure modes: ``Bookmarks.load`` never raises for the sidecar's content or for a sidecar it
cannot read: it returns an empty set whose ``warning`` names the file and the problem (a
missing sidecar is simply empty, no warning). ``Bookmarks.save`` writes through
``dumpview.output.open_output`` (atomically: an exclusive temporary file in the same directory,
fsynced, renamed over the sidecar; never through a link) and raises ``OSError`` only, naming
the sidecar: when it is not a regular file, when it would be the dump file itself, or when the
file system refuses. ``add`` raises ``ValueError`` for a VA outside 0..2**64-1 or a label or
note that is not a string.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from dumpview.output import write_text

SCHEMA = "dumpview-bookmarks/1"
SIDECAR_SUFFIX = ".bookmarks.json"
U64_MAX = (1 << 64) - 1
MAX_SIDECAR_BYTES = 1 << 20  # a thousand bookmarks take ~80 KB


class SidecarUnusable(OSError):
    """The sidecar path holds something that is not ours to read or write (one-line reason)."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_sidecar(path: str | os.PathLike[str], limit: int = MAX_SIDECAR_BYTES) -> bytes | None:
    """The bytes of the sidecar at ``path``; None when there is none. ``SidecarUnusable`` when
    it is not a regular file of at most ``limit`` bytes (never followed, never blocks), other
    ``OSError`` when it cannot be read."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise SidecarUnusable(errno.EINVAL, f"is {_kind(st.st_mode)}: not read", os.fspath(path))
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the lstat
            raise SidecarUnusable(
                exc.errno, "is a symbolic link: not read", os.fspath(path)
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SidecarUnusable(
                errno.EINVAL, f"is {_kind(st.st_mode)}: not read", os.fspath(path)
            )
        if st.st_size > limit:
            raise SidecarUnusable(
                errno.EFBIG,
                f"is {st.st_size:,} bytes, more than the {limit:,} a bookmarks file may be: "
                "not read",
                os.fspath(path),
            )
        chunks = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while we read
            raise SidecarUnusable(
                errno.EFBIG, f"is more than {limit:,} bytes: not read", os.fspath(path)
            )
        return b"".join(chunks)
    finally:
        os.close(fd)


def sidecar_path(dump_path: str | os.PathLike[str]) -> Path:
    """Where the bookmarks of the dump at ``dump_path`` live."""
    path = Path(dump_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class Bookmark:
    va: int
    label: str  # what was there when it was made ("L3[5] page dumped", "page 0x… + 0x48")
    note: str = ""  # what the person wrote


def _check(va: int, label: str, note: str = "") -> None:
    if isinstance(va, bool) or not isinstance(va, int) or not 0 <= va <= U64_MAX:
        raise ValueError(f"bookmark VA {va!r} is not an address (0..{U64_MAX:#x})")
    if not isinstance(label, str):
        raise ValueError(f"bookmark label {label!r} is not text")
    if not isinstance(note, str):
        raise ValueError(f"bookmark note {note!r} is not text")


def _parse(document: object) -> dict[int, tuple[str, str]]:
    """{va: (label, note)} from a parsed sidecar; ValueError naming the first problem."""
    if not isinstance(document, dict):
        raise ValueError("the top level is not a JSON object")
    if document.get("schema") != SCHEMA:
        raise ValueError(f"schema is {document.get('schema')!r}, expected {SCHEMA!r}")
    rows = document.get("bookmarks")
    if not isinstance(rows, list):
        raise ValueError('"bookmarks" is not a list')
    out: dict[int, tuple[str, str]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("va"), str):
            raise ValueError(f'bookmark #{i} has no "va" string')
        try:
            va = int(row["va"], 16)
        except ValueError:
            raise ValueError(f"bookmark #{i}: VA {row['va']!r} is not hex") from None
        note = row.get("note", "")
        try:
            _check(va, row.get("label"), note)
        except ValueError as exc:
            raise ValueError(f"bookmark #{i}: {exc}") from None
        out[va] = (row["label"], note)
    return out


class Bookmarks:
    """The bookmarks of one dump. ``warning`` says why a sidecar could not be used (or None)."""

    def __init__(self, dump_path: str | os.PathLike[str], warning: str | None = None) -> None:
        self.dump_path = Path(dump_path)
        self.path = sidecar_path(dump_path)
        self.warning = warning
        self.writable = True  # False: the sidecar path is not ours to write (see warning)
        self._labels: dict[int, tuple[str, str]] = {}  # va: (label, note)

    @classmethod
    def load(cls, dump_path: str | os.PathLike[str]) -> Bookmarks:
        """The dump's bookmarks: empty when there is no sidecar or it cannot be used."""
        bookmarks = cls(dump_path)
        try:
            raw = read_sidecar(bookmarks.path)
            if raw is None:
                return bookmarks
            text = raw.decode("utf-8")
        except SidecarUnusable as exc:
            bookmarks.warning = (
                f"bookmarks file {bookmarks.path} {exc.strerror}; bookmarks are kept for "
                "this session only"
            )
            bookmarks.writable = False
            return bookmarks
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            bookmarks.warning = f"bookmarks file {bookmarks.path} is unreadable: {reason}"
            return bookmarks
        try:
            bookmarks._labels = _parse(json.loads(text))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            bookmarks.warning = f"bookmarks file {bookmarks.path} is not usable: {exc}"
        return bookmarks

    def add(self, va: int, label: str, note: str = "") -> None:
        """Bookmark ``va``; a bookmark already at ``va`` gets the new label and note."""
        _check(va, label, note)
        self._labels[va] = (label, note)

    def get(self, va: int) -> Bookmark | None:
        """The bookmark at exactly ``va``, or None."""
        found = self._labels.get(va)
        return None if found is None else Bookmark(va, *found)

    def remove(self, va: int) -> bool:
        """Drop the bookmark at ``va``; False when there was none."""
        return self._labels.pop(va, None) is not None

    @property
    def items(self) -> list[Bookmark]:
        return [Bookmark(va, *self._labels[va]) for va in sorted(self._labels)]

    def _document(self) -> dict:
        """The sidecar's JSON document."""
        return {
            "schema": SCHEMA,
            "dump": self.dump_path.name,
            "bookmarks": [
                {"va": f"{b.va:#x}", "label": b.label, **({"note": b.note} if b.note else {})}
                for b in self.items
            ],
        }

    def save(self) -> None:
        """Write the sidecar atomically (durable). Raises OSError naming the sidecar: when it
        is not a regular file (then it is not replaced either), when it is the dump itself,
        or when the file system refuses; never touches the dump."""
        if not self.writable:
            raise OSError(
                errno.EINVAL, f"refusing to write bookmarks: {self.warning}", str(self.path)
            )
        if os.path.realpath(self.path) == os.path.realpath(self.dump_path):
            raise OSError(
                errno.EINVAL, "refusing to write bookmarks over the dump itself", str(self.path)
            )
        text = json.dumps(self._document(), indent=2) + "\n"
        write_text(self.path, text, avoid=[self.dump_path], follow_symlinks=False)
