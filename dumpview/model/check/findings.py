"""What ``check`` reports: the anomaly kinds, their order of severity and descriptions, why a
kind can be skipped, and the records (``Anomaly``, ``CheckResult``).

The package docstring (``dumpview.model.check``) says what each kind means and why the
severities are ordered as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dumpview.model.text import hex_or_none

MEMATTR_ALIAS = "memattr-alias"
NORMAL_ON_NON_RAM = "normal-on-non-ram"
DEVICE_ON_RAM = "device-on-ram"
RAM_NOT_DUMPED = "ram-not-dumped"
UNEXPECTED_TABLE_ENTRY = "unexpected-table-entry"
EMPTY_TABLE = "empty-table"
OUTSIDE_MANAGED_RANGE = "outside-managed-range"
OA_BEYOND_OAS = "oa-beyond-oas"
CRASHLOG_MISMATCH = "crashlog-mismatch"
FAULT_MISMATCH = "fault-mismatch"
WRITE_EXEC = "write-exec"

KINDS: tuple[str, ...] = (
    MEMATTR_ALIAS,
    NORMAL_ON_NON_RAM,
    DEVICE_ON_RAM,
    RAM_NOT_DUMPED,
    UNEXPECTED_TABLE_ENTRY,
    EMPTY_TABLE,
    OUTSIDE_MANAGED_RANGE,
    OA_BEYOND_OAS,
    CRASHLOG_MISMATCH,
    FAULT_MISMATCH,
    WRITE_EXEC,
)

# Most severe first (the module docstring says why); the first eight are the severe ones.
SEVERITY: tuple[str, ...] = (
    UNEXPECTED_TABLE_ENTRY,
    OA_BEYOND_OAS,
    FAULT_MISMATCH,
    CRASHLOG_MISMATCH,
    MEMATTR_ALIAS,
    NORMAL_ON_NON_RAM,
    DEVICE_ON_RAM,
    WRITE_EXEC,
    OUTSIDE_MANAGED_RANGE,
    RAM_NOT_DUMPED,
    EMPTY_TABLE,
)
SEVERE_KINDS = frozenset(SEVERITY[:8])
SEVERITY_RANK: dict[str, int] = {kind: rank for rank, kind in enumerate(SEVERITY)}

DESCRIPTIONS: dict[str, str] = {
    MEMATTR_ALIAS: "One physical page is mapped by several leaves with different memory "
    "attributes (e.g. cached and uncached).",
    NORMAL_ON_NON_RAM: "A leaf with a normal (cacheable or uncached) memory attribute maps a "
    "PA the memory map says is MMIO or no memory at all.",
    DEVICE_ON_RAM: "A leaf with a device memory attribute maps a PA inside RAM or a reserved "
    "memory region.",
    RAM_NOT_DUMPED: "A normal-memory page of the dumped address space has no data in the dump "
    "(borrow_phys refused it, e.g. a no-map carveout), with the reason.",
    UNEXPECTED_TABLE_ENTRY: "A carried table holds an entry of a type its level does not "
    "allow, or a table entry pointing to a table the dump does not carry or already reached.",
    EMPTY_TABLE: "A carried table below the top level has no entries (allocated and never "
    "used, or left over after an unmap).",
    OUTSIDE_MANAGED_RANGE: "A leaf lies outside the VA range its owner manages (the driver's "
    "range, plus the firmware's part of the kernel context).",
    OA_BEYOND_OAS: "An output address has bits at or above the chip's output address size.",
    CRASHLOG_MISMATCH: "A VA/PA pair the firmware recorded in its crash log (Ccdp) disagrees "
    "with the dump's translation of that VA.",
    FAULT_MISMATCH: "The fault the crash log's ESR names (e.g. a translation fault at level "
    "3) is not what the dump's own walk of the FAR shows.",
    WRITE_EXEC: "A leaf is writable and executable in one of its permission views.",
}

NEEDS_TABLES_DRIVER = "driver dumps do not carry table entries"
NEEDS_TABLES_NONE = "the dump carries no page-table pages"
NO_REGIONS = "the dump's extension records no memory regions"
NO_MANAGED_RANGE = (
    "the dump records no managed ranges and its address space is not the UAT kernel context"
)
NO_CRASHLOG = "the dump carries no RTKit crash log"
NO_CCDP = "the dump's crash logs record no Ccdp pairs"
NO_FAULT = "the dump's crash logs record no AArch64 registers (Crg8: FAR and ESR)"


@dataclass(frozen=True)
class Anomaly:
    """One finding: a run of pages, one table entry or table, or one Ccdp pair."""

    kind: str  # one of KINDS
    message: str  # one sentence naming VA/PA/level
    va: int | None  # first VA affected (None when not about a VA)
    va_end: int | None  # exclusive end of the affected VA run (None with va None)
    pa: int | None  # PA of the first page / the table / the Ccdp pair
    context: int | None  # address space (None = the dumped space / unknown)
    vas: tuple[int, ...] = ()  # every VA involved when several (memattr-alias: each alias)
    pages: int = 0  # pages the run covers (0 for table and crash-log findings)
    pa_raw: int | None = None  # what the entry says, where it differs from ``pa``

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: addresses as lowercase ``0x…`` strings or null (``pa_raw`` null unless
        it differs from ``pa``)."""
        raw = None if self.pa_raw == self.pa else self.pa_raw
        return {
            "kind": self.kind,
            "message": self.message,
            "va": hex_or_none(self.va),
            "va_end": hex_or_none(self.va_end),
            "pa": hex_or_none(self.pa),
            "pa_raw": hex_or_none(raw),
            "context": self.context,
            "vas": [f"{va:#x}" for va in self.vas],
            "pages": self.pages,
        }


@dataclass
class CheckResult:
    """What ``check`` found, and the kinds it could not look for on this dump (with why)."""

    anomalies: list[Anomaly]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Anomalies per kind, every kind of ``KINDS`` present (0 included)."""
        out = dict.fromkeys(KINDS, 0)
        for anomaly in self.anomalies:
            out[anomaly.kind] = out.get(anomaly.kind, 0) + 1
        return out

    @property
    def clean(self) -> bool:
        return not self.anomalies
