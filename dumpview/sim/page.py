"""The kernel's Rust ``Page`` API, mirrored: ``Page``, ``Owned<Page>`` and physical addresses.

This module owns page ownership on the Rust side (reference sheet section 4, seed 004):

- ``PageApi.alloc_page(flags)`` returns an ``OwnedPage`` (Rust ``Owned<Page>``); dropping it
  frees the page to the buddy allocator. ``PageApi.alloc_pages(order, flags)`` (Linux
  ``alloc_pages``) returns the head page of ``2**order`` contiguous pages as one ``OwnedPage``
  that remembers its order: dropping it frees the whole block.
- ``PageApi.into_phys(owned)`` consumes it and returns its physical address: ownership now
  travels as a number (e.g. inside a page-table entry). ``PageApi.from_phys(pa, order=0)`` takes
  it back, without checks as in Rust; in debug mode this simulation catches taking back a PA
  that is already owned, one that was never given away with ``into_phys``, or one given away
  with another order.
- ``PageApi.borrow_phys(pa)`` returns a borrowed ``Page`` only if the PFN is valid *and*
  ``page_is_ram`` (reserved-without-no-map RAM passes; no-map, MMIO and holes do not). There is
  no PageReserved check. ``borrow_phys_unchecked`` checks nothing.
- ``Page.with_pointer_into_page(off, length, f)`` raises ``EINVAL`` unless
  ``off <= PAGE_SIZE and length <= PAGE_SIZE and off + length <= PAGE_SIZE``.

A block of ``2**order`` pages is read and written as one run of u64 entries through
``Page.as_u64_block(order=...)``: a ``U64Block`` over each page's u64 array (the kernel's
linear map makes the pages contiguous; here each 16 KiB page has its own buffer).
``Page.as_u64_array(entries=n)`` gives the first ``n`` entries of one page (a 4 KiB table in
the first quarter of a 16 KiB page). The other accessors (``read``, ``write``, ``read_u64``,
``with_page_mapped``...) see the head page only. ``PageApi.given_away_order(pa)`` tells the order
a PA was given away with.

Touching the bytes of a page that is not System RAM (reached through ``borrow_phys_unchecked``)
raises ``EIO``: the kernel has no linear mapping for it. Use of a consumed ``OwnedPage`` (after
``into_phys`` or ``drop``) raises ``SimBug``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar

import numpy as np

from dumpview.sim.allocator import MAX_ORDER, BuddyAllocator
from dumpview.sim.errors import EINVAL, EIO, SimBug
from dumpview.sim.memory import ZERO_PAGE, PhysicalMemory
from formats.uat import ENTRIES_PER_TABLE, PAGE_SHIFT, PAGE_SIZE

T = TypeVar("T")

# Linux gfp flags (include/linux/gfp_types.h, recent kernels).
GFP_KERNEL = 0xCC0  # __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_ZERO = 0x100  # __GFP_ZERO

_U64_LIMIT = 1 << 64
_ENTRY_DTYPE = np.dtype("<u8")
_ZERO_ENTRIES = np.frombuffer(ZERO_PAGE, dtype=_ENTRY_DTYPE)  # read-only


def check_page_range(off: int, length: int) -> None:
    """The bounds rule of ``with_pointer_into_page``: EINVAL unless
    ``off <= PAGE_SIZE and length <= PAGE_SIZE and off + length <= PAGE_SIZE``
    (negative values are rejected too)."""
    if not (0 <= off <= PAGE_SIZE and 0 <= length <= PAGE_SIZE and off + length <= PAGE_SIZE):
        raise EINVAL(f"offset {off:#x} + length {length:#x} is outside the {PAGE_SIZE:#x} page")


def _check_order(order: int) -> None:
    if not 0 <= order <= MAX_ORDER:
        raise EINVAL(f"order {order} is outside 0..{MAX_ORDER}")


class U64Block:
    """The entries of ``2**order`` contiguous pages as one run of little-endian u64s, indexed
    ``0 .. len - 1``: the simulation's form of a driver casting ``page_address(head)`` to a
    ``u64`` array spanning a multi-page block (contiguous in the kernel's linear map; here each
    16 KiB page has its own buffer, so the run is made of one u64 array per page).

    ``parts`` alias the pages' bytes: writes through ``__setitem__`` and ``write_run`` land in
    memory. Read-only blocks (``writable=False``) may alias the shared zero page: do not keep
    them across writes. Indices outside the run raise ``EINVAL``.
    """

    __slots__ = ("_len", "_words", "parts")

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        """``parts``: one u64 array per page, every one but the last holding a full page."""
        if not parts or any(len(part) != ENTRIES_PER_TABLE for part in parts[:-1]):
            raise EINVAL("a u64 block needs full pages except for its last part")
        self.parts: tuple[np.ndarray, ...] = tuple(parts)
        self._len = sum(len(part) for part in self.parts)
        if sys.byteorder == "little":
            self._words: tuple[memoryview | np.ndarray, ...] = tuple(
                memoryview(part).cast("B").cast("Q") for part in self.parts
            )
        else:  # pragma: no cover - big-endian hosts read through numpy
            self._words = self.parts

    def __len__(self) -> int:
        return self._len

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self._len:
            raise EINVAL(f"entry index {index} is outside 0..{self._len - 1}")
        return index // ENTRIES_PER_TABLE, index % ENTRIES_PER_TABLE

    def __getitem__(self, index: int) -> int:
        part, i = self._locate(index)
        return int(self._words[part][i])

    def __setitem__(self, index: int, value: int) -> None:
        if not 0 <= value < _U64_LIMIT:
            raise EINVAL(f"value {value:#x} does not fit 64 bits")
        part, i = self._locate(index)
        self._words[part][i] = value

    def to_array(self) -> np.ndarray:
        """All entries as one u64 array: the page's own view for a one-page block (aliasing
        it), a copy otherwise."""
        if len(self.parts) == 1:
            return self.parts[0]
        return np.concatenate(self.parts)

    def read_run(self, start: int, count: int) -> np.ndarray:
        """Entries ``[start, start + count)`` as a u64 array (a view when they lie in one
        page, else a copy). EINVAL if the run leaves the block."""
        if count < 0 or not 0 <= start <= start + count <= self._len:
            raise EINVAL(f"entries {start}..{start + count} are outside 0..{self._len}")
        if count == 0:
            return np.zeros(0, dtype=_ENTRY_DTYPE)
        first, last = start // ENTRIES_PER_TABLE, (start + count - 1) // ENTRIES_PER_TABLE
        if first == last:
            off = start - first * ENTRIES_PER_TABLE
            return self.parts[first][off : off + count]
        return self.to_array()[start : start + count]

    def write_run(self, start: int, values: np.ndarray | int) -> None:
        """Store ``values`` (a u64 array) at ``[start, start + len(values))``; an int fills
        from ``start`` to the end of the block. EINVAL if the run leaves the block."""
        if isinstance(values, int):
            if not 0 <= start <= self._len:
                raise EINVAL(f"entry {start} is outside 0..{self._len}")
            values = np.full(self._len - start, values, dtype=_ENTRY_DTYPE)
        count = len(values)
        if not 0 <= start <= start + count <= self._len:
            raise EINVAL(f"entries {start}..{start + count} are outside 0..{self._len}")
        pos = 0
        while pos < count:
            part, i = divmod(start + pos, ENTRIES_PER_TABLE)
            chunk = min(len(self.parts[part]) - i, count - pos)
            self.parts[part][i : i + chunk] = values[pos : pos + chunk]
            pos += chunk


class Page:
    """A borrowed ``struct page`` (Rust ``&Page``): its physical address and its bytes."""

    __slots__ = ("_api", "_pfn")

    def __init__(self, api: PageApi, pfn: int) -> None:
        self._api = api
        self._pfn = pfn

    def _live_pfn(self) -> int:
        return self._pfn

    @property
    def pfn(self) -> int:
        return self._live_pfn()

    @property
    def pa(self) -> int:
        return self._live_pfn() << PAGE_SHIFT

    @property
    def order(self) -> int:
        """The allocation order this handle stands for (0 for a borrowed page)."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pa=0x{self._pfn << PAGE_SHIFT:x})"

    def _mapped_buffer(self) -> bytearray:
        """The page's writable backing; EIO unless it is System RAM."""
        pfn = self._live_pfn()
        memory = self._api.memory
        if not memory.page_is_ram(pfn):
            raise EIO(f"pa 0x{pfn << PAGE_SHIFT:x} is not System RAM: no linear mapping")
        return memory.page_buffer(pfn)

    def with_page_mapped(self, f: Callable[[memoryview], T]) -> T:
        """Call ``f`` with a writable view of the whole 16 KiB page; return its result."""
        return f(memoryview(self._mapped_buffer()))

    def with_pointer_into_page(self, off: int, length: int, f: Callable[[memoryview], T]) -> T:
        """Call ``f`` with a writable view of ``[off, off + length)``. EINVAL per the bounds
        rule (see ``check_page_range``)."""
        check_page_range(off, length)
        return f(memoryview(self._mapped_buffer())[off : off + length])

    def read(self, off: int, length: int) -> bytes:
        """Copy ``length`` bytes at ``off`` (does not allocate backing for unwritten pages)."""
        check_page_range(off, length)
        pfn = self._live_pfn()
        memory = self._api.memory
        if not memory.page_is_ram(pfn):
            raise EIO(f"pa 0x{pfn << PAGE_SHIFT:x} is not System RAM: no linear mapping")
        return bytes(memory.page_view(pfn)[off : off + length])

    def write(self, off: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``off``; EINVAL if it does not fit the page."""
        view = memoryview(data).cast("B")
        check_page_range(off, len(view))
        self._mapped_buffer()[off : off + len(view)] = view

    def contents(self) -> bytes:
        """The whole page (the shared zero page if never written)."""
        return self.read(0, PAGE_SIZE)

    def read_u64(self, index: int) -> int:
        """Entry ``index`` (0..2047) as a little-endian u64."""
        if not 0 <= index < ENTRIES_PER_TABLE:
            raise EINVAL(f"entry index {index} is outside 0..{ENTRIES_PER_TABLE - 1}")
        return int(self.as_u64_array(writable=False)[index])

    def write_u64(self, index: int, value: int) -> None:
        """Store ``value`` (must fit 64 bits) as entry ``index`` (0..2047)."""
        if not 0 <= index < ENTRIES_PER_TABLE:
            raise EINVAL(f"entry index {index} is outside 0..{ENTRIES_PER_TABLE - 1}")
        if not 0 <= value < _U64_LIMIT:
            raise EINVAL(f"value {value:#x} does not fit 64 bits")
        self.as_u64_array()[index] = value

    def as_u64_array(self, writable: bool = True, entries: int | None = None) -> np.ndarray:
        """The page as 2048 little-endian u64 entries, aliasing its bytes: the simulation's
        form of the driver casting ``with_pointer_into_page``'s pointer to ``&[Pte]``.
        ``entries`` keeps only the first ``entries`` of them (a 4 KiB table: 512); EINVAL
        outside 0..2048.

        ``writable=False`` does not allocate backing: an unwritten page gives a shared read-only
        zero array (do not keep it across writes to the page).
        """
        if entries is None:
            entries = ENTRIES_PER_TABLE
        elif not 0 <= entries <= ENTRIES_PER_TABLE:
            raise EINVAL(f"{entries} entries do not fit one page (0..{ENTRIES_PER_TABLE})")
        if writable:
            return np.frombuffer(self._mapped_buffer(), dtype=_ENTRY_DTYPE)[:entries]
        pfn = self._live_pfn()
        memory = self._api.memory
        if not memory.page_is_ram(pfn):
            raise EIO(f"pa 0x{pfn << PAGE_SHIFT:x} is not System RAM: no linear mapping")
        if not memory.is_written(pfn):
            return _ZERO_ENTRIES[:entries]
        return np.frombuffer(memory.page_view(pfn), dtype=_ENTRY_DTYPE)[:entries]

    def as_u64_block(
        self, writable: bool = True, entries: int | None = None, order: int | None = None
    ) -> U64Block:
        """The ``2**order`` pages starting at this one as one run of u64 entries (see
        ``U64Block``); ``order`` defaults to this handle's (an ``OwnedPage`` from
        ``alloc_pages`` remembers it; a borrowed page is order 0). ``entries`` keeps only the
        first ``entries`` (default: all ``2048 << order``).

        Each page is checked as ``as_u64_array`` checks it: EIO if one is not System RAM.
        EINVAL for a bad order or entry count.
        """
        pfn = self._live_pfn()
        if order is None:
            order = self.order
        _check_order(order)
        total = ENTRIES_PER_TABLE << order
        if entries is None:
            entries = total
        elif not 0 < entries <= total:
            raise EINVAL(f"{entries} entries do not fit an order-{order} block (1..{total})")
        parts = []
        for i in range(-(-entries // ENTRIES_PER_TABLE)):
            count = min(ENTRIES_PER_TABLE, entries - i * ENTRIES_PER_TABLE)
            page = self if i == 0 else Page(self._api, pfn + i)
            parts.append(page.as_u64_array(writable, entries=count))
        return U64Block(parts)


class OwnedPage(Page):
    """``Owned<Page>``: the single owner of an allocated page, or of the ``2**order`` block
    it heads when it comes from ``alloc_pages`` / ``from_phys(pa, order)``. ``drop`` (or
    leaving a ``with`` block) frees it with its order; ``PageApi.into_phys`` consumes it. Any
    use afterwards is a ``SimBug``."""

    __slots__ = ("_consumed_by", "_order")

    def __init__(self, api: PageApi, pfn: int, order: int = 0) -> None:
        super().__init__(api, pfn)
        self._consumed_by: str | None = None
        self._order = order

    @property
    def order(self) -> int:
        return self._order

    @property
    def size_bytes(self) -> int:
        """Bytes this handle owns: ``PAGE_SIZE << order``."""
        return PAGE_SIZE << self._order

    def _live_pfn(self) -> int:
        if self._consumed_by is not None:
            raise SimBug(
                f"use of Owned<Page> for pa 0x{self._pfn << PAGE_SHIFT:x} after {self._consumed_by}"
            )
        return self._pfn

    @property
    def alive(self) -> bool:
        """False once dropped or turned into a physical address."""
        return self._consumed_by is None

    def drop(self) -> None:
        """Free the page (the whole block for order > 0) to the allocator. A second drop is a
        SimBug."""
        pfn = self._live_pfn()
        self._consumed_by = "drop"
        self._api._release_owned(pfn)
        self._api.allocator.free(pfn, self._order)

    def __enter__(self) -> OwnedPage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._consumed_by is None:
            self.drop()


class PageApi:
    """The page layer of one simulated kernel: allocation, ownership, borrowing by PA.

    ``debug=True`` (default) keeps the bookkeeping that catches double ownership in
    ``from_phys``; with ``debug=False`` ``from_phys`` trusts its caller, as Rust's does, and a
    resulting double free is caught by the allocator instead.
    """

    def __init__(
        self, memory: PhysicalMemory, allocator: BuddyAllocator, debug: bool = True
    ) -> None:
        self.memory = memory
        self.allocator = allocator
        self.debug = debug
        self._owned: dict[int, int] = {}  # head pfn -> number of live OwnedPage objects
        self._given_away: dict[int, int] = {}  # head pfn turned into a physical address -> order

    # --- bookkeeping -----------------------------------------------------------------------

    def _take_owned(self, pfn: int, order: int = 0) -> OwnedPage:
        self._owned[pfn] = self._owned.get(pfn, 0) + 1
        return OwnedPage(self, pfn, order)

    def _release_owned(self, pfn: int) -> None:
        count = self._owned[pfn] - 1
        if count:
            self._owned[pfn] = count
        else:
            del self._owned[pfn]

    def owned_pages(self) -> list[int]:
        """Physical addresses of live ``OwnedPage`` objects, ascending (repeated if a PA is
        owned twice, which only ``debug=False`` allows)."""
        return [pfn << PAGE_SHIFT for pfn in sorted(self._owned) for _ in range(self._owned[pfn])]

    def given_away(self) -> list[int]:
        """Physical addresses handed out by ``into_phys`` and not taken back, ascending."""
        return [pfn << PAGE_SHIFT for pfn in sorted(self._given_away)]

    def is_given_away(self, pa: int) -> bool:
        """Whether ``pa``'s page is currently owned as a bare physical address (for a block,
        ``pa`` is its head page)."""
        return (pa >> PAGE_SHIFT) in self._given_away

    def given_away_order(self, pa: int) -> int | None:
        """The order ``pa`` was given away with by ``into_phys``, or None."""
        return self._given_away.get(pa >> PAGE_SHIFT)

    # --- Rust API ----------------------------------------------------------------------------

    def alloc_page(self, flags: int = GFP_KERNEL) -> OwnedPage:
        """``Page::alloc_page``: one page, zeroed when ``flags`` has ``GFP_ZERO``.
        ENOMEM when memory is exhausted."""
        pfn = self.allocator.alloc(0, zero=bool(flags & GFP_ZERO))
        return self._take_owned(pfn)

    def alloc_pages(self, order: int, flags: int = GFP_KERNEL) -> OwnedPage:
        """Linux ``alloc_pages(flags, order)``: ``2**order`` contiguous pages (all zeroed when
        ``flags`` has ``GFP_ZERO``) as one ``OwnedPage`` for the head page that remembers
        ``order``. ENOMEM when no block of that order is left, EINVAL for an order outside
        ``0..MAX_ORDER``."""
        _check_order(order)
        pfn = self.allocator.alloc(order, zero=bool(flags & GFP_ZERO))
        return self._take_owned(pfn, order)

    def into_phys(self, owned: OwnedPage) -> int:
        """``Page::into_phys``: consume ``owned``; return its physical address. SimBug if
        ``owned`` was already consumed."""
        pfn = owned._live_pfn()
        owned._consumed_by = "into_phys"
        self._release_owned(pfn)
        self._given_away[pfn] = owned.order
        return pfn << PAGE_SHIFT

    def from_phys(self, pa: int, order: int = 0) -> OwnedPage:
        """``Page::from_phys``: take ownership back from a physical address, as the head of
        a ``2**order`` block (``order`` is what the caller knows the block was allocated
        with, as a C caller passes it to ``free_pages``).

        Debug mode: SimBug if ``pa`` is not page aligned, is already owned by a live
        ``OwnedPage``, was never given away with ``into_phys``, or was given away with another
        order. Without debug a wrong order is caught by the allocator on drop.
        """
        pfn = pa >> PAGE_SHIFT
        if self.debug:
            if pa & (PAGE_SIZE - 1):
                raise SimBug(f"from_phys(0x{pa:x}): not a page address")
            if pfn in self._owned:
                raise SimBug(f"from_phys(0x{pa:x}): double ownership, the page is already owned")
            if pfn not in self._given_away:
                raise SimBug(
                    f"from_phys(0x{pa:x}): double ownership, the page was never given away "
                    "with into_phys"
                )
            if self._given_away[pfn] != order:
                raise SimBug(
                    f"from_phys(0x{pa:x}, order {order}): the block was given away with "
                    f"order {self._given_away[pfn]}"
                )
        else:
            _check_order(order)
        self._given_away.pop(pfn, None)
        return self._take_owned(pfn, order)

    def borrow_phys(self, pa: int) -> Page | None:
        """``Page::borrow_phys``: a borrowed page, or None unless the PFN is valid and is
        System RAM (reserved without no-map passes; no-map, MMIO and holes do not)."""
        pfn = pa >> PAGE_SHIFT
        if self.memory.pfn_valid(pfn) and self.memory.page_is_ram(pfn):
            return Page(self, pfn)
        return None

    def borrow_phys_unchecked(self, pa: int) -> Page:
        """``Page::borrow_phys_unchecked``: a borrowed page, no checks. Touching its bytes
        raises EIO if it is not System RAM."""
        return Page(self, pa >> PAGE_SHIFT)


__all__ = [
    "GFP_KERNEL",
    "GFP_ZERO",
    "OwnedPage",
    "Page",
    "PageApi",
    "U64Block",
    "check_page_range",
]
