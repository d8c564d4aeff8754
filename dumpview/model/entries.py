"""Decoding page-table entries: one entry field by field, and whole table pages in bulk (numpy).

Owns the presentation-neutral meaning of an entry of any ``formats.entryformat.EntryFormat``
(the Apple UAT, ARM LPAE stage 1), decoded by what it is: its type at its level first (table,
page, block with the VA span it maps, empty, invalid), then the fields that type has (a table
descriptor its next-table address, plus LPAE's NSTable, APTable, UXNTable/XNTable and
PXNTable; a page or block its leaf attributes and the format's two permission views; any other
set bit as "ignored"), with bits, value and meaning; which fields a dump's ``p_flags`` did not
record (a UAT driver dump loses type, SH, nG, AF and the other low bits), reported as "not
recorded", never as a value; and both output addresses (``pa``, the one the walker and the
hardware use, and ``pa_raw``, what the entry says: see ``formats.entryformat``), with the
notes where the public sources read an entry differently (``source_notes``).

The bulk decoder shifts and masks with the (shift, width) pairs derived from the construct
declarations (``EntryFormat.fields``); tests prove it agrees with the declaration's ``parse``.
Nothing here raises for any 64-bit value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formats import entryformat, uat
from formats.entryformat import EntryFormat
from formats.geometry import Geometry

NOT_RECORDED = "not recorded"


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
    """An entry at some level, with every field named. ``views`` are the format's two
    permission views (``view_names``), "-" for entries that map nothing themselves."""

    value: int
    level: int
    is_leaf_level: bool
    exact: bool  # False: rebuilt from a dump's p_paddr/p_flags
    type_name: str  # empty, table, page, block, invalid
    output_address: int
    memattr: int
    memattr_name: str
    views: tuple[str, str]
    entry_format: EntryFormat  # names the views and the fields
    ng: bool | None  # None: not recorded (or a table, which has no nG)
    af: bool | None  # None: not recorded (or a table, which has no AF)
    fields: tuple[EntryField, ...]
    block_size_bytes: int | None = None  # the VA span a block entry maps
    output_address_raw: int = 0  # pa_raw: what the entry says (UAT bits 51:14)
    oas: int = 64  # the geometry's output address size

    @property
    def pa(self) -> int:
        """The output address the walker and the hardware use (``output_address``)."""
        return self.output_address

    @property
    def pa_raw(self) -> int:
        """The output address as the entry holds it (UAT bits 51:14; LPAE the whole field)."""
        return self.output_address_raw

    @property
    def beyond_oas(self) -> bool:
        """Whether the entry's output address has bits at or above the OAS."""
        return bool(self.output_address_raw >> self.oas)

    @property
    def valid(self) -> bool:
        return self.type_name in ("table", "page", "block")

    @property
    def maps(self) -> bool:
        """Whether this entry maps memory itself (a page or a block)."""
        return self.type_name in ("page", "block")

    @property
    def view_names(self) -> tuple[str, str]:
        return self.entry_format.view_names

    @property
    def view_short(self) -> tuple[str, str]:
        return self.entry_format.view_short

    @property
    def permissions(self) -> str:
        """Both views as one phrase: "firmware RW, GPU --"."""
        return ", ".join(f"{n} {v}" for n, v in zip(self.view_names, self.views, strict=True))


def _bits(shift: int, width: int) -> str:
    return str(shift) if width == 1 else f"{shift + width - 1}:{shift}"


def _bit_list(mask: int) -> str:
    """Set bits of ``mask`` as ranges, highest first: "63:59,10"."""
    parts, bit = [], 63
    while bit >= 0:
        if mask >> bit & 1:
            top = bit
            while bit > 0 and mask >> (bit - 1) & 1:
                bit -= 1
            parts.append(_bits(bit, top - bit + 1))
        bit -= 1
    return ",".join(parts)


def _oas_note(fmt: EntryFormat, pa_raw: int, oas: int) -> str:
    """What an output address with bits at or above the OAS means, or ""."""
    if not pa_raw >> oas:
        return ""
    if fmt.oas_truncates:
        used = pa_raw & fmt.pa_mask(oas)
        return f" (bits above the {oas}-bit OAS: the walker and the hardware use {used:#x})"
    return f" (bits above the {oas}-bit OAS: an address size fault on the hardware)"


def decode_entry(
    pte: int,
    level: int,
    geometry: Geometry,
    exact: bool = True,
    fmt: EntryFormat = entryformat.UAT,
) -> DecodedEntry:
    """Decode one entry of format ``fmt`` found at lookup ``level`` (leaf level = the
    geometry's last), by what it is. A rebuilt entry (``exact`` False) is a leaf the dump
    recorded as a PT_LOAD page: its type is "page", or "block" when the recorded type bits say
    so."""
    is_leaf = level == geometry.levels[-1].level
    not_recorded = () if exact else fmt.not_recorded_fields
    type_value = pte & entryformat.TYPE_MASK
    if exact:
        type_name = fmt.type_name(type_value, level, is_leaf)
    elif "type" not in not_recorded and type_value == entryformat.TYPE_BLOCK:
        type_name = "block"  # recorded type bits: a page of a block (its level is unknown)
    else:
        type_name = "page"  # only leaves become PT_LOADs
    is_table = type_name == "table"
    shown = fmt.descriptor_fields(type_name)
    fields = []
    covered = 0
    for name in shown:
        shift, width = fmt.fields[name]
        covered |= ((1 << width) - 1) << shift
        value = (pte >> shift) & ((1 << width) - 1)
        if name in not_recorded:
            fields.append(EntryField(name, _bits(shift, width), None, NOT_RECORDED, False))
        elif name == "type":
            fields.append(EntryField(name, _bits(shift, width), value, type_name))
        else:
            meaning = fmt.meaning(name, value, table=is_table)
            if (((1 << width) - 1) << shift) == fmt.oa_bits:  # the output address field
                meaning += _oas_note(fmt, fmt.output_address(pte), geometry.oas)
            fields.append(EntryField(name, _bits(shift, width), value, meaning))
    other = pte & ~covered & entryformat.U64_MAX
    if other and type_name != "empty":
        article = "an" if type_name == "invalid" else "a"
        meaning = f"set ({other:#x}): not a field of {article} {type_name} entry"
        fields.append(EntryField("ignored", _bit_list(other), other, meaning))
    leaf_like = type_name in ("page", "block")
    block_size = None
    if type_name == "block" and not is_leaf and exact:
        block_size = geometry.level(level).entry_span_bytes
    output_address_raw = fmt.output_address(pte)
    if block_size:
        output_address_raw &= ~(block_size - 1)
    output_address = output_address_raw & fmt.pa_mask(geometry.oas)
    memattr = fmt.memattr(pte)
    recorded_ng = exact or "ng" not in not_recorded
    recorded_af = exact or "af" not in not_recorded
    return DecodedEntry(
        value=pte,
        level=level,
        is_leaf_level=is_leaf,
        exact=exact,
        type_name=type_name,
        output_address=output_address,
        memattr=memattr,
        memattr_name=fmt.memattr_names[memattr] if leaf_like else "-",
        views=fmt.views(pte) if leaf_like else ("-", "-"),
        entry_format=fmt,
        ng=bool(pte & (1 << 11)) if leaf_like and recorded_ng else None,
        af=bool(pte & (1 << 10)) if leaf_like and recorded_af else None,
        fields=tuple(fields),
        block_size_bytes=block_size,
        output_address_raw=output_address_raw,
        oas=geometry.oas,
    )


# Where the public sources read an entry differently (reference sheet section 8).
M1N1_OA_MASK = ((1 << 48) - 1) & ~((1 << 14) - 1)  # m1n1's Page_PTE OFFSET = 47, 14


def source_notes(decoded: DecodedEntry) -> list[str]:
    """Lines saying where m1n1 reads ``decoded`` differently from the driver (whose reading
    dumpview shows): the firmware permission of bit 55 = 1, AP0, UXN=1, PXN=0 (the driver's
    PROT_TO_PERMS_OS says -W, m1n1's access_fw says -?), and an output address with bits above
    47 (m1n1 decodes bits 47:14, the driver's p_paddr keeps 51:14 and its walker the OAS).
    UAT pages only; empty for everything else."""
    if decoded.entry_format is not entryformat.UAT or not decoded.maps:
        return []
    notes = []
    pte = decoded.value
    if pte & uat.BIT_GPU and uat.perm_index(pte) == (0, 2):
        notes.append(
            "firmware view -W is the driver's (PROT_TO_PERMS_OS); m1n1's access_fw says -? "
            "(unknown) for bit 55 = 1, AP0, UXN=1, PXN=0"
        )
    m1n1 = pte & M1N1_OA_MASK
    if m1n1 != decoded.output_address_raw & ~((1 << 14) - 1):
        notes.append(
            f"m1n1 decodes output address bits 47:14 only: it reads {m1n1:#x}; the driver's "
            f"p_paddr keeps bits 51:14 ({decoded.output_address_raw:#x}) and its walker the "
            f"{decoded.oas}-bit OAS ({decoded.output_address:#x})"
        )
    return notes


# ---- bulk -------------------------------------------------------------------------------------


def table_entries(raw: bytes | memoryview) -> np.ndarray:
    """A table page as little-endian u64 entries (zero-copy view)."""
    return np.frombuffer(raw, dtype="<u8")


def bulk_fields(entries: np.ndarray, fmt: EntryFormat = entryformat.UAT) -> dict[str, np.ndarray]:
    """Every field of ``fmt``'s declaration for every entry, as arrays (vectorised shift and
    mask).

    A field inside one byte is cut from that byte's column (uint8 results: an eighth of the
    memory traffic), wider ones from the whole entry (uint64); large inputs are decoded in
    cache-sized blocks. About 1 GiB/s of table pages on one core."""
    values = np.ascontiguousarray(entries, dtype="<u8").reshape(-1)
    n = len(values)
    as_bytes = values.view(np.uint8).reshape(n, 8)
    plan = _field_plan(fmt)
    out = {name: np.empty(n, dtype=dtype) for name, (dtype, *_) in plan.items()}
    for start in range(0, n, _BLOCK_ENTRIES):
        stop = min(start + _BLOCK_ENTRIES, n)
        for name, (dtype, byte, shift, mask) in plan.items():
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


_FIELD_PLANS: dict[int, dict[str, tuple[np.dtype, int | None, int, int]]] = {}


def _field_plan(fmt: EntryFormat) -> dict[str, tuple[np.dtype, int | None, int, int]]:
    plan = _FIELD_PLANS.get(fmt.id)
    if plan is None:
        plan = {name: _plan_field(shift, width) for name, (shift, width) in fmt.fields.items()}
        _FIELD_PLANS[fmt.id] = plan
    return plan
