"""dumpview's extension as the model reads it: the ``.dumpview`` section's records.

Owns the views over the extension's record arrays (geometry, spaces, tables, regions, holes,
strings, scenario) and every check a later lazy read depends on, done once at open and in bulk.

Failure modes: ``Extension(...)`` raises ``DumpFormatError`` naming the offset of the directory
entry or record that is wrong; names outside the strings blob and hole region indices past the
regions are warnings appended to the dump's ``warnings``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

import construct
import numpy as np

from dumpview.model.errors import DumpFormatError
from dumpview.npstruct import dtype_from_struct
from formats import ext
from formats.geometry import GeometryRecord

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

DIR_DTYPE = dtype_from_struct(ext.ExtDirEntry)


@dataclass(frozen=True)
class Region:
    """A memory-map region from the extension."""

    kind: str  # "ram" | "reserved" | "mmio"
    name: str
    base: int
    size_bytes: int
    no_map: bool
    reusable: bool

    @property
    def end(self) -> int:
        return self.base + self.size_bytes


@dataclass(frozen=True)
class Space:
    context: int
    ttb_pa: int
    ttb_owned: bool
    va_start: int
    va_size_bytes: int
    managed_va_start: int
    managed_va_size_bytes: int


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    knobs_json: str
    generator: str


class _DirEntry(NamedTuple):
    """One directory entry of the extension (offsets from the start of the section)."""

    kind: int
    count: int
    offset: int
    size_bytes: int


class Extension:
    """The parsed ``.dumpview`` section: its record arrays, copied out of the map at open.

    Everything a later lazy read depends on is checked here, at open, in bulk: the directory
    fits the section, each entry's array lies inside it and its record count fills it, hole
    records are sorted and disjoint, the scenario record decodes (knobs: a JSON object). Each
    failure is a ``DumpFormatError`` naming the offset of the entry or record that is wrong.
    Region names outside the strings blob and hole region indices past the regions are
    warnings (``Dump.warnings``): the names read "?" and the detail has no region."""

    def __init__(self, dump: Dump, offset: int, size_bytes: int) -> None:
        self._dump = dump
        self.offset = offset
        mv = dump.buffer
        # The fixed header (size and magic checked by the caller), then the directory as one
        # array: its size is checked before anything is decoded, so a hostile count costs
        # nothing.
        fixed = ext.ExtHeaderFixed.parse(mv[offset : offset + ext.EXT_HEADER_FIXED_SIZE])
        self.version = fixed.version
        count = fixed.directory_count
        entry_size = DIR_DTYPE.itemsize
        directory_end = ext.EXT_HEADER_FIXED_SIZE + count * entry_size
        if directory_end > size_bytes:
            raise DumpFormatError(
                offset,
                f"bad .dumpview extension header: a directory of {count} entries of "
                f"{entry_size} bytes ends at +{directory_end:#x}, past the end of the "
                f"{size_bytes:#x}-byte section",
            )
        directory = np.frombuffer(
            mv, dtype=DIR_DTYPE, count=count, offset=offset + ext.EXT_HEADER_FIXED_SIZE
        )
        starts, sizes = directory["offset"], directory["size_bytes"]
        section = np.uint64(size_bytes)
        outside = (starts > section) | (sizes > section - np.minimum(starts, section))
        if outside.any():
            i = int(outside.argmax())
            raise DumpFormatError(
                offset + ext.EXT_HEADER_FIXED_SIZE + i * entry_size,
                f"extension directory entry {i}: record kind {int(directory['kind'][i])} at "
                f"+{int(starts[i]):#x} ({int(sizes[i])} bytes) runs past the end of the "
                f"{size_bytes:#x}-byte .dumpview section",
            )
        for kind, record in ext.RECORDS.items():
            wrong = (directory["kind"] == kind) & (
                directory["count"].astype(np.uint64) * np.uint64(record.sizeof()) != sizes
            )
            if wrong.any():
                i = int(wrong.argmax())
                raise DumpFormatError(
                    offset + int(starts[i]),
                    f"extension record kind {kind}: {int(directory['count'][i])} records of "
                    f"{record.sizeof()} bytes do not fill {int(sizes[i])} bytes",
                )
        self._dir: dict[int, _DirEntry] = {}
        for i in np.flatnonzero(np.isin(directory["kind"], list(ext.KINDS))).tolist():
            row = directory[i]  # the last entry of a kind wins
            self._dir[int(row["kind"])] = _DirEntry(
                int(row["kind"]), int(row["count"]), int(row["offset"]), int(row["size_bytes"])
            )
        self._size = size_bytes
        self._check_holes()
        _ = self.scenario
        self._check_references()
        # Everything the model reads later is copied out of the map now (the records are small):
        # after open nothing here touches the file, whatever happens to it.
        _ = self.geometry_record, self.tables, self.regions, self.spaces

    def _check_holes(self) -> None:
        """Hole records must be sorted by VA and disjoint (lookups binary-search them)."""
        holes = self.holes
        if not len(holes):
            return
        va, size = holes["va"], holes["size_bytes"]
        end = va + size
        bad = np.flatnonzero(end < va)
        problem = "wraps past the top of the address space"
        if not len(bad):
            bad = np.flatnonzero(va[1:] < end[:-1]) + 1
            problem = "is not after the hole before it (holes are sorted by VA and disjoint)"
        if len(bad):
            i = int(bad[0])
            entry = self._dir[ext.KIND_HOLES]
            raise DumpFormatError(
                self.offset + entry.offset + i * ext.HoleRecord.sizeof(),
                f"extension hole #{i} (VA {int(va[i]):#x}, {int(size[i]):#x} bytes) {problem}",
            )

    def _check_references(self) -> None:
        """Warn about region names outside the strings blob and hole region indices past the
        regions (both still readable: "?" and no region)."""
        regions = self._array(ext.KIND_REGIONS)
        names = regions["name_offset"]
        bad = np.flatnonzero(names >= len(self._strings))
        if len(bad):
            i = int(bad[0])
            self._dump.warnings.append(
                f"extension region #{i}: name offset {int(names[i]):#x} is outside the "
                f'{len(self._strings)}-byte strings blob ({len(bad)} such regions); named "?"'
            )
        index = self.holes["region_index"]
        bad = np.flatnonzero((index < -1) | (index >= len(regions)))
        if len(bad):
            i = int(bad[0])
            self._dump.warnings.append(
                f"extension hole #{i} (VA {int(self.holes['va'][i]):#x}): region index "
                f"{int(index[i])} is not one of the {len(regions)} regions ({len(bad)} such "
                "holes); shown without a region"
            )

    def _blob(self, kind: int) -> memoryview | None:
        entry = self._dir.get(kind)
        if entry is None:
            return None
        start = self.offset + entry.offset
        return memoryview(bytes(self._dump.buffer[start : start + entry.size_bytes]))

    def _array(self, kind: int) -> np.ndarray:
        struct = ext.RECORDS[kind]
        dtype = dtype_from_struct(struct)
        blob = self._blob(kind)
        if blob is None:
            return np.zeros(0, dtype=dtype)
        return np.frombuffer(blob, dtype=dtype)  # sizes checked against counts in __init__

    @property
    def geometry_offset(self) -> int:
        """File offset of the geometry record (of the section when there is none)."""
        entry = self._dir.get(ext.KIND_GEOMETRY)
        return self.offset + (entry.offset if entry is not None else 0)

    @cached_property
    def geometry_record(self) -> construct.Container | None:
        blob = self._blob(ext.KIND_GEOMETRY)
        if blob is None:
            return None
        try:
            return GeometryRecord.parse(blob)
        except construct.ConstructError as exc:
            raise DumpFormatError(self.geometry_offset, f"bad geometry record: {exc}") from None

    @cached_property
    def tables(self) -> np.ndarray:
        return self._array(ext.KIND_TABLES)

    @cached_property
    def holes(self) -> np.ndarray:
        return self._array(ext.KIND_HOLES)

    @cached_property
    def _strings(self) -> bytes:
        blob = self._blob(ext.KIND_STRINGS)
        return bytes(blob) if blob is not None else b""

    @cached_property
    def regions(self) -> tuple[Region, ...]:
        out = []
        for row in self._array(ext.KIND_REGIONS):
            try:
                name = ext.string_at(self._strings, int(row["name_offset"]))
            except ValueError:
                name = "?"
            out.append(
                Region(
                    kind=ext.REGION_KIND_NAMES.get(int(row["kind"]), f"kind-{int(row['kind'])}"),
                    name=name,
                    base=int(row["base"]),
                    size_bytes=int(row["size_bytes"]),
                    no_map=bool(row["flags"] & ext.REGION_NO_MAP),
                    reusable=bool(row["flags"] & ext.REGION_REUSABLE),
                )
            )
        return tuple(out)

    @cached_property
    def spaces(self) -> tuple[Space, ...]:
        return tuple(
            Space(
                context=int(r["context"]),
                ttb_pa=int(r["ttb_pa"]),
                ttb_owned=bool(r["flags"] & ext.SPACE_TTB_OWNED),
                va_start=int(r["va_start"]),
                va_size_bytes=int(r["va_size_bytes"]),
                managed_va_start=int(r["managed_va_start"]),
                managed_va_size_bytes=int(r["managed_va_size_bytes"]),
            )
            for r in self._array(ext.KIND_SPACES)
        )

    @cached_property
    def scenario(self) -> Scenario | None:
        blob = self._blob(ext.KIND_SCENARIO)
        if blob is None:
            return None
        where = self.offset + self._dir[ext.KIND_SCENARIO].offset
        try:
            rec = ext.ScenarioRecord.parse(blob)
        except (construct.ConstructError, UnicodeDecodeError) as exc:
            raise DumpFormatError(where, f"bad scenario record: {exc}") from None
        try:
            knobs = json.loads(rec.knobs_json or "{}")
        except ValueError as exc:
            raise DumpFormatError(where, f"scenario knobs are not JSON: {exc}") from None
        if not isinstance(knobs, dict):
            raise DumpFormatError(where, "scenario knobs are not a JSON object")
        return Scenario(rec.name, rec.seed, rec.knobs_json, rec.generator)
