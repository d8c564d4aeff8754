"""The RTKit crash log as a person reads it: exception syndrome, fault address, Ccdp checks,
and every decoded entry as plain-text sections.

Owns decoding an ARMv8 ESR_ELx value (``decode_esr``: exception class, IL, ISS and, for the
classes that have them, the fault status code and syndrome bits), checking the firmware's
recorded VA/PA pairs against the dump's own translation (``check_ccdp``), and the sections any
view shows for a dump's crash logs (``crashlog_sections``). No Textual, no click.

Nothing here raises for a hostile log: ``formats.clhe.parse_crashlog`` already never raises,
entries whose payload did not decode have ``fields`` None and are reported as such, and
``decode_esr`` is total over 64-bit values (bits it does not know are named, not rejected).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dumpview.model.guard import guarded
from dumpview.model.text import data_state, hexdump_lines, walk_lines
from formats import clhe

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

RAW_PREVIEW_BYTES = 64
REGISTERS_PER_LINE = 3

# ESR_ELx.EC (bits 31:26), Arm ARM D19.2 "ESR_EL1".
EC_NAMES: dict[int, str] = {
    0x00: "unknown reason",
    0x01: "trapped WFI/WFE",
    0x03: "trapped MCR/MRC (coproc 0b1111), AArch32",
    0x04: "trapped MCRR/MRRC (coproc 0b1111), AArch32",
    0x05: "trapped MCR/MRC (coproc 0b1110), AArch32",
    0x06: "trapped LDC/STC, AArch32",
    0x07: "SVE/SIMD/floating point access trap",
    0x09: "pointer authentication instruction trap",
    0x0A: "trapped LD64B/ST64B",
    0x0C: "trapped MRRC (coproc 0b1110), AArch32",
    0x0D: "branch target exception",
    0x0E: "illegal execution state",
    0x11: "SVC, AArch32",
    0x12: "HVC, AArch32",
    0x13: "SMC, AArch32",
    0x15: "SVC, AArch64",
    0x16: "HVC, AArch64",
    0x17: "SMC, AArch64",
    0x18: "trapped MSR/MRS/system instruction, AArch64",
    0x19: "SVE access trap",
    0x1A: "trapped ERET/ERETAA/ERETAB",
    0x1C: "pointer authentication failure",
    0x1D: "SME access trap",
    0x1F: "implementation defined exception to EL3",
    0x20: "instruction abort from a lower EL",
    0x21: "instruction abort, same EL",
    0x22: "PC alignment fault",
    0x24: "data abort from a lower EL",
    0x25: "data abort, same EL",
    0x26: "SP alignment fault",
    0x27: "memory operation exception",
    0x28: "trapped floating point exception, AArch32",
    0x2C: "trapped floating point exception, AArch64",
    0x2F: "SError interrupt",
    0x30: "breakpoint from a lower EL",
    0x31: "breakpoint, same EL",
    0x32: "software step from a lower EL",
    0x33: "software step, same EL",
    0x34: "watchpoint from a lower EL",
    0x35: "watchpoint, same EL",
    0x38: "BKPT, AArch32",
    0x3A: "vector catch, AArch32",
    0x3C: "BRK, AArch64",
}
EC_INSTRUCTION_ABORTS = frozenset({0x20, 0x21})
EC_DATA_ABORTS = frozenset({0x24, 0x25})
EC_CALLS = frozenset({0x15, 0x16, 0x17})  # SVC/HVC/SMC AArch64: ISS 15:0 is the immediate
EC_SYSREG = 0x18
EC_SERROR = 0x2F
EC_BRK = 0x3C

# DFSC/IFSC (ISS bits 5:0): groups of four by lookup level, then single codes.
FSC_LEVELLED: dict[int, str] = {
    0x00: "address size fault",
    0x04: "translation fault",
    0x08: "access flag fault",
    0x0C: "permission fault",
    0x14: "synchronous external abort on translation table walk",
    0x1C: "synchronous parity or ECC error on translation table walk",
    0x24: "granule protection fault on translation table walk",
}
FSC_NAMES: dict[int, str] = {
    0x10: "synchronous external abort, not on translation table walk",
    0x11: "synchronous tag check fault",
    0x13: "synchronous external abort on translation table walk, level -1",
    0x18: "synchronous parity or ECC error, not on translation table walk",
    0x1B: "synchronous parity or ECC error on translation table walk, level -1",
    0x21: "alignment fault",
    0x22: "debug exception",
    0x23: "granule protection fault on translation table walk, level -1",
    0x28: "granule protection fault, not on translation table walk",
    0x29: "address size fault, level -1",
    0x2B: "translation fault, level -1",
    0x30: "TLB conflict abort",
    0x31: "unsupported atomic hardware update fault",
    0x34: "implementation defined fault (lockdown)",
    0x35: "implementation defined fault (unsupported exclusive or atomic access)",
}
SERROR_AET = {
    0: "uncontainable (UC)",
    1: "unrecoverable state (UEU)",
    2: "restartable state (UEO)",
    3: "recoverable state (UER)",
    6: "corrected (CE)",
}


def _bits(value: int, high: int, low: int) -> int:
    return (value >> low) & ((1 << (high - low + 1)) - 1)


def fault_status_name(fsc: int) -> str:
    """The name of a DFSC/IFSC value (ISS bits 5:0), e.g. "translation fault, level 3"."""
    levelled = FSC_LEVELLED.get(fsc & ~3)
    if levelled is not None:
        return f"{levelled}, level {fsc & 3}"
    return FSC_NAMES.get(fsc, f"reserved fault status {fsc:#04x}")


@dataclass
class EsrInfo:
    """A decoded ESR_ELx: class, instruction length, syndrome, and what the syndrome says."""

    esr: int
    ec: int
    ec_name: str
    il: int
    iss: int
    details: list[str]


def _abort_details(iss: int, data: bool) -> list[str]:
    fsc = _bits(iss, 5, 0)
    out = [f"{'DFSC' if data else 'IFSC'} {fsc:#04x}: {fault_status_name(fsc)}"]
    if data:
        out.append(f"WnR {_bits(iss, 6, 6)}: {'write' if _bits(iss, 6, 6) else 'read'}")
        if _bits(iss, 24, 24):
            size_bytes = 1 << _bits(iss, 23, 22)
            register = ("x" if _bits(iss, 15, 15) else "w") + str(_bits(iss, 20, 16))
            extra = ", sign-extended" if _bits(iss, 21, 21) else ""
            extra += ", acquire/release" if _bits(iss, 14, 14) else ""
            out.append(f"ISV 1: {size_bytes}-byte access, register {register}{extra}")
        else:
            out.append("ISV 0: no instruction syndrome")
    out.append("FnV 1: FAR is not valid" if _bits(iss, 10, 10) else "FnV 0: FAR is valid")
    if _bits(iss, 9, 9):
        out.append("EA 1: external abort type (implementation defined)")
    if data and _bits(iss, 8, 8):
        out.append("CM 1: fault on a cache maintenance or address translation instruction")
    if _bits(iss, 7, 7):
        out.append("S1PTW 1: fault on the stage 2 walk of a stage 1 translation table")
    return out


def _sysreg_details(iss: int) -> list[str]:
    op0, op2, op1 = _bits(iss, 21, 20), _bits(iss, 19, 17), _bits(iss, 16, 14)
    crn, rt, crm = _bits(iss, 13, 10), _bits(iss, 9, 5), _bits(iss, 4, 1)
    name = f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"
    if _bits(iss, 0, 0):
        return [f"read (MRS) of {name} into x{rt}"]
    return [f"write (MSR) of x{rt} to {name}"]


def _serror_details(iss: int) -> list[str]:
    if _bits(iss, 24, 24):
        return [f"IDS 1: implementation defined syndrome {_bits(iss, 23, 0):#x}"]
    dfsc = _bits(iss, 5, 0)
    kind = {0x00: "uncategorized", 0x11: "asynchronous SError interrupt"}.get(
        dfsc, f"reserved DFSC {dfsc:#04x}"
    )
    aet = _bits(iss, 12, 10)
    out = [f"DFSC {dfsc:#04x}: {kind}"]
    if dfsc == 0x11:
        out.append(f"AET {aet}: {SERROR_AET.get(aet, 'reserved')}")
    return out


def decode_esr(esr: int) -> EsrInfo:
    """Decode ESR_ELx (any 64-bit value): EC bits 31:26, IL bit 25, ISS bits 24:0, ISS2 36:32."""
    esr &= (1 << 64) - 1
    ec, il, iss = _bits(esr, 31, 26), _bits(esr, 25, 25), _bits(esr, 24, 0)
    if ec in EC_DATA_ABORTS or ec in EC_INSTRUCTION_ABORTS:
        details = _abort_details(iss, data=ec in EC_DATA_ABORTS)
    elif ec in EC_CALLS:
        details = [f"immediate {_bits(iss, 15, 0):#06x}"]
    elif ec == EC_BRK:
        details = [f"BRK comment {_bits(iss, 15, 0):#06x}"]
    elif ec == EC_SYSREG:
        details = _sysreg_details(iss)
    elif ec == EC_SERROR:
        details = _serror_details(iss)
    else:
        details = []
    if _bits(esr, 36, 32):
        details.append(f"ISS2 {_bits(esr, 36, 32):#x}")
    if esr >> 37:
        details.append(f"bits 63:37 are set ({esr >> 37 << 37:#x}): they should be zero")
    return EsrInfo(esr, ec, EC_NAMES.get(ec, f"EC {ec:#04x}"), il, iss, details)


# ---- Ccdp ---------------------------------------------------------------------------------------


@dataclass
class CcdpCheck:
    """One Ccdp pair against the dump: ``pa_dump`` None when the dump does not map the VA."""

    va: int
    pa_log: int
    pa_dump: int | None
    agree: bool
    note: str


def check_ccdp(dump: Dump, log: clhe.CrashLog) -> list[CcdpCheck]:
    """Every decoded Ccdp pair of ``log`` checked against the dump's translation of its VA
    (exact PA comparison, page offset included)."""
    out = []
    for va, pa, _unknown in clhe.ccdp_pairs(log):
        walk = dump.translate(va)
        if walk.pa is None:
            note = f"not mapped in the dump: walk stopped at L{walk.stopped_level}: "
            out.append(CcdpCheck(va, pa, None, False, note + str(walk.stopped_reason)))
        elif walk.pa == pa:
            out.append(CcdpCheck(va, pa, walk.pa, True, "the dump maps it to the same PA"))
        else:
            out.append(CcdpCheck(va, pa, walk.pa, False, f"dump maps it to {walk.pa:#x}"))
    return out


# ---- the fault ----------------------------------------------------------------------------------


@dataclass
class Fault:
    """What the firmware faulted on: the FAR, the ESR decoded, and the FAR's walk in the dump."""

    far: int
    esr: EsrInfo
    walk: Any  # dumpview.model.translate.Translation


@guarded
def fault(dump: Dump, log: clhe.CrashLog | None = None) -> Fault | None:
    """The fault of ``log`` (default: the dump's first crash log) from its first decoded Crg8
    entry; None when there is no crash log or no decoded register entry."""
    log = dump.crashlog if log is None else log
    if log is None:
        return None
    for entry in _entries(log, "Crg8"):
        if entry.fields is not None:
            far = int(entry.fields.far)
            return Fault(far, decode_esr(int(entry.fields.esr)), dump.translate(far))
    return None


# ---- sections -----------------------------------------------------------------------------------


@dataclass
class Section:
    title: str
    lines: list[str]


def _entries(log: clhe.CrashLog, kind: str) -> list[clhe.ClheEntry]:
    return [entry for entry in log.entries if entry.kind == kind]


def _undecoded(entry: clhe.ClheEntry) -> str:
    return f"{entry.kind} entry at offset {entry.offset:#x} did not decode (see warnings)"


def _decoded_lines(log: clhe.CrashLog, kind: str, render: Any) -> list[str]:
    """``render(fields)`` for each ``kind`` entry, a note for those that did not decode."""
    lines: list[str] = []
    for entry in _entries(log, kind):
        lines.extend([_undecoded(entry)] if entry.fields is None else render(entry.fields))
    return lines


def _panic_lines(fields: Any) -> list[str]:
    return [f"{fields.message} (id {fields.id})"]


def _version_lines(fields: Any) -> list[str]:
    return [f"firmware {fields.version}", f"uuid {fields.uuid.hex()}"]


def _time_lines(fields: Any) -> list[str]:
    return [f"time {fields.time:#x} ({fields.time})"]


def _register_lines(fields: Any) -> list[str]:
    named = [(f"x{i}", value) for i, value in enumerate(fields.x)]
    named += [(name, fields[name]) for name in ("sp", "pc", "psr", "far", "esr")]
    named += [(name, fields[name]) for name in ("cpacr", "fpsr", "fpcr")]
    cells = [f"{name:>5} {value:#018x}" for name, value in named]
    return [
        "  ".join(cells[i : i + REGISTERS_PER_LINE])
        for i in range(0, len(cells), REGISTERS_PER_LINE)
    ]


def _esr_lines(fields: Any) -> list[str]:
    info = decode_esr(fields.esr)
    return [
        f"ESR {info.esr:#x}: EC {info.ec:#04x} {info.ec_name}",
        f"IL {info.il}: {'32' if info.il else '16'}-bit instruction, ISS {info.iss:#09x}",
        *info.details,
    ]


def _fault_address_lines(dump: Dump, far: int) -> list[str]:
    walk = dump.translate(far)
    if walk.pa is None:
        head = [
            f"FAR {far:#x} is not mapped: walk stopped at L{walk.stopped_level}: "
            f"{walk.stopped_reason}"
        ]
    else:
        leaf = walk.leaf
        head = [
            f"FAR {far:#x} -> PA {walk.pa:#x}",
            f"{leaf.memattr_name}, {leaf.permissions}"
            + (" (entry rebuilt from the PT_LOAD)" if walk.rebuilt else ""),
        ]
        page = walk.page
        if page is not None and not page.dumped:
            head.append("page " + data_state(False, page.reason, page.reason_detail))
    return head + walk_lines(walk)


def _stack_lines(fields: Any) -> list[str]:
    return [f"task {fields.task}"] + [
        f"#{i:<2} {address:#018x}" for i, address in enumerate(fields.return_addresses)
    ]


def _mailbox_lines(fields: Any) -> list[str]:
    header = " ".join(str(word) for word in fields.header)
    return [f"type {fields.type}, index {fields.index}, header {header}"] + [
        f"#{i:<2} endpoint {r.endpoint:#06x}  message {r.message:#018x}  timestamp {r.timestamp}"
        for i, r in enumerate(fields.records)
    ]


def _task_lines(fields: Any) -> list[str]:
    lines = []
    for task in fields.tasks:
        ptrs = ", ".join(f"{p:#x}" for p in task.ptrs) or "none"
        lines.append(
            f"{task.id:3d} {task.name:<16} flags {task.flags:#06x}  ptr {task.ptr:#x}  ptrs {ptrs}"
        )
    return lines


def _async_lines(fields: Any) -> list[str]:
    names = ("l2c_err_sts", "l2c_err_adr", "l2c_err_inf", "lsu_err_sts", "fed_err_sts")
    return [f"{name:<12} {fields[name]:#018x}" for name in (*names, "mmu_err_sts")]


def _log_sections(dump: Dump, log: clhe.CrashLog) -> list[Section]:
    if log.format != "clhe":
        preview = hexdump_lines(0, log.raw[:RAW_PREVIEW_BYTES])
        sections = [
            Section(
                "Crash log (raw)",
                [f"{len(log.raw)} bytes, not a CLHE crash log; first bytes:", *preview],
            )
        ]
        if log.warnings:
            sections.append(Section("Crash log warnings", list(log.warnings)))
        return sections

    sections = [
        Section("Panic", _decoded_lines(log, "Cstr", _panic_lines) or ["no Cstr entry"]),
        Section(
            "Crash log",
            [
                f"CLHE version {log.version}, {log.total_size:#x} bytes, "
                f"{len(log.entries)} entries" + ("" if log.closed else ", not closed"),
                *_decoded_lines(log, "Cver", _version_lines),
                *_decoded_lines(log, "Ctim", _time_lines),
            ],
        ),
    ]
    for title, kind, render in (
        ("Registers", "Crg8", _register_lines),
        ("Exception", "Crg8", _esr_lines),
        ("Fault address", "Crg8", lambda fields: _fault_address_lines(dump, fields.far)),
        ("Call stack", "Ccst", _stack_lines),
        ("Mailbox", "Cmbx", _mailbox_lines),
        ("Tasks", "Crtk", _task_lines),
        ("Async errors", "CasC", _async_lines),
    ):
        if _entries(log, kind):
            sections.append(Section(title, _decoded_lines(log, kind, render)))
    if _entries(log, "Ccdp"):
        lines = [
            f"{c.va:#x} -> {c.pa_log:#x}: " + ("agree" if c.agree else f"DISAGREE: {c.note}")
            for c in check_ccdp(dump, log)
        ]
        lines += [_undecoded(e) for e in _entries(log, "Ccdp") if e.fields is None]
        sections.append(Section("Ccdp pairs", lines or ["no pairs"]))
    other = [e for e in log.entries if e.kind not in clhe.PAYLOADS]
    if other:
        lines = [f"{e.kind!r} at offset {e.offset:#x}, {len(e.payload)} bytes" for e in other]
        sections.append(Section("Other entries", lines))
    if log.warnings:
        sections.append(Section("Crash log warnings", list(log.warnings)))
    return sections


@guarded
def crashlog_sections(dump: Dump) -> list[Section]:
    """Everything the dump's crash log(s) say, as titled plain-text sections. With several
    RTKIT notes, titles start with "log N: "."""
    logs = dump.crashlogs
    if not logs:
        return [Section("Crash log", ["this dump has no crash log (no RTKIT note)"])]
    if len(logs) == 1:
        return _log_sections(dump, logs[0])
    return [
        Section(f"log {n}: {section.title}", section.lines)
        for n, log in enumerate(logs, start=1)
        for section in _log_sections(dump, log)
    ]
