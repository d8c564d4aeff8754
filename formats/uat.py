"""Apple AGX UAT (GPU MMU) entries: fields, memory attributes, permissions, p_flags packing.

This module owns the UAT entry layout (one construct declaration, ``UatEntry``), the masks the
bulk decoder derives from it, the memattr names, the permission tables (firmware view with
bit 55 clear and set, m1n1's EL1/GL1 split, the GPU view), the driver's named protections, the
driver's VA layout (the kernel context's named ranges, ``UAT_KERNEL_VA_LAYOUT``, and a user
VM's range), the UAT geometry presets, and the devcoredump ``p_flags`` packing in both
directions.

Facts are from the reference sheet (drivers/gpu/drm/asahi pgtable.rs and crashdump.rs, m1n1
uat.py). Functions here are total over 64-bit values; out-of-range AP/UXN/PXN raise
``IndexError`` only if a caller passes values wider than the fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import BitsInteger, Bitwise, ByteSwapped, Flag, Struct

from formats.elf import PF_R, PF_W, PF_X
from formats.geometry import Geometry, field_layout

PAGE_SHIFT = 14
PAGE_SIZE = 1 << PAGE_SHIFT  # 16 KiB
ENTRIES_PER_TABLE = PAGE_SIZE // 8  # 2048

UAT_VA_BASE_UPPER = 0xFFFF_FF80_0000_0000  # kernel/firmware half
# The driver's kernel context (context 0, upper half): firmware owns TTB entries 0 and 1 (its
# part), the driver manages the next 64 GiB (PRIV .. MMIO); neither maps above that.
UAT_KERNEL_FW_VA_START = UAT_VA_BASE_UPPER
UAT_KERNEL_FW_VA_END = 0xFFFF_FFA0_0000_0000
UAT_KERNEL_VA_START = UAT_KERNEL_FW_VA_END  # the driver's managed range (IOVA_KERN_BASE)
UAT_KERNEL_VA_END = 0xFFFF_FFB0_0000_0000  # IOVA_KERN_TOP
UAT_IAS = 39
# A user VM (an owned TTB, lower half): the driver's IOVA_USER_USABLE_RANGE, from the first page
# up to two pages below 1 << IAS (IOVA_UNK_PAGE, a page the firmware uses, sits there).
UAT_USER_VA_START = PAGE_SIZE
UAT_USER_VA_END = (1 << UAT_IAS) - 2 * PAGE_SIZE


@dataclass(frozen=True)
class KernelVaRange:
    """One named part of the kernel context's VA layout: ``[va_start, va_end)``, the driver's
    protection for what it maps there (``prot``, a key of ``PROTS``; None where the driver maps
    with no fixed one or does not map at all) and what lives there."""

    name: str
    va_start: int
    va_end: int
    prot: str | None
    summary: str


# The kernel context's layout (context 0, upper half): the firmware's part (TTB entries 0 and 1,
# an inference: the driver's range starts at entry 2) and the driver's IOVA_KERN_*_RANGE
# constants (gpu.rs; reference sheet section 2, research notes item 5 for TIMESTAMP). The gaps
# (0xffffffae14000000..0xffffffaf00000000) and everything from UAT_KERNEL_VA_END up are named by
# no range. In VA order, disjoint.
UAT_KERNEL_VA_LAYOUT: tuple[KernelVaRange, ...] = (
    KernelVaRange(
        "firmware", UAT_KERNEL_FW_VA_START, UAT_KERNEL_FW_VA_END, None,
        "the firmware's own part (TTB entries 0 and 1)",
    ),
    KernelVaRange(
        "PRIV", 0xFFFF_FFA0_0000_0000, 0xFFFF_FFA6_0000_0000, "FW_PRIV_RW",
        "firmware-private driver objects",
    ),
    KernelVaRange(
        "GPU_RO", 0xFFFF_FFA6_0000_0000, 0xFFFF_FFA8_0000_0000, "GPU_RO_FW_PRIV_RW",
        "firmware-private objects the GPU reads",
    ),
    KernelVaRange(
        "SHARED", 0xFFFF_FFA8_0000_0000, 0xFFFF_FFAA_0000_0000, "FW_SHARED_RW",
        "uncached structures shared by firmware and driver",
    ),
    KernelVaRange(
        "SHARED_RO", 0xFFFF_FFAA_0000_0000, 0xFFFF_FFAC_0000_0000, "FW_SHARED_RO",
        "uncached shared structures the firmware only reads",
    ),
    KernelVaRange(
        "GPU", 0xFFFF_FFAC_0000_0000, 0xFFFF_FFAE_0000_0000, "GPU_FW_SHARED_RW",
        "structures shared by GPU and firmware",
    ),
    KernelVaRange(
        "RTKIT", 0xFFFF_FFAE_0000_0000, 0xFFFF_FFAE_1000_0000, "FW_SHARED_RW",
        "RTKit buffers (crash log, trace, I/O)",
    ),
    KernelVaRange(
        "TIMESTAMP", 0xFFFF_FFAE_1000_0000, 0xFFFF_FFAE_1400_0000, None,
        "the shared (uncached) timestamp region",
    ),
    KernelVaRange(
        "MMIO", 0xFFFF_FFAF_0000_0000, UAT_KERNEL_VA_END, "FW_MMIO_RW",
        "device registers mapped for the firmware (FW_MMIO_RW/RO)",
    ),
)  # fmt: skip


def kernel_va_range(va: int) -> KernelVaRange | None:
    """The part of ``UAT_KERNEL_VA_LAYOUT`` holding ``va``, or None (a gap, above the driver's
    range, or not a kernel VA)."""
    for part in UAT_KERNEL_VA_LAYOUT:
        if part.va_start <= va < part.va_end:
            return part
    return None


OAS_T8103 = 40  # t8103, t8112
OAS_T600X = 42  # t600x

# Entry type, bits 1:0.
PTE_TYPE_MASK = 0b11
PTE_EMPTY = 0
PTE_BLOCK = 1  # no UAT block: the driver never writes it, m1n1's valid() wants bit 1 too
PTE_TABLE = 3  # upper levels
PTE_PAGE = 3  # leaf level

# One declaration of all 64 bits, most significant first (BitStruct order), bytes little-endian.
UatEntryBits = Struct(
    "ignored_63_56" / BitsInteger(8),
    "gpu_access" / Flag,  # bit 55, "GPU access" / "OS owned"
    "uxn" / Flag,  # bit 54
    "pxn" / Flag,  # bit 53
    "bit52" / Flag,  # bit 52
    "oa_pfn" / BitsInteger(38),  # bits 51:14, output address >> 14
    "bits_13_12" / BitsInteger(2),
    "ng" / Flag,  # bit 11
    "af" / Flag,  # bit 10
    "sh" / BitsInteger(2),  # bits 9:8
    "ap" / BitsInteger(2),  # bits 7:6
    "bit5" / Flag,
    "memattr" / BitsInteger(3),  # bits 4:2, AttrIndex
    "type" / BitsInteger(2),  # bits 1:0
)
UatEntry = ByteSwapped(Bitwise(UatEntryBits))
assert UatEntry.sizeof() == 8


# Field name -> (shift, width); the bulk (numpy) decoder uses exactly these.
FIELDS: dict[str, tuple[int, int]] = field_layout(UatEntryBits)
OA_MASK_FULL = ((1 << FIELDS["oa_pfn"][1]) - 1) << FIELDS["oa_pfn"][0]  # bits 51:14

BIT_AF = 1 << 10
BIT_NG = 1 << 11
BIT_PXN = 1 << 53
BIT_UXN = 1 << 54
BIT_GPU = 1 << 55

MEMATTR_NAMES: dict[int, str] = {
    0: "cached",  # normal, MAIR 0xff
    1: "device",  # nGnRnE, 0x00
    2: "uncached",  # "shared", 0xf4
    3: "normal-4f",  # 0x4f
    4: "device",
    5: "cached",  # 0xff
    6: "device",
    7: "device",
}
MEMATTR_MAIR: dict[int, int] = {0: 0xFF, 1: 0x00, 2: 0xF4, 3: 0x4F, 5: 0xFF}
# The walker copies data only for these memattrs (and only when borrow_phys accepts the PA).
DUMPABLE_MEMATTRS = frozenset({0, 2})
DEVICE_MEMATTRS = frozenset({1, 4, 6, 7})


def memattr_description(memattr: int) -> str:
    """Human name of an AttrIndex value, with its MAIR byte when known."""
    mair = MEMATTR_MAIR.get(memattr)
    name = MEMATTR_NAMES[memattr & 7]
    return f"{name} (MAIR 0x{mair:02x})" if mair is not None else f"{name} (nGnRnE)"


# Permission tables, indexed [AP][(UXN << 1) | PXN].
def _table(*rows: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(row.split()) for row in rows)


FW_VIEW_NO_GPU = _table("-- -- -- RW", "-- RW -- RW", "RX RX -- R-", "RX RW -- R-")
FW_VIEW_GPU = _table("-- R- -W RW", "R- -- RW RW", "-- -- -- --", "-- -- -- --")
GPU_VIEW = _table("-- R- -W RW", "-- -- -- R-", "R- -W RW --", "-- -- -- --")
FW_EL1_VIEW = _table("-- -- -- --", "-- RW -- RW", "-- RX -- --", "RX R- -- R-")
FW_GL1_VIEW = _table("-- -- -- RW", "-- -- -- RW", "RX -- -- R-", "RX RW -- R-")


def perm_index(pte: int) -> tuple[int, int]:
    """(AP, (UXN << 1) | PXN) of an entry: the coordinates into the permission tables."""
    ap = (pte >> 6) & 3
    col = (((pte >> 54) & 1) << 1) | ((pte >> 53) & 1)
    return ap, col


def firmware_view(pte: int) -> str:
    """Firmware permissions ("RW", "RX", "--", ...), from the bit-55 table that applies."""
    ap, col = perm_index(pte)
    table = FW_VIEW_GPU if pte & BIT_GPU else FW_VIEW_NO_GPU
    return table[ap][col]


def gpu_view(pte: int) -> str:
    """GPU permissions: "--" unless bit 55 is set."""
    if not pte & BIT_GPU:
        return "--"
    ap, col = perm_index(pte)
    return GPU_VIEW[ap][col]


def firmware_el1_gl1(pte: int) -> tuple[str, str]:
    """m1n1's split of the bit-55-clear firmware view into (EL1, GL1); ("--", "--") when set."""
    if pte & BIT_GPU:
        return "--", "--"
    ap, col = perm_index(pte)
    return FW_EL1_VIEW[ap][col], FW_GL1_VIEW[ap][col]


@dataclass(frozen=True)
class Prot:
    """A named protection as the driver writes it: AP, UXN, PXN, memattr; bit 55 and AF set."""

    name: str
    ap: int
    uxn: int
    pxn: int
    memattr: int

    @property
    def bits(self) -> int:
        return (
            (self.ap << 6)
            | (self.uxn << 54)
            | (self.pxn << 53)
            | (self.memattr << 2)
            | BIT_GPU
            | BIT_AF
        )


PROTS: dict[str, Prot] = {
    p.name: p
    for p in (
        Prot("FW_PRIV_RW", 1, 1, 0, 0),
        Prot("FW_SHARED_RW", 1, 1, 0, 2),
        Prot("FW_SHARED_RO", 1, 0, 0, 2),
        Prot("FW_MMIO_RW", 1, 1, 0, 1),
        Prot("FW_MMIO_RO", 1, 0, 0, 1),
        Prot("GPU_FW_SHARED_RW", 0, 1, 1, 2),
        Prot("GPU_FW_PRIV_RW", 0, 1, 1, 0),
        Prot("GPU_RO_FW_PRIV_RW", 1, 1, 1, 0),
        Prot("GPU_SHARED_RW", 2, 1, 0, 2),
        Prot("GPU_SHARED_RO", 2, 0, 0, 2),
        Prot("GPU_SHARED_WO", 2, 0, 1, 2),
    )
}

# p_flags packing (crashdump.rs, pgtable.rs elf_flags): bits 0-2 ELF R/W/X from the firmware
# view, bits 8-19 the PTE's bits 0-11 as the driver rebuilds them from its ``Prot`` (``as_pte``:
# AP and memattr from the entry, AF always 1; type, SH, nG and bit 5 are 0), bits 20-31 the PTE's
# bits 52-63. So a driver dump records AP and memattr of the low bits, nothing else.
PFLAGS_LOW_RECORDED = (3 << 6) | (7 << 2)  # AP, memattr
PFLAGS_LOW_ALWAYS = BIT_AF  # set in every driver p_flags, whatever the entry says
PFLAGS_HIGH_SHIFT = 52  # PTE bits 52-63 ...
PFLAGS_LOW_POS = 8  # ... and 0-11 sit in p_flags at these bit positions, 12 bits each
PFLAGS_HIGH_POS = 20
PFLAGS_FIELD_MASK = 0xFFF
# The PTE bits a driver dump records; the rest of bits 0-13 are "not recorded".
RECORDED_PTE_BITS_DRIVER = PFLAGS_LOW_RECORDED | (0xFFF << 52) | OA_MASK_FULL
NOT_RECORDED_FIELDS_DRIVER = ("type", "sh", "ng", "af", "bit5", "bits_13_12")


def elf_rwx(perm: str) -> int:
    """ELF PF_R/PF_W/PF_X bits of a permission string such as "RX"."""
    return (
        (PF_R if "R" in perm else 0) | (PF_W if "W" in perm else 0) | (PF_X if "X" in perm else 0)
    )


def pack_p_flags(pte: int) -> int:
    """The driver's p_flags for a leaf entry (AF always set: see ``PFLAGS_LOW_ALWAYS``)."""
    low = (pte & PFLAGS_LOW_RECORDED) | PFLAGS_LOW_ALWAYS
    high = (pte >> PFLAGS_HIGH_SHIFT) & PFLAGS_FIELD_MASK
    return elf_rwx(firmware_view(pte)) | (low << PFLAGS_LOW_POS) | (high << PFLAGS_HIGH_POS)


def unpack_p_flags(p_flags: int, p_paddr: int) -> int:
    """The entry value a driver dump lets us rebuild from ``p_paddr`` and ``p_flags``.

    Only ``RECORDED_PTE_BITS_DRIVER`` are known; type, SH, nG read as zero and AF as one
    here (as the driver wrote them), and must be shown as "not recorded".
    """
    low = (p_flags >> PFLAGS_LOW_POS) & PFLAGS_FIELD_MASK
    high = (p_flags >> PFLAGS_HIGH_POS) & PFLAGS_FIELD_MASK
    return (p_paddr & OA_MASK_FULL) | low | (high << PFLAGS_HIGH_SHIFT)


def uat_geometry(
    ias: int = UAT_IAS, oas: int = OAS_T600X, va_base: int = UAT_VA_BASE_UPPER
) -> Geometry:
    """The UAT geometry: 16 KiB pages, 39-bit (or 42-bit on G15+) input addresses."""
    return Geometry(page_shift=PAGE_SHIFT, ias=ias, oas=oas, va_base=va_base)
