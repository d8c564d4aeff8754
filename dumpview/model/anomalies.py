"""Anomalies for browsing: ``check``'s findings grouped by kind, most severe first, and which
entries of a table each finding is about (the inspector marks those rows).

Owns the grouping (``grouped``, in ``check.SEVERITY``'s order: the one severity order of the
kinds, which triage and the command line's colour also use) and ``AnomalyMarks``, an index
over the findings that answers, for the 2048 entries of one table at a time, which of them a
finding is about, with numpy (binary searches, no loop per finding).

What a finding is about:

- a finding about pages (``pages > 0``, or a VA run no longer than one page: crash-log pairs)
  is about every leaf entry (page or block) whose VA span meets the run, in the finding's
  address space; memattr-alias findings are about every alias (``vas``);
- a finding about a table entry or a table (no pages, a longer run: unexpected-table-entry,
  oa-beyond-oas of a table entry, empty-table) is about the entry whose VA span is exactly the
  run: the entry itself, or the entry pointing to the empty table.

A finding without a VA is about no entry. ``context`` None (the dumped address space) is the
context the level tree browses it as (``dumped_context``). Nothing here raises for findings
``check`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dumpview.model.check import (
    DESCRIPTIONS,
    SEVERITY_RANK,
    Anomaly,
    CheckResult,
)
from dumpview.model.levels import TableRows
from formats.entryformat import TYPE_BLOCK, TYPE_MASK
from formats.geometry import Geometry

RANK = SEVERITY_RANK  # one order of the kinds: check's (most severe first)

_U64 = np.uint64


@dataclass(frozen=True)
class AnomalyGroup:
    """The findings of one kind, in ``check``'s order (context, VA, PA)."""

    kind: str
    description: str
    anomalies: tuple[Anomaly, ...]

    def __len__(self) -> int:
        return len(self.anomalies)


def grouped(result: CheckResult) -> list[AnomalyGroup]:
    """One group per kind that has findings, most severe kind first."""
    by_kind: dict[str, list[Anomaly]] = {}
    for anomaly in result.anomalies:
        by_kind.setdefault(anomaly.kind, []).append(anomaly)
    return [
        AnomalyGroup(kind, DESCRIPTIONS.get(kind, kind), tuple(by_kind[kind]))
        for kind in sorted(by_kind, key=lambda k: RANK.get(k, len(RANK)))
    ]


def _is_about_pages(anomaly: Anomaly, page_size_bytes: int) -> bool:
    return anomaly.pages > 0 or (anomaly.va_end or 0) - (anomaly.va or 0) <= page_size_bytes


def entry_depth(anomaly: Anomaly, geometry: Geometry) -> int | None:
    """The level whose entries span exactly the finding's VA run (a table entry or a table
    finding is about that entry, as ``AnomalyMarks`` keys it), else None (pages: the
    deepest table)."""
    if _is_about_pages(anomaly, geometry.page_size_bytes):
        return None
    span = (anomaly.va_end or 0) - (anomaly.va or 0)
    for depth, level in enumerate(geometry.levels):
        if level.entry_span_bytes == span:
            return depth
    return None


class AnomalyMarks:
    """Which entries the findings of one ``check`` are about (see the module docstring)."""

    def __init__(
        self, anomalies: Iterable[Anomaly], page_size_bytes: int, dumped_context: int
    ) -> None:
        self.dumped_context = dumped_context
        self.page_size_bytes = page_size_bytes
        runs: dict[int, list[tuple[int, int, Anomaly]]] = {}
        entries: dict[tuple[int, int], dict[int, list[Anomaly]]] = {}
        for anomaly in anomalies:
            if anomaly.va is None or anomaly.va_end is None:
                continue
            context = self.context_of(anomaly)
            length = anomaly.va_end - anomaly.va
            if _is_about_pages(anomaly, page_size_bytes):
                for va in anomaly.vas or (anomaly.va,):
                    runs.setdefault(context, []).append((va, va + max(length, 1), anomaly))
            else:
                entries.setdefault((context, length), {}).setdefault(anomaly.va, []).append(anomaly)
        self._runs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, list[Anomaly]]] = {}
        for context, items in runs.items():
            items.sort(key=lambda item: (item[0], item[1]))
            starts = np.array([s for s, _, _ in items], dtype=np.uint64)
            ends = np.array([min(e, (1 << 64) - 1) for _, e, _ in items], dtype=np.uint64)
            reach = np.maximum.accumulate(ends)  # the furthest end of any run starting so far
            self._runs[context] = (starts, ends, reach, [a for _, _, a in items])
        self._entries = entries
        self._entry_starts = {
            key: np.array(sorted(found), dtype=np.uint64) for key, found in entries.items()
        }

    def context_of(self, anomaly: Anomaly) -> int:
        """The level tree's context number for the finding's address space."""
        return self.dumped_context if anomaly.context is None else anomaly.context

    def marks(
        self, context: int, entry_vas: np.ndarray, span_bytes: int, leaf: np.ndarray
    ) -> np.ndarray:
        """A bool per entry: whether a finding is about it. ``entry_vas``: the entries' VAs
        (uint64), each covering ``span_bytes``; ``leaf``: which of them are leaves (pages or
        blocks)."""
        vas = np.asarray(entry_vas, dtype=np.uint64)
        out = np.zeros(len(vas), dtype=bool)
        run = self._runs.get(context)
        if run is not None and len(vas):
            starts, _ends, reach, _ = run
            ends = vas + _U64(span_bytes)
            k = np.searchsorted(starts, ends, side="left")  # runs starting before the entry ends
            met = np.zeros(len(vas), dtype=bool)
            some = k > 0
            met[some] = reach[k[some] - 1] > vas[some]
            out |= met & np.asarray(leaf, dtype=bool)
        starts = self._entry_starts.get((context, span_bytes))
        if starts is not None:
            out |= np.isin(vas, starts)
        return out

    def about(self, context: int, va: int, span_bytes: int, leaf: bool) -> list[Anomaly]:
        """The findings about the entry at ``va`` (``span_bytes``, a leaf or not), each once."""
        found: list[Anomaly] = list(self._entries.get((context, span_bytes), {}).get(va, ()))
        run = self._runs.get(context)
        if run is not None and leaf:
            starts, ends, reach, items = run
            end = va + span_bytes
            k = int(np.searchsorted(starts, _U64(min(end, (1 << 64) - 1)), side="left"))
            for i in range(k - 1, -1, -1):
                if int(reach[i]) <= va:
                    break  # no run starting this early reaches the entry
                if int(ends[i]) > va and items[i] not in found:
                    found.append(items[i])
                if len(found) > 16:
                    break  # the details pane shows a few; a pathological overlap stays cheap
        return sorted(found, key=lambda a: RANK.get(a.kind, len(RANK)))


def leaf_entries(rows: TableRows) -> np.ndarray:
    """Which entries of a table are leaves (pages, or blocks at a level that has them)."""
    if rows.is_leaf_level:
        return rows.present.copy()
    fmt = rows.tree.dump.entry_format
    if rows.values is None or rows.level_geometry.level not in fmt.block_levels:
        return np.zeros(len(rows.present), dtype=bool)
    return (rows.values & _U64(TYPE_MASK)) == _U64(TYPE_BLOCK)
