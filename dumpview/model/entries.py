"""Decoding UAT entries: one entry field by field, and whole table pages in bulk (numpy).

Owns the presentation-neutral meaning of an entry: every field of ``formats.uat.UatEntry``
named, with its bits, value and meaning; firmware and GPU permissions from the reference
tables; and which fields a driver dump did not record (type, SH, nG and the other low bits the
driver's p_flags drop), which are reported as "not recorded", never as zero.

The bulk decoder shifts and masks with the (shift, width) pairs derived from the construct
declaration (``formats.uat.FIELDS``); tests prove it agrees with ``UatEntry.parse``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formats import uat
from formats.geometry import Geometry

NOT_RECORDED = "not recorded"

TYPE_NAMES_UPPER = {0: "empty", 1: "block?", 2: "invalid", 3: "table"}
TYPE_NAMES_LEAF = {0: "empty", 1: "invalid", 2: "invalid", 3: "page"}


@dataclass(frozen=True)
class EntryField:
    """One field of an entry: ``recorded`` False means the dump lost it."""

    name: str
    bits: str  # "55" or "51:14"
    value: int | None
    meaning: str
    recorded: bool = True


@dataclass(frozen=True)
class DecodedEntry:
    """An entry at some level, with every field named."""

    value: int
    level: int
    is_leaf_level: bool
    exact: bool  # False: rebuilt from a driver dump's p_paddr/p_flags
    type_name: str
    output_address: int
    memattr: int
    memattr_name: str
    firmware: str
    gpu: str
    ng: bool | None  # None: not recorded
    af: bool
    fields: tuple[EntryField, ...]

    @property
    def valid(self) -> bool:
        return self.type_name in ("table", "page")


def _bits(shift: int, width: int) -> str:
    return str(shift) if width == 1 else f"{shift + width - 1}:{shift}"


def field_value(pte: int, name: str) -> int:
    shift, width = uat.FIELDS[name]
    return (pte >> shift) & ((1 << width) - 1)


def _meaning(name: str, value: int, pte: int, is_leaf_level: bool) -> str:
    if name == "type":
        return (TYPE_NAMES_LEAF if is_leaf_level else TYPE_NAMES_UPPER)[value]
    if name == "memattr":
        return uat.memattr_description(value)
    if name == "ap":
        return f"AP{value}"
    if name == "oa_pfn":
        return f"output address {value << uat.PAGE_SHIFT:#x}"
    if name == "gpu_access":
        return "GPU access (OS owned)" if value else "firmware only"
    if name == "uxn":
        return "unprivileged execute never" if value else "unprivileged execute allowed"
    if name == "pxn":
        return "privileged execute never" if value else "privileged execute allowed"
    if name == "ng":
        return "not global (per-ASID)" if value else "global"
    if name == "af":
        return "access flag"
    if name == "sh":
        return {0: "non-shareable", 1: "reserved", 2: "outer", 3: "inner"}[value]
    return "reserved / ignored" if value == 0 else f"set ({value:#x})"


def decode_entry(pte: int, level: int, geometry: Geometry, exact: bool = True) -> DecodedEntry:
    """Decode one entry found at lookup ``level`` (leaf level = the geometry's last)."""
    is_leaf = level == geometry.levels[-1].level
    not_recorded = () if exact else uat.NOT_RECORDED_FIELDS_DRIVER
    fields = []
    for name, (shift, width) in uat.FIELDS.items():
        value = (pte >> shift) & ((1 << width) - 1)
        if name in not_recorded:
            fields.append(EntryField(name, _bits(shift, width), None, NOT_RECORDED, False))
        else:
            fields.append(
                EntryField(name, _bits(shift, width), value, _meaning(name, value, pte, is_leaf))
            )
    type_value = pte & uat.PTE_TYPE_MASK
    if exact:
        type_name = (TYPE_NAMES_LEAF if is_leaf else TYPE_NAMES_UPPER)[type_value]
    else:
        type_name = "page"  # only leaves become PT_LOADs; the bits themselves were not recorded
    memattr = field_value(pte, "memattr")
    leaf_like = is_leaf or type_value == uat.PTE_BLOCK
    return DecodedEntry(
        value=pte,
        level=level,
        is_leaf_level=is_leaf,
        exact=exact,
        type_name=type_name,
        output_address=pte & geometry.oa_mask if exact else pte & uat.OA_MASK_FULL,
        memattr=memattr,
        memattr_name=uat.MEMATTR_NAMES[memattr] if leaf_like else "-",
        firmware=uat.firmware_view(pte) if leaf_like else "-",
        gpu=uat.gpu_view(pte) if leaf_like else "-",
        ng=bool(pte & uat.BIT_NG) if exact else None,
        af=bool(pte & uat.BIT_AF),
        fields=tuple(fields),
    )


# ---- bulk -------------------------------------------------------------------------------------


def table_entries(raw: bytes | memoryview) -> np.ndarray:
    """A table page as little-endian u64 entries (zero-copy view)."""
    return np.frombuffer(raw, dtype="<u8")


def bulk_fields(entries: np.ndarray) -> dict[str, np.ndarray]:
    """Every UatEntry field of every entry, as arrays (vectorised shift and mask).

    A field inside one byte is cut from that byte's column (uint8 results: an eighth of the
    memory traffic), wider ones from the whole entry (uint64); large inputs are decoded in
    cache-sized blocks. About 1 GiB/s of table pages on one core."""
    values = np.ascontiguousarray(entries, dtype="<u8").reshape(-1)
    n = len(values)
    as_bytes = values.view(np.uint8).reshape(n, 8)
    out = {name: np.empty(n, dtype=dtype) for name, (dtype, *_) in _FIELD_PLAN.items()}
    for start in range(0, n, _BLOCK_ENTRIES):
        stop = min(start + _BLOCK_ENTRIES, n)
        for name, (dtype, byte, shift, mask) in _FIELD_PLAN.items():
            target = out[name][start:stop]
            source = values[start:stop] if byte is None else as_bytes[start:stop, byte]
            if not shift:
                np.bitwise_and(source, dtype.type(mask), out=target)
            elif shift + mask.bit_length() == dtype.itemsize * 8:  # the top bits: no mask
                np.right_shift(source, dtype.type(shift), out=target)
            else:
                np.right_shift(source, dtype.type(shift), out=target)
                np.bitwise_and(target, dtype.type(mask), out=target)
    return out


_BLOCK_ENTRIES = 1 << 15  # 256 KiB of entries: the block and its fields stay in cache


def _plan_field(shift: int, width: int) -> tuple[np.dtype, int | None, int, int]:
    """(result dtype, byte column or None for the whole entry, shift within it, mask)."""
    mask = (1 << width) - 1
    if shift // 8 == (shift + width - 1) // 8:
        return np.dtype(np.uint8), shift // 8, shift % 8, mask
    return np.dtype(np.uint64), None, shift, mask


_FIELD_PLAN = {name: _plan_field(shift, width) for name, (shift, width) in uat.FIELDS.items()}
