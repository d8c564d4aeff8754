"""Entry formats: what a reader needs to know of one page-table entry layout, in one object.

This module owns ``EntryFormat`` and its instances: the Apple UAT (``formats.uat``) and ARM
LPAE stage 1 with each granule (``formats.lpae``). The extension's geometry record names one by
id (``formats.ext.ENTRY_FORMAT_*``); a dump without the extension is UAT. Everything here
derives from the construct declarations and tables of those two modules: field layouts, output
address bits, block levels, memory attribute names, the permission views, the ``p_flags``
packing and which fields a dump's ``p_flags`` do not record.

Two addresses per entry. ``output_address`` is what the entry says (``pa_raw``: UAT bits
51:14, the driver's ``p_paddr``; LPAE the whole output-address field). ``pa_mask(oas)`` turns
it into the address the walker and the hardware use (``pa``): the UAT driver masks every table
and data address with the OAS (``pte & oas_mask``), so a UAT ``pa`` is ``pa_raw`` cut to the
OAS; ARM LPAE does not cut (Linux's io-pgtable uses the whole field, and an SMMU raises an
address size fault for bits above its OAS), so an LPAE ``pa`` is ``pa_raw``. Bits at or above
the OAS are the ``oa-beyond-oas`` finding either way.

Which fields an entry has depends on what it is (``descriptor_fields``): a table descriptor
has its type and next-table address (LPAE adds NSTable, APTable, UXNTable/XNTable and
PXNTable), a page or block the leaf attributes.

Methods taking an entry value work on Python ints and on numpy uint64 arrays alike (they use
only ``&``, ``|``, ``>>`` and ``<<`` with non-negative constants); ``views`` and ``meaning``
take ints. ``entry_format`` raises ``KeyError`` for an id it does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from formats import ext, lpae, uat

TYPE_MASK = 0b11  # both formats: bits 1:0
TYPE_EMPTY, TYPE_BLOCK, TYPE_TABLE, TYPE_PAGE = 0, 1, 3, 3
MEMATTR_SHIFT, MEMATTR_MASK = 2, 7  # both formats: bits 4:2
U64_MAX = (1 << 64) - 1


@dataclass(frozen=True, eq=False)  # one instance per format: compared and hashed by identity
class EntryFormat:
    """One entry layout. ``views`` gives the two permission views a table or row shows
    (``view_names`` label them, ``view_keys`` are their JSON keys); ``check_views`` are every
    view a W+X check must consider."""

    id: int
    name: str
    page_shift: int
    declaration: Any  # the construct Struct of one entry
    fields: Mapping[str, tuple[int, int]]  # name -> (lowest bit, width)
    oa_bits: int  # the entry bits an output address occupies (below the page: masked off)
    pa52: bool  # entry bits 15:12 carry PA bits 51:48 (LPAE 64K granule)
    block_levels: frozenset[int]  # lookup levels whose type-01 entries are blocks
    memattr_names: Mapping[int, str]
    memattr_description: Callable[[int], str]
    dumpable_memattrs: frozenset[int]
    device_memattrs: frozenset[int]
    view_names: tuple[str, str]
    view_short: tuple[str, str]  # column headings and "fw:RW"-style labels
    view_keys: tuple[str, str]
    view_functions: tuple[Callable[[int], str], Callable[[int], str]]
    check_views: tuple[tuple[str, Callable[[int], str]], ...]
    pack_p_flags: Callable[[int], int]
    # (p_flags bit position, width, entry bit position): how p_flags carry attribute bits.
    p_flags_fields: tuple[tuple[int, int, int], ...]
    not_recorded_fields: tuple[str, ...]  # lost by p_flags: shown "not recorded"
    meanings: Mapping[str, Callable[[int], str]]
    oas_truncates: bool  # True: pa = pa_raw cut to the OAS (UAT); False: pa = pa_raw (LPAE)
    table_fields: tuple[str, ...]  # a table descriptor's fields (type and address included)
    table_meanings: Mapping[str, Callable[[int], str]]  # where a table reads a bit otherwise
    leaf_excluded: tuple[str, ...]  # declared fields that mean nothing in a page or block

    # ---- output addresses --------------------------------------------------------------

    @property
    def page_oa_mask(self) -> int:
        """Entry bits of a page- or table-aligned output address (PA 51:48 of the 64K
        granule excluded: see ``output_address``)."""
        return self.oa_bits & ~((1 << self.page_shift) - 1) & U64_MAX

    @property
    def attribute_mask(self) -> int:
        """Entry bits that are not output address (PA 51:48 of the 64K granule excluded)."""
        pa_bits = self.oa_bits | (lpae.PA52_MASK if self.pa52 else 0)
        return U64_MAX & ~pa_bits

    def output_address(self, pte: Any) -> Any:
        """The page-aligned output address an entry (or array of entries) holds."""
        pa = pte & self.page_oa_mask
        if self.pa52:
            pa = pa | (((pte >> lpae.PA52_SHIFT) & 0xF) << 48)
        return pa

    def pa_mask(self, oas: int) -> int:
        """The mask taking ``output_address`` (``pa_raw``) to the address the walker and the
        hardware use (``pa``): the OAS for the UAT, all 64 bits for LPAE."""
        return ((1 << oas) - 1) if self.oas_truncates else U64_MAX

    def encode_output_address(self, pa: Any) -> Any:
        """Entry bits holding page-aligned ``pa`` (inverse of ``output_address``)."""
        bits = pa & self.page_oa_mask
        if self.pa52:
            bits = bits | (((pa >> 48) & 0xF) << lpae.PA52_SHIFT)
        return bits

    # ---- p_flags ---------------------------------------------------------------------------

    def unpack_attributes(self, p_flags: Any) -> Any:
        """The attribute bits ``p_flags`` record (no output address)."""
        bits = p_flags & 0
        for pos, width, shift in self.p_flags_fields:
            bits = bits | (((p_flags >> pos) & ((1 << width) - 1)) << shift)
        return bits

    def unpack_p_flags(self, p_flags: Any, p_paddr: Any) -> Any:
        """The entry a dump's ``p_paddr``/``p_flags`` let a reader rebuild: for UAT driver
        dumps type, SH, nG and bits 13:12 read as zero (``not_recorded_fields``)."""
        return self.encode_output_address(p_paddr) | self.unpack_attributes(p_flags)

    # ---- fields -------------------------------------------------------------------------

    def field_value(self, pte: int, name: str) -> int:
        shift, width = self.fields[name]
        return (pte >> shift) & ((1 << width) - 1)

    @staticmethod
    def memattr(pte: Any) -> Any:
        return (pte >> MEMATTR_SHIFT) & MEMATTR_MASK

    def views(self, pte: int) -> tuple[str, str]:
        """The two permission views of a leaf entry."""
        return self.view_functions[0](pte), self.view_functions[1](pte)

    def keyed_views(self, pte: int) -> dict[str, str]:
        """The two permission views under their JSON keys (``view_keys``)."""
        return dict(zip(self.view_keys, self.views(pte), strict=True))

    def is_block(self, type_value: int, level: int) -> bool:
        return type_value == TYPE_BLOCK and level in self.block_levels

    def type_name(self, type_value: int, level: int, is_leaf_level: bool) -> str:
        """ "empty", "table", "page", "block" or "invalid". UAT has no blocks: the driver never
        writes type 01 ("unexpected table PTE") and m1n1's ``valid()`` wants bits 0 and 1."""
        if type_value == TYPE_EMPTY:
            return "empty"
        if type_value == TYPE_TABLE:
            return "page" if is_leaf_level else "table"
        if type_value == TYPE_BLOCK and not is_leaf_level and level in self.block_levels:
            return "block"
        return "invalid"

    def descriptor_fields(self, type_name: str) -> tuple[str, ...]:
        """The declared fields an entry of ``type_name`` has: a table's (``table_fields``),
        a page's or block's (every field but ``leaf_excluded``), or only the type for an
        empty or invalid entry."""
        if type_name == "table":
            return self.table_fields
        if type_name in ("page", "block"):
            return tuple(name for name in self.fields if name not in self.leaf_excluded)
        return ("type",)

    def meaning(self, name: str, value: int, table: bool = False) -> str:
        """What a field's value means (``table``: in a table descriptor); "reserved /
        ignored" or "set (...)" for bits without a meaning of their own."""
        describe = self.table_meanings.get(name) if table else None
        describe = describe or self.meanings.get(name)
        if describe is not None:
            return describe(value)
        return "reserved / ignored" if value == 0 else f"set ({value:#x})"


def _flag(on: str, off: str) -> Callable[[int], str]:
    return lambda value: on if value else off


_COMMON_MEANINGS: dict[str, Callable[[int], str]] = {
    "uxn": _flag("unprivileged execute never", "unprivileged execute allowed"),
    "pxn": _flag("privileged execute never", "privileged execute allowed"),
    "ng": _flag("not global (per-ASID)", "global"),
    "af": _flag("access flag", "access flag clear (faults on access)"),
    "sh": lambda v: {0: "non-shareable", 1: "reserved", 2: "outer", 3: "inner"}[v],
}


def _uat() -> EntryFormat:
    meanings = dict(_COMMON_MEANINGS)
    meanings.update(
        memattr=uat.memattr_description,
        ap=lambda v: f"AP{v}",
        oa_pfn=lambda v: f"output address {v << uat.PAGE_SHIFT:#x}",
        gpu_access=_flag("GPU access (OS owned)", "firmware only"),
    )
    return EntryFormat(
        id=ext.ENTRY_FORMAT_UAT,
        name="uat",
        page_shift=uat.PAGE_SHIFT,
        declaration=uat.UatEntry,
        fields=uat.FIELDS,
        oa_bits=uat.OA_MASK_FULL,
        pa52=False,
        block_levels=frozenset(),
        memattr_names=uat.MEMATTR_NAMES,
        memattr_description=uat.memattr_description,
        dumpable_memattrs=uat.DUMPABLE_MEMATTRS,
        device_memattrs=uat.DEVICE_MEMATTRS,
        view_names=("firmware", "GPU"),
        view_short=("fw", "gpu"),
        view_keys=("firmware", "gpu"),
        view_functions=(uat.firmware_view, uat.gpu_view),
        check_views=(
            ("firmware", uat.firmware_view),
            ("GPU", uat.gpu_view),
            ("firmware EL1", lambda pte: uat.firmware_el1_gl1(pte)[0]),
            ("firmware GL1", lambda pte: uat.firmware_el1_gl1(pte)[1]),
        ),
        pack_p_flags=uat.pack_p_flags,
        p_flags_fields=(
            (uat.PFLAGS_LOW_POS, 12, 0),
            (uat.PFLAGS_HIGH_POS, 12, uat.PFLAGS_HIGH_SHIFT),
        ),
        not_recorded_fields=uat.NOT_RECORDED_FIELDS_DRIVER,
        meanings=meanings,
        oas_truncates=True,
        table_fields=("oa_pfn", "type"),
        table_meanings={"oa_pfn": lambda v: f"next-level table at {v << uat.PAGE_SHIFT:#x}"},
        leaf_excluded=(),
    )


LPAE_AP_TABLE = {
    0: "APTable 0: no limit below",
    1: "APTable 1: no unprivileged access below",
    2: "APTable 2: no writes below",
    3: "APTable 3: no writes and no unprivileged access below",
}


def _lpae(name: str, entry_format_id: int, granule: str) -> EntryFormat:
    page_shift = lpae.GRANULE_SHIFTS[granule]
    meanings = dict(_COMMON_MEANINGS)
    meanings.update(
        attr_indx=lpae.memattr_description,
        oa=lambda v: f"output address {v << 12:#x}",
        ap_ro=_flag("AP[2] read-only", "AP[2] clear: writable"),
        ap_unpriv=_flag("AP[1] unprivileged access", "AP[1] clear: privileged only"),
        ns=_flag("non-secure", "secure"),
        dbm=_flag("dirty bit modifier", "no dirty bit modifier"),
        contiguous=_flag("contiguous hint", "no contiguous hint"),
        uxn=_flag("(U)XN: unprivileged execute never", "unprivileged execute allowed"),
    )
    table_meanings: dict[str, Callable[[int], str]] = {
        "ns_table": _flag("NSTable: the next level is non-secure", "NSTable 0"),
        "ap_table": lambda v: LPAE_AP_TABLE[v],
        "uxn_table": _flag(
            "UXNTable/XNTable: unprivileged execute never below", "UXNTable/XNTable 0"
        ),
        "pxn_table": _flag("PXNTable: privileged execute never below", "PXNTable 0"),
        "oa": lambda v: f"next-level table at {(v << 12) & ~((1 << page_shift) - 1):#x}",
    }
    if page_shift == 16:
        meanings["oa"] = lambda v: (
            f"output address {(v << 12) & ~0xFFFF:#x}, PA[51:48] {(v & 0xF):#x}"
        )
        table_meanings["oa"] = lambda v: (
            f"next-level table at {(v << 12) & ~0xFFFF:#x}, PA[51:48] {(v & 0xF):#x}"
        )
    return EntryFormat(
        id=entry_format_id,
        name=name,
        page_shift=page_shift,
        declaration=lpae.LpaeEntry,
        fields=lpae.FIELDS,
        oa_bits=lpae.OA_MASK,
        pa52=page_shift == 16,
        block_levels=lpae.block_levels(page_shift),
        memattr_names=lpae.MEMATTR_NAMES,
        memattr_description=lpae.memattr_description,
        dumpable_memattrs=lpae.DUMPABLE_MEMATTRS,
        device_memattrs=lpae.DEVICE_MEMATTRS,
        view_names=("privileged", "unprivileged"),
        view_short=("priv", "unpriv"),
        view_keys=("privileged", "unprivileged"),
        view_functions=(lpae.privileged_view, lpae.unprivileged_view),
        check_views=(
            ("privileged", lpae.privileged_view),
            ("unprivileged", lpae.unprivileged_view),
        ),
        pack_p_flags=lpae.pack_p_flags,
        p_flags_fields=(
            (lpae.PFLAGS_MID_POS, 4, lpae.PFLAGS_MID_SHIFT),
            (lpae.PFLAGS_LOW_POS, 12, 0),
            (lpae.PFLAGS_HIGH_POS, 12, lpae.PFLAGS_HIGH_SHIFT),
        ),
        not_recorded_fields=(),
        meanings=meanings,
        oas_truncates=False,
        table_fields=("ns_table", "ap_table", "uxn_table", "pxn_table", "oa", "type"),
        table_meanings=table_meanings,
        leaf_excluded=("ns_table", "ap_table", "uxn_table", "pxn_table"),
    )


UAT = _uat()
LPAE_4K = _lpae("lpae-4k", ext.ENTRY_FORMAT_LPAE_4K, "4k")
LPAE_16K = _lpae("lpae-16k", ext.ENTRY_FORMAT_LPAE_16K, "16k")
LPAE_64K = _lpae("lpae-64k", ext.ENTRY_FORMAT_LPAE_64K, "64k")
ENTRY_FORMATS: dict[int, EntryFormat] = {f.id: f for f in (UAT, LPAE_4K, LPAE_16K, LPAE_64K)}
BY_NAME: dict[str, EntryFormat] = {f.name: f for f in ENTRY_FORMATS.values()}


def entry_format(entry_format_id: int) -> EntryFormat:
    """The format with extension id ``entry_format_id``; ``KeyError`` if unknown."""
    return ENTRY_FORMATS[entry_format_id]
