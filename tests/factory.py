"""Small dumps built through formats/ and the writer, for tests that need exact layouts.

Pages get deterministic contents derived from their PA so reads can be checked byte for byte.
"""

from __future__ import annotations

import io
from pathlib import Path

from dumpview.sim.writer import Extension, SegmentTable, write_core
from formats import agx, clhe, uat

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


def segment(va: int, pa: int, pages: int = 1, prot: str = "FW_PRIV_RW", data: bool = True
            ) -> tuple[int, int, int, int, bool]:
    pte = uat.PROTS[prot].bits | pa | 3
    return (va, pa, pages * PAGE, uat.pack_p_flags(pte), data)


def default_segments() -> list[tuple[int, int, int, int, bool]]:
    return [
        segment(BASE_VA, 0x8_0000_0000, 2),
        segment(BASE_VA + 2 * PAGE, 0x8_0010_0000, 1, "FW_SHARED_RW"),
        segment(BASE_VA + 0x10_0000, 0x2_0000_0000, 1, "FW_MMIO_RW", data=False),
        segment(BASE_VA + 0x20_0000, 0x9_0000_0000, 1, "GPU_SHARED_RW", data=False),
    ]


def build_dump(
    path: Path,
    segments: list[tuple[int, int, int, int, bool]] | None = None,
    notes: list[tuple[str, int, bytes]] | None = None,
    extension: Extension | None = None,
) -> Path:
    """Write a dump to ``path`` and return it."""
    rows = default_segments() if segments is None else segments
    buf = io.BytesIO()
    write_core(
        buf,
        SegmentTable.from_rows(rows),
        read_data,
        [agx_note(), crashlog_note()] if notes is None else notes,
        extension,
    )
    path.write_bytes(buf.getvalue())
    return path
