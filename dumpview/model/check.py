"""Anomalies of a dump: what a driver developer should look at, found in bulk.

Owns ``check(dump)``: every kind of ``KINDS`` looked for over every page and every carried
table of a dump, and the ``Anomaly`` records that describe them (a one-sentence message plus
VA/PA fields for export and for jumping to the place). No presentation beyond the message.

What is looked at:

- Leaves. The pages of the dumped address space are those of ``pagearrays`` (one per page of
  every PT_LOAD; the entry is exact where the dump carries the leaf tables, else rebuilt from
  ``p_paddr``/``p_flags``). Where the dump carries tables of other address spaces (user VMs),
  their type-3 last-level entries are leaves too, for the kinds that need no page data:
  memattr-alias, normal-on-non-ram, device-on-ram, outside-managed-range, oa-beyond-oas,
  write-exec.
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
``CheckResult.skipped`` with the reason. Everything runs in numpy over the page columns (no
Python loop per page; one per run, per table and per Ccdp pair). The file is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from dumpview.model.crash import check_ccdp, fault
from dumpview.model.guard import guarded
from dumpview.model.memmap import NO_MEMORY_MAP
from dumpview.model.pagearrays import PageIndex, hole_reasons
from dumpview.model.text import hex_or_none
from formats import clhe, entryformat, uat
from formats.entryformat import EntryFormat

if TYPE_CHECKING:
    from dumpview.model.dump import Dump
    from dumpview.model.extension import Region, Space
    from dumpview.model.tables import TableNode

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

# Permission views a leaf is checked in for write-exec, per entry format id: (name, view).
PERMISSION_VIEWS: dict[int, tuple[tuple[str, Callable[[int], str]], ...]] = {
    fmt.id: fmt.check_views for fmt in entryformat.ENTRY_FORMATS.values()
}

_DUMPED = -1  # context key of the dumped address space in the leaf columns
_U64 = np.uint64


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


@guarded
def check(dump: Dump, kinds: Iterable[str] | None = None) -> CheckResult:
    """Look for every kind of ``KINDS`` (or only ``kinds``) in ``dump``.

    ``ValueError`` for a kind this module does not know. Kinds the dump cannot answer (no
    tables, no memory map, no crash log) are in ``skipped`` with the reason, not in
    ``anomalies``.
    """
    wanted = _wanted(kinds)
    facts = _Facts(dump)
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


# ---- permissions ---------------------------------------------------------------------------------


def grants_write_and_execute(perm: str) -> bool:
    """Whether a permission string ("RW", "RX", "RWX", "--", ...) grants both W and X."""
    return "W" in perm and "X" in perm


def write_exec_views(
    pte: int, views: tuple[tuple[str, Callable[[int], str]], ...] | None = None
) -> tuple[str, ...]:
    """``"name PERM"`` for every view of ``views`` (default: UAT's ``PERMISSION_VIEWS``) in
    which the leaf ``pte`` is writable and executable; empty when none is."""
    out = []
    for name, view in PERMISSION_VIEWS[entryformat.UAT.id] if views is None else views:
        perm = view(pte)
        if grants_write_and_execute(perm):
            out.append(f"{name} {perm}")
    return tuple(out)


# The entry bits every permission view of both formats depends on, as (entry bit, width, code
# bit): bit 55 (UAT GPU access), AP 7:6 (LPAE AP[2:1]), UXN 54, PXN 53.
_PERM_BITS = ((55, 1, 4), (6, 2, 2), (54, 1, 1), (53, 1, 0))


def _perm_codes(pte: np.ndarray) -> np.ndarray:
    """(bit 55, AP, UXN, PXN) of each entry packed into 5 bits: everything the permission
    views depend on."""
    code = np.zeros(len(pte), dtype=np.uint8)
    for shift, width, pos in _PERM_BITS:
        value = (pte >> _U64(shift)) & _U64((1 << width) - 1)
        code |= (value << _U64(pos)).astype(np.uint8)
    return code


def _pte_of_perm_code(code: int) -> int:
    """An entry with the permission bits of a ``_perm_codes`` code (all else zero)."""
    bits = 0
    for shift, width, pos in _PERM_BITS:
        bits |= ((code >> pos) & ((1 << width) - 1)) << shift
    return bits


# ---- the facts every check reads ---------------------------------------------------------------


@dataclass
class _Leaves:
    """Every leaf checked, sorted by (context key, VA): the dumped space's pages (context key
    ``_DUMPED``), then other carried spaces' type-3 leaves."""

    context: np.ndarray  # int64: _DUMPED or the context number
    va: np.ndarray  # uint64
    pa: np.ndarray  # uint64: pa_raw through Dump.pa_mask: where the walker goes
    pa_raw: np.ndarray  # uint64: p_paddr + offset (an exact entry's OA where it has stray bits)
    stray: np.ndarray  # uint64: output-address bits at or above the OAS (0: none)
    memattr: np.ndarray  # uint8
    perm: np.ndarray  # uint8, _perm_codes
    in_dump: np.ndarray  # bool: a page of the dumped space
    dumped: np.ndarray  # bool: has data (False outside the dumped space)
    flags: np.ndarray  # uint32: the PT_LOAD's p_flags (0 outside the dumped space)

    def __len__(self) -> int:
        return len(self.va)


class _Facts:
    """What the checks share, computed on first use."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump
        self.geometry = dump.geometry
        self.fmt = dump.entry_format
        self.page = dump.page_size_bytes
        self.index = dump.tables_index
        self.nodes: tuple[TableNode, ...] = self.index.nodes if self.index is not None else ()
        self.dumped_context = self.index.dumped_context if self.index is not None else None

    def context_of(self, context: int) -> int | None:
        """The Anomaly context of a context key / table context (None: the dumped space)."""
        if context == _DUMPED or context == self.dumped_context:
            return None
        return context

    @property
    def tables_missing(self) -> str | None:
        if self.index is not None:
            return None
        return NEEDS_TABLES_DRIVER if self.dump.extension is None else NEEDS_TABLES_NONE

    @property
    def regions(self) -> tuple[Region, ...] | str:
        extension = self.dump.extension
        if extension is None:
            return NO_MEMORY_MAP
        if not extension.regions:
            return NO_REGIONS
        return extension.regions

    @cached_property
    def leaves(self) -> _Leaves:
        oas_mask = _U64((1 << self.geometry.oas) - 1)
        pa_mask = _U64(self.dump.pa_mask)
        fmt = self.fmt
        dtypes = (np.int64, np.uint64, np.uint64, np.uint64, np.uint64, np.uint8, np.uint8, bool)
        dtypes += (bool, np.uint32)
        # Columns filled in place, chunk by chunk: no list of parts and no concatenation
        # copy (on the 1M-segment dump that halved the peak of these 40 bytes per page).
        index = PageIndex(self.dump)
        others = self._other_leaves()
        n_others = 0 if others is None else len(others[1])
        columns = [np.empty(index.total + n_others, dtype=t) for t in dtypes]

        def fill(lo: int, hi: int | None, context, va, raw, pte, in_dump, dumped, flags) -> None:
            values = (context, va, raw & pa_mask, raw, raw & ~oas_mask, fmt.memattr(pte))
            values += (_perm_codes(pte), in_dump, dumped, flags)
            for column, value in zip(columns, values, strict=True):
                column[lo:hi] = value

        for chunk in index.chunks():
            pte_oa = fmt.output_address(chunk.pte)
            exact_stray = chunk.pte_exact & ((pte_oa & ~oas_mask) != 0)
            raw = np.where(exact_stray, pte_oa, chunk.pa_raw)
            lo, hi = int(chunk.index[0]), int(chunk.index[-1]) + 1
            fill(lo, hi, _DUMPED, chunk.va, raw, chunk.pte, True, chunk.dumped, chunk.flags)
        if others is not None:
            context, va, pte = others
            fill(index.total, None, context, va, fmt.output_address(pte), pte, False, False, 0)
        return _Leaves(*columns)

    def _other_leaves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(context, VA, entry) of the page and block entries of carried spaces other than
        the dumped one, sorted by (context, VA)."""
        if self.index is None:
            return None
        contexts, vas, ptes = [], [], []
        for node in self.nodes:
            if node.context == self.dumped_context:
                continue
            idx = self.index.leaf_entries(node)  # pages, or blocks at a block level
            lg = self.geometry.level(node.level)
            entries = self.index.entries_at(node.pa)
            vas.append(_U64(node.va_start) + idx.astype(np.uint64) * _U64(lg.entry_span_bytes))
            ptes.append(entries[idx].astype(np.uint64))
            contexts.append(np.full(len(idx), node.context, dtype=np.int64))
        if not vas:
            return None
        context, va, pte = np.concatenate(contexts), np.concatenate(vas), np.concatenate(ptes)
        order = np.lexsort((va, context))
        return context[order], va[order], pte[order]

    @cached_property
    def addressable(self) -> np.ndarray:
        """Per leaf: whether ``pa`` is an address at all (below the OAS; the UAT's always is,
        an LPAE entry with stray bits is not: it is only oa-beyond-oas)."""
        return (self.leaves.pa >> _U64(self.geometry.oas)) == 0

    @cached_property
    def normal(self) -> np.ndarray:
        device = np.array(sorted(self.fmt.device_memattrs), dtype=np.uint8)
        return ~np.isin(self.leaves.memattr, device)

    @cached_property
    def memory_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per leaf, from the memory map: (index of the MMIO window holding the PA or -1,
        index of the memory region holding it or -1 (a reserved region over its RAM bank),
        whether the PA is known to be no memory: in an MMIO window or in no region)."""
        regions = self.regions
        assert not isinstance(regions, str)
        pa = self.leaves.pa
        mmio = np.full(len(pa), -1, dtype=np.int64)
        memory = np.full(len(pa), -1, dtype=np.int64)
        anywhere = np.zeros(len(pa), dtype=bool)
        order = sorted(range(len(regions)), key=lambda i: regions[i].kind != "ram")
        for i in order:
            region = regions[i]
            inside = (pa >= _U64(region.base)) & (pa - _U64(region.base) < _U64(region.size_bytes))
            anywhere |= inside
            if region.kind == "mmio":
                mmio[inside] = i
            elif region.kind in ("ram", "reserved"):
                memory[inside] = i
        return mmio, memory, (mmio >= 0) | ~anywhere

    @cached_property
    def table_findings(self) -> tuple[list[Anomaly], list[Anomaly], list[Anomaly]]:
        """(unexpected-table-entry, empty-table, oa-beyond-oas of upper-level table entries)
        over every walked table."""
        return _scan_tables(self)


# ---- runs ----------------------------------------------------------------------------------------


@dataclass
class _Runs:
    """Runs of selected leaves: ``rows`` are leaf indices, ``starts``/``lengths`` cut them."""

    rows: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    pa_contiguous: np.ndarray  # bool per run

    def __iter__(self):
        return iter(
            zip(
                self.rows[self.starts].tolist(),
                self.lengths.tolist(),
                self.pa_contiguous.tolist(),
                strict=True,
            )
        )


def _runs(leaves: _Leaves, mask: np.ndarray, key: np.ndarray, page: int) -> _Runs:
    """Cut the leaves where ``mask`` holds into runs: consecutive in VA (+ page) in the same
    context with the same ``key``."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        empty = np.zeros(0, dtype=np.int64)
        return _Runs(rows, empty, empty, np.zeros(0, dtype=bool))
    step = _U64(page)
    va, pa, ctx, k = leaves.va[rows], leaves.pa[rows], leaves.context[rows], key[rows]
    cont = (ctx[1:] == ctx[:-1]) & (va[1:] - va[:-1] == step) & (k[1:] == k[:-1])
    starts = np.flatnonzero(np.concatenate(([True], ~cont)))
    lengths = np.diff(np.append(starts, len(rows)))
    # A run's PAs are contiguous when no step inside it breaks PA + page.
    pa_break = np.concatenate(([0], np.cumsum(pa[1:] - pa[:-1] != step)))
    last = starts + lengths - 1
    contiguous = pa_break[last] == pa_break[starts]
    return _Runs(rows, starts, lengths, contiguous)


def _where(va: int, pages: int, page: int, context: int | None) -> str:
    """``VA 0x… (1 page)`` / ``VAs 0x…..0x… (n pages)``, with the context when not the dumped
    space."""
    if pages == 1:
        text = f"VA {va:#x} (1 page)"
    else:
        text = f"VAs {va:#x}..{va + pages * page:#x} ({pages} pages)"
    return text if context is None else f"{text} in context {context}"


def _maps(pages: int) -> str:
    return "maps" if pages == 1 else "map"


def _pa_text(pa: int, pages: int, page: int, contiguous: bool) -> str:
    if pages == 1:
        return f"PA {pa:#x}"
    if contiguous:
        return f"PAs {pa:#x}..{pa + pages * page:#x}"
    return f"scattered PAs (first {pa:#x})"


def _memattr_text(memattr: int, fmt: EntryFormat) -> str:
    return f"memattr {memattr}, {fmt.memattr_names[memattr]}"


def _region_text(region: Region) -> str:
    span = f"{region.base:#x}..{region.end:#x}"
    if region.kind == "mmio":
        return f"MMIO window {region.name!r} ({span})"
    if region.kind == "reserved":
        how = " no-map" if region.no_map else (" reusable" if region.reusable else "")
        return f"reserved{how} region {region.name!r} ({span})"
    return f"RAM {region.name!r} ({span})"


def _run_anomaly(
    facts: _Facts, kind: str, row: int, pages: int, message: str, pa: int | None = None
) -> Anomaly:
    leaves = facts.leaves
    va = int(leaves.va[row])
    return Anomaly(
        kind=kind,
        message=message,
        va=va,
        va_end=va + pages * facts.page,
        pa=int(leaves.pa[row]) if pa is None else pa,
        context=facts.context_of(int(leaves.context[row])),
        pages=pages,
        pa_raw=int(leaves.pa_raw[row]) if pa is None else None,
    )


# ---- leaf checks ---------------------------------------------------------------------------------


def _check_memattr_alias(facts: _Facts) -> list[Anomaly]:
    leaves = facts.leaves
    page = facts.page
    rows = np.flatnonzero(facts.addressable)
    if len(rows) < 2:
        return []
    pa_page = leaves.pa[rows] & ~_U64(page - 1)
    order = np.argsort(pa_page, kind="stable")  # keeps (context, VA) order inside a PA
    rows, pa_page = rows[order], pa_page[order]
    same = pa_page[1:] == pa_page[:-1]
    if not same.any():
        return []
    # Groups of rows sharing a PA page; keep those with differing memattr.
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    counts = np.diff(np.append(starts, len(rows)))
    attr = leaves.memattr[rows]
    differ = np.maximum.reduceat(attr, starts) != np.minimum.reduceat(attr, starts)
    starts, counts = starts[differ], counts[differ]  # a lone leaf never differs
    if not len(starts):
        return []
    # The alias groups' rows side by side: group g's members at first[g] .. first[g] + n.
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    j = np.arange(int(counts.sum()))
    members = np.repeat(starts, counts) + (j - np.repeat(first, counts))
    m_rows = rows[members]
    m_ctx, m_va, m_attr = leaves.context[m_rows], leaves.va[m_rows], attr[members]
    group_pa = pa_page[starts]
    # Group g continues group g - 1 when its PA is the next page and each alias (same place in
    # the group) is in the same context, one page further in VA, with the same memattr.
    per_member_count = np.repeat(counts, counts)
    prev = j - per_member_count
    ok = prev >= 0
    p = np.where(ok, prev, 0)
    ok &= (m_ctx == m_ctx[p]) & (m_va == m_va[p] + _U64(page)) & (m_attr == m_attr[p])
    all_ok = np.logical_and.reduceat(ok, first)
    cont = np.zeros(len(starts), dtype=bool)
    cont[1:] = (
        (group_pa[1:] == group_pa[:-1] + _U64(page)) & (counts[1:] == counts[:-1]) & all_ok[1:]
    )
    run_starts = np.flatnonzero(~cont)
    run_lengths = np.diff(np.append(run_starts, len(starts)))
    out = []
    for g, pages in zip(run_starts.tolist(), run_lengths.tolist(), strict=True):
        lo, n = int(first[g]), int(counts[g])
        aliases = []
        for k in range(lo, lo + n):
            ctx = facts.context_of(int(m_ctx[k]))
            where = f"VA {int(m_va[k]):#x}" + ("" if ctx is None else f" (context {ctx})")
            aliases.append(f"{where} {facts.fmt.memattr_names[int(m_attr[k])]}")
        pa = int(group_pa[g])
        what = f"PA {pa:#x}" if pages == 1 else f"PAs {pa:#x}..{pa + pages * page:#x}"
        va = int(m_va[lo])
        out.append(
            Anomaly(
                kind=MEMATTR_ALIAS,
                message=f"{what} ({pages} page{'s' if pages > 1 else ''}) "
                f"{'is' if pages == 1 else 'are'} mapped with "
                f"different memory attributes: {', '.join(aliases)}",
                va=va,
                va_end=va + pages * page,
                pa=pa,
                context=facts.context_of(int(m_ctx[lo])),
                vas=tuple(int(v) for v in m_va[lo : lo + n].tolist()),
                pages=pages,
            )
        )
    return out


def _check_normal_on_non_ram(facts: _Facts) -> list[Anomaly] | str:
    regions = facts.regions
    if isinstance(regions, str):
        return regions
    leaves = facts.leaves
    mmio, _memory, non_memory = facts.memory_class
    mask = facts.normal & facts.addressable & non_memory
    key = (mmio + 1) * 8 + leaves.memattr.astype(np.int64)
    out = []
    for row, pages, contiguous in _runs(leaves, mask, key, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        window = int(mmio[row])
        place = (
            f"in {_region_text(regions[window])}"
            if window >= 0
            else "outside every region of the memory map"
        )
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = (
            f"{where} {_maps(pages)} {pa} as normal memory "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}), but that PA is {place}"
        )
        out.append(_run_anomaly(facts, NORMAL_ON_NON_RAM, row, pages, message))
    return out


def _check_device_on_ram(facts: _Facts) -> list[Anomaly] | str:
    regions = facts.regions
    if isinstance(regions, str):
        return regions
    leaves = facts.leaves
    _mmio, memory, non_memory = facts.memory_class
    mask = ~facts.normal & facts.addressable & (memory >= 0) & ~non_memory
    key = memory * 8 + leaves.memattr.astype(np.int64)
    out = []
    for row, pages, contiguous in _runs(leaves, mask, key, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = (
            f"{where} {_maps(pages)} {pa} as device memory "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}), but that PA is memory: "
            f"{_region_text(regions[int(memory[row])])}"
        )
        out.append(_run_anomaly(facts, DEVICE_ON_RAM, row, pages, message))
    return out


def _check_ram_not_dumped(facts: _Facts) -> list[Anomaly]:
    leaves = facts.leaves
    mask = leaves.in_dump & ~leaves.dumped & facts.normal & facts.addressable
    map_known = not isinstance(facts.regions, str)
    if map_known:
        mask &= ~facts.memory_class[2]
    rows = np.flatnonzero(mask)
    if not len(rows):
        return []
    codes, table = hole_reasons(facts.dump, leaves.va[rows], leaves.flags[rows])
    text_ids: dict[tuple[str, str | None], int] = {}
    ids = np.array([text_ids.setdefault(entry, len(text_ids)) for entry in table], np.int64)
    key = np.full(len(leaves), -1, dtype=np.int64)
    key[rows] = ids[codes] * 8 + leaves.memattr[rows].astype(np.int64)
    code_of_row = np.full(len(leaves), -1, dtype=np.int64)
    code_of_row[rows] = codes
    what = "RAM" if map_known else "normal memory"
    out = []
    for row, pages, contiguous in _runs(leaves, mask, key, facts.page):
        reason, detail = table[int(code_of_row[row])]
        why = reason if detail is None else f"{reason} ({detail})"
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        message = (
            f"{_where(int(leaves.va[row]), pages, facts.page, None)} {_maps(pages)} {what} at {pa} "
            f"({_memattr_text(int(leaves.memattr[row]), facts.fmt)}) but the dump has no data: "
            f"{why}"
        )
        out.append(_run_anomaly(facts, RAM_NOT_DUMPED, row, pages, message))
    return out


def _managed_ranges(facts: _Facts) -> dict[int, tuple[int, int, str]] | str:
    """Context key -> (allowed start, allowed end, what the range is)."""
    dump = facts.dump
    spaces: tuple[Space, ...] = dump.extension.spaces if dump.extension is not None else ()
    out: dict[int, tuple[int, int, str]] = {}
    if spaces:
        for i, space in enumerate(spaces):
            if not space.managed_va_size_bytes:
                continue
            end = space.managed_va_start + space.managed_va_size_bytes
            if space.ttb_owned:
                allowed = (space.managed_va_start, end, "the driver's managed range")
            else:
                start = space.va_start & ~facts.geometry.ias_mask
                allowed = (start, end, "the firmware's part and the driver's managed range")
            key = _DUMPED if i == 0 else space.context
            out[key] = allowed
        return out
    if facts.geometry.va_base != uat.UAT_VA_BASE_UPPER:
        return NO_MANAGED_RANGE
    out[_DUMPED] = (
        uat.UAT_KERNEL_FW_VA_START,
        uat.UAT_KERNEL_VA_END,
        "the firmware's part and the driver's range of the kernel context",
    )
    return out


def _check_outside_managed_range(facts: _Facts) -> list[Anomaly] | str:
    ranges = _managed_ranges(facts)
    if isinstance(ranges, str):
        return ranges
    leaves = facts.leaves
    mask = np.zeros(len(leaves), dtype=bool)
    for key, (start, end, _what) in ranges.items():
        here = leaves.context == key
        va = leaves.va
        # A range ending before it starts (a hostile spaces record) allows nothing.
        size = _U64(max(0, min(end - start, (1 << 64) - 1)))
        mask |= here & ((va < _U64(start)) | (va - _U64(start) >= size))
    out = []
    for row, pages, contiguous in _runs(leaves, mask, leaves.context, facts.page):
        key = int(leaves.context[row])
        start, end, what = ranges[key]
        ctx = facts.context_of(key)
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = f"{where} {_maps(pages)} {pa} outside {what} ({start:#x}..{end:#x})"
        out.append(_run_anomaly(facts, OUTSIDE_MANAGED_RANGE, row, pages, message))
    return out


def _check_oa_beyond_oas(facts: _Facts) -> list[Anomaly]:
    leaves = facts.leaves
    oas = facts.geometry.oas
    mask = leaves.stray != 0
    out = []
    for row, pages, contiguous in _runs(leaves, mask, leaves.stray, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        raw = int(leaves.pa_raw[row])
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        stray = f"bits at or above the {oas}-bit output address size, {int(leaves.stray[row]):#x}"
        if facts.fmt.oas_truncates:  # the walker went to the cut address
            says = f"{raw:#x}" if pages == 1 else f"{raw:#x}.. (first page)"
            message = f"{where} {_maps(pages)} {pa} (entry says {says}: {stray})"
        else:
            message = f"{where} {_maps(pages)} {pa} ({stray}: an SMMU raises an address size fault)"
        out.append(_run_anomaly(facts, OA_BEYOND_OAS, row, pages, message))
    if facts.index is not None:
        out.extend(facts.table_findings[2])
    return out


def _write_exec_lut(
    codes: np.ndarray, views: tuple[tuple[str, Callable[[int], str]], ...]
) -> dict[int, tuple[str, ...]]:
    """For each distinct permission code present: the views granting W and X."""
    return {
        int(code): write_exec_views(_pte_of_perm_code(int(code)), views)
        for code in np.unique(codes).tolist()
    }


def _check_write_exec(facts: _Facts) -> list[Anomaly]:
    leaves = facts.leaves
    lut = _write_exec_lut(leaves.perm, PERMISSION_VIEWS[facts.fmt.id])
    bad = np.array([code for code, views in lut.items() if views], dtype=np.uint8)
    mask = np.isin(leaves.perm, bad)
    out = []
    for row, pages, contiguous in _runs(leaves, mask, leaves.perm, facts.page):
        ctx = facts.context_of(int(leaves.context[row]))
        pa = _pa_text(int(leaves.pa[row]), pages, facts.page, contiguous)
        views = ", ".join(lut[int(leaves.perm[row])])
        where = _where(int(leaves.va[row]), pages, facts.page, ctx)
        message = f"{where} {_maps(pages)} {pa} writable and executable: {views}"
        out.append(_run_anomaly(facts, WRITE_EXEC, row, pages, message))
    return out


# ---- table checks --------------------------------------------------------------------------------


def _entry_anomaly(
    facts: _Facts, node: TableNode, i: int, value: int, kind: str, problem: str
) -> Anomaly:
    """A finding about entry ``i`` (holding ``value``) of the walked table ``node``."""
    span = facts.geometry.level(node.level).entry_span_bytes
    va = node.va_start + i * span
    ctx = facts.context_of(node.context)
    in_ctx = "" if ctx is None else f" in context {ctx}"
    return Anomaly(
        kind=kind,
        message=f"L{node.level} table at PA {node.pa:#x} entry {i} (VAs {va:#x}.."
        f"{va + span:#x}{in_ctx}) holds {value:#x}: {problem}",
        va=va,
        va_end=va + span,
        pa=node.pa,
        context=ctx,
    )


def _scan_tables(facts: _Facts) -> tuple[list[Anomaly], list[Anomaly], list[Anomaly]]:
    """One pass over every walked table: (unexpected-table-entry, empty-table, oa-beyond-oas
    of upper-level table entries)."""
    index = facts.index
    geometry = facts.geometry
    unexpected: list[Anomaly] = []
    empty: list[Anomaly] = []
    beyond: list[Anomaly] = []
    if index is None:
        return unexpected, empty, beyond
    top = geometry.levels[0].level
    last = geometry.levels[-1].level
    by_pa = {node.pa: node for node in facts.nodes}
    fmt = facts.fmt
    oas_mask = (1 << geometry.oas) - 1
    type_mask = _U64(entryformat.TYPE_MASK)
    for node in facts.nodes:
        whole = index.entries_at(node.pa)
        if node.level != top and not whole.any():
            ctx = facts.context_of(node.context)
            in_ctx = "" if ctx is None else f" in context {ctx}"
            empty.append(
                Anomaly(
                    kind=EMPTY_TABLE,
                    message=f"L{node.level} table at PA {node.pa:#x} (VAs {node.va_start:#x}.."
                    f"{node.va_end:#x}{in_ctx}) has no entries: allocated and never used, or "
                    "left over after an unmap",
                    va=node.va_start,
                    va_end=node.va_end,
                    pa=node.pa,
                    context=ctx,
                )
            )
            continue
        entries = whole[: geometry.level(node.level).entries]
        types = entries & type_mask
        allowed = types != 0
        allowed &= types != _U64(entryformat.TYPE_TABLE)
        wanted = "a page" if node.level == last else "a table"
        if node.level in fmt.block_levels:
            allowed &= types != _U64(entryformat.TYPE_BLOCK)
            wanted = "a table or a block"
        for i in np.flatnonzero(allowed).tolist():
            value = int(entries[i])
            problem = (
                f"type {value & entryformat.TYPE_MASK} is neither empty nor {wanted} entry"
                + ("" if node.level == last else f" at L{node.level}")
            )
            unexpected.append(
                _entry_anomaly(facts, node, i, value, UNEXPECTED_TABLE_ENTRY, problem)
            )
        if node.level == last:
            continue
        for i in np.flatnonzero(types == _U64(entryformat.TYPE_TABLE)).tolist():
            value = int(entries[i])
            address = fmt.output_address(value)
            stray = address & ~oas_mask
            if stray:
                problem = (
                    f"its table address {address:#x} has bits at or above "
                    f"the {geometry.oas}-bit output address size ({stray:#x})"
                )
                beyond.append(_entry_anomaly(facts, node, i, value, OA_BEYOND_OAS, problem))
            child_pa = address & facts.dump.pa_mask
            child = by_pa.get(child_pa)
            if child is None:
                problem = f"it points to a table at PA {child_pa:#x} the dump does not carry"
            elif (child.parent_pa, child.parent_index) != (node.pa, i):
                if child.parent_pa is None:
                    seen = f"the TTB of context {child.context}"
                else:
                    seen = f"reached from PA {child.parent_pa:#x} entry {child.parent_index}"
                problem = (
                    f"it points to the L{child.level} table at PA {child_pa:#x}, {seen}: a "
                    "cycle or a shared table"
                )
            else:
                continue
            unexpected.append(
                _entry_anomaly(facts, node, i, value, UNEXPECTED_TABLE_ENTRY, problem)
            )
    return unexpected, empty, beyond


def _check_unexpected_table_entry(facts: _Facts) -> list[Anomaly] | str:
    return facts.tables_missing or facts.table_findings[0]


def _check_empty_table(facts: _Facts) -> list[Anomaly] | str:
    return facts.tables_missing or facts.table_findings[1]


# ---- crash log -----------------------------------------------------------------------------------


def _check_crashlog_mismatch(facts: _Facts) -> list[Anomaly] | str:
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


def _check_fault_mismatch(facts: _Facts) -> list[Anomaly] | str:
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


_CHECKS: dict[str, Callable[[_Facts], list[Anomaly] | str]] = {
    MEMATTR_ALIAS: _check_memattr_alias,
    NORMAL_ON_NON_RAM: _check_normal_on_non_ram,
    DEVICE_ON_RAM: _check_device_on_ram,
    RAM_NOT_DUMPED: _check_ram_not_dumped,
    UNEXPECTED_TABLE_ENTRY: _check_unexpected_table_entry,
    EMPTY_TABLE: _check_empty_table,
    OUTSIDE_MANAGED_RANGE: _check_outside_managed_range,
    OA_BEYOND_OAS: _check_oa_beyond_oas,
    CRASHLOG_MISMATCH: _check_crashlog_mismatch,
    FAULT_MISMATCH: _check_fault_mismatch,
    WRITE_EXEC: _check_write_exec,
}
assert tuple(_CHECKS) == KINDS and set(DESCRIPTIONS) == set(KINDS) == set(SEVERITY)
