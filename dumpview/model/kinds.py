"""What kind of mapping an entry is, for colouring and for the minimap: one rule, two speeds.

Owns the classification every view shares (entries table, ranges, memory map, minimap):

- ``empty``: no mapping; ``table``: points to a lower table; ``invalid``: a type the level
  does not allow;
- ``device``: a leaf whose memattr is a device type (never dumped: the walker skips MMIO);
- ``not-dumped``: a normal-memory leaf the walker could not borrow (no-map, not RAM);
- ``firmware``: a dumped leaf the GPU cannot reach (GPU view ``--``: firmware only);
- ``gpu``: a dumped leaf the GPU can access (bit 55 set and a GPU view other than ``--``);
- ``unprivileged`` / ``privileged`` (LPAE): a dumped leaf unprivileged accesses (an SMMU
  master's default) reach, or one only privileged accesses reach (AP[1] clear).

``entry_kind`` classifies one entry by its decoded type (so rebuilt leaves, whose type bits a
driver dump lost, classify too); ``leaf_kinds`` classifies arrays of leaf entries with numpy.
Both are total: no value raises.
"""

from __future__ import annotations

import numpy as np

from dumpview.model.entries import bulk_fields
from formats import entryformat, lpae, uat
from formats.entryformat import EntryFormat

EMPTY = "empty"
TABLE = "table"
INVALID = "invalid"
DEVICE = "device"
NOT_DUMPED = "not-dumped"
FIRMWARE = "firmware"
GPU = "gpu"
UNPRIVILEGED = "unprivileged"
PRIVILEGED = "privileged"

# Codes of leaf_kinds(), in increasing "worth showing" order (the minimap keeps the highest).
KIND_CODES: tuple[str, ...] = (EMPTY, GPU, UNPRIVILEGED, FIRMWARE, PRIVILEGED, DEVICE, NOT_DUMPED)
CODE = {name: i for i, name in enumerate(KIND_CODES)}

DESCRIPTIONS: dict[str, str] = {
    EMPTY: "no mapping",
    TABLE: "points to a lower-level table",
    INVALID: "an entry type this level does not allow",
    DEVICE: "device memory (MMIO): never dumped",
    NOT_DUMPED: "normal memory the walker could not borrow: not dumped",
    FIRMWARE: "firmware only (GPU view --), dumped",
    GPU: "GPU accessible (GPU view not --), dumped",
    UNPRIVILEGED: "unprivileged (device) accesses reach it (AP[1] set), dumped",
    PRIVILEGED: "only privileged accesses reach it (AP[1] clear), dumped",
}


def kinds_of(fmt: EntryFormat) -> tuple[str, ...]:
    """The leaf kinds a dump of this entry format can show, in ``KIND_CODES`` order."""
    reach = (GPU, FIRMWARE) if fmt is entryformat.UAT else (UNPRIVILEGED, PRIVILEGED)
    return tuple(k for k in KIND_CODES if k in (EMPTY, DEVICE, NOT_DUMPED) or k in reach)


# GPU_VIEW as a boolean lookup [AP][(UXN << 1) | PXN]: does the GPU reach the page at all?
_GPU_REACHES = np.array([[perm != "--" for perm in row] for row in uat.GPU_VIEW], dtype=bool)


def leaf_kind(pte: int, dumped: bool, fmt: EntryFormat = entryformat.UAT) -> str:
    """The kind of a leaf (page or block) entry whose page is ``dumped`` or not."""
    if fmt.memattr(pte) in fmt.device_memattrs:
        return DEVICE
    if not dumped:
        return NOT_DUMPED
    if fmt is not entryformat.UAT:
        return UNPRIVILEGED if pte & lpae.BIT_AP_UNPRIV else PRIVILEGED
    return GPU if uat.gpu_view(pte) != "--" else FIRMWARE


def entry_kind(
    type_name: str,
    is_leaf_level: bool,
    pte: int,
    dumped: bool | None,
    fmt: EntryFormat = entryformat.UAT,
) -> str:
    """The kind of any entry from its decoded type name ("empty", "table", "page",
    "block", ...); ``dumped`` is the page's state for leaves and blocks (None: unknown,
    coloured by attributes)."""
    if type_name == "empty":
        return EMPTY
    if type_name == "block" or (is_leaf_level and type_name == "page"):
        return leaf_kind(pte, dumped is not False, fmt)
    if not is_leaf_level:
        return TABLE if type_name == "table" else INVALID
    return INVALID


def leaf_kinds(
    ptes: np.ndarray, dumped: np.ndarray, fmt: EntryFormat = entryformat.UAT
) -> np.ndarray:
    """``leaf_kind`` over arrays: a uint8 code per entry (indices into ``KIND_CODES``)."""
    ptes = np.asarray(ptes, dtype=np.uint64)
    memattr = fmt.memattr(ptes)
    device = np.isin(memattr, np.array(sorted(fmt.device_memattrs), dtype=np.uint64))
    if fmt is not entryformat.UAT:
        unpriv = (ptes & np.uint64(lpae.BIT_AP_UNPRIV)) != 0
        out = np.where(unpriv, CODE[UNPRIVILEGED], CODE[PRIVILEGED]).astype(np.uint8)
    else:
        fields = bulk_fields(ptes)
        ap = fields["ap"].astype(np.intp)
        col = ((fields["uxn"] << np.uint64(1)) | fields["pxn"]).astype(np.intp)  # perm_index
        gpu = (fields["gpu_access"] != 0) & _GPU_REACHES[ap, col]
        out = np.where(gpu, CODE[GPU], CODE[FIRMWARE]).astype(np.uint8)
    out[~dumped.astype(bool)] = CODE[NOT_DUMPED]
    out[device] = CODE[DEVICE]
    return out
