"""Triage: what most likely happened in one dump, in a screen, every fact with its address.

Owns ``triage(dump) -> Triage``: a typed report computed from the dump alone,

- the panic string and the exception (EC, fault status and its level, read/write from WnR, the
  FAR, the PC) of the first crash log with AArch64 registers;
- the FAR's walk (``FarWalk``): mapped (PA, ``pa_raw`` where the entry says another, attributes,
  dumped or why not) or where and why it stopped, with the entry that stopped it (level, table
  PA, index, value), and whether that shows the fault the ESR names (``crash.compare_fault``).
  A FAR outside the dumped context's VA half (a user VA in a kernel dump) is walked in the
  first context carried whose half holds it and that maps it, else the first such context (a
  guess: the crash log does not say which context ran, and the comparison says so);
- where the FAR sits (``model.place``): its named region and the mapped extents holding it and
  nearest below and above, with the distance;
- the Ccdp pairs that disagree with the tables, anomaly counts per kind (most severe first:
  ``check.SEVERITY``), pages not dumped by reason, the contexts, the file's warnings;
- a **signature** (``signature``): a short string from what identifies the bug and not the run.

``Triage.lines()`` is the report as ``TriageLine``s (a section, one line of text, the
``Location`` a person would go to: VA with its context, or ``p:PA``); the command line prints
them and the inspector shows them. ``Triage.to_dict()`` is the JSON record (schema ``triage``).

The signature, version ``v1`` (stored signatures stay comparable: a change to how it is built
gets a new version). Five fields after the version, joined by ``:``::

    v1:EXCEPTION:FAULT:REGION:WALK:PANIC
    v1:data-abort:translation-l3:SHARED_RO:L2-invalid:1f0e5a2b

- EXCEPTION: the exception class as a word (``EC_WORDS``: data-abort, insn-abort, serror, ...;
  ``ec-0xNN`` for the others);
- FAULT: the fault status of an abort (translation-lN, permission-lN, access-flag-lN,
  address-size-lN, ...; ``fsc-0xNN`` for the unlevelled ones; ``-`` without one);
- REGION: ``AddressRegion.name`` of the FAR (PRIV, GPU, firmware, user, managed, outside, ...);
- WALK: the FAR's walk outcome: ``mapped``, ``LN-empty``, ``LN-invalid`` (an entry of a type
  its level does not allow), ``LN-missing-table``, ``LN-cycle``, ``outside`` (no context walks
  that VA half);
- PANIC: 8 hex digits of the SHA-256 of the panic text with addresses and numbers masked
  (``mask_numbers``: ``0x…`` and runs of 8 or more hex digits become ``<hex>``, every other run
  of digits ``<n>``, whitespace collapsed); ``no-panic`` without one.

WnR, the exact FAR, PAs, page offsets, seeds, counts and the anomalies found elsewhere in the
dump are left out: they change from run to run. A crash log without AArch64 registers (a raw
log, CrgA only) gives ``v1:no-registers:-:-:-:PANIC``. A dump without a crash log has no FAR:
``v1:no-crashlog:FAMILY:KIND``, FAMILY the entry format's family (uat, lpae) and KIND the most
severe anomaly kind found (``clean`` when none).

Failure modes: ``triage`` raises ``DumpError`` only where the model does for a broken dump (its
notes, tables or warnings); everything else (no crash log, no registers, a FAR outside every
context) is part of the report.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.check import SEVERITY_RANK, Anomaly, CheckResult, check
from dumpview.model.contexts import ContextInfo
from dumpview.model.crash import CcdpCheck, Fault, FaultComparison, check_ccdp, compare_fault
from dumpview.model.crash import fault as crash_fault
from dumpview.model.esr import EC_INSTRUCTION_ABORTS
from dumpview.model.location import Location
from dumpview.model.place import AddressRegion, Nearest, half_of, nearest_mappings, region_of
from formats import clhe

if TYPE_CHECKING:
    from dumpview.model.dump import Dump
    from dumpview.model.translate import Translation

SIGNATURE_VERSION = "v1"
NO_CRASHLOG = "no-crashlog"
NO_REGISTERS = "no-registers"
NO_PANIC = "no-panic"

# ESR.EC as one word for the signature (the rest: ec-0xNN).
EC_WORDS: dict[int, str] = {
    0x00: "unknown",
    0x0E: "illegal-state",
    0x15: "svc",
    0x18: "sysreg-trap",
    0x20: "insn-abort-lower",
    0x21: "insn-abort",
    0x22: "pc-align",
    0x24: "data-abort-lower",
    0x25: "data-abort",
    0x26: "sp-align",
    0x2F: "serror",
    0x3C: "brk",
    0x3F: "impdef",
}
# DFSC/IFSC & ~3 of the levelled fault statuses, as a word (the level follows: -lN).
FSC_WORDS: dict[int, str] = {
    0x00: "address-size",
    0x04: "translation",
    0x08: "access-flag",
    0x0C: "permission",
    0x14: "walk-external-abort",
    0x1C: "walk-ecc",
    0x24: "walk-granule-protection",
}
_MASKS = (
    (re.compile(r"0[xX][0-9a-fA-F_]+"), "<hex>"),
    (re.compile(r"\b[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"[0-9]+"), "<n>"),
)


def mask_numbers(text: str) -> str:
    """``text`` with addresses and numbers masked (see the module docstring): two panics of the
    same bug at different addresses read the same."""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return " ".join(text.split())


def panic_hash(panic: str | None) -> str:
    """The signature's PANIC field: 8 hex digits of SHA-256 of the masked text, or
    ``no-panic``."""
    if panic is None:
        return NO_PANIC
    return hashlib.sha256(mask_numbers(panic).encode("utf-8", "replace")).hexdigest()[:8]


# ---- the parts of the report ------------------------------------------------------------------


@dataclass(frozen=True)
class ExceptionFacts:
    """The exception the crash log records: ESR decoded, the FAR and the PC."""

    esr: int
    ec: int
    ec_name: str
    fsc: int | None  # the abort's fault status code (None: not an abort)
    fault_status: str | None  # "translation fault, level 3"
    fault_level: int | None  # the level a levelled fault status names
    access: str | None  # "read" | "write" (data aborts: WnR) | "instruction fetch" | None
    far: int
    far_valid: bool  # False: FnV set
    pc: int | None

    @property
    def word(self) -> str:
        """The signature's EXCEPTION field."""
        return EC_WORDS.get(self.ec, f"ec-{self.ec:#04x}")

    @property
    def fault_word(self) -> str:
        """The signature's FAULT field."""
        if self.fsc is None:
            return "-"
        kind = FSC_WORDS.get(self.fsc & ~3)
        return f"fsc-{self.fsc:#04x}" if kind is None else f"{kind}-l{self.fsc & 3}"


@dataclass(frozen=True)
class StopEntry:
    """The entry that ended a walk: its level, table (None: rebuilt), index and value (None:
    a rebuilt level whose value the dump does not record)."""

    level: int
    table_pa: int | None
    index: int
    value: int | None
    type_name: str | None


@dataclass(frozen=True)
class FarWalk:
    """The FAR's walk in ``context`` (None: the dumped context), ``outcome`` the signature's
    WALK field, ``comparison`` whether it shows the fault the ESR names, ``candidates`` the
    contexts whose VA half holds the FAR when it is not the dumped one's."""

    walk: Translation
    context: int | None
    outcome: str
    stop_entry: StopEntry | None
    comparison: FaultComparison
    candidates: tuple[int, ...] = ()

    @property
    def location(self) -> Location:
        return Location(self.walk.va, context=self.context)


@dataclass(frozen=True)
class KindCount:
    """Anomalies of one kind: how many, and the first (where a person starts)."""

    kind: str
    count: int
    first: Anomaly

    @property
    def location(self) -> Location | None:
        return _anomaly_location(self.first)


@dataclass(frozen=True)
class NotDumpedCount:
    """Pages of the dumped context without data for one reason (and detail), and the first."""

    reason: str
    detail: str | None
    pages: int
    first_va: int


@dataclass(frozen=True)
class TriageLine:
    """One line of the report: its ``section`` (a key of ``triage_text.SECTION_LABELS``, in
    the report's order), the text, where a person would go from it (None: nowhere) and a
    ``tone`` a view may colour by ("severe", "ok", "warning", "not-dumped", "anomaly:KIND";
    None: plain)."""

    section: str
    text: str
    location: Location | None = None
    tone: str | None = None


@dataclass(frozen=True)
class Triage:
    """The report (see the module docstring). ``lines()`` renders it, ``to_dict()`` is the
    JSON record."""

    path: str
    entry_format: str
    layout: str
    crashlogs: int
    panic: str | None
    exception: ExceptionFacts | None
    far_walk: FarWalk | None
    region: AddressRegion | None
    nearest: Nearest | None
    ccdp_pairs: int
    ccdp_disagree: tuple[CcdpCheck, ...]
    anomalies: tuple[KindCount, ...]
    not_dumped: tuple[NotDumpedCount, ...]
    pages_total: int
    pages_dumped: int
    contexts: tuple[ContextInfo, ...]
    warnings: tuple[str, ...]
    signature: str

    @property
    def anomaly_total(self) -> int:
        return sum(k.count for k in self.anomalies)

    def summary(self) -> str:
        """One line: the fault, where, the walk, the verdict, the anomalies."""
        from dumpview.model.triage_text import summary

        return summary(self)

    def lines(self) -> list[TriageLine]:
        """The report as lines, a screen at most (long lists cut, with a count of the rest)."""
        from dumpview.model.triage_text import report_lines

        return report_lines(self)

    def to_dict(self) -> dict:
        """The JSON record (schema ``triage``)."""
        from dumpview.model.triage_text import triage_dict

        return triage_dict(self)


# ---- building it ------------------------------------------------------------------------------


def _anomaly_location(a: Anomaly) -> Location | None:
    if a.va is not None:
        return Location(a.va, context=a.context)
    if a.pa is not None:
        return Location(a.pa, physical=True)
    return None


def _exception(found: Fault, log: clhe.CrashLog) -> ExceptionFacts:
    esr = found.esr
    regs = clhe.registers(log)
    if esr.write is not None:
        access = "write" if esr.write else "read"
    else:
        access = "instruction fetch" if esr.ec in EC_INSTRUCTION_ABORTS else None
    level = found.comparison.level
    return ExceptionFacts(
        esr.esr, esr.ec, esr.ec_name, esr.fsc, esr.fault_status, level, access, found.far,
        esr.far_valid, None if regs is None else int(regs.pc),
    )  # fmt: skip


def walk_outcome(walk: Translation) -> str:
    """The signature's WALK field for a walk (see the module docstring)."""
    if walk.mapped:
        return "mapped"
    if not walk.steps:
        return "outside"
    level = walk.stopped_level
    last = walk.steps[-1]
    if last.level != level:  # stopped before reading an entry at that level
        return (
            f"L{level}-cycle"
            if "cycle" in (walk.stopped_reason or "")
            else (f"L{level}-missing-table")
        )
    if last.entry is None or last.decoded is None or last.decoded.type_name == "empty":
        return f"L{level}-empty"
    return f"L{level}-invalid"


def _stop_entry(walk: Translation) -> StopEntry | None:
    if walk.mapped or not walk.steps or walk.steps[-1].level != walk.stopped_level:
        return None
    step = walk.steps[-1]
    type_name = step.decoded.type_name if step.decoded is not None else None
    return StopEntry(step.level, step.table_pa, step.index, step.entry, type_name)


def _far_walk(dump: Dump, found: Fault, oas: int) -> FarWalk:
    walk, context, comparison = found.walk, None, found.comparison
    candidates: tuple[int, ...] = ()
    if not walk.steps and not walk.mapped:  # outside the dumped context's half
        extension = dump.extension
        spaces = extension.spaces[1:] if extension is not None else ()
        halves = {s.context: half_of(dump, s.context) for s in spaces}
        candidates = tuple(c for c, (lo, hi) in halves.items() if lo <= found.far < hi)
        walks = [dump.translate(found.far, c) for c in candidates]
        chosen = next((i for i, w in enumerate(walks) if w.mapped), 0 if walks else None)
        if chosen is not None:
            walk, context = walks[chosen], candidates[chosen]
            found_here = compare_fault(found.esr, walk, oas)
            note = (
                f"in context {context}'s tables (the crash log does not say which context ran): "
                f"{found_here.note}"
            )
            comparison = FaultComparison(
                found_here.fault_status, found_here.level, found_here.agrees, note
            )
    return FarWalk(walk, context, walk_outcome(walk), _stop_entry(walk), comparison, candidates)


def not_dumped_counts(dump: Dump) -> list[NotDumpedCount]:
    """Pages of the dumped context without data, per (reason, detail), most pages first."""
    from dumpview.model.pagearrays import PageIndex, hole_reasons

    total, dumped = dump.page_totals
    if total == dumped:
        return []
    found: dict[tuple[str, str | None], list[int]] = {}
    for chunk in PageIndex(dump).chunks():
        hole = ~chunk.dumped
        if not hole.any():
            continue
        va = chunk.va[hole]
        codes, table = hole_reasons(dump, va, chunk.flags[hole])
        pages = np.bincount(codes, minlength=len(table))
        _codes, firsts = np.unique(codes, return_index=True)
        for code, first in zip(_codes.tolist(), firsts.tolist(), strict=True):
            entry = found.setdefault(table[code], [0, int(va[first])])
            entry[0] += int(pages[code])
    out = [NotDumpedCount(r, d, n, first) for (r, d), (n, first) in found.items()]
    return sorted(out, key=lambda c: (-c.pages, c.first_va))


def signature_of(
    exception: ExceptionFacts | None,
    far_walk: FarWalk | None,
    region: AddressRegion | None,
    panic: str | None,
    has_crashlog: bool,
    family: str,
    top_kind: str | None,
) -> str:
    """The signature (see the module docstring) from the report's parts."""
    if not has_crashlog:
        return f"{SIGNATURE_VERSION}:{NO_CRASHLOG}:{family}:{top_kind or 'clean'}"
    if exception is None or far_walk is None or region is None:
        return f"{SIGNATURE_VERSION}:{NO_REGISTERS}:-:-:-:{panic_hash(panic)}"
    parts = (exception.word, exception.fault_word, region.name, far_walk.outcome)
    return ":".join((SIGNATURE_VERSION, *parts, panic_hash(panic)))


def triage(dump: Dump, checked: CheckResult | None = None) -> Triage:
    """The triage report of ``dump`` (see the module docstring); ``checked`` is ``check``'s
    result when the caller has it already (the inspector runs check once for its anomalies
    and for this). ``DumpError`` only for a dump whose notes, tables or crash log the model
    cannot read."""
    warnings = tuple(dump.all_warnings())
    logs = dump.crashlogs
    panic = next((m for m in map(clhe.panic_message, logs) if m is not None), None)
    exception = far_walk = region = nearest = None
    for log in logs:
        found = crash_fault(dump, log)
        if found is not None:
            exception = _exception(found, log)
            far_walk = _far_walk(dump, found, dump.geometry.oas)
            region = region_of(dump, found.far, far_walk.context)
            nearest = nearest_mappings(dump, found.far, far_walk.context)
            break
    pairs: list[CcdpCheck] = []
    for log in logs:
        pairs += check_ccdp(dump, log)
    result = check(dump) if checked is None else checked
    by_kind: dict[str, list[Anomaly]] = {}
    for anomaly in result.anomalies:
        by_kind.setdefault(anomaly.kind, []).append(anomaly)
    anomalies = tuple(
        KindCount(kind, len(found_), found_[0])
        for kind, found_ in sorted(by_kind.items(), key=lambda item: SEVERITY_RANK[item[0]])
    )
    total, dumped = dump.page_totals
    family = dump.entry_format.name.split("-")[0]
    top_kind = anomalies[0].kind if anomalies else None
    return Triage(
        path=dump.path,
        entry_format=dump.entry_format.name,
        layout=dump.layout,
        crashlogs=len(logs),
        panic=panic,
        exception=exception,
        far_walk=far_walk,
        region=region,
        nearest=nearest,
        ccdp_pairs=len(pairs),
        ccdp_disagree=tuple(p for p in pairs if not p.agree),
        anomalies=anomalies,
        not_dumped=tuple(not_dumped_counts(dump)),
        pages_total=total,
        pages_dumped=dumped,
        contexts=tuple(dump.contexts()),
        warnings=warnings,
        signature=signature_of(exception, far_walk, region, panic, bool(logs), family, top_kind),
    )
