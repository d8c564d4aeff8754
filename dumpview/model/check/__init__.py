"""Anomalies of a dump: what a driver developer should look at, found in bulk.

Owns ``check(dump)``: every kind of ``KINDS`` looked for over every page and every carried
table of a dump, and the ``Anomaly`` records that describe them (a one-sentence message plus
VA/PA fields for export and for jumping to the place). No presentation beyond the message.

The package, by seam: ``findings`` (the kinds, their severity and descriptions, the skip
reasons, ``Anomaly`` and ``CheckResult``), ``facts`` (the leaf columns and what every check
shares), ``leaves`` (the checks over leaves, and the runs they report in), ``alias``
(memattr-alias, over PA intervals), ``tables`` (the checks over carried tables), ``crashlog``
(the checks against the crash log) and ``permissions`` (the views write-exec looks at).
Everything public is imported here.

What is looked at:

- Leaves. The pages of the dumped address space are those of ``pagearrays`` (one per page of
  every PT_LOAD; the entry is exact where the dump carries the leaf tables, else rebuilt from
  ``p_paddr``/``p_flags``), read as runs of alike pages (``pageruns``: a PT_LOAD without
  tables is one or two runs however many pages it claims). Where the dump carries tables of
  other address spaces (user VMs), their type-3 last-level entries are leaves too, for the
  kinds that need no page data: memattr-alias, normal-on-non-ram, device-on-ram,
  outside-managed-range, oa-beyond-oas, write-exec.
- Tables (dumps with dumpview's extension): every walked table of every context, entries
  ``0 .. entries`` of its level (the TTB uses 8 of its 2048 slots).

Runs. Findings about leaves are reported per run: pages consecutive in VA (VA + page) in the
same address space, of the same kind and with the same detail (what the message names: memory
attribute, hole reason, memory region, stray output-address bits, permissions) make one
``Anomaly`` with ``va`` (first page), ``va_end`` (exclusive), ``pa`` (the first page's) and
``pages``. The PAs of a run need not be consecutive: a scattered buffer is one finding, and
the message says whether its PAs are contiguous. memattr-alias is about a PA, so its runs are
consecutive PAs whose aliases each advance by a page too.

PAs. Every leaf is checked at ``pa``, the address the walker and the hardware use (UAT: the
entry's output address cut to the OAS, as the driver masks it; LPAE: the whole field, see
``formats.entryformat``); ``Anomaly.pa_raw`` keeps what the entry says where it differs.

One finding per cause: a leaf whose ``pa`` itself lies at or above the OAS (LPAE, which does
not cut) is reported only as oa-beyond-oas (it is no address the memory map describes), and a
table entry of a type its level does not allow only as unexpected-table-entry (its
output-address field means nothing).

Kinds (``DESCRIPTIONS`` says each in one sentence):

- memattr-alias: one PA mapped by several leaves (any address spaces) with different memattr.
- normal-on-non-ram: a normal memattr on a PA the memory map says is not memory (inside an MMIO
  window or inside no region at all). Needs the memory map (the extension).
- device-on-ram: a device memattr on a PA inside RAM or a reserved region (no-map included);
  MMIO windows win where they overlap memory. Needs the memory map.
- ram-not-dumped: a normal-memattr page of the dumped space without data whose PA is not known
  to be non-memory (with the memory map: inside RAM or a reserved region; without: any PA).
  The message gives the hole reason and detail (``pagearrays.hole_reasons``). The firmware's
  own no-map carveout is reported too: the dump has no data for that RAM.
- unexpected-table-entry: an entry of type 1 or 2 (upper levels want 0 or a table, the last
  level 0 or a page); an upper-level table entry pointing to a table the dump does not carry;
  one pointing to a table the walk reached from elsewhere (a cycle or a shared table: the
  ``TablesIndex`` walk does not descend twice). Needs the carried tables.
- empty-table: a walked table below the top level with no non-empty entry (allocated and never
  used, or left over after an unmap: the driver frees tables only on drop). Needs the tables.
- outside-managed-range: a leaf outside the range its owner manages. Per address space of the
  extension: a borrowed TTB (the kernel context, whose low TTB entries are the firmware's)
  allows ``[walked start, managed end)``, an owned TTB (a user VM) ``[managed start, managed
  end)``. Without the extension the dumped space is the kernel context: the firmware's part
  and the driver's range, ``formats.uat.UAT_KERNEL_FW_VA_START .. UAT_KERNEL_VA_END``.
- oa-beyond-oas: an output address with bits at or above the geometry's OAS: a leaf's
  ``p_paddr`` or exact entry (the format's whole output-address field, ``pa_raw``: UAT bits
  51:14), or a carried upper-level table entry (one finding per entry). ``pa`` is where the
  walker goes (UAT: cut to the OAS), ``pa_raw`` what the entry says.
- crashlog-mismatch: a Ccdp pair of any crash log that ``crash.check_ccdp`` finds disagreeing;
  ``va_end`` is the end of the pair's page, ``pa`` the log's PA.
- fault-mismatch: the fault status of a crash log's ESR (translation, access flag, permission
  or address size fault at level N) that the dump's own walk of the FAR does not show
  (``crash.compare_fault``: mapped where a translation fault is claimed, stopped at another
  level, ...); ``va`` is the FAR, ``pa`` where the walk maps it (None when it does not).
- write-exec: a leaf any permission view of which grants both W and X (the format's
  ``check_views``: UAT firmware, GPU, m1n1's firmware EL1 and GL1; LPAE privileged and
  unprivileged), decided once per distinct (bit 55, AP, UXN, PXN). UAT's tables never grant
  it; LPAE's do whenever a writable page lacks UXN (or PXN with AP[1] clear).

Block entries (LPAE) are leaves: their pages are the dumped space's pages with the block's
entry; in other carried spaces a block is one leaf at its VA. A type-1 entry is unexpected
only at a level without blocks.

Severity (``SEVERITY``, most severe first; ``triage`` lists counts in this order, colour
marks ``SEVERE_KINDS``). First what makes the hardware's translation differ from what the
driver wrote or a reader cannot trust: unexpected-table-entry (the walker meets an entry it
cannot follow), oa-beyond-oas (the hardware goes to another address than the entry says);
then the tables against what the firmware saw: fault-mismatch (the walk does not show the fault
the firmware took: a stale TLB, a race with an unmap, or not the tables it used),
crashlog-mismatch (the firmware translated a VA to another PA: a stale TLB or a use after
unmap); then wrong memory types, which corrupt data or hang the bus: memattr-alias (lost or
stale writes), normal-on-non-ram (speculative reads of device registers), device-on-ram;
then write-exec (a security hole, no crash by itself); outside-managed-range (a mapping where
its owner does not manage: a stray map, or a layout the tool does not know); ram-not-dumped
(evidence missing from the dump, no fault in the tables); empty-table (memory kept, nothing
wrong in translation).

``context`` is None for the dumped address space (context 0 on the samples; unknown on driver
dumps) and the context number for other carried spaces. Anomalies are sorted by (kind in
``KINDS`` order, context, va, pa).

Failure modes: ``ValueError`` (one line naming the unknown kind and the known ones) for an
unknown kind. A kind the dump cannot answer is not an error: it is listed in
``CheckResult.skipped`` with the reason. Everything runs in numpy over the leaf rows
(``facts.Leaves``: runs of pages, cut where a memory region, a hole record or a managed range
begins or ends, so each row is decided by its first page), in narrow columns built a chunk of
PT_LOADs at a time: time and memory follow the PT_LOADs and table entries the file holds and
the findings, never the pages it claims (no Python loop per page; one per finding, per table
and per Ccdp pair). Results are what a page-by-page reading gives. The file is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dumpview.model.check.alias import check_memattr_alias
from dumpview.model.check.crashlog import check_crashlog_mismatch, check_fault_mismatch
from dumpview.model.check.facts import Facts
from dumpview.model.check.findings import (
    CRASHLOG_MISMATCH,
    DESCRIPTIONS,
    DEVICE_ON_RAM,
    EMPTY_TABLE,
    FAULT_MISMATCH,
    KINDS,
    MEMATTR_ALIAS,
    NEEDS_TABLES_DRIVER,
    NEEDS_TABLES_NONE,
    NO_CCDP,
    NO_CRASHLOG,
    NO_FAULT,
    NO_MANAGED_RANGE,
    NO_REGIONS,
    NORMAL_ON_NON_RAM,
    OA_BEYOND_OAS,
    OUTSIDE_MANAGED_RANGE,
    RAM_NOT_DUMPED,
    SEVERE_KINDS,
    SEVERITY,
    SEVERITY_RANK,
    UNEXPECTED_TABLE_ENTRY,
    WRITE_EXEC,
    Anomaly,
    CheckResult,
)
from dumpview.model.check.leaves import (
    check_device_on_ram,
    check_normal_on_non_ram,
    check_oa_beyond_oas,
    check_outside_managed_range,
    check_ram_not_dumped,
    check_write_exec,
)
from dumpview.model.check.permissions import (
    PERMISSION_VIEWS,
    grants_write_and_execute,
    write_exec_views,
)
from dumpview.model.check.tables import check_empty_table, check_unexpected_table_entry
from dumpview.model.guard import guarded

if TYPE_CHECKING:
    from dumpview.model.dump import Dump


@guarded
def check(dump: Dump, kinds: Iterable[str] | None = None) -> CheckResult:
    """Look for every kind of ``KINDS`` (or only ``kinds``) in ``dump``.

    ``ValueError`` for a kind this module does not know. Kinds the dump cannot answer (no
    tables, no memory map, no crash log) are in ``skipped`` with the reason, not in
    ``anomalies``.
    """
    wanted = _wanted(kinds)
    facts = Facts(dump)
    anomalies: list[Anomaly] = []
    skipped: list[tuple[str, str]] = []
    for kind in KINDS:
        if kind not in wanted:
            continue
        found = _CHECKS[kind](facts)
        if isinstance(found, str):
            skipped.append((kind, found))
        else:
            anomalies.extend(found)
    anomalies.sort(key=_sort_key)
    return CheckResult(anomalies, skipped)


def _wanted(kinds: Iterable[str] | None) -> frozenset[str]:
    if kinds is None:
        return frozenset(KINDS)
    names = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for name in names:
        if name not in KINDS:
            raise ValueError(f"unknown check kind {name!r} (known: {', '.join(KINDS)})")
    return frozenset(names)


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def _sort_key(a: Anomaly) -> tuple[int, int, int, int]:
    return (
        _KIND_ORDER[a.kind],
        -1 if a.context is None else a.context,
        -1 if a.va is None else a.va,
        -1 if a.pa is None else a.pa,
    )


_CHECKS: dict[str, Callable[[Facts], list[Anomaly] | str]] = {
    MEMATTR_ALIAS: check_memattr_alias,
    NORMAL_ON_NON_RAM: check_normal_on_non_ram,
    DEVICE_ON_RAM: check_device_on_ram,
    RAM_NOT_DUMPED: check_ram_not_dumped,
    UNEXPECTED_TABLE_ENTRY: check_unexpected_table_entry,
    EMPTY_TABLE: check_empty_table,
    OUTSIDE_MANAGED_RANGE: check_outside_managed_range,
    OA_BEYOND_OAS: check_oa_beyond_oas,
    CRASHLOG_MISMATCH: check_crashlog_mismatch,
    FAULT_MISMATCH: check_fault_mismatch,
    WRITE_EXEC: check_write_exec,
}
assert tuple(_CHECKS) == KINDS and set(DESCRIPTIONS) == set(KINDS) == set(SEVERITY)

__all__ = [
    "CRASHLOG_MISMATCH",
    "DESCRIPTIONS",
    "DEVICE_ON_RAM",
    "EMPTY_TABLE",
    "FAULT_MISMATCH",
    "KINDS",
    "MEMATTR_ALIAS",
    "NEEDS_TABLES_DRIVER",
    "NEEDS_TABLES_NONE",
    "NORMAL_ON_NON_RAM",
    "NO_CCDP",
    "NO_CRASHLOG",
    "NO_FAULT",
    "NO_MANAGED_RANGE",
    "NO_REGIONS",
    "OA_BEYOND_OAS",
    "OUTSIDE_MANAGED_RANGE",
    "PERMISSION_VIEWS",
    "RAM_NOT_DUMPED",
    "SEVERE_KINDS",
    "SEVERITY",
    "SEVERITY_RANK",
    "UNEXPECTED_TABLE_ENTRY",
    "WRITE_EXEC",
    "Anomaly",
    "CheckResult",
    "check",
    "grants_write_and_execute",
    "write_exec_views",
]
