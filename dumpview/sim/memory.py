"""Simulated physical memory, laid out by a device-tree-like memory map.

This module owns the memory map (RAM banks from ``/memory``, ``/reserved-memory`` children with
and without ``no-map``, MMIO windows) and the bytes of physical RAM.

Facts modelled (reference sheet section 5):

- A reserved region *without* ``no-map`` stays System RAM: ``page_is_ram`` is true for it.
- A ``no-map`` region is not System RAM (``page_is_ram`` false), although it lies inside a RAM
  bank: ``pfn_valid`` is still true there.
- ``no-map`` and ``reusable`` are mutually exclusive.

``PhysicalMemory`` is the physical truth, not the kernel's view: it lets any address inside a RAM
bank be read and written (firmware writes no-map regions too). The kernel's restrictions are
applied one layer up, by ``dumpview.sim.page``. An address outside every RAM bank (MMIO, holes)
raises ``EIO``.

Backing is sparse: a page costs memory only once written (or handed out as a writable buffer);
unwritten RAM reads as zeros. Zeroing is explicit (``zero_page``), done by the allocator when
asked to. Page size is ``formats.uat.PAGE_SIZE`` (16 KiB); a PFN is ``pa >> PAGE_SHIFT``.
"""

from __future__ import annotations

import bisect
import itertools
import random
import struct
from dataclasses import dataclass

import numpy as np

from dumpview.sim.errors import EINVAL, EIO
from formats.uat import PAGE_SHIFT, PAGE_SIZE

PAGE_MASK = PAGE_SIZE - 1
ZERO_PAGE = bytes(PAGE_SIZE)

_U64 = struct.Struct("<Q")
_U64_LIMIT = 1 << 64


def _check_region(kind: str, name: str, base: int, size_bytes: int) -> None:
    """EINVAL unless the region is non-empty, non-negative and 16 KiB aligned."""
    label = f"{kind} {name!r}" if name else kind
    if size_bytes <= 0:
        raise EINVAL(f"{label} at 0x{base:x} has size {size_bytes} (must be > 0)")
    if base < 0:
        raise EINVAL(f"{label} has negative base {base}")
    if base & PAGE_MASK or size_bytes & PAGE_MASK:
        raise EINVAL(f"{label} 0x{base:x}+0x{size_bytes:x} is not {PAGE_SIZE // 1024} KiB aligned")


class _Span:
    """``[base, base + size_bytes)`` arithmetic shared by the memory-map records."""

    base: int
    size_bytes: int

    @property
    def end(self) -> int:
        return self.base + self.size_bytes

    def contains(self, pa: int) -> bool:
        return self.base <= pa < self.end


@dataclass(frozen=True)
class RamBank(_Span):
    """One ``/memory`` range: System RAM, ``[base, base + size_bytes)``."""

    base: int
    size_bytes: int


@dataclass(frozen=True)
class ReservedRegion(_Span):
    """A ``/reserved-memory`` child. Without ``no_map`` it is still System RAM."""

    name: str
    base: int
    size_bytes: int
    no_map: bool = False
    reusable: bool = False


@dataclass(frozen=True)
class MmioWindow(_Span):
    """A device register window: never RAM, never dumped."""

    name: str
    base: int
    size_bytes: int


Region = RamBank | ReservedRegion | MmioWindow


@dataclass(frozen=True)
class MemoryMap:
    """The device tree's view of physical addresses.

    ``classify`` precedence: MMIO, then a ``no-map`` region, then any other reserved region
    (when reserved regions overlap, the one with the lowest base wins), then RAM.
    """

    ram: tuple[RamBank, ...]
    reserved: tuple[ReservedRegion, ...] = ()
    mmio: tuple[MmioWindow, ...] = ()

    def validate(self) -> None:
        """Check the map; raise ``EINVAL`` naming the first offending region.

        Rejected: zero or negative sizes, regions not 16 KiB aligned, ``no-map`` together with
        ``reusable``, RAM banks or MMIO windows overlapping each other, a reserved region not
        entirely inside RAM.
        """
        for bank in self.ram:
            _check_region("RAM bank", "", bank.base, bank.size_bytes)
        for window in self.mmio:
            _check_region("MMIO window", window.name, window.base, window.size_bytes)
        for region in self.reserved:
            if region.no_map and region.reusable:
                raise EINVAL(
                    f"reserved region {region.name!r} at 0x{region.base:x}: no-map and "
                    "reusable are mutually exclusive"
                )
            _check_region("reserved region", region.name, region.base, region.size_bytes)

        spans: list[tuple[int, int, str]] = [
            (b.base, b.end, f"RAM bank 0x{b.base:x}") for b in self.ram
        ]
        spans += [(w.base, w.end, f"MMIO window {w.name!r}") for w in self.mmio]
        spans.sort()
        for (base_a, end_a, what_a), (base_b, _end_b, what_b) in itertools.pairwise(spans):
            if base_b < end_a:
                raise EINVAL(
                    f"{what_b} at 0x{base_b:x} overlaps {what_a} (0x{base_a:x}..0x{end_a:x})"
                )

        banks = sorted((b.base, b.end) for b in self.ram)
        for region in self.reserved:
            if not _covered(banks, region.base, region.end):
                raise EINVAL(
                    f"reserved region {region.name!r} 0x{region.base:x}..0x{region.end:x} "
                    "is not inside RAM"
                )

    def classify(self, pa: int) -> tuple[str, Region | None]:
        """What ``pa`` is: ``("mmio", window)``, ``("no-map", region)``,
        ``("reserved", region)`` (still RAM), ``("ram", bank)`` or ``("none", None)``."""
        for window in self.mmio:
            if window.contains(pa):
                return "mmio", window
        hits = sorted(
            (r for r in self.reserved if r.contains(pa)), key=lambda r: (not r.no_map, r.base)
        )
        if hits:
            return ("no-map" if hits[0].no_map else "reserved"), hits[0]
        for bank in self.ram:
            if bank.contains(pa):
                return "ram", bank
        return "none", None

    @property
    def ram_size_bytes(self) -> int:
        return sum(b.size_bytes for b in self.ram)


def _covered(sorted_spans: list[tuple[int, int]], base: int, end: int) -> bool:
    """Whether ``[base, end)`` is covered by the union of sorted, disjoint spans."""
    cursor = base
    for span_base, span_end in sorted_spans:
        if span_end <= cursor:
            continue
        if span_base > cursor:
            return False
        cursor = span_end
        if cursor >= end:
            return True
    return cursor >= end


class PhysicalMemory:
    """Sparse, byte-addressable physical RAM for one memory map.

    Failure modes: ``EIO`` for any access to a PA outside every RAM bank; ``EINVAL`` for a
    negative size or a value that does not fit 64 bits. Construction validates the map
    (``EINVAL``).
    """

    def __init__(self, memory_map: MemoryMap) -> None:
        memory_map.validate()
        self.memory_map = memory_map
        banks = sorted((b.base >> PAGE_SHIFT, b.end >> PAGE_SHIFT) for b in memory_map.ram)
        self._bank_start_pfns = [start for start, _ in banks]
        self._bank_end_pfns = [end for _, end in banks]
        nomap = sorted(
            (r.base >> PAGE_SHIFT, r.end >> PAGE_SHIFT) for r in memory_map.reserved if r.no_map
        )
        self._nomap_start_pfns = [start for start, _ in nomap]
        self._nomap_end_pfns = [end for _, end in nomap]
        # Overlapping no-map regions: running maximum of ends, for a bisect lookup.
        running = 0
        self._nomap_max_end_pfns: list[int] = []
        for end in self._nomap_end_pfns:
            running = max(running, end)
            self._nomap_max_end_pfns.append(running)
        self._pages: dict[int, bytearray] = {}

    # --- what a PFN is -------------------------------------------------------------------

    def pfn_valid(self, pfn: int) -> bool:
        """Whether ``pfn`` lies inside a RAM bank (a ``struct page`` exists for it)."""
        i = bisect.bisect_right(self._bank_start_pfns, pfn) - 1
        return i >= 0 and pfn < self._bank_end_pfns[i]

    def page_is_ram(self, pfn: int) -> bool:
        """Whether ``pfn`` is System RAM: in a RAM bank and not in a ``no-map`` region.

        A reserved region without ``no-map`` is RAM.
        """
        if not self.pfn_valid(pfn):
            return False
        i = bisect.bisect_right(self._nomap_start_pfns, pfn) - 1
        return i < 0 or pfn >= self._nomap_max_end_pfns[i]

    def page_is_ram_many(self, pfns: np.ndarray) -> np.ndarray:
        """``page_is_ram`` over an array of PFNs (a boolean array), vectorised."""
        pfns = np.asarray(pfns, dtype=np.uint64)
        out = np.zeros(pfns.shape, dtype=bool)
        for start, end in zip(self._bank_start_pfns, self._bank_end_pfns, strict=True):
            out |= (pfns >= np.uint64(start)) & (pfns < np.uint64(end))
        for start, end in zip(self._nomap_start_pfns, self._nomap_end_pfns, strict=True):
            out &= ~((pfns >= np.uint64(start)) & (pfns < np.uint64(end)))
        return out

    def classify(self, pa: int) -> tuple[str, Region | None]:
        """``MemoryMap.classify`` for this memory's map."""
        return self.memory_map.classify(pa)

    def _check_pfn(self, pfn: int) -> None:
        if not self.pfn_valid(pfn):
            raise EIO(f"pa 0x{pfn << PAGE_SHIFT:x} is not backed by RAM")

    # --- bytes ---------------------------------------------------------------------------

    def read(self, pa: int, size_bytes: int) -> bytes:
        """``size_bytes`` bytes at ``pa`` (may cross pages). EIO if any page is not RAM."""
        if size_bytes < 0:
            raise EINVAL(f"negative read size {size_bytes} at pa 0x{pa:x}")
        out = bytearray()
        cursor = pa
        end = pa + size_bytes
        while cursor < end:
            pfn = cursor >> PAGE_SHIFT
            off = cursor & PAGE_MASK
            chunk = min(PAGE_SIZE - off, end - cursor)
            buf = self._pages.get(pfn)
            if buf is None:
                self._check_pfn(pfn)
                out += bytes(chunk)
            else:
                out += buf[off : off + chunk]
            cursor += chunk
        return bytes(out)

    def write(self, pa: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``pa`` (may cross pages). EIO if any page is not RAM (checked
        before anything is written)."""
        view = memoryview(data).cast("B")
        end = pa + len(view)
        for pfn in range(pa >> PAGE_SHIFT, ((end + PAGE_MASK) >> PAGE_SHIFT) if view else 0):
            if pfn not in self._pages:
                self._check_pfn(pfn)
        cursor = pa
        pos = 0
        while cursor < end:
            off = cursor & PAGE_MASK
            chunk = min(PAGE_SIZE - off, end - cursor)
            self.page_buffer(cursor >> PAGE_SHIFT)[off : off + chunk] = view[pos : pos + chunk]
            cursor += chunk
            pos += chunk

    def read_u64(self, pa: int) -> int:
        """The little-endian u64 at ``pa``. EIO if not RAM."""
        off = pa & PAGE_MASK
        if off <= PAGE_SIZE - 8:
            buf = self._pages.get(pa >> PAGE_SHIFT)
            if buf is not None:
                return _U64.unpack_from(buf, off)[0]
            self._check_pfn(pa >> PAGE_SHIFT)
            return 0
        return int.from_bytes(self.read(pa, 8), "little")

    def write_u64(self, pa: int, value: int) -> None:
        """Store ``value`` as a little-endian u64 at ``pa``. EINVAL if it does not fit 64 bits,
        EIO if not RAM."""
        if not 0 <= value < _U64_LIMIT:
            raise EINVAL(f"value {value:#x} for pa 0x{pa:x} does not fit 64 bits")
        off = pa & PAGE_MASK
        if off <= PAGE_SIZE - 8:
            buf = self._pages.get(pa >> PAGE_SHIFT)
            if buf is None:
                buf = self.page_buffer(pa >> PAGE_SHIFT)
            _U64.pack_into(buf, off, value)
        else:
            self.write(pa, value.to_bytes(8, "little"))

    # --- whole pages ---------------------------------------------------------------------

    def page_buffer(self, pfn: int) -> bytearray:
        """The writable 16 KiB backing of ``pfn``, created (zeroed) on first use. The same
        object is returned for the life of this memory, so views into it stay valid.
        EIO if not RAM."""
        buf = self._pages.get(pfn)
        if buf is None:
            self._check_pfn(pfn)
            buf = bytearray(PAGE_SIZE)
            self._pages[pfn] = buf
        return buf

    def page_bytes(self, pfn: int) -> bytes:
        """A copy of the page's 16 KiB (the shared ``ZERO_PAGE`` if never written).
        EIO if not RAM."""
        buf = self._pages.get(pfn)
        if buf is None:
            self._check_pfn(pfn)
            return ZERO_PAGE
        return bytes(buf)

    def page_view(self, pfn: int) -> memoryview:
        """A read-only view of the page without copying (of ``ZERO_PAGE`` if never written).
        EIO if not RAM."""
        buf = self._pages.get(pfn)
        if buf is None:
            self._check_pfn(pfn)
            return memoryview(ZERO_PAGE)
        return memoryview(buf).toreadonly()

    def is_written(self, pfn: int) -> bool:
        """Whether ``pfn`` has backing storage (was written or handed out writable)."""
        return pfn in self._pages

    def zero_page(self, pfn: int) -> None:
        """Zero the page in place (existing views see the zeros). EIO if not RAM."""
        buf = self._pages.get(pfn)
        if buf is None:
            self._check_pfn(pfn)
            return
        buf[:] = ZERO_PAGE

    def written_pfns(self) -> int:
        """How many pages have backing storage."""
        return len(self._pages)

    def written_pfn_list(self) -> list[int]:
        """The PFNs with backing storage, ascending."""
        return sorted(self._pages)


__all__ = [
    "PAGE_MASK",
    "ZERO_PAGE",
    "MemoryMap",
    "MmioWindow",
    "PhysicalMemory",
    "RamBank",
    "Region",
    "ReservedRegion",
]


def stamp(kind: str, va: int, rng: random.Random, size: int = PAGE_SIZE) -> bytes:
    """Recognisable page content: a header naming the object, then structured filler."""
    header = f"{kind} @ {va:#x}\n".encode()
    words = np.random.default_rng(rng.getrandbits(32)).integers(0, 1 << 32, 64, dtype=np.uint32)
    body = (header + words.tobytes()).ljust(512, b"\0")
    return (body * (size // 512 + 1))[:size]
