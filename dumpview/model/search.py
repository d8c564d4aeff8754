"""Byte search over the dumped pages of a dump.

Owns turning what a person types into a byte pattern (``parse_pattern`` for a kind chosen
apart, ``parse_query`` for one line that says its kind), finding it in the dumped data
(``search``) and stepping through the hits (``next_hit_index``).

Only bytes the dump carries are searched: a PT_LOAD's data is p_filesz bytes at p_offset; the
rest of its p_memsz is not dumped and is never searched or treated as zeros. Data whose file
bytes continue is searched as one stretch of the map with ``mmap.find`` (C speed, and CPython
picks its two-way search for long haystacks); a match that crosses a VA gap inside a stretch is
dropped. Where the VA continues but the file does not, a window of the last ``len - 1`` bytes
before the joint and the first ``len - 1`` after it catches matches across the joint. A match
never spans a hole or a VA gap.

``parse_pattern`` and ``parse_query`` raise ``ValueError`` with a one-line message naming the
problem; ``search``
raises ``ValueError`` for an empty pattern and nothing else for a dump that opened.
"""

from __future__ import annotations

import bisect
import string
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from dumpview.model.guard import guarded

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

PATTERN_KINDS = ("hex", "string", "u32", "u64")
U64_MAX = (1 << 64) - 1
INT_FORMATS = {"u32": struct.Struct("<I"), "u64": struct.Struct("<Q")}
DEFAULT_HIT_LIMIT = 10_000


@dataclass(frozen=True)
class SearchHit:
    va: int
    pa: int


@dataclass
class SearchResult:
    """Hits in VA order. ``pages_searched`` counts pages with data in the range,
    ``holes_skipped`` pages without data in it (a page only partly carried counts in both);
    ``bytes_searched`` is the data in the range. These describe the whole range even when
    ``truncated`` (more hits exist than the limit allowed) stopped the scan early."""

    hits: list[SearchHit]
    pages_searched: int
    holes_skipped: int
    bytes_searched: int
    truncated: bool


def parse_pattern(text: str, kind: str) -> bytes:
    """The bytes to search for: ``kind`` "hex" ("de ad be ef", "deadbeef", "0xdeadbeef"),
    "string" (UTF-8), "u32" or "u64" (decimal or 0x hex, packed little-endian)."""
    if kind == "hex":
        digits = "".join(
            token[2:] if token[:2].lower() == "0x" else token for token in text.split()
        )
        bad = next((c for c in digits if c not in string.hexdigits), None)
        if bad is not None:
            raise ValueError(f"hex pattern: {bad!r} is not a hex digit")
        if len(digits) % 2:
            raise ValueError(f"hex pattern: {len(digits)} digits, need an even number")
        pattern = bytes.fromhex(digits)
    elif kind == "string":
        pattern = text.encode("utf-8")
    elif kind in INT_FORMATS:
        number = text.strip()
        try:
            value = int(number[2:], 16) if number[:2].lower() == "0x" else int(number, 10)
        except ValueError:
            raise ValueError(f"{kind} pattern: {number!r} is not a decimal or 0x number") from None
        limit = 1 << (8 * INT_FORMATS[kind].size)
        if not 0 <= value < limit:
            raise ValueError(f"{kind} pattern: {number} is out of range 0..{limit - 1:#x}")
        pattern = INT_FORMATS[kind].pack(value)
    else:
        raise ValueError(f"unknown pattern kind {kind!r} (one of {', '.join(PATTERN_KINDS)})")
    if not pattern:
        raise ValueError(f"{kind} pattern is empty")
    return pattern


QUOTES = "\"'"


def parse_query(text: str) -> tuple[str, bytes]:
    """(kind, bytes) of one line as typed: ``"text"`` or ``'text'`` is a string (UTF-8; the
    closing quote may be left off), ``u32:N`` and ``u64:N`` a number (decimal or 0x hex,
    little-endian), anything else hex bytes ("de ad be ef", "deadbeef", "0xdeadbeef")."""
    line = text.strip()
    if line and line[0] in QUOTES:
        quote = line[0]
        body = line[1:-1] if len(line) > 1 and line.endswith(quote) else line[1:]
        return "string", parse_pattern(body, "string")
    prefix, sep, rest = line.partition(":")
    if sep and prefix.lower() in INT_FORMATS:
        kind = prefix.lower()
        return kind, parse_pattern(rest, kind)
    try:
        return "hex", parse_pattern(line, "hex")
    except ValueError as exc:
        raise ValueError(f'{exc} (a string goes in quotes: "{line}")') from None


def _page_count(start: np.ndarray, end: np.ndarray, page: int) -> int:
    """Pages touched by the non-empty intervals among [start, end)."""
    present = end > start
    first = start[present] // np.uint64(page)
    last = (end[present] - np.uint64(1)) // np.uint64(page)
    return int((last - first).sum()) + int(np.count_nonzero(present))


class _Extents(NamedTuple):
    """Dumped data in the search range, as plain lists for the scan loop.

    Extent k: data whose VA and file offset both continue, at ``va[k]``, file bytes
    ``file[k]:file_end[k]``. ``joint_after[k]``: its VA runs on into extent k + 1 but the file
    does not (a window finds matches across it, reaching up to ``chain_end[k]``, the end of
    that VA-contiguous run). ``stretches``: (first, last) extents whose file data continue
    (the writer puts data back to back even across VA gaps), searched with one find each.
    """

    va: list[int]
    file: list[int]
    file_end: list[int]
    joint_after: list[bool]
    chain_end: list[int]
    stretches: list[tuple[int, int]]


def _extents(
    dump: Dump,
    window: slice,
    seg_va: np.ndarray,
    start: np.ndarray,
    split: np.ndarray,
    has_data: np.ndarray,
) -> _Extents:
    """Extents of the segments in ``window`` whose data (clipped to [start, split)) is not
    empty; ``seg_va`` is their unclipped p_vaddr."""
    piece_va, piece_end = start[has_data], split[has_data]
    piece_file = dump.seg_offset[window][has_data] + (piece_va - seg_va[has_data])
    piece_file_end = piece_file + (piece_end - piece_va)
    va_joins = piece_end[:-1] == piece_va[1:]
    merged = va_joins & (piece_file_end[:-1] == piece_file[1:])
    firsts = np.flatnonzero(np.concatenate(([True], ~merged)))
    lasts = np.concatenate((firsts[1:], [len(piece_va)])) - 1
    ext_file, ext_file_end = piece_file[firsts], piece_file_end[lasts]
    joint = np.concatenate((va_joins[lasts[:-1]], [False]))
    chain = np.cumsum(np.concatenate(([True], ~joint[:-1])))  # chain number, from 1
    chain_last = np.flatnonzero(np.diff(chain, append=0))  # last extent of each chain
    stretch_first = np.flatnonzero(np.concatenate(([True], ext_file_end[:-1] != ext_file[1:])))
    stretch_last = np.concatenate((stretch_first[1:], [len(firsts)])) - 1
    return _Extents(
        va=piece_va[firsts].tolist(),
        file=ext_file.tolist(),
        file_end=ext_file_end.tolist(),
        joint_after=joint.tolist(),
        chain_end=piece_end[lasts][chain_last][chain - 1].tolist(),
        stretches=list(zip(stretch_first.tolist(), stretch_last.tolist(), strict=True)),
    )


@guarded
def search(
    dump: Dump,
    pattern: bytes,
    va_start: int = 0,
    va_end: int = 1 << 64,
    limit: int | None = DEFAULT_HIT_LIMIT,
) -> SearchResult:
    """Every place ``pattern`` lies fully inside [va_start, va_end) in dumped data, in VA order,
    at most ``limit`` hits (None: all)."""
    if not pattern:
        raise ValueError("search pattern is empty")
    size = len(pattern)
    lo = np.uint64(min(max(va_start, 0), U64_MAX))
    hi = np.uint64(min(max(va_end, 0), U64_MAX))
    seg_va = dump.seg_va
    seg_end = seg_va + dump.seg_memsz
    # A PT_LOAD may end exactly at 2**64 (0 in uint64): held at 2**64 - 1 like ``hi``, so the
    # address space's very last byte is never searched, as before.
    seg_end = np.where((seg_end == 0) & (dump.seg_memsz != 0), np.uint64(U64_MAX), seg_end)
    first = int(np.searchsorted(seg_end, lo, side="right"))
    last = int(np.searchsorted(seg_va, hi, side="left"))
    window = slice(first, max(first, last))
    va = seg_va[window]
    data_end = va + dump.seg_filesz[window]
    data_end = np.where((data_end == 0) & (va != 0), np.uint64(U64_MAX), data_end)
    start = np.clip(va, lo, hi)
    split = np.clip(data_end, lo, hi)
    end = np.clip(seg_end[window], lo, hi)
    page = dump.page_size_bytes
    pages_searched = _page_count(start, split, page)
    holes_skipped = _page_count(split, end, page)

    bytes_searched = int((split - start).sum())
    has_data = split > start
    if not has_data.any():
        return SearchResult([], pages_searched, holes_skipped, bytes_searched, False)

    extents = _extents(dump, window, va, start, split, has_data)
    ext_va, ext_file, ext_file_end = extents.va, extents.file, extents.file_end
    mm = dump._mmap  # mmap.find searches the map in place, at C speed
    hit_vas: list[int] = []
    cap = U64_MAX if limit is None else limit
    truncated = False
    for first_ext, last_ext in extents.stretches:
        file_end = ext_file_end[last_ext]
        dump.guard.check(ext_file[first_ext])
        pos = mm.find(pattern, ext_file[first_ext], file_end)
        while pos >= 0 and len(hit_vas) <= cap:
            k = bisect.bisect_right(ext_file, pos, first_ext, last_ext + 1) - 1
            if pos + size <= ext_file_end[k]:  # else it runs over a VA gap in the file
                hit_vas.append(ext_va[k] + (pos - ext_file[k]))
            pos = mm.find(pattern, pos + 1, file_end)
        if extents.joint_after[last_ext] and len(hit_vas) <= cap:
            ev = ext_va[last_ext]
            joint_va = ev + (file_end - ext_file[last_ext])
            window_va = max(joint_va - (size - 1), ev)  # earlier starts crossed an earlier joint
            window_end = min(joint_va + size - 1, extents.chain_end[last_ext])
            data = bytes(dump.read_va(window_va, window_end - window_va))
            pos = data.find(pattern)
            while pos >= 0 and window_va + pos < joint_va:
                hit_vas.append(window_va + pos)
                pos = data.find(pattern, pos + 1)
        if len(hit_vas) > cap:  # one hit past the limit proves there are more
            del hit_vas[cap:]
            truncated = True
            break
    return SearchResult(
        hits=_with_pas(dump, hit_vas),
        pages_searched=pages_searched,
        holes_skipped=holes_skipped,
        bytes_searched=bytes_searched,
        truncated=truncated,
    )


def _with_pas(dump: Dump, hit_vas: list[int]) -> list[SearchHit]:
    """Hits with the PA of their first byte, the walker's: ``p_paddr`` + offset through the
    PA mask (``Dump.seg_pa`` + offset would be wrong past a multiple of 2**OAS)."""
    if not hit_vas:
        return []
    vas = np.array(hit_vas, dtype=np.uint64)
    seg = np.searchsorted(dump.seg_va, vas, side="right") - 1
    pas = dump.to_pa(dump.seg_pa_raw[seg] + (vas - dump.seg_va[seg]))
    return [SearchHit(va, pa) for va, pa in zip(hit_vas, pas.tolist(), strict=True)]


def next_hit_index(hits: list[SearchHit], va: int, forward: bool = True) -> int | None:
    """The hit after ``va`` (forward) or before it, wrapping around; None without hits."""
    if not hits:
        return None
    if forward:
        i = bisect.bisect_right(hits, va, key=lambda hit: hit.va)
        return i if i < len(hits) else 0
    i = bisect.bisect_left(hits, va, key=lambda hit: hit.va) - 1
    return i if i >= 0 else len(hits) - 1
