"""The checks against the crash log: crashlog-mismatch (Ccdp pairs the dump's tables
translate otherwise) and fault-mismatch (the ESR's fault status against the dump's walk of the
FAR), see the package docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dumpview.model.check.findings import (
    CRASHLOG_MISMATCH,
    FAULT_MISMATCH,
    NO_CCDP,
    NO_CRASHLOG,
    NO_FAULT,
    Anomaly,
)
from dumpview.model.crash import check_ccdp, fault
from formats import clhe

if TYPE_CHECKING:
    from dumpview.model.check.facts import Facts


def check_crashlog_mismatch(facts: Facts) -> list[Anomaly] | str:
    dump = facts.dump
    logs = dump.crashlogs
    if not logs:
        return NO_CRASHLOG
    if not any(clhe.ccdp_pairs(log) for log in logs):
        return NO_CCDP
    out = []
    for number, log in enumerate(logs):
        which = f" (crash log {number})" if len(logs) > 1 else ""
        for pair in check_ccdp(dump, log):
            if pair.agree:
                continue
            page_start = pair.va - pair.va % facts.page
            out.append(
                Anomaly(
                    kind=CRASHLOG_MISMATCH,
                    message=f"the crash log's Ccdp pair VA {pair.va:#x} -> PA {pair.pa_log:#x}"
                    f"{which} disagrees with the dump: {pair.note}",
                    va=pair.va,
                    va_end=page_start + facts.page,
                    pa=pair.pa_log,
                    context=None,
                )
            )
    return out


def check_fault_mismatch(facts: Facts) -> list[Anomaly] | str:
    dump = facts.dump
    logs = dump.crashlogs
    if not logs:
        return NO_CRASHLOG
    out = []
    found_any = False
    for number, log in enumerate(logs):
        found = fault(dump, log)
        if found is None:
            continue
        found_any = True
        comparison = found.comparison
        if comparison.agrees is not False:
            continue
        which = f" (crash log {number})" if len(logs) > 1 else ""
        page_start = found.far - found.far % facts.page
        out.append(
            Anomaly(
                kind=FAULT_MISMATCH,
                message=f"the crash log's ESR {found.esr.esr:#x}{which} says "
                f"{comparison.fault_status} at FAR {found.far:#x}, but {comparison.note}",
                va=found.far,
                va_end=page_start + facts.page,
                pa=found.walk.pa,
                context=None,
                pa_raw=found.walk.pa_raw,
            )
        )
    return out if found_any else NO_FAULT
