"""The crash log the simulated firmware leaves in the RTKIT note: what an AGX firmware panic
writes (firmware version, panic string, time, AArch64 registers with FAR and ESR, call stack,
mailbox, tasks, the Ccdp VA/PA pairs it recorded), built through ``formats.clhe``.

``firmware_crashlog`` is deterministic in its ``rng``; it raises ``ValueError`` only for a
payload ``formats.clhe`` cannot build (a bug here, not an input problem).
"""

from __future__ import annotations

import random

from dumpview.sim.firmware import FW_VA_START
from formats import clhe

FW_CODE_VA = FW_VA_START
FW_DATA_VA = FW_VA_START + 0x1000_0000
ESR_FSC_TRANSLATION = 0x04
ESR_FSC_PERMISSION = 0x0C


def firmware_crashlog(rng: random.Random, far: int, fsc: int, ccdp: list[tuple[int, int]]) -> bytes:
    """The CLHE crash log of a firmware page fault at ``far`` with fault status ``fsc``
    (a permission fault is an instruction abort: it branched into data; anything else a data
    abort, a read, same EL) and the firmware's recorded ``ccdp`` (VA, PA) pairs."""
    if fsc & ~3 == ESR_FSC_PERMISSION:  # an instruction abort: it branched into data
        esr, what = (0x21 << 26) | (1 << 25) | fsc, "instruction abort"
    else:  # a data abort (read), same EL
        esr, what = (0x25 << 26) | (1 << 25) | fsc, "data abort"
    regs = [rng.getrandbits(64) for _ in range(31)]
    regs[0] = far
    entries: list[tuple[str, bytes | dict]] = [
        (
            "Cver",
            {
                "uuid": bytes(rng.getrandbits(8) for _ in range(16)),
                "version": "RTKit_iOS-2404.120.14.release",
            },
        ),
        (
            "Cstr",
            {"id": 0, "message": f"GPU firmware panic: page fault at {far:#x} ({what})"},
        ),
        ("Ctim", {"time": 0x1234_5678_9ABC}),
        (
            "Crg8",
            {
                "unk0": 0,
                "unk1": 0,
                "x": regs,
                "sp": 0xFFFF_FF80_0010_3F00,
                "pc": FW_CODE_VA + 0x1A40,
                "psr": 0x6000_03C5,
                "cpacr": 0x30_0000,
                "fpsr": 0,
                "fpcr": 0,
                "unknown": [0] * 64,
                "far": far,
                "unknown2": 0,
                "esr": esr,
                "unknown3": 0,
            },
        ),
        (
            "Ccst",
            {
                "task": 3,
                "unknown": 0,
                "return_addresses": [FW_CODE_VA + off for off in (0x1A40, 0x2210, 0x30F8, 0x0C4C)],
            },
        ),
        (
            "Cmbx",
            {
                "header": [1, 0, 0, 0],
                "type": 1,
                "unknown": 0,
                "index": 2,
                "records": [
                    {
                        "endpoint": 0x20 + i,
                        "message": rng.getrandbits(64),
                        "timestamp": 1000 + i,
                    }
                    for i in range(4)
                ],
            },
        ),
        (
            "Crtk",
            {
                "tasks": [
                    {
                        "id": i,
                        "flags": 1,
                        "unk0": [0, 0, 0],
                        "ptr": FW_DATA_VA + i * 0x100,
                        "unk1": [0, 0, 0, 0],
                        "name": name,
                        "ptrs": [FW_DATA_VA + i * 0x100 + 8],
                    }
                    for i, name in enumerate(("rtk_ep", "gpu_main", "power"))
                ]
            },
        ),
        ("Ccdp", {"pairs": [{"va": va, "pa": pa, "unknown": 0} for va, pa in ccdp]}),
    ]
    return clhe.build_crashlog(entries)
