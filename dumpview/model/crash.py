"""The RTKit crash log as a person reads it: exception syndrome, fault address, Ccdp checks,
and every decoded entry as plain-text sections.

Owns checking what the firmware says against the dump's own tables (``check_ccdp``: its
recorded VA/PA pairs; ``compare_fault``: the fault status's kind and lookup level against the
dump's walk of the FAR), and the sections any view shows for a dump's crash logs
(``crashlog_sections``). The ESR itself is decoded by ``dumpview.model.esr`` (re-exported
here). No Textual, no click.

Fault status against the walk (``compare_fault``): a translation fault at level N agrees when
the dump's walk of the FAR stops at LN too (a rebuilt walk that stops above LN cannot tell: a
driver dump shows no empty tables); an access flag fault when the FAR is mapped by a
leaf at LN whose AF is clear (a driver dump does not record AF: then it cannot tell); a
permission fault when the FAR is mapped by a leaf at LN; an address size fault when the walk
meets an output address with bits at or above the OAS at LN (or in the table entry above it).
Anything else (no abort, FnV set, a status without a level, a FAR outside the dumped space)
cannot be compared (``agrees`` None). A disagreement is the ``fault-mismatch`` finding of
``dumpview.model.check``.

Nothing here raises for a hostile log: ``formats.clhe.parse_crashlog`` already never raises,
entries whose payload did not decode have ``fields`` None and are reported as such, and
``dumpview.model.esr.decode_esr`` is total over 64-bit values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dumpview.model.entries import source_notes
from dumpview.model.esr import (  # noqa: F401 (re-exported: the crash log's decoder)
    EC_NAMES,
    FSC_ACCESS_FLAG,
    FSC_ADDRESS_SIZE,
    FSC_TABLE_KINDS,
    FSC_TRANSLATION,
    EsrInfo,
    decode_esr,
    fault_status_name,
)
from dumpview.model.guard import guarded
from dumpview.model.text import data_state, hexdump_lines, oas_flag, pa_text, walk_lines
from formats import clhe

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

RAW_PREVIEW_BYTES = 64
REGISTERS_PER_LINE = 3

# ---- Ccdp ---------------------------------------------------------------------------------------


@dataclass
class CcdpCheck:
    """One Ccdp pair against the dump: ``pa_dump`` (the walker's PA) None when the dump does not
    map the VA; ``pa_dump_raw`` what the entry says (differs only above the OAS)."""

    va: int
    pa_log: int
    pa_dump: int | None
    agree: bool
    note: str
    pa_dump_raw: int | None = None


def check_ccdp(dump: Dump, log: clhe.CrashLog) -> list[CcdpCheck]:
    """Every decoded Ccdp pair of ``log`` checked against the dump's translation of its VA
    (exact PA comparison with the walker's PA, page offset included). Computed once per log
    and dump (``Dump.computed``): callers share the list and must not change it."""
    key = ("ccdp", id(log))
    kept = dump.computed.get(key)
    if kept is None:  # the log is kept with its result: its id is not reused meanwhile
        kept = dump.computed[key] = (log, _check_ccdp(dump, log))
    return kept[1]


def _check_ccdp(dump: Dump, log: clhe.CrashLog) -> list[CcdpCheck]:
    out = []
    oas = dump.geometry.oas
    for va, pa, _unknown in clhe.ccdp_pairs(log):
        walk = dump.translate(va)
        if walk.pa is None:
            note = f"not mapped in the dump: walk stopped at L{walk.stopped_level}: "
            out.append(CcdpCheck(va, pa, None, False, note + str(walk.stopped_reason)))
            continue
        shown = pa_text(walk.pa, walk.pa_raw, oas)
        if walk.pa == pa:
            note = "the dump maps it to the same PA" + oas_flag(walk.pa, walk.pa_raw, oas)
            out.append(CcdpCheck(va, pa, walk.pa, True, note, walk.pa_raw))
        else:
            out.append(CcdpCheck(va, pa, walk.pa, False, f"dump maps it to {shown}", walk.pa_raw))
    return out


# ---- the fault ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultComparison:
    """The ESR's fault status against the dump's walk of the FAR: ``agrees`` None when they
    cannot be compared (``note`` says why), else whether the tables show that fault."""

    fault_status: str | None  # "translation fault, level 3"; None when the ESR is no abort
    level: int | None  # the lookup level the fault status names
    agrees: bool | None
    note: str  # one sentence: what the dump's walk shows


@dataclass
class Fault:
    """What the firmware faulted on: the FAR, the ESR decoded, the FAR's walk in the dump and
    whether that walk shows the fault the ESR names (``comparison``)."""

    far: int
    esr: EsrInfo
    walk: Any  # dumpview.model.translate.Translation
    comparison: FaultComparison


def _walk_summary(walk: Any) -> str:
    if walk.mapped:
        level = walk.steps[-1].level if walk.steps else "?"
        return f"maps it to PA {walk.pa:#x} (leaf at L{level})"
    return f"stops at L{walk.stopped_level}: {walk.stopped_reason}"


def compare_fault(esr: EsrInfo, walk: Any, oas: int) -> FaultComparison:
    """Whether the dump's ``walk`` of the FAR shows the fault ``esr`` names (see the module
    docstring for the rules). ``oas`` is the geometry's output address size. Total: never
    raises."""
    status = esr.fault_status
    if esr.fsc is None:
        return FaultComparison(None, None, None, f"EC {esr.ec:#04x} is not an abort")
    kind = esr.fsc & ~3
    level = esr.fsc & 3
    if kind not in FSC_TABLE_KINDS:
        return FaultComparison(status, None, None, "this fault status names no table entry")
    if not esr.far_valid:
        return FaultComparison(status, level, None, "FnV is set: the FAR is not valid")
    if not walk.steps:
        return FaultComparison(status, level, None, f"the FAR is {walk.stopped_reason}")
    rebuilt = " (rebuilt walk)" if walk.rebuilt else ""
    seen = f"the dump's walk{rebuilt} {_walk_summary(walk)}"
    leaf_level = walk.steps[-1].level if walk.mapped else None
    if kind == FSC_TRANSLATION:
        if walk.rebuilt and not walk.mapped and level > walk.stopped_level:
            # Rebuilt levels prove tables only where PT_LOADs lie: a deeper empty table
            # (allocated, nothing mapped) would not show.
            note = f"{seen}; a driver dump cannot tell whether a table exists below that level"
            return FaultComparison(status, level, None, note)
        agrees = not walk.mapped and walk.stopped_level == level
        return FaultComparison(status, level, agrees, seen)
    if kind == FSC_ADDRESS_SIZE:
        stray = [
            step.level
            for step in walk.steps
            if step.decoded is not None and step.decoded.output_address_raw >> oas
        ]
        agrees = any(at in (level, level - 1) for at in stray)
        if stray:
            where = ", ".join(f"L{at}" for at in stray)
            seen += f"; output address bits at or above the {oas}-bit OAS at {where}"
        else:
            seen += f"; no entry on the way has output address bits at or above the {oas}-bit OAS"
        return FaultComparison(status, level, agrees, seen)
    if leaf_level != level:
        return FaultComparison(status, level, False, seen)
    if kind == FSC_ACCESS_FLAG:
        af = walk.leaf.af
        if af is None:
            note = f"{seen}; a driver dump does not record AF"
            return FaultComparison(status, level, None, note)
        return FaultComparison(status, level, not af, f"{seen}; its AF is {int(af)}")
    access = "a write" if esr.write else ("an instruction fetch" if esr.write is None else "a read")
    note = f"{seen}, {walk.leaf.permissions}; the access was {access}"
    return FaultComparison(status, level, True, note)


@guarded
def fault(dump: Dump, log: clhe.CrashLog | None = None) -> Fault | None:
    """The fault of ``log`` (default: the dump's first crash log) from its first decoded Crg8
    entry; None when there is no crash log or no decoded AArch64 register entry (a ``CrgA``
    AArch32 set records no FAR or ESR)."""
    log = dump.crashlog if log is None else log
    if log is None:
        return None
    for entry in _entries(log, "Crg8"):
        if entry.fields is not None:
            return _fault_of(dump, entry.fields)
    return None


def _fault_of(dump: Dump, fields: Any) -> Fault:
    """The fault one decoded Crg8 entry records: the FAR walked once per dump (``Dump.computed``,
    keyed by FAR and ESR)."""
    far, esr_value = int(fields.far), int(fields.esr)
    key = ("fault", far, esr_value)
    found = dump.computed.get(key)
    if found is None:
        esr = decode_esr(esr_value)
        walk = dump.translate(far)
        found = Fault(far, esr, walk, compare_fault(esr, walk, dump.geometry.oas))
        dump.computed[key] = found
    return found


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


# SPSR.M[3:0] of an AArch64 exception (Linux names the same in its Crg8 dump).
AARCH64_MODES = {0x0: "EL0t", 0x4: "EL1t", 0x5: "EL1h", 0x8: "EL2t", 0x9: "EL2h"}
# CPSR.M[4:0] of AArch32 (Linux's CrgA dump, where a tree has it).
AARCH32_MODES = {
    0x10: "User",
    0x11: "FIQ",
    0x12: "IRQ",
    0x13: "Supervisor",
    0x16: "Monitor",
    0x17: "Abort",
    0x1A: "Hypervisor",
    0x1B: "Undefined",
    0x1F: "System",
}


def _register_lines(fields: Any) -> list[str]:
    mode = AARCH64_MODES.get(fields.psr & 0xF, "unknown")
    head = [f"AArch64 (Crg8): exception taken from {mode} (psr {fields.psr:#x})"]
    named = [(f"x{i}", value) for i, value in enumerate(fields.x)]
    named += [(name, fields[name]) for name in ("sp", "pc", "psr", "far", "esr")]
    named += [(name, fields[name]) for name in ("cpacr", "fpsr", "fpcr")]
    cells = [f"{name:>5} {value:#018x}" for name, value in named]
    return head + [
        "  ".join(cells[i : i + REGISTERS_PER_LINE])
        for i in range(0, len(cells), REGISTERS_PER_LINE)
    ]


def _aarch32_register_lines(fields: Any) -> list[str]:
    mode = AARCH32_MODES.get(fields.psr & 0x1F, "unknown")
    cells = [f"{f'r{i}':>4} {value:#010x}" for i, value in enumerate(fields.r)]
    lines = [f"AArch32 (CrgA): exception taken from {mode} mode (psr {fields.psr:#x})"]
    lines += ["  ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
    return [*lines, "stack (256 bytes):", *hexdump_lines(0, bytes(fields.stack))]


def _esr_lines(fields: Any) -> list[str]:
    info = decode_esr(fields.esr)
    return [
        f"ESR {info.esr:#x}: EC {info.ec:#04x} {info.ec_name}",
        f"IL {info.il}: {'32' if info.il else '16'}-bit instruction, ISS {info.iss:#09x}",
        *info.details,
    ]


def comparison_line(comparison: FaultComparison) -> str:
    """One line: the ESR's fault status and whether the dump's walk shows it."""
    status = comparison.fault_status or "no fault status"
    if comparison.agrees is None:
        return f"ESR says {status}; cannot compare with the tables: {comparison.note}"
    verdict = "agree" if comparison.agrees else "DISAGREE"
    return f"ESR says {status}; the dump's tables {verdict}: {comparison.note}"


def _fault_address_lines(dump: Dump, fields: Any) -> list[str]:
    found = _fault_of(dump, fields)
    far, walk, comparison = found.far, found.walk, found.comparison
    if walk.pa is None:
        head = [
            f"FAR {far:#x} is not mapped: walk stopped at L{walk.stopped_level}: "
            f"{walk.stopped_reason}"
        ]
    else:
        leaf = walk.leaf
        head = [
            f"FAR {far:#x} -> {pa_text(walk.pa, walk.pa_raw, dump.geometry.oas)}",
            f"{leaf.memattr_name}, {leaf.permissions}"
            + (" (entry rebuilt from the PT_LOAD)" if walk.rebuilt else ""),
            *source_notes(leaf),
        ]
        page = walk.page
        if page is not None and not page.dumped:
            head.append("page " + data_state(False, page.reason, page.reason_detail))
    return [*head, comparison_line(comparison), *walk_lines(walk)]


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
                f"{len(log.entries)} entries"
                + ("" if log.closed else ", not closed")
                + ("" if log.tag_order == clhe.TAG_ORDER_FIRMWARE else ", tags in reading order"),
                *_decoded_lines(log, "Cver", _version_lines),
                *_decoded_lines(log, "Ctim", _time_lines),
            ],
        ),
    ]
    for title, kind, render in (
        ("Registers", "Crg8", _register_lines),
        ("AArch32 registers", "CrgA", _aarch32_register_lines),
        ("Exception", "Crg8", _esr_lines),
        ("Fault address", "Crg8", lambda fields: _fault_address_lines(dump, fields)),
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
