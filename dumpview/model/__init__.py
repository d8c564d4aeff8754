"""The dump model: a dump as users think of it, with no Textual and no click."""

from dumpview.model.dump import Dump, Note, PageRecord, open_dump
from dumpview.model.errors import AddressError, DumpError, DumpFormatError, NotDumpedError
from dumpview.model.extension import Region, Space
from dumpview.model.guard import DumpChangedError
from dumpview.model.translate import Translation, WalkStep, translate

__all__ = [
    "AddressError",
    "Dump",
    "DumpChangedError",
    "DumpError",
    "DumpFormatError",
    "NotDumpedError",
    "Note",
    "PageRecord",
    "Region",
    "Space",
    "Translation",
    "WalkStep",
    "open_dump",
    "translate",
]
