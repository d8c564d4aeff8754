"""What kind of mapping an entry is, for colouring and for the minimap: one rule, two speeds.

Owns the classification every view shares (entries table, ranges, memory map, minimap):

- ``empty``: no mapping; ``table``: points to a lower table; ``invalid``: a type the level
  does not allow;
- ``device``: a leaf whose memattr is a device type (never dumped: the walker skips MMIO);
- ``not-dumped``: a normal-memory leaf the walker could not borrow (no-map, not RAM);
- ``firmware``: a dumped leaf the GPU cannot reach (GPU view ``--``: firmware only);
- ``gpu``: a dumped leaf the GPU can access (bit 55 set and a GPU view other than ``--``).

``entry_kind`` classifies one entry; ``leaf_kinds`` classifies arrays of leaf entries with numpy.
Both are total: no value raises.
"""

from __future__ import annotations

import numpy as np

from formats import uat

EMPTY = "empty"
TABLE = "table"
INVALID = "invalid"
DEVICE = "device"
NOT_DUMPED = "not-dumped"
FIRMWARE = "firmware"
GPU = "gpu"

# Codes of leaf_kinds(), in increasing "worth showing" order (the minimap keeps the highest).
KIND_CODES: tuple[str, ...] = (EMPTY, GPU, FIRMWARE, DEVICE, NOT_DUMPED)
CODE = {name: i for i, name in enumerate(KIND_CODES)}

DESCRIPTIONS: dict[str, str] = {
    EMPTY: "no mapping",
    TABLE: "points to a lower-level table",
    INVALID: "an entry type this level does not allow",
    DEVICE: "device memory (MMIO): never dumped",
    NOT_DUMPED: "normal memory the walker could not borrow: not dumped",
    FIRMWARE: "firmware only (GPU view --), dumped",
    GPU: "GPU accessible (GPU view not --), dumped",
}


# GPU_VIEW as a boolean lookup [AP][(UXN << 1) | PXN]: does the GPU reach the page at all?
_GPU_REACHES = np.array([[perm != "--" for perm in row] for row in uat.GPU_VIEW], dtype=bool)


def _memattr(pte: int) -> int:
    shift, width = uat.FIELDS["memattr"]
    return (pte >> shift) & ((1 << width) - 1)


def leaf_kind(pte: int, dumped: bool) -> str:
    """The kind of a leaf (page) entry whose page is ``dumped`` or not."""
    if _memattr(pte) in uat.DEVICE_MEMATTRS:
        return DEVICE
    if not dumped:
        return NOT_DUMPED
    return GPU if uat.gpu_view(pte) != "--" else FIRMWARE


def entry_kind(pte: int, is_leaf_level: bool, dumped: bool | None) -> str:
    """The kind of any entry; ``dumped`` is the page's state for leaves (None: unknown)."""
    entry_type = pte & uat.PTE_TYPE_MASK
    if entry_type == uat.PTE_EMPTY:
        return EMPTY
    if not is_leaf_level:
        return TABLE if entry_type == uat.PTE_TABLE else INVALID
    if entry_type != uat.PTE_PAGE:
        return INVALID
    return leaf_kind(pte, bool(dumped))


def leaf_kinds(ptes: np.ndarray, dumped: np.ndarray) -> np.ndarray:
    """``leaf_kind`` over arrays: a uint8 code per entry (indices into ``KIND_CODES``)."""
    ptes = ptes.astype(np.uint64, copy=False)
    shift, width = uat.FIELDS["memattr"]
    memattr = (ptes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
    device = np.isin(memattr, np.array(sorted(uat.DEVICE_MEMATTRS), dtype=np.uint64))
    ap = ((ptes >> np.uint64(6)) & np.uint64(3)).astype(np.intp)
    col = (
        (((ptes >> np.uint64(54)) & np.uint64(1)) << np.uint64(1))
        | ((ptes >> np.uint64(53)) & np.uint64(1))
    ).astype(np.intp)
    gpu = ((ptes & np.uint64(uat.BIT_GPU)) != 0) & _GPU_REACHES[ap, col]
    out = np.where(gpu, CODE[GPU], CODE[FIRMWARE]).astype(np.uint8)
    out[~dumped.astype(bool)] = CODE[NOT_DUMPED]
    out[device] = CODE[DEVICE]
    return out
