"""Property tests (hypothesis): every formats/ declaration round trips, every bulk decoder agrees
with its scalar twin, and the model keeps its invariants over random valid dumps.

Part 1 checks ``build(parse(x)) == x`` for bytes where a declaration is total (padding zero,
counts consistent), ``parse(build(v)) == v`` for generated values, and bulk (numpy) decoders
against the construct declaration or the scalar function they stand for. Part 2 generates valid
dumps two ways: through the simulator's scenarios (name, seed, knobs; both layouts, compared
page by page) and through tests/factory.py's writer helpers (random PT_LOAD sets, protections,
data or not, hole records, regions, extra notes, with or without carried tables). It checks the
model against the plan a dump was built from, against pyelftools (an independent ELF reader)
and against the model's other answers (bulk pages, translate, ranges, export, diff, check).

Example counts are small and fixed per test (the whole file runs in well under 40 s on two
cores). In CI (``CI`` set) hypothesis loads its built-in ``ci`` profile: derandomized, no
database, no deadline; nothing here registers another profile.

Coverage: each declaration (or builder/parser pair, or bulk decoder) and the tests that cover it.
"existing" tests live in tests/test_formats_core.py (core) and tests/test_formats_agx_clhe.py
(agx_clhe); everything else is in this file.

========================================  ===============================================
formats/elf.py
  ElfIdent, Elf64_Ehdr                    core::test_core_ehdr_round_trip_and_hand_layout
                                          (builder values); test_ehdr_round_trip_every_field
  build_core_ehdr                         core::test_core_ehdr_round_trip_and_hand_layout
  Elf64_Phdr                              core::test_phdr_round_trip,
                                          core::test_numpy_decodes_construct_built_records_...;
                                          test_writer_program_headers_parse_as_declared
                                          (sim.writer.build_phdrs, numpy, vs the declaration)
  Elf64_Shdr, build_shdr                  core::test_shdr_round_trip;
                                          test_build_shdr_sets_exactly_the_given_fields
  Elf64_Nhdr                              core::test_nhdr_round_trip
  ElfNote, build_note, note_size_bytes    core::test_note_round_trip_and_padding;
                                          test_build_note_round_trips_or_refuses; the model's
                                          note walker vs pyelftools in test_model_invariants_*
  align_up                                core::test_align_up; test_align_up_property
formats/agx.py
  AgxInfo, parse_agx_info                 agx_clhe::test_agx_round_trip (one example);
                                          test_agx_info_bytes_round_trip
  build_agx_info (numbers and names)      test_agx_info_value_round_trip_with_names,
                                          test_build_agx_info_fails_only_with_value_error
  GPU_*_NAMES, gpu_*_name                 test_agx_name_helpers_invert_the_tables
  firmware_version_string                 test_firmware_version_string_keeps_the_words
formats/clhe.py
  ClheHeader                              test_clhe_header_round_trip
  ClheEntryHeader (Kind)                  test_clhe_entry_header_round_trip
  CverPayload                             test_payload_value_round_trip[Cver],
                                          test_payload_bytes_round_trip[Cver]
  CstrPayload                             agx_clhe::test_cstr_round_trip; ...bytes...[Cstr]
  CtimPayload                             test_payload_value/bytes_round_trip[Ctim]
  CmbxPayload, CmbxRecord                 test_payload_value/bytes_round_trip[Cmbx]
  CcstPayload                             test_payload_value/bytes_round_trip[Ccst]
  CascPayload                             test_payload_value/bytes_round_trip[CasC]
  Crg8Payload                             test_payload_value/bytes_round_trip[Crg8]
  CrtkPayload, CrtkTask                   test_payload_value/bytes_round_trip[Crtk]
  CcdpPayload, CcdpPair                   agx_clhe::test_ccdp_round_trip; ...bytes...[Ccdp]
  build_crashlog / parse_crashlog         agx_clhe::test_parse_never_raises_* (hostile bytes);
                                          test_crashlog_round_trip_random_entries;
                                          test_build_crashlog_refuses_the_closing_kind
formats/uat.py
  UatEntryBits / UatEntry                 core::test_uat_entry_round_trip_over_random_values
                                          (bytes); test_uat_entry_value_round_trip (values)
  FIELDS + model.entries.bulk_fields      core::test_bulk_decoder_agrees_with_the_construct_...
  pack_p_flags / unpack_p_flags           core::test_p_flags_pack_then_unpack_..., core::
                                          test_unpack_then_pack_...; test_named_protections_...
  model.pagearrays.unpack_p_flags_bulk    test_unpack_p_flags_bulk_agrees_with_scalar
  sim.walker._pack_flags_bulk             test_pack_p_flags_bulk_agrees_with_scalar
  permission tables, views                core::test_named_protections_... (hand);
                                          test_firmware_view_is_the_union_of_el1_and_gl1,
                                          test_views_depend_only_on_the_permission_bits
  model.kinds.leaf_kinds (bulk)           test_leaf_kinds_bulk_agrees_with_leaf_kind
  PROTS / Prot.bits                       test_named_protections_decode_to_their_fields
  memattr tables                          core::test_memattr_names_follow_the_reference;
                                          test_memattr_sets_partition_the_names
  elf_rwx                                 test_elf_rwx_names_each_letter
formats/geometry.py
  Geometry, LevelGeometry                 core (examples); test_geometry_levels_partition_...,
                                          test_index_of_and_rebuild_va_round_trip
  GeometryRecord                          core::test_geometry_record_round_trip;
                                          test_geometry_record_of_a_geometry_round_trips
formats/ext.py
  ExtHeader, ExtDirEntry                  core::test_ext_header_with_directory_round_trip,
                                          core::test_dir_entry_round_trip
  SpaceRecord, TableRecord, RegionRecord, core::test_*_record_round_trip, core::test_numpy_...;
  HoleRecord                              test_extension_blob_round_trip (whole directory)
  ScenarioRecord                          core::test_scenario_record_round_trip
  strings blob, string_at                 test_strings_blob_round_trip
  the whole .dumpview section             test_extension_blob_round_trip (sim.writer's
                                          build_extension_blob -> model.dump.Extension)
dumpview/npstruct.py
  dtype_from_struct                       core::test_dtype_matches_the_declaration (every
                                          record); test_dtype_from_random_flat_structs,
                                          test_dtype_from_struct_refuses_what_it_would_drop
model bulk vs scalar
  pagearrays.PageIndex vs Dump.pages      test_model_invariants_* (random dumps)
  pagearrays.hole_reasons vs hole_reason  test_model_invariants_* (random dumps)
the model over random valid dumps        test_model_invariants_over_scenarios,
                                          test_model_invariants_over_factory_dumps,
                                          test_pt_load_at_the_top_of_the_address_space
                                          (accepted: another writer may dump it),
                                          test_ranges_split_where_the_hole_reason_changes
========================================  ===============================================
"""

from __future__ import annotations

import io
import itertools
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import construct
import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dumpview
from dumpview.model.errors import AddressError, NotDumpedError
from dumpview.model.extension import Extension as ModelExtension
from dumpview.model.kinds import KIND_CODES, leaf_kind, leaf_kinds
from dumpview.model.memmap import minimap
from dumpview.model.pagearrays import unpack_p_flags_bulk
from dumpview.npstruct import dtype_from_struct
from dumpview.sim.scenarios import SCENARIOS, generate_file
from dumpview.sim.walker import _pack_flags_bulk
from dumpview.sim.writer import Extension as WriterExtension
from dumpview.sim.writer import (
    HoleInfo,
    RegionInfo,
    SegmentTable,
    SpaceInfo,
    TableInfo,
    build_extension_blob,
    build_phdrs,
)
from formats import agx, clhe, elf, ext, uat
from formats.geometry import Geometry, GeometryRecord
from tests import factory

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFF_FFFF)
U64 = st.integers(0, (1 << 64) - 1)
PAGE = uat.PAGE_SIZE

FAST = settings(max_examples=60, deadline=None)
DUMPS = [HealthCheck.too_slow, HealthCheck.data_too_large]
SCENARIO_DUMPS = settings(max_examples=30, deadline=None, suppress_health_check=DUMPS)
FACTORY_DUMPS = settings(max_examples=150, deadline=None, suppress_health_check=DUMPS)


# =============================================================================================
# Part 1: formats/ declarations
# =============================================================================================

# ---- ELF ------------------------------------------------------------------------------------

EHDR_FIELDS = (
    ("e_type", U16),
    ("e_machine", U16),
    ("e_version", U32),
    ("e_entry", U64),
    ("e_phoff", U64),
    ("e_shoff", U64),
    ("e_flags", U32),
    ("e_ehsize", U16),
    ("e_phentsize", U16),
    ("e_phnum", U16),
    ("e_shentsize", U16),
    ("e_shnum", U16),
    ("e_shstrndx", U16),
)


@FAST
@given(
    ident=st.tuples(U8, U8, U8, U8, U8),
    values=st.fixed_dictionaries({name: strategy for name, strategy in EHDR_FIELDS}),
)
def test_ehdr_round_trip_every_field(ident: tuple[int, ...], values: dict[str, int]) -> None:
    """Any field values build the hand-packed header and parse back; those bytes rebuild."""
    ident_names = ("ei_class", "ei_data", "ei_version", "ei_osabi", "ei_abiversion")
    value = {"e_ident": dict(zip(ident_names, ident, strict=True)), **values}
    raw = elf.Elf64_Ehdr.build(value)
    expected = b"\x7fELF" + bytes(ident) + bytes(7)
    expected += struct.pack("<HHIQQQIHHHHHH", *(values[name] for name, _ in EHDR_FIELDS))
    assert raw == expected
    parsed = elf.Elf64_Ehdr.parse(raw)
    assert {name: parsed[name] for name, _ in EHDR_FIELDS} == values
    assert tuple(parsed.e_ident[n] for n in ident_names) == ident
    assert elf.Elf64_Ehdr.build(parsed) == raw


SHDR_NAMES = [sc.name for sc in elf.Elf64_Shdr.subcons]


@FAST
@given(st.data())
def test_build_shdr_sets_exactly_the_given_fields(data: st.DataObject) -> None:
    names = data.draw(st.sets(st.sampled_from(SHDR_NAMES)))
    given_fields = {
        name: data.draw(
            U32 if elf.Elf64_Shdr.subcons[SHDR_NAMES.index(name)].sizeof() == 4 else U64
        )
        for name in sorted(names)
    }
    parsed = elf.Elf64_Shdr.parse(elf.build_shdr(**given_fields))
    assert {name: parsed[name] for name in SHDR_NAMES} == {
        name: given_fields.get(name, 0) for name in SHDR_NAMES
    }


@FAST
@given(value=st.integers(0, 1 << 48), shift=st.integers(0, 20))
def test_align_up_property(value: int, shift: int) -> None:
    alignment = 1 << shift
    aligned = elf.align_up(value, alignment)
    assert aligned % alignment == 0
    assert value <= aligned < value + alignment


@FAST
@given(
    name=st.one_of(st.text(alphabet="ab\0\xe9", max_size=4), st.text(max_size=8)),
    note_type=U32,
    desc=st.binary(max_size=12),
)
def test_build_note_round_trips_or_refuses(name: str, note_type: int, desc: bytes) -> None:
    """Any name either builds a note that parses back to itself or is refused (not ASCII, or a
    NUL inside, which readers would cut short): never a note that reads differently."""
    try:
        raw = elf.build_note(name, note_type, desc)
    except construct.ConstructError:
        assert "\0" in name or not name.isascii()
        return
    parsed = elf.ElfNote.parse(raw)
    assert (parsed.name, parsed.n_type, parsed.desc) == (name, note_type, desc)
    assert elf.ElfNote.build(parsed) == raw


# ---- AGX ------------------------------------------------------------------------------------

AGX_STRUCT = struct.Struct("<QIIIII6I4x")


@FAST
@given(st.binary(min_size=52, max_size=52))
def test_agx_info_bytes_round_trip(head: bytes) -> None:
    """Every 56-byte descriptor with zero padding parses to the hand-unpacked fields and
    rebuilds byte for byte."""
    raw = head + bytes(4)
    info = agx.parse_agx_info(raw)
    unpacked = AGX_STRUCT.unpack(raw)
    assert (
        info.initdata_address,
        info.chip_id,
        info.gpu_gen,
        info.gpu_variant,
        info.gpu_rev,
        info.total_active_cores,
        *info.firmware_version,
    ) == unpacked
    assert agx.AgxInfo.build(info) == raw


def _name_or_number(table: dict[int, str]) -> st.SearchStrategy[int | str]:
    return st.one_of(U32, st.sampled_from(sorted(table.values())))


def _number(table: dict[int, str], value: int | str) -> int:
    if isinstance(value, int):
        return value
    return next(number for number, name in table.items() if name == value)


@FAST
@given(
    initdata=U64,
    chip=U32,
    gen=_name_or_number(dict(agx.GPU_GEN_NAMES)),
    variant=_name_or_number(dict(agx.GPU_VARIANT_NAMES)),
    rev=_name_or_number(dict(agx.GPU_REV_NAMES)),
    cores=U32,
    version=st.lists(U32, max_size=6),
)
def test_agx_info_value_round_trip_with_names(
    initdata: int,
    chip: int,
    gen: int | str,
    variant: int | str,
    rev: int | str,
    cores: int,
    version: list[int],
) -> None:
    raw = agx.build_agx_info(
        initdata_address=initdata,
        chip_id=chip,
        gpu_gen=gen,
        gpu_variant=variant,
        gpu_rev=rev,
        total_active_cores=cores,
        firmware_version=version,
    )
    numbers = (
        _number(dict(agx.GPU_GEN_NAMES), gen),
        _number(dict(agx.GPU_VARIANT_NAMES), variant),
        _number(dict(agx.GPU_REV_NAMES), rev),
    )
    words = version + [0] * (6 - len(version))
    assert raw == AGX_STRUCT.pack(initdata, chip, *numbers, cores, *words)
    info = agx.parse_agx_info(raw)
    assert (info.gpu_gen, info.gpu_variant, info.gpu_rev) == numbers
    assert list(info.firmware_version) == words


ANYTHING = st.one_of(
    st.none(),
    st.integers(-(1 << 70), 1 << 70),
    st.text(max_size=3),
    st.lists(st.integers(-5, 1 << 33), max_size=8),
    st.floats(),
    st.binary(max_size=3),
)
AGX_FIELD_NAMES = [sc.name for sc in agx.AgxInfo.subcons if sc.name]


@FAST
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(AGX_FIELD_NAMES, ANYTHING)))
def test_build_agx_info_fails_only_with_value_error(fields: dict[str, Any]) -> None:
    """The documented failure mode: 56 bytes, or ValueError (missing field, unknown name, value
    that does not fit), whatever the caller passes."""
    try:
        raw = agx.build_agx_info(**fields)
    except ValueError:
        return
    assert len(raw) == agx.AGX_INFO_SIZE
    assert set(fields) == set(AGX_FIELD_NAMES)


AGX_BASE = {
    "initdata_address": 0,
    "chip_id": 0x6000,
    "gpu_gen": 13,
    "gpu_variant": ord("C"),
    "gpu_rev": 0,
    "total_active_cores": 8,
    "firmware_version": [],
}


@pytest.mark.parametrize(
    ("field", "table", "helper"),
    [
        ("gpu_gen", agx.GPU_GEN_NAMES, agx.gpu_gen_name),
        ("gpu_variant", agx.GPU_VARIANT_NAMES, agx.gpu_variant_name),
        ("gpu_rev", agx.GPU_REV_NAMES, agx.gpu_rev_name),
    ],
)
@FAST
@given(value=U32)
def test_agx_name_helpers_invert_the_tables(
    field: str, table: Any, helper: Any, value: int
) -> None:
    """A name builds its number and the helper names that number back; a number without a
    name is kept as a number and named None."""
    for number, name in table.items():
        info = agx.parse_agx_info(agx.build_agx_info(**{**AGX_BASE, field: name}))
        assert info[field] == number
        assert helper(info[field]) == name
    info = agx.parse_agx_info(agx.build_agx_info(**{**AGX_BASE, field: value}))
    assert info[field] == value
    assert (helper(value) is None) == (value not in table)


@FAST
@given(st.lists(U32, max_size=6))
def test_firmware_version_string_keeps_the_words(words: list[int]) -> None:
    text = agx.firmware_version_string(words)
    parts = [int(p) for p in text.split(".")]
    assert len(parts) >= 3
    assert len(parts) == 3 or parts[-1] != 0  # zeros past the third are dropped
    padded = words + [0] * (6 - len(words))
    assert parts + [0] * (6 - len(parts)) == padded


# ---- CLHE -----------------------------------------------------------------------------------

KIND_BYTES = st.binary(min_size=4, max_size=4)


@FAST
@given(version=U32, total=U32, flags=U32)
def test_clhe_header_round_trip(version: int, total: int, flags: int) -> None:
    raw = b"EHLC" + struct.pack("<III", version, total, flags) + bytes(16)  # LE u32 'CLHE'
    header = clhe.ClheHeader.parse(raw)
    assert (header.version, header.total_size, header.flags) == (version, total, flags)
    assert clhe.ClheHeader.build(header) == raw
    assert clhe.ClheHeader.build({"version": version, "total_size": total, "flags": flags}) == raw


@FAST
@given(kind=KIND_BYTES, flags=U32, length=U32)
def test_clhe_entry_header_round_trip(kind: bytes, flags: int, length: int) -> None:
    on_disk = struct.pack("<I", int.from_bytes(kind, "big"))  # the firmware's FOURCC u32
    raw = on_disk + bytes(4) + struct.pack("<II", flags, length)
    entry = clhe.ClheEntryHeader.parse(raw)
    assert (entry.kind, entry.flags, entry.length) == (kind.decode("latin-1"), flags, length)
    assert clhe.ClheEntryHeader.build(entry) == raw


# Crash log text is UTF-8 (m1n1): any character but NUL and lone surrogates.
TEXT_NO_NUL = st.text(
    alphabet=st.characters(min_codepoint=1, blacklist_categories=("Cs",)), max_size=40
)


@st.composite
def crtk_task(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(TEXT_NO_NUL.filter(lambda t: len(t.encode()) <= 28))
    return {
        "id": draw(U16),
        "flags": draw(U16),
        "unk0": draw(st.lists(U32, min_size=3, max_size=3)),
        "ptr": draw(U64),
        "unk1": draw(st.lists(U32, min_size=4, max_size=4)),
        "name": name,
        "ptrs": draw(st.lists(U64, max_size=4)),
    }


def _u64s(n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(U64, min_size=n, max_size=n)


CASC_FIELDS = (
    "l2c_err_sts",
    "l2c_err_adr",
    "l2c_err_inf",
    "lsu_err_sts",
    "fed_err_sts",
    "mmu_err_sts",
)
PAYLOAD_VALUES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Cver": st.fixed_dictionaries(
        {"uuid": st.binary(min_size=16, max_size=16), "version": TEXT_NO_NUL}
    ),
    "Cstr": st.fixed_dictionaries({"id": U32, "message": TEXT_NO_NUL}),
    "Ctim": st.fixed_dictionaries({"time": U64}),
    "Cmbx": st.fixed_dictionaries(
        {
            "header": st.lists(U32, min_size=4, max_size=4),
            "type": U32,
            "unknown": U32,
            "index": U32,
            "records": st.lists(
                st.fixed_dictionaries({"endpoint": U64, "message": U64, "timestamp": U32}),
                max_size=4,
            ),
        }
    ),
    "Ccst": st.fixed_dictionaries(
        {"task": U32, "unknown": U32, "return_addresses": st.lists(U64, max_size=8)}
    ),
    "CasC": st.fixed_dictionaries({name: U64 for name in CASC_FIELDS}),
    "Crg8": st.fixed_dictionaries(
        {
            "unk0": U32,
            "unk1": U32,
            "x": _u64s(31),
            **{name: U64 for name in ("sp", "pc", "psr", "cpacr", "fpsr", "fpcr")},
            "unknown": _u64s(64),
            **{name: U64 for name in ("far", "unknown2", "esr", "unknown3")},
        }
    ),
    "CrgA": st.fixed_dictionaries(
        {
            "unk0": U32,
            "unk1": U32,
            "r": st.lists(U32, min_size=16, max_size=16),
            "psr": U32,
            "unknown": U32,
            "stack": st.binary(min_size=256, max_size=256),
            "unknown2": st.lists(U32, min_size=4, max_size=4),
        }
    ),
    "Crtk": st.fixed_dictionaries({"tasks": st.lists(crtk_task(), max_size=3)}),
    "Ccdp": st.fixed_dictionaries(
        {
            "pairs": st.lists(
                st.fixed_dictionaries({"va": U64, "pa": U64, "unknown": U32}), max_size=4
            )
        }
    ),
}


def payload_by_hand(kind: str, v: dict[str, Any]) -> bytes:
    """The documented byte layout of each payload kind, packed with ``struct``."""
    if kind == "Cver":
        return v["uuid"] + v["version"].encode("utf-8") + b"\0"
    if kind == "Cstr":
        return struct.pack("<I", v["id"]) + v["message"].encode("utf-8") + b"\0"
    if kind == "Ctim":
        return struct.pack("<Q", v["time"])
    if kind == "Cmbx":
        head = struct.pack("<7I", *v["header"], v["type"], v["unknown"], v["index"])
        return head + b"".join(
            struct.pack("<QQI4x", r["endpoint"], r["message"], r["timestamp"]) for r in v["records"]
        )
    if kind == "Ccst":
        addresses = v["return_addresses"]
        return struct.pack(f"<II{len(addresses)}Q", v["task"], v["unknown"], *addresses)
    if kind == "CasC":
        return struct.pack("<6Q", *(v[name] for name in CASC_FIELDS))
    if kind == "Crg8":
        return struct.pack(
            "<II31Q6Q64Q4Q",
            v["unk0"],
            v["unk1"],
            *v["x"],
            *(v[n] for n in ("sp", "pc", "psr", "cpacr", "fpsr", "fpcr")),
            *v["unknown"],
            *(v[n] for n in ("far", "unknown2", "esr", "unknown3")),
        )
    if kind == "CrgA":  # HoolockLinux's struct apple_rtkit_crashlog_armv7
        head = struct.pack("<II16III", v["unk0"], v["unk1"], *v["r"], v["psr"], v["unknown"])
        return head + v["stack"] + struct.pack("<4I", *v["unknown2"])
    if kind == "Crtk":
        out = b""
        for t in v["tasks"]:
            out += struct.pack(
                "<HH3IQ4II", t["id"], t["flags"], *t["unk0"], t["ptr"], *t["unk1"], len(t["ptrs"])
            )
            out += t["name"].encode("utf-8").ljust(28, b"\0")
            out += struct.pack(f"<{len(t['ptrs'])}Q", *t["ptrs"])
        return out
    assert kind == "Ccdp"
    return b"".join(struct.pack("<QQI", p["va"], p["pa"], p["unknown"]) for p in v["pairs"])


def plain(value: Any) -> Any:
    """A parsed Container as plain dicts and lists, without construct's private keys."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("kind", sorted(set(PAYLOAD_VALUES) - {"Cstr", "Ccdp"}))
@FAST
@given(data=st.data())
def test_payload_value_round_trip(kind: str, data: st.DataObject) -> None:
    """Values build the documented bytes, parse back to themselves (no trailing bytes)."""
    value = data.draw(PAYLOAD_VALUES[kind])
    declaration = clhe.PAYLOADS[kind]
    raw = declaration.build(value)
    assert raw == payload_by_hand(kind, value)
    parsed = plain(declaration.parse(raw))
    assert parsed.pop("trailing") == b""
    if kind == "Crtk":
        for task in parsed["tasks"]:
            assert task.pop("ptr_count") == len(task["ptrs"])
    assert parsed == value


@pytest.mark.parametrize("kind", sorted(clhe.PAYLOADS))
@FAST
@given(data=st.data())
def test_payload_bytes_round_trip(kind: str, data: st.DataObject) -> None:
    """A well-formed payload followed by arbitrary trailing bytes parses and rebuilds byte for
    byte (the docstring's promise: trailing bytes are kept)."""
    raw = payload_by_hand(kind, data.draw(PAYLOAD_VALUES[kind]))
    raw += data.draw(st.binary(max_size=40))
    if kind == "Cmbx":  # whole 24-byte records after the header have zero padding
        body = bytearray(raw[28:])
        for i in range(0, len(body) - 23, 24):
            body[i + 20 : i + 24] = bytes(4)
        raw = raw[:28] + bytes(body)
    declaration = clhe.PAYLOADS[kind]
    parsed = declaration.parse(raw)
    assert declaration.build(parsed) == raw


@st.composite
def crashlog_entries(draw: st.DrawFn) -> list[tuple[str, bytes | dict[str, Any]]]:
    entries: list[tuple[str, bytes | dict[str, Any]]] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            kind = draw(st.sampled_from(sorted(PAYLOAD_VALUES)))
            entries.append((kind, draw(PAYLOAD_VALUES[kind])))
        else:
            kind = draw(KIND_BYTES).decode("latin-1")
            assume(kind != "CLHE" and kind not in clhe.PAYLOADS)
            entries.append((kind, draw(st.binary(max_size=40))))
    return entries


@FAST
@given(entries=crashlog_entries(), version=U32, flags=U32)
def test_crashlog_round_trip_random_entries(
    entries: list[tuple[str, bytes | dict[str, Any]]], version: int, flags: int
) -> None:
    data = clhe.build_crashlog(entries, version=version, flags=flags)
    log = clhe.parse_crashlog(data)
    assert (log.format, log.closed, log.warnings) == ("clhe", True, ())
    assert (log.version, log.total_size, log.flags) == (version, len(data), flags)
    assert [e.kind for e in log.entries] == [kind for kind, _ in entries]
    offset = clhe.CLHE_HEADER_SIZE
    for entry, (kind, payload) in zip(log.entries, entries, strict=True):
        assert entry.offset == offset
        if isinstance(payload, dict):
            assert entry.payload == payload_by_hand(kind, payload)
            assert entry.fields is not None
        else:
            assert entry.payload == payload
            assert entry.fields is None
        offset += clhe.ENTRY_HEADER_SIZE + len(entry.payload)
    # The decoded entries rebuild the same log.
    rebuilt = [(e.kind, e.payload) for e in log.entries]
    assert clhe.build_crashlog(rebuilt, version=version, flags=flags) == data


def test_build_crashlog_refuses_the_closing_kind() -> None:
    """An entry of the closing kind would end the log for every reader: refused."""
    entries: list[tuple[str, bytes | dict[str, Any]]] = [
        ("CLHE", b"\x01\x02\x03\x04"),
        ("Ctim", {"time": 5}),
    ]
    with pytest.raises(ValueError, match="closes the log"):
        clhe.build_crashlog(entries)


# ---- UAT ------------------------------------------------------------------------------------


@FAST
@given(st.data())
def test_uat_entry_value_round_trip(data: st.DataObject) -> None:
    """Field values build the entry whose bits sit where FIELDS says, and parse back."""
    value: dict[str, Any] = {}
    expected = 0
    for sub in uat.UatEntryBits.subcons:
        shift, width = uat.FIELDS[sub.name]
        if width == 1:
            bit = data.draw(st.booleans())
            value[sub.name] = bit
            expected |= int(bit) << shift
        else:
            field = data.draw(st.integers(0, (1 << width) - 1))
            value[sub.name] = field
            expected |= field << shift
    raw = uat.UatEntry.build(value)
    assert int.from_bytes(raw, "little") == expected
    assert plain(uat.UatEntry.parse(raw)) == value


def _letters(perm: str) -> set[str]:
    return set(perm) - {"-"}


@FAST
@given(U64)
def test_firmware_view_is_the_union_of_el1_and_gl1(pte: int) -> None:
    """Reference sheet: the bit-55-clear firmware view is the union of m1n1's EL1 and GL1
    views; with bit 55 set the split does not apply and the GPU view exists."""
    clear = pte & ~uat.BIT_GPU
    el1, gl1 = uat.firmware_el1_gl1(clear)
    assert _letters(uat.firmware_view(clear)) == _letters(el1) | _letters(gl1)
    assert uat.gpu_view(clear) == "--"
    assert uat.firmware_el1_gl1(pte | uat.BIT_GPU) == ("--", "--")


PERMISSION_BITS = uat.BIT_GPU | uat.BIT_UXN | uat.BIT_PXN | (3 << 6)


@FAST
@given(pte=U64, other=U64)
def test_views_depend_only_on_the_permission_bits(pte: int, other: int) -> None:
    mixed = (pte & PERMISSION_BITS) | (other & ~PERMISSION_BITS)
    for view in (uat.firmware_view, uat.gpu_view, uat.firmware_el1_gl1):
        assert view(mixed) == view(pte)
    ap, col = uat.perm_index(pte)
    assert (ap, col) == ((pte >> 6) & 3, ((pte >> 54) & 1) << 1 | ((pte >> 53) & 1))


PAGE_PAS = st.integers(0, (1 << (uat.OAS_T600X - uat.PAGE_SHIFT)) - 1).map(lambda pfn: pfn * PAGE)


@FAST
@given(name=st.sampled_from(sorted(uat.PROTS)), pa=PAGE_PAS)
def test_named_protections_decode_to_their_fields(name: str, pa: int) -> None:
    prot = uat.PROTS[name]
    pte = prot.bits | pa | uat.PTE_PAGE
    parsed = uat.UatEntry.parse(pte.to_bytes(8, "little"))
    assert (parsed.ap, parsed.uxn, parsed.pxn, parsed.memattr) == (
        prot.ap,
        bool(prot.uxn),
        bool(prot.pxn),
        prot.memattr,
    )
    assert (parsed.gpu_access, parsed.af, parsed.type) == (True, True, uat.PTE_PAGE)
    assert parsed.oa_pfn << uat.PAGE_SHIFT == pa
    recorded = pte & uat.RECORDED_PTE_BITS_DRIVER | uat.BIT_AF  # AF: always 1 in p_flags
    assert uat.unpack_p_flags(uat.pack_p_flags(pte), pa) == recorded


@pytest.mark.parametrize("memattr", range(8))
def test_memattr_sets_partition_the_names(memattr: int) -> None:
    device = uat.MEMATTR_NAMES[memattr] == "device"
    assert (memattr in uat.DEVICE_MEMATTRS) == device
    assert not (memattr in uat.DUMPABLE_MEMATTRS and device)
    assert uat.memattr_description(memattr).startswith(uat.MEMATTR_NAMES[memattr])


@FAST
@given(st.sets(st.sampled_from("RWX")))
def test_elf_rwx_names_each_letter(letters: set[str]) -> None:
    perm = "".join(sorted(letters)) or "--"
    bits = uat.elf_rwx(perm)
    assert bits == sum({"R": elf.PF_R, "W": elf.PF_W, "X": elf.PF_X}[c] for c in letters)


@FAST
@given(st.lists(U32, max_size=64))
def test_unpack_p_flags_bulk_agrees_with_scalar(flags: list[int]) -> None:
    bulk = unpack_p_flags_bulk(np.array(flags, dtype=np.uint32))
    assert bulk.tolist() == [uat.unpack_p_flags(f, 0) for f in flags]


@FAST
@given(st.lists(U64, min_size=1, max_size=64))
def test_pack_p_flags_bulk_agrees_with_scalar(ptes: list[int]) -> None:
    bulk = _pack_flags_bulk(np.array(ptes, dtype=np.uint64))
    assert bulk.tolist() == [uat.pack_p_flags(p) for p in ptes]


@FAST
@given(st.lists(st.tuples(U64, st.booleans()), max_size=64))
def test_leaf_kinds_bulk_agrees_with_leaf_kind(rows: list[tuple[int, bool]]) -> None:
    ptes = np.array([p for p, _ in rows], dtype=np.uint64)
    dumped = np.array([d for _, d in rows], dtype=bool)
    codes = leaf_kinds(ptes, dumped)
    assert [KIND_CODES[c] for c in codes.tolist()] == [leaf_kind(p, d) for p, d in rows]


# ---- geometry -------------------------------------------------------------------------------


@st.composite
def geometries(draw: st.DrawFn) -> Geometry:
    """Any walkable geometry (page 512 B .. 64 KiB, at most four levels)."""
    page_shift = draw(st.integers(9, 16))
    max_ias = min(52, page_shift + 4 * (page_shift - 3))
    ias = draw(st.integers(page_shift + 1, max_ias))
    oas = draw(st.integers(page_shift + 1, 56))
    return Geometry(page_shift=page_shift, ias=ias, oas=oas, va_base=draw(U64))


@FAST
@given(geometries())
def test_geometry_levels_partition_the_input_address(g: Geometry) -> None:
    levels = g.levels
    assert 1 <= g.level_count == len(levels) <= 4
    assert levels[-1].level == 3 and levels[0].level == g.start_level >= 0
    assert levels[-1].va_shift == g.page_shift
    for upper, lower in itertools.pairwise(levels):
        assert lower.level == upper.level + 1
        assert lower.va_shift + lower.index_bits == upper.va_shift
        assert lower.index_bits == g.bits_per_level
    assert levels[0].va_shift + levels[0].index_bits == g.ias
    assert 1 <= levels[0].index_bits <= g.bits_per_level
    for lg in levels:
        assert g.level(lg.level) is lg
        assert lg.entries <= g.entries_per_table
        assert lg.entry_span_bytes == 1 << lg.va_shift
    assert g.oa_mask == ((1 << g.oas) - 1) - (g.page_size_bytes - 1)


@FAST
@given(g=geometries(), va=U64)
def test_index_of_and_rebuild_va_round_trip(g: Geometry, va: int) -> None:
    rebuilt_bits = va & (g.page_size_bytes - 1)
    for lg in g.levels:
        rebuilt_bits |= lg.index_of(va) << lg.va_shift
    assert rebuilt_bits == va & g.ias_mask
    full = g.rebuild_va(va)
    assert g.in_space(full)
    assert full & g.ias_mask == va & g.ias_mask
    assert (full == va) == g.in_space(va)


@FAST
@given(g=geometries(), entry_format=st.sampled_from(sorted(ext.ENTRY_FORMAT_NAMES)))
def test_geometry_record_of_a_geometry_round_trips(g: Geometry, entry_format: int) -> None:
    """The writer's record of a geometry parses back to the same geometry (model side)."""
    blob = build_extension_blob(WriterExtension(entry_format=entry_format, geometry=g), [])
    model = ModelExtension(SimpleNamespace(buffer=memoryview(blob), warnings=[]), 0, len(blob))
    record = model.geometry_record
    again = Geometry(record.page_shift, record.ias, record.oas, record.va_base)
    assert again == g
    assert (record.level_count, record.start_level) == (g.level_count, g.start_level)
    assert record.entry_format == entry_format
    (entry,) = [e for e in ext.ExtHeader.parse(blob).directory if e.kind == ext.KIND_GEOMETRY]
    assert GeometryRecord.build(record) == blob[entry.offset : entry.offset + entry.size_bytes]


# ---- extension ------------------------------------------------------------------------------

NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)


@FAST
@given(st.lists(NAMES, max_size=8))
def test_strings_blob_round_trip(names: list[str]) -> None:
    blob, offsets = b"\0", []
    for name in names:
        offsets.append(len(blob))
        blob += name.encode() + b"\0"
    assert [ext.string_at(blob, off) for off in offsets] == names
    assert ext.string_at(blob, 0) == ""


@st.composite
def writer_extensions(draw: st.DrawFn) -> tuple[WriterExtension, list[int]]:
    spaces = draw(
        st.lists(
            st.builds(SpaceInfo, U32, U64, U64, U64, U64, U64, st.sampled_from([0, 1])),
            max_size=3,
        )
    )
    tables = draw(st.lists(st.builds(TableInfo, U8, U64, U64, U64, U32, U8), max_size=4))
    regions = draw(
        st.lists(
            st.builds(RegionInfo, st.integers(1, 3), NAMES, U64, U64, st.integers(0, 3)), max_size=4
        )
    )
    holes, va = [], draw(st.integers(0, 1 << 63))
    for _ in range(draw(st.integers(0, 4))):  # sorted by VA and disjoint, as the format says
        va += draw(st.integers(0, 1 << 40))
        size = draw(st.integers(1, 1 << 40))
        region = draw(st.integers(-(1 << 31), (1 << 31) - 1))
        holes.append(HoleInfo(va, size, draw(U8), draw(U8), region))
        va += size
    extension = WriterExtension(
        entry_format=ext.ENTRY_FORMAT_UAT,
        geometry=draw(geometries()),
        spaces=spaces,
        tables=tables,
        regions=regions,
        holes=holes,
        scenario_name=draw(NAMES),
        seed=draw(U64),
        knobs=draw(st.dictionaries(NAMES, st.integers(-100, 1 << 40), max_size=3)),
        generator=draw(NAMES),
    )
    offsets = draw(st.lists(U64, min_size=len(tables), max_size=len(tables)))
    return extension, offsets


@FAST
@given(writer_extensions())
def test_extension_blob_round_trip(drawn: tuple[WriterExtension, list[int]]) -> None:
    """Every record array of the directory, built by the writer, read back by the model."""
    extension, offsets = drawn
    blob = build_extension_blob(extension, offsets)
    header = ext.ExtHeader.parse(blob)
    assert (header.version, header.header_size_bytes) == (ext.EXT_VERSION, 16)
    for entry in header.directory:
        assert entry.offset % 8 == 0 and entry.offset + entry.size_bytes <= len(blob)
    model = ModelExtension(SimpleNamespace(buffer=memoryview(blob), warnings=[]), 0, len(blob))
    assert [vars(s) for s in model.spaces] == [
        {
            "context": s.context,
            "ttb_pa": s.ttb_pa,
            "ttb_owned": bool(s.flags & ext.SPACE_TTB_OWNED),
            "va_start": s.va_start,
            "va_size_bytes": s.va_size_bytes,
            "managed_va_start": s.managed_va_start,
            "managed_va_size_bytes": s.managed_va_size_bytes,
        }
        for s in extension.spaces
    ]
    table_fields = ("level", "flags", "context", "pa", "va_start", "va_size_bytes", "file_offset")
    assert [tuple(int(r[name]) for name in table_fields) for r in model.tables] == [
        (t.level, t.flags, t.context, t.pa, t.va_start, t.va_size_bytes, off)
        for t, off in zip(extension.tables, offsets, strict=True)
    ]
    assert [
        (r.kind, r.name, r.base, r.size_bytes, r.no_map, r.reusable) for r in model.regions
    ] == [
        (
            ext.REGION_KIND_NAMES[r.kind],
            r.name,
            r.base,
            r.size_bytes,
            bool(r.flags & ext.REGION_NO_MAP),
            bool(r.flags & ext.REGION_REUSABLE),
        )
        for r in extension.regions
    ]
    assert [
        (
            int(h["va"]),
            int(h["size_bytes"]),
            int(h["reason"]),
            int(h["detail"]),
            int(h["region_index"]),
        )
        for h in model.holes
    ] == [(h.va, h.size_bytes, h.reason, h.detail, h.region_index) for h in extension.holes]
    scenario = model.scenario
    assert (scenario.name, scenario.seed, scenario.generator) == (
        extension.scenario_name,
        extension.seed,
        extension.generator,
    )
    assert json.loads(scenario.knobs_json) == extension.knobs


# ---- npstruct -------------------------------------------------------------------------------

INTEGER_FIELDS = {
    "u1": construct.Int8ul,
    "u1b": construct.Byte,  # ">B": one byte has no byte order
    "u2": construct.Int16ul,
    "u4": construct.Int32ul,
    "u8": construct.Int64ul,
    "i1": construct.Int8sl,
    "i2": construct.Int16sl,
    "i4": construct.Int32sl,
    "i8": construct.Int64sl,
}


@st.composite
def flat_structs(draw: st.DrawFn) -> tuple[construct.Struct, list[tuple[str, str]]]:
    """A random flat Struct of integers and padding, and its (name, kind) fields."""
    subcons, fields = [], []
    for i in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 4)) == 0:
            subcons.append(construct.Padding(draw(st.integers(1, 7))))
        else:
            kind = draw(st.sampled_from(sorted(INTEGER_FIELDS)))
            subcons.append(f"f{i}" / INTEGER_FIELDS[kind])
            fields.append((f"f{i}", kind))
    assume(fields)
    return construct.Struct(*subcons), fields


def _field_values(kind: str) -> st.SearchStrategy[int]:
    size = int(kind[1])
    if kind.startswith("i"):
        return st.integers(-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1)
    return st.integers(0, (1 << (8 * size)) - 1)


@FAST
@given(data=st.data(), drawn=flat_structs())
def test_dtype_from_random_flat_structs(
    data: st.DataObject, drawn: tuple[construct.Struct, list[tuple[str, str]]]
) -> None:
    declaration, fields = drawn
    dtype = dtype_from_struct(declaration)
    assert dtype.itemsize == declaration.sizeof()
    assert list(dtype.names) == [name for name, _ in fields]
    rows = data.draw(
        st.lists(
            st.fixed_dictionaries({name: _field_values(kind) for name, kind in fields}),
            min_size=1,
            max_size=4,
        )
    )
    raw = b"".join(declaration.build(row) for row in rows)
    array = np.frombuffer(raw, dtype=dtype)
    assert [{name: int(r[name]) for name, _ in fields} for r in array] == rows
    built = np.zeros(len(rows), dtype=dtype)
    for name, _ in fields:
        built[name] = [row[name] for row in rows]
    assert built.tobytes() == raw


@pytest.mark.parametrize(
    "declaration",
    [
        construct.Struct("a" / construct.Padded(8, construct.Int32ul)),
        construct.Struct(construct.Int32ul, "b" / construct.Int8ul),
        construct.Struct(construct.Struct("x" / construct.Int8ul)),
        construct.Struct("a" / construct.Int8ul, construct.Padding(3, b"\xff")),
        construct.Struct("a" / construct.Int16ub),
    ],
    ids=["padded-value", "unnamed-int", "unnamed-struct", "nonzero-padding", "big-endian"],
)
def test_dtype_from_struct_refuses_what_it_would_drop(declaration: construct.Struct) -> None:
    """Fields whose value (or padding bytes) numpy could not keep are refused, never skipped."""
    with pytest.raises(TypeError):
        dtype_from_struct(declaration)


# ---- the writer's bulk program headers ------------------------------------------------------


@FAST
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 4), PAGE_PAS, U32, st.booleans()),
        max_size=8,
    ),
    data_start=st.integers(0, 1 << 20),
)
def test_writer_program_headers_parse_as_declared(
    rows: list[tuple[int, int, int, int, bool]], data_start: int
) -> None:
    """sim.writer.build_phdrs (numpy) writes what Elf64_Phdr parses, field for field."""
    segments, va = [], factory.BASE_VA
    for gap, pages, pa, flags, data in rows:
        va += gap * PAGE
        segments.append((va, pa, pages * PAGE, flags, data))
        va += pages * PAGE
    table = SegmentTable.from_rows(segments)
    raw, data_end = build_phdrs(table, data_start, 0x1234, 0x56)
    parsed = construct.Array(len(segments) + 1, elf.Elf64_Phdr).parse(raw)
    assert (parsed[0].p_type, parsed[0].p_offset, parsed[0].p_filesz) == (elf.PT_NOTE, 0x1234, 0x56)
    offset = data_start
    for ph, (va, pa, size, flags, data) in zip(parsed[1:], segments, strict=True):
        assert (ph.p_type, ph.p_vaddr, ph.p_paddr, ph.p_memsz, ph.p_flags) == (
            elf.PT_LOAD,
            va,
            pa,
            size,
            flags,
        )
        # crashdump.rs: a PT_LOAD without data has p_offset exactly the data start.
        expected = offset if data else data_start
        assert (ph.p_offset, ph.p_filesz, ph.p_align) == (expected, size if data else 0, PAGE)
        offset += ph.p_filesz
    assert data_end == offset


# =============================================================================================
# Part 2: the model over random valid dumps
# =============================================================================================


class PlannedPage(NamedTuple):
    """What the dump was built to say about one page (the fields of ``PageRecord``)."""

    va: int
    pa: int  # where the walker goes: pa_raw cut to the 42-bit OAS
    pa_raw: int  # p_paddr + offset: what the entry says
    pte: int  # the entry the model must report (exact, or the recorded bits of a driver dump)
    pte_exact: bool
    flags: int
    dumped: bool
    reason: str | None
    reason_detail: str | None


@pytest.fixture(scope="module")
def dump_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


_counter = itertools.count()


def fresh_path(directory: Path) -> Path:
    return directory / f"d{next(_counter)}.dump"


def pyelftools_view(path: Path) -> tuple[list[tuple[int, ...]], dict[int, bytes], list[tuple]]:
    """PT_LOADs (vaddr, paddr, filesz, memsz, flags) in VA order, their data by VA, and the
    notes (name, type, descriptor) as pyelftools reads them."""
    with path.open("rb") as f:
        elf_file = ELFFile(f)
        loads, data, notes = [], {}, []
        for seg in elf_file.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                loads.append(
                    (
                        seg["p_vaddr"],
                        seg["p_paddr"],
                        seg["p_filesz"],
                        seg["p_memsz"],
                        seg["p_flags"],
                    )
                )
                data[seg["p_vaddr"]] = seg.data()
            elif seg["p_type"] == "PT_NOTE":
                for note in seg.iter_notes():
                    f.seek(note["n_offset"] + 8)
                    (raw_type,) = struct.unpack("<I", f.read(4))  # pyelftools names the type
                    notes.append((note["n_name"] or "", raw_type, bytes(note["n_descdata"])))
    return sorted(loads), data, notes


def export_pages(dump: Any, fmt: str) -> tuple[list[dict], dict]:
    """The page records and the counts of an export to a stream: JSONL with every kind (the
    end line's counts checked against the records), or JSON with pages only."""
    out = io.StringIO()
    dump.export(out, fmt=fmt, include=None if fmt == "jsonl" else "pages")
    if fmt == "json":
        document = json.loads(out.getvalue())
        return document["pages"], document["counts"]
    # JSONL lines end at "\n" only (str.splitlines would also split at U+0085 in a name).
    text = out.getvalue()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text[:-1].split("\n")]
    assert lines[0]["record"] == "header" and lines[-1]["record"] == "end"
    for kind in ("info", "range", "page", "region", "anomaly", "crashlog", "table"):
        assert lines[-1]["counts"][kind] == sum(1 for r in lines if r["record"] == kind)
    return [r for r in lines if r["record"] == "page"], lines[-1]["counts"]


def check_model_invariants(path: Path, plan: list[PlannedPage] | None = None) -> None:
    """Everything the model says about ``path`` against pyelftools, the plan it was built
    from (when known) and the model's other answers."""
    loads, load_data, notes = pyelftools_view(path)
    with dumpview.open_dump(path) as dump:
        page_size = dump.page_size_bytes
        geometry = dump.geometry
        # The same PT_LOADs and notes as pyelftools.
        ours = list(
            zip(
                dump.seg_va.tolist(),
                dump.seg_pa_raw.tolist(),
                dump.seg_filesz.tolist(),
                dump.seg_memsz.tolist(),
                dump.seg_flags.tolist(),
                strict=True,
            )
        )
        assert ours == loads
        assert [(n.name, n.note_type, bytes(n.desc)) for n in dump.notes] == notes

        pages = list(dump.pages())
        if plan is not None:
            assert [tuple(p)[:9] for p in pages] == [tuple(p)[:9] for p in plan]
        total, dumped_count = dump.page_totals
        assert (total, dumped_count) == (len(pages), sum(p.dumped for p in pages))
        assert sum(memsz // page_size for _, _, _, memsz, _ in loads) == len(pages)

        # Bulk page columns and hole reasons agree with the scalar pages.
        bulk = factory.bulk_page_tuples(dump, 7)
        assert bulk == [tuple(p)[:9] for p in pages]

        # Reads: dumped pages give pyelftools' bytes, others raise NotDumpedError.
        starts = [va for va, *_ in loads]  # sorted
        stray_oa = set()
        by_va_dumped = {p.va: p.dumped for p in pages}
        for page in pages:
            seg_va = starts[np.searchsorted(starts, page.va, side="right") - 1]
            offset = page.va - seg_va
            if page.dumped:
                assert (
                    bytes(dump.read_va(page.va, page_size))
                    == (load_data[seg_va][offset : offset + page_size])
                )
            else:
                with pytest.raises(NotDumpedError) as info:
                    dump.read_va(page.va, page_size)
                assert (info.value.va, info.value.reason, info.value.detail) == (
                    page.va,
                    page.reason,
                    page.reason_detail,
                )
            # Every page is an alias of its PA; a dumped one reads the same bytes by PA.
            assert page.va in dump.vas_for_pa(page.pa)
            if page.dumped:
                by_pa = bytes(dump.read_pa(page.pa, page_size))
                aliases = [
                    bytes(dump.read_va(va, page_size))
                    for va in dump.vas_for_pa(page.pa)
                    if by_va_dumped.get(va)
                ]
                assert by_pa in aliases
            # translate agrees with pages (PA, entry, page record).
            walk = dump.translate(page.va + 0x123)
            assert walk.page == page == dump.page(page.va + 0x123)
            assert walk.leaf is not None and walk.leaf.value == page.pte
            # One PA everywhere: the walker's (cut to the OAS), and what the entry says.
            assert (walk.pa, walk.pa_raw) == (page.pa + 0x123, page.pa_raw + 0x123)
            assert page.pa == page.pa_raw & ((1 << geometry.oas) - 1)
            if page.pa_raw >> geometry.oas:  # p_paddr keeps bits 51:14: oa-beyond-oas
                stray_oa.add(page.va)
        if stray_oa:
            runs = [
                (a.va, a.va_end)
                for a in dump.check(["oa-beyond-oas"]).anomalies
                if a.va is not None
            ]
            for va in stray_oa:
                assert any(start <= va < end for start, end in runs), hex(va)

        # Ranges cover exactly the mapped pages, each run uniform and continuing.
        table = dump.ranges()
        covered = []
        by_va = {p.va: p for p in pages}
        for i in range(len(table)):
            row = table.row(i)
            assert row.va_start < row.va_end
            assert not covered or covered[-1] < row.va_start
            first = by_va[row.va_start]
            # Only the first page's reason: see test_ranges_split_where_the_hole_reason_changes.
            assert (row.reason, row.reason_detail) == (first.reason, first.reason_detail)
            for va in range(row.va_start, row.va_end, page_size):
                page = by_va[va]
                assert (page.dumped, page.flags) == (row.dumped, row.flags)
                assert page.pa == row.pa_start + (va - row.va_start)
                covered.append(va)
        assert covered == [p.va for p in pages]

        # Export: page records are the pages, in both formats.
        for fmt in ("jsonl", "json"):
            records, counts = export_pages(dump, fmt)
            assert counts["page"] == len(pages)
            assert [
                (
                    int(r["va"], 16),
                    int(r["pa"], 16),
                    int(r["pa_raw"] or r["pa"], 16),
                    int(r["pte"], 16),
                    r["pte_exact"],
                    int(r["flags"], 16),
                    r["dumped"],
                    r["reason"],
                    r["reason_detail"],
                )
                for r in records
            ] == [tuple(p)[:9] for p in pages]
            assert all(r["pa_raw"] is None or r["pa_raw"] != r["pa"] for r in records)
            if dump.tables_index is not None and fmt == "jsonl":
                for record, page in zip(records, pages, strict=True):
                    steps = dump.translate(page.va).steps
                    assert record["table_path"] == [
                        {"level": s.level, "table": f"{s.table_pa:#x}", "index": s.index}
                        for s in steps
                    ]

        # diff of a dump with itself, and check, are stable.
        same = dumpview.diff(dump, dump)
        assert same.identical
        assert same.pages_compared == dumped_count
        first_check = dump.check()
        again = dump.check()
        assert [a.to_dict() for a in first_check.anomalies] == [
            a.to_dict() for a in again.anomalies
        ]
        assert first_check.skipped == again.skipped
    with dumpview.open_dump(path) as reopened:
        assert [a.to_dict() for a in reopened.check().anomalies] == [
            a.to_dict() for a in first_check.anomalies
        ]


# ---- dumps from the simulator's scenarios ---------------------------------------------------


@st.composite
def scenario_args(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(SCENARIOS)))
    knobs: dict[str, Any] = {}
    if name == "user-contexts":
        knobs = {"contexts": draw(st.integers(1, 4))}
    elif name == "large":
        knobs = {
            "mapped_mib": draw(st.integers(1, 2)),
            "scatter": draw(st.booleans()),
            "dumped_percent": draw(st.integers(0, 100)),
        }
    return {"scenario": name, "seed": draw(st.integers(0, (1 << 32) - 1)), "knobs": knobs}


@SCENARIO_DUMPS
@given(args=scenario_args())
def test_model_invariants_over_scenarios(dump_dir: Path, args: dict[str, Any]) -> None:
    """Both layouts of one scenario keep the invariants and say the same about every page:
    the extension adds exact entries and hole details, never different pages or reasons."""
    with_ext, driver = fresh_path(dump_dir), fresh_path(dump_dir)
    generate_file(with_ext, **args)
    generate_file(driver, **args, driver_layout=True)
    try:
        check_model_invariants(with_ext)
        check_model_invariants(driver)
        with dumpview.open_dump(with_ext) as a, dumpview.open_dump(driver) as b:
            assert a.extension is not None and b.extension is None
            pages_a, pages_b = list(a.pages()), list(b.pages())
            assert [(p.va, p.pa, p.flags, p.dumped, p.reason) for p in pages_a] == [
                (p.va, p.pa, p.flags, p.dumped, p.reason) for p in pages_b
            ]
            for page_a, page_b in zip(pages_a, pages_b, strict=True):
                # Every dumped leaf is in the carried tables; the driver layout keeps its
                # recorded bits, p_paddr its output address bits 51:14.
                assert page_a.pte_exact and not page_b.pte_exact
                assert page_b.pte == page_a.pte & uat.RECORDED_PTE_BITS_DRIVER | uat.BIT_AF
                assert page_a.pa_raw == page_a.pte & uat.OA_MASK_FULL
            assert [(n.name, n.note_type, bytes(n.desc)) for n in a.notes] == [
                (n.name, n.note_type, bytes(n.desc)) for n in b.notes
            ]
    finally:
        with_ext.unlink()
        driver.unlink()


# ---- dumps from tests/factory.py: random PT_LOADs, protections, holes, notes ----------------

SPACE_START = 0xFFFF_FF80_0000_0000  # the UAT upper half (39-bit IAS)
SPACE_PAGES = 1 << (uat.UAT_IAS - uat.PAGE_SHIFT)
LOW_BITS = (3 << 8) | uat.BIT_NG | (1 << 5)  # SH, nG, bit 5: kept only by carried tables


@st.composite
def leaf_attributes(draw: st.DrawFn) -> int:
    """The non-address bits of a valid leaf: a named protection or any AP/UXN/PXN/memattr,
    bit 55 and the upper bits; type 3 and AF always; SH/nG/bit 5 sometimes."""
    if draw(st.booleans()):
        bits = uat.PROTS[draw(st.sampled_from(sorted(uat.PROTS)))].bits
    else:
        bits = (
            draw(st.integers(0, 3)) << 6
            | draw(st.integers(0, 7)) << 2
            | draw(st.integers(0, 7)) << 53  # PXN, UXN, bit 55
            | draw(st.integers(0, 0xFF)) << 56
            | draw(st.integers(0, 1)) << 52
            | uat.BIT_AF
        )
    return bits | uat.PTE_PAGE | (draw(st.integers(0, LOW_BITS)) & LOW_BITS)


@dataclass
class FactoryPlan:
    segments: list[tuple[int, int, int, int, bool]]  # va, pa, pages, leaf attributes, data
    with_tables: bool
    regions: list[RegionInfo]
    hole_details: dict[int, tuple[int, int]]  # VA -> (detail, region index) of undumped pages
    notes: list[tuple[str, int, bytes]]


NOTE_NAMES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10
).filter(lambda n: n not in ("AGX", "RTKIT", "GNU", "CORE", "LINUX"))


@st.composite
def factory_plans(draw: st.DrawFn) -> FactoryPlan:
    segments: list[tuple[int, int, int, int, bool]] = []
    index = draw(st.integers(0, SPACE_PAGES - 64))
    for _ in range(draw(st.integers(0, 8))):
        pages = draw(st.integers(1, 4))
        if index + pages >= SPACE_PAGES:  # never the top page of the space: see the xfail
            break
        if segments and draw(st.booleans()):  # PA continues: ranges may merge
            _, prev_pa, prev_pages, _, _ = segments[-1]
            pa = prev_pa + prev_pages * PAGE
        else:
            pa = draw(PAGE_PAS)
        if pa + pages * PAGE > 1 << uat.OAS_T600X:
            pa = 0
        segments.append(
            (SPACE_START + index * PAGE, pa, pages, draw(leaf_attributes()), draw(st.booleans()))
        )
        index += pages + draw(st.one_of(st.integers(0, 2), st.integers(0, 1 << 20)))
    regions = draw(
        st.lists(
            st.builds(
                RegionInfo,
                st.integers(1, 3),
                NAMES,
                st.integers(0, 1 << 40).map(lambda b: b * PAGE),
                st.integers(1, 64).map(lambda n: n * PAGE),
                st.sampled_from([0, ext.REGION_NO_MAP, ext.REGION_REUSABLE]),
            ),
            max_size=3,
        )
    )
    hole_details = {}
    if draw(st.booleans()):  # hole records, else reasons come from memattr
        for va, _pa, pages, _attrs, data in segments:
            if not data:
                for k in range(pages):
                    hole_details[va + k * PAGE] = (
                        draw(st.sampled_from(sorted(ext.DETAIL_NAMES))),
                        draw(st.integers(-1, len(regions))),
                    )
    notes = draw(
        st.lists(st.tuples(NOTE_NAMES, st.integers(1, 2), st.binary(max_size=24)), max_size=2)
    )
    return FactoryPlan(segments, draw(st.booleans()), regions, hole_details, notes)


def hole_records(plan: FactoryPlan, attrs_of: dict[int, int]) -> list[HoleInfo]:
    """The hole records of the plan: runs of pages with the same reason, detail and region."""
    out: list[HoleInfo] = []
    for va in sorted(plan.hole_details):
        detail, region = plan.hole_details[va]
        memattr = (attrs_of[va] >> 2) & 7
        reason = (
            ext.REASON_BORROW_REFUSED
            if memattr in uat.DUMPABLE_MEMATTRS
            else ext.REASON_DEVICE_MEMORY
        )
        last = out[-1] if out else None
        if (
            last is not None
            and last.va + last.size_bytes == va
            and (last.reason, last.detail, last.region_index) == (reason, detail, region)
        ):
            last.size_bytes += PAGE
        else:
            out.append(HoleInfo(va, PAGE, reason, detail, region))
    return out


def expected_reason(plan: FactoryPlan, va: int, attrs: int) -> tuple[str, str | None]:
    """Why a page has no data, from the plan: its hole record, else its memattr."""
    memattr = (attrs >> 2) & 7
    if memattr not in uat.DUMPABLE_MEMATTRS:
        reason, default = "device-memory", f"memattr {memattr} ({uat.MEMATTR_NAMES[memattr]})"
    else:
        reason, default = "borrow-refused", None
    if va not in plan.hole_details or not plan.with_tables:
        return reason, default
    detail, region = plan.hole_details[va]
    text = ext.DETAIL_NAMES[detail]
    if 0 <= region < len(plan.regions):
        name = plan.regions[region].name
        text = f"{text}: {name}" if text else name
    return reason, text


def build_factory_dump(path: Path, plan: FactoryPlan) -> list[PlannedPage]:
    """Write the plan's dump through tests/factory.py; returns the pages it must show."""
    rows, leaves, attrs_of = [], {}, {}
    for va, pa, pages, attrs, data in plan.segments:
        rows.append((va, pa, pages * PAGE, uat.pack_p_flags(attrs | pa), data))
        for k in range(pages):
            leaves[va + k * PAGE] = attrs | (pa + k * PAGE)
            attrs_of[va + k * PAGE] = attrs
    notes = [factory.agx_note(), factory.crashlog_note(), *plan.notes]
    extension, read_table = None, None
    if plan.with_tables:
        ttb_pa = 0x7_0000_0000
        infos, contents = factory.build_tables(leaves, ttb_pa, ttb_pa + PAGE)
        g = uat.uat_geometry()
        extension = factory.uat_extension(
            spaces=[SpaceInfo(0, ttb_pa, SPACE_START, 1 << g.ias, factory.BASE_VA, 1 << 36)],
            tables=infos,
            regions=plan.regions,
            holes=hole_records(plan, attrs_of),
            scenario_name="properties",
            seed=1,
        )
        read_table = contents.__getitem__
    factory.build_dump(path, rows, notes=notes, extension=extension, read_table=read_table)
    planned = []
    for va, pa, pages, attrs, data in plan.segments:
        flags = uat.pack_p_flags(attrs | pa)
        for k in range(pages):
            page_va, page_pa = va + k * PAGE, pa + k * PAGE
            exact = plan.with_tables
            # A driver dump records AP, memattr, bits 63:52 and 51:14; AF always reads 1.
            recorded = leaves[page_va] & uat.RECORDED_PTE_BITS_DRIVER | uat.BIT_AF
            pte = leaves[page_va] if exact else recorded
            reason, detail = (None, None) if data else expected_reason(plan, page_va, attrs)
            used = page_pa & ((1 << uat.OAS_T600X) - 1)
            planned.append(
                PlannedPage(page_va, used, page_pa, pte, exact, flags, data, reason, detail)
            )
    return planned


@FACTORY_DUMPS
@given(plan=factory_plans(), probe=U64)
def test_model_invariants_over_factory_dumps(dump_dir: Path, plan: FactoryPlan, probe: int) -> None:
    path = fresh_path(dump_dir)
    planned = build_factory_dump(path, plan)
    try:
        check_model_invariants(path, planned)
        # A VA no PT_LOAD maps: no page, no read, and a walk that stops (never a PA).
        with dumpview.open_dump(path) as dump:
            if dump.segment_at(probe) is None:
                assert dump.page(probe) is None
                with pytest.raises(AddressError):
                    dump.read_va(probe, 1)
                walk = dump.translate(probe)
                assert walk.pa is None and walk.stopped_reason
    finally:
        path.unlink()


@pytest.mark.parametrize("with_tables", [False, True])
def test_pt_load_at_the_top_of_the_address_space(dump_dir: Path, with_tables: bool) -> None:
    """The driver never dumps the last page (its walk ends at !UAT_PGMSK, exclusive), but
    dumpview 0.1.0 walked it and another writer may: a PT_LOAD ending exactly at 2**64 does not
    wrap, and every query handles it."""
    top = (1 << 64) - PAGE
    plan = FactoryPlan(
        [(top - PAGE, 0x8_0000_0000, 2, uat.PROTS["FW_PRIV_RW"].bits | 3, True)],
        with_tables,
        [],
        {},
        [],
    )
    path = fresh_path(dump_dir)
    check_model_invariants(path, build_factory_dump(path, plan))
    with dumpview.open_dump(path) as dump:
        (row,) = [dump.ranges().row(i) for i in range(len(dump.ranges()))]
        assert (row.va_start, row.va_end) == (top - PAGE, 1 << 64)
        assert dump.ranges().index_of_va((1 << 64) - 1) == 0
        assert dump.spans_with_segments([top], PAGE).tolist() == [True]
        last = bytes(dump.read_va(top, PAGE))
        hits = dump.search(last[-9:-1]).hits  # (the space's very last byte is not searched)
        assert top + PAGE - 9 in [hit.va for hit in hits]
        assert minimap(dump, 8).counts == {"gpu": 0, "firmware": 2, "device": 0, "not-dumped": 0}


def test_ranges_split_where_the_hole_reason_changes(dump_dir: Path) -> None:
    """Every page of a range has the range's reason: two pages of one PT_LOAD, one in a
    no-map region, the next outside the memory map."""
    va = factory.BASE_VA
    plan = FactoryPlan(
        segments=[(va, 0x8_0000_0000, 2, uat.PROTS["FW_SHARED_RW"].bits | 3, False)],
        with_tables=True,
        regions=[RegionInfo(ext.REGION_RESERVED, "carveout", 0x8_0000_0000, PAGE, 1)],
        hole_details={va: (ext.DETAIL_NO_MAP, 0), va + PAGE: (ext.DETAIL_OUTSIDE_MEMORY_MAP, -1)},
        notes=[],
    )
    path = fresh_path(dump_dir)
    planned = build_factory_dump(path, plan)
    with dumpview.open_dump(path) as dump:
        assert [tuple(p)[:9] for p in dump.pages()] == [tuple(p)[:9] for p in planned]
        assert [p.reason_detail for p in planned] == [
            "no-map: carveout",
            "outside the memory map",
        ]
        table = dump.ranges()
        for i in range(len(table)):
            row = table.row(i)
            for page in planned:
                if row.va_start <= page.va < row.va_end:
                    assert (page.reason, page.reason_detail) == (row.reason, row.reason_detail)
