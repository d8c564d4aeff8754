"""A buddy page allocator over simulated physical memory.

This module owns which physical pages are free and which are handed out. It manages the RAM
banks minus every reserved region (``no-map`` or not: reserved memory is never handed out),
in blocks of ``2**order`` pages for orders ``0..MAX_ORDER``. Blocks are split on allocation and
merged with their buddy on free, as Linux's buddy allocator does.

Determinism: ``alloc`` takes the smallest order that has a free block and, inside that order,
the block with the lowest address. Splits return the lower half and keep the upper halves free.

Failure modes: ``ENOMEM`` when no block of the requested order is left; ``EINVAL`` for an order
outside ``0..MAX_ORDER``; ``SimBug`` (naming the PA) for a double free, for freeing a PFN that is
not the head of an allocated block, or for freeing with a different order than allocated.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from dumpview.sim.errors import EINVAL, ENOMEM, SimBug
from dumpview.sim.memory import PhysicalMemory
from formats.uat import PAGE_SHIFT

MAX_ORDER = 10  # the largest block is 2**10 pages (16 MiB with 16 KiB pages)


@dataclass(frozen=True)
class AllocatorStats:
    """A snapshot of the allocator's counters. Page counts are in 16 KiB pages."""

    free_blocks_per_order: tuple[int, ...]
    free_pages_per_order: tuple[int, ...]
    free_pages: int
    allocated_pages: int
    total_pages: int
    allocations: int
    frees: int
    splits: int
    merges: int


def _managed_pfn_ranges(memory: PhysicalMemory) -> list[tuple[int, int]]:
    """[start_pfn, end_pfn) spans of RAM not covered by any reserved region, ascending."""
    holes = sorted((r.base >> PAGE_SHIFT, r.end >> PAGE_SHIFT) for r in memory.memory_map.reserved)
    out: list[tuple[int, int]] = []
    for bank in sorted(memory.memory_map.ram, key=lambda b: b.base):
        cursor = bank.base >> PAGE_SHIFT
        bank_end = bank.end >> PAGE_SHIFT
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= bank_end:
                continue
            if hole_start > cursor:
                out.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
        if cursor < bank_end:
            out.append((cursor, bank_end))
    return out


class BuddyAllocator:
    """Buddy allocator of PFNs. Construction is O(number of maximal aligned blocks)."""

    def __init__(self, memory: PhysicalMemory) -> None:
        self.memory = memory
        self._free: list[set[int]] = [set() for _ in range(MAX_ORDER + 1)]
        self._heaps: list[list[int]] = [[] for _ in range(MAX_ORDER + 1)]
        self._allocated: dict[int, int] = {}  # head pfn -> order
        self._allocated_pages = 0
        self._allocations = 0
        self._frees = 0
        self._splits = 0
        self._merges = 0
        self.managed_ranges = _managed_pfn_ranges(memory)
        self.total_pages = 0
        for start, end in self.managed_ranges:
            self.total_pages += end - start
            pfn = start
            while pfn < end:
                order = MAX_ORDER
                while order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > end):
                    order -= 1
                self._free[order].add(pfn)
                self._heaps[order].append(pfn)
                pfn += 1 << order
        for heap in self._heaps:
            heapq.heapify(heap)

    # --- internals -----------------------------------------------------------------------

    def _push(self, order: int, pfn: int) -> None:
        self._free[order].add(pfn)
        heap = self._heaps[order]
        heapq.heappush(heap, pfn)
        if len(heap) > 2 * len(self._free[order]) + 64:
            # Drop stale entries left by merges (lazy deletion).
            self._heaps[order] = sorted(self._free[order])

    def _pop_lowest(self, order: int) -> int | None:
        heap = self._heaps[order]
        free = self._free[order]
        while heap:
            pfn = heapq.heappop(heap)
            if pfn in free:
                free.remove(pfn)
                return pfn
        return None

    def _free_block_containing(self, pfn: int) -> tuple[int, int] | None:
        for order in range(MAX_ORDER + 1):
            head = pfn & ~((1 << order) - 1)
            if head in self._free[order]:
                return head, order
        return None

    # --- API -----------------------------------------------------------------------------

    def alloc(self, order: int = 0, zero: bool = False) -> int:
        """Allocate ``2**order`` contiguous pages; return the first PFN.

        ``zero=True`` zeroes them in physical memory. ENOMEM when no block is left, EINVAL for
        a bad order.
        """
        if not 0 <= order <= MAX_ORDER:
            raise EINVAL(f"order {order} is outside 0..{MAX_ORDER}")
        for found_order in range(order, MAX_ORDER + 1):
            pfn = self._pop_lowest(found_order)
            if pfn is not None:
                break
        else:
            raise ENOMEM(
                f"no free block of order {order} ({self.free_pages} of {self.total_pages} "
                "pages free)"
            )
        while found_order > order:
            found_order -= 1
            self._push(found_order, pfn + (1 << found_order))
            self._splits += 1
        self._allocated[pfn] = order
        self._allocated_pages += 1 << order
        self._allocations += 1
        if zero:
            for page in range(pfn, pfn + (1 << order)):
                self.memory.zero_page(page)
        return pfn

    def free(self, pfn: int, order: int = 0) -> None:
        """Return a block obtained from ``alloc(order)``; merges it with free buddies.

        SimBug on a double free, a PFN that is not an allocated block head, or an order that
        differs from the allocation's.
        """
        allocated_order = self._allocated.get(pfn)
        pa = pfn << PAGE_SHIFT
        if allocated_order is None:
            free_block = self._free_block_containing(pfn)
            if free_block is not None:
                raise SimBug(
                    f"double free of pa 0x{pa:x} (pfn 0x{pfn:x}, order {order}): already free "
                    f"in the order-{free_block[1]} block at pa 0x{free_block[0] << PAGE_SHIFT:x}"
                )
            raise SimBug(
                f"free of pa 0x{pa:x} (pfn 0x{pfn:x}, order {order}): not an allocated block"
            )
        if allocated_order != order:
            raise SimBug(
                f"free of pa 0x{pa:x} (pfn 0x{pfn:x}) with order {order}, "
                f"allocated with order {allocated_order}"
            )
        del self._allocated[pfn]
        self._allocated_pages -= 1 << order
        self._frees += 1
        while order < MAX_ORDER:
            buddy = pfn ^ (1 << order)
            if buddy not in self._free[order]:
                break
            self._free[order].remove(buddy)  # its heap entry goes stale
            self._merges += 1
            pfn = min(pfn, buddy)
            order += 1
        self._push(order, pfn)

    def is_allocated(self, pfn: int) -> bool:
        """Whether ``pfn`` is the head of an allocated block."""
        return pfn in self._allocated

    def allocated_order(self, pfn: int) -> int | None:
        """The order ``pfn`` was allocated with, or None if it is not an allocated block head."""
        return self._allocated.get(pfn)

    def is_free(self, pfn: int) -> bool:
        """Whether ``pfn`` lies in a free block (could be handed out by ``alloc``)."""
        return self._free_block_containing(pfn) is not None

    def is_managed(self, pfn: int) -> bool:
        """Whether the allocator manages ``pfn`` (RAM outside every reserved region)."""
        return any(start <= pfn < end for start, end in self.managed_ranges)

    @property
    def free_pages(self) -> int:
        return self.total_pages - self._allocated_pages

    def leaks(self) -> list[tuple[int, int]]:
        """Every still-allocated block as ``(pfn, order)``, ascending by PFN."""
        return sorted(self._allocated.items())

    def stats(self) -> AllocatorStats:
        """Counters and free-list sizes (computed, not cached)."""
        blocks = tuple(len(free) for free in self._free)
        pages = tuple(count << order for order, count in enumerate(blocks))
        return AllocatorStats(
            free_blocks_per_order=blocks,
            free_pages_per_order=pages,
            free_pages=sum(pages),
            allocated_pages=self._allocated_pages,
            total_pages=self.total_pages,
            allocations=self._allocations,
            frees=self._frees,
            splits=self._splits,
            merges=self._merges,
        )

    def teardown(self) -> list[tuple[int, int]]:
        """End of simulation: the leaked blocks (see ``leaks``). Nothing is freed."""
        return self.leaks()


__all__ = ["MAX_ORDER", "AllocatorStats", "BuddyAllocator"]
