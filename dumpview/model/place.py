"""Where an address sits: the named region of its address space and the mappings around it.

Owns two queries over a ``Dump`` for one VA of one context (None: the dumped one):

- ``region_of``: the named part of the address space the VA falls in. For the UAT kernel
  context (a borrowed TTB walking the upper half, or a driver dump, which is always that), the
  driver's layout of ``formats.uat.UAT_KERNEL_VA_LAYOUT`` (firmware, PRIV, GPU_RO, SHARED,
  SHARED_RO, GPU, RTKIT, TIMESTAMP, MMIO; ``kernel-gap`` between them, ``beyond-kernel-range``
  above the driver's range); for a UAT user VM (an owned TTB) ``user`` inside its managed range,
  ``user-unmanaged`` outside it; for any other space the extension's managed range (``managed``
  or ``outside-managed``), ``space`` when the dump records none; ``outside`` for a VA outside the
  context's VA half. ``AddressRegion.name`` is a stable token (the triage signature uses it).
- ``nearest_mappings``: the mapped extents (runs of VA-contiguous mapped pages, whatever their
  PAs and attributes) holding the VA and just below and above it, with the distance in bytes and
  the walk of the page next to the VA (its PA, attributes, dumped or why not). The dumped
  context's extents come from the PT_LOADs, another context's from its tables.

Neither raises for a dump that opened: a context the dump does not carry is the region
``outside`` with no mappings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.numbers import address, approx_size
from formats import entryformat, uat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump
    from dumpview.model.extension import Space
    from dumpview.model.translate import Translation

SOURCE_LAYOUT = "driver-layout"  # formats.uat.UAT_KERNEL_VA_LAYOUT
SOURCE_EXTENSION = "extension"  # the extension's space record (its managed range)
SOURCE_NONE = "none"  # nothing names this part of the space

U64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class AddressRegion:
    """The named part of an address space a VA falls in: ``name`` a stable token ("PRIV",
    "user", "managed", "outside", ...), ``[va_start, va_end)`` its extent (None when it has
    none: ``outside``), ``context`` the address space (None: the dumped one), ``source`` where
    the name comes from, ``description`` one phrase for a person."""

    name: str
    va_start: int | None
    va_end: int | None
    context: int | None
    source: str
    description: str

    def to_dict(self) -> dict:
        """JSON-ready (schema ``addressRegion``)."""
        return {
            "name": self.name,
            "va_start": None if self.va_start is None else f"{self.va_start:#x}",
            "va_end": None if self.va_end is None else f"{self.va_end:#x}",
            "context": self.context,
            "source": self.source,
            "description": self.description,
        }


@dataclass(frozen=True)
class NearbyMapping:
    """A mapped extent near a VA: ``[va_start, va_end)`` of ``context`` (None: the dumped one),
    ``side`` "inside" (it holds the VA), "below" or "above", ``distance_bytes`` from the VA
    (inside: how far into it; below: how far past its end; above: how far before its start)
    and ``edge``, the walk of its page
    nearest the VA (its PA, attributes and whether it has data)."""

    side: str
    va_start: int
    va_end: int
    context: int | None
    distance_bytes: int
    edge: Translation

    @property
    def edge_va(self) -> int:
        """The VA of the page ``edge`` walks (where a person would go)."""
        return self.edge.va

    def phrase(self) -> str:
        """ "0x40 bytes past the end of 0x…-0x…", "0x40 bytes into …", "0x4000 bytes before …"."""
        span = f"{address(self.va_start)}-{address(self.va_end)}"
        distance = _distance(self.distance_bytes)
        if self.side == "inside":
            return f"{distance} into {span}"
        if self.side == "below":
            return (
                f"{distance} past the end of {span}"
                if self.distance_bytes
                else (f"just past the end of {span}")
            )
        return f"{distance} before {span}"

    def to_dict(self) -> dict:
        """JSON-ready (schema ``nearbyMapping``): the extent, the distance and its edge page."""
        from dumpview.model.translate import walk_state

        edge = self.edge
        state = walk_state(edge)
        leaf = edge.leaf
        return {
            "side": self.side,
            "va_start": f"{self.va_start:#x}",
            "va_end": f"{self.va_end:#x}",
            "context": self.context,
            "distance_bytes": self.distance_bytes,
            "edge_va": f"{edge.va:#x}",
            "edge_pa": None if edge.pa is None else f"{edge.pa:#x}",
            "memattr_name": None if leaf is None else leaf.memattr_name,
            "permissions": None if leaf is None else leaf.permissions,
            "dumped": None if state is None else state[0],
            "reason": None if state is None else state[1],
        }


def _distance(size_bytes: int) -> str:
    """ "0x40 bytes", with the size beside it from 1 KiB: "0x7fff8020 bytes (~2.0G)"."""
    text = f"{size_bytes:#x} byte{'' if size_bytes == 1 else 's'}"
    return text if size_bytes < 1024 else f"{text} ({approx_size(size_bytes)})"


# ---- the region -------------------------------------------------------------------------------


def _space(dump: Dump, context: int | None) -> Space | None:
    extension = dump.extension
    spaces = extension.spaces if extension is not None else ()
    if not spaces:
        return None
    if context is None:
        return spaces[0]
    return next((s for s in spaces if s.context == context), None)


def _carries(dump: Dump, context: int | None) -> bool:
    """Whether ``context`` (None: the dumped one) is an address space of the dump."""
    from dumpview.model.contexts import context_numbers

    return context is None or context in context_numbers(dump)


def half_of(dump: Dump, context: int | None = None) -> tuple[int, int]:
    """[start, end) of the VA half ``context`` walks (None: the dumped context's); end may be
    2**64."""
    geometry = dump.geometry
    space = _space(dump, context)
    base = geometry.va_base if space is None else space.va_start
    start = base & ~geometry.ias_mask & U64_MAX
    return start, start + (1 << geometry.ias)


def _is_uat_kernel(dump: Dump, space: Space | None) -> bool:
    if dump.entry_format is not entryformat.UAT:
        return False
    if space is None:  # a driver dump: the kernel context, upper half
        return dump.geometry.va_base & ~dump.geometry.ias_mask == uat.UAT_VA_BASE_UPPER
    return not space.ttb_owned and space.va_start & ~dump.geometry.ias_mask == (
        uat.UAT_VA_BASE_UPPER
    )


def region_of(dump: Dump, va: int, context: int | None = None) -> AddressRegion:
    """The named region ``va`` falls in, in ``context``'s address space (None: the dumped one):
    see the module docstring for the names."""
    if not _carries(dump, context):
        return AddressRegion(
            "outside", None, None, context, SOURCE_NONE, f"the dump has no context {context}"
        )
    start, end = half_of(dump, context)
    if not start <= va < end:
        what = "the dumped context's" if context is None else f"context {context}'s"
        return AddressRegion(
            "outside", None, None, context, SOURCE_NONE,
            f"outside {what} VA half {address(start)}..{address(end - 1)}",
        )  # fmt: skip
    space = _space(dump, context)
    if _is_uat_kernel(dump, space):
        return _kernel_region(va, context)
    if dump.entry_format is entryformat.UAT and (space is None or space.ttb_owned):
        managed = (uat.UAT_USER_VA_START, uat.UAT_USER_VA_END)
        source = SOURCE_LAYOUT
        if space is not None and space.managed_va_size_bytes:
            managed = (space.managed_va_start, space.managed_va_start + space.managed_va_size_bytes)
            source = SOURCE_EXTENSION
        who = "a user VM" if context is None else f"user context {context}"
        span = f"{address(managed[0])}-{address(managed[1])}"
        if managed[0] <= va < managed[1]:
            return AddressRegion("user", *managed, context, source, f"{who}'s GPU VA range {span}")
        return AddressRegion(
            "user-unmanaged", start, end, context, source,
            f"{who}'s VA half, outside the range the driver manages ({span})",
        )  # fmt: skip
    if space is None or not space.managed_va_size_bytes:
        return AddressRegion(
            "space", start, end, context, SOURCE_NONE,
            "the address space (the dump records no managed range)",
        )  # fmt: skip
    lo = space.managed_va_start
    hi = lo + space.managed_va_size_bytes
    span = f"{address(lo)}-{address(hi)}"
    if lo <= va < hi:
        return AddressRegion(
            "managed", lo, hi, context, SOURCE_EXTENSION, f"the range the driver manages ({span})"
        )
    return AddressRegion(
        "outside-managed", start, end, context, SOURCE_EXTENSION,
        f"outside the range the driver manages ({span})",
    )  # fmt: skip


def _kernel_region(va: int, context: int | None) -> AddressRegion:
    part = uat.kernel_va_range(va)
    if part is not None:
        what = part.summary
        if part.prot is not None:
            what = f"the driver's {part.name} range ({part.prot}): {part.summary}"
        return AddressRegion(part.name, part.va_start, part.va_end, context, SOURCE_LAYOUT, what)
    if uat.UAT_KERNEL_VA_START <= va < uat.UAT_KERNEL_VA_END:
        return AddressRegion(
            "kernel-gap", uat.UAT_KERNEL_VA_START, uat.UAT_KERNEL_VA_END, context, SOURCE_LAYOUT,
            "inside the driver's range but in none of its named parts",
        )  # fmt: skip
    return AddressRegion(
        "beyond-kernel-range", uat.UAT_KERNEL_VA_END, 1 << 64, context, SOURCE_LAYOUT,
        f"above the driver's range (which ends at {address(uat.UAT_KERNEL_VA_END)}): "
        "neither the driver nor the firmware maps here",
    )  # fmt: skip


# ---- the mappings around it -------------------------------------------------------------------


@dataclass(frozen=True)
class Nearest:
    """The mapped extents around a VA: the one holding it (None when unmapped) and the nearest
    below and above (None when there is none)."""

    inside: NearbyMapping | None
    below: NearbyMapping | None
    above: NearbyMapping | None

    def all(self) -> list[NearbyMapping]:
        return [m for m in (self.inside, self.below, self.above) if m is not None]


def _extents(dump: Dump, context: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(starts, exclusive ends; 0 for 2**64) of the mapped pieces of ``context``, in VA order:
    the PT_LOADs of the dumped context; for another, a piece per page entry and one per block
    entry of its tables (``TablesIndex.leaf_runs``: never the pages a block claims)."""
    from dumpview.model.contexts import is_dumped_context

    if is_dumped_context(dump, context):
        keep = dump.seg_memsz != 0
        return dump.seg_va[keep], (dump.seg_va + dump.seg_memsz)[keep]
    index = dump.tables_index
    if index is None:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    va, _pte, _level, block_va, block_span, _block_pte, _block_level = index.leaf_runs(context)
    starts = np.concatenate((va, block_va)).astype(np.uint64)
    ends = np.concatenate((va + np.uint64(dump.page_size_bytes), block_va + block_span))
    order = np.argsort(starts, kind="stable")
    return starts[order], ends.astype(np.uint64)[order]


def nearest_mappings(dump: Dump, va: int, context: int | None = None) -> Nearest:
    """The mapped extents holding ``va`` and nearest below and above it, in ``context``'s
    address space (None: the dumped one); see the module docstring."""
    if not _carries(dump, context) or not 0 <= va <= U64_MAX:
        return Nearest(None, None, None)
    starts, ends = _extents(dump, context)
    n = len(starts)
    if not n:
        return Nearest(None, None, None)
    # A new extent starts wherever a piece does not begin at the end of the one before.
    firsts = np.flatnonzero(np.concatenate(([True], starts[1:] != ends[:-1])))

    def extent(piece: int) -> tuple[int, int]:
        k = int(np.searchsorted(firsts, piece, side="right")) - 1
        last = int(firsts[k + 1]) - 1 if k + 1 < len(firsts) else n - 1
        return int(starts[firsts[k]]), (int(ends[last]) - 1 & U64_MAX) + 1

    def mapping(side: str, lo: int, hi: int, distance: int, edge_va: int) -> NearbyMapping:
        edge = dump.translate(edge_va, context)
        return NearbyMapping(side, lo, hi, context, distance, edge)

    page = dump.page_size_bytes
    i = int(np.searchsorted(starts, np.uint64(va), side="right")) - 1
    inside = below = above = None
    if i >= 0 and va <= (int(ends[i]) - 1) & U64_MAX:
        lo, hi = extent(i)
        inside = mapping("inside", lo, hi, va - lo, va)
        first = int(np.searchsorted(starts, np.uint64(lo)))
        i_below, i_above = first - 1, int(np.searchsorted(starts, np.uint64(hi - 1), "right"))
    else:
        i_below, i_above = i, i + 1
    if i_below >= 0:
        lo, hi = extent(i_below)
        below = mapping("below", lo, hi, va - hi, max(lo, hi - page))
    if i_above < n:
        lo, hi = extent(i_above)
        above = mapping("above", lo, hi, lo - va, lo)
    return Nearest(inside, below, above)
