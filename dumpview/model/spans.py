"""Where a VA's or a PA's bytes are in the file, and reading them.

Owns turning an address range into (file offset, length) pieces through the PT_LOADs
(``file_spans``), the reads built on them (``read_va``: views of the map; ``read_va_into``:
``preadv`` into a caller's buffer; ``read_pa``: through the VAs that map a PA, dumped aliases
first) and the PA -> VAs lookup (``vas_for_pa``). ``Dump`` forwards its methods of the same
names here. Reading across holes, with a marked run per gap, is ``dumpview.model.read``.

Failure modes: ``NotDumpedError`` names the first VA without data (and why), ``AddressError``
the first address no PT_LOAD maps, ``DumpChangedError`` a file that shrank (every read of the
map runs inside the dump's guard), ``ValueError`` a negative size. Nothing is read before the
whole range is known to be there.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.errors import AddressError, NotDumpedError
from dumpview.model.guard import DumpChangedError

if TYPE_CHECKING:
    from dumpview.model.dump import Dump


def file_spans(dump: Dump, va: int, size_bytes: int) -> list[tuple[int, int]]:
    """(file offset, length) pieces holding [va, va + size_bytes), or the error a read
    raises: NotDumpedError at the first VA without data, AddressError where unmapped."""
    if size_bytes < 0:
        raise ValueError("size must not be negative")
    out = []
    cur, end = va, va + size_bytes
    while cur < end:
        seg = dump.segment_at(cur)
        if seg is None:
            raise AddressError(cur, f"VA {cur:#x} is not mapped by any PT_LOAD of the dump")
        off = cur - int(dump.seg_va[seg])
        filesz = int(dump.seg_filesz[seg])
        if off >= filesz:
            reason, detail = dump.hole_reason(cur, int(dump.seg_flags[seg]))
            raise NotDumpedError(cur, reason, detail)
        take = min(end - cur, filesz - off)
        out.append((int(dump.seg_offset[seg]) + off, take))
        cur += take
    return out


def read_va(dump: Dump, va: int, size_bytes: int) -> memoryview | bytes:
    """``size_bytes`` at ``va``: a memoryview of the map inside one segment, bytes across
    segments (see ``Dump.read_va``)."""
    pieces_at = file_spans(dump, va, size_bytes)
    with dump.guard.reading(pieces_at[0][0] if pieces_at else None):
        pieces = [dump.buffer[start : start + take] for start, take in pieces_at]
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)


def read_va_into(dump: Dump, va: int, out: bytearray | memoryview) -> int:
    """Copy ``len(out)`` bytes at ``va`` into ``out`` with ``preadv``; returns the bytes
    copied (see ``Dump.read_va_into``)."""
    target = memoryview(out).cast("B")
    pieces_at = file_spans(dump, va, len(target))
    done = 0
    fd = dump.fileno()
    for start, take in pieces_at:
        dump.guard.check(start)
        while take:
            got = os.preadv(fd, [target[done : done + take]], start)
            if got <= 0:
                dump.guard.check(start)
                raise DumpChangedError(
                    dump.path, start, "the file ended while reading it (it shrank)"
                )
            done, start, take = done + got, start + got, take - got
    return done


def vas_for_pa(dump: Dump, pa: int) -> list[int]:
    """Every VA whose PT_LOAD maps ``pa`` (aliases), in VA order. Only segments starting
    within the largest segment's size below ``pa`` are looked at, in bulk."""
    if not 0 <= pa < 1 << 64 or not len(dump.seg_pa):
        return []
    order, pas = dump.segments_by_pa()
    hi = int(np.searchsorted(pas, np.uint64(pa), side="right"))
    lo = int(np.searchsorted(pas, np.uint64(max(0, pa - dump.max_memsz)), side="left"))
    segs = order[lo:hi]
    offsets = np.uint64(pa) - pas[lo:hi]
    inside = offsets < dump.seg_memsz[segs]
    return sorted((dump.seg_va[segs[inside]] + offsets[inside]).tolist())


def read_pa(dump: Dump, pa: int, size_bytes: int) -> memoryview | bytes:
    """``size_bytes`` at physical address ``pa`` through the VAs that map it (see
    ``Dump.read_pa``)."""
    if size_bytes < 0:
        raise ValueError("size must not be negative")
    with dump.guard.reading():
        pieces: list[memoryview | bytes] = []
        cur, end = pa, pa + size_bytes
        while cur < end or not pieces:
            vas = vas_for_pa(dump, cur)
            if not vas:
                raise AddressError(cur, f"PA {cur:#x} is not mapped by any PT_LOAD of the dump")
            error: NotDumpedError | None = None
            for va in vas:
                seg = dump.segment_at(va)
                seg_end = int(dump.seg_va[seg]) + int(dump.seg_memsz[seg])
                take = min(end - cur, seg_end - va)
                try:
                    piece = read_va(dump, va, take)
                except NotDumpedError as exc:
                    error = error or exc
                    continue
                break
            else:
                assert error is not None  # vas is not empty
                raise error
            pieces.append(piece)
            cur += take
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)
