"""Small dumps built through formats/ and the writer, for tests that need exact layouts.

Pages get deterministic contents derived from their PA so reads can be checked byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dumpview.sim.writer import (
    Extension,
    HoleInfo,
    RegionInfo,
    SegmentTable,
    SpaceInfo,
    TableInfo,
    write_core,
)
from formats import agx, clhe, ext, uat

PAGE = uat.PAGE_SIZE
BASE_VA = 0xFFFF_FFA0_0000_0000


def page_bytes(pa: int) -> bytes:
    """16 KiB whose content says which PA they came from."""
    stamp = pa.to_bytes(8, "little")
    return (stamp + b"dumpview-page..." + bytes(range(40)))[:64] * (PAGE // 64)


def read_data(pa: int, size: int) -> bytes:
    return b"".join(page_bytes(pa + off) for off in range(0, size, PAGE))


def agx_note(**overrides) -> tuple[str, int, bytes]:
    fields = {
        "initdata_address": 0xFFFF_FFA0_0001_0000,
        "chip_id": 0x6000,
        "gpu_gen": 13,
        "gpu_variant": ord("C"),
        "gpu_rev": 0x11,
        "total_active_cores": 8,
        "firmware_version": [13, 5, 2, 0, 0, 0],
    }
    fields.update(overrides)
    return (agx.AGX_NOTE_NAME, agx.AGX_NOTE_TYPE, agx.build_agx_info(**fields))


def crashlog_note() -> tuple[str, int, bytes]:
    log = clhe.build_crashlog([("Cstr", {"id": 1, "message": "test panic"})])
    return ("RTKIT", 1, log)


def leaf_pte(pa: int, prot: str = "FW_PRIV_RW") -> int:
    """The leaf entry the driver writes for ``pa`` with a named protection (global, type 3)."""
    return uat.PROTS[prot].bits | pa | uat.PTE_PAGE


def segment(
    va: int, pa: int, pages: int = 1, prot: str = "FW_PRIV_RW", data: bool = True
) -> tuple[int, int, int, int, bool]:
    return (va, pa, pages * PAGE, uat.pack_p_flags(leaf_pte(pa, prot)), data)


def default_segments() -> list[tuple[int, int, int, int, bool]]:
    return [
        segment(BASE_VA, 0x8_0000_0000, 2),
        segment(BASE_VA + 2 * PAGE, 0x8_0010_0000, 1, "FW_SHARED_RW"),
        segment(BASE_VA + 0x10_0000, 0x2_0000_0000, 1, "FW_MMIO_RW", data=False),
        segment(BASE_VA + 0x20_0000, 0x9_0000_0000, 1, "GPU_SHARED_RW", data=False),
    ]


def build_dump(
    path: Path,
    segments: list[tuple[int, int, int, int, bool]] | SegmentTable | None = None,
    notes: list[tuple[str, int, bytes]] | None = None,
    extension: Extension | None = None,
    read_table: Callable[[int], bytes] | None = None,
) -> Path:
    """Write a dump to ``path`` and return it (rows or a ready SegmentTable)."""
    rows = default_segments() if segments is None else segments
    table = rows if isinstance(rows, SegmentTable) else SegmentTable.from_rows(rows)
    buf = io.BytesIO()
    write_core(
        buf,
        table,
        read_data,
        [agx_note(), crashlog_note()] if notes is None else notes,
        extension,
        read_table,
    )
    path.write_bytes(buf.getvalue())
    return path


# ---- many segments (PN_XNUM) -------------------------------------------------------------------


def many_segments(count: int, data_every: int = 5000, seed: int = 1) -> SegmentTable:
    """``count`` one-page PT_LOADs two pages apart, scattered PAs, data on every
    ``data_every``-th segment only (keeps the file small)."""
    rng = np.random.default_rng(seed)
    index = np.arange(count, dtype=np.uint64)
    pfns = rng.permutation(np.arange(count, dtype=np.uint64) * np.uint64(3))
    pa = np.uint64(0x8_0000_0000) + pfns * np.uint64(PAGE)
    flags = uat.pack_p_flags(leaf_pte(0, "FW_SHARED_RW"))
    return SegmentTable(
        va=np.uint64(BASE_VA) + index * np.uint64(2 * PAGE),
        pa=pa,
        size_bytes=np.full(count, PAGE, dtype=np.uint64),
        p_flags=np.full(count, flags, dtype=np.uint32),
        has_data=(index % np.uint64(data_every)) == 0,
    )


# ---- extension with real page tables ---------------------------------------------------------


def uat_extension(**overrides) -> Extension:
    """An extension with the UAT geometry and no records (override any field)."""
    fields = {"entry_format": ext.ENTRY_FORMAT_UAT, "geometry": uat.uat_geometry()}
    fields.update(overrides)
    return Extension(**fields)


def build_tables(
    leaves: dict[int, int], ttb_pa: int, first_table_pa: int
) -> tuple[list[TableInfo], dict[int, bytes]]:
    """The UAT tables (TTB, L2, L3) mapping ``leaves`` ({va: leaf entry}), written by hand.

    Table entries are ``table_pa | 3``; new tables get PAs from ``first_table_pa`` up.
    Returns the extension's table records and {table PA: 16 KiB content}.
    """
    geometry = uat.uat_geometry()
    l1, l2, l3 = geometry.levels
    space_start = geometry.va_base & ~geometry.ias_mask
    contents: dict[int, bytearray] = {ttb_pa: bytearray(PAGE)}
    infos = [TableInfo(l1.level, ttb_pa, space_start, 1 << geometry.ias, flags=ext.TABLE_IS_TTB)]
    next_pa = first_table_pa

    def child(parent_pa: int, index: int, level: int, va_start: int, span: int) -> int:
        nonlocal next_pa
        raw = contents[parent_pa]
        entry = int.from_bytes(raw[index * 8 : index * 8 + 8], "little")
        if entry:
            return entry & uat.OA_MASK_FULL
        pa = next_pa
        next_pa += PAGE
        raw[index * 8 : index * 8 + 8] = (pa | uat.PTE_TABLE).to_bytes(8, "little")
        contents[pa] = bytearray(PAGE)
        infos.append(TableInfo(level, pa, va_start, span))
        return pa

    for va, pte in sorted(leaves.items()):
        i1, i2, i3 = l1.index_of(va), l2.index_of(va), l3.index_of(va)
        l2_va = va & ~(l1.entry_span_bytes - 1)
        l2_pa = child(ttb_pa, i1, l2.level, l2_va, l1.entry_span_bytes)
        l3_va = va & ~(l2.entry_span_bytes - 1)
        l3_pa = child(l2_pa, i2, l3.level, l3_va, l2.entry_span_bytes)
        contents[l3_pa][i3 * 8 : i3 * 8 + 8] = pte.to_bytes(8, "little")
    return infos, {pa: bytes(raw) for pa, raw in contents.items()}


def build_dump_with_tables(
    path: Path,
    pages: list[tuple[int, int, str, bool]],
    *,
    ttb_pa: int = 0x7_0000_0000,
    regions: list[RegionInfo] | None = None,
    holes: list[HoleInfo] | None = None,
    leaf_overrides: dict[int, int] | None = None,
) -> tuple[Path, dict[int, int], dict[int, bytes]]:
    """A dump carrying its tables: ``pages`` are (va, pa, prot, has data), one page each.

    ``leaf_overrides`` ({va: entry}) puts extra or different leaf entries in the tables only.
    Returns the path, the leaf entries and the table contents by PA.
    """
    leaves = {va: leaf_pte(pa, prot) for va, pa, prot, _ in pages}
    leaves.update(leaf_overrides or {})
    infos, contents = build_tables(leaves, ttb_pa, ttb_pa + PAGE)
    geometry = uat.uat_geometry()
    space_start = geometry.va_base & ~geometry.ias_mask
    extension = uat_extension(
        spaces=[SpaceInfo(0, ttb_pa, space_start, 1 << geometry.ias, BASE_VA, 1 << 36)],
        tables=infos,
        regions=regions or [],
        holes=holes or [],
        scenario_name="factory",
        seed=7,
    )
    rows = [segment(va, pa, 1, prot, data) for va, pa, prot, data in sorted(pages)]
    build_dump(path, rows, extension=extension, read_table=contents.__getitem__)
    return path, leaves, contents


def bulk_page_tuples(dump, chunk_pages: int) -> list[tuple]:
    """Every page as ``PageRecord``-shaped tuples, read through the bulk columns
    (``page_chunks`` + ``hole_reasons``), ``chunk_pages`` at a time: compared with
    ``Dump.pages()`` by the tests of the bulk path."""
    from dumpview.model.pagearrays import hole_reasons, page_chunks

    out = []
    for chunk in page_chunks(dump, chunk_pages):
        assert len(chunk) <= chunk_pages
        codes, table = hole_reasons(dump, chunk.va, chunk.flags)
        for i in range(len(chunk)):
            dumped = bool(chunk.dumped[i])
            reason = (None, None) if dumped else table[int(codes[i])]
            out.append(
                (
                    int(chunk.va[i]),
                    int(chunk.pa[i]),
                    int(chunk.pa_raw[i]),
                    int(chunk.pte[i]),
                    bool(chunk.pte_exact[i]),
                    int(chunk.flags[i]),
                    dumped,
                    *reason,
                )
            )
    return out
