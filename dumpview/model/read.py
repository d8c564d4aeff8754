"""Reading a span that may cross holes: what the dump has, and a marked run for each gap.

Owns ``read_runs`` (a VA span of the dumped context or of another context) and
``read_runs_pa`` (a PA span, through the VAs that map it): the span cut into runs, each either
bytes the dump carries (a ``memoryview`` of the map, or bytes where a run joins PT_LOADs) or a
gap with its reason, the way every view says it:

- ``not-mapped``: no PT_LOAD maps it (the detail says where the walk stopped);
- ``device-memory`` / ``borrow-refused``: mapped, but the walker recorded no data (the
  extension's reason and region when it has them, as ``Dump.hole_reason``);
- ``context-not-dumped``: a context whose tables the dump carries but not its pages (the detail
  names the PA, and says when the dumped context maps that PA, so ``p:PA`` reads it).

Never zeros for a gap. Work grows with the answer: a step per page with data or mapped, one
per unmapped PT_LOAD gap (or per entry that stopped the walk, in other contexts); nothing
here raises for an address: ``ContextError`` for a context the dump does not carry, and
``ValueError`` for a negative size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.contexts import CONTEXT_NOT_DUMPED, check_context, is_dumped_context
from dumpview.model.errors import NotDumpedError

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

NOT_MAPPED = "not-mapped"


@dataclass(frozen=True)
class ReadRun:
    """``size_bytes`` at ``address`` (a VA, or a PA for ``read_runs_pa``): ``data`` when the
    dump carries them, else None with ``reason`` and ``detail``."""

    address: int
    size_bytes: int
    data: memoryview | bytes | None
    reason: str | None = None
    detail: str | None = None

    @property
    def dumped(self) -> bool:
        return self.data is not None

    @property
    def end(self) -> int:
        return self.address + self.size_bytes


def _check_size(size_bytes: int) -> None:
    if size_bytes < 0:
        raise ValueError("size must not be negative")


def _gap(runs: list[ReadRun], address: int, size: int, reason: str, detail: str | None) -> None:
    """Append a gap, merged into the run before when that is the same gap going on (same
    reason, and the same detail or none: callers give a detail only where a gap starts)."""
    last = runs[-1] if runs else None
    if (
        last is not None
        and not last.dumped
        and last.end == address
        and last.reason == reason
        and (detail is None or detail == last.detail)
    ):
        last = runs.pop()
        detail = last.detail
        size += last.size_bytes
        address = last.address
    runs.append(ReadRun(address, size, None, reason, detail))


def _data(runs: list[ReadRun], address: int, data: memoryview | bytes) -> None:
    if runs and runs[-1].dumped and runs[-1].end == address:
        last = runs.pop()
        data = bytes(last.data) + bytes(data)
        address = last.address
    runs.append(ReadRun(address, len(data), data))


def read_runs(dump: Dump, va: int, size_bytes: int, context: int | None = None) -> list[ReadRun]:
    """``size_bytes`` at ``va`` in ``context`` (None: the dumped one) as runs in VA order,
    together covering the whole span (see the module docstring)."""
    _check_size(size_bytes)
    context = check_context(dump, context)
    end = min(va + size_bytes, 1 << 64)
    if is_dumped_context(dump, context):
        return _dumped_runs(dump, va, end)
    return _context_runs(dump, va, end, context)


def _dumped_runs(dump: Dump, va: int, end: int) -> list[ReadRun]:
    runs: list[ReadRun] = []
    page = dump.page_size_bytes
    cur = va
    while cur < end:
        seg = dump.segment_at(cur)
        if seg is None:
            nxt = int(np.searchsorted(dump.seg_va, np.uint64(cur), side="right"))
            stop = end
            if nxt < len(dump.seg_va):
                stop = min(end, int(dump.seg_va[nxt]))
            if not runs or runs[-1].dumped or runs[-1].reason != NOT_MAPPED:
                detail = _walk_stop(dump, cur, None)
            else:
                detail = None
            _gap(runs, cur, stop - cur, NOT_MAPPED, detail)
            cur = stop
            continue
        seg_va = int(dump.seg_va[seg])
        off = cur - seg_va
        filesz, memsz = int(dump.seg_filesz[seg]), int(dump.seg_memsz[seg])
        if off < filesz:
            take = min(end - cur, filesz - off)
            start = int(dump.seg_offset[seg]) + off
            _data(runs, cur, dump.buffer[start : start + take])
        else:
            # One hole reason per page at most (a hole may change region inside a PT_LOAD).
            take = min(end - cur, memsz - off, page - (cur % page))
            reason, detail = dump.hole_reason(cur, int(dump.seg_flags[seg]))
            _gap(runs, cur, take, reason, detail)
        cur += take
    return runs


def _walk_stop(dump: Dump, va: int, context: int | None) -> str | None:
    """Where the walk of ``va`` stopped, as a detail for a not-mapped gap."""
    walk = dump.translate(va, context)
    if walk.mapped:
        return None
    return f"the walk stopped at L{walk.stopped_level}: {walk.stopped_reason}"


def _context_runs(dump: Dump, va: int, end: int, context: int) -> list[ReadRun]:
    runs: list[ReadRun] = []
    page = dump.page_size_bytes
    cur = va
    while cur < end:
        take = min(end - cur, page - (cur % page))
        pa = dump.va_to_pa(cur, context)
        if pa is None:
            # The whole span of the entry that stopped the walk is unmapped: one step for it.
            walk = dump.translate(cur, context)
            if walk.stopped_level is not None:
                span = dump.geometry.level(walk.stopped_level).entry_span_bytes
                take = min(end, (cur | (span - 1)) + 1) - cur
            fresh = not runs or runs[-1].reason != NOT_MAPPED or runs[-1].end != cur
            detail = f"the walk stopped at L{walk.stopped_level}: {walk.stopped_reason}"
            _gap(runs, cur, take, NOT_MAPPED, detail if fresh else None)
        else:
            fresh = not runs or runs[-1].reason != CONTEXT_NOT_DUMPED or runs[-1].end != cur
            detail = None
            if fresh:
                detail = f"PA {pa:#x}"
                if dump.vas_for_pa(pa):
                    detail += f"; the dumped context maps it: read p:{pa:#x}"
            _gap(runs, cur, take, CONTEXT_NOT_DUMPED, detail)
        cur += take
    return runs


def read_runs_pa(dump: Dump, pa: int, size_bytes: int) -> list[ReadRun]:
    """``size_bytes`` at physical address ``pa`` as runs in PA order: each page's bytes
    through the first VA of the dumped context that maps it with data (``Dump.vas_for_pa``),
    else a gap: the first alias's reason, or ``not-mapped`` when no PT_LOAD maps it."""
    _check_size(size_bytes)
    runs: list[ReadRun] = []
    page = dump.page_size_bytes
    end = min(pa + size_bytes, 1 << 64)
    cur = pa
    while cur < end:
        take = min(end - cur, page - (cur % page))
        error: NotDumpedError | None = None
        vas = dump.vas_for_pa(cur)
        for alias in vas:
            try:
                data = dump.read_va(alias, take)
            except NotDumpedError as exc:
                error = error or exc
                continue
            _data(runs, cur, data)
            break
        else:
            reason = NOT_MAPPED if error is None else error.reason
            last = runs[-1] if runs else None
            detail = None
            if last is None or last.dumped or last.reason != reason or last.end != cur:
                detail = "no PT_LOAD of the dump maps this PA"
                if error is not None:
                    detail = f"at VA {error.va:#x}" + (f": {error.detail}" if error.detail else "")
            _gap(runs, cur, take, reason, detail)
        cur += take
    return runs
