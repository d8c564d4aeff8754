"""The triage report as text lines and as its JSON record (``Triage.lines``, ``summary``,
``to_dict``).

Owns how each fact of a ``model.triage.Triage`` reads: one ``TriageLine`` per line with the
``Location`` a person would go to (the FAR with the context it was walked in, a neighbour's
edge page, the first anomaly of a kind, a context's TTB as ``p:PA``), numbers through
``model.numbers``; and the record of schema ``triage``. No colour (a view paints by ``tone``),
nothing here raises for a report ``triage`` built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dumpview.model.check import SEVERITY_RANK
from dumpview.model.crash import comparison_line
from dumpview.model.location import Location
from dumpview.model.numbers import address, count
from dumpview.model.text import data_state, hex_or_none, pa_text
from dumpview.model.triage import TriageLine

if TYPE_CHECKING:
    from dumpview.model.place import NearbyMapping
    from dumpview.model.translate import Translation
    from dumpview.model.triage import FarWalk, Triage

LIST_LINES = 5  # Ccdp disagreements, reasons, contexts, warnings: this many, then a count
SECTION_LABELS: dict[str, str] = {
    "signature": "signature",
    "panic": "panic",
    "exception": "exception",
    "far": "FAR",
    "region": "region",
    "nearest": "nearest",
    "ccdp": "Ccdp",
    "anomalies": "anomalies",
    "not-dumped": "not dumped",
    "contexts": "contexts",
    "warnings": "warnings",
}


def _line(
    section: str, text: str, location: Location | None = None, tone: str | None = None
) -> TriageLine:
    return TriageLine(section, text, location, tone)


def _more(section: str, shown: int, total: int, what: str) -> list[TriageLine]:
    return [_line(section, f"… {count(total - shown)} more {what}")] if total > shown else []


def _state(walk: Translation) -> str:
    from dumpview.model.contexts import CONTEXT_NOT_DUMPED
    from dumpview.model.translate import walk_state

    state = walk_state(walk)
    if state is None:
        return "not mapped"
    dumped, reason, detail = state
    if reason == CONTEXT_NOT_DUMPED:
        return "context not dumped"
    return data_state(dumped, reason, detail)


def _leaf_text(walk: Translation, say_rebuilt: bool = True) -> str:
    """ "PA 0x…, cached, firmware RW, GPU --, dumped" for a mapped walk (and that the entry
    was rebuilt from the PT_LOAD, with ``say_rebuilt``)."""
    leaf = walk.leaf
    rebuilt = " (entry rebuilt from the PT_LOAD)" if walk.rebuilt and say_rebuilt else ""
    return (
        f"{pa_text(walk.pa, walk.pa_raw, leaf.oas)}, {leaf.memattr_name}, {leaf.permissions}"
        f"{rebuilt}, {_state(walk)}"
    )


def _where(va: int, context: int | None) -> str:
    return f"{address(va)}" if context is None else f"{context}:{address(va)}"


def _far_lines(far_walk: FarWalk) -> list[TriageLine]:
    walk = far_walk.walk
    go = far_walk.location
    where = _where(walk.va, far_walk.context)
    lines = []
    if far_walk.candidates:
        listed = ", ".join(str(c) for c in far_walk.candidates)
        maps = "it maps it" if walk.mapped else "none of them maps it"
        lines.append(
            _line(
                "far",
                f"{address(walk.va)} is outside the dumped context's VA half: walked in context "
                f"{far_walk.context} (contexts whose half holds it: {listed}; {maps})",
                go,
            )
        )
    elif not walk.mapped and not walk.steps:
        lines.append(_line("far", f"{where}: {walk.stopped_reason}; no context walks it", go))
    if walk.mapped:
        lines.append(_line("far", f"{where} -> {_leaf_text(walk)}", go))
    elif walk.steps:
        lines.append(
            _line("far", f"{where}: the walk stops at L{walk.stopped_level}: "
                  f"{walk.stopped_reason}", go, "severe")
        )  # fmt: skip
    stop = far_walk.stop_entry
    if stop is not None:
        table = "(rebuilt)" if stop.table_pa is None else f"table {address(stop.table_pa)}"
        value = "value not recorded" if stop.value is None else address(stop.value, 18)
        kind = f" ({stop.type_name})" if stop.type_name else ""
        lines.append(
            _line(
                "far", f"stopping entry: L{stop.level} {table} [{stop.index}] = {value}{kind}", go
            )
        )
    verdict = far_walk.comparison.agrees
    tone = {True: "ok", False: "severe", None: None}[verdict]
    if far_walk.candidates and verdict is False:
        tone = "warning"  # the walk is in a context picked for the FAR, not one the log names
    lines.append(_line("far", comparison_line(far_walk.comparison), go, tone))
    return lines


def _nearby_text(m: NearbyMapping) -> str:
    edge = m.edge
    attrs = _leaf_text(edge, False) if edge.mapped else f"not mapped: {edge.stopped_reason}"
    return f"{m.side}: {m.phrase()} ({attrs})"


def report_lines(t: Triage) -> list[TriageLine]:
    """The report as lines: every fact with where to go (see the module docstring)."""
    far = t.far_walk.location if t.far_walk is not None else None
    lines = [_line("signature", t.signature)]
    if not t.crashlogs:
        lines.append(_line("panic", "no crash log (no RTKIT note)"))
    else:
        lines.append(_line("panic", t.panic or "no panic message (no Cstr entry)", far))
    e = t.exception
    if e is not None:
        status = f": {e.fault_status}" if e.fault_status else ""
        access = f", {e.access}" if e.access else ""
        pc = f", PC {address(e.pc)}" if e.pc is not None else ""
        lines.append(
            _line("exception", f"{e.ec_name} (EC {e.ec:#04x}, ESR {address(e.esr)}){status}"
                  f"{access}{pc}", far)
        )  # fmt: skip
        if not e.far_valid:
            lines.append(_line("exception", "FnV is set: the FAR is not valid", far, "severe"))
    elif t.crashlogs:
        lines.append(
            _line("exception", "the crash log records no AArch64 registers (Crg8): no FAR, no ESR")
        )
    if t.far_walk is not None:
        lines += _far_lines(t.far_walk)
    r = t.region
    if r is not None:
        span = "" if r.va_start is None else f" {address(r.va_start)}-{address(r.va_end)}"
        go = None if r.va_start is None else Location(r.va_start, context=r.context)
        lines.append(_line("region", f"{r.name}{span}: {r.description}", go))
    if t.nearest is not None:
        for m in t.nearest.all():
            lines.append(_line("nearest", _nearby_text(m), Location(m.edge_va, context=m.context)))
        if not t.nearest.all():
            lines.append(_line("nearest", "no mapping in this address space"))
    if t.ccdp_pairs:
        bad = t.ccdp_disagree
        tone = "severe" if bad else "ok"
        lines.append(
            _line("ccdp", f"{count(t.ccdp_pairs)} pairs, {count(len(bad))} disagree", None, tone)
        )
        for c in bad[:LIST_LINES]:
            lines.append(
                _line("ccdp", f"{address(c.va)} -> {address(c.pa_log)}: DISAGREE: {c.note}",
                      Location(c.va), "severe")
            )  # fmt: skip
        lines += _more("ccdp", min(len(bad), LIST_LINES), len(bad), "disagreeing pairs")
    if not t.anomalies:
        lines.append(_line("anomalies", "none found", None, "ok"))
    for k in t.anomalies:
        first = k.location
        at = f", first at {first}" if first is not None else ""
        lines.append(
            _line("anomalies", f"{count(k.count)} {k.kind}{at}", first, f"anomaly:{k.kind}")
        )
    if t.not_dumped:
        missing = t.pages_total - t.pages_dumped
        lines.append(
            _line("not-dumped", f"{count(missing)} of {count(t.pages_total)} pages have no data")
        )
        for n in t.not_dumped[:LIST_LINES]:
            state = data_state(False, n.reason, n.detail)
            lines.append(
                _line("not-dumped", f"{count(n.pages)} {state}, first at {address(n.first_va)}",
                      Location(n.first_va), "not-dumped")
            )  # fmt: skip
        lines += _more("not-dumped", min(len(t.not_dumped), LIST_LINES), len(t.not_dumped),
                       "reasons")  # fmt: skip
    for c in t.contexts[:LIST_LINES]:
        ttb = "TTB not recorded"
        go = Location(c.va_start, context=None if c.dumped else c.context)
        if c.ttb_pa is not None:
            owner = {True: " owned", False: " borrowed", None: ""}[c.ttb_owned]
            ttb = f"TTB {address(c.ttb_pa)}{owner}"
            go = Location(c.ttb_pa, physical=True)
        pages = f"{count(c.pages_mapped)} pages"
        if c.dumped:
            pages += f", {count(c.pages_dumped)} dumped"
        state = "dumped" if c.dumped else "tables only"
        lines.append(_line("contexts", f"{c.context} {state}, {ttb}, ASID {c.asid}, {pages}", go))
    lines += _more("contexts", min(len(t.contexts), LIST_LINES), len(t.contexts), "contexts")
    for w in t.warnings[:LIST_LINES]:
        lines.append(_line("warnings", w, None, "warning"))
    lines += _more("warnings", min(len(t.warnings), LIST_LINES), len(t.warnings), "warnings")
    return lines


def summary(t: Triage) -> str:
    """One line: "translation fault, level 3 at 0x… (SHARED_RO): stops at L2 (invalid
    entry), the tables DISAGREE; 11 anomalies"."""
    n = t.anomaly_total
    found = f"{count(n)} anomal{'y' if n == 1 else 'ies'}"
    if n:
        found += f" (most severe: {t.anomalies[0].kind})"
    if not t.crashlogs:
        return f"no crash log; {found}"
    e, w = t.exception, t.far_walk
    if e is None or w is None or t.region is None:
        return f"crash log without registers; {found}"
    what = e.fault_status or e.ec_name
    if w.walk.mapped:
        walk = f"mapped to PA {address(w.walk.pa)}"
    elif w.walk.steps:
        walk = f"stops at L{w.walk.stopped_level} ({w.outcome.split('-', 1)[1]})"
    else:
        walk = "outside every context"
    verdict = {True: "", False: ", the tables DISAGREE", None: ""}[w.comparison.agrees]
    if w.candidates and w.comparison.agrees is False:
        verdict = f", context {w.context}'s tables disagree"
    where = _where(e.far, w.context)
    return f"{what} at {where} ({t.region.name}): {walk}{verdict}; {found}"


def _walk_dict(w: FarWalk) -> dict:
    from dumpview.model.translate import translation_dict

    stop = w.stop_entry
    return {
        "context": w.context,
        "candidates": list(w.candidates),
        "outcome": w.outcome,
        "walk": translation_dict(w.walk),
        "stop_entry": None
        if stop is None
        else {
            "level": stop.level,
            "table_pa": hex_or_none(stop.table_pa),
            "index": stop.index,
            "value": hex_or_none(stop.value),
            "type": stop.type_name,
        },
        "fault_status": w.comparison.fault_status,
        "fault_level": w.comparison.level,
        "agrees": w.comparison.agrees,
        "agreement": w.comparison.note,
    }


def triage_dict(t: Triage) -> dict:
    """The record of schema ``triage`` (JSONL ``record: "triage"``)."""
    e = t.exception
    nearest = None
    if t.nearest is not None:
        n = t.nearest
        nearest = {
            side: None if m is None else m.to_dict()
            for side, m in (("inside", n.inside), ("below", n.below), ("above", n.above))
        }
    return {
        "record": "triage",
        "path": t.path,
        "signature": t.signature,
        "summary": t.summary(),
        "entry_format": t.entry_format,
        "layout": t.layout,
        "crashlogs": t.crashlogs,
        "panic": t.panic,
        "exception": None
        if e is None
        else {
            "esr": f"{e.esr:#x}",
            "ec": e.ec,
            "ec_name": e.ec_name,
            "fault_status": e.fault_status,
            "fault_level": e.fault_level,
            "access": e.access,
            "far": f"{e.far:#x}",
            "far_valid": e.far_valid,
            "pc": hex_or_none(e.pc),
        },
        "far_walk": None if t.far_walk is None else _walk_dict(t.far_walk),
        "far_region": None if t.region is None else t.region.to_dict(),
        "far_nearest": nearest,
        "ccdp": {
            "pairs": t.ccdp_pairs,
            "disagree": [
                {
                    "va": f"{c.va:#x}",
                    "pa_log": f"{c.pa_log:#x}",
                    "pa_dump": hex_or_none(c.pa_dump),
                    "note": c.note,
                }
                for c in t.ccdp_disagree
            ],
        },
        "anomalies": [
            {
                "kind": k.kind,
                "count": k.count,
                "severity": SEVERITY_RANK[k.kind],
                "first": k.first.to_dict(),
            }
            for k in t.anomalies
        ],
        "not_dumped": [
            {
                "reason": n.reason,
                "detail": n.detail,
                "pages": n.pages,
                "first_va": f"{n.first_va:#x}",
            }
            for n in t.not_dumped
        ],
        "pages": {
            "total": t.pages_total,
            "dumped": t.pages_dumped,
            "not_dumped": t.pages_total - t.pages_dumped,
        },
        "contexts": [c.to_dict() for c in t.contexts],
        "warnings": list(t.warnings),
    }
