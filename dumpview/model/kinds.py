"""What kind of mapping an entry is, for colouring and for the minimap: one rule, two speeds.

Owns the classification every view shares (entries table, ranges, memory map, minimap):

- ``empty``: no mapping; ``table``: points to a lower table; ``invalid``: a type the level
  does not allow;
- ``device``: a leaf whose memattr is a device type (never dumped: the walker skips MMIO);
- ``not-dumped``: a normal-memory leaf the walker could not borrow (no-map, not RAM);
- ``firmware``: a dumped leaf the GPU cannot reach (GPU view ``--``: firmware only);
- ``gpu``: a dumped leaf the GPU can access (bit 55 set and a GPU view other than ``--``).

``entry_kind`` classifies one entry by its decoded type (so rebuilt leaves, whose type bits a
driver dump lost, classify too); ``leaf_kinds`` classifies arrays of leaf entries with numpy.
Both are total: no value raises.
"""

from __future__ import annotations

import numpy as np

from dumpview.model.entries import bulk_fields, field_value
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


def leaf_kind(pte: int, dumped: bool) -> str:
    """The kind of a leaf (page) entry whose page is ``dumped`` or not."""
    if field_value(pte, "memattr") in uat.DEVICE_MEMATTRS:
        return DEVICE
    if not dumped:
        return NOT_DUMPED
    return GPU if uat.gpu_view(pte) != "--" else FIRMWARE


def entry_kind(type_name: str, is_leaf_level: bool, pte: int, dumped: bool | None) -> str:
    """The kind of any entry from its decoded type name ("empty", "table", "page", ...);
    ``dumped`` is the page's state for leaves (None: unknown, coloured by attributes)."""
    if type_name == "empty":
        return EMPTY
    if not is_leaf_level:
        return TABLE if type_name == "table" else INVALID
    if type_name != "page":
        return INVALID
    return leaf_kind(pte, dumped is not False)


def leaf_kinds(ptes: np.ndarray, dumped: np.ndarray) -> np.ndarray:
    """``leaf_kind`` over arrays: a uint8 code per entry (indices into ``KIND_CODES``)."""
    fields = bulk_fields(ptes)
    device = np.isin(fields["memattr"], np.array(sorted(uat.DEVICE_MEMATTRS), dtype=np.uint64))
    ap = fields["ap"].astype(np.intp)
    col = ((fields["uxn"] << np.uint64(1)) | fields["pxn"]).astype(np.intp)  # as perm_index
    gpu = (fields["gpu_access"] != 0) & _GPU_REACHES[ap, col]
    out = np.where(gpu, CODE[GPU], CODE[FIRMWARE]).astype(np.uint8)
    out[~dumped.astype(bool)] = CODE[NOT_DUMPED]
    out[device] = CODE[DEVICE]
    return out
