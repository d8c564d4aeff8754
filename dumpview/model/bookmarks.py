"""Bookmarks: labelled VAs kept in a sidecar file beside the dump, never in the dump itself.

Owns the sidecar's name (``sidecar_path``: "<dump file name>.bookmarks.json" in the dump's
directory), its JSON layout (schema "dumpview-bookmarks/1", VAs as "0x..." strings, an optional
"note" per bookmark) and the in-memory set (``Bookmarks``: one label and note per exact VA,
listed in VA order).

Failure modes: ``Bookmarks.load`` never raises for the sidecar's content or for a sidecar it
cannot read: it returns an empty set whose ``warning`` names the file and the problem (a
missing sidecar is simply empty, no warning). ``Bookmarks.save`` writes atomically (a temporary
file in the same directory, then ``os.replace``) and raises ``OSError`` only, including when
the sidecar would be the dump file itself. ``add`` raises ``ValueError`` for a VA outside
0..2**64-1 or a label or note that is not a string.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dumpview.model.atomic import write_text_atomically

SCHEMA = "dumpview-bookmarks/1"
SIDECAR_SUFFIX = ".bookmarks.json"
U64_MAX = (1 << 64) - 1


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
        self._labels: dict[int, tuple[str, str]] = {}  # va: (label, note)

    @classmethod
    def load(cls, dump_path: str | os.PathLike[str]) -> Bookmarks:
        """The dump's bookmarks: empty when there is no sidecar or it cannot be used."""
        bookmarks = cls(dump_path)
        try:
            text = bookmarks.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return bookmarks
        except (OSError, UnicodeDecodeError) as exc:
            bookmarks.warning = f"bookmarks file {bookmarks.path} is unreadable: {exc}"
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
        """Write the sidecar atomically. Raises OSError (never touches the dump)."""
        if self._is_dump(self.path):
            raise OSError(f"refusing to write bookmarks over the dump itself ({self.path})")
        text = json.dumps(self._document(), indent=2) + "\n"
        write_text_atomically(self.path, text)

    def _is_dump(self, path: Path) -> bool:
        """Whether ``path`` names the dump file (same path, or a link to the same file)."""
        if os.path.realpath(path) == os.path.realpath(self.dump_path):
            return True
        try:
            return os.path.samefile(path, self.dump_path)
        except OSError:  # either does not exist: cannot be the same file
            return False
