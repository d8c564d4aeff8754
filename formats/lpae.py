"""ARM LPAE stage-1 descriptors (the ARM SMMU's io-pgtable format), 4K/16K/64K granules.

This module owns the LPAE stage-1 descriptor layout (one construct declaration, ``LpaeEntry``:
table, block and page descriptors share it), the masks the bulk decoders derive from it, the
memory attributes Linux's SMMU driver programs into MAIR, the two permission views a stage-1
leaf gives (privileged and unprivileged accesses), the ``p_flags`` packing dumpview writes for
LPAE dumps, and the geometry of each granule.

Facts (reference sheet section 6; Linux io-pgtable-arm.c, the Arm ARM's stage-1 descriptors):

- Type, bits 1:0: 01 block (not at the last level), 11 table (above the last level) or page
  (at the last level), x0 empty.
- Leaf attributes: AttrIndx 4:2, NS 5, AP[1] 6 (unprivileged access), AP[2] 7 (read-only),
  SH 9:8, AF 10, nG 11, DBM 51, contiguous 52, PXN 53, UXN/XN 54, bit 55 (and 58:56) for
  software. Table descriptors use bits 63:59 for NSTable, APTable, UXNTable, PXNTable.
- Output address bits 47:12 (page aligned to the granule); with the 64K granule, bits 15:12
  carry PA bits 51:48 (52-bit output addresses).
- Block sizes: 4K granule 1 GiB (level 1) and 2 MiB (level 2); 16K 32 MiB (level 2); 64K
  512 MiB (level 2), plus 4 TiB (level 1) with 52-bit output addresses.

Functions are total over 64-bit values. ``lpae_geometry`` raises ``ValueError`` for a granule
or address size the format does not allow.
"""

from __future__ import annotations

from construct import BitsInteger, Bitwise, ByteSwapped, Flag, Struct

from formats.elf import PF_R, PF_W, PF_X
from formats.geometry import LAST_LEVEL, Geometry, field_layout

GRANULE_SHIFTS = {"4k": 12, "16k": 14, "64k": 16}

# Entry type, bits 1:0.
TYPE_MASK = 0b11
TYPE_EMPTY = 0
TYPE_BLOCK = 1  # levels above the last
TYPE_TABLE = 3  # levels above the last
TYPE_PAGE = 3  # the last level

# One declaration of all 64 bits, most significant first (BitStruct order), bytes little-endian.
LpaeEntryBits = Struct(
    "ns_table" / Flag,  # bit 63 (table descriptors; ignored in leaves)
    "ap_table" / BitsInteger(2),  # bits 62:61 (table descriptors; PBHA in leaves)
    "uxn_table" / Flag,  # bit 60 (table descriptors; PBHA in leaves)
    "pxn_table" / Flag,  # bit 59 (table descriptors; PBHA in leaves)
    "software" / BitsInteger(4),  # bits 58:55, ignored by the walk; bit 55 is Linux's
    "uxn" / Flag,  # bit 54, UXN (XN at stage 1 of a single-range regime)
    "pxn" / Flag,  # bit 53
    "contiguous" / Flag,  # bit 52
    "dbm" / Flag,  # bit 51, dirty bit modifier
    "gp" / Flag,  # bit 50, guarded page
    "res0_49_48" / BitsInteger(2),
    "oa" / BitsInteger(36),  # bits 47:12, output address >> 12
    "ng" / Flag,  # bit 11
    "af" / Flag,  # bit 10
    "sh" / BitsInteger(2),  # bits 9:8
    "ap_ro" / Flag,  # bit 7, AP[2]: read-only
    "ap_unpriv" / Flag,  # bit 6, AP[1]: unprivileged access allowed
    "ns" / Flag,  # bit 5
    "attr_indx" / BitsInteger(3),  # bits 4:2, index into MAIR
    "type" / BitsInteger(2),  # bits 1:0
)
LpaeEntry = ByteSwapped(Bitwise(LpaeEntryBits))
assert LpaeEntry.sizeof() == 8


FIELDS: dict[str, tuple[int, int]] = field_layout(LpaeEntryBits)
OA_MASK = ((1 << FIELDS["oa"][1]) - 1) << FIELDS["oa"][0]  # bits 47:12
PA52_SHIFT = 12  # 64K granule: entry bits 15:12 hold PA bits 51:48
PA52_MASK = 0xF << PA52_SHIFT

BIT_NS = 1 << 5
BIT_AP_UNPRIV = 1 << 6
BIT_AP_RO = 1 << 7
BIT_AF = 1 << 10
BIT_NG = 1 << 11
BIT_DBM = 1 << 51
BIT_CONT = 1 << 52
BIT_PXN = 1 << 53
BIT_UXN = 1 << 54
SH_NONE, SH_OUTER, SH_INNER = 0, 2, 3

# Linux's SMMU MAIR (arm_lpae_alloc_pgtable_s1): the indices io-pgtable writes; the others are
# MAIR 0x00 (Device-nGnRnE).
MAIR_IDX_NC, MAIR_IDX_CACHE, MAIR_IDX_DEV, MAIR_IDX_INC_OCACHE = 0, 1, 2, 3
MEMATTR_MAIR: dict[int, int] = {0: 0x44, 1: 0xFF, 2: 0x04, 3: 0xF4}
MEMATTR_NAMES: dict[int, str] = {
    0: "non-cacheable",
    1: "write-back",
    2: "device",
    3: "inner-nc",  # inner non-cacheable, outer write-back (0xf4)
    4: "device",
    5: "device",
    6: "device",
    7: "device",
}
# Normal memory is what a walker copies (when borrow_phys accepts the PA); device memory never.
DUMPABLE_MEMATTRS = frozenset({0, 1, 3})
DEVICE_MEMATTRS = frozenset({2, 4, 5, 6, 7})


def memattr_description(memattr: int) -> str:
    """Human name of an AttrIndx value with its MAIR byte."""
    return f"{MEMATTR_NAMES[memattr & 7]} (MAIR 0x{MEMATTR_MAIR.get(memattr & 7, 0):02x})"


# ---- permissions ----------------------------------------------------------------------------


def privileged_view(pte: int) -> str:
    """What a privileged access may do ("RWX", "R-X", "RW-", "R--"): read always; write
    unless AP[2]; execute unless PXN, and never where unprivileged accesses may write (the
    Arm ARM makes EL0-writable memory privileged-execute-never)."""
    unpriv_writable = pte & BIT_AP_UNPRIV and not pte & BIT_AP_RO
    write = "-" if pte & BIT_AP_RO else "W"
    execute = "-" if pte & BIT_PXN or unpriv_writable else "X"
    return f"R{write}{execute}"


def unprivileged_view(pte: int) -> str:
    """What an unprivileged access (an SMMU master's default) may do: nothing unless AP[1];
    then read, write unless AP[2], execute unless UXN."""
    if not pte & BIT_AP_UNPRIV:
        return "---"
    write = "-" if pte & BIT_AP_RO else "W"
    execute = "-" if pte & BIT_UXN else "X"
    return f"R{write}{execute}"


def elf_rwx(pte: int) -> int:
    """ELF PF_R/PF_W/PF_X of a leaf: the union of both views."""
    views = privileged_view(pte) + unprivileged_view(pte)
    return (
        (PF_R if "R" in views else 0)
        | (PF_W if "W" in views else 0)
        | (PF_X if "X" in views else 0)
    )


# ---- io-pgtable protections -----------------------------------------------------------------

IOMMU_READ, IOMMU_WRITE, IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_MMIO, IOMMU_PRIV = 1, 2, 4, 8, 16, 32


def prot_to_bits(prot: int) -> int:
    """The leaf attribute bits io-pgtable-arm writes for IOMMU_* ``prot`` at stage 1 (no type;
    arm_lpae_prot_to_pte): nG always; AP[2] for read without write; AP[1] unless IOMMU_PRIV;
    AttrIndx device for IOMMU_MMIO, write-back for IOMMU_CACHE, else non-cacheable; inner
    shareable with IOMMU_CACHE, else outer; XN (UXN and PXN) with IOMMU_NOEXEC; AF always."""
    bits = BIT_AF | BIT_NG
    if prot & IOMMU_READ and not prot & IOMMU_WRITE:
        bits |= BIT_AP_RO
    if not prot & IOMMU_PRIV:
        bits |= BIT_AP_UNPRIV
    if prot & IOMMU_MMIO:
        bits |= MAIR_IDX_DEV << 2
    elif prot & IOMMU_CACHE:
        bits |= MAIR_IDX_CACHE << 2
    else:
        bits |= MAIR_IDX_NC << 2
    bits |= (SH_INNER if prot & IOMMU_CACHE else SH_OUTER) << 8
    if prot & IOMMU_NOEXEC:
        bits |= BIT_UXN | BIT_PXN
    return bits


# ---- output addresses -----------------------------------------------------------------------


def output_address(pte: int, granule_shift: int) -> int:
    """The output address an entry holds (table, block or page), PA bits 51:48 included for
    the 64K granule."""
    pa = pte & OA_MASK & ~((1 << granule_shift) - 1)
    if granule_shift == 16:
        pa |= ((pte >> PA52_SHIFT) & 0xF) << 48
    return pa


def encode_output_address(pa: int, granule_shift: int) -> int:
    """The entry bits holding ``pa`` (inverse of ``output_address`` for aligned PAs)."""
    bits = pa & OA_MASK
    if granule_shift == 16:
        bits |= ((pa >> 48) & 0xF) << PA52_SHIFT
    return bits


# ---- p_flags -------------------------------------------------------------------------------
# dumpview's LPAE dumps record every attribute bit: bits 0-2 ELF R/W/X (union of both views),
# bits 3-6 entry bits 48-51 (DBM at bit 6), bits 8-19 entry bits 0-11 (type included, so a
# block's pages say so), bits 20-31 entry bits 52-63. The output address is p_paddr.
PFLAGS_MID_POS, PFLAGS_MID_SHIFT, PFLAGS_MID_MASK = 3, 48, 0xF
PFLAGS_LOW_POS, PFLAGS_HIGH_POS, PFLAGS_HIGH_SHIFT, PFLAGS_FIELD_MASK = 8, 20, 52, 0xFFF


def pack_p_flags(pte: int) -> int:
    """The p_flags of a leaf's PT_LOAD."""
    return (
        elf_rwx(pte)
        | (((pte >> PFLAGS_MID_SHIFT) & PFLAGS_MID_MASK) << PFLAGS_MID_POS)
        | ((pte & PFLAGS_FIELD_MASK) << PFLAGS_LOW_POS)
        | (((pte >> PFLAGS_HIGH_SHIFT) & PFLAGS_FIELD_MASK) << PFLAGS_HIGH_POS)
    )


def unpack_attributes(p_flags: int) -> int:
    """The entry's attribute bits (everything but the output address) from ``p_flags``."""
    return (
        (((p_flags >> PFLAGS_MID_POS) & PFLAGS_MID_MASK) << PFLAGS_MID_SHIFT)
        | ((p_flags >> PFLAGS_LOW_POS) & PFLAGS_FIELD_MASK)
        | (((p_flags >> PFLAGS_HIGH_POS) & PFLAGS_FIELD_MASK) << PFLAGS_HIGH_SHIFT)
    )


# ---- geometry ------------------------------------------------------------------------------


def block_levels(granule_shift: int, oas: int = 48) -> frozenset[int]:
    """Lookup levels where io-pgtable-arm writes block entries for this granule."""
    if granule_shift == 12:
        return frozenset({1, 2})
    if granule_shift == 16 and oas > 48:
        return frozenset({1, 2})
    return frozenset({2})


def lpae_geometry(granule: str, ias: int = 48, oas: int = 48, va_base: int = 0) -> Geometry:
    """The stage-1 geometry of ``granule`` ("4k", "16k", "64k") over an ``ias``-bit input
    address: IAS 32..48, up to 52 with the 64K granule; OAS up to 48 (52 with 64K).
    ``ValueError`` otherwise."""
    if granule not in GRANULE_SHIFTS:
        raise ValueError(f"granule {granule!r} is not one of {', '.join(GRANULE_SHIFTS)}")
    page_shift = GRANULE_SHIFTS[granule]
    max_bits = 52 if page_shift == 16 else 48
    if not 32 <= ias <= max_bits:
        raise ValueError(f"IAS {ias} is outside 32..{max_bits} for the {granule} granule")
    if not 32 <= oas <= max_bits:
        raise ValueError(f"OAS {oas} is outside 32..{max_bits} for the {granule} granule")
    geometry = Geometry(page_shift=page_shift, ias=ias, oas=oas, va_base=va_base)
    assert geometry.levels[-1].level == LAST_LEVEL
    return geometry
