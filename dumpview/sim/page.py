"""The kernel's Rust ``Page`` API, mirrored: ``Page``, ``Owned<Page>`` and physical addresses.

This module owns page ownership on the Rust side (reference sheet section 4, seed 004):

- ``PageApi.alloc_page(flags)`` returns an ``OwnedPage`` (Rust ``Owned<Page>``); dropping it
  frees the page to the buddy allocator.
- ``PageApi.into_phys(owned)`` consumes it and returns its physical address: ownership now
  travels as a number (e.g. inside a page-table entry). ``PageApi.from_phys(pa)`` takes it back,
  without checks as in Rust; in debug mode this simulation catches taking back a PA that is
  already owned, or one that was never given away with ``into_phys``.
- ``PageApi.borrow_phys(pa)`` returns a borrowed ``Page`` only if the PFN is valid *and*
  ``page_is_ram`` (reserved-without-no-map RAM passes; no-map, MMIO and holes do not). There is
  no PageReserved check. ``borrow_phys_unchecked`` checks nothing.
- ``Page.with_pointer_into_page(off, length, f)`` raises ``EINVAL`` unless
  ``off <= PAGE_SIZE and length <= PAGE_SIZE and off + length <= PAGE_SIZE``.

Touching the bytes of a page that is not System RAM (reached through ``borrow_phys_unchecked``)
raises ``EIO``: the kernel has no linear mapping for it. Use of a consumed ``OwnedPage`` (after
``into_phys`` or ``drop``) raises ``SimBug``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import numpy as np

from dumpview.sim.allocator import BuddyAllocator
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

    def as_u64_array(self, writable: bool = True) -> np.ndarray:
        """The page as 2048 little-endian u64 entries, aliasing its bytes: the simulation's
        form of the driver casting ``with_pointer_into_page``'s pointer to ``&[Pte]``.

        ``writable=False`` does not allocate backing: an unwritten page gives a shared read-only
        zero array (do not keep it across writes to the page).
        """
        if writable:
            return np.frombuffer(self._mapped_buffer(), dtype=_ENTRY_DTYPE)
        pfn = self._live_pfn()
        memory = self._api.memory
        if not memory.page_is_ram(pfn):
            raise EIO(f"pa 0x{pfn << PAGE_SHIFT:x} is not System RAM: no linear mapping")
        if not memory.is_written(pfn):
            return _ZERO_ENTRIES
        return np.frombuffer(memory.page_view(pfn), dtype=_ENTRY_DTYPE)


class OwnedPage(Page):
    """``Owned<Page>``: the single owner of an allocated page. ``drop`` (or leaving a ``with``
    block) frees it; ``PageApi.into_phys`` consumes it. Any use afterwards is a ``SimBug``."""

    __slots__ = ("_consumed_by",)

    def __init__(self, api: PageApi, pfn: int) -> None:
        super().__init__(api, pfn)
        self._consumed_by: str | None = None

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
        """Free the page to the allocator. A second drop is a SimBug."""
        pfn = self._live_pfn()
        self._consumed_by = "drop"
        self._api._release_owned(pfn)
        self._api.allocator.free(pfn, 0)

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
        self._owned: dict[int, int] = {}  # pfn -> number of live OwnedPage objects
        self._given_away: set[int] = set()  # pfns turned into physical addresses

    # --- bookkeeping -----------------------------------------------------------------------

    def _take_owned(self, pfn: int) -> OwnedPage:
        self._owned[pfn] = self._owned.get(pfn, 0) + 1
        return OwnedPage(self, pfn)

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
        """Whether ``pa``'s page is currently owned as a bare physical address."""
        return (pa >> PAGE_SHIFT) in self._given_away

    # --- Rust API ----------------------------------------------------------------------------

    def alloc_page(self, flags: int = GFP_KERNEL) -> OwnedPage:
        """``Page::alloc_page``: one page, zeroed when ``flags`` has ``GFP_ZERO``.
        ENOMEM when memory is exhausted."""
        pfn = self.allocator.alloc(0, zero=bool(flags & GFP_ZERO))
        return self._take_owned(pfn)

    def into_phys(self, owned: OwnedPage) -> int:
        """``Page::into_phys``: consume ``owned``; return its physical address. SimBug if
        ``owned`` was already consumed."""
        pfn = owned._live_pfn()
        owned._consumed_by = "into_phys"
        self._release_owned(pfn)
        self._given_away.add(pfn)
        return pfn << PAGE_SHIFT

    def from_phys(self, pa: int) -> OwnedPage:
        """``Page::from_phys``: take ownership back from a physical address.

        Debug mode: SimBug if ``pa`` is not page aligned, is already owned by a live
        ``OwnedPage``, or was never given away with ``into_phys``.
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
        self._given_away.discard(pfn)
        return self._take_owned(pfn)

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
    "check_page_range",
]
